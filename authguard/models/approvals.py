"""approvals models (see the package docstring of authguard.models): the security desk's four-eyes records.

* :class:`StaffApproval` is one staff action on a customer's account, on the run-time policy or on a
  network (release a held order, revoke a factor, unlock, lock an account, end its sessions, force a
  password reset, change the policy, block a network or end a block): who asked, why, who approved or
  rejected it, and what came of it. It is also the audit record of an action that needed no second
  approval (``four_eyes`` false). Written only by :mod:`authguard.console.approvals`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from authguard.choices import StaffAction as StaffAction
from authguard.choices import StaffApprovalStatus as StaffApprovalStatus

__all__ = ["StaffAction", "StaffApproval", "StaffApprovalStatus"]


class StaffApproval(models.Model):
    """One staff action: requested by one staff member, approved (four eyes) by another, then executed once.

    ``reason`` and ``decision_note`` are internal notes: shown in the console and the incident report,
    never to the customer. ``payload`` holds what the action needs besides its target (a policy's values, a
    factor's kind and name); it never holds secrets.
    """

    action = models.CharField(_("action"), max_length=20, choices=StaffAction.choices, db_index=True)
    # What the action is about: a held order's id, a factor's django-otp persistent id, a user id, "policy".
    target_id = models.CharField(_("target"), max_length=100)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authguard_staff_actions",
    )
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    payload = models.JSONField(_("details"), default=dict, blank=True)
    severity = models.PositiveSmallIntegerField(_("severity"), default=0)
    four_eyes = models.BooleanField(_("needs a second approval"), default=True)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=StaffApprovalStatus.choices,
        default=StaffApprovalStatus.PENDING,
        db_index=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.TextField(_("reason (internal)"), max_length=500)
    requested_at = models.DateTimeField(_("requested"), db_index=True)
    expires_at = models.DateTimeField(_("expires"))
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved or rejected by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_note = models.TextField(_("decision note (internal)"), max_length=500, blank=True)
    executed_at = models.DateTimeField(_("carried out"), null=True, blank=True)
    result = models.CharField(_("result"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("staff action")
        verbose_name_plural = _("staff actions")
        ordering = ["-requested_at", "-pk"]
        constraints = [
            # SECURITY: one pending request per action and target, so a double submit or two desks asking at
            # once cannot leave two approvals that would execute the same thing twice.
            models.UniqueConstraint(
                fields=["action", "target_id"],
                condition=models.Q(status="pending"),
                name="authguard_one_pending_staff_action",
            )
        ]
        indexes = [models.Index(fields=["customer", "requested_at"], name="authguard_staff_customer")]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.summary} ({self.get_status_display()})"
