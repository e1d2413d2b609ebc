"""What every admin of the security console builds on: read-only admins, the admin-log line, actions that
need a reason (:func:`with_reason`), the four-eyes admin action (:func:`staff_request`) and containment of
the selected records' customers (:class:`LockAccountsMixin`, :func:`contain_selected`).

Outside the :mod:`authguard.console.admin` package so other apps' admins (:mod:`authguard.actions.admin`)
build on it without importing the console's registrations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.console import approvals, four_eyes
from authguard.console.mixins import DeclaredFiltersMixin, ValidSelectionMixin
from authguard.console.mixins import (
    user_search_fields as user_search_fields,  # re-exported: public since issue 14
)
from authguard.models import (
    StaffAction,
    StaffApprovalStatus,
)

# -- helpers ----------------------------------------------------------------------------------------------


def audit_change(request: HttpRequest, obj: Any, message: str) -> None:
    """Write one admin-log line (who, when, what) about ``obj``: the console's audit trail."""
    assert request.user.is_authenticated  # admin views: the admin site lets only signed-in staff in
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


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


class ReadOnlyAdmin(DeclaredFiltersMixin, ValidSelectionMixin, admin.ModelAdmin):
    """Records kept by authguard's flows: staff look (through the page's own filters), nobody writes through
    the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
        except four_eyes.ApprovalError as exc:
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
        except four_eyes.ApprovalError as exc:
            model_admin.message_user(request, f"{obj.user}: {exc.message}", messages.ERROR)
            return False
        if approval.status == StaffApprovalStatus.PENDING:
            return PENDING
        if approval.status != StaffApprovalStatus.EXECUTED:
            model_admin.message_user(request, f"{obj.user}: {approval.result}", messages.ERROR)
            return False
        return True

    return with_reason(model_admin, request, one_each, action=action, title=title, apply=apply, done=done)
