"""Login risk on portal two: Django's own LoginView and the portal's JSON login with an e-mail-login user
model, scored, recorded and notified as on the demo (tests/test_login_flow.py is the demo's twin)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from authguard.models import KnownDevice, LoginEvent, Outcome, RiskProfile

from ..conftest import IP_SG_VPS, IP_TOKYO, IP_TOR, IP_US_HOME, UA_CHROME_WIN, UA_CURL, UA_IPHONE, totp_token
from .support import UA_REQUESTS, browser, home_customer, json_login, kinds, latest_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def test_a_tokyo_login_through_djangos_login_view_is_allowed_recorded_and_learned(user_factory: Any) -> None:
    alice = user_factory("alice")
    client = browser(IP_TOKYO, UA_CHROME_WIN)
    assert client.get("/login/").status_code == 200 and "authguard_device" in client.cookies
    response = client.sign_in("alice@example.jp")
    assert response.status_code == 302 and response.url == "/"
    event = LoginEvent.objects.get()
    assert (event.user, event.username, event.password_ok, event.action, event.outcome) == (
        alice, "alice@example.jp", True, "allow", Outcome.SIGNED_IN,
    )  # fmt: skip
    assert (event.ip, event.country, event.city, event.asn) == (IP_TOKYO, "JP", "Tokyo", 4713)
    assert RiskProfile.objects.get(user=alice).data["n"] == [0, 1]
    assert KnownDevice.objects.get(user=alice).cookie_hash == event.device_hash
    home = client.get("/")
    assert home.status_code == 200 and b"Welcome, alice@example.jp" in home.content


def test_the_login_name_is_found_whatever_its_case(user_factory: Any) -> None:
    alice = user_factory("alice")
    response = browser().sign_in("Alice@Example.JP")
    assert response.status_code == 302 and response.url == "/"
    event = LoginEvent.objects.get()
    assert event.user == alice and event.username == "alice@example.jp"  # the account's login name


def test_a_phished_password_from_singapore_hosting_with_python_requests_is_refused_and_recorded(
    user_factory: Any, totp_factory: Any
) -> None:
    alice = home_customer(user_factory)
    totp_factory(alice)
    before = set(kinds(alice))
    thief = browser(IP_SG_VPS, UA_REQUESTS)
    response = thief.sign_in("alice@example.jp")
    assert response.status_code == 302 and response.url == "/authguard/denied/"
    assert "_auth_user_id" not in thief.session
    event = latest_event(alice)
    assert (event.ip, event.user_agent, event.password_ok) == (IP_SG_VPS, UA_REQUESTS, True)
    assert event.action == "deny" and event.outcome == Outcome.REFUSED
    assert {"anonymous_hosting", "automation_client"} <= set(event.reasons)
    assert thief.get("/").status_code == 302  # to the login page: nobody is signed in
    assert set(kinds(alice)) == before  # a refused login signs nobody in: nothing to announce


def test_a_login_abroad_on_a_new_phone_steps_up_and_is_announced_once_the_code_passes(
    user_factory: Any, totp_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alice = user_factory("alice")
    device = totp_factory(alice)
    with time_machine.travel(timezone.now() - timedelta(days=3), tick=False):
        for _ in range(2):
            browser().sign_in("alice@example.jp")  # at home in Tokyo, days ago
    mail.outbox.clear()
    before = kinds(alice)
    client = browser(IP_US_HOME, UA_IPHONE)  # travelling: a new phone in Los Angeles
    response = client.sign_in("alice@example.jp")
    assert response.status_code == 302 and response.url == "/authguard/step-up/?next=/"
    event = latest_event(alice)
    assert event.action == "step_up" and event.outcome == Outcome.STEP_UP_PENDING
    assert "new_device" in event.reasons
    assert client.get("/").status_code == 302  # held at step-up
    with django_capture_on_commit_callbacks(execute=True):
        passed = client.post("/authguard/step-up/totp/?next=/", {"code": totp_token(device), "next": "/"})
    assert passed.status_code == 302 and passed.url == "/"
    event.refresh_from_db()
    assert event.outcome == Outcome.STEP_UP_PASSED
    new = list(kinds(alice))
    for kind in before:
        new.remove(kind)
    assert new == ["new_country_login", "new_device_login"]
    # The portal's Celery app sent them to the customer's address, out of band.
    assert len(mail.outbox) == 2 and {m.to[0] for m in mail.outbox} == {"alice@example.jp"}
    assert client.get("/").status_code == 200


def test_the_json_login_answers_the_same_decisions(user_factory: Any, totp_factory: Any) -> None:
    # An account with no history signing in from a hosting network in Singapore: stepped up (score 50).
    totp_factory(user_factory("bob"))
    stepped = json_login(browser(IP_SG_VPS, UA_CHROME_WIN), "BOB@example.jp")
    assert stepped.status_code == 200 and stepped.json()["status"] == "step_up_required"
    assert stepped.json()["methods"] == ["totp"]
    assert "anonymous_hosting" in LoginEvent.objects.latest("pk").reasons
    alice = home_customer(user_factory)
    totp_factory(alice)
    ok = json_login(browser(), "alice@example.jp")
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    refused = json_login(browser(IP_TOR, UA_CURL), "alice@example.jp")
    assert refused.status_code == 403 and refused.json()["status"] == "denied"
    wrong = json_login(browser(), "alice@example.jp", "wrong password")
    unknown = json_login(browser(), "nobody@example.jp", "wrong password")
    assert wrong.status_code == unknown.status_code == 401 and wrong.json() == unknown.json()
    outcomes = list(LoginEvent.objects.order_by("pk").values_list("outcome", flat=True))[-4:]
    assert outcomes == [Outcome.SIGNED_IN, Outcome.REFUSED, Outcome.BAD_PASSWORD, Outcome.BAD_PASSWORD]
    assert LoginEvent.objects.latest("pk").user is None


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b"{", b'{"email": 1, "password": "x"}', b'{"email": "a@b.jp"}',
     b'{"email": "a\\u0000@b.jp", "password": "x"}', b'{"email": "' + b"a" * 300 + b'", "password": "x"}'],
)  # fmt: skip
def test_the_json_login_answers_malformed_bodies_with_a_4xx(client: Any, body: bytes) -> None:
    response = client.post("/api/v1/login", body, content_type="application/json")
    assert 400 <= response.status_code < 500 and response.json()["status"] == "invalid"
    assert not LoginEvent.objects.exists()


def test_the_account_throttle_counts_every_spelling_of_an_address_as_one_account(
    user_factory: Any, settings: Any
) -> None:
    settings.AUTHGUARD_LOGIN_THROTTLE = {"user_failures": 3, "ip_failures": 1000}
    user_factory("alice")
    for spelling in ("alice@example.jp", "Alice@example.jp", "ALICE@EXAMPLE.JP"):
        assert json_login(browser(), spelling, "guess").status_code == 401
    blocked = json_login(browser(), "aLiCe@example.jp")  # the right password, another spelling
    assert blocked.status_code == 429 and blocked.json()["status"] == "throttled"
    assert LoginEvent.objects.filter(outcome=Outcome.THROTTLED).count() == 1


def test_the_login_page_issues_the_device_cookie_and_an_anonymous_api_call_does_not(client: Any) -> None:
    assert "authguard_device" in client.get("/login/").cookies
    assert "authguard_device" not in Client().get("/api/v1/balance").cookies


def test_settings_are_portal_twos() -> None:
    assert settings.AUTH_USER_MODEL == "portal2_accounts.User"
    assert not any(app.startswith("demo_site") for app in settings.INSTALLED_APPS)
