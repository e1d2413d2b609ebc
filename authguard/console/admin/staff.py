"""Staff actions (four eyes) and network blocks in the console."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.choices import StaffAction
from authguard.console import approvals, four_eyes
from authguard.console.admin_base import (
    ReadOnlyAdmin,
    with_reason,
)
from authguard.console.mixins import UserSearchMixin
from authguard.console.mixins import (
    user_search_fields as user_search_fields,  # re-exported: public since issue 14
)
from authguard.console.policy_forms import policy_changes, policy_in_force
from authguard.models import (
    NetworkBlock,
    StaffApproval,
    StaffApprovalStatus,
)

# -- staff actions (four eyes) -------------------------------------------------------------------------------


def _may_act(request: HttpRequest) -> bool:
    """Whether the staff member holds the permission of any four-eyes action (or may view the records)."""
    user = request.user
    return user.is_active and (
        user.has_perm("authguard.view_staffapproval")
        or user.has_perm("authguard.change_heldorder")
        or user.has_perm("authguard.unlock_account")
        or user.has_perm("authguard.add_policyversion")
        or user.has_perm("authguard.contain_account")
        or user.has_perm("authguard.add_networkblock")
        or user.has_perm("authguard.delete_passkeydevice")
        or user.has_perm("authguard.delete_recoverycodedevice")
        or user.has_perm("otp_totp.delete_totpdevice")
    )


@admin.register(StaffApproval)
class StaffApprovalAdmin(UserSearchMixin, ReadOnlyAdmin):
    """Staff actions: requests waiting for a second staff member's approval, and the record of every one.

    Approving carries the action out at once (:func:`authguard.console.approvals.approve`); the requester
    can never approve their own request. Rejecting and withdrawing do nothing but close the request.
    """

    list_display = (
        "requested_at",
        "action",
        "summary",
        "customer",
        "severity",
        "status",
        "requested_by",
        "approved_by",
        "expires_at",
    )
    list_filter = ("status", "action", "four_eyes", "requested_at")
    search_fields = ("summary",)
    user_search_through = ("customer", "requested_by", "approved_by")
    list_select_related = ("customer", "requested_by", "approved_by")
    date_hierarchy = "requested_at"
    fields = (
        "action",
        "summary",
        "customer",
        "target_id",
        "severity",
        "four_eyes",
        "status",
        "requested_by",
        "requested_at",
        "reason",
        "expires_at",
        "approved_by",
        "decided_at",
        "decision_note",
        "executed_at",
        "result",
        "changes",
        "payload",
    )
    readonly_fields = fields
    actions = ("approve", "reject", "withdraw")

    @admin.display(description=_("what it changes in the policy in force"))
    def changes(self, obj: StaffApproval) -> str:
        """A policy change's changes against the policy in force now, old → new (what approving does).

        SECURITY: the page showed the proposal only: a request that left out an option an earlier approved
        change had raised ("no scoring change") took it back to its default, and the approver was never shown
        so (red team, round thirty-three)."""
        if obj.action != StaffAction.CHANGE_POLICY or not isinstance(obj.payload, dict):
            return "-"
        rows = policy_changes(policy_in_force(), obj.payload)
        if not rows:
            return gettext("nothing")
        return format_html_join(
            mark_safe("<br>"), "{}: {}: {} → {}", ((r["what"], r["option"], r["old"], r["new"]) for r in rows)
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_act(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_act(request)

    def has_decide_permission(self, request: HttpRequest) -> bool:
        # Each decision checks the action's own permission again (authguard.console.approvals).
        return _may_act(request)

    def _decide(
        self, request: HttpRequest, approval: StaffApproval, reason: str, verb: Callable[..., StaffApproval]
    ) -> bool:
        try:
            if verb is approvals.withdraw:
                result = verb(request, approval_id=approval.pk)
            else:
                result = verb(request, approval_id=approval.pk, note=reason)
        except four_eyes.ApprovalError as exc:
            self.message_user(request, f"{approval}: {exc.message}", messages.ERROR)
            return False
        if result.status == StaffApprovalStatus.FAILED:
            self.message_user(request, f"{approval}: {result.result}", messages.ERROR)
            return False
        if result.status == StaffApprovalStatus.EXPIRED:
            self.message_user(request, f"{approval}: {gettext('expired')}", messages.ERROR)
            return False
        return True

    @admin.action(description=_("Approve and carry out (second staff member)"), permissions=["decide"])
    def approve(self, request: HttpRequest, queryset: QuerySet[StaffApproval]) -> TemplateResponse | None:
        return with_reason(
            self,
            request,
            queryset.filter(status=StaffApprovalStatus.PENDING),
            action="approve",
            title=gettext("Approve staff actions"),
            apply=lambda approval, note: self._decide(request, approval, note, approvals.approve),
            done=gettext("%(n)d staff action(s) approved and carried out."),
        )

    @admin.action(description=_("Reject (with a reason)"), permissions=["decide"])
    def reject(self, request: HttpRequest, queryset: QuerySet[StaffApproval]) -> TemplateResponse | None:
        return with_reason(
            self,
            request,
            queryset.filter(status=StaffApprovalStatus.PENDING),
            action="reject",
            title=gettext("Reject staff actions"),
            apply=lambda approval, note: self._decide(request, approval, note, approvals.reject),
            done=gettext("%(n)d staff action(s) rejected."),
        )

    @admin.action(description=_("Withdraw my request"), permissions=["decide"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[StaffApproval]) -> None:
        n = sum(
            1
            for approval in queryset.filter(status=StaffApprovalStatus.PENDING)
            if self._decide(request, approval, "", approvals.withdraw)
        )
        self.message_user(request, gettext("%(n)d request(s) withdrawn.") % {"n": n}, messages.SUCCESS)


@admin.register(NetworkBlock)
class NetworkBlockAdmin(UserSearchMixin, ReadOnlyAdmin):
    """The security desk's network blocks and their early ends: a record, never edited. Blocks are made and
    ended on the network lists page, through the four-eyes flow. Searchable by the staff who asked or
    approved."""

    user_search_through = ("created_by", "approved_by")

    list_display = ("created_at", "network", "kind", "until", "ends", "created_by", "approved_by", "reason")
    list_filter = ("kind", "created_at", "until")
    search_fields = ("network", "reason")
    list_select_related = ("created_by", "approved_by")
    date_hierarchy = "created_at"
