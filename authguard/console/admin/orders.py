"""The order guard's records in the console: guarded and held orders, campaign flags."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard import clock
from authguard.console.admin_base import (
    LockAccountsMixin,
    ReadOnlyAdmin,
    audit_change,
    staff_request,
    with_reason,
)
from authguard.console.mixins import UserSearchMixin
from authguard.console.mixins import (
    user_search_fields as user_search_fields,  # re-exported: public since issue 14
)
from authguard.models import (
    CampaignFlag,
    GuardedOrder,
    HeldOrder,
    StaffAction,
)
from authguard.notifications.lures import strip_lures
from authguard.orders.campaign import clear_flag
from authguard.orders.guard import staff_cancel

# -- order guard ---------------------------------------------------------------------------------------------


@admin.register(GuardedOrder)
class GuardedOrderAdmin(UserSearchMixin, ReadOnlyAdmin):
    """The order guard's ledger: every order it let through or held."""

    list_display = (
        "created_at",
        "user",
        "side",
        "quantity",
        "symbol",
        "amount",
        "currency",
        "status",
        "risky_session",
    )
    list_filter = ("status", "side", "risky_session", "illiquid", "created_at")
    search_fields = ("symbol",)
    list_select_related = ("user",)
    date_hierarchy = "created_at"


@admin.register(HeldOrder)
class HeldOrderAdmin(LockAccountsMixin, UserSearchMixin, ReadOnlyAdmin):
    """Held orders: staff review them, and cancel or release one with a recorded reason."""

    list_display = (
        "created_at",
        "user",
        "shown_summary",
        "severity",
        "status",
        "expires_at",
        "confirmed_method",
    )
    list_filter = ("status", "severity", "created_at")
    search_fields = ("summary", "portal_ref")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    # SECURITY: the nonce, digest and session binding are what bind a confirmation to this order; shown
    # to nobody (they are not secrets after use, but there is nothing to learn from them here).
    exclude = ("nonce", "session_binding", "summary", "canonical", "summary_data")
    readonly_fields = ("shown_summary", "shown_canonical", "reasons_explained")
    actions = ("cancel_held", "release_held", "lock_accounts")

    @admin.display(description=_("summary"), ordering="summary")
    def shown_summary(self, obj: HeldOrder) -> str:
        """The stored summary without phone numbers or domains: a portal may pass an unchecked symbol or
        reference (red team, round sixty-one; as the held actions' list)."""
        return strip_lures(obj.summary)

    @admin.display(description=_("canonical order (JSON)"))
    def shown_canonical(self, obj: HeldOrder) -> str:
        """The exact order the customer's factor confirms, without phone numbers or domains."""
        return strip_lures(obj.canonical)

    @admin.display(description=_("why it was held"))
    def reasons_explained(self, obj: HeldOrder) -> str:
        return format_html_join(
            "",
            "<p><code>{}</code> {}</p>",
            ((r.get("code", ""), r.get("reason", "")) for r in obj.reasons or [] if isinstance(r, dict)),
        )

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("authguard.change_heldorder")

    @admin.action(description=_("Cancel the held order (with a reason)"), permissions=["review"])
    def cancel_held(self, request: HttpRequest, queryset: QuerySet[HeldOrder]) -> TemplateResponse | None:
        def apply(held: HeldOrder, reason: str) -> bool:
            # Audited and notified by the flow (who and why stay in the admin log).
            return staff_cancel(held, by=request.user, reason=reason)

        return with_reason(
            self,
            request,
            queryset.filter(status=HeldOrder.Status.PENDING),
            action="cancel_held",
            title=gettext("Cancel held orders"),
            apply=apply,
            done=gettext("%(n)d held order(s) cancelled."),
        )

    @admin.action(description=_("Release: execute the held order (with a reason)"), permissions=["review"])
    def release_held(self, request: HttpRequest, queryset: QuerySet[HeldOrder]) -> TemplateResponse | None:
        # SECURITY: through the four-eyes flow (battery case 60): a phished desk password alone never
        # executes a held order.
        return with_reason(
            self,
            request,
            queryset.filter(status=HeldOrder.Status.PENDING),
            action="release_held",
            title=gettext("Release held orders"),
            apply=staff_request(self, request, StaffAction.RELEASE_ORDER),
            done=gettext("%(n)d held order(s) released and executed."),
        )


@admin.register(CampaignFlag)
class CampaignFlagAdmin(ReadOnlyAdmin):
    """Instruments many accounts bought at once; while active, every buy of them is held."""

    # The month on every flag, whichever arm raised it: what a clearing judges (round seventy-five).
    list_display = (
        "symbol",
        "flagged_at",
        "arm",
        "accounts",
        "risky_accounts",
        "window_hours",
        "month_accounts",
        "month_volume",
        "month_share",
        "month_over",
        "active",
        "cleared_by",
        "month_judged_until",
    )
    list_filter = ("active", "flagged_at")
    search_fields = ("symbol",)
    actions = ("clear",)

    def has_clear_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("authguard.change_campaignflag")

    @admin.action(description=_("Clear the flag (with a reason)"), permissions=["clear"])
    def clear(self, request: HttpRequest, queryset: QuerySet[CampaignFlag]) -> TemplateResponse | None:
        def apply(flag: CampaignFlag, reason: str) -> bool:
            # SECURITY: a clearing starts the month's count again only for a flag that showed the month over
            # its share (clear_flag; red team, round seventy-five).
            updated = clear_flag(flag, by=request.user.get_username(), now=clock.now())
            if updated:
                audit_change(request, flag, f"cleared: {reason}")
            return bool(updated)

        return with_reason(
            self,
            request,
            queryset.filter(active=True),
            action="clear",
            title=gettext("Clear campaign flags"),
            apply=apply,
            done=gettext("%(n)d flag(s) cleared."),
        )
