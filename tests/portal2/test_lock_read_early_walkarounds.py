"""Red team 37 (a): the "lock read too early" window of ``password_login`` (portal two's JSON login and
authguard's token endpoint).

``password_login`` reads the account lock (``attempt.user_and_lock``) *before* ``authenticate()``, notes the
answer on the request (``attempt.note_unlocked``), and ``ThrottleBackend`` then takes the throttle slot and
the account's in-flight place. When the place is free at once (``"taken"``, no wait) the backend trusts the
note and does not read the lock again. A failure of another request that locks the account and gives its place
back between those two moments (the lock read, the place taken) is invisible to this attempt: its password is
checked on a locked account.

The schedule is forced here with Django's database instrumentation (``connection.execute_wrapper``) in the
candidate's own thread: its request is paused for a moment right after the lock query of ``user_and_lock``
returned, as a worker thread is when the scheduler (two CPUs, dozens of worker threads, the GIL) takes it off
the processor there. Nothing of authguard is replaced. On PostgreSQL (each thread its own connection).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, Outcome

from ..conftest import IP_OSAKA, IP_SG_VPS, IP_TOKYO, IP_TOKYO_2, IP_VPN
from .support import api, browser, json_login
from .test_drf_tokens import obtain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("geoip")]

EMAIL = "alice@example.jp"
RIGHT = "correct horse battery"


def nine_failures_two_hours_ago(user_factory: Any) -> Any:
    """Nine wrong guesses two hours ago: one short of the lock (its 24-hour run remembers them), and the
    hourly throttle has forgotten them."""
    alice = user_factory("alice")
    with time_machine.travel(timezone.now() - timedelta(hours=2), tick=False):
        for i in range(9):
            answer = json_login(browser([IP_TOKYO, IP_OSAKA, IP_SG_VPS][i % 3]), EMAIL, f"guess-{i}")
            assert answer.status_code == 401, answer.content
    assert AccountLock.objects.get(user=alice).failures == 9 and not lockout.is_locked(alice)
    return alice


def paused_after_the_lock_read(call: Callable[[], Any], meanwhile: Callable[[], Any]) -> tuple[Any, Any]:
    """Run ``call`` in a thread; when its request has read the account lock (``user_and_lock``'s query
    returned), run ``meanwhile`` to the end in this thread, then let ``call`` go on."""
    read = threading.Event()
    go_on = threading.Event()
    result: list[Any] = [None]

    def pause(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        answer = execute(sql, params, many, context)
        if (
            not read.is_set()
            and "authguard_accountlock" in sql
            and any(frame.name == "user_and_lock" for frame in traceback.extract_stack())
        ):
            read.set()
            go_on.wait(timeout=30)
        return answer

    def run() -> None:
        try:
            with connection.execute_wrapper(pause):
                result[0] = call()
        except Exception as exc:  # reported by the assertions
            result[0] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert read.wait(timeout=30), "the candidate never read the lock"
        other = meanwhile()
    finally:
        go_on.set()
        thread.join(timeout=60)
    return result[0], other


def not_by_risk(user: Any) -> None:
    """Precondition: a right password refused after its check was refused by the lock, not by the risk
    engine (its decision was not "deny": from home it would have been signed in or stepped up)."""
    for event in LoginEvent.objects.filter(user=user, password_ok=True, outcome=Outcome.REFUSED):
        assert event.action != "deny", (event.action, event.score)


def _shape(answer: Any) -> tuple[int, str | None, str | None]:
    body = answer.json()
    return answer.status_code, body.get("status"), body.get("code")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs parallel connections (PostgreSQL)")
def test_a_right_password_read_unlocked_just_before_the_tenth_failure_is_told_apart(
    user_factory: Any,
) -> None:
    """Secure: an attempt whose account locked before its password was checked gets the locked answer
    (403 ``code: locked``), whatever password it carries; a right password is never checked on a locked
    account.

    The gang has only candidate passwords (a list from a breach). Nine guesses two hours ago; now its tenth
    guess (wrong: it locks the account) and its best candidate, sent a moment apart. The candidate's request
    reads "not locked" just before the tenth failure lands; the tenth gives the in-flight place back; the
    candidate takes the free place without waiting, so ``ThrottleBackend`` trusts ``password_login``'s stale
    note and never reads the lock again. Its password is checked on the locked account, found right, and the
    login flow refuses it after the check: 403 "denied" *without* ``code: locked``, where every attempt on the
    locked account gets ``code: locked`` and a wrong one 401. The gang knows her password and waits for her
    unlock (or relays one code).
    """
    alice = nine_failures_two_hours_ago(user_factory)
    candidate, tenth = paused_after_the_lock_read(
        lambda: json_login(browser(IP_TOKYO), EMAIL, RIGHT),
        lambda: json_login(browser(IP_TOKYO_2), EMAIL, "guess-tenth"),
    )
    assert not isinstance(candidate, Exception), candidate
    assert tenth.status_code == 401, tenth.content
    assert lockout.is_locked(alice)
    not_by_risk(alice)
    # Any later attempt on the locked account, right or wrong, is answered:
    locked_answer = _shape(json_login(browser(IP_TOKYO_2), EMAIL, "guess-eleventh"))
    assert locked_answer == (403, "denied", "locked")
    checked_on_locked = LoginEvent.objects.filter(user=alice, password_ok=True, outcome=Outcome.REFUSED)
    assert _shape(candidate) == locked_answer and not checked_on_locked.exists(), (
        f"right password answered {_shape(candidate)} on the locked account; every other attempt "
        f"{locked_answer}; password_ok events on the locked account: {checked_on_locked.count()}"
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs parallel connections (PostgreSQL)")
def test_a_guess_read_unlocked_just_before_the_tenth_failure_is_checked_past_the_lock(
    user_factory: Any,
) -> None:
    """Secure: never more than ``AUTHGUARD_LOCKOUT_FAILURES`` (10) wrong passwords are checked in one run;
    an eleventh attempt is refused unchecked with the locked answer.

    The gang (no password, guessing) fires its tenth and eleventh guesses a moment apart; the eleventh read
    "not locked" before the tenth locked the account and took the place the tenth gave back: it is checked
    (401 "wrong password", an eleventh failure on the lock's run) instead of refused as locked. Repeated at
    every lock cycle, each racing guess is a guess the lock should have stopped.
    """
    alice = nine_failures_two_hours_ago(user_factory)
    eleventh, tenth = paused_after_the_lock_read(
        lambda: json_login(browser(IP_VPN), EMAIL, "guess-eleventh"),
        lambda: json_login(browser(IP_TOKYO_2), EMAIL, "guess-tenth"),
    )
    assert not isinstance(eleventh, Exception), eleventh
    assert tenth.status_code == 401, tenth.content
    assert lockout.is_locked(alice)
    checked = LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count()
    assert checked <= 10 and _shape(eleventh) == (403, "denied", "locked"), (
        f"{checked} wrong passwords checked against a lock of 10; the eleventh answered {_shape(eleventh)}"
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs parallel connections (PostgreSQL)")
def test_the_token_endpoint_tells_a_right_password_apart_on_the_same_window(user_factory: Any) -> None:
    """Secure: as above, at authguard's token endpoint (``/api/v1/auth/token``): a right password read
    unlocked just before the tenth failure is answered as the locked account is (403, ``code: locked``).

    The gang's candidate goes to the token endpoint (which calls the same ``password_login``), the tenth guess
    to the JSON login."""
    alice = nine_failures_two_hours_ago(user_factory)
    candidate, tenth = paused_after_the_lock_read(
        lambda: obtain(api(IP_TOKYO), EMAIL, RIGHT),
        lambda: json_login(browser(IP_TOKYO_2), EMAIL, "guess-tenth"),
    )
    assert not isinstance(candidate, Exception), candidate
    assert tenth.status_code == 401, tenth.content
    assert lockout.is_locked(alice)
    not_by_risk(alice)
    locked_answer = _shape(obtain(api(IP_TOKYO_2), EMAIL, "guess-eleventh"))
    assert _shape(candidate) == locked_answer, (
        f"right password answered {_shape(candidate)}, a wrong one on the locked account {locked_answer}"
    )
    assert not LoginEvent.objects.filter(user=alice, password_ok=True, outcome=Outcome.REFUSED).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs parallel connections (PostgreSQL)")
def test_held_the_html_form_reads_the_lock_after_taking_its_place(user_factory: Any) -> None:
    """The same schedule at Django's ``LoginView`` (no ``password_login``, so no note): the candidate is
    paused after ``ThrottleBackend`` looked the account up, the tenth guess locks the account and gives the
    place back, and the candidate, taking the place, reads the lock again: refused unchecked, as any attempt
    on the locked account (the login form again, no sign-in, no ``password_ok`` event)."""
    alice = nine_failures_two_hours_ago(user_factory)
    read, go_on = threading.Event(), threading.Event()
    result: list[Any] = [None]

    def pause(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        answer = execute(sql, params, many, context)
        stack = traceback.extract_stack()
        if (
            not read.is_set()
            and any(f.name == "user_by_name" for f in stack)
            and any(f.name == "authenticate" and f.filename.endswith("backend.py") for f in stack)
        ):
            read.set()
            go_on.wait(timeout=30)
        return answer

    def run() -> None:
        try:
            with connection.execute_wrapper(pause):
                result[0] = browser(IP_TOKYO).sign_in(EMAIL, RIGHT)
        except Exception as exc:
            result[0] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert read.wait(timeout=30)
        tenth = json_login(browser(IP_TOKYO_2), EMAIL, "guess-tenth")
    finally:
        go_on.set()
        thread.join(timeout=60)
    assert tenth.status_code == 401 and lockout.is_locked(alice)
    candidate = result[0]
    assert not isinstance(candidate, Exception), candidate
    assert candidate.status_code == 200  # the form again
    assert not LoginEvent.objects.filter(user=alice, password_ok=True).exists()
