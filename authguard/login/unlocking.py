"""The customer's ways back into a locked account: a passkey, or two codes and a waiting period.

The lock itself (counting failures, locking, the fail-closed check) is :mod:`authguard.login.lockout`; this
module verifies a factor and then asks it to unlock, so a lock never depends on the factors being importable.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac

from authguard import clock
from authguard.conf import app_settings
from authguard.exceptions import NOT_THE_CUSTOMERS_FAILURE, InvalidCredential
from authguard.factors.methods import factor_cooling_off, method_of, usable_factors
from authguard.factors.passkeys import verify_authentication
from authguard.factors.recovery import verify_recovery_code
from authguard.factors.totp import verify_totp
from authguard.login.lockout import (
    UNLOCK_PERMISSION,
    NotLocked,
    UnlockRequest,
    UnlockUnavailable,
    _account_context,
    _clear_request,
    is_locked,
    record_failure,
    unlock,
)
from authguard.models import AccountLock, FactorRecord
from authguard.notifications.outbox import notify_customer, notify_staff

logger = logging.getLogger(__name__)

# SECURITY: a stable salt: changing it voids every pending unlock reference.
#: Salt of the keyed digest of an unlock request's cancel reference.
_REFERENCE_SALT = "authguard.lockout.unlock_reference"


def unlock_with_identity_check(user: Any, *, device: Any, method: str) -> None:
    """Unlock ``user``'s account after the caller verified ``device`` (``method``) for this user just now.

    The caller must have verified the factor in this very request (e.g. a WebAuthn assertion through
    :func:`unlock_with_passkey`). Raises ``PermissionDenied`` for a method outside
    ``AUTHGUARD_UNLOCK_METHODS``, someone else's device, a factor still cooling off, or one that was cooling
    off when the desk locked the account (:func:`_cooling_off_when_locked`); :class:`NotLocked` if there is
    no lock.
    """
    if method not in app_settings.UNLOCK_METHODS:
        raise PermissionDenied(f"{method!r} cannot unlock an account here")
    own = device is not None and getattr(device, "user_id", None) == user.pk
    if not own or not getattr(device, "confirmed", True):
        # SECURITY: only the account's own, confirmed factor proves the customer's identity.
        raise PermissionDenied("that factor does not belong to this account")
    with transaction.atomic():
        # SECURITY: the lock row is held from the question to the unlock: a desk lock made in between (on an
        # account locked or not) is never ended by a factor the question did not judge against it.
        AccountLock.objects.select_for_update().filter(user_id=user.pk).first()
        if _refused_for_unlock(user, device, every_lock=False):
            # SECURITY: a factor added during a cooling-off may be the thief's; it cannot unlock (issue 10).
            raise PermissionDenied("a factor that is still cooling off cannot unlock the account")
        if not unlock(user, by=None, reason=f"identity check: {method}"):
            raise NotLocked("the account is not locked")


def _cooling_off_when_locked(user: Any, *devices: Any, every_lock: bool = True) -> bool:
    """Whether any of ``devices`` was still cooling off (or did not exist yet) when the account was locked:
    asked of the desk's lock (``AccountLock.locked_by_desk``), and of every lock when ``every_lock``.

    SECURITY: the desk's containment stops the customer, not the clock of the thief's factor: his passkey,
    added with one relayed code and cooling off when the desk contained the account, would otherwise end
    the containment by itself the day its cooling-off is over (red team, 2026-12-05). A lock a stranger's
    failures made is not containment: anyone with her username makes one at the moment of his choosing,
    and read the same way it kept her own passkey, added the day before, out of her account for as long as
    the lock stood (red team, round forty-three). Only a factor enrolled *vouched for* (from her browser of
    a month, a day's cooling-off) is excused at such a lock: his passkey, added with one relayed code and
    cooling off for two weeks, sat behind a lock he made himself a minute later, out of her reach (she could
    not sign in to remove it), and ended that lock the day its cooling-off was over (round forty-four).
    """
    row = AccountLock.objects.filter(user_id=user.pk).values_list("locked_at", "locked_by_desk").first()
    if row is None or row[0] is None:
        return False
    if row[1] or every_lock:
        return any(factor_cooling_off(d, at=row[0]) for d in devices)
    return any(factor_cooling_off(d, at=row[0]) and not _enrolled_vouched(d) for d in devices)


def _enrolled_vouched(device: Any) -> bool:
    """Whether ``device`` was enrolled from a vouched-for session (``FactorRecord.enrolled_vouched``, kept at
    enrollment by ``lifecycle.record_enrollment``). No record: not."""
    return FactorRecord.objects.filter(device_id=device.persistent_id, enrolled_vouched=True).exists()


def _refused_for_unlock(user: Any, *devices: Any, every_lock: bool = True) -> bool:
    """Whether any of ``devices`` cannot unlock ``user``'s account: cooling off now, or when the account was
    locked (:func:`_cooling_off_when_locked`; one read of the lock for all of them).

    ``every_lock`` false (the identity check: a passkey, at once): the lock's time counts only for the
    desk's lock. The codes unlock still asks it of every lock (``tests/test_unlock_walkarounds.py``): codes
    minted or an app added in the day before a stranger's lock never end that lock (her passkey or the desk
    do), a known limit (docs/operations.md)."""
    return any(factor_cooling_off(d) for d in devices) or _cooling_off_when_locked(
        user, *devices, every_lock=every_lock
    )


def _codes_could_unlock(user: Any, totp: Any) -> bool:
    """Whether the verified authenticator app ``totp`` and her recovery codes (the set
    ``verify_recovery_code`` would spend one of) could unlock: the account has both (as
    :func:`~authguard.factors.methods.codes_unlock_available` asks), neither cooling off now nor when the
    account was locked. Asked before the recovery code is verified, from one read of her factors.

    SECURITY: a refusal after ``verify_recovery_code`` would spend one of her codes for nothing, at every
    try, until none is left (red team, round eight).
    """
    factors = usable_factors(user)
    has_app = any(method_of(d) == "totp" for d in factors)
    codes = next((d for d in factors if method_of(d) == "recovery_code"), None)
    return has_app and codes is not None and not _refused_for_unlock(user, totp, codes)


def unlock_with_passkey(request: HttpRequest, *, credential: dict[str, Any] | str, user: Any = None) -> Any:
    """Verify a WebAuthn assertion (challenge purpose ``"unlock"``) and unlock its account; returns the user.

    The challenge comes from ``authguard.factors.passkeys.authentication_options(request, purpose="unlock",
    user=user)``. With ``user=None`` the passkey is discoverable and names the account itself, so a
    locked-out customer needs neither a password nor a username: only their own passkey. A failed
    assertion for a known ``user`` counts as a failure (kind ``unlock``); every failure re-raises
    (``authguard.exceptions.InvalidCredential``), and :class:`NotLocked` says there was nothing to do.
    """
    try:
        device = verify_authentication(request, purpose="unlock", credential=credential, user=user)
    except Exception as exc:
        # Not counted: a refusal because the server could not check the answer.
        if user is not None and getattr(exc, "code", None) not in NOT_THE_CUSTOMERS_FAILURE:
            record_failure(user, kind="unlock")
        raise
    owner = user if user is not None else device.user
    unlock_with_identity_check(owner, device=device, method="passkey")
    return owner


def _reference_digest(user: Any, reference: str) -> str:
    normalised = "".join(reference.split()).upper()
    return salted_hmac(_REFERENCE_SALT, f"{user.pk}:{normalised}", algorithm="sha256").hexdigest()


def request_unlock_with_codes(
    user: Any, *, totp_code: object, recovery_code: object, request: HttpRequest | None = None
) -> UnlockRequest:
    """The customer's way back without a passkey: a code from the authenticator app and a recovery code.

    Both must verify (each failure is counted like any other); the recovery code is spent. The account is
    then unlocked after ``AUTHGUARD_UNLOCK_WAIT_HOURS`` (by :func:`is_locked`), unless the customer cancels
    with the reference mailed to them (:func:`cancel_unlock_request`); staff hear of it too. Raises
    :class:`UnlockUnavailable` when the portal turned it off; ``InvalidCredential`` for a wrong code, a
    factor she lacks, or an account that is not locked (nothing is verified or counted then: one answer);
    once the authenticator code verified, :class:`UnlockUnavailable` (the account lacks either factor, or
    one of them is cooling off); ``Throttled`` from the factor; :class:`NotLocked` only if the lock ended
    while the codes were checked.

    A portal's view answers an unknown username as a wrong code, and, when the portal turned this way off,
    every name alike before looking it up (the demo's ``unlock_with_codes``): else its answers tell who is a
    customer. Pass the ``request``: on a browser the account has known for a month the customer then waits
    out only her own failures, not those of whoever else knows her username
    (:mod:`authguard.factors.throttles`).
    """
    wait = app_settings.UNLOCK_WAIT_HOURS
    if wait is None:
        raise UnlockUnavailable()
    if not is_locked(user):
        # SECURITY: nothing to unlock, so nothing is verified or counted: counted, anyone with her username
        # could shut the throttle scope her own step-up shares, or lock her, through this endpoint (red
        # team, round twelve); answered as wrong codes, it tells nobody who is a customer (round eleven).
        raise InvalidCredential(code="wrong_code")
    # SECURITY: the authenticator code first, so a wrong one never spends a recovery code, and only whoever
    # holds her app learns which factors she has or whether they are cooling off (red team, rounds nine
    # and ten: made-up codes were answered 403 or 400 by her factors' state, unthrottled).
    totp = verify_totp(user, totp_code, request=request, while_locked=True)
    if totp is None:
        raise InvalidCredential(code="wrong_code")
    if not _codes_could_unlock(user, totp):
        # SECURITY: codes minted or an app added during a cooling-off may be the thief's (issue 10); refused
        # before the recovery code is spent (red team, round eight).
        raise UnlockUnavailable()
    recovery = verify_recovery_code(user, recovery_code, request=request, while_locked=True)
    if recovery is None:
        raise InvalidCredential(code="wrong_code")
    if _refused_for_unlock(user, recovery):  # defensive: _codes_could_unlock asked of this very set
        raise UnlockUnavailable()
    now = clock.now()
    reference = "-".join(secrets.token_hex(2).upper() for _ in range(3))
    due = now + timedelta(hours=wait)
    with transaction.atomic():
        lock = (
            AccountLock.objects.select_for_update().filter(user_id=user.pk, locked_at__isnull=False).first()
        )
        if lock is None:
            raise NotLocked()
        lock.unlock_requested_at = now
        lock.unlock_due_at = due
        lock.unlock_reference_digest = _reference_digest(user, reference)
        lock.save(update_fields=["unlock_requested_at", "unlock_due_at", "unlock_reference_digest"])
        context = {**_account_context(user, now), "due": due, "reference": reference}
        key = f"unlock-request:{lock.lock_count}:{reference}"
        notify_customer(user, "unlock_requested", context=context, dedupe_key=key)
        notify_staff(
            "unlock_requested",
            context={**_account_context(user, now), "due": due},
            dedupe_key=f"u{user.pk}:{key}",
        )
    logger.warning("authguard: account %s asked to unlock with codes; due %s", user.pk, due.isoformat())
    return UnlockRequest(due_at=due, reference=reference)


def cancel_unlock_request(user: Any, *, reference: object = None, by: Any = None) -> None:
    """Cancel a waiting self-service unlock: the customer with the reference from the message, or staff
    (``by``, with ``authguard.unlock_account``). The account stays locked. Raises :class:`NotLocked` to
    staff when there is no request, ``InvalidCredential`` for a wrong reference (to the customer also when
    there is no request: her reference is what tells her account from anyone's)."""
    if by is not None and not by.has_perm(UNLOCK_PERMISSION):
        raise PermissionDenied("cancelling an unlock needs the authguard.unlock_account permission")
    now = clock.now()
    with transaction.atomic():
        lock = (
            AccountLock.objects.select_for_update()
            .filter(user_id=user.pk, locked_at__isnull=False, unlock_due_at__isnull=False)
            .first()
        )
        if lock is None:
            # SECURITY: the customer's way (no ``by``) learns nothing without the reference: "nothing is
            # waiting" would tell anyone with a username who is a customer (red team, round eleven).
            raise NotLocked() if by is not None else InvalidCredential(code="wrong_reference")
        if by is None:
            typed = reference if isinstance(reference, str) and 0 < len(reference) <= 64 else None
            if typed is None or not constant_time_compare(
                _reference_digest(user, typed), lock.unlock_reference_digest
            ):
                raise InvalidCredential(code="wrong_reference")
        _clear_request(lock)
        lock.save(update_fields=["unlock_requested_at", "unlock_due_at", "unlock_reference_digest"])
        notify_customer(user, "unlock_cancelled", context=_account_context(user, now), dedupe_key=None)
    logger.warning("authguard: account %s unlock request cancelled", user.pk)
