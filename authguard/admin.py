"""Django admin for authguard: login events (read-only, explained) and known devices."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .models import KnownDevice, LoginEvent


class ReasonFilter(admin.SimpleListFilter):
    """Filter events by one reason code."""

    title = _("reason")
    parameter_name = "reason"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # The codes offered are those of recent events, so custom signals' codes appear too.
        codes: set[str] = set()
        for reasons in LoginEvent.objects.order_by("-created_at").values_list("reasons", flat=True)[:2000]:
            codes.update(reasons or [])
        return [(code, code) for code in sorted(codes)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        code = self.value()
        if not code:
            return queryset
        # JSON containment is not portable to SQLite; match the serialized code instead.
        return queryset.filter(reasons__icontains=f'"{code}"')


@admin.register(LoginEvent)
class LoginEventAdmin(admin.ModelAdmin):
    """Login events are evidence: admins read and filter them, nobody edits them here."""

    list_display = (
        "created_at",
        "who",
        "ip",
        "place",
        "as_org",
        "device_summary",
        "score",
        "action",
        "outcome",
    )
    list_filter = ("action", "outcome", ReasonFilter, "country", "asn", "created_at")
    search_fields = ("username", "user__username", "user__email", "ip")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    readonly_fields = ("explanation",)
    exclude = ("findings",)

    @admin.display(description=_("user"), ordering="username")
    def who(self, obj: LoginEvent) -> str:
        return str(obj.user or obj.username)

    @admin.display(description=_("place"))
    def place(self, obj: LoginEvent) -> str:
        return ", ".join(p for p in (obj.city, obj.country) if p) or "?"

    @admin.display(description=_("why this score"))
    def explanation(self, obj: LoginEvent) -> str:
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (f["code"], f"{f['score']:+d}", f["reason"], f.get("evidence") or "")
                for f in obj.findings or []
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("code"),
            _("points"),
            _("reason"),
            _("evidence"),
            rows,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(KnownDevice)
class KnownDeviceAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "label",
        "first_seen_at",
        "last_seen_at",
        "last_place",
        "trusted_until",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "label", "last_ip")
    readonly_fields = (
        "cookie_hash",
        "first_seen_at",
        "last_seen_at",
        "last_ip",
        "last_place",
        "label",
        "user",
    )
