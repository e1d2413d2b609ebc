"""Red team round forty-two (b): round forty-one's fixes, attacked by a thief who read them.

The held device (``device_binding._held_without_proof``): a binding a password change or reset, "sign out
everywhere" or the desk's containment ended keeps its device cookie ``bound_missing_proof`` until a passkey
re-binds it or the binding would have expired (400 days). Every reader of the binding state reads it, the
factor throttle's "her browser" (``throttles.established_device``) too: her own browser of months, bound
within the month, becomes a stranger at the factor throttle, and its codes wait in the account's shared
scope, which anyone with her username (the codes unlock) or her password (the step-up) keeps shut. Fixed:

* The factor throttle asks the binding state with ``ended_holds=False``: only a live binding without its
  proof makes her browser a stranger there; a binding a door ended holds the sign-in (a step-up), not her
  scope (``throttles.established_device``).

Real sign-ins through the demo's JSON API and pages, real DBSC keys and proofs (test_sessions_dbsc's
helpers), real TOTP codes, the real middleware, GeoIP test databases, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.conf import app_settings
from authguard.factors import throttles
from authguard.models import AccountLock, DbscSession

from .conftest import IP_OSAKA, UA_CHROME_WIN, of_long_standing, settle_device, totp_token, wrong_code
from .test_battery_sessions import give_recovery_codes
from .test_dbsc_copies_walkarounds import _her_refresh
from .test_dbsc_session_rebind_walkarounds import _her_bound_history
from .test_sessions_dbsc import dbsc_on, urlpatterns  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip", "dbsc_on")]

DEVICE = app_settings.DEVICE_COOKIE_NAME
BOUND = "authguard_bound"
NEW_PASSWORD = "a new and long passphrase"
SIEGE = timedelta(days=2)


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _her_browser_of_months_bound_three_weeks_ago(clock: Any, user_factory: Any, totp_factory: Any) -> tuple:
    """Hanako (authenticator app, printed recovery codes, no passkey), a customer for a year: the browser
    she has used for months was bound to its TPM key three weeks ago (the portal's DBSC rollout, a new TPM
    after a repair, a re-binding after a lost key). Returns (her browser, her key, her binding, her app,
    her recovery codes)."""
    her, key, binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=21)
    hanako = totp.user
    of_long_standing(hanako)
    settle_device(her.cookies[DEVICE].value, hanako, days=120)
    codes = give_recovery_codes(hanako)
    return her, key, binding, totp, codes


def _siege_the_codes_unlock(clock: Any, settings: Any, totp: Any, recovery_code: str) -> list[int]:
    """With her username only, from a new browser in Osaka: lock her account with wrong passwords (anyone
    can), then send a wrong app code (and a made-up recovery code) to the codes unlock each time the wait
    he is told ends, for two days. The status of each answer."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    thief = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    for _ in range(3):
        thief.post("/api/login", {"username": "hanako", "password": "guess"}, content_type="application/json")
    assert AccountLock.objects.get(user=totp.user).is_locked
    body = {"username": "hanako", "totp_code": wrong_code(totp), "recovery_code": recovery_code}
    start, answers = timezone.now(), []
    while True:
        answer = thief.post("/api/unlock/codes", body, content_type="application/json")
        answers.append(answer.status_code)
        if timezone.now() - start >= SIEGE and answer.status_code == 400:
            break
        clock.shift(int(answer.get("Retry-After") or 1) if answer.status_code == 429 else 1)
    clock.shift(600)
    return answers


def _her_codes_unlock(her: Client, totp: Any, recovery_code: str) -> Any:
    her.cookies.pop(BOUND, None)  # her key is gone with the ended binding (its refresh answered 404)
    body = {"username": "hanako", "totp_code": totp_token(totp), "recovery_code": recovery_code}
    return her.post("/api/unlock/codes", body, content_type="application/json")


@pytest.mark.battery(71)
def test_a_reset_within_her_bindings_month_puts_her_browser_of_months_in_the_strangers_scope(
    clock: Any, user_factory: Any, totp_factory: Any, settings: Any
) -> None:
    """Secure: "nobody else sets the customer's wait" (docs/factor-lifecycle.md, red team 2026-12-05): a
    browser the account has used for a month waits in a scope of its own, so whoever has her username
    cannot keep her own browser's codes unlock refused by failing once each time the wait ends; the cost of
    round forty-one's held device (docs/dbsc.md) is a step-up at each sign-in, "a customer without a
    passkey passes a code each time". Hanako's browser of four months was bound three weeks ago. She resets
    her password (she forgot it, or a phishing notice told her to): her binding ends (``sessions_ended``)
    and her browser is held ``bound_missing_proof`` for up to 400 days. The thief has her username only
    (the phishing page's first field). He locks her account with wrong passwords, then sends one wrong code
    to the codes unlock each time the wait ends: her browser of months is now a stranger at the factor
    throttle (``throttles.established_device`` reads the held state), its right codes wait in the account's
    shared scope he keeps shut, and she cannot start the unlock from her own browser."""
    her, _key, binding, totp, codes = _her_browser_of_months_bound_three_weeks_ago(
        clock, user_factory, totp_factory
    )
    her.post("/api/logout")
    clock.shift(timedelta(hours=3))
    hanako = totp.user
    hanako.set_password(NEW_PASSWORD)  # PasswordResetConfirmView, from her own mailbox
    hanako.save()
    assert DbscSession.objects.get(session_id=binding).end_reason == "sessions_ended"
    request = her.get("/api/csrf").wsgi_request
    mine = throttles.established_device(request, user=hanako) is not None

    answers = _siege_the_codes_unlock(clock, settings, totp, codes[2])
    assert {400, 429} <= set(answers), answers  # he was held back, and kept at it
    asked = _her_codes_unlock(her, totp, codes[0])
    assert asked.status_code == 202, (
        f"her browser of four months after her own reset (binding of three weeks ended): her own browser "
        f"at the factor throttle: {mine}; her right codes to the codes unlock: {asked.status_code} "
        f"{asked.content[:200]!r} (Retry-After {asked.get('Retry-After')})"
    )


def test_held_her_browser_of_months_with_its_binding_live_keeps_its_own_scope(
    clock: Any, user_factory: Any, totp_factory: Any, settings: Any
) -> None:
    """The control: the same siege, no reset. Her browser (binding live, its bound cookie refreshed) starts
    the codes unlock at once."""
    her, key, binding, totp, codes = _her_browser_of_months_bound_three_weeks_ago(
        clock, user_factory, totp_factory
    )
    her.post("/api/logout")
    clock.shift(timedelta(hours=3))
    _siege_the_codes_unlock(clock, settings, totp, codes[2])
    assert _her_refresh(her, key, binding).status_code == 200
    body = {"username": "hanako", "totp_code": totp_token(totp), "recovery_code": codes[0]}
    asked = her.post("/api/unlock/codes", body, content_type="application/json")
    assert asked.status_code == 202, (asked.status_code, asked.content[:200])


@pytest.mark.battery(71)
def test_his_sign_out_everywhere_with_one_relayed_code_lets_his_password_keep_her_step_up_refused(
    clock: Any, user_factory: Any, totp_factory: Any, settings: Any
) -> None:
    """Secure: "nobody else sets the customer's wait" (docs/factor-lifecycle.md, red team 2026-12-05:
    whoever has her password must not keep her own browser's step-up refused by failing one code each
    time the wait ends), and a thief with her password and one relayed code must not gain a lasting hold
    over her access. The attacker has her password and one app code relayed by his phishing page. He signs
    in on a browser of his own (allowed at her ISP with her user agent), re-verifies with the relayed code
    and signs out everywhere (round forty-one: a code-verified sign-out ends the bindings of the month):
    her browser of four months, bound three weeks ago, is held ``bound_missing_proof`` for up to 400 days
    and steps up at each sign-in, and at the factor throttle it is a stranger's. Then, with her password
    only, from Osaka, he fails one step-up code each time the wait ends: her own browser's right code is
    refused (429), and she cannot sign in on it at all. (The portal has turned the failure lock off, as in
    tests/test_factor_backoff_walkarounds.py; with it on, the same siege locks her out instead.)"""
    from .conftest import IP_TOKYO_2
    from .test_stepup_security import reverify

    her, _key, binding, totp, _codes = _her_browser_of_months_bound_three_weeks_ago(
        clock, user_factory, totp_factory
    )
    her.post("/api/logout")
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    clock.shift(timedelta(hours=3))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    first = thief.post(
        "/api/login",
        {"username": "hanako", "password": "correct horse battery"},
        content_type="application/json",
    )
    if first.json()["status"] == "step_up_required":
        assert (
            thief.post(
                "/authguard/api/step-up/totp", {"code": totp_token(totp)}, content_type="application/json"
            ).status_code
            == 200
        )
    else:
        assert first.json()["status"] == "ok", first.content
        reverify(thief, totp)  # the code she typed into his page
    ended = thief.post("/authguard/security/sessions/end-others/")
    assert ended.status_code == 302 and "reverify" not in ended["Location"], ended
    assert DbscSession.objects.get(session_id=binding).end_reason == "signed_out_everywhere"
    thief.post("/api/logout")

    # His siege: her password from a new browser in Osaka, a wrong code each time the wait ends.
    osaka = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_WIN)
    osaka.get("/api/csrf")

    def attempt() -> Any:
        answer = osaka.post(
            "/authguard/api/step-up/totp", {"code": wrong_code(totp)}, content_type="application/json"
        )
        if answer.status_code != 401:
            return answer
        signed = osaka.post(
            "/api/login",
            {"username": "hanako", "password": "correct horse battery"},
            content_type="application/json",
        )
        assert signed.json()["status"] == "step_up_required", signed.content
        return osaka.post(
            "/authguard/api/step-up/totp", {"code": wrong_code(totp)}, content_type="application/json"
        )

    start, answers = timezone.now(), []
    while True:
        answer = attempt()
        answers.append(answer.status_code)
        if timezone.now() - start >= SIEGE and answer.status_code == 400:
            break
        clock.shift(int(answer.get("Retry-After") or 1) if answer.status_code == 429 else 1)
    clock.shift(600)
    assert {400, 429} <= set(answers), answers

    her.cookies.pop(BOUND, None)
    signed_in = her.post(
        "/api/login",
        {"username": "hanako", "password": "correct horse battery"},
        content_type="application/json",
    )
    status = signed_in.json()["status"]
    verified = (
        her.post("/authguard/api/step-up/totp", {"code": totp_token(totp)}, content_type="application/json")
        if status == "step_up_required"
        else None
    )
    assert status == "ok" or (verified is not None and verified.status_code == 200), (
        f"her own browser of four months after his code-verified sign-out: sign-in {status}; her right code: "
        f"{verified.status_code if verified is not None else None} "
        f"{verified.content[:160] if verified is not None else b''!r}"
    )
