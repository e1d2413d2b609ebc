"""Red team 35 (e), fixed: the account lock is read before a slow password hash and written after it, so a
burst of parallel guesses all passed the lock check and were all checked (portal two's JSON login). Now one
password check of an account is in flight at a time (``authguard.risk.velocity.take_in_flight``, taken by
``ThrottleBackend``): the others are refused unchecked with the throttle's answer, a right password as a
wrong one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.utils import timezone

from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, Outcome

from ..conftest import IP_DOCOMO, IP_JP_PROXY, IP_OSAKA, IP_SG_VPS, IP_TOKYO, IP_TOKYO_2, IP_US_HOME, IP_VPN
from .support import browser, json_login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("geoip")]

#: Django's default hasher (PBKDF2), with the harness below: what a production portal checks passwords with.
PRODUCTION_HASHERS = [f"{__name__}.InFlightPBKDF2"]
GANG_IPS = [IP_TOKYO, IP_TOKYO_2, IP_OSAKA, IP_DOCOMO, IP_JP_PROXY, IP_SG_VPS, IP_US_HOME, IP_VPN]
EMAIL = "alice@example.jp"


class Burst:
    """The schedule of a burst of parallel requests on a test database that cannot take parallel writers.

    SQLite in memory refuses a second writer ("database table is locked"), so each request holds ``gate``
    for its database work and lets go of it only while its password is hashed, which is where a real server
    (PostgreSQL, several workers) spends the time: every request of the burst is hashing at once (as eight
    requests sent within one PBKDF2 check's time are). ``late`` requests finish hashing after the first
    request of the burst has been answered.
    """

    def __init__(self, size: int) -> None:
        self.gate = threading.Lock()
        self.size = size
        self.arrived = 0  # requests hashing, or answered without a password check
        self.all_arrived = threading.Condition()
        self.first_answered = threading.Event()
        self.local = threading.local()

    def arrive(self) -> None:
        with self.all_arrived:
            self.arrived += 1
            self.all_arrived.notify_all()


BURST: Burst | None = None


class InFlightPBKDF2(PBKDF2PasswordHasher):
    """Django's PBKDF2 hasher, unchanged outside a burst; inside one, scheduled by :class:`Burst`."""

    iterations = 100_000

    def verify(self, password: str, encoded: str) -> bool:
        burst = BURST
        if burst is None:
            return super().verify(password, encoded)
        burst.gate.release()
        try:
            burst.local.hashed = True
            burst.arrive()
            with burst.all_arrived:
                burst.all_arrived.wait_for(lambda: burst.arrived >= burst.size, timeout=30)
            result = super().verify(password, encoded)
            if getattr(burst.local, "late", False):
                burst.first_answered.wait(timeout=30)
            return result
        finally:
            burst.gate.acquire()


def in_parallel(calls: list[Callable[[], Any]], *, late: int | None = None) -> list[Any]:
    """Run every call in its own thread (its own database connection), all hashing at once."""
    global BURST
    burst = BURST = Burst(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        burst.local.late = index == late
        burst.local.hashed = False
        try:
            with burst.gate:
                results[index] = call()
        except Exception as exc:  # reported by the assertions
            results[index] = exc
        finally:
            connection.close()
            if not burst.local.hashed:
                burst.arrive()  # refused before any password check
            burst.first_answered.set()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        BURST = None
    return results


def nine_failures_two_hours_ago(user_factory: Any, settings: Any) -> Any:
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    alice = user_factory("alice")
    with time_machine.travel(timezone.now() - timedelta(hours=2), tick=False):
        for i in range(9):
            answer = json_login(browser(GANG_IPS[i % 3]), EMAIL, f"guess-{i}")
            assert answer.status_code == 401, answer.content
    assert AccountLock.objects.get(user=alice).failures == 9 and not lockout.is_locked(alice)
    return alice


@pytest.mark.battery(59)
def test_a_burst_of_parallel_guesses_is_not_checked_past_the_lock(user_factory: Any, settings: Any) -> None:
    """The gang made nine wrong guesses at alice's password two hours ago (one short of the lock; the hourly
    throttle has forgotten them, the lock's 24-hour run has not). Now it sends eight guesses at once from
    eight addresses. Each request reads "not locked" before the (PBKDF2) password check and writes its
    failure after it, so all eight are checked: seventeen passwords tried against a lock of ten, each
    answered "wrong password" (401), and a lock cycle is worth nearly twice the guesses it should be.

    Secure: an attempt takes its place before its password is checked (as the throttle takes its slot),
    so never more than ten wrong passwords are checked in one run; the rest are refused unchecked, all with
    one answer.
    """
    alice = nine_failures_two_hours_ago(user_factory, settings)
    answers = in_parallel(
        [lambda ip=ip, n=n: json_login(browser(ip), EMAIL, f"burst-{n}") for n, ip in enumerate(GANG_IPS)]
    )
    assert not [a for a in answers if isinstance(a, Exception)], answers
    checked = LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count()
    statuses = [a.status_code for a in answers]
    assert lockout.is_locked(alice)
    assert checked <= 10, f"{checked} wrong passwords checked against a lock of 10; answers {statuses}"
    refused = {
        (a.status_code, a.json().get("status"), a.json().get("code")) for a in answers if a.status_code != 401
    }
    assert statuses.count(401) <= 1 and len(refused) <= 1, statuses


@pytest.mark.battery(59)
def test_a_right_password_racing_the_lock_is_answered_as_a_wrong_one(
    user_factory: Any, settings: Any
) -> None:
    """Same start (nine failures). The gang fires seven wrong guesses and, a moment later, the candidate it
    wants to test. The candidate passes the lock check before any of the seven has finished hashing; when
    its right password is found, the tenth failure has locked the account, and the login flow refuses it
    *after* the check: 403 "denied" ("We could not sign you in from here"), where every wrong password got
    401 "invalid" and every later attempt "locked". The gang has learnt her password on a locked account;
    it waits for her unlock (or phishes her one relayed code) knowing it is right.

    Secure: a password checked after the account locked is answered as a wrong one racing with it would
    be, or never checked; no event records ``password_ok`` on an account that was locked before the check
    finished.
    """
    alice = nine_failures_two_hours_ago(user_factory, settings)

    def candidate() -> Any:
        return json_login(browser(IP_VPN), EMAIL, "correct horse battery")

    calls = [
        lambda ip=ip, n=n: json_login(browser(ip), EMAIL, f"burst-{n}") for n, ip in enumerate(GANG_IPS[:7])
    ]
    answers = in_parallel([*calls, candidate], late=7)
    assert not [a for a in answers if isinstance(a, Exception)], answers
    right, wrong = answers[-1], answers[:-1]
    assert lockout.is_locked(alice)
    signed_in = right.status_code == 200 and right.json()["status"] == "ok"
    if not signed_in:  # the lock came first: the answer must not tell her right password apart
        answered = (right.status_code, right.json().get("status"), right.json().get("code"))
        others = {(a.status_code, a.json().get("status"), a.json().get("code")) for a in wrong}
        assert answered in others and answered[0] != 401, (
            f"right password on the locked account answered {answered}; wrong ones {others}"
        )
        assert not LoginEvent.objects.filter(user=alice, password_ok=True, outcome=Outcome.REFUSED).exists()
