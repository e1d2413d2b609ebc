"""Red team 37 (a): under ``ATOMIC_REQUESTS`` (a portal that runs each view in one transaction, a setting
authguard supports: ``authguard.durable``) the account's in-flight place is given back *before* the failure
that locked the account is committed.

``after_failed_login`` counts the failure (``lockout.record_failure``: the lock is written inside the view's
transaction) and gives the place back in its ``finally``, still inside the view; the lock is committed only
when the view returns. The next check of the account, waiting for the place, takes it and reads the lock
again, but reads the committed state: "not locked". Its password is checked on an account whose lock is
already written, and its right password signs in.

The schedule: the portal has its own ``user_login_failed`` receiver (an audit trail, as django-axes and most
brokerages keep one), connected after authguard's; the tenth failure's request is held in it for a moment (a
slow audit write, or the scheduler), after authguard gave the place back and before the view's transaction
commits. Nothing of authguard is replaced. PostgreSQL (parallel connections).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.signals import user_login_failed
from django.db import connection, connections
from django.utils import timezone

from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, Outcome

from ..conftest import IP_OSAKA, IP_SG_VPS, IP_TOKYO, IP_TOKYO_2
from .support import browser, json_login

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("geoip"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs parallel connections (PostgreSQL)"),
]

EMAIL = "alice@example.jp"
RIGHT = "correct horse battery"


def nine_failures_two_hours_ago(user_factory: Any) -> Any:
    alice = user_factory("alice")
    with time_machine.travel(timezone.now() - timedelta(hours=2), tick=False):
        for i in range(9):
            answer = json_login(browser([IP_TOKYO, IP_OSAKA, IP_SG_VPS][i % 3]), EMAIL, f"guess-{i}")
            assert answer.status_code == 401, answer.content
    assert AccountLock.objects.get(user=alice).failures == 9 and not lockout.is_locked(alice)
    return alice


def tenth_failure_held_in_the_portals_audit_receiver(then: Any, *, hold: float = 30) -> tuple[Any, Any]:
    """Send the tenth (wrong) guess in a thread; while its request is in the portal's own
    ``user_login_failed`` receiver (authguard's ran: the lock is written, the place given back; the view's
    transaction not yet committed), run ``then`` here; then let the tenth finish."""
    in_receiver, go_on = threading.Event(), threading.Event()
    tenth_thread: list[threading.Thread] = []
    result: list[Any] = [None]

    def audit(sender: Any, credentials: Any, request: Any = None, **kwargs: Any) -> None:
        if threading.current_thread() is tenth_thread[0]:
            in_receiver.set()
            go_on.wait(timeout=hold)

    def run() -> None:
        try:
            result[0] = json_login(browser(IP_TOKYO_2), EMAIL, "guess-tenth")
        except Exception as exc:
            result[0] = exc
        finally:
            connection.close()

    user_login_failed.connect(audit, dispatch_uid="portal.audit")
    thread = threading.Thread(target=run)
    tenth_thread.append(thread)
    try:
        thread.start()
        assert in_receiver.wait(timeout=30), "the tenth guess never failed"
        other = then()
    finally:
        go_on.set()
        thread.join(timeout=60)
        user_login_failed.disconnect(dispatch_uid="portal.audit")
    return result[0], other


@pytest.mark.usefixtures("atomic_requests")
def test_her_right_password_signs_in_on_an_account_the_tenth_failure_locked(user_factory: Any) -> None:
    """Secure: once the tenth failure locked the account, no password of the account is checked (the next
    check waits for the failure to be *committed* before it reads the lock), so no sign-in on it.

    The gang (candidate passwords only, nine failures two hours ago) sends its tenth guess and its candidate
    through the portal's sign-in form a moment apart. The candidate takes the place the tenth gave back,
    reads the lock (the committed state: not locked), is checked, and its right password is signed in (302,
    event ``signed_in``) on the account the tenth had locked. The session is refused from its next request
    (the lock is committed by then), but the answer told the gang her password, past the lock. (With a slow
    hasher the tenth commits during the candidate's check: then the candidate is refused after the check,
    "denied", where every attempt on the locked account gets the locked page: the same oracle.)
    """
    alice = nine_failures_two_hours_ago(user_factory)
    gang = browser(IP_TOKYO)
    tenth, candidate = tenth_failure_held_in_the_portals_audit_receiver(lambda: gang.sign_in(EMAIL, RIGHT))
    assert not isinstance(tenth, Exception), tenth
    assert tenth.status_code == 401 and lockout.is_locked(alice)
    checked = LoginEvent.objects.filter(user=alice, password_ok=True)
    signed_in = candidate.status_code == 302
    balance = gang.get("/api/v1/portfolio")  # after the lock committed: does the session still serve?
    assert not signed_in and not checked.exists(), (
        f"right password checked on the locked account: answered {candidate.status_code} "
        f"{getattr(candidate, 'url', '')}; events {list(checked.values_list('outcome', flat=True))}; "
        f"the session then asked for the portfolio: {balance.status_code} {balance.content[:80]!r}"
    )


@pytest.mark.usefixtures("atomic_requests")
def test_an_eleventh_guess_is_checked_on_an_account_the_tenth_failure_locked(user_factory: Any) -> None:
    """Secure: never more than ten wrong passwords are checked in one lock run, whatever the portal's
    transactions; the eleventh is refused unchecked.

    The eleventh guess (the sign-in form, which reads the lock after taking the place) takes the place the
    tenth gave back before the tenth's lock committed: it is checked (a wrong password), then counted on the
    lock once the tenth commits. (The tenth is held for two seconds only: the eleventh's count waits for the
    tenth's row lock.)"""
    alice = nine_failures_two_hours_ago(user_factory)
    tenth, eleventh = tenth_failure_held_in_the_portals_audit_receiver(
        lambda: browser(IP_TOKYO).sign_in(EMAIL, "guess-eleventh"), hold=2
    )
    assert not isinstance(tenth, Exception), tenth
    assert not isinstance(eleventh, Exception), eleventh
    assert tenth.status_code == 401 and lockout.is_locked(alice)
    checked = LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count()
    assert checked <= 10, f"{checked} wrong passwords checked against a lock of 10"


CHECKS: list[str] = []


class OrderedMD5(MD5PasswordHasher):
    """The portal's (test) hasher, unchanged, noting the order of the password checks it makes."""

    def verify(self, password: str, encoded: str) -> bool:
        CHECKS.append(password)
        return super().verify(password, encoded)


def _right_passwords_checked_past_the_lock(user_factory: Any, settings: Any, cycles: int) -> int:
    """Lock cycles (nine failures two hours old; the tenth guess and, 4 ms apart, twelve copies of her right
    password through the sign-in form, real threads, nothing held) in which a copy's password was checked
    after the tenth's: one password check of the account at a time, and the tenth's failure locks it, so
    any check after it is a check past the lock."""
    import time

    from django.core.cache import cache

    settings.PASSWORD_HASHERS = [f"{__name__}.OrderedMD5"]
    alice = user_factory("alice")
    hits = 0
    for _cycle in range(cycles):
        cache.clear()
        AccountLock.objects.filter(user=alice).delete()
        AccountLock.objects.create(
            user=alice, failures=9, last_failure_at=timezone.now() - timedelta(hours=2)
        )
        CHECKS.clear()

        def run(ip: str, password: str, delay: float) -> None:
            time.sleep(delay)
            try:
                browser(ip).sign_in(EMAIL, password)
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(IP_TOKYO_2, "guess-tenth", 0.0))]
        threads += [threading.Thread(target=run, args=(IP_TOKYO, RIGHT, 0.004 * (k + 1))) for k in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if "guess-tenth" not in CHECKS:
            continue  # the tenth was throttled among the burst: nothing locked this cycle
        assert lockout.is_locked(alice)
        if RIGHT in CHECKS[CHECKS.index("guess-tenth") + 1 :]:
            hits += 1
    return hits


@pytest.mark.usefixtures("atomic_requests")
def test_without_any_hold_a_right_password_is_checked_past_the_lock_under_atomic_requests(
    user_factory: Any, settings: Any
) -> None:
    """Secure: no password is checked after the lock was written, however the requests are timed.

    No receiver, nothing held: real threads and the portal's sign-in form under ``ATOMIC_REQUESTS`` (the
    password checks' order read from the portal's hasher). Measured on this machine: 6 to 7 lock cycles in 40
    let a right password be checked after the tenth failure (signed in, or refused after the check).
    Probabilistic: fails almost always, never wrongly."""
    hits = _right_passwords_checked_past_the_lock(user_factory, settings, 40)
    assert hits == 0, f"a right password was checked past the lock in {hits} of 40 lock cycles"


def test_held_without_atomic_requests_the_form_never_checks_past_the_lock(
    user_factory: Any, settings: Any
) -> None:
    """The same stream with the portal's default (autocommit): the lock is committed before the place is
    given back, and a copy that took it reads it (0 cycles in 40 measured)."""
    saved = connections.settings["default"]["ATOMIC_REQUESTS"]
    assert not saved
    assert _right_passwords_checked_past_the_lock(user_factory, settings, 40) == 0
