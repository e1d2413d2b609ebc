"""What every second factor shares: counting its failures, verifying one-time codes, telling the user.

* **Failure limits** (NIST SP 800-63B 3.2.2): every failed attempt at a factor, throttled ones included,
  counts on that factor's :class:`~authguard.models.FactorRecord` (:func:`record_factor_failure`); only
  those from a session that could be the customer's count towards
  ``AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT``, at which the factor is disabled until re-bound; other
  sessions are throttled per session, network and account instead (:mod:`authguard.factors.throttles`).
  Counters are per factor, so disabling one never locks the others.
  A failed second factor also counts towards the account lock (:func:`note_account_failure`).
* **One-time codes** (TOTP, recovery codes) are verified through :func:`django_otp.verify_token` inside a
  transaction that has locked the device row (:func:`verify_code`), so one code is accepted once however
  many requests race (battery cases 10-13).
* Every change to a factor is told to the user (:func:`tell_user`) and reported to the risk engine
  (:func:`note_change`, :func:`authguard.risk.history.note_factor_change`).

The factors themselves: :mod:`authguard.factors.totp`, :mod:`authguard.factors.recovery`,
:mod:`authguard.factors.passkeys`; what a user has: :mod:`authguard.factors.inventory`; the rules of adding,
removing and cooling off: :mod:`authguard.factors.lifecycle`.
"""

from __future__ import annotations

import functools
import logging
import math
from datetime import datetime
from typing import Any

import django_otp
from django.db import router, transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.models import Device

from authguard import clock, durable
from authguard.conf import app_settings
from authguard.exceptions import NOT_THE_CUSTOMERS_FAILURE, Throttled
from authguard.factors.inventory import FACTOR_LABELS, factor_is_cooling_off, unrecorded_confirmed_at
from authguard.factors.throttles import attempt_of, check_throttle, could_be_customer, note_throttle_failure
from authguard.login import lockout
from authguard.models import FactorKind, FactorRecord
from authguard.notifications.outbox import notify, notify_customer
from authguard.risk.history import note_factor_change

logger = logging.getLogger(__name__)

# -- telling the user and the risk engine ----------------------------------------------------------------


def tell_user(user: Any, kind: str, **context: Any) -> None:
    """Queue the notice ``kind`` to ``user`` (the outbox), stamped with the time of the change: to
    ``to_email`` when given, else to every address security notices go to (``notify_customer``)."""
    if "to_email" in context:
        notify(user, kind, context={"time": clock.now(), **context})
        return
    # SECURITY: during a cooling-off started by an e-mail change the previous address hears of every change
    # (a removed factor, a used recovery code), not only of added factors (red team, 2026-12-04).
    notify_customer(user, kind, context={"time": clock.now(), **context})


def note_change(user: Any, when: datetime) -> None:
    """Report a change of ``user``'s factors or contacts to the risk engine's history."""
    note_factor_change(user.pk, when)


# -- failures and the NIST limit -----------------------------------------------------------------------------


def _record_for(device: Device, *, kind: str) -> FactorRecord:
    """The lifecycle record of ``device``, locked; created for a device authguard did not enroll (seeded,
    admin-made), dated by the device's own ``created_at``: its first failure must not make it look new."""
    record, _ = FactorRecord.objects.get_or_create(
        device_id=device.persistent_id,
        defaults={
            "user_id": device.user_id,
            "kind": kind,
            "enrolled_at": unrecorded_confirmed_at(device) or clock.now(),
        },
    )
    return FactorRecord.objects.select_for_update().get(pk=record.pk)


def record_factor_failure(
    device: Device, *, kind: str, request: HttpRequest | None = None, throttled: bool = False
) -> FactorRecord:
    """Count one failed attempt at ``device``; disable it when the failures that could be the customer's
    reach ``AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT``, and tell the user.

    Every failure counts in ``failures`` (what staff see). Only real guesses count in ``limit_failures``,
    which alone disables: a code django-otp checked (not one its back-off refused, ``throttled``) from a
    :func:`could_be_customer` session. A passkey's bad signature is never a guess (signatures cannot be
    guessed; its activation PIN or biometric is limited on the authenticator itself), so it never disables
    the passkey: otherwise one relayed code would buy the session that disables it (issue 10 item 3).
    Call inside the transaction that locked the device row, so parallel failures all count.
    """
    guess = not throttled and kind != FactorKind.PASSKEY and could_be_customer(request)
    record = _count_factor_failure(device, kind=kind, guess=guess)
    # SECURITY: a portal's step-up view raising on a wrong code rolled the count back under ATOMIC_REQUESTS,
    # and the NIST limit never came (red team, round forty-two).
    durable.outlive_rollback(
        functools.partial(_count_factor_failure, device, kind=kind, guess=guess),
        using=router.db_for_write(FactorRecord),
    )
    return record


def _count_factor_failure(device: Device, *, kind: str, guess: bool) -> FactorRecord:
    record = _record_for(device, kind=kind)
    record.failures += 1
    update = ["failures"]
    if guess:
        record.limit_failures += 1
        update.append("limit_failures")
    if record.disabled_at is None and record.limit_failures >= app_settings.AUTHENTICATOR_FAILURE_LIMIT:
        # SECURITY: NIST SP 800-63B 3.2.2: at the limit the authenticator is disabled until re-bound.
        now = clock.now()
        record.disabled_at = now
        update.append("disabled_at")
        type(device).objects.filter(pk=device.pk).update(confirmed=False)
        device.confirmed = False
        tell_user(device.user, "factor_removed", factor=FACTOR_LABELS[kind], name=device.name)
        note_change(device.user, now)
        logger.warning(
            "authguard factor disabled after %s failures user=%s device=%s",
            record.limit_failures,
            device.user_id,
            device.persistent_id,
        )
    record.save(update_fields=update)
    return record


def record_factor_success(device: Device) -> None:
    """A successful use of ``device``: its consecutive-failure counts start again from zero."""
    FactorRecord.objects.filter(device_id=device.persistent_id).exclude(failures=0, limit_failures=0).update(
        failures=0, limit_failures=0
    )


def note_account_failure(user: Any, *, kind: str, code: str | None = None) -> bool:
    """Report a failed second factor to the account lock (:mod:`authguard.login.lockout`); True if it
    locked. ``code``: the refusal's code; one of
    :data:`authguard.exceptions.NOT_THE_CUSTOMERS_FAILURE` is not counted."""
    if code in NOT_THE_CUSTOMERS_FAILURE:
        # An outage of our own must not lock customers out; the attempt itself was still refused (fail
        # closed), and an attacker cannot choose this code.
        return False
    try:
        return lockout.record_failure(user, kind=kind)
    except Exception:
        logger.exception("authguard: could not count an account failure")
        return False


# -- verifying one-time codes ------------------------------------------------------------------------------


def verify_code(
    user: Any,
    device: Device | None,
    *,
    kind: str,
    token: str | None,
    request: HttpRequest | None = None,
    while_locked: bool = False,
) -> Device | None:
    """Verify ``token`` against ``device`` under its row lock; count every failure (throttled ones too).

    The one verification of TOTP and recovery codes (:func:`authguard.factors.totp.verify_totp`,
    :func:`authguard.factors.recovery.verify_recovery_code`).

    A session that could not be the customer's is first held to the lifecycle's back-off (session, network,
    account), and its failures count there, not towards disabling the factor. A stranger's failures
    (:func:`~authguard.factors.throttles.stranger`) are not counted on django-otp's back-off of the device
    either, and that back-off never waits longer than ``AUTHGUARD_FACTOR_THROTTLE["max_delay"]``. A locked
    account's code is refused unchecked (``Throttled``), except by the codes unlock (``while_locked``).
    """
    attempt = attempt_of(request, user=user)  # read once: the throttle's check and its count use it
    if device is None:
        # SECURITY: a factor she does not have answers as a wrong code does, held back and counted alike:
        # uncounted, the scopes' 429 after a dozen made-up codes told whoever has her username whether she
        # has an authenticator app at all (red team, round eleven).
        with transaction.atomic():
            if not while_locked and lockout.is_locked_fail_closed(user):
                raise Throttled()
            check_throttle(request, user=user, attempt=attempt)
            note_throttle_failure(request, user=user, attempt=attempt)
            note_account_failure(user, kind=kind)
        return None
    # Without a request there is no browser to tell her from anyone else: django-otp's (capped) back-off
    # counts every failure, as it always did (a portal's own script, the factor's unit tests).
    from_stranger = request is not None and attempt.stranger
    held_back: Throttled | None = None  # by a scope of authguard's throttle
    backed_off: Throttled | None = None  # by django-otp's back-off of the device
    verified: Device | None = None
    with transaction.atomic():
        # SECURITY: every attempt at this factor waits here for the one before it: the scoped throttle is
        # checked, the code verified and the failure counted (in the scopes and towards the account lock)
        # under the device's row lock, so parallel requests cannot all pass one opening of the throttle
        # before any of them is counted (red team, 2026-12-05: 20 guesses in flight were 20 guesses).
        locked = (
            type(device).objects.select_for_update().filter(pk=device.pk, user=user, confirmed=True).first()
        )
        if locked is None:
            return None
        _cap_backoff(locked)
        try:
            if not while_locked and lockout.is_locked_fail_closed(user):
                # SECURITY: the views check the lock first, but a burst queued here behind the attempt that
                # locked the account would each still be a guess (red team, round six: 11 against 5).
                raise Throttled()
            check_throttle(request, user=user, attempt=attempt)  # before the code is even looked at
        except Throttled as scope_refusal:
            held_back = scope_refusal
        allowed, info = locked.verify_is_allowed() if held_back is None else (False, None)
        if not allowed:
            # Refused unchecked, and still counted on the factor: every attempt is (battery case 12).
            backed_off = throttled_refusal(info) if held_back is None else None
            record_factor_failure(locked, kind=kind, request=request, throttled=True)
        else:
            # A malformed code still goes through django-otp (as a token it cannot parse), so that its own
            # throttle counts it too.
            verified = django_otp.verify_token(user, locked.persistent_id, token or "malformed")
            if verified is None:
                if from_stranger:
                    _undo_backoff(locked)
                record_factor_failure(locked, kind=kind, request=request)
            else:
                record_factor_success(locked)
        if verified is None and held_back is None:
            # A scope's refusal is not counted again in the scopes or towards the lock (it was never a try).
            note_throttle_failure(request, user=user, attempt=attempt)
            note_account_failure(user, kind=kind)
    refused = held_back if held_back is not None else backed_off
    if refused is not None:
        raise refused
    return verified


def _backoff_limit(device: Device) -> int | None:
    """The most failures django-otp's back-off of ``device`` may count: the largest ``n`` whose wait
    (``factor * 2^(n-1)`` seconds) is within ``AUTHGUARD_FACTOR_THROTTLE["max_delay"]``; None without one."""
    if not getattr(device, "throttling_enabled", False):
        return None
    factor = device.get_throttle_factor()
    if not factor or factor <= 0:
        return None
    cap = app_settings.FACTOR_THROTTLE["max_delay"]
    return max(1, math.floor(math.log2(max(cap / factor, 1))) + 1)


def _cap_backoff(device: Device) -> None:
    """Bring django-otp's failure count of the locked ``device`` down to :func:`_backoff_limit`.

    SECURITY: django-otp doubles its wait with every failure and never stops (2^n seconds): a few dozen
    failures over three days kept the customer's own right code refused for days (red team, 2026-12-05).
    Guessing stays bounded by the scoped throttle and the account lock; this wait only has to slow a burst.
    """
    limit = _backoff_limit(device)
    count = getattr(device, "throttling_failure_count", 0)
    if limit is not None and count > limit:
        type(device).objects.filter(pk=device.pk).update(throttling_failure_count=limit)
        device.throttling_failure_count = limit


def _undo_backoff(device: Device) -> None:
    """Put django-otp's back-off of ``device`` back as it was before a stranger's failed attempt (``device``
    is the row as locked before it).

    SECURITY: the back-off sits on the customer's factor, so whoever has the password (or only the username,
    at the codes unlock) would otherwise set her wait; a stranger waits in his own scopes instead
    (:mod:`authguard.factors.throttles`), and every failure still counts towards the account lock.
    """
    if not hasattr(device, "throttling_failure_count"):
        return
    type(device).objects.filter(pk=device.pk).update(
        throttling_failure_count=device.throttling_failure_count,
        throttling_failure_timestamp=device.throttling_failure_timestamp,
    )


def throttled_refusal(info: dict[str, Any] | None) -> Throttled:
    """The refusal of an attempt django-otp's back-off does not allow yet, with how long it still waits."""
    locked_until = (info or {}).get("locked_until")
    if not isinstance(locked_until, datetime):
        return Throttled()
    # django-otp's back-off is on the node's own clock (it writes the failure time and checks the wait with
    # timezone.now()): the wait left is measured on that clock, or it would not match django-otp's answer.
    return Throttled(retry_after=max(1, math.ceil((locked_until - timezone.now()).total_seconds())))


def in_cooling_off(device: Device, *, at: datetime | None = None) -> bool:
    """Whether ``device`` is cooling off (it must not confirm held orders or sensitive actions yet): one rule,
    :func:`authguard.factors.inventory.factor_is_cooling_off`, under its older name. Devices authguard did not
    enroll (seeded, admin-created) are dated by their ``created_at``. Not the account's cooling-off
    (:func:`authguard.factors.inventory.in_cooling_off` takes a user)."""
    return factor_is_cooling_off(device, at=at)


__all__ = [
    "in_cooling_off",
    "note_account_failure",
    "note_change",
    "record_factor_failure",
    "record_factor_success",
    "tell_user",
    "throttled_refusal",
    "verify_code",
]
