"""The one lifecycle of a second factor: enroll, verify, fail, disable, re-bind, remove, recover.

The HTML pages (:mod:`authguard.views`), the JSON API (:mod:`authguard.api`), the order guard and the admin
all call these functions, so each rule below is written once (issue 10, battery cases 55-58):

* **First factor once.** An account that has *ever* had a confirmed factor (:func:`ever_had_factor`, kept on
  :class:`~authguard.models.AccountSecurity` and never cleared) never again gets the "first factor from a
  low-risk session" path, even when every factor was disabled or removed.
* **Cooling-off belongs to the account.** Any factor added, any recovery-code set minted and any e-mail change
  starts (or extends, never shortens) the account's cooling-off (:func:`start_cooling_off`,
  ``AUTHGUARD_FACTOR_COOLING_OFF_HOURS``). A factor *confirmed* during a cooling-off is itself cooling off
  (:func:`~authguard.factors.inventory.factor_is_cooling_off`) until the account's cooling-off ends: it cannot
  confirm held orders or sensitive actions (:func:`~authguard.factors.inventory.may_confirm_sensitive`),
  unlock, remove other factors or satisfy ``@step_up_required``. The age of a factor is when it was confirmed
  (:func:`~authguard.factors.inventory.factor_confirmed_at`). The account's first factor, added from a
  low-risk session, starts no cooling-off.
* **Failures never hand the account over.** Only failures from a session that could be the customer's
  (:func:`authguard.factors.throttles.could_be_customer`) count towards the NIST limit that disables a
  factor (:func:`authguard.factors.base.record_factor_failure`); every other session's are throttled
  (:mod:`authguard.factors.throttles`).
* **Re-binding is strong.** A disabled factor is bound again only after a fresh verification with another
  active passkey that is not cooling off, or when the portal's identity-proofing hook
  (``AUTHGUARD_IDENTITY_PROOFING_HOOK``) vouches for the session (:func:`require_strong_rebind`); staff
  re-bind through :func:`authguard.factors.removal.remove_factor` with ``by_staff``.
* **Removal** (:mod:`authguard.factors.removal`): a factor added during the cooling-off can always be removed
  with any older factor; a factor that is cooling off removes nothing but factors that are cooling off too;
  an established factor yields to no relayed code; the last strong factor is never removed by the customer.
  A password reset revokes every factor still cooling off.
* **Who may change factors at all** (:func:`require_can_change_factors`): adding, removing or replacing a
  factor (and changing the e-mail address, :mod:`authguard.factors.contact`) needs a fresh strong
  verification with an existing factor; a user who never had any factor may enroll the first one only from
  a session the risk engine allowed outright.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Min
from django.http import HttpRequest
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard import clock
from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential, StepUpRequired
from authguard.factors import changes, desk_grant
from authguard.factors import methods as factor_methods
from authguard.factors.base import note_change, tell_user
from authguard.factors.desk_grant import grant_rebind, withdraw_rebind_grant
from authguard.factors.inventory import (
    FACTOR_LABELS,
    disabled_device_ids,
    dropped_addresses,
    is_disabled,
    may_confirm_sensitive,
    notice_addresses,
    security_row,
    session_device,
    since_last_passkey_change,
    unrecorded_confirmed_at,
    unused_recovery_codes,
    user_factors,
)
from authguard.factors.throttles import ESTABLISHED_DEVICE_DAYS
from authguard.models import (
    AccountSecurity,
    FactorKind,
    FactorRecord,
    KnownDevice,
    PasskeyDevice,
    RecoveryCodeDevice,
)
from authguard.notifications.outbox import request_context
from authguard.sessions import device_binding
from authguard.sessions import state as sessions_state

logger = logging.getLogger(__name__)

#: Cooling-off reasons, as stored and shown to staff.
REASON_FACTOR_ADDED = "factor_added"
REASON_RECOVERY_CODES = "recovery_codes"
REASON_EMAIL_CHANGED = "email_changed"
REASON_FACTOR_REBOUND = "factor_rebound"


class FactorCoolingOff(InvalidCredential):
    """The factor (or the account) is in its cooling-off period and cannot do this yet."""

    default_code = "cooling_off"


class RebindRequired(StepUpRequired):
    """A disabled factor can only be re-bound through a strong path (another passkey, identity proofing,
    the desk)."""

    default_code = "rebind_required"


def _now(at: datetime | None) -> datetime:
    return at if at is not None else clock.now()


def _hours() -> timedelta:
    return timedelta(hours=app_settings.FACTOR_COOLING_OFF_HOURS)


# -- the account's state -------------------------------------------------------------------------------------


def _has_any_factor_row(user: Any) -> datetime | None:
    """When the user's oldest known factor was confirmed, from records or devices (seeded, admin-made)."""
    times: list[datetime] = []
    record = FactorRecord.objects.filter(user_id=user.pk).order_by("enrolled_at").first()
    if record is not None:
        times.append(record.enrolled_at)
    for model in (PasskeyDevice, TOTPDevice, RecoveryCodeDevice):
        device = model.objects.filter(user_id=user.pk, confirmed=True).order_by("pk").first()
        if device is not None:
            times.append(unrecorded_confirmed_at(device) or clock.now())
    return min(times) if times else None


def ever_had_factor(user: Any) -> bool:
    """Whether the account ever had a confirmed second factor (never forgotten, whatever happened since)."""
    if user is None or getattr(user, "pk", None) is None:
        return False
    row = AccountSecurity.objects.filter(user_id=user.pk).only("first_factor_at").first()
    if row is not None and row.first_factor_at is not None:
        return True
    first = _has_any_factor_row(user)
    if first is None:
        return False
    # Accounts from before this record existed: remember it now, once.
    AccountSecurity.objects.update_or_create(user_id=user.pk, defaults={"first_factor_at": first})
    return True


def start_cooling_off(user: Any, *, reason: str, at: datetime | None = None) -> datetime:
    """Start the account's cooling-off at ``at`` (now), or extend the running one; never shortens it.

    Returns when the cooling-off ends. The start of a running cooling-off is kept, so every factor
    confirmed since it began stays cooling off until the (extended) end.
    """
    at = _now(at)
    until = at + _hours()
    with transaction.atomic():
        row = security_row(user, lock=True)
        running = row.cooling_off_until is not None and row.cooling_off_until > at
        if not running:
            row.cooling_off_started_at = at
        if row.cooling_off_until is None or until > row.cooling_off_until:
            row.cooling_off_until = until
        row.cooling_off_reason = str(reason)[:40]
        row.save(
            update_fields=["cooling_off_started_at", "cooling_off_until", "cooling_off_reason", "updated_at"]
        )
    logger.info("authguard cooling-off user=%s reason=%s until=%s", user.pk, reason, row.cooling_off_until)
    return row.cooling_off_until


def require_may_confirm_sensitive(user: Any, device: Device | None, *, at: datetime | None = None) -> None:
    """Raise :class:`FactorCoolingOff` (``cooling_off``) unless :func:`may_confirm_sensitive`."""
    if not may_confirm_sensitive(user, device, at=at):
        raise FactorCoolingOff(
            _(
                "This security method was added too recently to confirm this. Use one you had before, or "
                "wait until the cooling-off period ends."
            )
        )


def note_contact_changed(
    user: Any,
    *,
    old_email: str = "",
    reason: str = REASON_EMAIL_CHANGED,
    at: datetime | None = None,
    by_passkey: bool = False,
) -> datetime:
    """A contact (e-mail address, phone) of ``user`` was changed: start the account's cooling-off and, for an
    e-mail change, remember the old address so that notices keep going there until it ends
    (:func:`notice_addresses`). The sensitive-action guard calls this for a confirmed contact change.
    ``by_passkey``: the change was confirmed with a passkey not cooling off (where the password reset's
    link goes: :func:`~authguard.factors.inventory.reset_addresses`). Returns when the cooling-off ends."""
    at = at or clock.now()
    until = start_cooling_off(user, reason=reason, at=at)
    if not old_email:
        return until
    with transaction.atomic():
        row = security_row(user, lock=True)
        # Addresses of an earlier cooling-off are never used again (previous_addresses): forget them.
        row.previous_emails.filter(dropped_at__lt=row.cooling_off_started_at).delete()
        # Counted from her last passkey-confirmed change: a change after it must be remembered even when
        # its address was replaced before it (her A->B by codes, B->A by passkey, then his A->C: A is hers).
        _strong, since = since_last_passkey_change(dropped_addresses(user, at=at))
        remembered = [address.lower() for address in since]
        # SECURITY: every address the account had during the cooling-off hears of it, so a thief's change
        # after the customer's own (A->B, then B->C) still reaches B. Once the bound is reached the earliest
        # stay and later ones are not added: a thief changing it again and again cannot push hers out
        # (the addresses after his first change are his own).
        # A passkey-confirmed change is always remembered (only she can make one).
        if by_passkey or (
            old_email.lower() not in remembered and len(remembered) < AccountSecurity.PREVIOUS_EMAILS_KEPT
        ):
            # SECURITY: dropped within the cooling-off it belongs to: a passkey registration of his that
            # started it a moment after this change read its clock left her address before it, forgotten,
            # and every notice and reset link went to him alone (red team, round forty-one).
            dropped = max(at, row.cooling_off_started_at or at)
            row.previous_emails.create(email=old_email[:254], dropped_at=dropped, by_passkey=by_passkey)
    return until


# -- who may change factors ------------------------------------------------------------------------------


def factors_of_session(request: HttpRequest, user: Any) -> list[Device]:
    """The user's usable factors (:func:`user_factors`), with the recovery-code set that verified this
    session even when that verification spent its last code, in a session vouched for on its own
    (:func:`session_vouched`: her browser of a month on a low-risk sign-in, or a trusted passkey).

    Her last printed code proves her as well as her first: without it, her step-up with her last code found
    "no factor" and sent her to the desk's re-binding, and the passkey one relayed code of that set had
    added looked like her last factor (red team, round twenty-five). SECURITY: only where the session is
    vouched for: the same last code relayed to a thief's new browser removed her only usable factor, or
    renewed the spent set as his (round twenty-six).
    """
    factors = user_factors(user)
    verifier = session_device(request)
    if (
        isinstance(verifier, RecoveryCodeDevice)
        and verifier.confirmed
        and all(device.persistent_id != verifier.persistent_id for device in factors)
        and not is_disabled(verifier)
        and session_vouched(request, user=user, via="fresh_verification", now=clock.now())
    ):
        factors.append(verifier)
    return factors


def verified_by_usable_factor(request: HttpRequest) -> bool:
    """Whether the factor that verified this session is one of its user's usable factors
    (:func:`factors_of_session`). SECURITY: a recovery-code set whose last code this session spent acts for
    her only in a session vouched for on its own; relayed to the thief's browser, it changed her password,
    which revoked her only usable factor (red team, round twenty-seven)."""
    verifier = session_device(request)
    return verifier is not None and any(
        device.persistent_id == verifier.persistent_id for device in factors_of_session(request, request.user)
    )


def require_can_change_factors(request: HttpRequest, *, user: Any = None) -> str:
    """Allow a factor change (add, remove, replace; or an email change) in this session, or raise.

    Returns how it is authorised: ``"fresh_verification"`` (a passkey, TOTP or recovery-code verification in
    this verified session within ``AUTHGUARD_STEP_UP_FRESH_SECONDS``) or ``"low_risk_first_factor"`` (the
    user has no factor yet and the risk engine allowed this session's login outright).
    Raises :class:`~authguard.exceptions.StepUpRequired` otherwise (``code`` ``"login_required"``,
    ``"step_up_required"`` or ``"risky_session"``), with the methods the user could verify with.
    """
    session_user = getattr(request, "user", None)
    if session_user is None or not session_user.is_authenticated:
        raise StepUpRequired(_("Sign in first."), code="login_required")
    # SECURITY: a session changes its own user's factors only; ``user`` never comes from the request body.
    if user is not None and user.pk != session_user.pk:
        raise StepUpRequired(_("Sign in first."), code="login_required")
    user = session_user
    state = sessions_state.session_state(request)
    methods = factor_methods.step_up_methods(user)
    if state is None or state.status != "verified":
        # SECURITY: a password-only (pending) session, or one whose state cannot be read, changes nothing.
        raise StepUpRequired(code="step_up_required", methods=methods)
    if factors_of_session(request, user):
        if sessions_state.has_fresh_verification(request):
            return "fresh_verification"
        raise StepUpRequired(
            _("Confirm it is you with one of your existing security methods first."),
            code="step_up_required",
            methods=methods,
        )
    # SECURITY: an account that ever had a factor never again gets the first-factor path (case 55): every
    # factor disabled or removed, it re-binds only through a strong path (identity proofing, the desk).
    strong = require_enrollment_allowed(request, user=user, has_factors=False)
    if strong is not None:
        return strong
    # The first factor needs a login the risk engine allowed outright; one from a session that is not
    # low-risk as well (an anonymising network, say) still starts its cooling-off (record_enrollment).
    if state.login_action == "allow" and not state.rescored:
        return "low_risk_first_factor"
    raise StepUpRequired(
        _(
            "For your protection, a first security method can only be added from a device and network you "
            "usually sign in from. Please sign in again from there."
        ),
        code="risky_session",
        methods=[],
    )


def can_change_factors(request: HttpRequest) -> bool:
    """Whether :func:`require_can_change_factors` would allow a factor change in this session now."""
    try:
        require_can_change_factors(request)
    except StepUpRequired:
        return False
    return True


def require_fresh_verification(request: HttpRequest) -> str:
    """For an email-address change (or any change as sensitive as a factor change): the same rules as
    :func:`require_can_change_factors`. Raises :class:`~authguard.exceptions.StepUpRequired`."""
    return require_can_change_factors(request)


# -- enrollment ----------------------------------------------------------------------------------------------


def require_strong_rebind(request: HttpRequest, *, user: Any) -> str:
    """A disabled factor may be bound again only through a strong path; returns which one.

    ``"passkey"``: a fresh verification in this session with another active passkey that is not cooling
    off; ``"identity_proofing"``: the portal's ``AUTHGUARD_IDENTITY_PROOFING_HOOK`` vouches for this
    session; ``"staff"``: the desk granted it (:func:`grant_rebind`), once, and this session entered the
    grant's desk code (:func:`authguard.factors.desk_grant.redeem_code`). Raises :class:`RebindRequired`
    otherwise (never a password session, a relayable code or a factor that is cooling off).
    """
    if changes.fresh_trusted_passkey(request, user=user):
        return "passkey"
    if identity_proofed(request, user=user):
        return "identity_proofing"
    if desk_grant.desk_granted(request, user=user):
        # SECURITY: only a session that entered the grant's desk code, which the desk hands her out of band:
        # a password alone signs in to an account without a usable factor, and a browser rule (a month, her
        # factor verified there once) was met by the thief's parked browser and one relayed code (red team,
        # rounds seventy and seventy-one).
        return "staff"
    if desk_grant.open_grant_until(user) is not None:
        raise RebindRequired(
            _("Enter the code our customer desk gave you first, then set up your new sign-in method."),
            code="desk_code_required",
            methods=[],
        )
    verifier = session_device(request)
    spent_codes = isinstance(verifier, RecoveryCodeDevice) and not unused_recovery_codes(verifier)
    if disabled_device_ids(user) and not spent_codes:
        message = _(
            "This security method was disabled after too many failed attempts. Confirm it is you with "
            "another passkey, or contact the customer desk to set it up again."
        )
    else:
        # Her last printed code verified this session, or nothing was disabled (her methods were removed).
        message = _(
            "You have no security method left that can be used here, for example because your last "
            "recovery code was used. Confirm it is you with another passkey, or contact the customer desk "
            "to set one up again."
        )
    raise RebindRequired(message, methods=["passkey"])


def identity_proofed(request: HttpRequest, *, user: Any) -> bool:
    """Whether the portal's identity-proofing hook vouches for this session's user (False without a hook)."""
    path = app_settings.IDENTITY_PROOFING_HOOK
    if not path:
        return False
    try:
        hook = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"AUTHGUARD_IDENTITY_PROOFING_HOOK: {exc}") from exc
    try:
        return bool(hook(request, user))
    except Exception:
        # SECURITY: a hook that fails vouches for nobody.
        logger.exception("authguard: the identity-proofing hook failed")
        return False


def require_enrollment_allowed(request: HttpRequest, *, user: Any, has_factors: bool) -> str | None:
    """The lifecycle's part of :func:`require_can_change_factors` for a session whose user has no usable
    factor: None when the first-factor path may be considered, else raise.

    SECURITY: an account that ever had a factor never again gets a first-factor path (case 55); it needs
    the strong re-bind path instead.
    """
    if has_factors or not ever_had_factor(user):
        return None
    return require_strong_rebind(request, user=user)


def record_enrollment(
    request: HttpRequest | None,
    *,
    user: Any,
    device: Device,
    kind: str,
    via: str,
    replaced: Sequence[str | None] = (),
) -> FactorRecord:
    """Record a newly confirmed factor: its age (now), cooling-off, notification, history.

    The account's first factor confirmed from a low-risk session starts no cooling-off; every other factor
    (and every recovery-code set) starts or extends the account's cooling-off, and is itself cooling off
    until it ends. Called by every enrollment path inside its transaction. ``replaced``: what
    :func:`~authguard.factors.removal.delete_replaced` answered for each factor this one replaces: a usable
    one makes the change a removal as well (:mod:`authguard.factors.changes`), and any confirmed one counts
    as removed (the sessions it verified change nothing more).
    """
    now = clock.now()
    low_risk = session_low_risk(request)
    # What the session was, kept on the record (a lock a stranger's failures made is ended only by a factor
    # enrolled vouched for); the setting's 0 switches off the longer cooling-off only, never makes a session
    # vouched: in a portal's launch weeks his passkey had ended the lock he made (red team, round forty-five).
    session_was_vouched = request is None or session_vouched(request, user=user, via=via, now=now)
    vouched = session_was_vouched or not app_settings.UNVOUCHED_FACTOR_DAYS
    # SECURITY: the first-factor exemption holds once per account: the row lock serialises two racing
    # first enrollments, and the second one cools off like any other added factor.
    with transaction.atomic():
        row = security_row(user, lock=True)
        if request is not None:
            # SECURITY: under the row's lock, in the enrollment's transaction: a refusal rolls it back.
            changes.require_verified_since_change(
                request, user=user, removing="usable" in replaced, lock=True, via=via, adding=device
            )
        if via == "staff" and not desk_grant.consume(request, row=row):
            # SECURITY: the grant is used up under the row's lock, once, by the grant this session's code
            # opened: two enrollments racing from that session bound two factors (review, round 72).
            raise RebindRequired(_("There is no open permission from our desk for this account."), methods=[])
        first = row.first_factor_at is None and via == "low_risk_first_factor"
        if row.first_factor_at is None:
            row.first_factor_at = now
            row.save(update_fields=["first_factor_at", "updated_at"])
    until: datetime | None = None
    if not (first and low_risk and vouched):
        # SECURITY: a factor added to an account that already had one (or from a session that was not
        # low-risk) may be the thief's: the account cools off and the factor confirms nothing meanwhile.
        reason = REASON_RECOVERY_CODES if kind == FactorKind.RECOVERY_CODE else REASON_FACTOR_ADDED
        if via in ("passkey", "identity_proofing", "staff"):
            reason = REASON_FACTOR_REBOUND
        until = start_cooling_off(user, reason=reason, at=now)
    if not vouched:
        # SECURITY: nothing but a password and perhaps one relayed code stands behind this factor: it cools
        # off for days, not hours, so a thief cannot simply outwait the customer's "factor added" notice
        # and then release held orders with a factor of his own (red team, 2026-12-04).
        until = max(until or now, now + timedelta(days=app_settings.UNVOUCHED_FACTOR_DAYS))
    record, _created = FactorRecord.objects.update_or_create(
        device_id=device.persistent_id,
        defaults={
            "user": user,
            "kind": kind,
            "enrolled_at": now,
            "enrolled_low_risk": low_risk,
            "enrolled_via": via,
            "enrolled_vouched": session_was_vouched,
            "cooling_off_until": until,
            "failures": 0,
            "limit_failures": 0,
            "disabled_at": None,
        },
    )
    # The customer hears of it on the current address and, after an e-mail change, on the old one.
    # SECURITY: where and on what it was added, not the name whoever added it chose (a thief's "Hanako
    # iPhone" looks like hers; round 53): the name is kept for the console, never shown in the mail.
    where = request_context(request)
    label = FACTOR_LABELS[kind]
    tell_user(user, "factor_added", factor=label, name=device.name, cooling_off_until=until, **where)
    note_change(user, now)
    removed = any(r is not None for r in replaced)
    changes.count_change(request, user=user, removed=removed, added=device.persistent_id)
    logger.info(
        "authguard factor added user=%s kind=%s via=%s cooling_off=%s", user.pk, kind, via, bool(until)
    )
    return record


def session_low_risk(request: HttpRequest | None) -> bool:
    """Whether this session's sign-in was allowed outright and never re-scored since."""
    state = sessions_state.session_state(request) if request is not None else None
    return bool(state is not None and state.low_risk and not state.rescored)


def session_vouched(request: HttpRequest, *, user: Any, via: str, now: datetime) -> bool:
    """Whether more than a password and a relayable code vouch for a factor enrolled in this session: a
    strong re-bind (another passkey, identity proofing), a fresh verification with a trusted passkey, or a
    low-risk session (:func:`session_low_risk`) on a browser a factor of hers verified on at least
    ``ESTABLISHED_DEVICE_DAYS`` ago (``KnownDevice.factor_verified_at``).

    SECURITY: the desk's grant (``via="staff"``) vouches for nothing by itself: it sits on the account, and a
    session with the password alone could use it (:func:`require_strong_rebind` accepts it only where this
    says the session is vouched; red team, 2026-12-05)."""
    if via in ("passkey", "identity_proofing") or changes.fresh_trusted_passkey(request, user=user):
        return True
    if not session_low_risk(request):
        return False
    # SECURITY: "known" is cheap (two allowed sign-ins from the thief's own browser); "known for a month"
    # is not. A copied cookie of the customer's browser is what the risk engine's device findings are for.
    device = sessions_state.bound_context(sessions_state.raw_state(request) or {}).get("dev")
    if not device:
        return False
    # SECURITY: a DBSC-bound browser's key proved itself since the session's step-up (else sign-in): a fresh
    # copy of her jar and one relayed code removed her authenticator (red team, round fifty-seven).
    binding = device_binding.device_binding_state(
        request, device_cookie_hash=device, user_id=user.pk, ended_holds=False
    )
    state = sessions_state.session_state(request)
    proved = state is not None and device_binding.key_proved_since(request, state.strong_at or state.login_at)
    if binding != "unbound" and not (binding == "bound_ok" and proved):
        return False
    since = now - timedelta(days=ESTABLISHED_DEVICE_DAYS)
    rows = KnownDevice.objects.filter(user_id=user.pk, cookie_hash=device, revoked_at__isnull=True)
    row = rows.values_list("first_seen_at", "learned_at", "factor_verified_at").first()
    # SECURITY: a browser only listed by a relayed code vouches for nothing (round eleven), and its month
    # counts from a factor of hers verifying there: a browser parked a month after two password-only
    # sign-ins, then one relayed code, vouched for the thief's passkey (red team, round sixty-eight). With
    # the desk's grant, learned a month ago will do, if her factor ever verified there (round seventy: the
    # parked browser took the grant she asked for, with no code at all).
    mine, learned, verified = row if row is not None else (None, None, None)
    if mine is None or learned is None:
        return False
    if verified is not None and (verified <= since or (via == "staff" and learned <= since)):
        return True
    # A new customer (an account younger than that) has no month-old browser: the browser the account was
    # first used from counts. A thief is vouched for only if he signed in before the customer ever did.
    # SECURITY: "first" over every browser the account ever had, forgotten ones included, so forgetting hers
    # does not make his the first (red team, 2026-12-05); a browser that took over an imported row (the
    # portal's own device cookie) carries that row's first sign-in.
    joined = getattr(user, "date_joined", None)
    earliest = KnownDevice.objects.filter(user_id=user.pk).aggregate(first=Min("first_seen_at"))["first"]
    return isinstance(joined, datetime) and joined > since and earliest is not None and mine <= earliest


__all__ = [
    "notice_addresses",
    "can_change_factors",
    "ever_had_factor",
    "FactorCoolingOff",
    "grant_rebind",
    "withdraw_rebind_grant",
    "identity_proofed",
    "note_contact_changed",
    "RebindRequired",
    "record_enrollment",
    "require_can_change_factors",
    "session_low_risk",
    "session_vouched",
    "require_enrollment_allowed",
    "require_fresh_verification",
    "require_may_confirm_sensitive",
    "require_strong_rebind",
    "start_cooling_off",
]
