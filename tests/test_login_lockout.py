"""Account lock: consecutive failures lock; only an admin or the customer's own passkey unlocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.exceptions import InvalidCredential
from authguard.login import lockout, unlocking
from authguard.login.lockout import NotLocked, is_locked, record_failure, record_success, unlock
from authguard.login.unlocking import unlock_with_identity_check
from authguard.models import AccountLock, Notification
from tests.conftest import bind_passkey

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """Run (or hold) on-commit callbacks of a test wrapped in a transaction, as a real commit would."""
    return django_capture_on_commit_callbacks


@pytest.fixture
def admin_user(user_factory: Any) -> Any:
    admin = user_factory("desk", is_staff=True)
    admin.user_permissions.add(
        Permission.objects.get(codename="unlock_account"), Permission.objects.get(codename="view_loginevent")
    )
    return admin


def test_tenth_consecutive_failure_locks_once(
    user_factory: Any, admin_user: Any, settings: Any, on_commit: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    alice = user_factory("alice")
    with on_commit(execute=True):
        results = [record_failure(alice, kind="password") for _ in range(9)]
        assert not any(results) and not is_locked(alice)
        assert record_failure(alice, kind="password") is True
        assert is_locked(alice)
        assert record_failure(alice, kind="password") is False  # already locked: no second lock
    kinds = sorted((n.kind, n.staff) for n in Notification.objects.all())
    assert kinds == [("account_locked", False), ("account_locked", True)]
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.jp", "desk@example.jp"]
    lock = AccountLock.objects.get(user=alice)
    assert lock.failures == 11 and lock.lock_count == 1 and "password" in lock.locked_reason


def test_success_resets_the_run_but_not_a_lock(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    alice = user_factory("alice")
    record_failure(alice, kind="password")
    record_failure(alice, kind="totp")
    record_success(alice)
    assert AccountLock.objects.get(user=alice).failures == 0
    assert not record_failure(alice, kind="password") and not record_failure(alice, kind="password")
    assert record_failure(alice, kind="passkey")
    record_success(alice)  # a right password on a locked account changes nothing
    assert is_locked(alice) and AccountLock.objects.get(user=alice).failures == 3


def test_second_factor_failures_count_too(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 4
    alice = user_factory("alice")
    outcomes = [record_failure(alice, kind=k) for k in ("password", "totp", "step_up", "recovery_code")]
    assert outcomes == [False, False, False, True]


def test_locking_can_be_turned_off(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    alice = user_factory("alice")
    assert not any(record_failure(alice, kind="password") for _ in range(30))
    assert not is_locked(alice)


def test_preset_forces_locking_on(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    settings.AUTHGUARD_PRESET = "jsda-2025"
    alice = user_factory("alice")
    assert [record_failure(alice, kind="password") for _ in range(10)][-1] is True


def test_unknown_kind_and_unknown_user(user_factory: Any) -> None:
    with pytest.raises(ValueError, match="unknown failure kind"):
        record_failure(user_factory("alice"), kind="typo")
    assert record_failure(None, kind="password") is False
    assert is_locked(None) is False


def test_admin_unlocks_with_a_reason_and_both_sides_hear(
    user_factory: Any, admin_user: Any, settings: Any, on_commit: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 2
    alice = user_factory("alice")
    record_failure(alice, kind="password")
    record_failure(alice, kind="password")
    with pytest.raises(ValueError, match="reason"):
        unlock(alice, by=admin_user, reason="  ")
    with on_commit(execute=True):
        assert unlock(alice, by=admin_user, reason="customer called, identity checked by phone") is True
    assert not is_locked(alice)
    lock = AccountLock.objects.get(user=alice)
    assert lock.failures == 0 and lock.unlocked_by == admin_user and "phone" in lock.unlock_reason
    unlocked = Notification.objects.filter(kind="account_unlocked")
    assert sorted(n.staff for n in unlocked) == [False, True]
    staff_body = next(m.body for m in mail.outbox if m.to == ["desk@example.jp"])
    assert "staff: desk" in staff_body
    assert unlock(alice, by=admin_user, reason="again") is False  # nothing more to unlock


def test_staff_without_permission_cannot_unlock(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    alice = user_factory("alice")
    clerk = user_factory("clerk", is_staff=True)
    record_failure(alice, kind="password")
    with pytest.raises(PermissionDenied):
        unlock(alice, by=clerk, reason="please")
    assert is_locked(alice)


def test_identity_check_unlocks_with_own_passkey_only(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    alice, mallory = user_factory("alice"), user_factory("mallory")
    record_failure(alice, kind="password")
    totp = TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    with pytest.raises(PermissionDenied):
        unlock_with_identity_check(alice, device=totp, method="totp")  # not an unlock method by default
    not_hers = TOTPDevice.objects.create(user=mallory, name="x", confirmed=True)
    with pytest.raises(PermissionDenied):
        unlock_with_identity_check(alice, device=not_hers, method="passkey")
    unconfirmed = TOTPDevice.objects.create(user=alice, name="y", confirmed=False)
    with pytest.raises(PermissionDenied):
        unlock_with_identity_check(alice, device=unconfirmed, method="passkey")
    assert is_locked(alice)
    # Standing in for a passkey the caller just verified (unlock_with_passkey does the WebAuthn part).
    unlock_with_identity_check(alice, device=totp, method="passkey")
    assert not is_locked(alice)
    assert AccountLock.objects.get(user=alice).unlock_reason == "identity check: passkey"
    with pytest.raises(NotLocked):
        unlock_with_identity_check(alice, device=totp, method="passkey")


def test_burst_of_step_up_failures_warns_once_an_hour(
    user_factory: Any, settings: Any, on_commit: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    settings.AUTHGUARD_STEP_UP_FAILURE_BURST = 3
    alice = user_factory("alice")
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with on_commit(execute=True), time_machine.travel(start, tick=False) as clock:
        record_failure(alice, kind="password")  # passwords are not second factors
        for _ in range(2):
            record_failure(alice, kind="totp")
            clock.shift(timedelta(minutes=5))
        assert not Notification.objects.filter(kind="step_up_failures").exists()
        record_failure(alice, kind="totp")  # the third within the hour
        record_failure(alice, kind="totp")
        assert Notification.objects.filter(kind="step_up_failures", user=alice).count() == 1
        clock.shift(timedelta(hours=2))
        for _ in range(2):
            record_failure(alice, kind="passkey")
        assert Notification.objects.filter(kind="step_up_failures", user=alice).count() == 1
        record_failure(alice, kind="passkey")
    assert Notification.objects.filter(kind="step_up_failures", user=alice).count() == 2
    assert any("failed 3 times" in m.body for m in mail.outbox)


def _unlock_request(rf: Any) -> Any:
    from django.contrib.sessions.backends.db import SessionStore

    request = rf.post("/", HTTP_HOST="localhost:8000")
    request.session = SessionStore()
    return request


def test_own_passkey_unlocks_the_account(
    user_factory: Any, settings: Any, rf: Any, authenticator: Any, on_commit: Any
) -> None:
    """The customer's fresh identity check: a real WebAuthn assertion (SoftAuthenticator, py_webauthn)."""
    from authguard.factors import passkeys

    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    alice = user_factory("alice")
    bind_passkey(alice, authenticator)
    record_failure(alice, kind="password")
    request = _unlock_request(rf)
    options = passkeys.authentication_options(request, purpose="unlock", user=alice)
    with on_commit(execute=True):
        unlocking.unlock_with_passkey(request, user=alice, credential=authenticator.get(options))
    assert not is_locked(alice)
    lock = AccountLock.objects.get(user=alice)
    assert lock.unlock_reason == "identity check: passkey" and lock.unlocked_by is None
    assert Notification.objects.filter(kind="account_unlocked", user=alice).exists()


def test_a_discoverable_passkey_names_and_unlocks_its_own_account(
    user_factory: Any, settings: Any, rf: Any, authenticator: Any, on_commit: Any
) -> None:
    """No password, no username: the customer's own passkey is the identity check."""
    from authguard.factors import passkeys

    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    alice, bob = user_factory("alice"), user_factory("bob")
    bind_passkey(alice, authenticator)
    record_failure(alice, kind="password")
    record_failure(bob, kind="password")
    request = _unlock_request(rf)
    options = passkeys.authentication_options(request, purpose="unlock", user=None)
    with on_commit(execute=True):
        assert unlocking.unlock_with_passkey(request, credential=authenticator.get(options)) == alice
    assert not is_locked(alice) and is_locked(bob)


def test_someone_elses_passkey_does_not_unlock(
    user_factory: Any, settings: Any, rf: Any, authenticator: Any
) -> None:
    from authguard.factors import passkeys

    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    alice, mallory = user_factory("alice"), user_factory("mallory")
    bind_passkey(mallory, authenticator)
    record_failure(alice, kind="password")
    request = _unlock_request(rf)
    options = passkeys.authentication_options(request, purpose="unlock", user=None)
    with pytest.raises(InvalidCredential):
        unlocking.unlock_with_passkey(request, user=alice, credential=authenticator.get(options))
    assert is_locked(alice)
    assert AccountLock.objects.get(user=alice).last_failure_kind == "unlock"


def test_unlock_with_passkey_counts_a_bad_assertion(user_factory: Any, settings: Any, rf: Any) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    alice = user_factory("alice")
    record_failure(alice, kind="password")
    request = _unlock_request(rf)
    with pytest.raises(InvalidCredential):
        unlocking.unlock_with_passkey(request, user=alice, credential={"id": "garbage"})
    assert is_locked(alice)
    assert AccountLock.objects.get(user=alice).last_failure_kind == "unlock"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_failures_count_exactly_and_lock_once(user_factory: Any, settings: Any) -> None:
    """Ten password failures at the same moment, on ten connections: ten counted, one lock, one mail."""
    import threading

    from django.db import connection

    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    alice = user_factory("alice")
    barrier = threading.Barrier(10)
    results: list[bool] = []

    def fail() -> None:
        try:
            barrier.wait()
            results.append(record_failure(alice, kind="password"))
        finally:
            connection.close()

    threads = [threading.Thread(target=fail) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 9 + [True]
    lock = AccountLock.objects.get(user=alice)
    assert lock.failures == 10 and lock.lock_count == 1
    assert Notification.objects.filter(kind="account_locked", user=alice).count() == 1


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        ("AUTHGUARD_LOCKOUT_FAILURES", "ten", "authguard.E030"),
        ("AUTHGUARD_LOCKOUT_FAILURES", 0, "authguard.E030"),
        ("AUTHGUARD_UNLOCK_METHODS", ["email"], "authguard.E031"),
        ("AUTHGUARD_EVENT_RETENTION_DAYS", 0, "authguard.E032"),
        ("AUTHGUARD_STEP_UP_FAILURE_BURST", "3", "authguard.E032"),
        ("AUTHGUARD_NOTIFICATION_LANGUAGE", "tests.nowhere.language", "authguard.E033"),
    ],
)
def test_misconfigured_operations_settings_fail_the_checks(
    settings: Any, setting: str, value: Any, code: str
) -> None:
    """A lock limit that cannot be read would silently leave accounts open: refuse to start instead."""
    from authguard.checks import check_operations

    assert check_operations(None) == []
    setattr(settings, setting, value)
    assert [m.id for m in check_operations(None)] == [code]


def test_the_one_lock_check_fails_closed(user_factory: Any, settings: Any, caplog: Any) -> None:
    """Every entry point asks :func:`lockout.is_locked_fail_closed`: a lock state that cannot be read
    (here: a user whose key the database cannot compare) counts as locked, and says so in the log."""
    from types import SimpleNamespace

    user = user_factory("carol")
    assert lockout.is_locked_fail_closed(user) is False
    AccountLock.objects.create(user=user, locked_at=datetime.now(UTC), failures=10)
    assert lockout.is_locked_fail_closed(user) is True
    assert lockout.is_locked_fail_closed(SimpleNamespace(pk="not-a-key")) is True
    assert "lockout state unavailable" in caplog.text
