"""Account lock: consecutive authentication failures lock the account; the lock protects the customer.

* :func:`record_failure` counts a failed password or second factor; the ``AUTHGUARD_LOCKOUT_FAILURES``-th
  failure of a run locks the account (``None`` turns locking off; the JSDA preset forces it on). A run
  restarts when its last failure is older than ``AUTHGUARD_LOCKOUT_FAILURE_WINDOW_HOURS``.
* Locking ends **every** session of the account, wherever it is (the thief's open one included), so a
  lock is never a thief's weapon against a customer while he keeps trading (battery case 59).
* :func:`record_success` resets the run. The login flow calls it only after a verification a thief with
  the password and one relayed code cannot make (a passkey that is not cooling off); a password-only
  sign-in never resets it (issue 10, item 1).
* :func:`is_locked` is what the login flow asks. A locked account gets the same answer for a right and a
  wrong password (the password is not even checked) and is told how to get back in.

The ways back in:

* :func:`unlock_with_passkey` / :func:`unlock_with_identity_check`: the customer's own passkey
  (``AUTHGUARD_UNLOCK_METHODS``), at once. A factor still cooling off (added recently) cannot unlock.
* :func:`request_unlock_with_codes`: a code from the authenticator app *plus* a recovery code, then a
  waiting period (``AUTHGUARD_UNLOCK_WAIT_HOURS``, default 24 h) during which the customer is notified
  and can cancel (:func:`cancel_unlock_request`, with the reference in that message). A thief with the
  password and one relayed code has neither the second code nor the customer's mailbox.
* :func:`unlock`: the desk (needs ``authguard.unlock_account``).

The desk can also lock an account itself (:func:`lock`, needs ``authguard.contain_account``; the security
console's containment, issue 16): the same lock, with the same ways back, ending every session and API
token (:func:`end_all_access`).

Locking and unlocking notify both the customer and staff (:mod:`authguard.notifications.outbox`). Several
second-factor failures within an hour warn the customer (``step_up_failures``) even before a lock.

Why a hard lock rather than only a throttle: a phished password in an attacker's hands should not buy
unlimited guesses at the second factor; the JSDA's 2025 guidelines ask for automatic locking.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import router, transaction

from authguard import clock, durable
from authguard.conf import app_settings
from authguard.exceptions import AuthguardError
from authguard.models import AccountLock
from authguard.notifications.outbox import notify_customer, notify_staff
from authguard.sessions import dbsc_moves
from authguard.sessions.state import end_all_sessions, revoke_api_tokens

logger = logging.getLogger(__name__)

#: Failure kinds the callers report. ``password`` comes from the login flow, the others from factors.
PASSWORD = "password"
SECOND_FACTOR_KINDS = frozenset({"totp", "passkey", "recovery_code", "step_up", "confirmation", "unlock"})
FAILURE_KINDS = SECOND_FACTOR_KINDS | {PASSWORD}
#: The permission an admin needs to unlock an account.
UNLOCK_PERMISSION = "authguard.unlock_account"
#: The method name of the self-service unlock with an authenticator code plus a recovery code.
CODES_METHOD = "totp+recovery_code"
#: The permission an admin needs to lock an account, end its sessions or force a password reset.
CONTAIN_PERMISSION = "authguard.contain_account"


class NotLocked(AuthguardError):
    """There is nothing to unlock (or no unlock request to cancel)."""

    default_code = "not_locked"


class UnlockUnavailable(AuthguardError):
    """This way back is not open to this account (turned off, or the account lacks the factors)."""

    default_code = "unlock_unavailable"


@dataclass(frozen=True)
class UnlockRequest:
    """A self-service unlock waiting for its time: when it takes effect, and the reference that cancels it."""

    due_at: datetime
    reference: str


def _account_context(user: Any, now: datetime) -> dict[str, Any]:
    return {"account": user.get_username(), "account_id": user.pk, "time": now}


def _window() -> timedelta:
    return timedelta(hours=app_settings.LOCKOUT_FAILURE_WINDOW_HOURS)


def record_failure(user: Any, *, kind: str) -> bool:
    """Count one failed authentication of ``user``; True when this failure locked the account.

    ``kind`` is one of :data:`FAILURE_KINDS`. Safe under concurrency: the user's lock row is locked for
    the count, so N parallel failures count N and lock exactly once. Locking ends every session of the
    account (:func:`authguard.sessions.state.end_all_sessions`) in the same transaction.
    """
    if kind not in FAILURE_KINDS:
        raise ValueError(f"unknown failure kind {kind!r}; one of {sorted(FAILURE_KINDS)}")
    if user is None or user.pk is None:
        return False  # an unknown username: nothing to lock (the login throttle handles floods)
    locked_now = _count_failure(user, kind=kind)
    # SECURITY: a portal view answering a failure with an exception (SimpleJWT's, dj-rest-auth's, DRF's own
    # token serializers; a step-up endpoint raising ValidationError) rolled the count back under
    # ATOMIC_REQUESTS: unlimited guesses (red team, rounds forty-one and forty-two).
    durable.outlive_rollback(
        functools.partial(_count_failure, user, kind=kind), using=router.db_for_write(AccountLock)
    )
    return locked_now


def _count_failure(user: Any, *, kind: str) -> bool:
    """:func:`record_failure`'s count, in a transaction of its own (a savepoint in the caller's)."""
    now = clock.now()
    limit = app_settings.LOCKOUT_FAILURES
    with transaction.atomic():
        AccountLock.objects.get_or_create(user=user)
        lock = AccountLock.objects.select_for_update().get(user=user)
        if not lock.is_locked and lock.last_failure_at is not None and now - lock.last_failure_at > _window():
            lock.failures = 0  # a run of failures older than the window is over; a new one starts
        lock.failures += 1
        lock.last_failure_at = now
        lock.last_failure_kind = kind
        locked_now = False
        if limit is not None and not lock.is_locked and lock.failures >= limit:
            # SECURITY: from here on the login flow refuses every attempt, right password or not.
            lock.locked_at = now
            lock.lock_count += 1
            lock.locked_reason = f"{lock.failures} consecutive failures (last: {kind})"[:200]
            lock.locked_by_desk = False
            _clear_request(lock)
            locked_now = True
        burst = kind in SECOND_FACTOR_KINDS and _note_factor_failure(lock, now)
        lock.save()
        if locked_now:
            # SECURITY: a lock ends every session of the account, the thief's open one included (case 59),
            # and every API token: one only refused while locked would work again after the unlock.
            ended, tokens = _end_all_access(user)
            context = {
                **_account_context(user, now),
                "failures": lock.failures,
                "ended": ended,
            }
            notify_customer(user, "account_locked", context=context, dedupe_key=f"lock:{lock.lock_count}")
            notify_staff("account_locked", context=context, dedupe_key=f"u{user.pk}:lock:{lock.lock_count}")
            logger.warning(
                "authguard: account %s locked after %s failures; %s session(s) and %s API token(s) ended",
                user.pk,
                lock.failures,
                ended,
                tokens,
            )
        if burst:
            _notify_burst(user, lock, now)
    return locked_now


def _end_all_access(user: Any) -> tuple[int, int]:
    try:
        with transaction.atomic():  # a savepoint: the lock stands even if a session cannot be ended
            # SECURITY: not her DBSC bindings: anyone with her username can cause this lock, and a binding
            # ended can be made again only after a passkey (a used cookie); her key's proof would be gone on
            # demand and a copy of her device cookie unbound. The desk's lock ends them (round thirty-seven).
            return end_all_access(user, bindings=False)
    except Exception:
        logger.exception("authguard: could not end the sessions of locked account %s", user.pk)
        return 0, 0


def end_all_access(user: Any, *, bindings: bool = True) -> tuple[int, int]:
    """End every session of ``user``, their DBSC bindings (unless ``bindings`` is false) and their DRF API
    tokens; returns (sessions, tokens) ended.

    The same functions a password change uses (:func:`authguard.sessions.state.end_all_sessions` and
    :func:`authguard.sessions.state.revoke_api_tokens`: DRF tokens where the portal uses them), in the
    caller's transaction: if it fails, the caller's writes are undone with it.

    SECURITY: the desk's containment (end the sessions, lock, force a password reset) ends the bindings,
    ``access_ended``: a key the thief registered on his browser during the intrusion went on refreshing
    with no session and no password, and (before its move was checked) onto her device id (red team,
    round thirty-seven).
    """
    reason = dbsc_moves.ACCESS_ENDED if bindings else None
    return end_all_sessions(user=user, binding_reason=reason), revoke_api_tokens(user)


def lock(user: Any, *, by: Any, reason: str) -> bool:
    """The security desk locks ``user``'s account: True when it was not locked before.

    The same lock as after consecutive failures (the same ways back: the customer's own passkey, the
    authenticator app plus a recovery code and a waiting period, the desk's four-eyes unlock), and it ends
    every session and API token of the account. Locking an account that is already locked ends what is
    left of its sessions and cancels a waiting self-service unlock. ``by`` needs
    ``authguard.contain_account``. The caller tells the customer (:mod:`authguard.console.approvals`, with
    the ways back and without staff names) and keeps the audit record.
    """
    if by is None or not by.has_perm(CONTAIN_PERMISSION):
        # SECURITY: the console is the usual caller, but the rule lives here, not in the form.
        raise PermissionDenied("locking an account needs the authguard.contain_account permission")
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise ValueError("a lock needs a reason (it is kept with the account)")
    now = clock.now()
    with transaction.atomic():
        AccountLock.objects.get_or_create(user=user)
        row = AccountLock.objects.select_for_update().get(user=user)
        locked_now = not row.is_locked
        if locked_now:
            # SECURITY: from here on the login flow refuses every attempt, right password or not.
            row.locked_at = now
            row.lock_count += 1
            row.locked_reason = f"security desk: {reason}"[:200]
            row.locked_by_desk = True
            _clear_request(row)
            row.save()
        else:
            # SECURITY: the desk contains an account a stranger's failures locked already: from now on it is
            # the desk's lock (:func:`authguard.login.unlocking.unlock_with_identity_check`), or the thief's
            # cooling-off passkey would end it the day its cooling-off is over (red team, round forty-three).
            # A waiting self-service unlock would undo the desk's lock behind its back: it is cancelled.
            row.locked_by_desk = True
            _clear_request(row)
            row.save(
                update_fields=[
                    "locked_by_desk",
                    "unlock_requested_at",
                    "unlock_due_at",
                    "unlock_reference_digest",
                ]
            )
        # SECURITY: not in a savepoint that swallows errors (unlike a failure lock): a desk lock that could
        # not end the sessions must not look like it succeeded; the caller's transaction is undone.
        ended, tokens = end_all_access(user)
    logger.warning(
        "authguard: account %s locked by staff %s (%s); %s session(s), %s token(s) ended",
        user.pk,
        by.pk,
        "new lock" if locked_now else "already locked",
        ended,
        tokens,
    )
    return locked_now


def _note_factor_failure(lock: AccountLock, now: datetime) -> bool:
    """Remember a second-factor failure; True when the hour's count just reached the burst size."""
    since = now - timedelta(hours=1)
    recent = [t for t in lock.recent_factor_failures or [] if isinstance(t, str) and t >= since.isoformat()]
    recent.append(now.isoformat())
    lock.recent_factor_failures = recent[-50:]
    return len(recent) == app_settings.STEP_UP_FAILURE_BURST


def _notify_burst(user: Any, lock: AccountLock, now: datetime) -> None:
    context = {**_account_context(user, now), "failures": len(lock.recent_factor_failures)}
    hour = now.strftime("%Y%m%d%H")
    notify_customer(user, "step_up_failures", context=context, dedupe_key=f"burst:{hour}")
    notify_staff("step_up_failures", context=context, dedupe_key=f"u{user.pk}:burst:{hour}")


def record_success(user: Any) -> None:
    """Reset the run of failures after a verification a thief cannot make (a passkey, an unlock).

    Never call it after a password-only sign-in or a one-time code: a thief with the password could
    then keep guessing by signing in again between guesses. A locked account stays locked (and keeps its
    count): only the unlock functions end a lock. One UPDATE, no row created.
    """
    if user is None or user.pk is None:
        return
    AccountLock.objects.filter(user_id=user.pk, locked_at__isnull=True, failures__gt=0).update(failures=0)


def is_locked(user: Any) -> bool:
    """Whether ``user``'s account is locked (one indexed query).

    A self-service unlock whose waiting period is over (:func:`request_unlock_with_codes`) takes effect
    here, at the first question after it fell due.
    """
    if user is None or user.pk is None:
        return False
    rows = list(
        AccountLock.objects.filter(user_id=user.pk, locked_at__isnull=False).values_list("unlock_due_at")[:1]
    )
    return locked_with_due(user, locked=bool(rows), due=rows[0][0] if rows else None)


def locked_with_due(user: Any, *, locked: bool, due: datetime | None) -> bool:
    """:func:`is_locked` given the lock row already read: ``locked`` (a row with ``locked_at`` set) and its
    ``unlock_due_at``. A self-service unlock that fell due completes here."""
    if not locked:
        return False
    # SECURITY: a codes unlock asked for before the way back was switched off (the JSDA preset, or
    # AUTHGUARD_UNLOCK_WAIT_HOURS = None) does not complete afterwards: the passkey and the desk remain.
    if due is not None and due <= clock.now() and app_settings.UNLOCK_WAIT_HOURS is not None:
        return not _complete_due_unlock(user)
    return True


def is_locked_fail_closed(user: Any) -> bool:
    """:func:`is_locked`, or ``True`` when the lock state cannot be read: the one lock check every entry
    point (login, step-up pages and API, passwordless sign-in) asks.

    SECURITY: if the lock state cannot be read, refuse rather than let a locked account in.
    """
    try:
        return bool(is_locked(user))
    except Exception:
        logger.exception("authguard: lockout state unavailable")
        return True


def lock_state(user: Any) -> AccountLock | None:
    """The account's lock row (for pages that explain the lock), or None."""
    if user is None or user.pk is None:
        return None
    return AccountLock.objects.filter(user_id=user.pk).first()


def _clear_request(lock: AccountLock) -> None:
    lock.unlock_requested_at = None
    lock.unlock_due_at = None
    lock.unlock_reference_digest = ""


def unlock(user: Any, *, by: Any, reason: str) -> bool:
    """End ``user``'s lock and reset the failure count; True when the account was locked.

    ``by`` is the admin doing it (needs ``authguard.unlock_account``) or ``None`` for a verified
    identity check (:func:`unlock_with_identity_check`, a due self-service request). Both the customer
    and staff are notified; the customer's message never names the staff member.
    """
    if by is not None and not by.has_perm(UNLOCK_PERMISSION):
        # SECURITY: the admin action is the usual caller, but the rule lives here, not in the form.
        raise PermissionDenied("unlocking an account needs the authguard.unlock_account permission")
    reason = str(reason or "").strip()
    if not reason:
        raise ValueError("an unlock needs a reason (it is kept with the account)")
    now = clock.now()
    with transaction.atomic():
        lock = AccountLock.objects.select_for_update().filter(user_id=user.pk).first()
        if lock is None:
            return False
        was_locked = lock.is_locked
        lock.failures = 0
        lock.recent_factor_failures = []
        _clear_request(lock)
        if was_locked:
            lock.locked_at = None
            lock.locked_by_desk = False
            lock.unlocked_at = now
            lock.unlocked_by = by
            lock.unlock_reason = reason[:200]
        lock.save()
        if was_locked:
            how = f"staff: {by.get_username()}" if by is not None else reason[:100]
            key = f"unlock:{lock.lock_count}"
            # SECURITY: staff usernames are for staff; the customer reads only "our security desk".
            customer_how = "staff" if by is not None else "identity check"
            notify_customer(
                user,
                "account_unlocked",
                context={**_account_context(user, now), "how": customer_how},
                dedupe_key=key,
            )
            notify_staff(
                "account_unlocked",
                context={**_account_context(user, now), "how": how},
                dedupe_key=f"u{user.pk}:{key}",
            )
            logger.warning("authguard: account %s unlocked (%s): %s", user.pk, how, reason)
    return was_locked


# -- the self-service way back without a passkey: two codes and a waiting period ---------------------------


def _complete_due_unlock(user: Any) -> bool:
    """Carry out a self-service unlock whose waiting period is over; True when the account is now unlocked."""
    now = clock.now()
    with transaction.atomic():
        lock = AccountLock.objects.select_for_update().filter(user_id=user.pk).first()
        if lock is None or not lock.is_locked:
            return True
        if lock.unlock_due_at is None or lock.unlock_due_at > now:
            return False
    try:
        unlock(user, by=None, reason=f"self-service: {CODES_METHOD} after the waiting period")
    except Exception:
        # SECURITY: fail closed: the account stays locked if the unlock cannot be written.
        logger.exception("authguard: could not complete a due unlock of account %s", user.pk)
        return False
    return True


__all__ = [
    "CODES_METHOD",
    "CONTAIN_PERMISSION",
    "FAILURE_KINDS",
    "NotLocked",
    "UnlockRequest",
    "UnlockUnavailable",
    "end_all_access",
    "is_locked",
    "lock",
    "lock_state",
    "record_failure",
    "record_success",
    "unlock",
]
