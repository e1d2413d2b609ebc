"""Operations: the notification outbox, account locks and the versions of the risk policy."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from authguard.choices import NotificationStatus
from authguard.risk.policy_validation import policy_problem

__all__ = [
    "AccountLock",
    "Notification",
    "PolicyVersion",
]


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
    # The security desk's containment (authguard.login.lockout.lock), also when it found the account locked
    # already: no factor cooling off when the account was locked ends it (authguard.login.unlocking).
    locked_by_desk = models.BooleanField(_("locked by the security desk"), default=False)
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
    # (authguard.login.unlocking.request_unlock_with_codes):
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
        if not self._state.adding:
            raise ValueError("policy versions are never edited; save a new version instead")
        # Putting it in force is the post_save receiver's job (authguard.risk.policy.version_saved).
        super().save(*args, **kwargs)

    def clean(self) -> None:
        problem = policy_problem(
            thresholds=self.thresholds, signal_options=self.signal_options, shadow_signals=self.shadow_signals
        )
        if problem:
            raise ValidationError(problem)
