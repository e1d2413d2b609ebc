"""authguard's models: what it remembers about logins, devices and factors.

* :class:`LoginEvent` is the audit record of every password login, with its explained decision.
* :class:`RiskProfile` and :class:`PopulationCount` are the bounded aggregates the risk engine scores against,
  so scoring costs the same whatever the length of a user's history.
* :class:`KnownDevice` is a browser recognised by its device cookie (only the cookie's hash is kept).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from authguard.risk.policy import Action


class Outcome(models.TextChoices):
    """What happened after a login was scored."""

    SIGNED_IN = "signed_in", _("signed in")
    STEP_UP_PENDING = "step_up_pending", _("waiting for step-up")
    STEP_UP_PASSED = "step_up_passed", _("passed step-up")
    STEP_UP_FAILED = "step_up_failed", _("failed step-up")
    REFUSED = "refused", _("refused")
    BAD_PASSWORD = "bad_password", _("wrong password or unknown user")
    THROTTLED = "throttled", _("throttled")
    RESCORED = "rescored", _("re-scored mid-session: back to step-up")
    PASSKEY_LOGIN = "passkey_login", _("signed in with a passkey")


class Feedback(models.TextChoices):
    """An analyst's verdict on a login event."""

    FRAUD = "fraud", _("confirmed fraud")
    LEGITIMATE = "legitimate", _("legitimate")


class LoginEvent(models.Model):
    """One password login attempt, successful or not, with its score and the reasons for it."""

    created_at = models.DateTimeField(_("time"), db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authguard_login_events",
    )
    # The username as typed, so failed attempts against unknown names are still visible to admins.
    username = models.CharField(_("username tried"), max_length=150, blank=True)
    password_ok = models.BooleanField(_("password correct"))
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, db_index=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    asn = models.PositiveBigIntegerField(_("ASN"), null=True, blank=True, db_index=True)
    as_org = models.CharField(_("network"), max_length=200, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    device_summary = models.CharField(_("device"), max_length=200, blank=True)
    device_hash = models.CharField(_("device cookie hash"), max_length=64, blank=True)
    score = models.PositiveSmallIntegerField(_("risk score"), default=0)
    action = models.CharField(_("decision"), max_length=10, choices=Action.choices, db_index=True)
    reasons = models.JSONField(_("reason codes"), default=list, blank=True)
    findings = models.JSONField(_("findings"), default=list, blank=True)
    outcome = models.CharField(_("what happened next"), max_length=20, choices=Outcome.choices)
    feedback = models.CharField(_("analyst verdict"), max_length=12, choices=Feedback.choices, blank=True)

    class Meta:
        verbose_name = _("login event")
        verbose_name_plural = _("login events")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="authguard_event_user_time")]

    def __str__(self) -> str:
        who = self.user or self.username or "?"
        return f"{who} {self.created_at:%Y-%m-%d %H:%M} {self.action} ({self.score})"


class RiskProfile(models.Model):
    """A user's login history as bounded, aggregated counts (see :mod:`authguard.risk.profile`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="authguard_profile"
    )
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("risk profile")
        verbose_name_plural = _("risk profiles")

    def __str__(self) -> str:
        return f"risk profile of {self.user}"


class PopulationCount(models.Model):
    """How often a feature value (an ASN, a browser, ...) was seen across all users' successful logins."""

    key = models.CharField(max_length=255, primary_key=True)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("population count")
        verbose_name_plural = _("population counts")

    def __str__(self) -> str:
        return f"{self.key}={self.count}"


class KnownDevice(models.Model):
    """A browser a user signed in from, recognised by the hash of its long-lived device cookie."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_devices",
        verbose_name=_("user"),
    )
    cookie_hash = models.CharField(max_length=64)
    label = models.CharField(_("browser"), max_length=200, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"))
    last_seen_at = models.DateTimeField(_("last seen"))
    last_ip = models.GenericIPAddressField(_("last IP address"), null=True, blank=True)
    last_place = models.CharField(_("last place"), max_length=120, blank=True)
    # Set after a successful step-up: the risk engine treats the device as remembered until then.
    trusted_until = models.DateTimeField(_("remembered until"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("known device")
        verbose_name_plural = _("known devices")
        constraints = [
            models.UniqueConstraint(fields=["user", "cookie_hash"], name="authguard_device_unique")
        ]

    def __str__(self) -> str:
        return f"{self.label or 'device'} of {self.user}"


# -- step-up: session-level records (owner: stepup) ------------------------------------------------------


class SessionRecord(models.Model):
    """A signed-in session of a user, by session key, so that the user can sign out their other sessions.

    Written at sign-in and at every rotation of the session key (step-up, re-verification); the session
    data itself stays in Django's session store.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_sessions",
        verbose_name=_("user"),
    )
    session_key = models.CharField(_("session key"), max_length=40, unique=True)
    created_at = models.DateTimeField(_("signed in"), auto_now_add=True)
    place = models.CharField(_("place"), max_length=120, blank=True)
    device_summary = models.CharField(_("device"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("signed-in session")
        verbose_name_plural = _("signed-in sessions")

    def __str__(self) -> str:
        return f"session of {self.user} since {self.created_at:%Y-%m-%d %H:%M}"


# -- factors: passkeys, recovery codes, enrollment records (owner: factors) ---------------------------------

from django.utils import timezone as _timezone  # noqa: E402
from django_otp.models import Device as _OtpDevice  # noqa: E402
from django_otp.models import ThrottlingMixin as _OtpThrottlingMixin  # noqa: E402

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

        Call through :func:`django_otp.verify_token` (or :func:`authguard.factors.base.verify_recovery_code`),
        which locks this row, so two requests can never spend the same code.
        """
        from authguard.factors.base import consume_recovery_code

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


class FactorKind(models.TextChoices):
    """The kinds of second factor authguard manages."""

    PASSKEY = "passkey", _("passkey")
    TOTP = "totp", _("authenticator app")
    RECOVERY_CODE = "recovery_code", _("recovery codes")


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
    cooling_off_until = models.DateTimeField(_("cooling off until"), null=True, blank=True)
    failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    # SECURITY: the consecutive failures that count towards the NIST limit: only those from a session that
    # could be the customer's (see authguard.factors.lifecycle.could_be_customer), so that nobody with the
    # password alone can disable the customer's authenticator by failing it on purpose.
    limit_failures = models.PositiveIntegerField(_("failures counting towards the limit"), default=0)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)

    class Meta:
        verbose_name = _("factor record")
        verbose_name_plural = _("factor records")

    def __str__(self) -> str:
        return f"{self.kind} {self.device_id} of {self.user_id}"


# -- order guard: guarded orders, held orders and confirmations, campaigns (owner: orders) ------------------


class GuardStatus(models.TextChoices):
    """Where a guarded order stands. Placed and held orders count against the rolling window."""

    PLACED = "placed", _("placed")
    HELD = "held", _("held for confirmation")
    CANCELLED = "cancelled", _("cancelled")
    EXPIRED = "expired", _("expired")
    FAILED = "failed", _("could not be executed")


class GuardedOrder(models.Model):
    """The order guard's ledger: every order it let through or held, valued in the portfolio's currency.

    One indexed query over ``(user, created_at)`` sums a rolling window, whatever the portal's own tables.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_guarded_orders",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("time"), db_index=True)
    side = models.CharField(_("side"), max_length=4)
    symbol = models.CharField(_("symbol"), max_length=32, db_index=True)
    quantity = models.PositiveBigIntegerField(_("quantity"))
    amount = models.DecimalField(_("amount"), max_digits=20, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=10, choices=GuardStatus.choices, db_index=True)
    illiquid = models.BooleanField(_("illiquid instrument"), default=False)
    risky_session = models.BooleanField(_("from a risky session"), default=False)
    reasons = models.JSONField(_("reason codes"), default=list, blank=True)
    # How thinly traded the instrument was when the order was checked: 0 (liquid) to 1 (illiquid), and the
    # amount weighted by it, so one SUM over the ledger gives the account's illiquid exposure over days.
    illiquidity = models.FloatField(_("illiquidity (0 to 1)"), default=0.0)
    illiquid_amount = models.DecimalField(
        _("amount weighted by illiquidity"), max_digits=20, decimal_places=2, default=0
    )

    class Meta:
        verbose_name = _("guarded order")
        verbose_name_plural = _("guarded orders")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="authguard_guarded_user_time"),
            models.Index(fields=["symbol", "created_at"], name="authguard_guarded_symbol_time"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.side} {self.quantity} {self.symbol} ({self.status})"


class HeldOrder(models.Model):
    """An order held until its customer confirms it: the exact canonical order, bound to one session.

    The passkey challenge is ``sha256(nonce || digest)`` (dynamic linking), so a signature confirms this
    order and nothing else; the signed assertion is kept as evidence.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for confirmation")
        CONFIRMED = "confirmed", _("confirmed and executed")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")
        FAILED = "failed", _("could not be executed")

    id = models.UUIDField(primary_key=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_held_orders",
        verbose_name=_("user"),
    )
    guarded = models.OneToOneField(
        GuardedOrder, on_delete=models.CASCADE, related_name="held", verbose_name=_("ledger entry")
    )
    canonical = models.TextField(_("canonical order (JSON)"))
    digest = models.CharField(_("SHA-256 of the canonical order"), max_length=64)
    nonce = models.CharField(_("nonce"), max_length=64)
    session_binding = models.CharField(_("session binding (hash)"), max_length=64)
    methods = models.JSONField(_("methods allowed"), default=list)
    summary = models.TextField(_("summary"))
    summary_data = models.JSONField(_("summary data"), default=dict)
    reasons = models.JSONField(_("reasons"), default=list)
    severity = models.PositiveSmallIntegerField(_("severity"), default=0)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, db_index=True)
    created_at = models.DateTimeField(_("held at"))
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_method = models.CharField(_("confirmed with"), max_length=16, blank=True)
    confirmed_device = models.CharField(_("confirming device"), max_length=255, blank=True)
    assertion = models.JSONField(_("signed assertion (evidence)"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    portal_ref = models.CharField(_("portal's order reference"), max_length=64, blank=True)
    result_ref = models.CharField(_("portal's execution reference"), max_length=64, blank=True)
    failure = models.CharField(_("why it could not be executed"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("held order")
        verbose_name_plural = _("held orders")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.summary} ({self.status})"


class CampaignFlag(models.Model):
    """An instrument that many accounts bought within a short window: further buys are held for everyone."""

    symbol = models.CharField(_("symbol"), max_length=32, unique=True)
    flagged_at = models.DateTimeField(_("flagged at"))
    accounts = models.PositiveIntegerField(_("accounts buying"))
    risky_accounts = models.PositiveIntegerField(_("of them from risky sessions"))
    window_hours = models.PositiveIntegerField(_("window (hours)"))
    active = models.BooleanField(_("active"), default=True)
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    cleared_by = models.CharField(_("cleared by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("campaign flag")
        verbose_name_plural = _("campaign flags")
        ordering = ["-flagged_at"]

    def __str__(self) -> str:
        return f"{self.symbol}: {self.accounts} accounts"


# -- notifications outbox, account locks, run-time policy (owner: ops) --------------------------------------


class NotificationStatus(models.TextChoices):
    """Where an outbox row is in its life."""

    PENDING = "pending", _("waiting to be sent")
    SENDING = "sending", _("being sent")
    SENT = "sent", _("sent")
    FAILED = "failed", _("gave up")
    SKIPPED = "skipped", _("nothing to send (no address)")


class Notification(models.Model):
    """One message to one recipient, written in the same transaction as the event it reports (an outbox).

    A Celery task sends it after commit; a periodic task retries rows the broker or mail server missed.
    ``dedupe_key`` is unique, so the same event can never notify the same person twice.
    """

    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authguard_notifications",
    )
    # The address at the time of the event (an email change notifies the old address, not the new one).
    to_email = models.EmailField(_("address"), blank=True)
    kind = models.CharField(_("kind"), max_length=32, db_index=True)
    # SECURITY: context holds only what the message shows (place, device, time); never codes or secrets.
    context = models.JSONField(_("details"), default=dict, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    staff = models.BooleanField(_("to staff"), default=False)
    dedupe_key = models.CharField(_("deduplication key"), max_length=200, unique=True)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=NotificationStatus.choices,
        default=NotificationStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to_email or self.user or '?'} ({self.status})"


class AccountLock(models.Model):
    """A user's run of consecutive authentication failures, and the lock they led to (one row per user)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="authguard_lock",
        verbose_name=_("user"),
    )
    failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    last_failure_at = models.DateTimeField(_("last failure"), null=True, blank=True)
    last_failure_kind = models.CharField(_("last failure kind"), max_length=32, blank=True)
    # Times (ISO) of the second-factor failures of the last hour, to warn the customer of a burst.
    recent_factor_failures = models.JSONField(_("recent second-factor failures"), default=list, blank=True)
    locked_at = models.DateTimeField(_("locked"), null=True, blank=True, db_index=True)
    locked_reason = models.CharField(_("lock reason"), max_length=200, blank=True)
    lock_count = models.PositiveIntegerField(_("times locked"), default=0)
    unlocked_at = models.DateTimeField(_("last unlocked"), null=True, blank=True)
    unlocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("unlocked by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    unlock_reason = models.CharField(_("unlock reason"), max_length=200, blank=True)
    # The customer's self-service way back without a passkey
    # (authguard.login.lockout.request_unlock_with_codes):
    # an authenticator code and a recovery code asked for the unlock, which takes effect at unlock_due_at
    # unless the customer cancels it with the reference mailed to them (stored as a keyed digest).
    unlock_requested_at = models.DateTimeField(_("unlock requested"), null=True, blank=True)
    unlock_due_at = models.DateTimeField(_("unlocks at"), null=True, blank=True)
    unlock_reference_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("account lock")
        verbose_name_plural = _("account locks")
        permissions = [
            ("unlock_account", _("Can unlock a locked account")),
            # Containment (issue 16): lock, end every session, force a password reset
            # (authguard.console.pages).
            ("contain_account", _("Can lock an account, end its sessions and force a password reset")),
        ]

    def __str__(self) -> str:
        state = "locked" if self.is_locked else f"{self.failures} failures"
        return f"{self.user} ({state})"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class PolicyVersion(models.Model):
    """One saved version of the run-time policy; the newest is in force. Never edited: each save is new.

    ``thresholds`` overrides ``AUTHGUARD_THRESHOLDS``; ``signal_options`` maps a configured signal's dotted
    name to options that override its ``OPTIONS``; ``shadow_signals`` run report-only (``[{"NAME",
    "OPTIONS"}]``). Validated by :func:`authguard.risk.policy.policy_problem`.
    """

    created_at = models.DateTimeField(_("saved"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("saved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    # The second staff member who approved this version (four eyes, :mod:`authguard.console.approvals`);
    # empty for versions saved without a second approval (settings, scripts, four eyes switched off).
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    thresholds = models.JSONField(_("thresholds"), default=dict, blank=True)
    signal_options = models.JSONField(_("signal options"), default=dict, blank=True)
    shadow_signals = models.JSONField(_("shadow (report-only) signals"), default=list, blank=True)

    class Meta:
        verbose_name = _("policy version")
        verbose_name_plural = _("policy versions")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"policy v{self.pk} ({self.created_at:%Y-%m-%d %H:%M})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save a *new* version (versions are the audit trail: never edited) and put it in force."""
        from authguard.risk.policy import version_saved

        if not self._state.adding:
            raise ValueError("policy versions are never edited; save a new version instead")
        super().save(*args, **kwargs)
        version_saved(self)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from authguard.risk.policy import policy_problem

        problem = policy_problem(
            thresholds=self.thresholds, signal_options=self.signal_options, shadow_signals=self.shadow_signals
        )
        if problem:
            raise ValidationError(problem)


# -- console: audit and analyst records (owner: console) ----------------------------------------------------


# -- models of the feature packages, one module each (issue 12's models/ layout) ----------------------------
from authguard.models.accounts import *  # noqa: E402,F403
from authguard.models.actions import *  # noqa: E402,F403
from authguard.models.approvals import *  # noqa: E402,F403
from authguard.models.containment import *  # noqa: E402,F403
from authguard.models.dbsc import *  # noqa: E402,F403
from authguard.models.exposure import *  # noqa: E402,F403
from authguard.models.population import *  # noqa: E402,F403
