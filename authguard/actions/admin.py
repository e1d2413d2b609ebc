"""Admin of held sensitive actions and registered payees: staff review them and cancel a pending action.

There is no "release": only the customer's own factor confirms a sensitive action. Registered by the
``from .actions import admin as actions_admin`` at the end of :mod:`authguard.console.admin` (the admin loads
``authguard.console.admin`` only), whose helpers these admins use.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.actions.flow import staff_cancel
from authguard.console.admin_base import with_reason
from authguard.console.mixins import UserSearchMixin, ValidSelectionMixin
from authguard.models import HeldAction, RegisteredPayee
from authguard.notifications.lures import strip_lures


class _ReadOnly(UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """Records kept by authguard's flows: staff look (searching by the customer), nobody writes."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HeldAction)
class HeldActionAdmin(_ReadOnly):
    """Held sensitive actions (withdrawals, bank accounts, transfers out, contact changes)."""

    list_display = ("created_at", "user", "kind", "shown_summary", "status", "expires_at", "confirmed_method")
    list_filter = ("status", "kind", "created_at")
    search_fields = ("summary", "portal_ref")  # and the customer's login name and e-mail
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    # SECURITY: what binds a confirmation to its action and session is shown to nobody; the stored summary
    # only through shown_summary.
    exclude = ("nonce", "session_binding", "summary", "canonical", "summary_data")
    readonly_fields = ("shown_summary", "shown_canonical")
    actions = ("cancel_held",)

    @admin.display(description=_("summary"), ordering="summary")
    def shown_summary(self, obj: HeldAction) -> str:
        """The stored summary without phone numbers or domains: a transfer held before round fifty-seven kept
        its free-text destination, his desk's number in it (red team, round fifty-eight)."""
        return strip_lures(obj.summary)

    @admin.display(description=_("canonical request (JSON)"))
    def shown_canonical(self, obj: HeldAction) -> str:
        """The exact request the customer's factor confirms, without phone numbers or domains: a transfer held
        before round fifty-seven kept its free-text destination there too (review, round fifty-nine)."""
        return strip_lures(obj.canonical)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("authguard.change_heldaction")

    @admin.action(description=_("Cancel the held request (with a reason)"), permissions=["review"])
    def cancel_held(self, request: HttpRequest, queryset: QuerySet[HeldAction]) -> TemplateResponse | None:
        def apply(held: HeldAction, reason: str) -> bool:
            # Audited and notified by the flow (who and why stay in the admin log).
            return staff_cancel(held, by=request.user, reason=reason)

        return with_reason(
            self,
            request,
            queryset.filter(status=HeldAction.Status.PENDING),
            action="cancel_held",
            title=gettext("Cancel held requests"),
            apply=apply,
            done=gettext("%(n)d held request(s) cancelled."),
        )


@admin.register(RegisteredPayee)
class RegisteredPayeeAdmin(_ReadOnly):
    """Bank accounts that may receive money, with when they were registered or last changed."""

    list_display = ("registered_at", "user", "label", "source", "removed_at")
    list_filter = ("source", "registered_at")
    search_fields = ("label", "ref")
    list_select_related = ("user",)
    exclude = ("details_digest",)
