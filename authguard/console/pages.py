"""The security console's own pages: dashboard, backtest, compliance and incident reports, network lists.

They are mounted under the login events' admin (``/admin/authguard/loginevent/<page>/``) by
:meth:`authguard.console.admin.LoginEventAdmin.get_urls`, so they share its admin site, its staff check and
its
permissions, and each checks the model permissions it needs itself. The views are thin: they parse and
validate the query (a bad date or user gets a message, never an error page), call one function of
:mod:`authguard.console.reports` or :mod:`authguard.risk.backtest`, and render a template of
``authguard/templates/admin/authguard/``.

Two pages also act (issue 16), each through :mod:`authguard.console.containment` and so through the one
four-eyes flow: the incident report locks the account shown, ends its sessions or forces a password reset,
and the network lists page blocks a network for some hours or ends a block. They answer a refused or
malformed request with a 4xx and the page with the reason, and a done one with a redirect and its result.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.conf import app_settings
from authguard.console import charts, containment, four_eyes, reports, staff_actions
from authguard.factors.inventory import previous_addresses
from authguard.login import lockout
from authguard.login.attempt import readable
from authguard.models import LoginEvent, Outcome, PreviousEmail, SessionRecord
from authguard.risk import backtest
from authguard.risk import policy as runtime_policy

logger = logging.getLogger(__name__)


def _csv_response(rows: Any, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(reports.csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ConsolePages:
    """The console pages of one :class:`~django.contrib.admin.ModelAdmin` (the login events')."""

    def __init__(self, model_admin: admin.ModelAdmin) -> None:
        self.model_admin = model_admin
        self.admin_site = model_admin.admin_site

    def urls(self) -> list[URLPattern]:
        """The pages' URL patterns, each behind the admin site's staff check (and its own permissions)."""
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="authguard_dashboard"),
            path("compliance/", view(self.compliance_view), name="authguard_compliance"),
            path("incident/", view(self.incident_view), name="authguard_incident"),
            path("backtest/", view(self.backtest_view), name="authguard_backtest"),
            path("export/", view(self.export_view), name="authguard_export"),
            path("network-lists/", view(self.network_lists_view), name="authguard_network_lists"),
        ]

    def _page(self, request: HttpRequest, template: str, title: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/authguard/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.model_admin.model._meta,
                "title": title,
                "console_links": console_links(request),
                **context,
            },
        )

    def _require(self, request: HttpRequest, *perms: str) -> None:
        # SECURITY: every console page checks model permissions itself; admin_view only checks is_staff.
        if not self.model_admin.has_view_permission(request) or not request.user.has_perms(perms):
            raise PermissionDenied

    def _range(self, request: HttpRequest) -> tuple[reports.DateRange, str | None]:
        try:
            return reports.parse_range(request.GET), None
        except reports.ReportError as exc:
            messages.error(request, str(exc))
            return reports.parse_range({}), str(exc)

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        """The security dashboard for a date range (``?start=YYYY-MM-DD&end=YYYY-MM-DD``)."""
        self._require(request)
        span, error = self._range(request)
        data = reports.dashboard(span)
        return self._page(
            request,
            "dashboard.html",
            gettext("Security dashboard"),
            data=data,
            error=error,
            charts=dashboard_charts(data),
            held_total=sum(data.held_orders.values()),
            step_up_rows=[
                (_outcome_label(k), data.step_up_outcomes.get(k, 0))
                for k in (Outcome.STEP_UP_PASSED, Outcome.STEP_UP_FAILED, Outcome.STEP_UP_PENDING)
            ],
            series_figures=[(key, name, data.totals[key]) for key, name in series_names().items()],
        )

    def compliance_view(self, request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        """Customers without a passkey (JSDA 2025); ``?format=csv`` downloads it."""
        self._require(request, f"{get_user_model()._meta.app_label}.view_user")
        queryset = reports.customers_without_passkeys()
        if request.GET.get("format") == "csv":
            logger.info("authguard console: %s exported the compliance report", request.user.pk)
            stamp = timezone.localdate().isoformat()
            return _csv_response(reports.compliance_rows(queryset), f"customers-without-passkeys-{stamp}.csv")
        rows = list(reports.compliance_rows(queryset[:1000]))
        return self._page(
            request,
            "compliance.html",
            gettext("Customers without a passkey"),
            header=rows[0],
            rows=rows[1:],
            total=queryset.count(),
            customers=reports.customers().count(),
            preset=app_settings.PRESET,
        )

    def incident_view(self, request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        """One account's timeline (``?user=<username or id>[&start&end][&format=csv]``), printable.

        A POST (``containment``: ``lock_account``, ``end_sessions`` or ``force_password_reset``; ``user``:
        the account's id; ``reason``) contains the account shown, through the four-eyes flow.
        """
        self._require(request, f"{get_user_model()._meta.app_label}.view_user")
        if request.method == "POST":
            return self._contain(request)
        account, error = _find_user(request.GET.get("user", ""))
        span: reports.DateRange | None = None
        if request.GET.get("start") or request.GET.get("end"):
            try:
                span = reports.parse_range(request.GET)
            except reports.ReportError as exc:
                error = str(exc)
        if error:
            messages.error(request, error)
        entries = reports.incident_timeline(account, span) if account is not None and not error else []
        if account is not None and not error:
            # Who looked at which customer's timeline: the report holds personal data.
            logger.info(
                "authguard console: %s read the incident report of user %s (%s)",
                request.user.pk,
                account.pk,
                request.GET.get("format") or "page",
            )
        if account is not None and not error and request.GET.get("format") == "csv":
            return _csv_response(reports.timeline_rows(entries), f"incident-{account.pk}.csv")
        return self._incident_page(
            request, account, span=span, entries=entries, query=request.GET.get("user", ""), error=error
        )

    def _incident_page(
        self,
        request: HttpRequest,
        account: Any,
        *,
        span: reports.DateRange | None = None,
        entries: Any = (),
        query: str = "",
        error: str | None = None,
        reason: str = "",
        status: int = 200,
    ) -> TemplateResponse:

        response = self._page(
            request,
            "incident.html",
            gettext("Incident report"),
            account=account,
            span=span,
            entries=entries,
            query=query,
            error=error,
            generated_at=timezone.now(),
            site_tz=reports.site_timezone(),
            may_contain=request.user.has_perm("authguard.contain_account"),
            lock=lockout.lock_state(account) if account is not None else None,
            open_sessions=(
                SessionRecord.objects.filter(user_id=account.pk).count() if account is not None else 0
            ),
            reason=reason,
        )
        response.status_code = status
        return response

    def _contain(self, request: HttpRequest) -> HttpResponse:
        """The incident page's containment buttons: lock, end sessions, force a password reset."""

        raw_user = request.POST.get("user", "")
        account = None
        if raw_user.isascii() and raw_user.isdigit() and len(raw_user) < 19:
            account = get_user_model()._default_manager.filter(pk=int(raw_user)).first()
        reason = str(request.POST.get("reason", ""))[:600]
        if account is None:
            messages.error(request, gettext("Choose an account."))
            return self._incident_page(request, None, status=400)
        query = str(account.pk)
        try:
            outcome = containment.contain_account(
                request, action=request.POST.get("containment", ""), user=account, reason=reason
            )
        except four_eyes.ApprovalError as exc:
            messages.error(request, str(exc.message))
            status = 403 if exc.code in ("permission", "staff_passkey_required") else 400
            if exc.code in ("already_pending", "closed"):
                status = 409
            return self._incident_page(request, account, query=query, reason=reason, status=status)
        level = messages.SUCCESS if outcome.done else messages.WARNING if outcome.waiting else messages.ERROR
        messages.add_message(request, level, outcome.message)
        return HttpResponseRedirect(reverse("admin:authguard_incident") + f"?user={account.pk}", status=303)

    def backtest_view(self, request: HttpRequest) -> TemplateResponse:
        """Replay the last N days through proposed thresholds and signals, beside the current policy."""
        self._require(request)
        form = BacktestForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = backtest.run_backtest(form.cleaned_data["policy"], days=form.cleaned_data["days"])
            except backtest.BacktestError as exc:
                form.add_error(None, str(exc))
        return self._page(request, "backtest.html", gettext("Backtest a policy"), form=form, result=result)

    def export_view(self, request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        """The replay lines of the last ``days`` days (``authguard replay`` input), as JSONL."""
        self._require(request)
        try:
            start, end = backtest.window(int(request.GET.get("days", "30")))
        except (ValueError, backtest.BacktestError) as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
        logger.info("authguard console: %s exported %s days of logins", request.user.pk, (end - start).days)
        response = StreamingHttpResponse(
            backtest.iter_export(start, end), content_type="application/x-ndjson"
        )
        response["Content-Disposition"] = f'attachment; filename="logins-{end:%Y%m%d}.jsonl"'
        return response

    def network_lists_view(self, request: HttpRequest) -> HttpResponse:
        """The allow and deny lists in force (from the settings), and the security desk's network blocks.

        A POST blocks a network (``op=block``, ``network``, ``hours``, ``reason``) or ends a block early
        (``op=end``, ``block``, ``reason``), through the four-eyes flow.
        """
        self._require(request)
        if request.method == "POST":
            return self._block(request)
        return self._network_lists_page(request)

    def _network_lists_page(
        self, request: HttpRequest, *, values: dict[str, str] | None = None, status: int = 200
    ) -> TemplateResponse:

        span = reports.parse_range({})
        events = LoginEvent.objects.filter(created_at__gte=span.bounds()[0])
        response = self._page(
            request,
            "network_lists.html",
            gettext("Allow and deny lists"),
            allowlist=app_settings.NETWORK_ALLOWLIST,
            denylist=app_settings.NETWORK_DENYLIST,
            denied_recently=events.filter(reasons__icontains=json.dumps("denylisted_network")).count(),
            allowed_recently=events.filter(findings__icontains=json.dumps("allowlisted_network")).count(),
            span=span,
            blocks=containment.active_blocks_for_console(),
            may_block=request.user.has_perm("authguard.add_networkblock"),
            max_hours=staff_actions.max_block_hours(),
            values=values or {"hours": "24"},
        )
        response.status_code = status
        return response

    def _block(self, request: HttpRequest) -> HttpResponse:

        op = request.POST.get("op", "")
        values = {
            key: str(request.POST.get(key, ""))[:600] for key in ("network", "hours", "reason", "block")
        }
        try:
            if op == "block":
                outcome = containment.request_block(
                    request, network=values["network"], hours=values["hours"], reason=values["reason"]
                )
            elif op == "end":
                outcome = containment.request_end_block(
                    request, block_id=values["block"], reason=values["reason"]
                )
            else:
                raise four_eyes.ApprovalError(gettext("Unknown staff action."), code="invalid")
        except four_eyes.ApprovalError as exc:
            messages.error(request, str(exc.message))
            status = 403 if exc.code in ("permission", "staff_passkey_required") else 400
            if exc.code in ("already_pending", "closed"):
                status = 409
            if exc.code == "not_found":
                status = 404
            return self._network_lists_page(request, values=values if op == "block" else None, status=status)
        level = messages.SUCCESS if outcome.done else messages.WARNING if outcome.waiting else messages.ERROR
        messages.add_message(request, level, outcome.message)
        return HttpResponseRedirect(reverse("admin:authguard_network_lists"), status=303)


def console_links(request: HttpRequest) -> list[tuple[str, str]]:
    """The console pages this staff member may open (shown on the app index and each page)."""
    if not request.user.has_perm("authguard.view_loginevent"):
        return []
    links = [
        (gettext("Security dashboard"), reverse("admin:authguard_dashboard")),
        (gettext("Backtest a policy"), reverse("admin:authguard_backtest")),
        (gettext("Allow and deny lists"), reverse("admin:authguard_network_lists")),
    ]
    if request.user.has_perm(f"{get_user_model()._meta.app_label}.view_user"):
        links += [
            (gettext("Customers without a passkey"), reverse("admin:authguard_compliance")),
            (gettext("Incident report"), reverse("admin:authguard_incident")),
        ]
    return links


def _outcome_label(code: str) -> str:
    return str(dict(Outcome.choices).get(code, code))


def _find_user(raw: str) -> tuple[Any, str | None]:
    raw = raw.strip()
    if not raw:
        return None, None
    if not readable(raw):
        # NUL reached PostgreSQL's lookup (a 500, red team round thirty-nine): no account has such a name.
        shown = raw[:150].encode("ascii", "backslashreplace").decode("ascii")
        return None, gettext("No account %(name)r.") % {"name": shown}
    model = get_user_model()
    manager = model._default_manager
    # The login's own lookup (the portal's manager may match e-mail addresses case-insensitively).
    try:
        user = manager.get_by_natural_key(raw)
    except (model.DoesNotExist, model.MultipleObjectsReturned):
        user = None
    if user is None and raw.isascii() and raw.isdigit() and len(raw) < 19:
        user = manager.filter(pk=int(raw)).first()
    if user is None:
        had = _had_address(raw)
        if len(had) > 1:
            return None, gettext(
                "Several accounts had the address %(name)r during a cooling-off: search by account number."
            ) % {"name": raw[:254]}
        user = had[0] if had else None
    if user is None:
        return None, gettext("No account %(name)r.") % {"name": raw[:150]}
    return user, None


def _had_address(raw: str) -> list[Any]:
    """The accounts that had the address ``raw`` before an e-mail change in their running cooling-off.

    SECURITY: as the password reset finds them (:mod:`authguard.login.password_reset`): after a thief moved
    the login name to his mailbox, the customer calls the desk with her own address (red team 34a).
    """
    ids = PreviousEmail.objects.filter(email__iexact=raw).values_list("account_id", flat=True)[:10]
    accounts = get_user_model()._default_manager.filter(pk__in=list(ids)).order_by("pk")
    return [user for user in accounts if raw.lower() in (a.lower() for a in previous_addresses(user))]


#: Colours of the dashboard's stacks beyond the three decisions.
SERIES_COLOURS: dict[str, str] = {
    "passkey": "#1971c2",
    "locked": "#5f3dc4",
    "bad_password": "#868e96",
    "throttled": "#ced4da",
    "other": "#495057",
}


def series_names() -> dict[str, str]:
    """The dashboard's stacks (:data:`authguard.console.reports.SERIES`) as the legend and figures name
    them."""
    return {
        "allow": gettext("signed in with the password"),
        "passkey": gettext("signed in with a passkey"),
        "step_up": gettext("asked for a second factor"),
        "deny": gettext("denied"),
        "locked": gettext("refused: account locked"),
        "bad_password": gettext("wrong password"),
        "throttled": gettext("throttled"),
        "other": gettext("other"),
    }


def dashboard_charts(data: reports.Dashboard) -> dict[str, Any]:
    """The dashboard's SVG charts, drawn from its figures."""
    days = [day.strftime("%m-%d") for day in data.days]
    names = series_names()
    colours = {**charts.ACTION_COLOURS, **SERIES_COLOURS}
    # Every stack that has events is drawn (a stack of zeros would only crowd the legend).
    series = [
        charts.Series(names[key], tuple(data.by_action[key]), colours[key])
        for key in reports.SERIES
        if key in ("allow", "step_up", "deny") or any(data.by_action[key])
    ]
    no_data = gettext("No data in this range")
    return {
        "logins": charts.stacked_columns(
            gettext("Sign-in attempts per day by what happened"),
            days,
            series,
            chart_id="chart-logins",
            width=900,
            empty=no_data,
        ),
        "scores": charts.column_chart(
            gettext("Risk score distribution (password, passkey or session verified)"),
            list(data.score_bins),
            chart_id="chart-scores",
            x_title=gettext("risk score"),
            empty=no_data,
        ),
        "reasons": charts.bar_chart(
            gettext("Top reasons of stepped-up and denied attempts"),
            list(data.top_reasons),
            chart_id="chart-reasons",
            colour=charts.ACTION_COLOURS["step_up"],
            empty=no_data,
        ),
        "step_up": charts.rate_gauge(
            gettext("Step-up success rate"),
            data.step_up_rate,
            chart_id="chart-step-up",
            detail=gettext("%(n)d second-factor requests (sign-ins and re-checked sessions)")
            % {"n": sum(data.step_up_outcomes.values())},
        ),
        "networks": charts.bar_chart(
            gettext("Riskiest networks (stepped-up or denied attempts)"),
            [(f"AS{r.asn or '?'} {r.as_org}"[:40], r.risky) for r in data.networks],
            chart_id="chart-networks",
            colour=charts.ACTION_COLOURS["deny"],
            empty=no_data,
        ),
        "held": charts.bar_chart(
            gettext("Held orders by status"),
            sorted(data.held_orders.items()),
            chart_id="chart-held",
            empty=no_data,
        ),
    }


def _json_object(raw: str, what: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        error = gettext("nested too deeply") if isinstance(exc, RecursionError) else exc
        raise ValidationError(
            gettext("The %(what)s are not valid JSON: %(error)s") % {"what": what, "error": error}
        ) from None
    if not isinstance(value, dict):
        # A list, a string or a number answered 500 on the backtest page (red team, round thirty-three).
        raise ValidationError(gettext("The %(what)s must be a JSON object.") % {"what": what})
    return value


class BacktestForm(forms.Form):
    """A proposed policy (thresholds and signal options, as in the policy editor) and the days to replay."""

    days = forms.IntegerField(label=_("days to replay"), min_value=1, max_value=backtest.MAX_DAYS, initial=30)
    step_up = forms.IntegerField(label=_("step-up threshold"), min_value=0, max_value=100)
    deny = forms.IntegerField(label=_("deny threshold"), min_value=0, max_value=100)
    signal_options = forms.CharField(
        label=_("signal options (JSON, optional)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text=_('{"dotted.signal.Name": {"option": value}}; empty keeps the configured options.'),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = runtime_policy.current_policy().thresholds
        self.fields["step_up"].initial = current.step_up
        self.fields["deny"].initial = current.deny

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "step_up" not in data or "deny" not in data:
            return data
        options = _json_object(data.get("signal_options", ""), gettext("signal options"))
        try:
            data["policy"] = backtest.proposed_runtime_policy(
                thresholds={"step_up": data["step_up"], "deny": data["deny"]}, signal_options=options
            )
        except backtest.BacktestError as exc:
            raise ValidationError(str(exc)) from None
        return data
