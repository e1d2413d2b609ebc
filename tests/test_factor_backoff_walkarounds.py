"""The factor's back-off as a weapon (red team, 2026-12-05; each test failed on the code before): django-otp
doubles the wait of the customer's authenticator with every failure and never stops, and the account's
throttle scope was shared by every browser. Whoever had her username (the codes unlock of a locked account)
or her password (the step-up) kept her own right code refused for days with one wrong code each time the
wait ran out. Threat model: the thief has the username or the password and days of time, not her browser."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.conf import app_settings
from authguard.factors import throttles
from authguard.models import AccountLock, FactorRecord, FactorThrottle, KnownDevice, RecoveryCode

from .conftest import (
    HANAKO_PASSWORD,
    IP_OSAKA,
    IP_TOKYO,
    IP_V6_FUKUOKA,
    OrderApi,
    settle_device,
    totp_token,
    wrong_code,
)
from .test_battery_sessions import give_recovery_codes

pytestmark = pytest.mark.django_db

#: How long the thief keeps at it.
SIEGE = timedelta(days=3)


@pytest.fixture
def totp_hanako(hanako: Any, totp_factory: Any) -> Any:
    """The demo customer with an authenticator app and printed recovery codes, no passkey."""
    hanako.totp = totp_factory(hanako)
    return hanako


def her_browser(user: Any) -> OrderApi:
    """The browser she has signed in from for 40 days (allowed: no risk signal scores these logins)."""
    browser = OrderApi(REMOTE_ADDR=IP_TOKYO)
    browser.login("hanako", HANAKO_PASSWORD)
    settle_device(browser.client.cookies["authguard_device"].value, user)
    assert browser.post("/api/logout").status_code == 200
    return browser


def siege(clock: Any, attempt: Callable[[], Any]) -> list[int]:
    """He sends a wrong code each time the wait he was told ends, for three days, and once more just before
    she comes, ten minutes later. The status of each of his answers."""
    start, answers = timezone.now(), []
    while True:
        answer = attempt()
        answers.append(answer.status_code)
        if timezone.now() - start >= SIEGE and answer.status_code == 400:
            break
        clock.shift(int(answer.get("Retry-After") or 1) if answer.status_code == 429 else 1)
    clock.shift(600)
    return answers


def lock_and_siege_the_codes_unlock(
    user: Any, recovery_code: str, clock: Any, settings: Any, *, thief: OrderApi | None = None
) -> list[int]:
    """With her username only: lock her account with wrong passwords (anyone can), then :func:`siege` the
    codes unlock with a wrong authenticator code (and one of her recovery codes, never reached), from
    ``thief`` (a new browser in Osaka by default)."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    thief = thief or OrderApi(REMOTE_ADDR=IP_OSAKA)
    for _ in range(3):
        assert thief.post("/api/login", {"username": user.username, "password": "guess"}).status_code == 401
    assert AccountLock.objects.get(user=user).is_locked
    body = {"username": user.username, "totp_code": wrong_code(user.totp), "recovery_code": recovery_code}
    return siege(clock, lambda: thief.post("/api/unlock/codes", body))


def her_codes_unlock_starts(user: Any, recovery_code: str, cookie: str) -> None:
    """Her right codes, from her own browser (``cookie``: its device cookie), start the unlock."""
    mine = OrderApi(REMOTE_ADDR=IP_TOKYO)
    mine.client.cookies["authguard_device"] = cookie
    body = {"username": user.username, "totp_code": totp_token(user.totp), "recovery_code": recovery_code}
    asked = mine.post("/api/unlock/codes", body)
    assert asked.status_code == 202, (asked.status_code, asked.content[:300])


@contextlib.contextmanager
def her_laptop_and_his_account(brokerage_customer: Any, user_factory: Any) -> Iterator[tuple[Any, ...]]:
    """At the generations tests' START, frozen: hanako (authenticator app, printed recovery codes), the
    browser she has used for a year, and the thief's own account (mallory). Yields (hanako, her recovery
    codes, her browser, the clock)."""
    from . import test_device_cookie_generations as gen
    from .test_battery_sessions import give_recovery_codes

    with time_machine.travel(gen.START, tick=False) as clock:
        hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
        codes = give_recovery_codes(hanako)
        user_factory("mallory", password=HANAKO_PASSWORD, email="mallory@example.jp")
        browser = gen._browser_in_use()
        KnownDevice.objects.filter(user=hanako).update(
            first_seen_at=gen.START - timedelta(days=365), learned_at=gen.START - timedelta(days=365)
        )
        yield hanako, codes, browser, clock


@pytest.mark.battery(71)
def test_a_thief_with_her_username_keeps_her_codes_unlock_refused_for_days(
    totp_hanako: Any, order_api: Any, clock: Any, settings: Any
) -> None:
    """He locks her account with wrong passwords (anyone can), then sends a wrong authenticator code to the
    codes unlock each time the wait ends, for three days: her own right codes from her own browser must
    still start the unlock. Before: django-otp's wait on her app had grown past a year (429)."""
    codes = give_recovery_codes(totp_hanako)
    mine = her_browser(totp_hanako)
    answers = lock_and_siege_the_codes_unlock(totp_hanako, codes[2], clock, settings)
    assert set(answers) == {400, 429} and answers.count(400) >= 15  # he was held back, and kept at it

    body = {"username": "hanako", "totp_code": totp_token(totp_hanako.totp), "recovery_code": codes[0]}
    asked = mine.post("/api/unlock/codes", body)
    assert asked.status_code == 202 and asked.json()["status"] == "unlock_requested", asked.content
    assert AccountLock.objects.get(user=totp_hanako).unlock_due_at is not None
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1  # hers, spent; his guesses none
    totp_hanako.totp.refresh_from_db()
    assert totp_hanako.totp.throttling_failure_count == 0  # his failures never set her app's back-off


@pytest.mark.battery(71)
def test_a_thief_with_her_password_keeps_her_step_up_refused_for_days(
    totp_hanako: Any, new_browser_api: Any, clock: Any, settings: Any
) -> None:
    """With the account lock off (the portal's choice), he signs in with the password and sends a wrong code
    at the step-up each time the wait ends, for three days. Her sign-in from her own browser, stepped up
    too, must take her right code at once. Before: refused (429) by django-otp's back-off and the account's
    throttle scope, both his doing."""
    mine = her_browser(totp_hanako)
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}  # every sign-in steps up
    thief = new_browser_api(IP_OSAKA)

    def attempt() -> Any:
        answer = thief.post("/authguard/api/step-up/totp", {"code": wrong_code(totp_hanako.totp)})
        if answer.status_code != 401:
            return answer
        # His session idled out while he waited: he signs in again, and is stepped up again.
        assert thief.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
        return thief.post("/authguard/api/step-up/totp", {"code": wrong_code(totp_hanako.totp)})

    assert thief.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    answers = siege(clock, attempt)
    assert {400, 429} <= set(answers) and answers.count(400) >= 15

    signed_in = mine.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert signed_in.json()["status"] == "step_up_required", signed_in.content
    verified = mine.post("/authguard/api/step-up/totp", {"code": totp_token(totp_hanako.totp)})
    assert verified.status_code == 200, verified.content
    assert mine.get("/api/portfolio").status_code == 200
    # Nothing of his counted against her authenticator's limit.
    assert FactorRecord.objects.get(device_id=totp_hanako.totp.persistent_id).limit_failures == 0
    assert FactorThrottle.objects.get(key=f"a:{totp_hanako.pk}").failures >= 20  # the strangers' scope: his


@pytest.mark.battery(71)
def test_her_own_failures_still_back_off_but_never_for_days(
    totp_hanako: Any, order_api: Any, clock: Any, settings: Any
) -> None:
    """Her browser (known for 40 days) has its own scope and still waits out its own failures; django-otp's
    doubling stops at ``AUTHGUARD_FACTOR_THROTTLE["max_delay"]`` (an hour) however many there were."""
    mine = her_browser(totp_hanako)
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    assert mine.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}).status_code == 200
    TOTPDevice.objects.filter(pk=totp_hanako.totp.pk).update(
        throttling_failure_count=40, throttling_failure_timestamp=timezone.now()
    )
    refused = mine.post("/authguard/api/step-up/totp", {"code": totp_token(totp_hanako.totp)})
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600  # not 2^39 seconds
    clock.shift(int(refused["Retry-After"]))
    verified = mine.post("/authguard/api/step-up/totp", {"code": totp_token(totp_hanako.totp)})
    assert verified.status_code == 200, verified.content


@pytest.mark.battery(71)
def test_only_a_browser_known_for_a_month_has_a_scope_of_its_own(
    totp_hanako: Any, order_api: Any, clock: Any
) -> None:
    """One allowed sign-in lists a browser; only ``ESTABLISHED_DEVICE_DAYS`` make it hers. A forgotten
    browser goes back to the shared scope."""
    from django.test import RequestFactory

    from authguard.models import KnownDevice

    browser = OrderApi(REMOTE_ADDR=IP_OSAKA)
    browser.login("hanako", HANAKO_PASSWORD)
    assert browser.get("/api/portfolio").status_code == 200  # the browser's next request confirms its cookie
    cookie = browser.client.cookies["authguard_device"].value
    request = RequestFactory().get("/", REMOTE_ADDR=IP_OSAKA)
    request.COOKIES["authguard_device"] = cookie
    assert throttles.established_device(request, user=totp_hanako) is None
    assert throttles.stranger(request, user=totp_hanako)
    clock.shift(timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS, seconds=1))
    assert throttles.established_device(request, user=totp_hanako) is not None
    assert not throttles.stranger(request, user=totp_hanako)
    KnownDevice.objects.filter(user=totp_hanako).update(revoked_at=timezone.now())
    assert throttles.established_device(request, user=totp_hanako) is None


def burst(user: Any, code: str, *, first: Callable[[], None] = lambda: None, count: int = 20) -> list[str]:
    """``count`` attempts at ``code`` sent at once (PostgreSQL, a thread each), each from its own session on
    its own network, each after ``first()``: ``checked`` (a wrong code verified), ``in``, ``throttled`` or
    ``refused:<code>`` for each."""
    import threading

    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.test import RequestFactory

    from authguard.exceptions import AuthguardError, Throttled
    from authguard.factors.totp import verify_totp

    requests = []
    for n in range(count):
        request = RequestFactory().post("/", REMOTE_ADDR=f"198.51.{n}.7")
        request.session = SessionStore()
        request.session.create()
        requests.append(request)
    barrier, results, guard = threading.Barrier(count), [], threading.Lock()

    def attempt(request: Any) -> None:
        try:
            first()
            barrier.wait()  # the requests arrive together
            outcome = "checked" if verify_totp(user, code, request=request) is None else "in"
        except Throttled:
            outcome = "throttled"
        except AuthguardError as error:
            outcome = f"refused:{error.code}"
        finally:
            connection.close()
        with guard:
            results.append(outcome)

    threads = [threading.Thread(target=attempt, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.battery(71)
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_parallel_guesses_gets_one_check_per_opening_of_the_throttle(
    totp_hanako: Any, on_postgres: bool, settings: Any
) -> None:
    """Red team, round five: with his failures no longer on django-otp's back-off, nothing queued a burst.
    The thief (the lock off, the portal's choice) waits for the strangers' scope to open, then sends 20 codes
    at once from 20 sessions on 20 networks: each passed the throttle's check before any was counted, so
    all 20 were guesses. The check and the count now happen under the factor's row lock: one guess."""
    assert on_postgres
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    now = timezone.now()
    FactorThrottle.objects.create(
        key=f"a:{totp_hanako.pk}",
        failures=app_settings.FACTOR_THROTTLE["account"] + 5,
        last_failure_at=now - timedelta(seconds=40),
        blocked_until=now - timedelta(seconds=1),  # the wait just ended
    )
    results = burst(totp_hanako, wrong_code(totp_hanako.totp))
    assert sorted(results) == ["checked"] + ["throttled"] * 19, results


@pytest.mark.battery(71)
@pytest.mark.usefixtures("geoip")
def test_an_old_copy_shown_once_does_not_put_her_browser_in_the_strangers_scope(
    brokerage_customer: Any, user_factory: Any, settings: Any
) -> None:
    """Red team, round six: with an infostealer's old copy of her device cookie (two sign-ins old) and her
    username, the thief signs in once to an account of his own: her id is retired for every account, and her
    browser of a year stopped being hers at the throttle. He locked her account and failed the codes unlock
    each time the strangers' scope opened: her right codes from her own browser were refused (429). The
    browser holding the newest cookie at the retirement keeps its own scope; only the copy is a stranger."""
    from authguard.factors import throttles
    from authguard.models import RecoveryCode

    from . import test_device_cookie_generations as gen

    with her_laptop_and_his_account(brokerage_customer, user_factory) as (hanako, codes, browser, clock):
        stolen = gen._cookie(browser)  # the malware's copy
        gen._later_sign_ins(browser, clock, 2)
        clock.shift(timedelta(days=1))
        assert throttles.established_device(browser.get("/api/csrf").wsgi_request, user=hanako) is not None

        # Once, into his own account: her id is retired everywhere.
        gen._login(gen._copy(stolen, IP_OSAKA), "mallory")
        assert "device_cookie_superseded" in gen._last_event().reasons

        answers = lock_and_siege_the_codes_unlock(hanako, codes[2], clock, settings)
        assert answers.count(429) > 0  # he was held back, and kept at it

        her_codes_unlock_starts(hanako, codes[0], gen._cookie(browser))
        assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1


@pytest.mark.battery(71)
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_step_up_codes_gets_no_guess_past_the_account_lock(
    alice_with_totp: Any, on_postgres: bool, settings: Any
) -> None:
    """Red team, round six: the account lock was checked before the factor's row lock and never again. With
    a lock at 5 failures, 20 wrong codes sent at once from 20 pending sessions all passed the lock check,
    queued on the row lock, and 11 were checked. The lock is checked again under the row lock: once locked,
    a code is refused unchecked."""
    from django.test import RequestFactory

    from authguard.login.stepup import check_step_up_allowed

    assert on_postgres
    # The lock check alone (``carries_factor=False``: no pending session here to judge the place of).
    options = RequestFactory().post("/authguard/api/step-up/passkey/options")
    alice = alice_with_totp
    settings.AUTHGUARD_LOCKOUT_FAILURES = 5
    # What every front end asks first, for each request as it arrives.
    results = burst(
        alice,
        wrong_code(alice.totp),
        first=lambda: check_step_up_allowed(alice, method="totp", request=options, carries_factor=False),
    )
    lock = AccountLock.objects.get(user=alice)
    assert lock.is_locked
    assert results.count("checked") <= app_settings.LOCKOUT_FAILURES, (sorted(results), lock.failures)


@pytest.mark.battery(71)
def test_a_locked_accounts_code_is_refused_unchecked_except_by_the_codes_unlock(
    totp_hanako: Any, settings: Any, clock: Any
) -> None:
    """The lock is checked under the factor's row lock too; the codes unlock alone verifies while locked."""
    from authguard.exceptions import Throttled
    from authguard.factors.totp import verify_totp
    from authguard.login import lockout

    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    assert verify_totp(totp_hanako, wrong_code(totp_hanako.totp)) is None
    assert lockout.is_locked(totp_hanako)
    clock.shift(5)
    with pytest.raises(Throttled):
        verify_totp(totp_hanako, totp_token(totp_hanako.totp))
    assert FactorRecord.objects.get(device_id=totp_hanako.totp.persistent_id).failures == 2  # seen, unchecked
    assert AccountLock.objects.get(user=totp_hanako).failures == 1  # and not counted again
    assert verify_totp(totp_hanako, totp_token(totp_hanako.totp), while_locked=True) == totp_hanako.totp


@pytest.mark.battery(71)
@pytest.mark.usefixtures("geoip")
def test_a_current_copy_laundered_through_his_own_account_is_not_her_browser(
    brokerage_customer: Any, user_factory: Any, settings: Any
) -> None:
    """Red team, round seven: with a current copy of her cookie (taken after her last sign-in) the thief
    signs in once to an account of his own: his browser gets a newer generation of her device id on his row,
    her browser falls behind it and the id is retired. "At least her newest" let his laundered cookie pass
    for her browser of a year: his wrong codes at the codes unlock went onto her authenticator's back-off
    and her own browser's scope. Only her own row's newest cookie (within sibling distance) is hers."""
    from authguard.risk.context import device_id_from_cookie
    from authguard.sessions import device_generations

    from . import test_device_cookie_generations as gen

    with her_laptop_and_his_account(brokerage_customer, user_factory) as (hanako, codes, browser, clock):
        stolen = gen._cookie(browser)  # current: taken after her last sign-in
        clock.shift(timedelta(minutes=5))

        thief = gen._copy(stolen, IP_OSAKA)
        status = gen._login(thief, "mallory")["status"]
        thief.get("/api/portfolio")  # his browser confirms the generation mallory's sign-in gave it
        laundered = gen._cookie(thief)
        assert status == "ok"  # his own account, a browser new to it
        assert device_id_from_cookie(laundered) == device_id_from_cookie(stolen)  # her id, a newer generation
        assert laundered != stolen

        # Her live session is checked a minute later: her cookie is behind mallory's row; the id is retired.
        clock.shift(timedelta(seconds=device_generations.CHECK_SECONDS + 1))
        browser.get("/api/portfolio")
        assert KnownDevice.objects.get(user=hanako).cookie_generation == device_generations.RETIRED

        his = OrderApi(REMOTE_ADDR=IP_OSAKA)
        his.client.cookies[gen.DEVICE] = laundered
        request = his.get("/api/csrf").wsgi_request

        answers = lock_and_siege_the_codes_unlock(hanako, codes[2], clock, settings, thief=his)
        assert answers.count(429) > 0  # he was held back, and kept at it

        her_codes_unlock_starts(hanako, codes[0], gen._cookie(browser))
        assert throttles.established_device(request, user=hanako) is None  # his cookie is not her browser
        assert TOTPDevice.objects.get(pk=hanako.totp.pk).throttling_failure_count == 0
        assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1


@pytest.mark.battery(71)
def test_the_desks_unlock_opens_her_scopes_that_the_thief_kept_shut(
    totp_hanako: Any, order_api: Any, clock: Any, settings: Any, user_factory: Any, totp_factory: Any
) -> None:
    """With her username only he locked her account and kept the strangers' scope shut at the codes unlock.
    She calls the desk, which unlocks the account after checking who she is (four eyes): her right code
    from a browser without a month of standing (a new phone, or her browser's new id after a retirement)
    is taken at once, not refused for the thief's failures. Another account's scope is not touched."""
    codes = give_recovery_codes(totp_hanako)
    other = user_factory("taro")
    FactorThrottle.objects.create(key=f"a:{other.pk}", failures=3, last_failure_at=timezone.now())
    answers = lock_and_siege_the_codes_unlock(totp_hanako, codes[2], clock, settings)
    assert 429 in answers
    assert FactorThrottle.objects.filter(key=f"a:{totp_hanako.pk}").exists()

    desk_unlocks(totp_hanako)

    # Opened, not forgotten: his failures still count, so his next wrong code waits longer than his last.
    hers = FactorThrottle.objects.get(key=f"a:{totp_hanako.pk}")
    assert hers.blocked_until is None and hers.failures > 10
    assert FactorThrottle.objects.filter(key=f"a:{other.pk}").exists()
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}  # her sign-in steps up
    # (On another network than his: every Japanese address of the tests shares one /24, his scope's.)
    new_phone = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA)
    assert new_phone.login("hanako", HANAKO_PASSWORD).json()["status"] == "step_up_required"
    clock.shift(timedelta(seconds=31))
    verified = new_phone.post("/authguard/api/step-up/totp", {"code": totp_token(totp_hanako.totp)})
    assert verified.status_code == 200, verified.content


@pytest.mark.battery(71)
def test_after_the_desks_unlock_his_next_wrong_code_does_not_shut_the_strangers_scope(
    hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """docs/factor-lifecycle.md: after the desk's unlock "her code is taken at once; his next wrong code shuts
    the strangers' scope again". ``clear_throttle`` deleted the account's scope instead of opening it: his
    count started from nothing, with the account's ten free failures. With her username only he locked her
    again (three wrong passwords), and from a network he had not used yet he got ten checked guesses at
    her authenticator in a row, at once, where the open-but-remembered scope would have checked one and shut
    (an hour, as before the unlock). Each desk unlock she asks for (the documented answer to his siege) buys
    him a fresh batch; the desk's own scope clearance should open her way, not reset his count."""
    hanako.totp = totp_factory(hanako)
    codes = give_recovery_codes(hanako)
    answers = lock_and_siege_the_codes_unlock(hanako, codes[2], clock, settings)
    assert 429 in answers
    shut = FactorThrottle.objects.get(key=f"a:{hanako.pk}")
    assert shut.failures > 20 and shut.blocked_until > timezone.now()  # his siege: an hour per guess

    desk_unlocks(hanako)

    # He locks her again with her username, and guesses from a network he has not used before.
    fresh = OrderApi(REMOTE_ADDR="198.51.100.77")
    for _ in range(3):
        assert fresh.post("/api/login", {"username": "hanako", "password": "guess"}).status_code == 401
    assert AccountLock.objects.get(user=hanako).is_locked
    checked = 0
    for _ in range(10):  # ten seconds
        clock.shift(1)
        body = {"username": "hanako", "totp_code": wrong_code(hanako.totp), "recovery_code": codes[2]}
        answer = OrderApi(REMOTE_ADDR="198.51.100.77").post("/api/unlock/codes", body)  # a session each
        if answer.status_code == 400:
            checked += 1
        elif answer.status_code == 429:
            break
    assert checked <= 1, f"{checked} guesses at her authenticator in ten seconds after the desk's unlock"


def desk_unlocks(user: Any) -> None:
    """The desk unlocks ``user``'s account after checking who she is: one staff member asks, another
    approves (four eyes), through the console's lock list."""
    from .console_data import staff_client, staff_user
    from .staff_fixtures import approve_pending
    from .test_admin_orders import act

    url = "/admin/authguard/accountlock/"
    perms = ("authguard.view_accountlock", "authguard.unlock_account")
    lock = AccountLock.objects.get(user=user)
    act(staff_client(staff_user("desk", perms=perms)), url, "unlock", [lock.pk], apply="1", reason="id seen")
    approve_pending(staff_client(staff_user("desk2", perms=perms)))
    assert not AccountLock.objects.get(user=user).is_locked


# -- round fourteen ----------------------------------------------------------------------------------------


@pytest.mark.urls("tests.test_sessions_dbsc")
@pytest.mark.usefixtures("geoip")
@pytest.mark.battery(71)
def test_a_copy_of_a_dbsc_bound_browsers_cookie_without_its_proof_is_not_her_browser_at_the_factor_throttle(
    brokerage_customer: Any, user_factory: Any, settings: Any
) -> None:
    """docs/dbsc.md: a device cookie of a DBSC-bound device presented without a fresh bound cookie "was copied
    off the device": the sign-in says ``device_binding_missing``. docs/dbsc.md (round nine) names DBSC as what
    tells her browser from a copy that holds her newest cookie. But the factor throttle's "her browser"
    (``throttles.established_device``, ``authguard/factors/throttles.py:62-92``) asks only whether the cookie
    is the account's month-old row and holds its newest generation; it never asks DBSC. Her laptop is bound to
    the key in its TPM; the infostealer's copy of her cookie jar (taken after her last sign-in, the bound
    cookie long expired) is, at the codes unlock, *her* browser: his wrong codes are counted in her laptop's
    own scope and on django-otp's back-off of her authenticator app itself (a stranger's never are), so he
    holds back her own laptop's right codes for as long as he keeps at it."""
    from authguard.sessions import dbsc

    from .conftest import IP_OSAKA, OrderApi, wrong_code
    from .test_sessions_dbsc import DeviceKey, register

    settings.AUTHGUARD_DBSC = {"ENABLED": True}
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    with her_laptop_and_his_account(brokerage_customer, user_factory) as (hanako, codes, laptop, clock):
        # Her laptop's TPM key bound its device cookie the day the laptop was new (a browser in use before
        # is bound only after a passkey, round thirty-four): its year of history is dated after the binding.
        year_old = KnownDevice.objects.filter(user=hanako).values_list("first_seen_at", flat=True).get()
        KnownDevice.objects.filter(user=hanako).update(first_seen_at=timezone.now())
        binding = register(laptop, DeviceKey())
        KnownDevice.objects.filter(user=hanako).update(first_seen_at=year_old)
        assert laptop.get("/api/portfolio").status_code == 200
        stolen = laptop.cookies["authguard_device"].value  # the malware's copy (the bound cookie expires)

        clock.shift(timedelta(hours=3))
        his = OrderApi(REMOTE_ADDR=IP_OSAKA)
        his.client.cookies["authguard_device"] = stolen
        request = his.get("/api/csrf").wsgi_request
        assert dbsc.device_binding_state(request, device_cookie_hash=dbsc.request_device_hash(request)) == (
            "bound_missing_proof"
        )
        passes_for_hers = throttles.established_device(request, user=hanako) is not None

        # With her username only: he locks her account, then sends a wrong code to the codes unlock.
        for _ in range(3):
            his.post("/api/login", {"username": "hanako", "password": "guess"})
        assert AccountLock.objects.get(user=hanako).is_locked
        body = {"username": "hanako", "totp_code": wrong_code(hanako.totp), "recovery_code": codes[2]}
        assert his.post("/api/unlock/codes", body).status_code == 400
        back_off = TOTPDevice.objects.get(pk=hanako.totp.pk).throttling_failure_count

    from authguard.models import DbscSession

    assert DbscSession.objects.get(session_id=binding).ended_at is None
    assert not passes_for_hers, (
        f"a copy of her DBSC-bound laptop's cookie, with no proof, is her laptop "
        f"(her app's back-off: {back_off})"
    )
    assert back_off == 0, f"his wrong code went onto her authenticator's own back-off ({back_off})"
