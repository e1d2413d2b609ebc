"""Account locks and the notification outbox in the console."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.console.admin_base import (
    ReadOnlyAdmin,
    staff_request,
    with_reason,
)
from authguard.console.mixins import UserSearchMixin
from authguard.console.mixins import (
    user_search_fields as user_search_fields,  # re-exported: public since issue 14
)
from authguard.login import lockout, unlocking
from authguard.models import (
    AccountLock,
    Notification,
    StaffAction,
)


@admin.register(Notification)
class NotificationAdmin(UserSearchMixin, ReadOnlyAdmin):
    """The outbox: what was (or will be) sent to whom, and whether it went."""

    list_display = ("created_at", "kind", "user", "to_email", "staff", "status", "attempts", "sent_at")
    list_filter = ("kind", "status", "staff", "created_at")
    search_fields = ("to_email", "kind")
    list_select_related = ("user",)
    exclude = ("dedupe_key",)


# -- account locks -------------------------------------------------------------------------------------------


@admin.register(AccountLock)
class AccountLockAdmin(UserSearchMixin, ReadOnlyAdmin):
    """Locked accounts (consecutive failures). Unlocking needs ``authguard.unlock_account`` and a reason."""

    list_display = (
        "user",
        "failures",
        "locked_at",
        "locked_reason",
        "lock_count",
        "unlocked_at",
        "unlocked_by",
        "unlock_due_at",
    )
    list_filter = ("locked_at", "unlocked_at", "unlock_due_at")
    list_select_related = ("user", "unlocked_by")
    actions = ("unlock", "cancel_unlock_request")

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("authguard.unlock_account")

    @admin.action(description=_("Unlock the account (with a reason)"), permissions=["unlock"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccountLock]) -> TemplateResponse | None:
        # SECURITY: through the four-eyes flow (battery case 60); lockout.unlock checks the permission too.
        return with_reason(
            self,
            request,
            queryset.filter(locked_at__isnull=False).select_related("user"),
            action="unlock",
            title=gettext("Unlock accounts"),
            apply=staff_request(self, request, StaffAction.UNLOCK_ACCOUNT),
            done=gettext("%(n)d account(s) unlocked."),
        )

    @admin.action(description=_("Cancel the customer's waiting self-service unlock"), permissions=["unlock"])
    def cancel_unlock_request(self, request: HttpRequest, queryset: QuerySet[AccountLock]) -> None:
        # Keeping an account locked protects it: one staff member may do it, without a second approval.
        cancelled = 0
        for lock in queryset.filter(locked_at__isnull=False, unlock_due_at__isnull=False).select_related(
            "user"
        ):
            try:
                unlocking.cancel_unlock_request(lock.user, by=request.user)
            except lockout.NotLocked:
                continue
            cancelled += 1
        self.message_user(request, gettext("%(n)d waiting unlock(s) cancelled.") % {"n": cancelled})
