"""TOTP: an authenticator app, as django-otp's ``TOTPDevice``.

Tolerance one step, ``last_t`` replay protection and django-otp's exponential throttle; always verified
through :func:`authguard.factors.base.verify_code` (the device row locked), so one code is accepted once
however many requests race (battery cases 10-13). Enrolling shows an otpauth URI and a QR code rendered
here (:func:`begin_totp_enrollment`) and takes effect with a first code (:func:`confirm_totp_enrollment`),
under the enrollment rules of :mod:`authguard.factors.lifecycle`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import django_otp
import segno
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard import clock
from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential, Throttled
from authguard.factors.base import throttled_refusal, verify_code
from authguard.factors.changes import require_verified_since_change
from authguard.factors.inventory import is_disabled, totp_device
from authguard.factors.lifecycle import (
    record_enrollment,
    require_can_change_factors,
    require_strong_rebind,
)
from authguard.factors.removal import delete_replaced, require_can_remove
from authguard.models import FactorKind, FactorRecord

#: Session key of a TOTP enrollment waiting for its first code, and how long it waits.
TOTP_ENROLLMENT_KEY = "_authguard_totp_enrollment"
TOTP_ENROLLMENT_SECONDS = 600


# -- verifying ----------------------------------------------------------------------------------------------


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


def verify_totp(
    user: Any, code: object, *, request: HttpRequest | None = None, while_locked: bool = False
) -> Device | None:
    """Verify a TOTP code of ``user``; the device on success, None for a wrong or malformed code.

    Atomic and replay-proof (django-otp's ``last_t`` under ``select_for_update``); accepts the current step
    and one either side. Every failure counts towards the factor's failure limit and the account lock.
    Raises :class:`~authguard.exceptions.Throttled` while django-otp's back-off refuses attempts (the attempt
    still counts), or while the lifecycle's back-off holds ``request``'s session, network or the account.
    Pass ``request`` whenever there is one: without it, failures never count towards disabling the factor.
    A locked account's code is refused (``Throttled``) unless ``while_locked`` (the codes unlock).
    """
    device = totp_device(user)
    token = _totp_token(code, device.digits if device is not None else 6)
    return verify_code(
        user, device, kind=FactorKind.TOTP, token=token, request=request, while_locked=while_locked
    )


# -- enrolling ----------------------------------------------------------------------------------------------


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
    if not isinstance(pending, dict) or float(pending.get("exp", 0)) <= clock.timestamp():
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
    via = require_can_change_factors(request, user=user)
    user = request.user
    if FactorRecord.objects.filter(user=user, kind=FactorKind.TOTP, disabled_at__isnull=False).exists():
        via = require_strong_rebind(request, user=user)
    require_verified_since_change(request, user=user, removing=False, via=via)
    for old in TOTPDevice.objects.filter(user=user, confirmed=True):
        if not is_disabled(old):
            # Said before the QR code is shown: the new device would replace this one (the same rule again
            # when it is confirmed).
            require_can_remove(request, user=user, device=old, replacing=True)
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
        "exp": clock.timestamp() + TOTP_ENROLLMENT_SECONDS,
    }
    return _enrollment_of(device)


def confirm_totp_enrollment(request: HttpRequest, *, user: Any, code: object) -> Device:
    """Confirm this session's pending TOTP enrollment with a first code; replaces any older TOTP device.

    Raises :class:`~authguard.exceptions.InvalidCredential` (``no_enrollment``, ``wrong_code``),
    :class:`~authguard.exceptions.Throttled` or :class:`~authguard.exceptions.StepUpRequired`. Confirming is
    not a verification of the session: it stays as it was.
    """
    via = require_can_change_factors(request, user=user)
    user = request.user
    if FactorRecord.objects.filter(user=user, kind=FactorKind.TOTP, disabled_at__isnull=False).exists():
        # SECURITY: a disabled authenticator is bound again only through a strong path (case 55).
        via = require_strong_rebind(request, user=user)
    require_verified_since_change(request, user=user, removing=False, via=via)
    pending = request.session.get(TOTP_ENROLLMENT_KEY)
    if not isinstance(pending, dict) or float(pending.get("exp", 0)) <= clock.timestamp():
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
            throttled = throttled_refusal(info)
        elif django_otp.verify_token(user, locked.persistent_id, token or "malformed") is not None:
            replaced = list(TOTPDevice.objects.filter(user=user).exclude(pk=locked.pk))
            for old in replaced:
                if old.confirmed and not is_disabled(old):
                    # SECURITY: replacing is removing: the same rules (no cooling-off factor replaces an
                    # older one; never the last strong factor without another one standing).
                    require_can_remove(request, user=user, device=old, replacing=True)
            gone = [delete_replaced(user, old) for old in replaced]
            # SECURITY: the factor's age is its confirmation, never the start of its enrollment (case 57).
            TOTPDevice.objects.filter(pk=locked.pk).update(confirmed=True, created_at=clock.now())
            locked.refresh_from_db()
            record_enrollment(request, user=user, device=locked, kind=FactorKind.TOTP, via=via, replaced=gone)
            request.session.pop(TOTP_ENROLLMENT_KEY, None)
            return locked
    if throttled is not None:
        raise throttled
    raise InvalidCredential(
        _("That code is not right. Check the time on your phone and try again."), code="wrong_code"
    )


__all__ = [
    "begin_totp_enrollment",
    "confirm_totp_enrollment",
    "pending_totp_enrollment",
    "TOTP_ENROLLMENT_KEY",
    "TOTP_ENROLLMENT_SECONDS",
    "TotpEnrollment",
    "verify_totp",
]
