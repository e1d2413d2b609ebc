"""The security console: authguard's Django admin for a brokerage's security staff.

What staff see and may do, each behind Django's model permissions (``view_*`` to look, ``change_*`` /
``delete_*`` to act; superusers everything):

* **Login events** — read-only evidence, filterable by action, outcome, reason, country, ASN and time,
  searchable by user or IP, each with its findings explained. Staff with ``change_loginevent`` mark events
  as confirmed fraud or legitimate (audited in the admin log); the marks feed the backtests.
* **Security dashboard**, **backtest**, **compliance report** (JSDA 2025: customers without passkeys),
  **incident report** (one account's timeline) and the **network lists**: the pages of
  :mod:`authguard.console.pages`, mounted under the login events (``get_urls``), CSV exports included.
* **Customers' devices and factors** (known devices, TOTP devices, and the passkeys and recovery codes of
  the factors part): list and revoke; revoking notifies the customer.
* **Run-time policy**, **notifications**, **account locks**, and the order guard's records.
* **Staff actions** (four eyes): releasing a held order, revoking a factor, unlocking an account and saving
  a policy version go through :mod:`authguard.console.approvals`; above ``AUTHGUARD_FOUR_EYES``'s severity
  they wait for a second staff member's approval on the staff actions page.
* **Containment** (issue 16): staff with ``authguard.contain_account`` lock the accounts of selected login
  events or held orders, end their sessions or force a password reset (one staff action per customer,
  through the same flow); network blocks are listed under *Network blocks* and made on the network lists
  page.

The whole console is behind a passkey check of the staff session
(:class:`authguard.console.guard.StaffPasskeyMiddleware`): a staff password alone opens no page.

# SECURITY: nothing here can edit a security record in place. Events, notifications and policy versions
# are never changed through the admin (a new policy is a new version); revocations and verdicts are
# actions that leave an audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils import timezone, translation
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.checks import Codes, missing_otp_apps

if missing_otp_apps():
    # The console (and the modules below) build on django-otp's models; without its apps Django would stop
    # on "TOTPDevice doesn't declare an explicit app_label", before any system check could say why.
    raise ImproperlyConfigured(
        f"{Codes.OTP_NOT_INSTALLED}: {' and '.join(missing_otp_apps())} must be in INSTALLED_APPS. "
        'Add "django_otp" and "django_otp.plugins.otp_totp" before "authguard".'
    )

from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.console import approvals, reports
from authguard.console.mixins import UserSearchMixin, ValidSelectionMixin
from authguard.console.mixins import (
    user_search_fields as user_search_fields,  # re-exported: public since issue 14
)
from authguard.login import lockout
from authguard.models import (
    AccountLock,
    CampaignFlag,
    FactorRecord,
    Feedback,
    GuardedOrder,
    HeldOrder,
    KnownDevice,
    LoginEvent,
    NetworkBlock,
    Notification,
    PasskeyDevice,
    RecoveryCodeDevice,
    StaffAction,
    StaffApproval,
    StaffApprovalStatus,
)
from authguard.risk import feedback

# -- helpers ----------------------------------------------------------------------------------------------


def _audit(request: HttpRequest, obj: Any, message: str) -> None:
    """Write one admin-log line (who, when, what) about ``obj``: the console's audit trail."""
    assert request.user.is_authenticated  # admin views: the admin site lets only signed-in staff in
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def _notify_revoked(user: AbstractBaseUser, *, factor: Any, name: str, dedupe_key: str) -> None:
    """Tell the customer that staff removed a sign-in method or a remembered device (outbox, same tx)."""
    from authguard.notifications.outbox import notify, user_language

    with translation.override(user_language(user) or None):
        label = str(factor)
    notify(
        user,
        "factor_removed",
        context={"factor": label, "name": name, "time": timezone.now(), "by_staff": True},
        dedupe_key=dedupe_key,
    )


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
        if not value.isdigit():
            return queryset.none()  # a malformed ASN matches nothing, it is not a server error
        return queryset.filter(asn=int(value))


def _points(finding: dict[str, Any]) -> str:
    """A finding's points; a shadow (report-only) one says what it would have added."""
    evidence = finding.get("evidence") or {}
    if isinstance(evidence, dict) and evidence.get("shadow"):
        would = evidence.get("would_score", evidence.get("would_action", ""))
        return gettext("report-only (would be %(would)s)") % {"would": would}
    return f"{finding['score']:+d}"


class LockAccountsMixin:
    """The bulk "lock the accounts" action (containment, issue 16) for a list of records with a customer:
    one staff action per customer of the selection. Held orders stay as they are: a locked account's
    pending ones expire unconfirmed."""

    def has_contain_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("authguard.contain_account")

    @admin.action(description=_("Lock the customers' accounts (with a reason)"), permissions=["contain"])
    def lock_accounts(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        return contain_selected(
            self,  # type: ignore[arg-type]  # mixed into a ModelAdmin
            request,
            queryset,
            action="lock_accounts",
            staff_action=StaffAction.LOCK_ACCOUNT,
            title=gettext("Lock accounts"),
            done=gettext("%(n)d account(s) locked; their sessions ended."),
        )


@admin.register(LoginEvent)
class LoginEventAdmin(LockAccountsMixin, UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """Login events are evidence: admins read, filter and judge them; nobody edits them here."""

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
                _audit(request, event, f"verdict: {before} -> {verdict or 'none'}")
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
        from authguard.console.pages import ConsolePages

        return [*ConsolePages(self).urls(), *super().get_urls()]


# -- known devices and factors -----------------------------------------------------------------------------


@admin.register(KnownDevice)
class KnownDeviceAdmin(UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """Browsers customers signed in from. Staff may forget (revoke) one; the customer is told."""

    list_display = (
        "user",
        "label",
        "first_seen_at",
        "last_seen_at",
        "last_place",
        "trusted_until",
        "revoked_at",
    )
    list_filter = ("revoked_at", "last_seen_at")
    search_fields = ("label", "=last_ip")
    list_select_related = ("user",)
    readonly_fields = (
        "cookie_hash",
        "first_seen_at",
        "last_seen_at",
        "last_ip",
        "last_place",
        "label",
        "user",
        "trusted_until",
        "revoked_at",
    )
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable, never edited field by field: revoking is the one change, through the action.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("authguard.change_knowndevice")

    @admin.action(
        description=_("Revoke: forget the device (next login from it is new)"), permissions=["revoke"]
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[KnownDevice]) -> None:
        now = timezone.now()
        n = 0
        with transaction.atomic():
            for device in queryset.select_for_update().select_related("user").filter(revoked_at__isnull=True):
                # SECURITY: a revoked device loses its remembered status at once; the risk engine treats
                # its cookie as unknown from the next login on.
                KnownDevice.objects.filter(pk=device.pk).update(revoked_at=now, trusted_until=None)
                _audit(request, device, "revoked the known device")
                _notify_revoked(
                    device.user,
                    factor=_("remembered device"),
                    name=device.label,
                    dedupe_key=f"revoke-device:{device.pk}",
                )
                n += 1
        self.message_user(request, gettext("%(n)d device(s) revoked.") % {"n": n}, messages.SUCCESS)


class FactorAdmin(UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """A customer's second factor: listed, never shown (no secrets), never edited; staff may revoke it."""

    # Sequences of any length: each factor's admin lists its own columns.
    list_display: tuple[str, ...] = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter: ClassVar[tuple[str, ...]] = ("confirmed", "created_at", "last_used_at")
    search_fields = ("name",)
    list_select_related = ("user",)
    fields: ClassVar[tuple[str, ...]] = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields: ClassVar[tuple[str, ...]] = fields
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # SECURITY: factors are enrolled by the customer, bound to them; staff never create one.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting goes through the revoke action, which notifies the customer.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")

    @admin.action(
        description=_("Revoke: delete the factor and tell the customer (with a reason)"),
        permissions=["revoke"],
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        # SECURITY: through the four-eyes flow (authguard.console.approvals): above AUTHGUARD_FOUR_EYES's
        # severity a second staff member approves before the factor is removed (battery case 60).
        return with_reason(
            self,
            request,
            queryset.select_related("user"),
            action="revoke",
            title=gettext("Revoke sign-in methods"),
            apply=staff_request(self, request, StaffAction.REVOKE_FACTOR),
            done=gettext("%(n)d factor(s) revoked."),
        )


class TOTPFactorAdmin(FactorAdmin):
    """TOTP devices, replacing django-otp's admin: no secret key, no QR code, no editing."""


# SECURITY: django-otp's own TOTP admin shows the secret key and its QR code to any staff member who may
# view devices; replace it with one that never shows secrets.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, TOTPFactorAdmin)


@admin.register(PasskeyDevice)
class PasskeyAdmin(FactorAdmin):
    """Customers' passkeys (public keys only: nothing secret is stored)."""

    list_display = ("user", "name", "confirmed", "backup_state", "created_at", "last_used_at")
    list_filter = ("confirmed", "backup_eligible", "backup_state", "created_at", "last_used_at")
    fields = (
        "user",
        "name",
        "confirmed",
        "aaguid",
        "transports",
        "backup_eligible",
        "backup_state",
        "user_verified",
        "sign_count",
        "created_at",
        "last_used_at",
    )
    readonly_fields = fields


@admin.register(RecoveryCodeDevice)
class RecoveryCodesAdmin(FactorAdmin):
    """Customers' recovery-code sets: how many are left, never the codes (only their hashes exist)."""

    list_display = ("user", "name", "confirmed", "codes_left", "created_at", "last_used_at")
    fields = ("user", "name", "confirmed", "codes_left", "created_at", "last_used_at")
    readonly_fields = fields

    @admin.display(description=_("codes left"))
    def codes_left(self, obj: RecoveryCodeDevice) -> int:
        return obj.remaining()


class ReadOnlyAdmin(ValidSelectionMixin, admin.ModelAdmin):
    """Records kept by authguard's flows: staff look, nobody writes through the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FactorRecord)
class FactorRecordAdmin(UserSearchMixin, ReadOnlyAdmin):
    list_display = (
        "user",
        "kind",
        "device_id",
        "enrolled_at",
        "enrolled_via",
        "cooling_off_until",
        "failures",
    )
    list_filter = ("kind", "enrolled_low_risk", "enrolled_at")
    search_fields = ("device_id",)
    list_select_related = ("user",)


@admin.register(Notification)
class NotificationAdmin(UserSearchMixin, ReadOnlyAdmin):
    """The outbox: what was (or will be) sent to whom, and whether it went."""

    list_display = ("created_at", "kind", "user", "to_email", "staff", "status", "attempts", "sent_at")
    list_filter = ("kind", "status", "staff", "created_at")
    search_fields = ("to_email", "kind")
    list_select_related = ("user",)
    exclude = ("dedupe_key",)


# -- actions that need a reason ------------------------------------------------------------------------------


class ReasonForm(forms.Form):
    """Why staff take an action; kept with the record and in the admin log."""

    reason = forms.CharField(
        label=_("reason"), min_length=3, max_length=200, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )


#: What an ``apply`` of :func:`with_reason` returns for an object that now waits for a second approval.
PENDING = "pending"


def with_reason(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: str,
    apply: Callable[[Any, str], bool | str],
    done: str,
) -> TemplateResponse | None:
    """Ask for a reason on an intermediate page, then ``apply(obj, reason)`` to each selected object.

    ``done`` is a message with ``%(n)d``: how many objects ``apply`` acted on (it returns True for those,
    and :data:`PENDING` for those that now wait for a second staff member's approval).
    """
    if "apply" in request.POST:
        form = ReasonForm(request.POST)
        if form.is_valid():
            reason = form.cleaned_data["reason"].strip()
            results = [apply(obj, reason) for obj in queryset]
            n = sum(1 for result in results if result is True)
            waiting = sum(1 for result in results if result == PENDING)
            if n or not waiting:
                model_admin.message_user(request, done % {"n": n}, messages.SUCCESS)
            if waiting:
                model_admin.message_user(
                    request,
                    gettext("%(n)d request(s) wait for a second staff member's approval (Staff actions).")
                    % {"n": waiting},
                    messages.WARNING,
                )
            return None
    else:
        form = ReasonForm()
    return TemplateResponse(
        request,
        "admin/authguard/reason_action.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": title,
            "objects": list(queryset[:100]),
            "form": form,
            "action": action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        },
    )


def staff_request(
    model_admin: admin.ModelAdmin, request: HttpRequest, action: str
) -> Callable[[Any, str], bool | str]:
    """An ``apply`` for :func:`with_reason` that asks for ``action`` through the four-eyes flow: True when
    carried out now, :data:`PENDING` when it waits for a second approval, False (with a message) else."""

    def apply(obj: Any, reason: str) -> bool | str:
        try:
            approval = approvals.request_action(request, action=action, target=obj, reason=reason)
        except approvals.ApprovalError as exc:
            model_admin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            return False
        if approval.status == StaffApprovalStatus.PENDING:
            return PENDING
        if approval.status != StaffApprovalStatus.EXECUTED:
            model_admin.message_user(request, f"{obj}: {approval.result}", messages.ERROR)
            return False
        return True

    return apply


def contain_selected(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    staff_action: str,
    title: str,
    done: str,
) -> TemplateResponse | None:
    """Contain the customers of the selected records (login events, held orders: anything with ``user``):
    one staff action per customer, however many of their records were selected, through
    :func:`with_reason` and the four-eyes flow (:mod:`authguard.console.approvals`)."""
    first: dict[Any, Any] = {}
    for pk, user_id in queryset.exclude(user__isnull=True).values_list("pk", "user_id"):
        first.setdefault(user_id, pk)
    # SECURITY: one record per customer goes on, so a customer is asked about (and notified) once.
    one_each = model_admin.model._default_manager.filter(pk__in=list(first.values())).select_related("user")

    def apply(obj: Any, reason: str) -> bool | str:
        try:
            approval = approvals.request_action(request, action=staff_action, target=obj.user, reason=reason)
        except approvals.ApprovalError as exc:
            model_admin.message_user(request, f"{obj.user}: {exc.message}", messages.ERROR)
            return False
        if approval.status == StaffApprovalStatus.PENDING:
            return PENDING
        if approval.status != StaffApprovalStatus.EXECUTED:
            model_admin.message_user(request, f"{obj.user}: {approval.result}", messages.ERROR)
            return False
        return True

    return with_reason(model_admin, request, one_each, action=action, title=title, apply=apply, done=done)


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
                lockout.cancel_unlock_request(lock.user, by=request.user)
            except lockout.NotLocked:
                continue
            cancelled += 1
        self.message_user(request, gettext("%(n)d waiting unlock(s) cancelled.") % {"n": cancelled})


# -- order guard ---------------------------------------------------------------------------------------------


def staff_cancel(held: HeldOrder, *, by: Any, reason: str) -> bool:
    """Cancel a pending held order for staff: :func:`authguard.orders.guard.staff_cancel`."""
    from authguard.orders import guard as orders

    return orders.staff_cancel(held, by=by, reason=reason)


def staff_release(held: HeldOrder, *, by: Any, reason: str) -> Any:
    """Release a pending held order on staff's word: :func:`authguard.orders.guard.staff_release`."""
    from authguard.orders import guard as orders

    return orders.staff_release(held, by=by, reason=reason)


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

    list_display = ("created_at", "user", "summary", "severity", "status", "expires_at", "confirmed_method")
    list_filter = ("status", "severity", "created_at")
    search_fields = ("summary", "portal_ref")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    # SECURITY: the nonce, digest and session binding are what bind a confirmation to this order; shown
    # to nobody (they are not secrets after use, but there is nothing to learn from them here).
    exclude = ("nonce", "session_binding")
    readonly_fields = ("reasons_explained",)
    actions = ("cancel_held", "release_held", "lock_accounts")

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

    list_display = (
        "symbol",
        "flagged_at",
        "accounts",
        "risky_accounts",
        "window_hours",
        "active",
        "cleared_by",
    )
    list_filter = ("active", "flagged_at")
    search_fields = ("symbol",)
    actions = ("clear",)

    def has_clear_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("authguard.change_campaignflag")

    @admin.action(description=_("Clear the flag (with a reason)"), permissions=["clear"])
    def clear(self, request: HttpRequest, queryset: QuerySet[CampaignFlag]) -> TemplateResponse | None:
        def apply(flag: CampaignFlag, reason: str) -> bool:
            updated = CampaignFlag.objects.filter(pk=flag.pk, active=True).update(
                active=False, cleared_at=timezone.now(), cleared_by=request.user.get_username()[:150]
            )
            if updated:
                _audit(request, flag, f"cleared: {reason}")
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
        "payload",
    )
    readonly_fields = fields
    actions = ("approve", "reject", "withdraw")

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
        except approvals.ApprovalError as exc:
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


# -- held sensitive actions ----------------------------------------------------------------------------------

# Imported last: authguard.actions.admin builds on this module's helpers (UserSearchMixin, with_reason).
from authguard.actions import admin as actions_admin  # noqa: E402, F401  (registers the held actions)

# The policy editor registers PolicyVersion (its own module: authguard.console.policy_editor).
from authguard.console import policy_editor  # noqa: E402,F401
