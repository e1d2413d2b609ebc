"""Red team round thirty-two (b): ``authguard.drf.NotPending`` behind an authenticator not authguard's.

docs/drf.md recommends ``NotPending`` as the default permission ("signed in and past step-up") and says
"never BasicAuthentication (DRF's default)". DRF's default ``DEFAULT_AUTHENTICATION_CLASSES`` is
``[SessionAuthentication, BasicAuthentication]`` (the demo's test settings leave it so), and authguard has no
system check on it. ``NotPending`` asks a session whether it is pending and waves any other request through:
a request authenticated by HTTP Basic (the password on every request, never scored) or by DRF's own
``TokenAuthentication`` (no binding, no idle or absolute limit) passes as "past step-up".

This module is its own urlconf: the demo's URLs plus two views a portal writes when it keeps DRF's defaults.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

# isort: split
from .test_drf import PASSWORD, api, obtain, with_token

# isort: split
from django.urls import include, path
from rest_framework import authentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authguard.drf import NotPending
from authguard.models import LoginEvent

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, UA_CURL


class DefaultsPortfolio(APIView):
    """A portal view that names only the permission and keeps DRF's default authenticators."""

    authentication_classes = [authentication.SessionAuthentication, authentication.BasicAuthentication]
    permission_classes = [NotPending]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"status": "ok", "user": request.user.get_username()})


class DrfTokenPortfolio(APIView):
    """A portal view left on DRF's own token authentication (the class it had before authguard.drf)."""

    authentication_classes = [authentication.SessionAuthentication, authentication.TokenAuthentication]
    permission_classes = [NotPending]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"status": "ok", "user": request.user.get_username()})


urlpatterns = [
    path("other-auth/defaults-portfolio", DefaultsPortfolio.as_view()),
    path("other-auth/drf-token-portfolio", DrfTokenPortfolio.as_view()),
    path("", include("tests.drf_urlconf")),
]

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("geoip"),
    pytest.mark.urls("tests.test_drf_other_authenticators_walkarounds"),
]


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_not_pending_refuses_a_password_only_http_basic_request(alice_with_totp: Any) -> None:
    """The thief has her phished password only. From a hosting network in Singapore, with curl, he sends it
    as HTTP Basic to a view under ``NotPending`` and DRF's default authenticators. The same password posted
    to the token endpoint is refused (``deny``) and recorded. Now: 200, her portfolio, no login event, no
    notification. Secure: ``NotPending`` ("past step-up") fails closed for a request authenticated by
    anything but a session or ``authguard.drf.TokenAuthentication`` (401/403), and/or a system check warns
    when ``BasicAuthentication`` is among the authenticators with authguard installed."""
    before = LoginEvent.objects.filter(user=alice_with_totp).count()
    thief = api(IP_SG_VPS, UA_CURL)
    answer = thief.get("/other-auth/defaults-portfolio", HTTP_AUTHORIZATION=_basic("alice", PASSWORD))
    recorded = LoginEvent.objects.filter(user=alice_with_totp).count() - before
    assert answer.status_code in (401, 403), (answer.status_code, answer.content, f"{recorded} event(s)")


def test_not_pending_refuses_a_copied_token_through_drfs_own_token_authentication(
    alice_with_totp: Any,
) -> None:
    """Her app's token (issued by authguard's endpoint at home) is copied; the thief replays it from a
    hosting network in Singapore against a view the portal left on DRF's own ``TokenAuthentication``.
    authguard's class would re-score it there and end it (test_drf_token_walkarounds). Now: ``NotPending``
    sees a token and serves it, no binding, no re-score, no record. Secure: ``NotPending`` refuses a token it
    did not see authenticated by ``authguard.drf.TokenAuthentication`` (or a check warns)."""
    token = obtain(api(IP_TOKYO, UA_CHROME_WIN)).json()["token"]
    answer = with_token(api(IP_SG_VPS, UA_CURL), token).get("/other-auth/drf-token-portfolio")
    assert answer.status_code in (401, 403), (answer.status_code, answer.content)


def test_held_the_token_endpoint_refuses_the_same_password_from_there(alice_with_totp: Any) -> None:
    """HELD (control): the same phished password posted to authguard's token endpoint from there is
    refused and recorded."""
    answer = obtain(api(IP_SG_VPS, UA_CURL))
    assert answer.status_code in (401, 403) and "token" not in answer.json()
