"""Login events in the console: read-only evidence, filtered, explained and judged (fraud / legitimate), with
the console pages (:mod:`authguard.console.pages`) mounted under them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.console import reports
from authguard.console.admin_base import (
    LockAccountsMixin,
    audit_change,
    contain_selected,
)
from authguard.console.mixins import UserSearchMixin, ValidSelectionMixin
from authguard.console.mixins import (
    user_search_fields as user_search_fields,  # re-exported: public since issue 14
)
from authguard.console.pages import ConsolePages
from authguard.models import (
    Feedback,
    LoginEvent,
    StaffAction,
)
from authguard.risk import feedback
from authguard.templatetags.authguard_display import device_label

# -- login events ----------------------------------------------------------------------------------------


def _recent_events(days: int = 30) -> QuerySet[LoginEvent]:
    return LoginEvent.objects.filter(created_at__gte=timezone.now() - timedelta(days=days))


class ReasonFilter(admin.SimpleListFilter):
    """Filter events by one reason code."""

    title = _("reason")
    parameter_name = "reason"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # The codes of the last 30 days' events, so custom signals' codes appear too: one grouped query over
        # the (few) distinct reason lists of the indexed recent rows.
        return [(code, code) for code, _n in reports.top_reasons(_recent_events(), limit=100)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        code = self.value()
        if not code:
            return queryset
        # JSON containment is not portable to SQLite; match the serialized code instead.
        return queryset.filter(reasons__icontains=json.dumps(code))


class FeedbackFilter(admin.SimpleListFilter):
    """Events by analyst verdict, including "not reviewed"."""

    title = _("analyst verdict")
    parameter_name = "verdict"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [*Feedback.choices, ("none", _("not reviewed"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if value == "none":
            return queryset.filter(feedback="")
        if value in Feedback.values:
            return queryset.filter(feedback=value)
        return queryset


class CountryFilter(admin.SimpleListFilter):
    """Events by country (only the countries present, from one grouped query)."""

    title = _("country")
    parameter_name = "country"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = LoginEvent.objects.exclude(country="").values_list("country", flat=True).distinct()
        return [(code, code) for code in sorted(codes)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(country=self.value()) if self.value() else queryset


class AsnFilter(admin.SimpleListFilter):
    """Events by network: the 50 riskiest ASNs of the last 30 days, or any ``asn=<number>``."""

    title = _("network (ASN)")
    parameter_name = "asn"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        rows = reports.riskiest_networks(_recent_events(), limit=50)
        return [(str(r.asn), f"AS{r.asn} {r.as_org}"[:60]) for r in rows if r.asn is not None]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if not value:
            return queryset
        if not (value.isascii() and value.isdigit()):
            return queryset.none()  # a malformed ASN matches nothing, it is not a server error
        return queryset.filter(asn=int(value))


def _points(finding: dict[str, Any]) -> str:
    """A finding's points; a shadow (report-only) one says what it would have added."""
    evidence = finding.get("evidence") or {}
    if isinstance(evidence, dict) and evidence.get("shadow"):
        would = evidence.get("would_score", evidence.get("would_action", ""))
        return gettext("report-only (would be %(would)s)") % {"would": would}
    return f"{finding['score']:+d}"


@admin.register(LoginEvent)
class LoginEventAdmin(LockAccountsMixin, UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """Login events are evidence: admins read, filter and judge them; nobody edits them here."""

    list_display = (
        "created_at",
        "who",
        "ip",
        "place",
        "as_org",
        "browser",
        "score",
        "action",
        "outcome",
        "feedback",
    )
    list_filter = (
        "action",
        "outcome",
        ReasonFilter,
        FeedbackFilter,
        CountryFilter,
        AsnFilter,
        "password_ok",
        "created_at",
    )
    search_fields = ("username", "=ip")  # and the user's login name and e-mail (UserSearchMixin)
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    readonly_fields = ("explanation", "incident_link")
    exclude = ("findings",)
    actions = (
        "mark_fraud",
        "mark_legitimate",
        "clear_verdict",
        "lock_accounts",
        "end_sessions_of_accounts",
        "force_password_resets",
    )
    change_list_template = "admin/authguard/loginevent/change_list.html"

    @admin.display(description=_("user"), ordering="username")
    def who(self, obj: LoginEvent) -> str:
        return str(obj.user or obj.username)

    @admin.display(description=_("browser"), ordering="device_summary")
    def browser(self, obj: LoginEvent) -> str:
        """The summary of the User-Agent, as pages show it: his "SECURITY DESK CALL 0120 987 654 Spider/2"
        is no number for the desk to call (red team, round fifty-five)."""
        return device_label(obj.device_summary)

    @admin.display(description=_("place"))
    def place(self, obj: LoginEvent) -> str:
        return ", ".join(p for p in (obj.city, obj.country) if p) or "?"

    @admin.display(description=_("incident report"))
    def incident_link(self, obj: LoginEvent) -> str:
        if obj.user is None:
            return "-"
        url = reverse("admin:authguard_incident") + "?user=" + str(obj.user.pk)
        return format_html('<a href="{}">{}</a>', url, _("timeline of this account"))

    @admin.display(description=_("why this score"))
    def explanation(self, obj: LoginEvent) -> str:
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((f["code"], _points(f), f["reason"], f.get("evidence") or "") for f in obj.findings or []),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("code"),
            _("points"),
            _("reason"),
            _("evidence"),
            rows,
        )

    # SECURITY: events are evidence. No add, no edit, no delete through the admin (retention pruning is
    # the periodic task's job); the only write is the analyst's verdict, through the audited actions.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_feedback_permission(self, request: HttpRequest) -> bool:
        """Who may mark events: staff holding ``authguard.change_loginevent``."""
        return request.user.has_perm("authguard.change_loginevent")

    # -- feedback ------------------------------------------------------------------------------------------

    def _set_verdict(self, request: HttpRequest, queryset: QuerySet[LoginEvent], verdict: str) -> int:
        changed = 0
        with transaction.atomic():
            for event in queryset.select_related(None).select_for_update():
                if event.feedback == verdict:
                    continue
                before = event.feedback or "none"
                # feedback.mark checks the permission again and refreshes the fraud-network signal.
                feedback.mark(event, verdict, by=request.user)
                audit_change(request, event, f"verdict: {before} -> {verdict or 'none'}")
                changed += 1
        return changed

    @admin.action(description=_("Mark as confirmed fraud"), permissions=["feedback"])
    def mark_fraud(self, request: HttpRequest, queryset: QuerySet[LoginEvent]) -> None:
        n = self._set_verdict(request, queryset, Feedback.FRAUD)
        self.message_user(
            request, gettext("%(n)d event(s) marked as confirmed fraud.") % {"n": n}, messages.SUCCESS
        )

    @admin.action(description=_("Mark as legitimate"), permissions=["feedback"])
    def mark_legitimate(self, request: HttpRequest, queryset: QuerySet[LoginEvent]) -> None:
        n = self._set_verdict(request, queryset, Feedback.LEGITIMATE)
        self.message_user(
            request, gettext("%(n)d event(s) marked as legitimate.") % {"n": n}, messages.SUCCESS
        )

    @admin.action(description=_("Clear the verdict"), permissions=["feedback"])
    def clear_verdict(self, request: HttpRequest, queryset: QuerySet[LoginEvent]) -> None:
        n = self._set_verdict(request, queryset, "")
        self.message_user(request, gettext("%(n)d verdict(s) cleared.") % {"n": n}, messages.SUCCESS)

    # -- containment (issue 16): one staff action per customer of the selected events ----------------------

    @admin.action(description=_("End every session of the accounts (with a reason)"), permissions=["contain"])
    def end_sessions_of_accounts(
        self, request: HttpRequest, queryset: QuerySet[LoginEvent]
    ) -> TemplateResponse | None:
        return contain_selected(
            self,
            request,
            queryset,
            action="end_sessions_of_accounts",
            staff_action=StaffAction.END_SESSIONS,
            title=gettext("End every session of accounts"),
            done=gettext("%(n)d account(s) signed out everywhere."),
        )

    @admin.action(
        description=_("Force a password reset of the accounts (with a reason)"), permissions=["contain"]
    )
    def force_password_resets(
        self, request: HttpRequest, queryset: QuerySet[LoginEvent]
    ) -> TemplateResponse | None:
        return contain_selected(
            self,
            request,
            queryset,
            action="force_password_resets",
            staff_action=StaffAction.FORCE_PASSWORD_RESET,
            title=gettext("Force password resets"),
            done=gettext("%(n)d password(s) replaced; the customers must reset them."),
        )

    # -- console pages (authguard.console.pages), mounted here: /admin/authguard/loginevent/<page>/
    # ------------

    def get_urls(self) -> list[URLPattern]:

        return [*ConsolePages(self).urls(), *super().get_urls()]
