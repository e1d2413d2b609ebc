"""Pending sessions and step-up: a risky login signs in as pending, a second factor verifies it.

Risky logins here come from a hosting network in Singapore for an account with no history (score 50:
``anonymous_hosting`` + ``no_history``), which the default thresholds step up.
"""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from authguard.conf import app_settings
from authguard.factors import methods as factor_methods
from authguard.models import KnownDevice, LoginEvent, Outcome, RiskProfile, SessionRecord
from authguard.sessions import state as sessions_state

from .conftest import IP_OSAKA, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, UA_IPHONE, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def state_of(client: Client) -> dict[str, Any]:
    return SessionStore(session_key=session_key(client)).load().get(sessions_state.STATE_KEY)


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """alice with an authenticator app (the recipe ``alice_with_totp`` of tests/conftest.py)."""
    return alice_with_totp


@pytest.fixture
def pending(alice: Any, browser_at: Any) -> Client:
    """alice signed in with her password from a risky place: pending."""
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    response = client.sign_in("alice")
    assert response.status_code == 302 and response.url == "/authguard/step-up/?next=/"
    return client


def test_a_risky_login_signs_in_as_pending_and_is_recorded(pending: Client, alice: Any) -> None:
    data = SessionStore(session_key=session_key(pending)).load()
    assert data[SESSION_KEY] == str(alice.pk)
    state = data[sessions_state.STATE_KEY]
    assert state["s"] == "pending" and state["a"] == "step_up" and state["st"] is None
    event = LoginEvent.objects.get()
    assert (event.user, event.action, event.outcome) == (alice, "step_up", Outcome.STEP_UP_PENDING)
    assert state["e"] == event.pk
    assert not RiskProfile.objects.exists()  # nothing learned before a second factor passed


def test_a_pending_session_is_held_at_step_up_html_and_json(pending: Client) -> None:
    page = pending.get("/")
    assert page.status_code == 302 and page.url == "/authguard/step-up/?next=/"
    api = pending.get("/api/portfolio")
    assert api.status_code == 401
    body = api.json()
    assert body["status"] == "step_up_required" and body["methods"] == ["totp"] and body["message"]
    chooser = pending.get(page.url)
    assert chooser.status_code == 200
    assert b'href="/authguard/step-up/totp/?next=/"' in chooser.content


def test_a_risky_api_login_answers_step_up_required_with_methods(alice: Any) -> None:
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    token = client.get("/api/csrf").json()["csrf_token"]
    response = client.post(
        "/api/login",
        json.dumps({"username": "alice", "password": "correct horse battery"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200
    assert response.json()["status"] == "step_up_required" and response.json()["methods"] == ["totp"]
    held = client.get("/api/portfolio")
    assert held.status_code == 401 and held.json()["status"] == "step_up_required"
    # Signing out is allowed while pending, through the JSON API too.
    token = response.json()["csrf_token"]
    out = client.post("/api/logout", "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert out.status_code == 200 and out.json()["status"] == "ok"
    assert client.get("/api/portfolio").json()["status"] == "login_required"


def test_step_up_with_a_real_totp_code_verifies_the_session(pending: Client, alice: Any) -> None:
    response = pending.post("/authguard/step-up/totp/?next=/", {"code": totp_token(alice.totp), "next": "/"})
    assert response.status_code == 302 and response.url == "/"
    state = state_of(pending)
    assert state["s"] == "verified" and state["u"] is True and state["sm"] == "totp" and state["st"]
    data = SessionStore(session_key=session_key(pending)).load()
    assert data[DEVICE_ID_SESSION_KEY] == alice.totp.persistent_id
    assert pending.get("/").status_code == 200
    assert pending.get("/api/portfolio").status_code in (200, 404)  # not held any more
    assert LoginEvent.objects.get().outcome == Outcome.STEP_UP_PASSED
    # Issue 10 (case 56): a TOTP step-up buys this session only; nothing is learned or remembered.
    assert not RiskProfile.objects.filter(user=alice).exists()


def test_a_wrong_code_keeps_the_session_pending(pending: Client, alice: Any) -> None:
    wrong = "000000" if totp_token(alice.totp) != "000000" else "111111"
    response = pending.post("/authguard/step-up/totp/", {"code": wrong})
    assert response.status_code == 400 and b"not correct" in response.content
    assert state_of(pending)["s"] == "pending"
    assert LoginEvent.objects.get().outcome == Outcome.STEP_UP_FAILED
    assert pending.get("/").status_code == 302
    malformed = pending.post("/authguard/step-up/totp/", {"code": "x" * 500})
    assert malformed.status_code == 400 and state_of(pending)["s"] == "pending"


@pytest.mark.battery(16)
def test_battery_16_session_key_rotates_at_login_and_at_step_up(alice: Any, browser_at: Any) -> None:
    client = browser_at(IP_SG_VPS)
    before = SessionStore()
    before["visited"] = True
    before.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = before.session_key
    client.sign_in("alice")
    at_login = session_key(client)
    assert at_login != before.session_key and not SessionStore().exists(before.session_key)
    client.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    after = session_key(client)
    assert after != at_login and not SessionStore().exists(at_login)
    # The old key is dead: a client still holding it is anonymous.
    stale = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    stale.cookies[settings.SESSION_COOKIE_NAME] = at_login
    assert stale.get("/api/portfolio").json()["status"] == "login_required"


@pytest.mark.battery(17)
def test_battery_17_logout_while_pending_wipes_the_pending_state(pending: Client) -> None:
    key = session_key(pending)
    response = pending.post("/logout/")
    assert response.status_code == 302
    assert not SessionStore().exists(key)
    data = SessionStore(session_key=session_key(pending)).load()
    assert SESSION_KEY not in data and sessions_state.STATE_KEY not in data
    assert pending.get("/authguard/step-up/").status_code == 302  # to the login page now
    assert pending.get("/api/portfolio").json()["status"] == "login_required"
    assert not SessionRecord.objects.exists()  # "sign out other sessions" has nothing left to end


def test_a_session_is_recorded_under_its_current_key(pending: Client, alice: Any) -> None:
    assert list(SessionRecord.objects.values_list("session_key", "user")) == [
        (session_key(pending), alice.pk)
    ]
    pending.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    record = SessionRecord.objects.get()
    assert record.session_key == session_key(pending) and record.place == "Singapore, SG"


@pytest.mark.battery(9)
def test_battery_09_a_user_id_in_the_step_up_post_changes_nothing(
    pending: Client, alice: Any, user_factory: Any, totp_factory: Any
) -> None:
    bob = user_factory("bob")
    bob_device = totp_factory(bob)
    # bob's valid code, with bob's id in every field an attacker might try: refused, alice stays pending.
    response = pending.post(
        "/authguard/step-up/totp/",
        {"code": totp_token(bob_device), "user": bob.pk, "user_id": bob.pk, "username": "bob"},
    )
    assert response.status_code == 400
    data = SessionStore(session_key=session_key(pending)).load()
    assert data[SESSION_KEY] == str(alice.pk) and data[sessions_state.STATE_KEY]["s"] == "pending"
    bob_device.refresh_from_db()
    assert bob_device.last_t == -1  # bob's device was never used
    # alice's own code with bob's id (once django-otp's back-off after the failure has passed): alice, the
    # session's user, is verified, nobody else.
    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        pending.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp), "user_id": bob.pk})
    data = SessionStore(session_key=session_key(pending)).load()
    assert data[SESSION_KEY] == str(alice.pk) and data[sessions_state.STATE_KEY]["s"] == "verified"


def test_a_risky_login_without_any_factor_is_refused_generically(user_factory: Any, browser_at: Any) -> None:
    user_factory("carol")
    client = browser_at(IP_SG_VPS)
    response = client.sign_in("carol")
    assert response.status_code == 302 and response.url == "/authguard/denied/"
    assert SESSION_KEY not in client.session
    assert LoginEvent.objects.get().outcome == Outcome.REFUSED
    api = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    answer = api.post(
        "/api/login",
        json.dumps({"username": "carol", "password": "correct horse battery"}),
        content_type="application/json",
    )
    assert answer.status_code == 403 and answer.json()["status"] == "denied"
    assert "factor" not in answer.json()["message"].lower()  # generic: nothing about why


def test_a_trusted_device_after_step_up_is_remembered_at_the_next_login(
    pending: Client, alice: Any, settings: Any, authenticator: Any
) -> None:
    from .conftest import bind_passkey, passkey_step_up

    settings.AUTHGUARD_TRUSTED_DEVICE_DAYS = 30
    bind_passkey(alice, authenticator)  # only a passkey step-up remembers the device (issue 10, case 56)
    assert passkey_step_up(pending, authenticator).status_code == 200
    device = KnownDevice.objects.get(user=alice)
    assert device.trusted_until > timezone.now() + timedelta(days=29)
    pending.post("/logout/")
    again = pending.sign_in("alice")
    event = LoginEvent.objects.order_by("-id").first()
    assert "remembered_device" in [f["code"] for f in event.findings]
    assert again.status_code == 302


def test_a_revoked_device_is_no_longer_remembered(pending: Client, alice: Any) -> None:
    pending.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    device = KnownDevice.objects.get(user=alice)
    response = pending.post(f"/authguard/security/devices/{device.pk}/revoke/")
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.revoked_at is not None and device.trusted_until is None
    pending.post("/logout/")
    pending.sign_in("alice")
    event = LoginEvent.objects.order_by("-id").first()
    assert "remembered_device" not in [f["code"] for f in event.findings]


def test_revoking_another_users_device_changes_nothing(
    pending: Client, alice: Any, user_factory: Any
) -> None:
    pending.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    bob = user_factory("bob")
    now = timezone.now()
    theirs = KnownDevice.objects.create(
        user=bob, cookie_hash="b" * 64, first_seen_at=now, last_seen_at=now, trusted_until=now + timedelta(1)
    )
    pending.post(f"/authguard/security/devices/{theirs.pk}/revoke/")
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


@pytest.mark.battery(24)
def test_battery_24_a_changed_password_still_needs_the_second_factor(alice: Any, browser_at: Any) -> None:
    start = timezone.now()
    home = browser_at(IP_TOKYO)
    assert home.sign_in("alice").url == "/"  # an ordinary, allowed login builds history
    assert home.get("/").status_code == 200
    # The demo has no reset flow: a reset ends in set_password, like this.
    alice.set_password("a brand new password 2026")
    alice.save()
    # Sessions signed in with the old password are dead (Django's session auth hash).
    assert home.get("/api/portfolio").json()["status"] == "login_required"
    away = browser_at(IP_OSAKA, UA_IPHONE)
    with time_machine.travel(start + timedelta(days=2)):
        response = away.sign_in("alice", "a brand new password 2026")
    assert response.status_code == 302 and response.url.startswith("/authguard/step-up/")
    assert state_of(away)["s"] == "pending"
    assert away.get("/api/portfolio").status_code == 401
    event = LoginEvent.objects.order_by("-id").first()
    assert event.outcome == Outcome.STEP_UP_PENDING and "password_changed" in event.reasons


def test_a_locked_account_is_denied_even_with_the_right_password(alice: Any, browser_at: Any) -> None:
    lockout = pytest.importorskip("authguard.login.lockout")
    for _ in range(20):
        if lockout.is_locked(alice):
            break
        lockout.record_failure(alice, kind="password")
    assert lockout.is_locked(alice)
    client = browser_at(IP_TOKYO)
    response = client.sign_in("alice")
    # Issue 10 (case 59): the login page says the account is locked and how to unlock it, the same for a
    # right and a wrong password (tests/test_battery_sessions.py).
    assert response.status_code == 200 and b"locked" in response.content
    assert SESSION_KEY not in client.session


def test_an_account_locked_while_pending_gets_no_more_guesses(pending: Client, alice: Any) -> None:
    lockout = pytest.importorskip("authguard.login.lockout")
    for _ in range(20):
        if lockout.is_locked(alice):
            break
        lockout.record_failure(alice, kind="totp")
    response = pending.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    # Issue 10 (case 59): the lock ended the session, so the step-up page asks for a sign-in.
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert SESSION_KEY not in pending.session


def test_the_chooser_lists_methods_in_the_configured_order(
    pending: Client, alice: Any, settings: Any
) -> None:
    settings.AUTHGUARD_STEP_UP_METHODS = ["passkey"]  # e.g. the JSDA preset: TOTP is not accepted
    assert factor_methods.step_up_methods(alice) == []
    page = pending.get("/authguard/step-up/")
    assert b"step-up/totp" not in page.content
    assert pending.get("/authguard/step-up/totp/").status_code == 302
    assert pending.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)}).status_code == 302
    assert state_of(pending)["s"] == "pending"


def test_a_verified_session_is_not_sent_through_step_up(alice: Any, browser_at: Any) -> None:
    client = browser_at(IP_TOKYO)
    assert client.sign_in("alice").url == "/"
    assert state_of(client)["s"] == "verified" and state_of(client)["lr"] is True
    response = client.get("/authguard/step-up/?next=/orders/")
    assert response.status_code == 302 and response.url == "/orders/"


def test_a_stepped_up_login_from_a_new_device_notifies_the_customer(alice: Any, browser_at: Any) -> None:
    from authguard.models import Notification

    start = timezone.now()
    home = browser_at(IP_TOKYO)
    assert home.sign_in("alice").url == "/"
    with time_machine.travel(start + timedelta(days=2)):
        away = browser_at(IP_OSAKA, UA_IPHONE)
        assert away.sign_in("alice").url.startswith("/authguard/step-up/")
        assert not Notification.objects.filter(kind="new_device_login").exists()  # not signed in yet
        away.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    notice = Notification.objects.get(kind="new_device_login", user=alice)
    assert notice.context["city"] == "Osaka"


def test_rapid_wrong_codes_are_throttled_with_429(pending: Client, alice: Any) -> None:
    wrong = "000000" if totp_token(alice.totp) != "000000" else "111111"
    for _ in range(app_settings.FACTOR_THROTTLE["session"] + 1):
        assert pending.post("/authguard/step-up/totp/", {"code": wrong}).status_code == 400
    # A browser the account does not know well: after its session's free failures, authguard's back-off
    # refuses the next attempt within the delay, even with the right code.
    throttled = pending.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    assert throttled.status_code == 429 and b"Too many attempts" in throttled.content
    assert state_of(pending)["s"] == "pending"
