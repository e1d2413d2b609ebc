"""Removing a factor, and revoking the ones added during a cooling-off: the rules of :mod:`lifecycle`'s
"Removal", written once for the HTML pages, the JSON API, the admin's staff actions and the password hook.

* a factor that is cooling off may be removed with any older factor (or itself), not replaced;
* a session verified with a factor that is cooling off removes nothing else;
* a factor that is not cooling off yields to no relayed code: a passkey only to a passkey, any other factor
  (the authenticator app, the recovery-code set; replacing is removing) to a passkey, a vouched session or two
  different factors (:func:`authguard.factors.contact.require_strong_removal`);
* the last strong factor is never removed by the customer; staff remove with ``by_staff``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard import clock
from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential, StepUpRequired
from authguard.factors.base import note_change, tell_user
from authguard.factors.changes import (
    added_in_this_session,
    count_change,
    fresh_trusted_passkey,
    lock_for_change,
    require_verified_since_change,
)
from authguard.factors.contact import require_strong_removal
from authguard.factors.inventory import (
    FACTOR_LABELS,
    factor_confirmed_at,
    factor_is_cooling_off,
    is_disabled,
    kind_of,
    session_device,
    user_factors,
    verified_by_cooling_off_factor,
)
from authguard.factors.lifecycle import (
    FactorCoolingOff,
    _has_any_factor_row,
    ever_had_factor,
    factors_of_session,
    require_can_change_factors,
)
from authguard.models import (
    AccountSecurity,
    FactorKind,
    FactorRecord,
    PasskeyDevice,
    RecoveryCode,
    RecoveryCodeDevice,
)

logger = logging.getLogger(__name__)


def _strong_factors(user: Any) -> list[Device]:
    return [d for d in user_factors(user) if not isinstance(d, RecoveryCodeDevice)]


def require_can_remove(request: HttpRequest, *, user: Any, device: Device, replacing: bool = False) -> None:
    """The rules of removing ``device`` in this session (the caller has checked a fresh verification).

    * a factor that is cooling off may be removed with any older factor (or itself), but not *replaced*
      (``replacing``: a new recovery-code set or authenticator app in its place, whose secret this session
      is shown): a replacement follows the rules of a factor that is not cooling off;
    * a session verified with a factor that is cooling off removes nothing else but a younger factor that is
      cooling off too (never by replacing it);
    * a passkey that is not cooling off is removed only with another factor that is a passkey;
    * any other factor that is not cooling off (an authenticator app, a recovery-code set: replacing is
      removing) only as an e-mail change is made, or from a vouched session
      (:func:`authguard.factors.contact.require_strong_removal`);
    * the last strong factor (passkey or authenticator app) is never removed by the customer; a factor of
      any kind that is cooling off only while another usable factor remains (recovery codes included, and
      the set whose last code verified this session).
    """
    target_cooling = factor_is_cooling_off(device)
    # SECURITY: the cooling-off shortcut lets the customer drop what a thief just added; a replacement hands
    # this session a new secret in place of hers, so one relayed code must not replace her factor that is
    # still cooling off (red team, round fourteen: her renewed recovery codes shown to him, her new app
    # replaced by his).
    lenient = target_cooling and not replacing
    verifier = session_device(request)
    itself = verifier is not None and verifier.persistent_id == device.persistent_id
    # SECURITY: a cooling-off factor removes only itself, even one that is cooling off: his new passkey
    # removed her new app in a session that had changed nothing (red team, round seventeen).
    # An older factor, even one cooling off, removes a younger one that is cooling off: where all her factors
    # cool off (her app the desk bound again), hers must drop the passkey one relayed code added (round
    # twenty-one); never the other way round, and never a replacement.
    older = (
        lenient
        and verifier is not None
        and (mine := factor_confirmed_at(verifier)) is not None
        and (theirs := factor_confirmed_at(device)) is not None
        and mine < theirs
    )
    if not itself and not older and verified_by_cooling_off_factor(request):
        # SECURITY: a factor added during the cooling-off never removes the customer's older ones. Nor does
        # a session whose verifying factor is gone: a thief who verified with his own new passkey and then
        # removed it still holds a "passkey" verification, which must not remove hers (red team, 2026-12-04).
        raise FactorCoolingOff(
            _(
                "A security method added during the cooling-off period cannot remove your other "
                "methods. Confirm it is you with a method you had before."
            )
        )
    if (
        not lenient
        and kind_of(device) == FactorKind.PASSKEY
        and not fresh_trusted_passkey(request, user=user)
    ):
        # SECURITY: a relayable factor (TOTP, a recovery code) never removes a phishing-resistant one;
        # otherwise a phisher with the password and one relayed code could drop the customer's passkey.
        # The passkey that verified must still exist and be trusted, not just be named in the session.
        raise StepUpRequired(
            _("Confirm it is you with a passkey to remove a passkey."),
            code="step_up_required",
            methods=["passkey"],
        )
    if not lenient:
        # SECURITY: one relayed code removes or replaces none of her established factors (red team,
        # 2026-12-05: her recovery codes regenerated, her authenticator app replaced by his).
        require_strong_removal(request, user=user)
    # SECURITY: her only factor, cooling off, removed with one relayed code of itself left her nothing to
    # sign in with or add a factor with, for good (red team, round twenty-three; round twenty-five: her
    # renewed recovery codes, too): while it cools off, a factor of any kind may go only where another
    # usable factor remains, cooling off or not, recovery codes included (her printed codes must still
    # drop the passkey one relayed code of them added: round twenty-four), the set whose last code verified
    # this session too (round twenty-five).
    if target_cooling:
        # SECURITY: her spent set counts as what remains only in a session vouched for on its own; removing
        # the thief's cooling-off passkey there leaves her no usable factor, and that is her choice (the
        # passkey would otherwise become trusted after its days).
        left = [d for d in factors_of_session(request, user) if d.persistent_id != device.persistent_id]
    elif kind_of(device) != FactorKind.RECOVERY_CODE:
        others = [d for d in _strong_factors(user) if d.persistent_id != device.persistent_id]
        left = [d for d in others if not factor_is_cooling_off(d)]
    else:
        return  # her established recovery codes: only her last strong factor is kept back
    if not left:
        raise InvalidCredential(
            _("This is your last security method. Add another one before you remove it."),
            code="last_factor",
        )


def _delete_factor(user: Any, device: Device, *, reason: str, by_staff: Any = None) -> None:
    # SECURITY: remembered before it goes: a factor from before authguard's records, removed by the desk,
    # left an account that "never had a factor", and a password-only thief bound its first one (round
    # twenty-one).
    ever_had_factor(user)
    kind = kind_of(device)
    now = clock.now()
    with transaction.atomic():
        FactorRecord.objects.filter(device_id=device.persistent_id).delete()
        name = device.name
        device.delete()
        replaced = {"replaced": True} if reason == "replaced" else {}
        tell_user(
            user,
            "factor_removed",
            factor=FACTOR_LABELS[kind],
            name=name,
            by_staff=by_staff is not None,
            **replaced,
        )
        note_change(user, now)
    logger.info(
        "authguard factor removed user=%s kind=%s reason=%s staff=%s",
        user.pk,
        kind,
        reason,
        getattr(by_staff, "pk", None),
    )


def delete_replaced(user: Any, device: Device) -> str | None:
    """Delete ``device``, replaced by a new factor of its kind (the caller checked
    :func:`require_can_remove` with ``replacing``). A usable one is announced as removed: the customer must
    not read a replacement of her factor as one more "added" (red team, round fourteen); a spent, disabled
    or unconfirmed one goes quietly. Returns ``"usable"``, ``"confirmed"`` (spent or disabled) or None
    (an enrollment never confirmed): what the caller passes on as ``replaced`` to
    :func:`~authguard.factors.lifecycle.record_enrollment`, which counts the change."""
    if device.confirmed and not is_disabled(device) and _usable(device):
        _delete_factor(user, device, reason="replaced")
        return "usable"
    confirmed = bool(device.confirmed)
    if confirmed:
        ever_had_factor(user)  # remembered before it goes (see _delete_factor)
    FactorRecord.objects.filter(device_id=device.persistent_id).delete()
    device.delete()
    return "confirmed" if confirmed else None


def _usable(device: Device) -> bool:
    if isinstance(device, RecoveryCodeDevice):
        return RecoveryCode.objects.filter(device=device, used_at__isnull=True).exists()
    return True


def remove_factor(
    request: HttpRequest | None, *, user: Any, device: Device, by_staff: Any = None, reason: str = ""
) -> None:
    """Remove one factor (passkey, TOTP device or recovery-code set) of ``user``.

    From the customer's session (``by_staff`` None): subject to
    :func:`require_can_change_factors` and :func:`require_can_remove`; ``device`` must be the session
    user's (else ``InvalidCredential("unknown_factor")``). From the admin: ``by_staff`` is the
    staff user (the caller checks permissions and approvals) and ``reason`` is audited; the customer is
    notified either way. Raises :class:`~authguard.exceptions.StepUpRequired`,
    :class:`FactorCoolingOff` or :class:`~authguard.exceptions.InvalidCredential`.
    """
    if by_staff is None:
        if request is None:
            raise ValueError("remove_factor needs the customer's request or by_staff")
        require_can_change_factors(request, user=user)
        user = request.user
    # SECURITY: only the user's own device; the id may come from the request.
    if device is None or getattr(device, "user_id", None) != user.pk:
        raise InvalidCredential(_("There is no such security method on your account."), code="unknown_factor")
    if by_staff is None:
        require_can_remove(request, user=user, device=device)  # type: ignore[arg-type]
    with transaction.atomic():
        # SECURITY: the check and the mark under the account row's lock: two requests, one change.
        if by_staff is None and not added_in_this_session(request, device):  # its own addition: not hers
            require_verified_since_change(request, user=user, removing=True, lock=True)  # type: ignore[arg-type]
        _delete_factor(
            user, device, reason=reason or ("staff" if by_staff else "customer"), by_staff=by_staff
        )
        # The desk's removal counts too: a change in flight of any session comes after it.
        count_change(request if by_staff is None else None, user=user, removed=True)


def revoke_factors_added_in_cooling_off(
    user: Any, *, reason: str, request: HttpRequest | None = None, password_changed: bool = False
) -> int:
    """Remove every factor of ``user`` that is cooling off now (a password change or reset, and the desk's
    containment, call this: what a thief added with the password must not survive it), and count the change
    (:func:`~authguard.factors.changes.count_change`; ``request``: the customer's own session that changed
    the password, whose verification it spends). Returns how many were removed. ``reason`` is for the log
    and the audit only; ``password_changed``: the password was just replaced (the customer's own change or
    reset, or the desk's), so unfinished enrollments are discarded and a first factor never established is
    forgotten (:func:`_forget_a_first_factor_never_established`).

    SECURITY: under the account row's lock, in one transaction with the count: a passkey registration in
    flight either commits first and is revoked here, or comes after and finds the count moved on (red team,
    round nineteen: it passed its checks before her reset and committed after it, his passkey kept).
    """
    removed = 0
    with transaction.atomic():
        lock_for_change(user)
        for model in (PasskeyDevice, TOTPDevice, RecoveryCodeDevice):
            for device in list(model.objects.filter(user_id=user.pk)):
                record = FactorRecord.objects.filter(device_id=device.persistent_id).first()
                if not device.confirmed and (record is None or record.disabled_at is None):
                    if password_changed:
                        # An enrollment never finished: discarded with its record (it would block the forget).
                        FactorRecord.objects.filter(device_id=device.persistent_id).delete()
                        device.delete()
                    continue
                if factor_is_cooling_off(device):
                    _delete_factor(user, device, reason=reason)
                    removed += 1
        if password_changed:
            # SECURITY (availability): also when the desk removed his first factor before her reset, and
            # this one had nothing left to revoke (red team, round thirty: she was sent back to the desk).
            _forget_a_first_factor_never_established(user)
        count_change(request, user=user, removed=True)
    if removed:
        logger.warning(
            "authguard revoked %s factors added in cooling-off user=%s (%s)", removed, user.pk, reason
        )
    return removed


def _forget_a_first_factor_never_established(user: Any) -> None:
    """The password changed and no factor is left (this change revoked the last, or the desk removed them
    before it), and the first factor is younger than the longest cooling-off: no factor of it was ever
    established. The account has no first factor again, and
    the customer binds hers from a session the risk engine allows.

    SECURITY: a password-only thief binds an account's first factor (the first-factor path, cooling off);
    her reset revoked it but left "ever had a factor", and she could not set up any factor herself until
    the desk acted (red team, round twenty-five). Not bounded by *which* factors this reset revoked: the
    thief swapped his first factor for a younger one, or left an app enrollment unfinished, and nothing was
    forgotten (round twenty-seven). A factor disabled by failures is a row that stays, so never forgotten
    (case 55); an established factor is removed only by the desk or beside another established factor, which
    stays. "No factor" is :func:`ever_had_factor`'s own test (device rows and factor records), so the next
    call cannot write the first factor back.
    """
    if _has_any_factor_row(user) is not None:
        return
    recent = clock.now() - timedelta(days=app_settings.UNVOUCHED_FACTOR_DAYS)
    AccountSecurity.objects.filter(user_id=user.pk, first_factor_at__gt=recent).update(first_factor_at=None)


__all__ = ["remove_factor", "require_can_remove", "revoke_factors_added_in_cooling_off"]
