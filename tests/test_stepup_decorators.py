"""``step_up_required(max_age=...)`` and ``step_up_exempt`` on a portal's own views, HTML and JSON."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client
from django.urls import include, path
from django.utils import timezone

from authguard.sessions.decorators import step_up_exempt, step_up_required

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, totp_token

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("geoip"),
    pytest.mark.urls("tests.test_stepup_decorators"),
]


@step_up_required(max_age=120)
def withdraw(request: HttpRequest) -> HttpResponse:
    return HttpResponse("withdrawal form")


@step_up_required
def statements(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@step_up_exempt
def help_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("help")


def private(request: HttpRequest) -> HttpResponse:
    return HttpResponse("private")


urlpatterns = [
    path("", include("demo_site.urls")),
    path("bank/withdraw/", withdraw, name="withdraw"),
    path("bank/api/statements", statements, name="statements"),
    path("bank/help/", help_page, name="help"),
    path("bank/private/", private, name="private"),
]


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """alice with an authenticator app (the recipe ``alice_with_totp`` of tests/conftest.py)."""
    return alice_with_totp


@pytest.fixture
def home(alice: Any, browser_at: Any) -> Client:
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice").url == "/"
    return client


def test_anonymous_users_are_sent_to_sign_in(client: Client) -> None:
    response = client.get("/bank/withdraw/")
    assert response.status_code == 302 and response.url.startswith("/login/?next=/bank/withdraw/")
    api = client.get("/bank/api/statements")
    assert api.status_code == 401 and api.json()["status"] == "login_required"


def test_a_verified_session_without_a_fresh_factor_is_sent_to_re_verify(home: Client) -> None:
    response = home.get("/bank/withdraw/")
    assert response.status_code == 302 and response.url == "/authguard/reverify/?next=/bank/withdraw/"
    api = home.get("/bank/api/statements")
    assert api.status_code == 403
    assert api.json()["status"] == "step_up_required" and api.json()["methods"] == ["totp"]


def test_a_fresh_verification_opens_the_view_until_max_age(home: Client, alice: Any) -> None:
    start = timezone.now()
    done = home.post("/authguard/step-up/totp/?next=/bank/withdraw/", {"code": totp_token(alice.totp)})
    assert done.url == "/bank/withdraw/"
    assert home.get("/bank/withdraw/").content == b"withdrawal form"
    with time_machine.travel(start + timedelta(seconds=100)):
        assert home.get("/bank/withdraw/").status_code == 200
    with time_machine.travel(start + timedelta(seconds=200)):
        assert home.get("/bank/withdraw/").status_code == 302  # max_age=120
        assert home.get("/bank/api/statements").status_code == 200  # default 300 s
    with time_machine.travel(start + timedelta(seconds=400)):
        assert home.get("/bank/api/statements").status_code == 403


def test_methods_narrow_which_verification_counts(home: Client, alice: Any) -> None:
    @step_up_required(methods=["passkey"])
    def passkey_only(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    home.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    from django.test import RequestFactory

    request = RequestFactory().get("/x")
    request.user = alice
    request.session = home.session
    assert passkey_only(request).status_code == 302


def test_a_pending_session_reaches_exempt_views_only(alice: Any, browser_at: Any) -> None:
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    assert client.sign_in("alice").url.startswith("/authguard/step-up/")
    assert client.get("/bank/help/").content == b"help"
    private_page = client.get("/bank/private/")
    assert private_page.status_code == 302 and private_page.url == "/authguard/step-up/?next=/bank/private/"
    withdraw_page = client.get("/bank/withdraw/")
    assert withdraw_page.status_code == 302 and withdraw_page.url.startswith("/authguard/step-up/")
    api = client.get("/bank/api/statements", HTTP_ACCEPT="application/json")
    assert api.status_code == 401 and api.json()["status"] == "step_up_required"
