"""The one lifecycle of a second factor: enroll, verify, fail, disable, re-bind, remove, recover.

The HTML pages (:mod:`authguard.views`), the JSON API (:mod:`authguard.api`), the order guard and the admin
all call these functions, so each rule below is written once (issue 10, battery cases 55-58):

* **First factor once.** An account that has *ever* had a confirmed factor (:func:`ever_had_factor`, kept on
  :class:`~authguard.models.AccountSecurity` and never cleared) never again gets the "first factor from a
  low-risk session" path, even when every factor was disabled or removed.
* **Cooling-off belongs to the account.** Any factor added, any recovery-code set minted and any e-mail
  change starts (or extends, never shortens) the account's cooling-off (:func:`start_cooling_off`,
  ``AUTHGUARD_FACTOR_COOLING_OFF_HOURS``). A factor *confirmed* during a cooling-off is itself cooling off
  (:func:`factor_is_cooling_off`) until the account's cooling-off ends: it cannot confirm held orders or
  sensitive actions (:func:`may_confirm_sensitive`), unlock, remove other factors or satisfy
  ``@step_up_required``. The age of a factor is when it was confirmed (:func:`factor_confirmed_at`).
  The account's first factor, added from a low-risk session, starts no cooling-off.
* **Failures never hand the account over.** Only failures from a session that could be the customer's
  (:func:`could_be_customer`: verified, low-risk, and already proven with a factor that is not cooling off)
  count towards the NIST limit that disables a factor. Every other session's failures are throttled per
  session, network and account with growing delays (:func:`check_throttle`, ``AUTHGUARD_FACTOR_THROTTLE``).
* **Re-binding is strong.** A disabled factor is bound again only after a fresh verification with another
  active passkey that is not cooling off, or when the portal's identity-proofing hook
  (``AUTHGUARD_IDENTITY_PROOFING_HOOK``) vouches for the session (:func:`require_strong_rebind`); staff
  re-bind through :func:`remove_factor` with ``by_staff``.
* **Removal.** A factor added during the cooling-off can always be removed with any older factor; a factor
  that is cooling off removes nothing but factors that are cooling off too; a passkey that is not cooling off
  is removed only with a passkey (no downgrade); the last strong factor is never removed by the customer.
  A password reset revokes every factor still cooling off (:func:`revoke_factors_added_in_cooling_off`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential, StepUpRequired, Throttled
from authguard.models import (
    AccountSecurity,
    ContactChange,
    FactorKind,
    FactorRecord,
    FactorThrottle,
    PasskeyDevice,
    RecoveryCodeDevice,
)

logger = logging.getLogger(__name__)

#: Cooling-off reasons, as stored and shown to staff.
REASON_FACTOR_ADDED = "factor_added"
REASON_RECOVERY_CODES = "recovery_codes"
REASON_EMAIL_CHANGED = "email_changed"
REASON_FACTOR_REBOUND = "factor_rebound"
#: How long a mailed e-mail confirmation code is valid, and how many wrong codes end the change.
EMAIL_CODE_SECONDS = 30 * 60
EMAIL_CODE_ATTEMPTS = 5
EMAIL_CODE_LENGTH = 8


class FactorCoolingOff(InvalidCredential):
    """The factor (or the account) is in its cooling-off period and cannot do this yet."""

    default_code = "cooling_off"


class RebindRequired(StepUpRequired):
    """A disabled factor can only be re-bound through a strong path (another passkey, identity proofing,
    the desk)."""

    default_code = "rebind_required"


def _now(at: datetime | None) -> datetime:
    return at if at is not None else timezone.now()


def _hours() -> timedelta:
    return timedelta(hours=app_settings.FACTOR_COOLING_OFF_HOURS)


# -- the account's state -------------------------------------------------------------------------------------


def _security(user: Any, *, lock: bool = False) -> AccountSecurity:
    """The user's :class:`AccountSecurity` row (created on first use); ``lock`` inside a transaction."""
    row, _created = AccountSecurity.objects.get_or_create(user_id=user.pk)
    if lock:
        return AccountSecurity.objects.select_for_update().get(pk=row.pk)
    return row


def _has_any_factor_row(user: Any) -> datetime | None:
    """When the user's oldest known factor was confirmed, from records or devices (seeded, admin-made)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    times: list[datetime] = []
    record = FactorRecord.objects.filter(user_id=user.pk).order_by("enrolled_at").first()
    if record is not None:
        times.append(record.enrolled_at)
    for model in (PasskeyDevice, TOTPDevice, RecoveryCodeDevice):
        device = model.objects.filter(user_id=user.pk, confirmed=True).order_by("pk").first()
        if device is not None:
            times.append(getattr(device, "created_at", None) or timezone.now())
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
        row = _security(user, lock=True)
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


def cooling_off_until(user: Any, *, at: datetime | None = None) -> datetime | None:
    """When the account's cooling-off ends; None when it is not cooling off at ``at``."""
    if user is None or getattr(user, "pk", None) is None:
        return None
    at = _now(at)
    row = AccountSecurity.objects.filter(user_id=user.pk).first()
    if row is None or row.cooling_off_until is None or row.cooling_off_until <= at:
        return None
    if row.cooling_off_started_at is not None and row.cooling_off_started_at > at:
        return None  # asked about a time before this cooling-off began
    return row.cooling_off_until


def in_cooling_off(user: Any, *, at: datetime | None = None) -> bool:
    """Whether the account is cooling off at ``at`` (now)."""
    return cooling_off_until(user, at=at) is not None


def cooling_off_reason(user: Any) -> str:
    """Why the running cooling-off started (or was last extended); empty when none runs."""
    if not in_cooling_off(user):
        return ""
    row = AccountSecurity.objects.filter(user_id=user.pk).only("cooling_off_reason").first()
    return row.cooling_off_reason if row is not None else ""


# -- the age and state of one factor -------------------------------------------------------------------------


def factor_confirmed_at(device: Device) -> datetime | None:
    """When ``device`` was confirmed: its record's time (the confirmation, never the start of an enrollment);
    for devices authguard did not enroll (seeded, admin-made), their ``created_at``."""
    record = FactorRecord.objects.filter(device_id=device.persistent_id).only("enrolled_at").first()
    if record is not None:
        return record.enrolled_at
    return getattr(device, "created_at", None)


def factor_is_cooling_off(device: Device, *, at: datetime | None = None) -> bool:
    """Whether ``device`` is cooling off at ``at``: its own cooling-off has not ended, or it was confirmed
    during the account's running cooling-off. Unknown or unconfirmed devices count as cooling off."""
    at = _now(at)
    if device is None or getattr(device, "pk", None) is None:
        return True
    record = FactorRecord.objects.filter(device_id=device.persistent_id).first()
    if record is not None and record.cooling_off_until is not None and record.cooling_off_until > at:
        return True
    confirmed = record.enrolled_at if record is not None else getattr(device, "created_at", None)
    row = AccountSecurity.objects.filter(user_id=device.user_id).first()
    if row is None or row.cooling_off_until is None or row.cooling_off_until <= at:
        return False
    started = row.cooling_off_started_at
    if started is None or started > at:
        return False
    # SECURITY: no time means we cannot prove it is older than the cooling-off: it is cooling off.
    return confirmed is None or confirmed >= started


def may_confirm_sensitive(user: Any, device: Device | None, *, at: datetime | None = None) -> bool:
    """Whether ``device`` may confirm a held order or a sensitive action of ``user`` now: it is the user's,
    confirmed, not disabled and not cooling off."""
    from authguard.factors.base import is_disabled

    if device is None or user is None or getattr(device, "user_id", None) != user.pk:
        return False
    if not getattr(device, "confirmed", False) or is_disabled(device):
        return False
    return not factor_is_cooling_off(device, at=at)


def require_may_confirm_sensitive(user: Any, device: Device | None, *, at: datetime | None = None) -> None:
    """Raise :class:`FactorCoolingOff` (``cooling_off``) unless :func:`may_confirm_sensitive`."""
    if not may_confirm_sensitive(user, device, at=at):
        raise FactorCoolingOff(
            _(
                "This security method was added too recently to confirm this. Use one you had before, or "
                "wait until the cooling-off period ends."
            )
        )


def session_device(request: HttpRequest) -> Device | None:
    """The factor that last verified this session (django-otp's record in the session), if it still exists
    and belongs to the session's user."""
    session = getattr(request, "session", None)
    user = getattr(request, "user", None)
    if session is None or user is None or not user.is_authenticated:
        return None
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if not isinstance(persistent_id, str) or len(persistent_id) > 100:
        return None
    try:
        device = Device.from_persistent_id(persistent_id)
    except (AttributeError, ValueError, LookupError):
        return None
    if device is None or device.user_id != user.pk:
        return None
    return device


def verified_by_cooling_off_factor(request: HttpRequest, *, at: datetime | None = None) -> bool:
    """Whether this session's last strong verification was with a factor that is cooling off (or one that
    no longer exists); False for a session that has not verified with a factor at all."""
    session = getattr(request, "session", None)
    if session is None or not session.get(DEVICE_ID_SESSION_KEY):
        return False
    device = session_device(request)
    return device is None or factor_is_cooling_off(device, at=at)


def could_be_customer(request: HttpRequest | None) -> bool:
    """Whether a failure from this session could be the customer's own: a verified, low-risk, never
    re-scored session that already proved a factor which is not cooling off. A password alone (however
    low its score) is not enough: it is exactly what a thief has."""
    from authguard.sessions import stepup

    if request is None:
        return False
    state = stepup.session_state(request)
    if state is None or state.status != "verified" or not state.low_risk or state.rescored:
        return False
    device = session_device(request)
    return device is not None and not factor_is_cooling_off(device)


# -- throttling failures of sessions that are not the customer's ---------------------------------------------


def _throttle_options() -> dict[str, int]:
    return app_settings.FACTOR_THROTTLE


def _network_of(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 56
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _throttle_keys(request: HttpRequest | None, user: Any) -> list[tuple[str, int]]:
    """(key, free failures) of each scope a failure of this request counts in."""
    from authguard.risk.context import client_ip

    options = _throttle_options()
    keys: list[tuple[str, int]] = [(f"a:{user.pk}", options["account"])]
    if request is not None:
        session = getattr(request, "session", None)
        session_key = getattr(session, "session_key", None)
        if session_key:
            digest = hashlib.sha256(session_key.encode()).hexdigest()[:40]
            keys.append((f"s:{digest}", options["session"]))
        network = _network_of(client_ip(request))
        if network:
            keys.append((f"n:{network}"[:80], options["network"]))
    return keys


def check_throttle(request: HttpRequest | None, *, user: Any, at: datetime | None = None) -> None:
    """Raise :class:`~authguard.exceptions.Throttled` while a scope of this request (its session, network,
    or the account) waits out the back-off of earlier failures. The customer's own sessions
    (:func:`could_be_customer`) are never held back here."""
    if could_be_customer(request):
        return
    at = _now(at)
    keys = [key for key, _free in _throttle_keys(request, user)]
    blocked = (
        FactorThrottle.objects.filter(key__in=keys, blocked_until__gt=at)
        .order_by("-blocked_until")
        .values_list("blocked_until", flat=True)
        .first()
    )
    if blocked is not None:
        raise Throttled(retry_after=max(1, int((blocked - at).total_seconds() + 0.999)))


def note_throttle_failure(request: HttpRequest | None, *, user: Any, at: datetime | None = None) -> None:
    """Count a failure of a session that is not the customer's in each of its scopes; beyond the scope's
    free failures, each one doubles the wait (up to ``max_delay`` seconds)."""
    if could_be_customer(request):
        return
    at = _now(at)
    options = _throttle_options()
    window = timedelta(seconds=options["window"])
    with transaction.atomic():
        for key, free in _throttle_keys(request, user):
            row, created = FactorThrottle.objects.select_for_update().get_or_create(
                key=key, defaults={"failures": 0, "last_failure_at": at}
            )
            if not created and row.last_failure_at < at - window:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = at
            if row.failures > free:
                delay = min(2 ** min(row.failures - free - 1, 30), options["max_delay"])
                row.blocked_until = at + timedelta(seconds=delay)
            row.save()


def clear_throttle(*, user: Any) -> None:
    """Forget the account scope's failures (a desk reset, a password reset)."""
    FactorThrottle.objects.filter(key=f"a:{user.pk}").delete()


# -- failures and the NIST limit -----------------------------------------------------------------------------


def record_failure(
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
    from authguard.factors.base import FACTOR_LABELS, _note_change, _notify, _record_for

    record = _record_for(device, kind=kind)
    record.failures += 1
    update = ["failures"]
    if not throttled and kind != FactorKind.PASSKEY and could_be_customer(request):
        record.limit_failures += 1
        update.append("limit_failures")
    if record.disabled_at is None and record.limit_failures >= app_settings.AUTHENTICATOR_FAILURE_LIMIT:
        # SECURITY: NIST SP 800-63B 3.2.2: at the limit the authenticator is disabled until re-bound.
        now = timezone.now()
        record.disabled_at = now
        update.append("disabled_at")
        type(device).objects.filter(pk=device.pk).update(confirmed=False)
        device.confirmed = False
        _notify(device.user, "factor_removed", factor=FACTOR_LABELS[kind], name=device.name)
        _note_change(device.user, now)
        logger.warning(
            "authguard factor disabled after %s failures user=%s device=%s",
            record.limit_failures,
            device.user_id,
            device.persistent_id,
        )
    record.save(update_fields=update)
    return record


def record_success(device: Device) -> None:
    """A successful use of ``device``: its consecutive-failure counts start again from zero."""
    FactorRecord.objects.filter(device_id=device.persistent_id).exclude(failures=0, limit_failures=0).update(
        failures=0, limit_failures=0
    )


# -- enrollment ----------------------------------------------------------------------------------------------


def require_strong_rebind(request: HttpRequest, *, user: Any) -> str:
    """A disabled factor may be bound again only through a strong path; returns which one.

    ``"passkey"``: a fresh verification in this session with another active passkey that is not cooling
    off; ``"identity_proofing"``: the portal's ``AUTHGUARD_IDENTITY_PROOFING_HOOK`` vouches for this
    session; ``"staff"``: the desk granted it (:func:`grant_rebind`), once. Raises
    :class:`RebindRequired` otherwise (never a password session, a relayable code or a
    factor that is cooling off).
    """
    from authguard.sessions import stepup

    if stepup.has_fresh_verification(request, methods=["passkey"]):
        device = session_device(request)
        if isinstance(device, PasskeyDevice) and may_confirm_sensitive(user, device):
            return "passkey"
    if identity_proofed(request, user=user):
        return "identity_proofing"
    if _desk_granted(request, user=user):
        return "staff"
    raise RebindRequired(
        _(
            "This security method was disabled after too many failed attempts. Confirm it is you with "
            "another passkey, or contact the customer desk to set it up again."
        ),
        methods=["passkey"],
    )


#: How long a re-binding granted by the desk stays open (the customer signs in and binds a factor).
DESK_REBIND_HOURS = 72


def grant_rebind(user: Any, *, by_staff: Any, hours: int = DESK_REBIND_HOURS) -> datetime:
    """The desk's path (the admin calls it, after its own approvals): let ``user`` bind a factor again from
    a verified session, once, within ``hours``. The factor bound this way cools off like any new one, and
    the customer is told. Returns until when the grant holds."""
    if by_staff is None or not getattr(by_staff, "is_staff", False):
        raise PermissionError("only staff may grant a re-binding")
    until = timezone.now() + timedelta(hours=hours)
    row = _security(user)
    AccountSecurity.objects.filter(pk=row.pk).update(rebind_granted_until=until, rebind_granted_by=by_staff)
    logger.warning("authguard re-binding granted user=%s staff=%s until=%s", user.pk, by_staff.pk, until)
    return until


def _desk_granted(request: HttpRequest, *, user: Any) -> bool:
    """Whether the desk granted this user a re-binding that still holds (consumed by the enrollment)."""
    from authguard.sessions import stepup

    state = stepup.session_state(request)
    if state is None or state.status != "verified":
        return False
    return AccountSecurity.objects.filter(user_id=user.pk, rebind_granted_until__gt=timezone.now()).exists()


def _consume_desk_grant(user: Any) -> None:
    AccountSecurity.objects.filter(user_id=user.pk).update(rebind_granted_until=None)


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
    """The lifecycle's part of :func:`authguard.factors.base.require_can_change_factors` for a session
    whose user
    has no usable factor: None when the first-factor path may be considered, else raise.

    SECURITY: an account that ever had a factor never again gets a first-factor path (case 55); it needs
    the strong re-bind path instead.
    """
    if has_factors or not ever_had_factor(user):
        return None
    return require_strong_rebind(request, user=user)


def record_enrollment(
    request: HttpRequest | None, *, user: Any, device: Device, kind: str, via: str
) -> FactorRecord:
    """Record a newly confirmed factor: its age (now), cooling-off, notification, history.

    The account's first factor confirmed from a low-risk session starts no cooling-off; every other factor
    (and every recovery-code set) starts or extends the account's cooling-off, and is itself cooling off
    until it ends. Called by every enrollment path inside its transaction.
    """
    from authguard.factors.base import FACTOR_LABELS, _note_change, _notify
    from authguard.sessions import stepup

    now = timezone.now()
    state = stepup.session_state(request) if request is not None else None
    low_risk = bool(state is not None and state.low_risk and not state.rescored)
    # SECURITY: the first-factor exemption holds once per account: the row lock serialises two racing
    # first enrollments, and the second one cools off like any other added factor.
    with transaction.atomic():
        row = _security(user, lock=True)
        first = row.first_factor_at is None and via == "low_risk_first_factor"
        if row.first_factor_at is None:
            row.first_factor_at = now
            row.save(update_fields=["first_factor_at", "updated_at"])
    until: datetime | None = None
    if not (first and low_risk):
        # SECURITY: a factor added to an account that already had one (or from a session that was not
        # low-risk) may be the thief's: the account cools off and the factor confirms nothing meanwhile.
        reason = REASON_RECOVERY_CODES if kind == FactorKind.RECOVERY_CODE else REASON_FACTOR_ADDED
        if via in ("passkey", "identity_proofing", "staff"):
            reason = REASON_FACTOR_REBOUND
        if via == "staff":
            _consume_desk_grant(user)
        until = start_cooling_off(user, reason=reason, at=now)
    record, _created = FactorRecord.objects.update_or_create(
        device_id=device.persistent_id,
        defaults={
            "user": user,
            "kind": kind,
            "enrolled_at": now,
            "enrolled_low_risk": low_risk,
            "enrolled_via": via,
            "cooling_off_until": until,
            "failures": 0,
            "limit_failures": 0,
            "disabled_at": None,
        },
    )
    for extra in [None, *notice_addresses(user)[1:]]:
        # The customer hears of it on the current address and, after an e-mail change, on the old one.
        context: dict[str, Any] = {
            "factor": FACTOR_LABELS[kind],
            "name": device.name,
            "cooling_off_until": until,
        }
        if extra is not None:
            context["to_email"] = extra
        _notify(user, "factor_added", **context)
    _note_change(user, now)
    logger.info(
        "authguard factor added user=%s kind=%s via=%s cooling_off=%s", user.pk, kind, via, bool(until)
    )
    return record


# -- removal and revocation ----------------------------------------------------------------------------------


def _strong_factors(user: Any) -> list[Device]:
    from authguard.factors.base import user_factors

    return [d for d in user_factors(user) if not isinstance(d, RecoveryCodeDevice)]


def require_can_remove(request: HttpRequest, *, user: Any, device: Device) -> None:
    """The rules of removing ``device`` in this session (the caller has checked a fresh verification).

    * a factor that is cooling off may be removed with any older factor (or itself);
    * a session verified with a factor that is cooling off removes nothing else;
    * a passkey that is not cooling off is removed only with another factor that is a passkey;
    * the last strong factor (passkey or authenticator app) is never removed by the customer.
    """
    from authguard.factors.base import kind_of
    from authguard.sessions import stepup

    verifier = session_device(request)
    target_cooling = factor_is_cooling_off(device)
    if (
        verifier is not None
        and verifier.persistent_id != device.persistent_id
        and not target_cooling
        and factor_is_cooling_off(verifier)
    ):
        # SECURITY: a factor added during the cooling-off never removes the customer's older ones.
        raise FactorCoolingOff(
            _(
                "A security method added during the cooling-off period cannot remove your other "
                "methods. Confirm it is you with a method you had before."
            )
        )
    if (
        not target_cooling
        and kind_of(device) == FactorKind.PASSKEY
        and not stepup.has_fresh_verification(request, methods=["passkey"])
    ):
        # SECURITY: a relayable factor (TOTP, a recovery code) never removes a phishing-resistant one;
        # otherwise a phisher with the password and one relayed code could drop the customer's passkey.
        raise StepUpRequired(
            _("Confirm it is you with a passkey to remove a passkey."),
            code="step_up_required",
            methods=["passkey"],
        )
    if kind_of(device) != FactorKind.RECOVERY_CODE and not target_cooling:
        others = [d for d in _strong_factors(user) if d.persistent_id != device.persistent_id]
        if not [d for d in others if not factor_is_cooling_off(d)]:
            raise InvalidCredential(
                _("This is your last security method. Add another one before you remove it."),
                code="last_factor",
            )


def _delete_factor(user: Any, device: Device, *, reason: str, by_staff: Any = None) -> None:
    from authguard.factors.base import FACTOR_LABELS, _note_change, _notify, kind_of

    kind = kind_of(device)
    now = timezone.now()
    with transaction.atomic():
        FactorRecord.objects.filter(device_id=device.persistent_id).delete()
        name = device.name
        device.delete()
        _notify(user, "factor_removed", factor=FACTOR_LABELS[kind], name=name, by_staff=by_staff is not None)
        _note_change(user, now)
    logger.info(
        "authguard factor removed user=%s kind=%s reason=%s staff=%s",
        user.pk,
        kind,
        reason,
        getattr(by_staff, "pk", None),
    )


def remove_factor(
    request: HttpRequest | None, *, user: Any, device: Device, by_staff: Any = None, reason: str = ""
) -> None:
    """Remove one factor (passkey, TOTP device or recovery-code set) of ``user``.

    From the customer's session (``by_staff`` None): subject to
    :func:`authguard.factors.base.require_can_change_factors` and :func:`require_can_remove`; ``device``
    must be
    the session user's (else ``InvalidCredential("unknown_factor")``). From the admin: ``by_staff`` is the
    staff user (the caller checks permissions and approvals) and ``reason`` is audited; the customer is
    notified either way. Raises :class:`~authguard.exceptions.StepUpRequired`,
    :class:`FactorCoolingOff` or :class:`~authguard.exceptions.InvalidCredential`.
    """
    from authguard.factors.base import require_can_change_factors

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
    _delete_factor(user, device, reason=reason or ("staff" if by_staff else "customer"), by_staff=by_staff)


def revoke_factors_added_in_cooling_off(user: Any, *, reason: str) -> int:
    """Remove every factor of ``user`` that is cooling off now (the password-reset hook calls this: what a
    thief added with the password must not survive its reset). Returns how many were removed."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    removed = 0
    for model in (PasskeyDevice, TOTPDevice, RecoveryCodeDevice):
        for device in list(model.objects.filter(user_id=user.pk)):
            record = FactorRecord.objects.filter(device_id=device.persistent_id).first()
            if not device.confirmed and (record is None or record.disabled_at is None):
                continue  # an enrollment never finished: nothing to revoke (it is discarded anyway)
            if factor_is_cooling_off(device):
                _delete_factor(user, device, reason=reason)
                removed += 1
    if removed:
        logger.warning(
            "authguard revoked %s factors added in cooling-off user=%s (%s)", removed, user.pk, reason
        )
    return removed


# -- e-mail address change -----------------------------------------------------------------------------------


def require_contact_change_allowed(request: HttpRequest, *, user: Any) -> str:
    """An e-mail/contact change needs a fresh passkey verification (a passkey not cooling off), or, where
    the customer has no passkey, fresh verifications with two different factors not cooling off, the last
    one within ``AUTHGUARD_STEP_UP_FRESH_SECONDS``. Returns ``"passkey"`` or ``"two_factors"``."""
    from authguard.factors.base import require_can_change_factors, user_factors
    from authguard.sessions import stepup

    require_can_change_factors(request, user=user)
    user = request.user
    verifier = session_device(request)
    if verifier is None or not may_confirm_sensitive(user, verifier):
        raise StepUpRequired(
            _("Confirm it is you with a security method you had before the cooling-off period."),
            code="step_up_required",
            methods=stepup.step_up_methods(user),
        )
    passkeys = [
        d for d in user_factors(user) if isinstance(d, PasskeyDevice) and not factor_is_cooling_off(d)
    ]
    if passkeys:
        if isinstance(verifier, PasskeyDevice) and stepup.has_fresh_verification(
            request, methods=["passkey"]
        ):
            return "passkey"
        raise StepUpRequired(
            _("Confirm it is you with your passkey to change your e-mail address."),
            code="step_up_required",
            methods=["passkey"],
        )
    earlier = request.session.get(SECOND_FACTOR_KEY)
    if (
        isinstance(earlier, dict)
        and earlier.get("id") != verifier.persistent_id
        and float(earlier.get("t", 0)) >= timezone.now().timestamp() - 2 * app_settings.STEP_UP_FRESH_SECONDS
    ):
        other = session_device_by_id(user, earlier.get("id"))
        if other is not None and may_confirm_sensitive(user, other):
            return "two_factors"
    remember_first_factor(request)
    methods = {stepup.method_of(d) for d in user_factors(user) if d.persistent_id != verifier.persistent_id}
    others = sorted(m for m in methods if m is not None)
    raise StepUpRequired(
        _("Confirm it is you with a second, different security method to change your e-mail address."),
        code="second_factor_required",
        methods=[m for m in others if m],
    )


#: Session key remembering the first of two factors proven for a contact change.
SECOND_FACTOR_KEY = "_authguard_contact_first_factor"


def remember_first_factor(request: HttpRequest) -> None:
    """Remember the factor that verified this session, so a second, different one can complete a contact
    change (for customers without a passkey)."""
    device = session_device(request)
    if device is not None:
        request.session[SECOND_FACTOR_KEY] = {"id": device.persistent_id, "t": timezone.now().timestamp()}


def session_device_by_id(user: Any, persistent_id: object) -> Device | None:
    """The user's device with this persistent id, or None."""
    from authguard.factors.base import device_from_id

    return device_from_id(user, persistent_id)


def _email_digest(user_pk: int, email: str, code: str) -> str:
    return salted_hmac(
        "authguard.lifecycle.email-code", f"{user_pk}:{email.lower()}:{code}", algorithm="sha256"
    ).hexdigest()


def _require_email_change_on() -> None:
    """``AUTHGUARD_EMAIL_CHANGE`` off: the built-in e-mail change refuses (400 ``email_change_off``)."""
    if not app_settings.EMAIL_CHANGE:
        raise InvalidCredential(
            _("The e-mail address cannot be changed here. Please contact customer support."),
            code="email_change_off",
        )


def email_is_login_name() -> bool:
    """Whether the user model signs in with its e-mail address (``USERNAME_FIELD`` is the e-mail field): an
    e-mail change then changes what the customer types to sign in."""
    model = get_user_model()
    return bool(model.get_email_field_name() == model.USERNAME_FIELD)


def normalize_email_address(value: object) -> str:
    """``value`` as the address to store: stripped, its domain lower-cased (as Django's
    ``BaseUserManager.normalize_email`` stores new users' addresses), checked by Django's ``validate_email``
    and against the user model's field length. Raises :class:`InvalidCredential` (``invalid_email``)."""
    from django.contrib.auth.base_user import BaseUserManager

    invalid = InvalidCredential(_("Enter a valid e-mail address."), code="invalid_email")
    if not isinstance(value, str) or len(value) > 254:
        raise invalid
    address = BaseUserManager.normalize_email(value.strip())
    model = get_user_model()
    max_length = getattr(model._meta.get_field(model.get_email_field_name()), "max_length", None) or 254
    if not address or len(address) > min(max_length, 254):
        raise invalid
    try:
        validate_email(address)
    except ValidationError:
        raise invalid from None
    return address


def _address_taken(address: str, *, user_pk: Any) -> bool:
    """Whether another account already has ``address`` (case-insensitively: two accounts whose addresses
    differ only in case would share password resets and notices, and confuse an e-mail login)."""
    model = get_user_model()
    field = model.get_email_field_name()
    return model._default_manager.filter(**{f"{field}__iexact": address}).exclude(pk=user_pk).exists()


def _address_unavailable(user: Any, stage: str) -> InvalidCredential:
    """The refusal of an address another account has. The message says no more than a sign-up form would
    (nothing about the other account); staff read the log."""
    logger.warning(
        "authguard: e-mail change refused at %s: the address belongs to another account user=%s",
        stage,
        user.pk,
    )
    return InvalidCredential(_("This address cannot be used."), code="email_unavailable")


def begin_email_change(request: HttpRequest, *, user: Any, new_email: object) -> ContactChange:
    """Start an e-mail change: check the session (:func:`require_contact_change_allowed`), then mail a
    one-time code to the *new* address (it must be the customer's). Nothing changes until
    :func:`confirm_email_change`.

    The address is normalised (:func:`normalize_email_address`) and must not belong to another account.
    Raises :class:`~authguard.exceptions.InvalidCredential` (``email_change_off`` when
    ``AUTHGUARD_EMAIL_CHANGE`` is off, ``invalid_email``, ``same_email``, ``email_unavailable``,
    ``mail_failed``) or :class:`~authguard.exceptions.StepUpRequired`."""
    _require_email_change_on()
    require_contact_change_allowed(request, user=user)
    user = request.user
    address = normalize_email_address(new_email)
    field = get_user_model().get_email_field_name()
    if address.lower() == str(getattr(user, field, "") or "").lower():
        raise InvalidCredential(_("This is already your e-mail address."), code="same_email")
    if _address_taken(address, user_pk=user.pk):
        raise _address_unavailable(user, "request")
    code = "".join(secrets.choice("0123456789") for _ in range(EMAIL_CODE_LENGTH))
    now = timezone.now()
    change, _created = ContactChange.objects.update_or_create(
        user_id=user.pk,
        defaults={
            "new_email": address,
            "code_digest": _email_digest(user.pk, address, code),
            "created_at": now,
            "expires_at": now + timedelta(seconds=EMAIL_CODE_SECONDS),
            "attempts": 0,
        },
    )
    try:
        _mail_code(user, address, code)
    except Exception:
        logger.exception("authguard: could not mail an e-mail confirmation code user=%s", user.pk)
        change.delete()
        raise InvalidCredential(
            _("We could not send the code. Please try again later."), code="mail_failed"
        ) from None
    return change


def _mail_code(user: Any, address: str, code: str) -> None:
    """Mail the confirmation code to the new address (directly: the outbox carries no secrets)."""
    from authguard.notifications.outbox import user_language

    with translation.override(user_language(user)):
        subject = _("Confirm your new e-mail address")
        body = render_to_string(
            "authguard/email/email_verify.txt",
            {
                "code": code,
                "minutes": EMAIL_CODE_SECONDS // 60,
                "user": user,
                "login_name_changes": email_is_login_name(),
            },
        )
    send_mail(subject, body, None, [address], fail_silently=False)


def pending_email_change(user: Any) -> ContactChange | None:
    """The user's e-mail change waiting for its code, if any and not expired."""
    return ContactChange.objects.filter(user_id=user.pk, expires_at__gt=timezone.now()).first()


def confirm_email_change(request: HttpRequest, *, user: Any, code: object) -> str:
    """Finish the pending e-mail change with the code mailed to the new address; returns the new address.

    The session must still be allowed to change contacts. Notifies the old address (and the new one),
    remembers the old address for the cooling-off it starts (held-order notices keep going there too).
    Where the e-mail address is the login name (:func:`email_is_login_name`) the customer signs in with
    the new address from now on; the notices say so (``login_name_changed`` in their context).

    The address is checked again under the user's row lock and the locks of every pending change to the
    same address, so of two accounts confirming one address at once the second is refused; a unique
    constraint on the user model that fires anyway is refused the same way, with nothing written.
    Raises :class:`~authguard.exceptions.InvalidCredential` (``email_change_off``, ``no_change``,
    ``wrong_code``, ``email_unavailable``) or :class:`~authguard.exceptions.Throttled` after too many wrong
    codes (the change is then dropped).
    """
    _require_email_change_on()
    require_contact_change_allowed(request, user=user)
    user = request.user
    change = pending_email_change(user)
    if change is None:
        raise InvalidCredential(_("Start the e-mail change again."), code="no_change")
    token = code.strip() if isinstance(code, str) else ""
    expected = change.code_digest
    if not token.isdigit() or not constant_time_compare(
        _email_digest(user.pk, change.new_email, token), expected
    ):
        ContactChange.objects.filter(pk=change.pk).update(attempts=F("attempts") + 1)
        try:
            change.refresh_from_db()
        except ContactChange.DoesNotExist:  # a parallel request used up the last try
            raise InvalidCredential(_("Start the e-mail change again."), code="no_change") from None
        if change.attempts >= EMAIL_CODE_ATTEMPTS:
            change.delete()
            raise Throttled(
                _("Too many wrong codes. Start the e-mail change again."), code="too_many_attempts"
            )
        raise InvalidCredential(_("That code is not right."), code="wrong_code")
    model = get_user_model()
    field = model.get_email_field_name()
    login_name = email_is_login_name()
    now = timezone.now()
    old = str(getattr(user, field, "") or "")
    try:
        with transaction.atomic():
            # SECURITY: lock order as the order and action guards: the user's row first. Then every
            # pending change to this address, in one order, so two accounts confirming it queue up and
            # the second sees the first's address below.
            model._default_manager.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
            claims = ContactChange.objects.select_for_update().filter(new_email__iexact=change.new_email)
            list(claims.order_by("pk").values_list("pk", flat=True))
            if not ContactChange.objects.filter(pk=change.pk, code_digest=expected).exists():
                # A parallel confirmation (or a new request) of this user's change came first.
                raise InvalidCredential(_("Start the e-mail change again."), code="no_change")
            if _address_taken(change.new_email, user_pk=user.pk):
                raise _address_unavailable(user, "confirmation")
            old = str(model._default_manager.filter(pk=user.pk).values_list(field, flat=True).first() or "")
            setattr(user, field, change.new_email)
            user.save(update_fields=[field])
            ContactChange.objects.filter(pk=change.pk).delete()
            note_contact_changed(user, old_email=old, at=now)
            from authguard.factors.base import _note_change, _notify

            if old:
                _notify(user, "email_changed", to_email=old, login_name_changed=login_name)
            _notify(
                user,
                "email_changed_new",
                hours=app_settings.FACTOR_COOLING_OFF_HOURS,
                login_name_changed=login_name,
            )
            _note_change(user, now)
    except IntegrityError:
        # SECURITY: a unique constraint on the address (an e-mail login) fired after all (a write that
        # bypassed these locks, the admin say): nothing was written; refuse like the check above.
        setattr(user, field, old)
        ContactChange.objects.filter(pk=change.pk).delete()
        raise _address_unavailable(user, "save") from None
    except InvalidCredential as error:
        if error.code == "email_unavailable":
            ContactChange.objects.filter(pk=change.pk).delete()  # the address cannot become this user's
        raise
    logger.info("authguard e-mail changed user=%s login_name_changed=%s", user.pk, login_name)
    return change.new_email


def note_contact_changed(
    user: Any, *, old_email: str = "", reason: str = REASON_EMAIL_CHANGED, at: datetime | None = None
) -> datetime:
    """A contact (e-mail address, phone) of ``user`` was changed: start the account's cooling-off and, for an
    e-mail change, remember the old address so that notices keep going there until it ends
    (:func:`notice_addresses`). The sensitive-action guard calls this for a confirmed contact change.
    Returns when the cooling-off ends."""
    until = start_cooling_off(user, reason=reason, at=at)
    if old_email:
        AccountSecurity.objects.filter(user_id=user.pk).update(previous_email=old_email[:254])
    return until


def notice_addresses(user: Any) -> list[str]:
    """Where held-order and security notices of ``user`` go: the current address, and during a cooling-off
    started by an e-mail change also the previous one (a thief who changed it cannot silence them)."""
    field = get_user_model().get_email_field_name()
    addresses = [str(getattr(user, field, "") or "")]
    row = AccountSecurity.objects.filter(user_id=user.pk).first()
    if row is not None and row.previous_email and in_cooling_off(user):
        addresses.append(row.previous_email)
    seen: list[str] = []
    for address in addresses:
        if address and address.lower() not in [a.lower() for a in seen]:
            seen.append(address)
    return seen


__all__ = [
    "FactorCoolingOff",
    "RebindRequired",
    "begin_email_change",
    "check_throttle",
    "clear_throttle",
    "confirm_email_change",
    "email_is_login_name",
    "cooling_off_reason",
    "cooling_off_until",
    "could_be_customer",
    "ever_had_factor",
    "factor_confirmed_at",
    "factor_is_cooling_off",
    "grant_rebind",
    "identity_proofed",
    "in_cooling_off",
    "may_confirm_sensitive",
    "note_throttle_failure",
    "normalize_email_address",
    "note_contact_changed",
    "notice_addresses",
    "pending_email_change",
    "record_enrollment",
    "record_failure",
    "record_success",
    "remove_factor",
    "require_can_remove",
    "require_contact_change_allowed",
    "require_may_confirm_sensitive",
    "require_strong_rebind",
    "revoke_factors_added_in_cooling_off",
    "session_device",
    "start_cooling_off",
    "verified_by_cooling_off_factor",
]
