"""docs/integration.md names only what exists: settings, check ids, commands, dotted names and task names.

Issue 14 acceptance 4: the guide walks a portal through install, report-only, enforcement, Celery, GeoIP and
DRF; a guide that names a setting or a check id authguard does not have sends a portal the wrong way.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from authguard.checks import Codes
from authguard.conf import AppSettings

REPO = Path(__file__).resolve().parents[1]
GUIDE = (REPO / "docs" / "integration.md").read_text(encoding="utf-8")


def _known_settings() -> set[str]:
    """AUTHGUARD_* names authguard reads: AppSettings properties and every name its code spells out."""
    names = {name for name, value in vars(AppSettings).items() if isinstance(value, property)}
    for path in (REPO / "authguard").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"""["']AUTHGUARD_([A-Z0-9_]+)["']""", text))
        names |= set(re.findall(r"""_setting\(\s*["']([A-Z0-9_]+)["']""", text))
    return names


def _check_ids() -> set[str]:
    return {v for k, v in vars(Codes).items() if not k.startswith("_") and isinstance(v, str)}


def _mentioned_ids() -> set[str]:
    """Every check id the guide names, ranges (``E020``–``E024``) expanded."""
    ids = {f"authguard.{m}" for m in re.findall(r"\b([EW]\d{3})\b", GUIDE)}
    for letter, low, letter2, high in re.findall(r"([EW])(\d{3})`?\s*[–-]\s*`?([EW])(\d{3})", GUIDE):
        assert letter == letter2, f"a range of mixed kinds: {letter}{low}-{letter2}{high}"
        ids |= {f"authguard.{letter}{n:03d}" for n in range(int(low), int(high) + 1)}
    return ids


def test_every_setting_the_guide_names_exists() -> None:
    named = set(re.findall(r"\bAUTHGUARD_([A-Z0-9_]+[A-Z0-9])\b", GUIDE))
    assert {"REPORT_ONLY", "CELERY_HEARTBEAT_STALE_SECONDS", "GEOIP_PATH"} <= named
    assert named - _known_settings() == set()


def test_every_check_id_the_guide_names_exists_and_every_check_is_listed() -> None:
    named = {f"authguard.{m}" for m in re.findall(r"\b([EW]\d{3})\b", GUIDE)}
    assert named - _check_ids() == set(), "the guide names check ids authguard does not have"
    assert _check_ids() - _mentioned_ids() == set(), "checks missing from the guide's table"
    for code in ("E170", "E171", "W170", "W171", "W172", "W173", "W174"):
        assert f"authguard.{code}" in GUIDE


def test_every_manage_py_command_exists() -> None:
    from django.core.management import get_commands, load_command_class

    commands = set(re.findall(r"manage\.py (\w[\w-]*)", GUIDE))
    assert {"migrate", "check", "authguard"} <= commands
    assert commands - set(get_commands()) == set()
    parser = load_command_class("authguard", "authguard").create_parser("manage.py", "authguard")
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert set(re.findall(r"manage\.py authguard (\w[\w-]*)", GUIDE)) <= set(sub.choices)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                target = getattr(target, attribute)
        except AttributeError:
            return False
        return True
    return False


def test_every_dotted_name_and_task_the_guide_names_exists() -> None:
    from demo_site.celery import app

    app.loader.import_default_modules()
    names = set(re.findall(r"`(authguard(?:\.\w+)+)(?:\(|`)", GUIDE))
    names |= set(re.findall(r'"(authguard(?:\.\w+)+)"', GUIDE))
    names = {n for n in names if not re.fullmatch(r"authguard\.[EW]\d{3}", n)}
    assert {"authguard.celery.make_app", "authguard.heartbeat", "authguard.login.ThrottleBackend"} <= names
    missing = {n for n in names if n not in app.tasks and not _resolves(n)}
    assert missing == set()


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md"])
def test_the_guide_is_linked(doc: str) -> None:
    assert "integration.md" in (REPO / doc).read_text(encoding="utf-8")
