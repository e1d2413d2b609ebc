"""The policy editor: run-time policy versions in the security console.

A new policy is a new :class:`~authguard.models.PolicyVersion` (never an edit in place), asked for through
:func:`authguard.console.approvals.request_action` so that the four-eyes rule applies, and previewed by a
backtest over the recorded logins before anything is saved.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import backtest
from .. import policy as runtime_policy
from ..models import PolicyVersion, StaffAction, StaffApprovalStatus
from . import approvals
from .mixins import UserSearchMixin, ValidSelectionMixin


def signal_reference() -> list[dict[str, Any]]:
    """The configured signals with their options in force and their defaults, for the policy editor."""
    from django.utils.module_loading import import_string

    policy = runtime_policy.current_policy()
    rows = []
    for entry in policy.signal_config:
        klass = import_string(entry["NAME"])
        rows.append(
            {
                "name": entry["NAME"],
                "doc": (klass.__doc__ or "").strip().splitlines()[0] if klass.__doc__ else "",
                "options": json.dumps(entry.get("OPTIONS", {}), sort_keys=True),
                "defaults": json.dumps(getattr(klass, "defaults", {}), sort_keys=True),
            }
        )
    return rows


class PolicyVersionForm(forms.ModelForm):
    """A new policy version: thresholds, signal options and shadow signals, validated like the settings."""

    step_up = forms.IntegerField(label=_("step-up threshold"), min_value=0, max_value=100)
    deny = forms.IntegerField(label=_("deny threshold"), min_value=0, max_value=100)
    backtest_days = forms.IntegerField(
        label=_("days to backtest"),
        min_value=1,
        max_value=backtest.MAX_DAYS,
        initial=30,
        required=False,
        help_text=_("For the Backtest button: replay this many days of recorded logins; nothing is saved."),
    )

    class Meta:
        model = PolicyVersion
        fields = ("comment", "signal_options", "shadow_signals")
        widgets = {"comment": forms.TextInput(attrs={"size": 80})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["comment"].required = True
        self.fields["comment"].help_text = _("Why this change (kept with the version).")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("step_up") is not None and data.get("deny") is not None:
            # Validated with the rest by PolicyVersion.clean (authguard.policy.policy_problem).
            self.instance.thresholds = {"step_up": data["step_up"], "deny": data["deny"]}
        return data

    def proposed(self) -> Any:
        """The validated form as a run-time policy (for a backtest)."""
        return runtime_policy.build_policy(
            thresholds=self.instance.thresholds,
            signal_options=self.cleaned_data.get("signal_options") or {},
            shadow_signals=self.cleaned_data.get("shadow_signals") or [],
        )


@admin.register(PolicyVersion)
class PolicyVersionAdmin(UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """The run-time policy: each save is a new version (who, when, why); the newest is in force.

    The add page starts from the policy in force and has a **Backtest** button that replays recorded
    logins through the values on the form beside the policy in force, without saving.
    """

    list_display = ("version", "created_at", "created_by", "approved_by", "comment", "thresholds", "in_force")
    list_select_related = ("created_by", "approved_by")
    search_fields = ("comment",)
    user_search_through = ("created_by",)
    change_form_template = "admin/authguard/policyversion/change_form.html"
    view_fields = (
        "created_at",
        "created_by",
        "approved_by",
        "comment",
        "thresholds",
        "signal_options",
        "shadow_signals",
    )
    add_fields = ("comment", "step_up", "deny", "signal_options", "shadow_signals", "backtest_days")

    @admin.display(description=_("version"), ordering="pk")
    def version(self, obj: PolicyVersion) -> str:
        return f"v{obj.pk}"

    @admin.display(description=_("in force"), boolean=True)
    def in_force(self, obj: PolicyVersion) -> bool:
        return runtime_policy.current_policy().version == obj.pk

    # SECURITY: versions are the audit trail of the policy: added, never changed or deleted.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fields if obj is None else self.view_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.view_fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = PolicyVersionForm
        return super().get_form(request, obj, change, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        stashed = getattr(request, "_authguard_policy_initial", None)
        if stashed is not None:
            return stashed
        latest = PolicyVersion.objects.order_by("-pk").first()
        thresholds = runtime_policy.current_policy().thresholds
        return {
            "step_up": thresholds.step_up,
            "deny": thresholds.deny,
            "signal_options": latest.signal_options if latest else {},
            "shadow_signals": latest.shadow_signals if latest else [],
            "backtest_days": 30,
        }

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: Any, change: bool) -> None:
        # Never reached for a new version (add_view sends it through the four-eyes flow); kept so that
        # nothing else in the admin can save one without it.
        raise PermissionDenied

    def _request_version(
        self, request: HttpRequest, form: PolicyVersionForm, form_url: str, extra_context: dict[str, Any]
    ) -> HttpResponse:
        """Save through the four-eyes flow: in force now, or waiting for a second staff member's approval."""
        from django.shortcuts import redirect

        data = form.cleaned_data
        payload = {
            "comment": data.get("comment", ""),
            "thresholds": form.instance.thresholds,
            "signal_options": data.get("signal_options") or {},
            "shadow_signals": data.get("shadow_signals") or [],
        }
        try:
            approval = approvals.request_action(
                request, action=StaffAction.CHANGE_POLICY, reason=data.get("comment", ""), payload=payload
            )
        except approvals.ApprovalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            request._authguard_policy_initial = {  # type: ignore[attr-defined]
                name: form.cleaned_data.get(name) for name in self.add_fields
            }
            request.method = "GET"
            return super().add_view(request, form_url, extra_context)
        if approval.status == StaffApprovalStatus.PENDING:
            self.message_user(
                request,
                gettext("The new policy waits for a second staff member's approval (Staff actions)."),
                messages.WARNING,
            )
            return redirect("admin:authguard_staffapproval_change", approval.pk)
        if approval.status != StaffApprovalStatus.EXECUTED:
            self.message_user(request, approval.result, messages.ERROR)
        else:
            self.message_user(
                request,
                gettext("The new policy is in force (%(v)s).") % {"v": approval.result},
                messages.SUCCESS,
            )
        return redirect("admin:authguard_policyversion_changelist")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        """The add page; with the Backtest button, the same page with the backtest and nothing saved.

        Saving asks for the new version through :func:`authguard.console.approvals.request_action`.
        """
        extra_context = {**(extra_context or {}), "signal_reference": signal_reference()}
        if request.method != "POST":
            return super().add_view(request, form_url, extra_context)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PolicyVersionForm(request.POST)
        if not form.is_valid():
            # Re-rendered by the admin with the errors; an invalid form never saves.
            return super().add_view(request, form_url, extra_context)
        if "_backtest" not in request.POST:
            return self._request_version(request, form, form_url, extra_context)
        context = dict(extra_context or {})
        try:
            proposed = form.proposed()
            context["backtest"] = backtest.run_backtest(
                proposed, days=form.cleaned_data.get("backtest_days") or 30
            )
            context["backtest_policy_json"] = json.dumps(backtest.policy_json(proposed), indent=2)
        except (backtest.BacktestError, runtime_policy.InvalidPolicy) as exc:
            context["backtest_error"] = str(exc)
        request._authguard_policy_initial = {  # type: ignore[attr-defined]
            name: form.cleaned_data.get(name) for name in self.add_fields
        }
        request.method = "GET"  # render the form again, filled in, without saving
        return super().add_view(request, form_url, context)
