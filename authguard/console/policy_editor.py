"""The policy editor: run-time policy versions in the security console.

A new policy is a new :class:`~authguard.models.PolicyVersion` (never an edit in place), asked for through
:func:`authguard.console.approvals.request_action` so that the four-eyes rule applies.

The add page has one fieldset per configured risk signal (its name and a sentence in words, each option a
typed field with its default, and a *as a shadow* box), the two thresholds and the comment. Before anything
is asked for, the analyst sees the changes against the policy in force (only the values that change, old →
new) and may backtest them (:func:`authguard.risk.backtest.run_backtest`) beside that list; the confirmation
carries a digest of the reviewed values, so what is asked for is what was reviewed. The raw JSON of the
model (``signal_options``, ``shadow_signals``) stays available in a collapsed *advanced* section.

*Shadow trial* on a configured signal means: the values on its form run as a shadow signal (recorded on
each login's findings, never deciding) while the signal keeps deciding with the values in force. The
payload keeps the shape :func:`authguard.console.approvals._change_policy` reads: ``thresholds``,
``signal_options`` (only the options that differ from the settings), ``shadow_signals`` and ``comment``.

Order-guard rules are not part of a policy version (``AUTHGUARD_ORDER_RULES`` is a setting), so they are
not on this page.

The forms are :mod:`authguard.console.policy_forms` (their public names stay importable from here).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.console import approvals, four_eyes
from authguard.console.mixins import UserSearchMixin, ValidSelectionMixin
from authguard.console.policy_forms import MARKER as MARKER
from authguard.console.policy_forms import REVIEWED as REVIEWED
from authguard.console.policy_forms import InForce as InForce
from authguard.console.policy_forms import PolicyVersionForm as PolicyVersionForm
from authguard.console.policy_forms import SignalState as SignalState
from authguard.console.policy_forms import option_field as option_field
from authguard.console.policy_forms import option_message as option_message
from authguard.console.policy_forms import policy_changes as policy_changes
from authguard.console.policy_forms import policy_in_force as policy_in_force
from authguard.console.policy_forms import proposal_digest as proposal_digest
from authguard.models import PolicyVersion, StaffAction, StaffApprovalStatus
from authguard.risk import backtest
from authguard.risk import policy as runtime_policy

# -- the admin -----------------------------------------------------------------------------------------------


@admin.register(PolicyVersion)
class PolicyVersionAdmin(UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """The run-time policy: each save is a new version (who, when, why); the newest is in force.

    The add page starts from the policy in force; **Review the changes** lists what would change and
    offers the confirmation, **Backtest these values** replays recorded logins through the proposal beside
    the policy in force. Nothing is saved by either; the confirmation asks for the version through the
    four-eyes flow (:mod:`authguard.console.approvals`).
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
    add_fields = ("comment", "step_up", "deny", "signal_options", "shadow_signals", "backtest_days", MARKER)

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
            return dict(stashed)
        current = policy_in_force()
        return {
            "step_up": current.step_up,
            "deny": current.deny,
            "signal_options": {},
            "shadow_signals": current.extra_shadow,
            "backtest_days": 30,
            MARKER: "1",
        }

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: Any, change: bool) -> None:
        # Never reached for a new version (add_view sends it through the four-eyes flow); kept so that
        # nothing else in the admin can save one without it.
        raise PermissionDenied

    @staticmethod
    def four_eyes() -> bool:
        """Whether a policy change waits for a second staff member (``AUTHGUARD_FOUR_EYES``)."""
        return four_eyes.needs_second_approval(action=StaffAction.CHANGE_POLICY, severity=four_eyes.CRITICAL)

    def _page_context(self, extra_context: dict[str, Any] | None) -> dict[str, Any]:
        four_eyes = self.four_eyes()
        return {
            **(extra_context or {}),
            "title": gettext("Change the sign-in risk policy"),
            "four_eyes": four_eyes,
            "confirm_label": gettext("Ask for this policy") if four_eyes else gettext("Put in force"),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }

    def _request_version(
        self, request: HttpRequest, form: PolicyVersionForm, form_url: str, extra_context: dict[str, Any]
    ) -> HttpResponse:
        """Ask through the four-eyes flow: in force now, or waiting for a second staff member's approval."""

        payload = form.payload()
        try:
            approval = approvals.request_action(
                request, action=StaffAction.CHANGE_POLICY, reason=payload["comment"], payload=payload
            )
        except four_eyes.ApprovalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return self._again(request, form, form_url, extra_context)
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

    def _again(
        self, request: HttpRequest, form: PolicyVersionForm, form_url: str, context: dict[str, Any]
    ) -> HttpResponse:
        """The same page, filled in with the form's values, without saving anything."""
        request._authguard_policy_initial = {**form.stash(), MARKER: "1"}  # type: ignore[attr-defined]
        request.method = "GET"
        return super().add_view(request, form_url, context)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        """The add page. *Review* and *Backtest* show the changes (and the backtest) and save nothing; the
        confirmation, or a plain POST without the editor's forms, asks for the new version through
        :func:`authguard.console.approvals.request_action`."""
        context = self._page_context(extra_context)
        if request.method != "POST":
            return super().add_view(request, form_url, context)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PolicyVersionForm(request.POST)
        if not form.is_valid():
            # Re-rendered by the admin with the errors; an invalid form never saves.
            return super().add_view(request, form_url, context)
        payload = form.payload()
        digest = proposal_digest(payload)
        if form.plain_post and "_backtest" not in request.POST:
            return self._request_version(request, form, form_url, context)
        if "_confirm" in request.POST and "_backtest" not in request.POST:
            if request.POST.get(REVIEWED) == digest:
                return self._request_version(request, form, form_url, context)
            self.message_user(
                request,
                gettext(
                    "The values changed since you reviewed them: check the changes below and confirm again."
                ),
                messages.WARNING,
            )
        context["changes"] = form.changes()
        context["reviewed"] = digest
        context["preview"] = True
        if "_backtest" in request.POST and not request.user.has_perm("authguard.view_loginevent"):
            # SECURITY: the backtest lists recorded sign-ins (who, when); it needs the right to see them.
            context["backtest_error"] = gettext("Backtesting needs the permission to view login events.")
        elif "_backtest" in request.POST:
            try:
                proposed = form.proposed()
                context["backtest"] = backtest.run_backtest(
                    proposed, days=form.cleaned_data.get("backtest_days") or 30
                )
                context["backtest_policy_json"] = json.dumps(backtest.policy_json(proposed), indent=2)
            except (backtest.BacktestError, runtime_policy.InvalidPolicy) as exc:
                context["backtest_error"] = str(exc)
        return self._again(request, form, form_url, context)
