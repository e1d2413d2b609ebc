"""Second factors besides the WebAuthn ceremony itself: TOTP, recovery codes, and the rules for all factors.

* **TOTP** is django-otp's ``TOTPDevice`` (tolerance one step, ``last_t`` replay protection, exponential
  throttle), always verified through :func:`django_otp.verify_token` inside a transaction that has locked the
  device row, so one code is accepted once however many requests race (battery cases 10-13).
* **Recovery codes** are :class:`~authguard.models.RecoveryCodeDevice`: ten codes of 16 base32 characters
  (80 bits each), stored as a keyed digest (HMAC-SHA256), single use, throttled on their own counter
  (never by TOTP traffic: django-otp #110), and using one notifies the user (case 14-15).
* **Failure limits** (NIST SP 800-63B 3.2.2): every failed attempt at a factor, throttled ones included,
  counts on that factor's :class:`~authguard.models.FactorRecord`; only those from a session that could be
  the customer's count towards ``AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT``, at which the factor is disabled
  until re-bound; other sessions are throttled per session, network and account instead
  (:mod:`authguard.factors.lifecycle`). Counters are per factor, so disabling one never locks the others.
* **Enrollment rules**: adding, removing or replacing a factor (and changing the email address) needs a
  fresh strong verification with an existing factor; a user who never had any factor may enroll the first
  one only from a session the risk engine allowed outright (:func:`require_can_change_factors`); an account
  that ever had one re-binds only through a strong path. Every change notifies the user and is reported to
  the risk engine (:func:`authguard.risk.history.note_factor_change`).
* **Cooling-off** belongs to the account: every factor added (but a low-risk first one), every recovery-code
  set and every e-mail change starts it; factors confirmed during it cannot confirm held orders or sensitive
  actions until it ends (:func:`in_cooling_off`, :mod:`authguard.factors.lifecycle`).
"""

from __future__ import annotations

import base64
import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import django_otp
from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential, StepUpRequired, Throttled
from authguard.models import FactorKind, FactorRecord, PasskeyDevice, RecoveryCode, RecoveryCodeDevice

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger(__name__)

#: How many recovery codes a set has, and how long each is (base32 characters; 5 bits each: 80 bits).
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 16
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_RECOVERY_CODE = re.compile(f"[{_BASE32}]{{{RECOVERY_CODE_LENGTH}}}")
#: Session key of a TOTP enrollment waiting for its first code, and how long it waits.
TOTP_ENROLLMENT_KEY = "_authguard_totp_enrollment"
TOTP_ENROLLMENT_SECONDS = 600
#: How each kind is named in messages to the user (keyed by the kind's string: callers pass either).
FACTOR_LABELS: dict[str, StrOrPromise] = {
    FactorKind.PASSKEY: gettext_lazy("passkey"),
    FactorKind.TOTP: gettext_lazy("authenticator app"),
    FactorKind.RECOVERY_CODE: gettext_lazy("recovery codes"),
}


def kind_of(device: Device) -> FactorKind:
    """The :class:`~authguard.models.FactorKind` of a django-otp device."""
    if isinstance(device, PasskeyDevice):
        return FactorKind.PASSKEY
    if isinstance(device, RecoveryCodeDevice):
        return FactorKind.RECOVERY_CODE
    if isinstance(device, TOTPDevice):
        return FactorKind.TOTP
    raise ValueError(f"not an authguard factor: {type(device).__name__}")


# -- which factors a user has ------------------------------------------------------------------------------


def disabled_device_ids(user: Any) -> set[str]:
    """Persistent ids of the user's factors disabled by the failure limit."""
    return set(
        FactorRecord.objects.filter(user=user, disabled_at__isnull=False).values_list("device_id", flat=True)
    )


def is_disabled(device: Device) -> bool:
    """Whether ``device`` reached the failure limit and waits to be re-bound."""
    return FactorRecord.objects.filter(device_id=device.persistent_id, disabled_at__isnull=False).exists()


def user_factors(user: Any) -> list[Device]:
    """The user's usable factors: confirmed passkeys and TOTP devices not disabled by the failure limit,
    and a recovery-code set with codes left. Passkeys first, then TOTP, then recovery codes."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    devices: list[Device] = [
        *PasskeyDevice.objects.filter(user=user, confirmed=True).order_by("pk"),
        *TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"),
        *RecoveryCodeDevice.objects.filter(user=user, confirmed=True, codes__used_at__isnull=True)
        .distinct()
        .order_by("pk"),
    ]
    disabled = disabled_device_ids(user)
    return [device for device in devices if device.persistent_id not in disabled]


def recovery_codes_left(user: Any) -> int:
    """How many unused recovery codes the user has (0: none, or the set was disabled)."""
    for device in user_factors(user):
        if isinstance(device, RecoveryCodeDevice):
            return device.remaining()
    return 0


def has_strong_factor(user: Any) -> bool:
    """Whether the user has a usable passkey or TOTP device (recovery codes are a backup, not a factor to
    rely on day to day)."""
    return any(not isinstance(device, RecoveryCodeDevice) for device in user_factors(user))


def totp_device(user: Any) -> TOTPDevice | None:
    """The user's confirmed, usable TOTP device, if any."""
    for device in user_factors(user):
        if isinstance(device, TOTPDevice):
            return device
    return None


# -- enrollment rules ----------------------------------------------------------------------------------


def require_can_change_factors(request: HttpRequest, *, user: Any = None) -> str:
    """Allow a factor change (add, remove, replace; or an email change) in this session, or raise.

    Returns how it is authorised: ``"fresh_verification"`` (a passkey, TOTP or recovery-code verification in
    this verified session within ``AUTHGUARD_STEP_UP_FRESH_SECONDS``) or ``"low_risk_first_factor"`` (the
    user has no factor yet and the risk engine allowed this session's login outright).
    Raises :class:`~authguard.exceptions.StepUpRequired` otherwise (``code`` ``"login_required"``,
    ``"step_up_required"`` or ``"risky_session"``), with the methods the user could verify with.
    """
    from authguard.sessions import stepup

    session_user = getattr(request, "user", None)
    if session_user is None or not session_user.is_authenticated:
        raise StepUpRequired(_("Sign in first."), code="login_required")
    # SECURITY: a session changes its own user's factors only; ``user`` never comes from the request body.
    if user is not None and user.pk != session_user.pk:
        raise StepUpRequired(_("Sign in first."), code="login_required")
    user = session_user
    state = stepup.session_state(request)
    methods = stepup.step_up_methods(user)
    if state is None or state.status != "verified":
        # SECURITY: a password-only (pending) session, or one whose state cannot be read, changes nothing.
        raise StepUpRequired(code="step_up_required", methods=methods)
    if user_factors(user):
        if stepup.has_fresh_verification(request):
            return "fresh_verification"
        raise StepUpRequired(
            _("Confirm it is you with one of your existing security methods first."),
            code="step_up_required",
            methods=methods,
        )
    from authguard.factors.lifecycle import require_enrollment_allowed

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


# -- bookkeeping: enrollment, cooling-off, failures ------------------------------------------------------


def _notify(user: Any, kind: str, **context: Any) -> None:
    from authguard.notifications.outbox import notify

    notify(user, kind, context={"time": timezone.now(), **context})


def _note_change(user: Any, when: datetime) -> None:
    from authguard.risk.history import note_factor_change

    note_factor_change(user.pk, when)


def record_enrollment(
    request: HttpRequest | None, *, user: Any, device: Device, kind: str, via: str
) -> FactorRecord:
    """Record a newly confirmed factor (see :func:`authguard.factors.lifecycle.record_enrollment`)."""
    from authguard.factors.lifecycle import record_enrollment as _record

    return _record(request, user=user, device=device, kind=kind, via=via)


def in_cooling_off(device: Device, *, at: datetime | None = None) -> bool:
    """Whether ``device`` is cooling off (it must not confirm held orders or sensitive actions yet): one rule,
    :func:`authguard.factors.lifecycle.factor_is_cooling_off`. Devices authguard did not enroll (seeded,
    admin-created) are dated by their ``created_at``."""
    from authguard.factors.lifecycle import factor_is_cooling_off

    return factor_is_cooling_off(device, at=at)


def _record_for(device: Device, *, kind: str) -> FactorRecord:
    """The lifecycle record of ``device``, locked; created for a device authguard did not enroll (seeded,
    admin-made), dated by the device's own ``created_at``: its first failure must not make it look new."""
    record, _ = FactorRecord.objects.get_or_create(
        device_id=device.persistent_id,
        defaults={
            "user_id": device.user_id,
            "kind": kind,
            "enrolled_at": getattr(device, "created_at", None) or timezone.now(),
        },
    )
    return FactorRecord.objects.select_for_update().get(pk=record.pk)


def record_failure(
    device: Device, *, kind: str, request: HttpRequest | None = None, throttled: bool = False
) -> FactorRecord:
    """Count one failed attempt at ``device`` (see :func:`authguard.factors.lifecycle.record_failure`: only
    real guesses from a session that could be the customer's count towards disabling it)."""
    from authguard.factors.lifecycle import record_failure as _record

    return _record(device, kind=kind, request=request, throttled=throttled)


def record_success(device: Device) -> None:
    """A successful use of ``device``: its consecutive-failure counts start again from zero."""
    from authguard.factors.lifecycle import record_success as _record

    _record(device)


def note_account_failure(user: Any, *, kind: str) -> bool:
    """Report a failed second factor to the account lock (:mod:`authguard.login.lockout`); True if it
    locked."""
    from authguard.login import lockout

    try:
        return lockout.record_failure(user, kind=kind)
    except Exception:
        logger.exception("authguard: could not count an account failure")
        return False


# -- verifying one-time codes ------------------------------------------------------------------------------


def _totp_token(code: object, digits: int) -> str | None:
    """The code as typed, if it is exactly ``digits`` ASCII digits (spaces allowed); else None.

    SECURITY: django-otp parses with ``int()``, which also accepts "+12345", "1_234", whitespace and
    non-ASCII digits such as Arabic-Indic ones; only plain ASCII digits reach it.
    """
    if not isinstance(code, str) or len(code) > 32:
        return None
    token = code.replace(" ", "")
    if len(token) != digits or not token.isascii() or not token.isdigit():
        return None
    return token


def _verify_code(
    user: Any, device: Device | None, *, kind: str, token: str | None, request: HttpRequest | None = None
) -> Device | None:
    """Verify ``token`` against ``device`` under its row lock; count every failure (throttled ones too).

    A session that could not be the customer's is first held to the lifecycle's back-off (session, network,
    account), and its failures count there, not towards disabling the factor.
    """
    from authguard.factors.lifecycle import check_throttle, note_throttle_failure

    if device is None:
        return None
    # SECURITY: throttled before the code is even looked at; raises Throttled with Retry-After.
    check_throttle(request, user=user)
    throttled: Throttled | None = None
    verified: Device | None = None
    with transaction.atomic():
        locked = (
            type(device).objects.select_for_update().filter(pk=device.pk, user=user, confirmed=True).first()
        )
        if locked is None:
            return None
        allowed, info = locked.verify_is_allowed()
        if not allowed:
            throttled = _throttled(info)
            record_failure(locked, kind=kind, request=request, throttled=True)
        else:
            # A malformed code still goes through django-otp (as a token it cannot parse), so that its own
            # throttle counts it too.
            verified = django_otp.verify_token(user, locked.persistent_id, token or "malformed")
            if verified is None:
                record_failure(locked, kind=kind, request=request)
            else:
                record_success(locked)
    if verified is None:
        note_throttle_failure(request, user=user)
        note_account_failure(user, kind=kind)
    if throttled is not None:
        raise throttled
    return verified


def _throttled(info: dict[str, Any] | None) -> Throttled:
    """The refusal of an attempt django-otp's back-off does not allow yet, with how long it still waits."""
    locked_until = (info or {}).get("locked_until")
    if not isinstance(locked_until, datetime):
        return Throttled()
    return Throttled(retry_after=max(1, math.ceil((locked_until - timezone.now()).total_seconds())))


def verify_totp(user: Any, code: object, *, request: HttpRequest | None = None) -> Device | None:
    """Verify a TOTP code of ``user``; the device on success, None for a wrong or malformed code.

    Atomic and replay-proof (django-otp's ``last_t`` under ``select_for_update``); accepts the current step
    and one either side. Every failure counts towards the factor's failure limit and the account lock.
    Raises :class:`~authguard.exceptions.Throttled` while django-otp's back-off refuses attempts (the attempt
    still counts), or while the lifecycle's back-off holds ``request``'s session, network or the account.
    Pass ``request`` whenever there is one: without it, failures never count towards disabling the factor.
    """
    device = totp_device(user)
    token = _totp_token(code, device.digits if device is not None else 6)
    return _verify_code(user, device, kind=FactorKind.TOTP, token=token, request=request)


def _normalise_recovery_code(code: object) -> str | None:
    if not isinstance(code, str) or len(code) > 64:
        return None
    token = re.sub(r"[\s\-]", "", code).upper()
    return token if _RECOVERY_CODE.fullmatch(token) else None


def _recovery_digest(device_pk: int, code: str) -> str:
    return salted_hmac(
        "authguard.factors.recovery-code", f"{device_pk}:{code}", algorithm="sha256"
    ).hexdigest()


def consume_recovery_code(device: RecoveryCodeDevice, token: object) -> bool:
    """``RecoveryCodeDevice.verify_token``: spend one unused code equal to ``token`` (django-otp throttle).

    Must run with the device row locked (through :func:`django_otp.verify_token`).
    """
    allowed, _info = device.verify_is_allowed()
    if not allowed:
        return False
    code = _normalise_recovery_code(token)
    row = None
    if code is not None:
        row = device.codes.filter(digest=_recovery_digest(device.pk, code), used_at__isnull=True).first()
    # Codes issued before 2026-12 also carry a password hash; newer ones rely on the keyed digest alone.
    if row is None or code is None or (row.hashed and not check_password(code, row.hashed)):
        device.throttle_increment(commit=True)
        return False
    now = timezone.now()
    row.used_at = now
    row.save(update_fields=["used_at"])
    device.last_used_at = now
    device.throttle_reset(commit=False)
    device.save(update_fields=["last_used_at", "throttling_failure_count", "throttling_failure_timestamp"])
    return True


def verify_recovery_code(user: Any, code: object, *, request: HttpRequest | None = None) -> Device | None:
    """Spend one of the user's recovery codes; the device on success, None otherwise. Notifies the user.

    Throttled independently of TOTP; raises :class:`~authguard.exceptions.Throttled` like :func:`verify_totp`.
    """
    device = next((d for d in user_factors(user) if isinstance(d, RecoveryCodeDevice)), None)
    verified = _verify_code(
        user, device, kind=FactorKind.RECOVERY_CODE, token=_normalise_recovery_code(code), request=request
    )
    if verified is not None:
        remaining = RecoveryCode.objects.filter(device_id=verified.pk, used_at__isnull=True).count()
        _notify(user, "recovery_code_used", remaining=remaining)
        logger.info("authguard recovery code used user=%s remaining=%s", user.pk, remaining)
    return verified


# -- enrolling TOTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrollment:
    """A TOTP device waiting for its first code, and what the user needs to add it to their app."""

    device: TOTPDevice
    otpauth_uri: str
    secret: str
    qr_svg: str


def _otpauth_uri(device: TOTPDevice) -> str:
    issuer = str(app_settings.WEBAUTHN_RP_NAME).replace(":", "")
    label = f"{issuer}:{device.user.get_username()}"
    params = {
        "secret": base64.b32encode(device.bin_key).decode("ascii").rstrip("="),
        "issuer": issuer,
        "algorithm": "SHA1",
        "digits": device.digits,
        "period": device.step,
    }
    return f"otpauth://totp/{quote(label)}?{urlencode(params, quote_via=quote)}"


def _qr_svg(data: str) -> str:
    import segno

    # Rendered here, never by a third-party service: the URI carries the TOTP secret.
    return segno.make(data, error="m").svg_inline(
        scale=4, border=2, title=_("QR code for your authenticator app")
    )


def _enrollment_of(device: TOTPDevice) -> TotpEnrollment:
    uri = _otpauth_uri(device)
    return TotpEnrollment(
        device=device,
        otpauth_uri=uri,
        secret=base64.b32encode(device.bin_key).decode("ascii").rstrip("="),
        qr_svg=_qr_svg(uri),
    )


def pending_totp_enrollment(request: HttpRequest, *, user: Any) -> TotpEnrollment | None:
    """This session's TOTP enrollment still waiting for its first code (to show it again after a wrong
    code), or None. Only the session's own user's, and only within its 10 minutes."""
    pending = request.session.get(TOTP_ENROLLMENT_KEY)
    if not isinstance(pending, dict) or float(pending.get("exp", 0)) <= timezone.now().timestamp():
        return None
    if user is None or user.pk != getattr(request.user, "pk", None):
        return None
    device = TOTPDevice.objects.filter(pk=pending.get("id"), user=user, confirmed=False).first()
    return None if device is None else _enrollment_of(device)


def begin_totp_enrollment(request: HttpRequest, *, user: Any) -> TotpEnrollment:
    """Create an unconfirmed TOTP device for ``user`` and what their app needs (otpauth URI, QR code as SVG).

    Subject to :func:`require_can_change_factors`. The enrollment is bound to this session and must be
    confirmed by a first code (:func:`confirm_totp_enrollment`) within 10 minutes; earlier unconfirmed
    enrollments are discarded.
    """
    from authguard.factors.lifecycle import require_can_remove, require_strong_rebind

    require_can_change_factors(request, user=user)
    user = request.user
    if FactorRecord.objects.filter(user=user, kind=FactorKind.TOTP, disabled_at__isnull=False).exists():
        require_strong_rebind(request, user=user)
    for old in TOTPDevice.objects.filter(user=user, confirmed=True):
        if not is_disabled(old):
            # Said before the QR code is shown: the new device would replace this one (the same rule again
            # when it is confirmed).
            require_can_remove(request, user=user, device=old)
    with transaction.atomic():
        # Discard pending enrollments (unconfirmed and never recorded); disabled devices keep their record.
        recorded = FactorRecord.objects.filter(user=user, kind=FactorKind.TOTP).values_list(
            "device_id", flat=True
        )
        recorded_ids = set(recorded)
        for pending in TOTPDevice.objects.filter(user=user, confirmed=False):
            if pending.persistent_id not in recorded_ids:
                pending.delete()
        device = TOTPDevice.objects.create(
            user=user, name=_("Authenticator app")[:64], confirmed=False, tolerance=1
        )
    request.session[TOTP_ENROLLMENT_KEY] = {
        "id": device.pk,
        "exp": timezone.now().timestamp() + TOTP_ENROLLMENT_SECONDS,
    }
    return _enrollment_of(device)


def confirm_totp_enrollment(request: HttpRequest, *, user: Any, code: object) -> Device:
    """Confirm this session's pending TOTP enrollment with a first code; replaces any older TOTP device.

    Raises :class:`~authguard.exceptions.InvalidCredential` (``no_enrollment``, ``wrong_code``),
    :class:`~authguard.exceptions.Throttled` or :class:`~authguard.exceptions.StepUpRequired`. Confirming is
    not a verification of the session: it stays as it was.
    """
    from authguard.factors.lifecycle import require_can_remove, require_strong_rebind

    via = require_can_change_factors(request, user=user)
    user = request.user
    if FactorRecord.objects.filter(user=user, kind=FactorKind.TOTP, disabled_at__isnull=False).exists():
        # SECURITY: a disabled authenticator is bound again only through a strong path (case 55).
        via = require_strong_rebind(request, user=user)
    pending = request.session.get(TOTP_ENROLLMENT_KEY)
    if not isinstance(pending, dict) or float(pending.get("exp", 0)) <= timezone.now().timestamp():
        raise InvalidCredential(_("Start adding the authenticator app again."), code="no_enrollment")
    device = TOTPDevice.objects.filter(pk=pending.get("id"), user=user, confirmed=False).first()
    if device is None:
        raise InvalidCredential(_("Start adding the authenticator app again."), code="no_enrollment")
    token = _totp_token(code, device.digits)
    throttled: Throttled | None = None
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, info = locked.verify_is_allowed()
        if not allowed:
            throttled = _throttled(info)
        elif django_otp.verify_token(user, locked.persistent_id, token or "malformed") is not None:
            replaced = list(TOTPDevice.objects.filter(user=user).exclude(pk=locked.pk))
            for old in replaced:
                if old.confirmed and not is_disabled(old):
                    # SECURITY: replacing is removing: the same rules (no cooling-off factor replaces an
                    # older one; never the last strong factor without another one standing).
                    require_can_remove(request, user=user, device=old)
            for old in replaced:
                FactorRecord.objects.filter(device_id=old.persistent_id).delete()
                old.delete()
            # SECURITY: the factor's age is its confirmation, never the start of its enrollment (case 57).
            TOTPDevice.objects.filter(pk=locked.pk).update(confirmed=True, created_at=timezone.now())
            locked.refresh_from_db()
            record_enrollment(request, user=user, device=locked, kind=FactorKind.TOTP, via=via)
            request.session.pop(TOTP_ENROLLMENT_KEY, None)
            return locked
    if throttled is not None:
        raise throttled
    raise InvalidCredential(
        _("That code is not right. Check the time on your phone and try again."), code="wrong_code"
    )


# -- recovery codes ------------------------------------------------------------------------------------------


def format_recovery_code(code: str) -> str:
    """``ABCDEFGHIJKLMNOP`` as ``ABCD-EFGH-IJKL-MNOP`` (as shown; dashes and case are ignored on input)."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def generate_recovery_codes(request: HttpRequest, *, user: Any) -> list[str]:
    """Issue a new set of recovery codes, replacing (and invalidating) the old set. Shown once, never stored.

    Subject to :func:`require_can_change_factors`. Each code has 80 bits of entropy; only a keyed digest of
    it (HMAC-SHA256 with ``SECRET_KEY``) is stored, so a set is generated in milliseconds.
    """
    from authguard.factors.lifecycle import require_can_remove

    via = require_can_change_factors(request, user=user)
    user = request.user
    for old in RecoveryCodeDevice.objects.filter(user=user, confirmed=True):
        # SECURITY: a new set replaces the old one: a factor that is cooling off never replaces older codes.
        require_can_remove(request, user=user, device=old)
    codes = [
        "".join(secrets.choice(_BASE32) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    with transaction.atomic():
        for old in RecoveryCodeDevice.objects.filter(user=user):
            FactorRecord.objects.filter(device_id=old.persistent_id).delete()
            old.delete()
        device = RecoveryCodeDevice.objects.create(user=user, name=_("Recovery codes")[:64], confirmed=True)
        RecoveryCode.objects.bulk_create(
            # 80 random bits need no slow password hash (10 of them took 5 s): the keyed digest is the
            # check, and a stolen table without SECRET_KEY gives nothing to guess against.
            RecoveryCode(device=device, digest=_recovery_digest(device.pk, code), hashed="")
            for code in codes
        )
        record_enrollment(request, user=user, device=device, kind=FactorKind.RECOVERY_CODE, via=via)
    return [format_recovery_code(code) for code in codes]


# -- removing a factor ---------------------------------------------------------------------------------------


def remove_factor(request: HttpRequest, *, user: Any, device: Device) -> None:
    """Remove one of the session user's factors (see :func:`authguard.factors.lifecycle.remove_factor`).

    Subject to :func:`require_can_change_factors` and the lifecycle's removal rules; notifies the user and
    the risk engine's history. Raises :class:`~authguard.exceptions.InvalidCredential` (``unknown_factor``)
    for another's device.
    """
    from authguard.factors.lifecycle import remove_factor as _remove

    _remove(request, user=user, device=device)


def device_from_id(user: Any, persistent_id: object) -> Device | None:
    """The session user's authguard factor with this django-otp ``persistent_id``, or None."""
    if not isinstance(persistent_id, str) or len(persistent_id) > 100:
        return None
    try:
        device = Device.from_persistent_id(persistent_id)
    except (AttributeError, ValueError, LookupError):
        # django-otp raises for an id naming a model that is not a device ("auth.user/1").
        return None
    if device is None or device.user_id != user.pk:
        return None
    try:
        kind_of(device)
    except ValueError:
        return None
    return device


__all__ = [
    "TotpEnrollment",
    "begin_totp_enrollment",
    "can_change_factors",
    "confirm_totp_enrollment",
    "device_from_id",
    "generate_recovery_codes",
    "has_strong_factor",
    "in_cooling_off",
    "pending_totp_enrollment",
    "is_disabled",
    "record_enrollment",
    "record_failure",
    "record_success",
    "recovery_codes_left",
    "remove_factor",
    "require_can_change_factors",
    "require_fresh_verification",
    "user_factors",
    "verify_recovery_code",
    "verify_totp",
]
