"""Account lock: consecutive authentication failures lock the account until an admin or the customer's
own passkey unlocks it.

* :func:`record_failure` counts a failed password or second factor; the ``AUTHGUARD_LOCKOUT_FAILURES``-th
  consecutive one locks the account (``None`` turns locking off; the JSDA preset forces it on).
* :func:`record_success` resets the count after a successful authentication (never while locked).
* :func:`is_locked` is what the login flow asks: a locked account gets the generic "denied" answer.
* :func:`unlock` is the admin's way out (needs ``authguard.unlock_account``);
  :func:`unlock_with_identity_check` is the customer's: a fresh verification of one of their own
  factors in ``AUTHGUARD_UNLOCK_METHODS`` (passkeys by default, the only ones under the preset);
  :func:`unlock_with_passkey` does that verification itself from a WebAuthn assertion.

Locking and unlocking notify both the customer and staff (:mod:`authguard.notifications`). Several
second-factor failures within an hour warn the customer (``step_up_failures``) even before a lock.

Why a hard lock rather than only a throttle: a phished password in an attacker's hands should not buy
unlimited guesses at the second factor; the JSDA's 2025 guidelines ask for automatic locking.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from .conf import app_settings
from .models import AccountLock
from .notifications import notify, notify_staff

logger = logging.getLogger(__name__)

#: Failure kinds the callers report. ``password`` comes from the login flow, the others from factors.
PASSWORD = "password"
SECOND_FACTOR_KINDS = frozenset({"totp", "passkey", "recovery_code", "step_up", "confirmation", "unlock"})
FAILURE_KINDS = SECOND_FACTOR_KINDS | {PASSWORD}
#: The permission an admin needs to unlock an account.
UNLOCK_PERMISSION = "authguard.unlock_account"


class NotLocked(Exception):
    """Raised by :func:`unlock_with_identity_check` when there is nothing to unlock."""


def _account_context(user: Any, now: datetime) -> dict[str, Any]:
    return {"account": user.get_username(), "account_id": user.pk, "time": now}


def record_failure(user: Any, *, kind: str) -> bool:
    """Count one failed authentication of ``user``; True when this failure locked the account.

    ``kind`` is one of :data:`FAILURE_KINDS`. Safe under concurrency: the user's lock row is locked for
    the count, so N parallel failures count N and lock exactly once.
    """
    if kind not in FAILURE_KINDS:
        raise ValueError(f"unknown failure kind {kind!r}; one of {sorted(FAILURE_KINDS)}")
    if user is None or user.pk is None:
        return False  # an unknown username: nothing to lock (the login throttle handles floods)
    now = timezone.now()
    limit = app_settings.LOCKOUT_FAILURES
    with transaction.atomic():
        AccountLock.objects.get_or_create(user=user)
        lock = AccountLock.objects.select_for_update().get(user=user)
        lock.failures += 1
        lock.last_failure_at = now
        lock.last_failure_kind = kind
        locked_now = False
        if limit is not None and not lock.is_locked and lock.failures >= limit:
            # SECURITY: from here on the login flow denies every attempt, right password or not.
            lock.locked_at = now
            lock.lock_count += 1
            lock.locked_reason = f"{lock.failures} consecutive failures (last: {kind})"[:200]
            locked_now = True
        burst = kind in SECOND_FACTOR_KINDS and _note_factor_failure(lock, now)
        lock.save()
        if locked_now:
            context = {**_account_context(user, now), "failures": lock.failures}
            notify(user, "account_locked", context=context, dedupe_key=f"lock:{lock.lock_count}")
            notify_staff("account_locked", context=context, dedupe_key=f"u{user.pk}:lock:{lock.lock_count}")
            logger.warning("authguard: account %s locked after %s failures", user.pk, lock.failures)
        if burst:
            _notify_burst(user, lock, now)
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
    notify(user, "step_up_failures", context=context, dedupe_key=f"burst:{hour}")
    notify_staff("step_up_failures", context=context, dedupe_key=f"u{user.pk}:burst:{hour}")


def record_success(user: Any) -> None:
    """Reset the consecutive-failure count after a successful authentication.

    A locked account stays locked (and keeps its count): only :func:`unlock` and
    :func:`unlock_with_identity_check` end a lock. One UPDATE, no row created.
    """
    if user is None or user.pk is None:
        return
    AccountLock.objects.filter(user_id=user.pk, locked_at__isnull=True, failures__gt=0).update(failures=0)


def is_locked(user: Any) -> bool:
    """Whether ``user``'s account is locked (one indexed query)."""
    if user is None or user.pk is None:
        return False
    return AccountLock.objects.filter(user_id=user.pk, locked_at__isnull=False).exists()


def unlock(user: Any, *, by: Any, reason: str) -> bool:
    """End ``user``'s lock and reset the failure count; True when the account was locked.

    ``by`` is the admin doing it (needs ``authguard.unlock_account``) or ``None`` for a verified
    identity check (:func:`unlock_with_identity_check`). Both the customer and staff are notified.
    """
    if by is not None and not by.has_perm(UNLOCK_PERMISSION):
        # SECURITY: the admin action is the usual caller, but the rule lives here, not in the form.
        raise PermissionDenied("unlocking an account needs the authguard.unlock_account permission")
    reason = str(reason or "").strip()
    if not reason:
        raise ValueError("an unlock needs a reason (it is kept with the account)")
    now = timezone.now()
    with transaction.atomic():
        lock = AccountLock.objects.select_for_update().filter(user_id=user.pk).first()
        if lock is None:
            return False
        was_locked = lock.is_locked
        lock.failures = 0
        lock.recent_factor_failures = []
        if was_locked:
            lock.locked_at = None
            lock.unlocked_at = now
            lock.unlocked_by = by
            lock.unlock_reason = reason[:200]
        lock.save()
        if was_locked:
            how = f"staff: {by.get_username()}" if by is not None else "identity check"
            context = {**_account_context(user, now), "how": how}
            key = f"unlock:{lock.lock_count}"
            notify(user, "account_unlocked", context=context, dedupe_key=key)
            notify_staff("account_unlocked", context=context, dedupe_key=f"u{user.pk}:{key}")
            logger.warning("authguard: account %s unlocked (%s): %s", user.pk, how, reason)
    return was_locked


def unlock_with_identity_check(user: Any, *, device: Any, method: str) -> None:
    """Unlock ``user``'s account after the caller verified ``device`` (``method``) for this user just now.

    The caller must have verified the factor in this very request (e.g. a WebAuthn assertion through
    :func:`unlock_with_passkey`). Raises ``PermissionDenied`` for a method outside
    ``AUTHGUARD_UNLOCK_METHODS`` or someone else's device, :class:`NotLocked` if there is no lock.
    """
    if method not in app_settings.UNLOCK_METHODS:
        raise PermissionDenied(f"{method!r} cannot unlock an account here")
    own = device is not None and getattr(device, "user_id", None) == user.pk
    if not own or not getattr(device, "confirmed", True):
        # SECURITY: only the account's own, confirmed factor proves the customer's identity.
        raise PermissionDenied("that factor does not belong to this account")
    if not unlock(user, by=None, reason=f"identity check: {method}"):
        raise NotLocked("the account is not locked")


def unlock_with_passkey(request: HttpRequest, *, credential: dict[str, Any] | str, user: Any = None) -> Any:
    """Verify a WebAuthn assertion (challenge purpose ``"unlock"``) and unlock its account; returns the user.

    The challenge comes from ``authguard.passkeys.authentication_options(request, purpose="unlock",
    user=user)``. With ``user=None`` the passkey is discoverable and names the account itself, so a
    locked-out customer needs neither a password nor a username: only their own passkey. A failed
    assertion for a known ``user`` counts as a failure (kind ``unlock``); every failure re-raises
    (``authguard.exceptions.InvalidCredential``), and :class:`NotLocked` says there was nothing to do.
    """
    from .passkeys import verify_authentication

    try:
        device = verify_authentication(request, purpose="unlock", credential=credential, user=user)
    except Exception:
        if user is not None:
            record_failure(user, kind="unlock")
        raise
    owner = user if user is not None else device.user
    unlock_with_identity_check(owner, device=device, method="passkey")
    return owner
