"""Red team, round twenty-five (d): malformed input the operator tools and the console must refuse with a
clear error, never a traceback or a 500.

The product's rule (README, "Bad input gets a clear error"): ``manage.py authguard replay`` /
``import-history`` stop at a malformed line with its number (a ``CommandError``); a console form shows its
errors again. Each test below feeds one input a hostile or merely broken export produces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from authguard.models import KnownDevice, PopulationCount, RiskProfile

from .conftest import IP_TOKYO, UA_CHROME_WIN
from .console_data import staff_client, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _row(**overrides: Any) -> dict[str, Any]:
    row = {
        "ts": "2026-01-01T09:00:00+09:00",
        "user": "alice",
        "ip": IP_TOKYO,
        "user_agent": UA_CHROME_WIN,
        "device_id": "portal-device-0001",
        "password_ok": True,
        "second_factor_ok": None,
    }
    row.update(overrides)
    return row


def _log(tmp_path: Path, second: bytes) -> Path:
    """A two-line export: one good line, then ``second``."""
    source = tmp_path / "signins.jsonl"
    source.write_bytes(json.dumps(_row()).encode() + b"\n" + second + b"\n")
    return source


def _run(sub: str, source: Path, tmp_path: Path) -> None:
    if sub == "replay":
        call_command("authguard", "replay", str(source), "--output", str(tmp_path / "out.jsonl"), "--quiet")
    else:
        call_command("authguard", "import-history", str(source), "--quiet")


#: A line of 100,000 nested arrays: valid bytes, a JSON decoder recursing past Python's stack limit.
DEEP_LINE = b"[" * 100_000
#: The last second of year 9999 in UTC is valid ISO-8601 with an offset, and the replay's own check
#: (``_timestamp``: "year 1 or 9999 with an offset has no UTC time") lets it through; the portal's time zone
#: (Asia/Tokyo, +09:00) is past the calendar's end.
LAST_SECOND_LINE = json.dumps(_row(ts="9999-12-31T23:59:59+00:00")).encode()


@pytest.mark.parametrize("sub", ["replay", "import-history"])
@pytest.mark.parametrize(
    ("second", "message"),
    [(DEEP_LINE, "line 2: not valid JSON"), (LAST_SECOND_LINE, "line 2: 'ts'")],
    ids=["deeply-nested-line", "last-second-of-9999"],
)
def test_a_broken_export_line_stops_the_command_with_its_number_not_a_traceback(
    tmp_path: Path, user_factory: Any, sub: str, second: bytes, message: str
) -> None:
    """A portal exports its sign-in log for ``import-history`` on the install day
    (docs/benchmarks-detection.md, "The first day"). One line of it is garbage: a nested-array blob, or a
    sentinel "end of time" stamp a legacy system writes for "never". The command must name the line and
    import nothing, as it does for every other malformed line (tests/test_risk_replay.py). Today the first
    crashes the JSON decoder with a ``RecursionError`` and the second the profile's local-hour feature with
    an ``OverflowError``: both are tracebacks, not ``CommandError``."""
    user_factory("alice")
    source = _log(tmp_path, second)
    with pytest.raises(CommandError, match=message):
        _run(sub, source, tmp_path)
    assert not RiskProfile.objects.exists()
    assert not PopulationCount.objects.exists()
    assert not KnownDevice.objects.exists()


def test_a_deeply_nested_policy_file_is_refused_with_a_message(tmp_path: Path) -> None:
    """``authguard replay --policy POLICY.json`` refuses an invalid policy with "cannot use policy ..."
    (tests/test_risk_replay.py::test_invalid_policy_is_refused); a policy file of nested arrays (a truncated
    or hostile file handed to the operator) crashes ``json.load`` with a ``RecursionError`` instead."""
    source = tmp_path / "signins.jsonl"
    source.write_text(json.dumps(_row()) + "\n")
    policy = tmp_path / "policy.json"
    policy.write_bytes(DEEP_LINE)
    with pytest.raises(CommandError, match="cannot use policy"):
        call_command(
            "authguard",
            "replay",
            str(source),
            "--output",
            str(tmp_path / "out.jsonl"),
            "--policy",
            str(policy),
        )


def test_the_console_backtest_answers_deeply_nested_signal_options_with_a_form_error() -> None:
    """The security console's backtest (``/admin/authguard/loginevent/backtest/``) reads its "signal options"
    field with ``json.loads`` and catches ``ValueError`` only: 100,000 nested brackets (a paste gone wrong,
    or a hostile desk member's browser extension) raise ``RecursionError`` and the page answers 500. It must
    show the form again with its error, as it does for any other invalid JSON."""
    desk = staff_client(staff_user(perms=("authguard.view_loginevent",)))
    page = "/admin/authguard/loginevent/backtest/"
    good = desk.post(page, {"days": "30", "step_up": "40", "deny": "80", "signal_options": "{"})
    assert good.status_code == 200 and b"not valid JSON" in good.content  # the ordinary refusal
    response = desk.post(page, {"days": "30", "step_up": "40", "deny": "80", "signal_options": "[" * 100_000})
    assert response.status_code == 200
    assert b"not valid JSON" in response.content


@pytest.mark.parametrize("field", ["signal_options", "shadow_signals"])
def test_the_policy_editors_advanced_json_fields_answer_deep_nesting_with_a_form_error(
    field: str,
) -> None:
    """The policy editor (``/admin/authguard/policyversion/add/``) keeps the model's ``signal_options`` and
    ``shadow_signals`` as raw JSON in its advanced section. Django's ``forms.JSONField`` catches
    ``JSONDecodeError`` only, so 100,000 nested brackets in either answer 500 (``RecursionError``) where any
    other malformed JSON is shown again with "Enter a valid JSON." Nothing may be proposed."""
    from authguard.models import PolicyVersion

    from .test_policy_editor import ADD, PERMS, page_values

    analyst = staff_client(staff_user("tuner", perms=PERMS))
    data = {**page_values(analyst.get(ADD)), "comment": "tighten after the November campaign"}
    broken = analyst.post(ADD, {**data, field: "{", "_review": "1"})
    assert broken.status_code == 200 and b"valid JSON" in broken.content  # the ordinary refusal
    response = analyst.post(ADD, {**data, field: "[" * 100_000, "_review": "1"})
    assert response.status_code == 200
    assert b"valid JSON" in response.content
    assert not PolicyVersion.objects.exists()
