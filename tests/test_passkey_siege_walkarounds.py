"""A thief with her password keeps her *passkey* out (red team, round forty-three; each attack test failed on
the code before). docs/factor-lifecycle.md ("Nobody else sets the customer's wait") said of the strangers'
account scope (``a:<account>``) that whoever has her password can keep it shut at the step-up "(a passkey
is not affected)", and docs/dbsc.md the same of a locked account's scope. But ``verify_authentication``
asked the same throttle as a code: the thief failed a code at the step-up of his own session each time the
wait ended, and she came with her passkey from a browser without a month of standing (her new phone; her
browser's new id after a retirement): her passkey step-up, after her own passkey unlock too, and her
passkey's confirmation of a held sale were answered 429 for as long as he kept at it. A signature cannot be
guessed, and passkey failures never disable the passkey: nothing was gained by holding one back. Threat
model: the thief has her password (or only her username), days of time, not her passkey.

Fixed:

* a passkey assertion waits only on its own session's scope (``throttles.check_passkey_throttle``), and a
  failed one counts there only (``note_passkey_failure``), never in the account's or the network's scope,
  where it would hold back her codes; the views still check the account lock first and count the failure
  towards it;
* an unsigned assertion learns nothing of her passkey: its sign count is judged only once the signature
  verified (py_webauthn judges it before: a made-up counter was answered ``sign_count`` or ``signature``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from authguard.models import AccountLock, FactorThrottle

from .conftest import (
    HANAKO_PASSWORD,
    IP_OSAKA,
    IP_V6_FUKUOKA,
    OrderApi,
    bind_passkey,
    totp_token,
    wrong_code,
)

pytestmark = pytest.mark.django_db

SIEGE = timedelta(days=2)


@pytest.fixture
def passkey_hanako(brokerage_customer: Any, authenticator: Any) -> Any:
    """hanako with her passkey (synced, in ``authenticator``) and an authenticator app, both long-standing."""
    user = brokerage_customer(holdings={"7203": 100, "9432": 2000}, passkey=authenticator, totp=True)
    return user


def _step_up_siege(user: Any, thief: OrderApi, clock: Any) -> list[int]:
    """He sends a wrong code at the step-up of his own password session each time the wait he was told
    ends, for two days (signing in again when his session idled out). The status of each of his answers."""

    def attempt() -> Any:
        answer = thief.post("/authguard/api/step-up/totp", {"code": wrong_code(user.totp)})
        if answer.status_code != 401:
            return answer
        assert thief.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
        return thief.post("/authguard/api/step-up/totp", {"code": wrong_code(user.totp)})

    assert thief.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    start, answers = timezone.now(), []
    while True:
        answer = attempt()
        answers.append(answer.status_code)
        if timezone.now() - start >= SIEGE and answer.status_code == 400:
            break
        clock.shift(int(answer.get("Retry-After") or 1) if answer.status_code == 429 else 1)
    clock.shift(60)  # she comes a minute after his last wrong code
    return answers


@pytest.mark.battery(71)
def test_a_thief_with_her_password_keeps_her_passkey_step_up_refused(
    passkey_hanako: Any,
    authenticator: Any,
    new_browser_api: Callable[..., OrderApi],
    clock: Any,
    settings: Any,
) -> None:
    """Secure: a passkey step-up is not held back by a throttle scope the thief fills (the docs: "a passkey
    is not affected"). With the lock off (the portal's choice, as in test_factor_backoff_walkarounds), he
    keeps the strangers' account scope shut with one wrong code an hour. Her sign-in from her new phone is
    stepped up; her own passkey is refused 429 for up to an hour, again after every one of his codes."""
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}  # every sign-in steps up
    thief = new_browser_api(IP_OSAKA)
    answers = _step_up_siege(passkey_hanako, thief, clock)
    assert 429 in answers
    assert FactorThrottle.objects.get(key=f"a:{passkey_hanako.pk}").blocked_until > timezone.now()

    phone = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA)  # another network than his
    assert phone.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    options = phone.post("/authguard/api/step-up/passkey/options")
    assert options.status_code == 200, options.content
    verified = phone.post("/authguard/api/step-up/passkey", authenticator.get(options.json()))
    assert verified.status_code == 200, (verified.status_code, verified.content[:300])


@pytest.mark.battery(71)
def test_with_the_lock_on_her_passkey_unlock_leaves_her_passkey_step_up_refused(
    passkey_hanako: Any, authenticator: Any, order_api: Any, clock: Any, settings: Any
) -> None:
    """Secure: after she unlocks her account with her passkey, her passkey step-up is taken. With the lock on
    (10 failures), the thief's wrong step-up codes lock her account (anyone can: a known limit); she
    unlocks with her passkey, at once, as the docs promise. But the unlock leaves the strangers' account
    scope he filled shut, and her passkey at the step-up of her new phone's sign-in waits on it."""
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    phone = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA)

    def passkey_unlock() -> None:
        options = phone.post("/authguard/api/unlock/options").json()
        unlocked = phone.post("/authguard/api/unlock", authenticator.get(options))
        assert unlocked.status_code == 200, unlocked.content

    locks, answer = 0, None
    while locks < 3 or answer is None or answer.status_code != 400:
        if AccountLock.objects.filter(user=passkey_hanako, locked_at__isnull=False).exists():
            locks += 1
            passkey_unlock()  # she unlocks at once with her passkey, each time
        answer = thief.post("/authguard/api/step-up/totp", {"code": wrong_code(passkey_hanako.totp)})
        if answer.status_code == 401:  # no pending session (never signed in, or ended by the lock)
            assert thief.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
            answer = thief.post("/authguard/api/step-up/totp", {"code": wrong_code(passkey_hanako.totp)})
        if answer.status_code == 429:
            clock.shift(int(answer.get("Retry-After") or 1))
            continue
        clock.shift(1)
    clock.shift(60)  # she comes a minute after his last wrong code
    if AccountLock.objects.filter(user=passkey_hanako, locked_at__isnull=False).exists():
        passkey_unlock()
    assert locks >= 2
    assert FactorThrottle.objects.get(key=f"a:{passkey_hanako.pk}").blocked_until > timezone.now()

    assert phone.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    options = phone.post("/authguard/api/step-up/passkey/options")
    assert options.status_code == 200, options.content
    verified = phone.post("/authguard/api/step-up/passkey", authenticator.get(options.json()))
    assert verified.status_code == 200, (verified.status_code, verified.content[:300])


@pytest.mark.battery(71)
def test_a_thief_with_her_password_keeps_her_passkey_from_confirming_her_held_sale(
    passkey_hanako: Any,
    authenticator: Any,
    new_browser_api: Callable[..., OrderApi],
    clock: Any,
    settings: Any,
) -> None:
    """Secure: her own passkey confirms her held order, whatever a stranger failed elsewhere. She signs in
    on her new phone with her passkey alone (the usernameless sign-in, which no throttle holds), and sells
    all her holdings in a falling market; the guard holds the sale for her passkey, as it should. Her
    passkey's confirmation waits on the strangers' account scope that the thief, with her password only,
    keeps shut with one wrong step-up code an hour: 429, for as long as he keeps at it."""
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}  # a new phone on a new network: stepped up
    thief = new_browser_api(IP_OSAKA)
    _step_up_siege(passkey_hanako, thief, clock)

    phone = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA)
    options = phone.post("/authguard/api/login/passkey/options")
    signed_in = phone.post("/authguard/api/login/passkey", authenticator.get(options.json()))
    assert signed_in.status_code == 200, signed_in.content
    assert phone.get("/api/portfolio").status_code == 200
    phone.token = phone.get("/api/csrf").json()["csrf_token"]  # rotated by the sign-in
    sells = [phone.order("sell", symbol, quantity) for symbol, quantity in (("9432", 2000), ("7203", 100))]
    held = [answer.json() for answer in sells if answer.status_code == 202]
    assert held, [answer.content[:200] for answer in sells]
    assert "passkey" in held[0]["confirmation"]["methods"]

    confirmed = phone.confirm_with_passkey(held[0]["confirmation"]["id"], authenticator)
    assert confirmed.status_code == 200, (confirmed.status_code, confirmed.content[:300])


@pytest.mark.battery(71)
def test_with_only_her_username_her_passkey_unlock_is_followed_by_a_refused_passkey_step_up(
    passkey_hanako: Any, authenticator: Any, order_api: Any, clock: Any, settings: Any
) -> None:
    """Secure: once her passkey unlocked her account, the same passkey steps her sign-in up. With only her
    username he locks the account with wrong passwords and keeps the strangers' scope shut with wrong codes
    at the codes unlock (test_factor_backoff_walkarounds' siege). Her passkey unlock works at once, as
    promised; the sign-in it sends her to, from her new phone, refuses that very passkey (429, up to an
    hour), and by then he can lock the account again."""
    from .test_battery_sessions import give_recovery_codes
    from .test_factor_backoff_walkarounds import lock_and_siege_the_codes_unlock

    codes = give_recovery_codes(passkey_hanako)
    answers = lock_and_siege_the_codes_unlock(passkey_hanako, codes[2], clock, settings)
    assert 429 in answers

    phone = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA)
    options = phone.post("/authguard/api/unlock/options").json()
    unlocked = phone.post("/authguard/api/unlock", authenticator.get(options))
    assert unlocked.status_code == 200, unlocked.content  # her passkey unlock: at once

    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}  # her new phone is stepped up
    assert phone.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    options = phone.post("/authguard/api/step-up/passkey/options")
    assert options.status_code == 200, options.content
    verified = phone.post("/authguard/api/step-up/passkey", authenticator.get(options.json()))
    assert verified.status_code == 200, (verified.status_code, verified.content[:300])


def test_held_her_passkey_unlock_works_under_the_username_siege_and_notices_stay_few(
    passkey_hanako: Any, authenticator: Any, order_api: Any, clock: Any, settings: Any
) -> None:
    """With only her username he locks her account and sends wrong codes to the codes unlock for two days:
    her usernameless passkey unlock still works at once, and her mailbox gets at most one failures warning
    an hour (plus the lock notice), not one per wrong code."""
    from authguard.models import Notification

    from .test_battery_sessions import give_recovery_codes
    from .test_factor_backoff_walkarounds import lock_and_siege_the_codes_unlock

    codes = give_recovery_codes(passkey_hanako)
    answers = lock_and_siege_the_codes_unlock(passkey_hanako, codes[2], clock, settings)
    assert 429 in answers
    to_her = Notification.objects.filter(user=passkey_hanako)
    kinds = list(to_her.values_list("kind", flat=True))
    assert kinds.count("step_up_failures") <= 3 * 24 + 1
    phone = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA)
    options = phone.post("/authguard/api/unlock/options").json()
    unlocked = phone.post("/authguard/api/unlock", authenticator.get(options))
    assert unlocked.status_code == 200, unlocked.content
    assert not AccountLock.objects.get(user=passkey_hanako).is_locked


# -- what a bad signature may still do ---------------------------------------------------------------------

BAD_SIGNATURE = b"\x30\x06\x02\x01\x01\x02\x01\x01"


@pytest.mark.battery(29)
def test_an_unsigned_assertion_does_not_learn_her_passkeys_sign_count(
    hanako: Any, order_api: Any, settings: Any, caplog: Any
) -> None:
    """Secure: a bad signature learns nothing of her passkey. Her security key counts its uses (10 so far).
    py_webauthn judges the counter before the signature: the thief, in his password session, sent unsigned
    assertions with made-up counters and was told ``sign_count`` (not above hers) or ``signature`` (above):
    a binary search found how often she uses her key, and every probe below it logged a cloned-authenticator
    warning for the desk. His session's own scope slows him, not the probe's answer."""
    from authguard.testing import SoftAuthenticator

    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    key = SoftAuthenticator(
        origin="http://localhost:8000",
        rp_id="localhost",
        sign_count=10,
        backup_eligible=False,
        backup_state=False,
    )
    bind_passkey(hanako, key)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    answers = []
    with caplog.at_level(logging.WARNING, logger="authguard.factors.passkeys"):
        for counter in (3, 10, 11, 500):
            if thief.post("/authguard/api/step-up/passkey/options").status_code != 200:
                assert thief.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
            options = thief.post("/authguard/api/step-up/passkey/options").json()
            bad = key.get(options, sign_count=counter, signature=BAD_SIGNATURE)
            answers.append(thief.post("/authguard/api/step-up/passkey", bad).json().get("code"))
    assert answers == ["signature"] * 4, answers
    assert not [r for r in caplog.records if "sign count" in r.getMessage()]

    # A signed assertion whose counter went backwards is still refused, and only then said so.
    mine = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA)
    assert mine.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    options = mine.post("/authguard/api/step-up/passkey/options").json()
    refused = mine.post("/authguard/api/step-up/passkey", key.get(options, sign_count=9))
    assert refused.status_code == 400 and refused.json()["code"] == "sign_count"
    options = mine.post("/authguard/api/step-up/passkey/options").json()
    assert mine.post("/authguard/api/step-up/passkey", key.get(options)).status_code == 200


def test_held_bad_signatures_wait_in_their_own_session_and_fill_no_scope_her_codes_share(
    passkey_hanako: Any, authenticator: Any, order_api: Any, clock: Any, settings: Any
) -> None:
    """His bad assertions still wait out their own session's back-off (5 free, then 429), and still count
    towards the account lock; they never fill the account's or the network's scope, where her codes from a
    new browser would wait on them."""
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}
    settings.AUTHGUARD_LOCKOUT_FAILURES = 50
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    assert thief.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    codes = []
    for _ in range(7):
        options = thief.post("/authguard/api/step-up/passkey/options").json()
        bad = authenticator.get(options, signature=BAD_SIGNATURE)
        codes.append(thief.post("/authguard/api/step-up/passkey", bad).json().get("code"))
    assert codes[:5] == ["signature"] * 5 and codes[-1] == "throttled", codes
    assert AccountLock.objects.get(user=passkey_hanako).failures == 6
    keys = list(FactorThrottle.objects.values_list("key", flat=True))
    assert keys and all(key.startswith("s:") for key in keys), keys

    phone = OrderApi(REMOTE_ADDR=IP_OSAKA)  # her new phone on his network: her code is taken at once
    assert phone.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    taken = phone.post("/authguard/api/step-up/totp", {"code": totp_token(passkey_hanako.totp)})
    assert taken.status_code == 200, taken.content
