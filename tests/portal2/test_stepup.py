"""Step-up on portal two: a pending session reaches nothing but the step-up pages (HTML, the portal's DRF
API), and real factors verify it: a TOTP code from django-otp's device, recovery codes issued through
authguard's API, a passkey (the demo's twins: tests/test_stepup_flow.py, tests/test_api_stepup.py)."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.models import LoginEvent, Outcome, RiskProfile
from authguard.sessions import state as sessions_state

from ..conftest import (
    IP_SG_VPS,
    IP_TOKYO,
    IP_US_HOME,
    UA_CHROME_WIN,
    UA_IPHONE,
    api_post,
    totp_token,
    wrong_code,
)
from .support import browser, give_passkey, kinds, passkey_step_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """A customer with an authenticator app and no sign-in yet."""
    return alice_with_totp


@pytest.fixture
def pending(alice: Any) -> Client:
    """alice signed in with her password from a hosting network in Singapore: pending."""
    client = browser(IP_SG_VPS, UA_CHROME_WIN)
    response = client.sign_in("alice@example.jp")
    assert response.status_code == 302 and response.url == "/authguard/step-up/?next=/"
    return client


def test_a_pending_session_reaches_only_the_step_up_pages(pending: Client, alice: Any) -> None:
    state = pending.session[sessions_state.STATE_KEY]
    event = LoginEvent.objects.get()
    assert state["s"] == "pending" and state["e"] == event.pk and event.outcome == Outcome.STEP_UP_PENDING
    assert pending.get("/").url == "/authguard/step-up/?next=/"
    for path in ("/api/v1/portfolio", "/api/v1/orders", "/api/v1/balance"):
        answer = pending.get(path)
        assert answer.status_code == 401, path
        assert answer.json()["status"] == "step_up_required" and answer.json()["methods"] == ["totp"]
    refused = pending.post(
        "/api/v1/orders", {"side": "buy", "symbol": "7203", "quantity": 1}, "application/json"
    )
    assert refused.status_code == 401
    chooser = pending.get("/authguard/step-up/?next=/")
    assert chooser.status_code == 200 and b'href="/authguard/step-up/totp/?next=/"' in chooser.content


def test_a_real_totp_code_verifies_the_session_and_a_wrong_one_does_not(
    pending: Client, alice: Any, clock: Any
) -> None:
    wrong = pending.post("/authguard/step-up/totp/", {"code": wrong_code(alice.totp)})
    assert wrong.status_code == 400 and pending.session[sessions_state.STATE_KEY]["s"] == "pending"
    assert LoginEvent.objects.get().outcome == Outcome.STEP_UP_FAILED
    clock.shift(60)  # past django-otp's back-off
    right = pending.post("/authguard/step-up/totp/?next=/", {"code": totp_token(alice.totp), "next": "/"})
    assert right.status_code == 302 and right.url == "/"
    state = pending.session[sessions_state.STATE_KEY]
    assert state["s"] == "verified" and state["sm"] == "totp"
    assert LoginEvent.objects.get().outcome == Outcome.STEP_UP_PASSED
    assert pending.get("/").status_code == 200
    portfolio = pending.get("/api/v1/portfolio")
    assert portfolio.status_code == 200 and portfolio.json()["email"] == "alice@example.jp"
    assert not RiskProfile.objects.filter(user=alice).exists()  # a relayable code teaches nothing


def test_recovery_codes_issued_at_home_step_up_a_risky_login_once_each(alice: Any, clock: Any) -> None:
    home = browser(IP_TOKYO, UA_CHROME_WIN)
    assert home.sign_in("alice@example.jp").url == "/"
    # Adding a factor next to the authenticator app asks for a code from it first.
    assert api_post(home, "api-step-up-totp", {"code": totp_token(alice.totp)}).status_code == 200
    issued = api_post(home, "api-recovery-codes")
    assert issued.status_code == 201, issued.content
    codes = issued.json()["codes"]
    assert len(codes) >= 8
    clock.shift(3 * 24 * 3600)  # days later, past the cooling-off of the new codes

    first = browser(IP_US_HOME, UA_IPHONE)  # abroad on a new phone: stepped up
    assert first.sign_in("alice@example.jp").url.startswith("/authguard/step-up/")
    used = first.post("/authguard/step-up/recovery-code/?next=/", {"code": codes[0].lower(), "next": "/"})
    assert used.status_code == 302 and used.url == "/"
    assert first.session[sessions_state.STATE_KEY]["sm"] == "recovery_code"
    assert "recovery_code_used" in kinds(alice)

    clock.shift(60)
    second = browser(IP_US_HOME, UA_IPHONE)
    second.sign_in("alice@example.jp")
    again = api_post(second, "api-step-up-recovery-code", {"code": codes[0]})
    assert again.status_code == 400 and second.session[sessions_state.STATE_KEY]["s"] == "pending"
    clock.shift(60)
    other = api_post(second, "api-step-up-recovery-code", {"code": codes[1]})
    assert other.status_code == 200 and other.json() == {"status": "ok"}


def test_a_passkey_verifies_a_pending_session(pending: Client, alice: Any) -> None:
    authenticator = give_passkey(alice)
    answer = passkey_step_up(pending, authenticator)
    assert answer.status_code == 200, answer.content
    assert pending.session[sessions_state.STATE_KEY]["sm"] == "passkey"
    assert pending.get("/api/v1/portfolio").status_code == 200


def test_signing_out_while_pending_is_allowed_and_ends_the_session(pending: Client) -> None:
    out = pending.post("/logout/")
    assert out.status_code == 302 and out.url == "/login/"
    assert "_auth_user_id" not in pending.session and sessions_state.STATE_KEY not in pending.session
    assert pending.get("/api/v1/portfolio").status_code in (401, 403)


def test_the_step_up_pages_answer_malformed_codes_with_a_4xx(pending: Client) -> None:
    answers = []
    for code in ("", "x" * 500, "12 34 56 78", "\u0661\u0662\u0663\u0664\u0665\u0666"):
        answers.append(pending.post("/authguard/step-up/totp/", {"code": code}).status_code)
        answers.append(api_post(pending, "api-step-up-totp", {"code": code}).status_code)
    answers.append(api_post(pending, "api-step-up-totp", raw=b"[1, 2]").status_code)
    assert all(status in (400, 429) for status in answers), answers  # 429: the factor's back-off
    assert pending.session[sessions_state.STATE_KEY]["s"] == "pending"
