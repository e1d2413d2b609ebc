"""actions models (see the package docstring of authguard.models): guarded sensitive actions (issue 11).

* :class:`HeldAction` is a sensitive action (a withdrawal, a bank-account registration or change, a transfer
  of securities out, a contact change) held until its customer confirms it with a passkey bound to that exact
  action: the canonical action JSON, its SHA-256 digest, a nonce, the session binding and the evidence.
* :class:`RegisteredPayee` is a destination of money authguard knows about (a bank account, by the portal's
  reference), with the time it was registered or last changed: it receives nothing during the new-payee hold.

Both are written only by :mod:`authguard.actions.flow`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from authguard.choices import ActionKind as ActionKind

__all__ = ["ActionKind", "HeldAction", "RegisteredPayee"]


class HeldAction(models.Model):
    """A sensitive action held until its customer confirms it: the exact canonical action, bound to a session.

    The passkey challenge is ``sha256(nonce || digest)`` (dynamic linking), so a signature confirms this
    action and nothing else; the signed assertion is kept as evidence.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for confirmation")
        CONFIRMED = "confirmed", _("confirmed and carried out")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")
        FAILED = "failed", _("could not be carried out")

    id = models.UUIDField(primary_key=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_held_actions",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("action"), max_length=32, choices=ActionKind.choices, db_index=True)
    canonical = models.TextField(_("canonical action (JSON)"))
    digest = models.CharField(_("SHA-256 of the canonical action"), max_length=64)
    nonce = models.CharField(_("nonce"), max_length=64)
    session_binding = models.CharField(_("session binding (hash)"), max_length=64)
    methods = models.JSONField(_("methods allowed"), default=list)
    summary = models.TextField(_("summary"))
    summary_data = models.JSONField(_("summary data"), default=dict)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, db_index=True)
    created_at = models.DateTimeField(_("held at"))
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_method = models.CharField(_("confirmed with"), max_length=16, blank=True)
    confirmed_device = models.CharField(_("confirming device"), max_length=255, blank=True)
    assertion = models.JSONField(_("signed assertion (evidence)"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    portal_ref = models.CharField(_("portal's reference"), max_length=64, blank=True)
    result_ref = models.CharField(_("portal's execution reference"), max_length=64, blank=True)
    failure = models.CharField(_("why it could not be carried out"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("held action")
        verbose_name_plural = _("held actions")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "status"], name="authguard_action_user_status")]

    def __str__(self) -> str:
        return f"{self.summary} ({self.status})"


class RegisteredPayee(models.Model):
    """A destination of the customer's money (a bank account), by the portal's reference.

    ``registered_at`` is when it was registered *or its details last changed*: it cannot receive money until
    ``AUTHGUARD_NEW_PAYEE_HOLD_HOURS`` after that, whatever is confirmed. ``details_digest`` is a keyed digest
    of the account's details (bank, branch, number, holder), so a changed account is never the same payee.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_payees",
        verbose_name=_("user"),
    )
    ref = models.CharField(_("portal's reference"), max_length=64)
    details_digest = models.CharField(_("digest of the account details"), max_length=64)
    label = models.CharField(_("account"), max_length=200, blank=True)
    registered_at = models.DateTimeField(_("registered or changed"), db_index=True)
    # How it got here: "confirmed" (a confirmed registration or change) or "imported" (the portal's own,
    # from before authguard guarded them).
    source = models.CharField(_("source"), max_length=16, default="confirmed")
    action = models.ForeignKey(
        HeldAction,
        verbose_name=_("confirmed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)

    class Meta:
        verbose_name = _("registered payee")
        verbose_name_plural = _("registered payees")
        ordering = ["-registered_at"]
        constraints = [models.UniqueConstraint(fields=["user", "ref"], name="authguard_payee_unique")]

    def __str__(self) -> str:
        return f"{self.label or self.ref} of {self.user_id}"
