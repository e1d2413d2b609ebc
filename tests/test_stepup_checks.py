"""System checks of the step-up settings (``authguard.E018``, ``authguard.E019``, ``authguard.W018``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks

# run_checks() includes Django's model checks, which on Django 6.1 ask the database whether it supports
# JSONField: they need a database even when the test does not.
pytestmark = pytest.mark.django_db


def ids(settings: Any) -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("authguard.")}


def test_the_defaults_pass(settings: Any) -> None:
    assert not ids(settings) & {"authguard.E018", "authguard.E019", "authguard.W018"}


@pytest.mark.parametrize(
    ("idle", "absolute"), [(0, 86400), (3600, -1), ("3600", 86400), (True, 86400), (7200, 3600)]
)
def test_invalid_timeouts_are_errors(settings: Any, idle: Any, absolute: Any) -> None:
    settings.AUTHGUARD_SESSION_IDLE_SECONDS = idle
    settings.AUTHGUARD_SESSION_ABSOLUTE_SECONDS = absolute
    assert "authguard.E018" in ids(settings)


def test_timeouts_beyond_nist_aal2_are_warned(settings: Any) -> None:
    settings.AUTHGUARD_SESSION_IDLE_SECONDS = 4 * 3600
    settings.AUTHGUARD_SESSION_ABSOLUTE_SECONDS = 7 * 86400
    found = ids(settings)
    assert "authguard.W018" in found and "authguard.E018" not in found


@pytest.mark.parametrize("methods", [[], ["sms"], "passkey", ["passkey", 3]])
def test_unknown_step_up_methods_are_errors(settings: Any, methods: Any) -> None:
    settings.AUTHGUARD_STEP_UP_METHODS = methods
    assert "authguard.E019" in ids(settings)
