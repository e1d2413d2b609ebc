"""Issue 14 item 10: report-only mode per part (``AUTHGUARD_REPORT_ONLY``).

Each part decides as usual, records what it would have done (a ``report_only`` finding on the login event,
``report_only_would_hold`` on the order ledger), logs it, and acts on nothing. The mode is loud (check
``authguard.W170``) and refused under the JSDA preset for sign-in (``authguard.E171``). Every test checks
the enforced behaviour beside the report-only one, so it fails if the setting stopped mattering.
"""

from __future__ import annotations

import json
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from authguard.checks import Codes
from authguard.conf import DEFAULT_RISK_SIGNALS
from authguard.models import (
    GuardedOrder,
    GuardStatus,
    HeldOrder,
    KnownDevice,
    LoginEvent,
    Notification,
    Outcome,
    RiskProfile,
)
from authguard.orders.guard import REPORT_ONLY_WOULD_HOLD
from authguard.sessions import state as sessions_state
from authguard.sessions.decorators import step_up_required
from demo_site.brokerage import services
from demo_site.brokerage.models import Order, OrderStatus

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import IP_DOCOMO, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, UA_FIREFOX_LINUX

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
#: Every login scores at least 0: with these thresholds every login is stepped up, or denied.
ALWAYS_STEP_UP = {"step_up": 0, "deny": 100}
ALWAYS_DENY = {"step_up": 0, "deny": 0}


@step_up_required(max_age=120)
def withdraw(request: HttpRequest) -> HttpResponse:
    return HttpResponse("withdrawal form")


urlpatterns = [
    path("", include("demo_site.urls")),
    path("bank/withdraw/", withdraw, name="withdraw"),
]


class Browser:
    """A JSON API client at one place, with CSRF checks on as in a browser."""

    def __init__(self, ip: str = IP_TOKYO, ua: str = UA_CHROME_WIN) -> None:
        self.client = Client(enforce_csrf_checks=True, REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
        self.token = self.client.get("/api/csrf").json()["csrf_token"]

    def post(self, path: str, body: Any) -> Any:
        response = self.client.post(
            path, json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=self.token
        )
        if response.get("Content-Type") == "application/json":
            self.token = response.json().get("csrf_token", self.token)
        return response

    def login(self, username: str = "hanako", password: str = PASSWORD) -> Any:
        return self.post("/api/login", {"username": username, "password": password})

    def state(self) -> dict[str, Any]:
        key = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        return SessionStore(session_key=key).load()[sessions_state.STATE_KEY]


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    """hanako with ¥1,000,000 cash, 100 Toyota and an authenticator app (``hanako.totp``)."""
    return brokerage_customer(holdings={"7203": 100}, totp=True)


def report_only(event: LoginEvent) -> dict[str, Any]:
    [finding] = [f for f in event.findings if f["code"] == "report_only"]
    assert finding["score"] == 0
    return finding["evidence"]


def check_ids() -> set[str]:
    return {m.id for m in run_checks(tags=["security"]) if m.id and m.id.startswith("authguard.")}


# -- login -----------------------------------------------------------------------------------------------


def test_login_enforced_steps_up_by_default(hanako: Any, settings: Any) -> None:
    settings.AUTHGUARD_THRESHOLDS = ALWAYS_STEP_UP
    answer = Browser().login().json()
    assert answer["status"] == "step_up_required" and answer["methods"] == ["totp"]
    assert LoginEvent.objects.get().outcome == Outcome.STEP_UP_PENDING
    assert not any(f["code"] == "report_only" for f in LoginEvent.objects.get().findings)


def test_login_report_only_records_the_step_up_and_signs_in(hanako: Any, settings: Any) -> None:
    settings.AUTHGUARD_THRESHOLDS = ALWAYS_STEP_UP
    settings.AUTHGUARD_REPORT_ONLY = ["login"]
    browser = Browser()
    assert browser.login().json()["status"] == "ok"
    event = LoginEvent.objects.get()
    # The event keeps the decided action and says what would have happened.
    assert (event.action, event.outcome, event.password_ok) == ("step_up", Outcome.SIGNED_IN, True)
    assert report_only(event) == {
        "part": "login",
        "would_have": "step_up",
        "methods": ["totp"],
        "no_factor": False,
    }
    state = browser.state()
    assert state["s"] == "verified" and state["lr"] is False  # not pending, and never low-risk
    assert browser.client.get("/api/portfolio").status_code == 200
    # SECURITY: a login the policy would have stepped up teaches the risk profile nothing.
    assert not RiskProfile.objects.filter(user=hanako).exists()
    # The queries docs/integration.md gives for the rollout weeks find it.
    watched = LoginEvent.objects.filter(password_ok=True, outcome="signed_in", action__in=["step_up", "deny"])
    assert list(watched) == [event]
    if connection.vendor == "postgresql":
        assert list(LoginEvent.objects.filter(findings__contains=[{"code": "report_only"}])) == [event]


def test_login_report_only_records_a_refusal_and_a_customer_without_a_factor(
    user_factory: Any, settings: Any
) -> None:
    user_factory("nofactor", password=PASSWORD)
    settings.AUTHGUARD_THRESHOLDS = ALWAYS_STEP_UP
    assert Browser().login("nofactor").json()["status"] == "denied"  # enforced: the dead end of item 10
    assert LoginEvent.objects.get().outcome == Outcome.REFUSED
    settings.AUTHGUARD_REPORT_ONLY = ["login"]
    browser = Browser()
    assert browser.login("nofactor").json()["status"] == "ok"
    event = LoginEvent.objects.latest("pk")
    assert event.outcome == Outcome.SIGNED_IN
    assert report_only(event) == {"part": "login", "would_have": "deny", "methods": [], "no_factor": True}
    assert browser.state()["s"] == "verified"

    settings.AUTHGUARD_THRESHOLDS = ALWAYS_DENY
    assert Browser().login("nofactor").json()["status"] == "ok"
    event = LoginEvent.objects.latest("pk")
    assert event.action == "deny" and report_only(event)["would_have"] == "deny"
    assert report_only(event)["no_factor"] is False


def test_login_report_only_never_opens_a_locked_account(hanako: Any, settings: Any) -> None:
    from authguard.login import lockout

    settings.AUTHGUARD_REPORT_ONLY = ["login"]
    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    lockout.record_failure(hanako, kind="password")
    assert lockout.is_locked_fail_closed(hanako)
    response = Browser().login()
    assert response.status_code == 403 and response.json()["code"] == "locked"


def test_login_report_only_is_refused_under_the_jsda_preset(
    hanako: Any, settings: Any, authenticator: Any
) -> None:
    settings.AUTHGUARD_PRESET = "jsda-2025"
    settings.AUTHGUARD_REPORT_ONLY = ["login", "step_up", "orders"]
    settings.AUTHGUARD_THRESHOLDS = ALWAYS_STEP_UP
    # A TOTP-only customer under the preset has no step-up method: refused, as without report-only.
    assert Browser().login().json()["status"] == "denied"
    assert not any(f["code"] == "report_only" for f in LoginEvent.objects.get().findings)
    ids = check_ids()
    assert {Codes.REPORT_ONLY_UNDER_PRESET, Codes.REPORT_ONLY_ON} <= ids
    from authguard.conf import app_settings

    assert frozenset({"orders"}) == app_settings.REPORT_ONLY


# -- step-up after sign-in: re-scored sessions and @step_up_required --------------------------------------


def _steal(victim: Browser, *, ip: str, ua: str) -> Browser:
    thief = Browser(ip, ua)
    thief.client.cookies[settings.SESSION_COOKIE_NAME] = victim.client.cookies[
        settings.SESSION_COOKIE_NAME
    ].value
    thief.client.cookies[settings.CSRF_COOKIE_NAME] = victim.client.cookies[settings.CSRF_COOKIE_NAME].value
    thief.token = victim.token
    return thief


@pytest.fixture
def victim(hanako: Any, settings: Any) -> Browser:
    # Without NetworkHop (a new network minutes after the login) the moved session scores a step-up, not a
    # refusal; IP_SG_VPS (hosting, abroad) is refused either way.
    settings.AUTHGUARD_RISK_SIGNALS = [
        s for s in DEFAULT_RISK_SIGNALS if not s["NAME"].endswith("NetworkHop")
    ]
    browser = Browser()
    assert browser.login().json()["status"] == "ok"
    return browser


def test_step_up_enforced_holds_a_moved_session(victim: Browser, hanako: Any) -> None:
    thief = _steal(victim, ip=IP_DOCOMO, ua=UA_FIREFOX_LINUX)
    assert thief.client.get("/api/portfolio").status_code == 401
    assert victim.state()["s"] == "pending"


def test_step_up_report_only_records_a_moved_session_and_carries_it_on(
    victim: Browser, hanako: Any, settings: Any
) -> None:
    settings.AUTHGUARD_REPORT_ONLY = ["step_up"]
    thief = _steal(victim, ip=IP_DOCOMO, ua=UA_FIREFOX_LINUX)
    assert thief.client.get("/api/portfolio").status_code == 200
    event = LoginEvent.objects.get(ip=IP_DOCOMO)
    assert (event.action, event.outcome, event.password_ok) == ("step_up", Outcome.SIGNED_IN, False)
    assert report_only(event) == {"part": "step_up", "would_have": "step_up", "rescored": True}
    state = victim.state()
    assert state["s"] == "verified" and state["lr"] is False and state["r"] is True
    # Rebound to the new context: the next request is not re-scored (one event, not one per request).
    assert thief.client.get("/api/portfolio").status_code == 200
    assert LoginEvent.objects.filter(ip=IP_DOCOMO).count() == 1


def test_step_up_report_only_keeps_a_session_a_fresh_login_would_be_refused(
    victim: Browser, hanako: Any, settings: Any
) -> None:
    settings.AUTHGUARD_REPORT_ONLY = ["step_up"]
    thief = _steal(victim, ip=IP_SG_VPS, ua=UA_FIREFOX_LINUX)
    assert thief.client.get("/api/portfolio").status_code == 200
    event = LoginEvent.objects.get(ip=IP_SG_VPS)
    assert event.action == "deny" and event.outcome == Outcome.SIGNED_IN
    assert report_only(event)["would_have"] == "end_session"
    assert SessionStore().exists(victim.client.cookies[settings.SESSION_COOKIE_NAME].value)


@pytest.mark.urls("tests.test_report_only")
def test_step_up_required_is_logged_not_enforced_in_report_only(
    victim: Browser, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    enforced = victim.client.get("/bank/withdraw/")
    assert enforced.status_code == 302 and enforced.url.startswith("/authguard/reverify/")
    settings.AUTHGUARD_REPORT_ONLY = ["step_up"]
    with caplog.at_level("WARNING", logger="authguard.sessions.decorators"):
        response = victim.client.get("/bank/withdraw/")
    assert response.status_code == 200 and response.content == b"withdrawal form"
    assert "REPORT-ONLY step_up" in caplog.text and "/bank/withdraw/" in caplog.text
    # Anonymous requests are refused all the same.
    assert Client().get("/bank/withdraw/").status_code == 302


# -- orders ----------------------------------------------------------------------------------------------


def _sell_everything(browser: Any, user: Any) -> list[Any]:
    ranked = sorted(services.portfolio(user).holdings, key=lambda h: -h.value_jpy)
    return [
        browser.order("sell", h.symbol, h.quantity) for h in [h for h in ranked if not h.is_small_cap][:20]
    ]


def test_orders_enforced_hold_a_liquidation(tanaka: Any, order_api: Any) -> None:
    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    statuses = [r.json()["status"] for r in _sell_everything(browser, tanaka)]
    assert "held" in statuses
    assert HeldOrder.objects.exists()


def test_orders_report_only_places_what_would_be_held_and_records_it(
    tanaka: Any, order_api: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AUTHGUARD_REPORT_ONLY = ["orders"]
    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    with caplog.at_level("WARNING", logger="authguard.orders.guard"):
        answers = _sell_everything(browser, tanaka)
    assert [r.status_code for r in answers] == [201] * len(answers)
    assert not HeldOrder.objects.exists()
    assert not Order.objects.filter(status=OrderStatus.HELD).exists()
    ledger = list(GuardedOrder.objects.filter(user=tanaka).order_by("pk"))
    assert len(ledger) == len(answers) and {row.status for row in ledger} == {GuardStatus.PLACED}
    would_hold = [row for row in ledger if REPORT_ONLY_WOULD_HOLD in row.reasons]
    assert would_hold, "the liquidation would have been held"
    assert all(row.reasons[-1] == REPORT_ONLY_WOULD_HOLD and len(row.reasons) > 1 for row in would_hold)
    assert "mass_liquidation" in {code for row in would_hold for code in row.reasons}
    # The ledger query docs/integration.md gives.
    assert GuardedOrder.objects.filter(reasons__icontains=REPORT_ONLY_WOULD_HOLD).count() == len(would_hold)
    assert not Notification.objects.filter(kind="order_held").exists()
    assert "REPORT-ONLY orders" in caplog.text


# -- the checks -------------------------------------------------------------------------------------------


def test_no_report_only_warning_by_default() -> None:
    assert not {Codes.REPORT_ONLY_ON, Codes.REPORT_ONLY_INVALID, Codes.REPORT_ONLY_UNDER_PRESET} & check_ids()


def test_report_only_is_named_by_w170(settings: Any) -> None:
    settings.AUTHGUARD_REPORT_ONLY = ["orders", "login"]
    [message] = [m for m in run_checks(tags=["security"]) if m.id == Codes.REPORT_ONLY_ON]
    assert "['login', 'orders']" in message.msg


@pytest.mark.parametrize("value", ["login", ["login", "actions"], [1], {"login": True}])
def test_invalid_report_only_is_e170_and_enforces(settings: Any, value: Any) -> None:
    from authguard.conf import app_settings

    settings.AUTHGUARD_REPORT_ONLY = value
    assert Codes.REPORT_ONLY_INVALID in check_ids()
    assert {"login"} >= app_settings.REPORT_ONLY  # a string or a dict enforces every part
    if not isinstance(value, list):
        assert frozenset() == app_settings.REPORT_ONLY


def test_login_report_only_covers_a_passkey_sign_in_the_policy_would_refuse(
    user_factory: Any, authenticator: Any, browser_at: Any, settings: Any
) -> None:
    from .conftest import api_post, bind_passkey

    alice = user_factory("alice")
    bind_passkey(alice, authenticator)
    settings.AUTHGUARD_THRESHOLDS = ALWAYS_DENY

    def passkey_sign_in() -> Any:
        client = browser_at(IP_TOKYO, UA_CHROME_WIN)
        client.get("/login/")
        options = api_post(client, "api-login-passkey-options").json()
        return client, api_post(client, "api-login-passkey", authenticator.get(options))

    _client, refused = passkey_sign_in()
    assert refused.json()["status"] != "ok" and LoginEvent.objects.get().outcome == Outcome.REFUSED
    settings.AUTHGUARD_REPORT_ONLY = ["login"]
    client, answer = passkey_sign_in()
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    event = LoginEvent.objects.latest("pk")
    assert (event.action, event.outcome) == ("deny", Outcome.PASSKEY_LOGIN)
    assert report_only(event) == {"part": "login", "would_have": "deny", "passkey": True}
    state = client.session["_authguard"]
    assert state["s"] == "verified" and state["lr"] is False
    # SECURITY: nothing learned, no browser remembered, from a sign-in the policy would have refused.
    assert not RiskProfile.objects.filter(user=alice).exists()
    assert not KnownDevice.objects.filter(user=alice, trusted_until__isnull=False).exists()
