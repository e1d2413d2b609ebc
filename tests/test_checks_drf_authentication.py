"""System check ``authguard.W112``: DRF's authentication classes name no scheme authguard does not judge."""

from __future__ import annotations

from typing import Any

import pytest

from authguard.checks.codes import Codes
from authguard.checks.sessions import check_drf_authentication

pytest.importorskip("rest_framework")

BASIC = "rest_framework.authentication.BasicAuthentication"
DRF_TOKEN = "rest_framework.authentication.TokenAuthentication"
SESSION = "rest_framework.authentication.SessionAuthentication"
OURS = "authguard.drf.TokenAuthentication"


def _ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_the_test_settings_name_only_judged_schemes() -> None:
    assert check_drf_authentication(None) == []


@pytest.mark.parametrize("unjudged", [BASIC, DRF_TOKEN])
def test_an_unjudged_scheme_is_warned_about(settings: Any, unjudged: str) -> None:
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [SESSION, unjudged]}
    messages = check_drf_authentication(None)
    assert _ids(messages) == [Codes.DRF_UNJUDGED_AUTHENTICATION]
    assert unjudged in messages[0].msg


def test_drfs_default_is_warned_about(settings: Any) -> None:
    settings.REST_FRAMEWORK = {}
    messages = check_drf_authentication(None)
    assert _ids(messages) == [Codes.DRF_UNJUDGED_AUTHENTICATION]
    assert "DRF's default" in messages[0].msg and BASIC in messages[0].msg


def test_sessions_and_authguards_tokens_pass(settings: Any) -> None:
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [SESSION, OURS]}
    assert check_drf_authentication(None) == []


def test_a_portal_without_drf_is_not_checked(settings: Any) -> None:
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if not app.startswith("rest_framework")]
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [BASIC]}
    assert check_drf_authentication(None) == []
