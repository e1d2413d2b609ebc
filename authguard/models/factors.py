"""Second factors as django-otp devices (passkeys, recovery codes) and the record each factor keeps."""

from __future__ import annotations

import datetime
import re

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.db import models
from django.utils import timezone
from django.utils import timezone as _timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device as _OtpDevice
from django_otp.models import ThrottlingMixin as _OtpThrottlingMixin

from authguard.choices import FactorKind

__all__ = [
    "RECOVERY_CODE_LENGTH",
    "consume_recovery_code",
    "normalise_recovery_code",
    "recovery_digest",
    "CREDENTIAL_ID_MAX_CHARS",
    "FactorRecord",
    "PasskeyDevice",
    "RecoveryCode",
    "RecoveryCodeDevice",
]


#: Longest credential ID the WebAuthn spec allows (1023 bytes), as unpadded base64url.
CREDENTIAL_ID_MAX_CHARS = 1364


class PasskeyDevice(_OtpThrottlingMixin, _OtpDevice):
    """A WebAuthn credential (passkey) as a django-otp device, so it counts as a second factor everywhere.

    django-otp ships no types, so the django-stubs plugin cannot see this as a model: fields are annotated.

    Written only by :mod:`authguard.factors.passkeys`, after py_webauthn and authguard's own relying-party
    checks.
    """

    # SECURITY: unique across ALL users: a credential registered to one account can never be bound to another.
    credential_id: models.CharField[str, str] = models.CharField(
        _("credential ID"), max_length=CREDENTIAL_ID_MAX_CHARS, unique=True
    )
    public_key: models.BinaryField[bytes, bytes | memoryview] = models.BinaryField(_("public key (COSE)"))
    # The WebAuthn user handle (user.id) the credential was created for, base64url; checked at every use.
    user_handle: models.CharField[str, str] = models.CharField(_("user handle"), max_length=128)
    sign_count: models.PositiveBigIntegerField[int, int] = models.PositiveBigIntegerField(
        _("signature counter"), default=0
    )
    aaguid: models.CharField[str, str] = models.CharField(
        _("authenticator model (AAGUID)"), max_length=36, blank=True
    )
    transports = models.JSONField(_("transports"), default=list, blank=True)
    backup_eligible: models.BooleanField[bool, bool] = models.BooleanField(
        _("can be synced (backup eligible)"), default=False
    )
    backup_state: models.BooleanField[bool, bool] = models.BooleanField(
        _("synced (backed up)"), default=False
    )
    user_verified: models.BooleanField[bool, bool] = models.BooleanField(
        _("user verified at registration"), default=False
    )
    created_at: models.DateTimeField[datetime.datetime, datetime.datetime] = models.DateTimeField(
        _("registered"), default=_timezone.now
    )
    last_used_at: models.DateTimeField[datetime.datetime | None, datetime.datetime | None] = (
        models.DateTimeField(_("last used"), null=True, blank=True)
    )

    class Meta(_OtpDevice.Meta):
        verbose_name = _("passkey")
        verbose_name_plural = _("passkeys")

    def verify_token(self, token: object) -> bool:
        """No typed token: passkeys are verified by
        :func:`authguard.factors.passkeys.verify_authentication`."""
        return False

    def get_throttle_factor(self) -> int:
        # SECURITY: a signature cannot be guessed, so no back-off (which would only let anyone who knows a
        # credential ID slow its owner down). The NIST failure limit still applies (FactorRecord.failures).
        return 0


# -- recovery codes: the device verifies its own codes (django-otp's device model) ------------------------

#: Length of a recovery code in base32 characters (5 bits each: 80 bits).
RECOVERY_CODE_LENGTH = 16
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


_RECOVERY_CODE = re.compile(f"[{_BASE32}]{{{RECOVERY_CODE_LENGTH}}}")


def normalise_recovery_code(code: object) -> str | None:
    if not isinstance(code, str) or len(code) > 64:
        return None
    token = re.sub(r"[\s\-]", "", code).upper()
    return token if _RECOVERY_CODE.fullmatch(token) else None


def recovery_digest(device_pk: int, code: str) -> str:
    """The keyed digest a code is stored as.

    SECURITY: a stable salt: changing it voids every stored recovery code."""
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
    code = normalise_recovery_code(token)
    row = None
    if code is not None:
        row = device.codes.filter(digest=recovery_digest(device.pk, code), used_at__isnull=True).first()
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


class RecoveryCodeDevice(_OtpThrottlingMixin, _OtpDevice):
    """A set of single-use recovery codes, as one django-otp device with its own, independent throttle.

    The codes themselves are :class:`RecoveryCode` rows, stored hashed; see :mod:`authguard.factors.base`.
    """

    created_at: models.DateTimeField[datetime.datetime, datetime.datetime] = models.DateTimeField(
        _("generated"), default=_timezone.now
    )
    last_used_at: models.DateTimeField[datetime.datetime | None, datetime.datetime | None] = (
        models.DateTimeField(_("last used"), null=True, blank=True)
    )

    class Meta(_OtpDevice.Meta):
        verbose_name = _("recovery codes")
        verbose_name_plural = _("recovery codes")

    def verify_token(self, token: object) -> bool:
        """Consume one unused code matching ``token``; throttled (django-otp back-off) on its own counter.

        Call through :func:`django_otp.verify_token` (or
        :func:`authguard.factors.recovery.verify_recovery_code`), which locks this row, so two requests can
        never spend the same code.
        """
        return consume_recovery_code(self, token)

    def get_throttle_factor(self) -> int:
        return 1

    def remaining(self) -> int:
        """How many codes are still unused."""
        return self.codes.filter(used_at__isnull=True).count()


class RecoveryCode(models.Model):
    """One recovery code: a keyed digest (older codes also a password hash), never the code itself."""

    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    # HMAC-SHA256 (SECRET_KEY, explicit salt) of the normalised code: finds the row without trying every hash.
    digest = models.CharField(max_length=64)
    # Django's password hasher over the normalised code: a database dump alone reveals nothing usable.
    hashed = models.CharField(max_length=256)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")
        constraints = [
            models.UniqueConstraint(fields=["device", "digest"], name="authguard_recovery_code_unique")
        ]

    def __str__(self) -> str:
        return f"recovery code {self.pk} ({'used' if self.used_at else 'unused'})"


class FactorRecord(models.Model):
    """authguard's bookkeeping for one second-factor device of any kind (passkey, TOTP, recovery codes).

    Keyed by the device's django-otp ``persistent_id``, so it works for django-otp's own ``TOTPDevice`` too.
    Holds the enrollment context (cooling-off) and the NIST SP 800-63B consecutive-failure count.
    ``enrolled_at`` is when the factor was *confirmed* (its age), never when its enrollment began.
    """

    device_id = models.CharField(_("device"), max_length=100, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_factor_records",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=FactorKind.choices)
    enrolled_at = models.DateTimeField(_("enrolled"))
    # Whether the enrolling session was one the risk engine allowed outright and never re-scored as risky.
    enrolled_low_risk = models.BooleanField(_("enrolled from a low-risk session"), default=False)
    # How the enrollment was authorised: "fresh_verification", "low_risk_first_factor", "email_code".
    enrolled_via = models.CharField(_("authorised by"), max_length=30, blank=True)
    # Whether the enrolling session was vouched for (her browser of a month, a trusted passkey): such a factor
    # cools off for the account's hours, any other for AUTHGUARD_UNVOUCHED_FACTOR_DAYS. Kept, not inferred
    # from the dates, which a later change of the setting would reinterpret (review, round forty-four).
    enrolled_vouched = models.BooleanField(_("enrolled from a vouched-for session"), default=False)
    cooling_off_until = models.DateTimeField(_("cooling off until"), null=True, blank=True)
    failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    # SECURITY: the consecutive failures that count towards the NIST limit: only those from a session that
    # could be the customer's (see authguard.factors.throttles.could_be_customer), so that nobody with the
    # password alone can disable the customer's authenticator by failing it on purpose.
    limit_failures = models.PositiveIntegerField(_("failures counting towards the limit"), default=0)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)

    class Meta:
        verbose_name = _("factor record")
        verbose_name_plural = _("factor records")

    def __str__(self) -> str:
        return f"{self.kind} {self.device_id} of {self.user_id}"
