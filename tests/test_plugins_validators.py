"""The plug-in loader (authguard.plugins), and the checks reading their defaults from authguard.conf."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from authguard.checks import Codes
from authguard.checks.factors import check_step_up
from authguard.conf import AppSettings
from authguard.plugins import (
    PluginEntryError,
    PluginImportError,
    PluginOptionsError,
    PluginTypeError,
    build_plugins,
    plugin_class,
    plugin_list_problem,
)
from authguard.risk.findings import RiskSignal

pytestmark = pytest.mark.django_db

VELOCITY = "authguard.risk_signals.Velocity"


def test_build_plugins_builds_each_entry_in_order() -> None:
    built = build_plugins([{"NAME": VELOCITY}, {"NAME": VELOCITY, "OPTIONS": {}}], base=RiskSignal)
    assert [type(signal).__name__ for signal in built] == ["Velocity", "Velocity"]


@pytest.mark.parametrize(
    ("entry", "error", "message"),
    [
        ("x", PluginEntryError, "entry 0 must be a dict with a 'NAME'"),
        ({"NAME": VELOCITY, "X": 1}, PluginEntryError, "entry 0 has unknown keys ['X']"),
        (
            {"NAME": "nope.Nope"},
            PluginImportError,
            "entry 0: cannot import 'nope.Nope' (No module named 'nope')",
        ),
        ({"NAME": "authguard.conf.AppSettings"}, PluginTypeError, "is not a subclass of RiskSignal"),
        (
            {"NAME": VELOCITY, "OPTIONS": {"zz": 1}},
            PluginOptionsError,
            "rejects its OPTIONS (unknown options",
        ),
    ],
)
def test_each_problem_has_its_exception_and_the_checks_words(entry: Any, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        build_plugins([entry], base=RiskSignal)
    assert isinstance(caught.value, ImproperlyConfigured)
    assert message in str(caught.value)
    assert plugin_list_problem([entry], base=RiskSignal) == str(caught.value)


def test_plugin_class_keeps_the_import_errors_reason() -> None:
    with pytest.raises(PluginImportError) as caught:
        plugin_class("nope.Nope", base=RiskSignal)
    assert caught.value.reason == "No module named 'nope'"
    assert isinstance(caught.value, ImportError)


def test_a_list_is_required() -> None:
    assert plugin_list_problem({}, base=RiskSignal) == "it must be a list"
    assert plugin_list_problem([], base=RiskSignal) is None


def test_the_checks_read_the_default_from_conf(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A default changed in conf.py is the one checked: only the idle timeout is set here."""
    settings.AUTHGUARD_SESSION_IDLE_SECONDS = 2 * 86400
    assert [m.id for m in check_step_up(None)] == [Codes.SESSION_TIMEOUTS_INVALID]  # idle > 24 h default
    monkeypatch.setattr(AppSettings, "SESSION_ABSOLUTE_SECONDS", property(lambda self: 3 * 86400))
    assert [m.id for m in check_step_up(None)] == [Codes.SESSION_TIMEOUTS_LONG]  # within conf's new default
