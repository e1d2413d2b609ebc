"""The numbers behind the security console: dashboard, compliance report and incident report.

Every figure is computed by a handful of aggregate queries (``GROUP BY`` in the database), never by looping
in Python over the login table. The views in :mod:`authguard.admin` only parse parameters, call one
function here and render; the CSV exports write the same rows the pages show.

* :func:`dashboard` — logins over time by action, score distribution, top reasons, step-up success,
  held orders, campaigns and the riskiest networks of a date range.
* :func:`customers_without_passkeys` — the JSDA 2025 compliance report: active customers who have no
  passkey yet (what they use instead, so the firm can publish and follow its migration schedule).
* :func:`incident_timeline` — everything that happened to one account: logins (place, network, device,
  score, reasons), step-ups, factor changes, account locks, orders guarded, held, confirmed or cancelled,
  and notifications sent.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import (
    AccountLock,
    CampaignFlag,
    FactorRecord,
    Feedback,
    GuardedOrder,
    HeldOrder,
    KnownDevice,
    LoginEvent,
    Notification,
    Outcome,
    PasskeyDevice,
    RecoveryCodeDevice,
)
from .policy import Action

#: Longest date range the dashboard and the incident report accept, in days.
MAX_RANGE_DAYS = 400
#: Default range of the dashboard: the last 30 days.
DEFAULT_RANGE_DAYS = 30


class ReportError(ValueError):
    """A report was asked for with parameters it cannot use; the message says why (shown to the admin)."""


# -- date ranges ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """Whole days from ``start`` to ``end`` inclusive, in the site's time zone."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        """The aware ``[first instant, instant after the last day)`` of the range."""
        tz = timezone.get_current_timezone()
        first = datetime.combine(self.start, time.min, tzinfo=tz)
        after = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz)
        return first, after


def parse_range(params: Mapping[str, Any], *, today: date | None = None) -> DateRange:
    """A :class:`DateRange` from ``start``/``end`` (``YYYY-MM-DD``) GET parameters; default last 30 days.

    Raises :class:`ReportError` with a message for malformed, reversed or too long ranges.
    """
    today = today or timezone.localdate()
    start = _parse_day(params.get("start"), _("start"))
    end = _parse_day(params.get("end"), _("end"))
    end = end or today
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise ReportError(_("The start date must not be after the end date."))
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ReportError(_("Choose a range of at most %(days)d days.") % {"days": MAX_RANGE_DAYS})
    return DateRange(start, end)


def _parse_day(raw: Any, name: str) -> date | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) != 10:
        raise ReportError(_("The %(name)s date must look like 2026-12-01.") % {"name": name})
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ReportError(_("The %(name)s date must look like 2026-12-01.") % {"name": name}) from None


# -- dashboard -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkRow:
    """One network (ASN) of the riskiest-networks table."""

    asn: int | None
    as_org: str
    country: str
    logins: int
    risky: int
    denied: int
    fraud: int
    users: int
    avg_score: float


@dataclass(frozen=True)
class Dashboard:
    """Everything the security dashboard shows for one :class:`DateRange`."""

    range: DateRange
    days: tuple[date, ...]
    by_action: Mapping[str, tuple[int, ...]]  # allow/step_up/deny (right password) and "bad_password"
    totals: Mapping[str, int]
    score_bins: tuple[tuple[str, int], ...]
    top_reasons: tuple[tuple[str, int], ...]
    step_up_outcomes: Mapping[str, int]
    step_up_rate: float | None
    held_orders: Mapping[str, int]
    campaigns: tuple[Any, ...]
    networks: tuple[NetworkRow, ...]
    feedback: Mapping[str, int] = field(default_factory=dict)


def _events(span: DateRange) -> QuerySet[LoginEvent]:
    first, after = span.bounds()
    return LoginEvent.objects.filter(created_at__gte=first, created_at__lt=after)


def dashboard(span: DateRange, *, networks: int = 10, reasons: int = 10) -> Dashboard:
    """The dashboard's figures for ``span`` (about eight aggregate queries, whatever the volume)."""
    events = _events(span)
    days = tuple(span.days)
    index = {day: i for i, day in enumerate(days)}
    series: dict[str, list[int]] = {key: [0] * len(days) for key in [*Action.values, "bad_password"]}
    tz = timezone.get_current_timezone()
    per_day = (
        events.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "action", "password_ok")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in per_day:
        key = row["action"] if row["password_ok"] else "bad_password"
        if row["day"] in index and key in series:
            series[key][index[row["day"]]] += row["n"]
    totals = {key: sum(values) for key, values in series.items()}

    bins = [0] * 10
    for row in (
        events.filter(password_ok=True)
        .annotate(bin=F("score") / 10)
        .values("bin")
        .annotate(n=Count("id"))
        .order_by()
    ):
        bins[min(int(row["bin"]), 9)] += row["n"]
    score_bins = tuple((f"{10 * i}–{10 * i + 9 if i < 9 else 100}", n) for i, n in enumerate(bins))

    return Dashboard(
        range=span,
        days=days,
        by_action={key: tuple(values) for key, values in series.items()},
        totals=totals,
        score_bins=score_bins,
        top_reasons=top_reasons(events.filter(password_ok=True).exclude(action=Action.ALLOW), limit=reasons),
        step_up_outcomes=(outcomes := step_up_outcomes(events)),
        step_up_rate=_rate(outcomes),
        held_orders=held_order_counts(span),
        campaigns=campaigns(span),
        networks=riskiest_networks(events, limit=networks),
        feedback=dict(events.exclude(feedback="").values_list("feedback").annotate(n=Count("id")).order_by()),
    )


def top_reasons(events: QuerySet[LoginEvent], *, limit: int = 10) -> tuple[tuple[str, int], ...]:
    """The commonest reason codes of ``events``, by number of events.

    One query groups the events by their (short) list of codes; the lists, not the rows, are then split.
    """
    counts: Counter[str] = Counter()
    for reasons, n in events.values_list("reasons").annotate(n=Count("id")).order_by():
        for code in set(reasons or []):
            counts[code] += n
    return tuple(counts.most_common(limit))


def step_up_outcomes(events: QuerySet[LoginEvent]) -> dict[str, int]:
    """How the stepped-up logins ended: passed, failed, still pending, or refused."""
    rows = (
        events.filter(password_ok=True, action=Action.STEP_UP)
        .values_list("outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    return dict(rows)


def _rate(outcomes: Mapping[str, int]) -> float | None:
    total = sum(outcomes.values())
    return outcomes.get(Outcome.STEP_UP_PASSED, 0) / total if total else None


def riskiest_networks(events: QuerySet[LoginEvent], *, limit: int = 10) -> tuple[NetworkRow, ...]:
    """Networks (ASN) ranked by stepped-up or denied logins, then by average score."""
    risky = ~Q(action=Action.ALLOW)
    rows = (
        events.values("asn", "as_org", "country")
        .annotate(
            logins=Count("id"),
            risky=Count("id", filter=risky),
            denied=Count("id", filter=Q(action=Action.DENY)),
            fraud=Count("id", filter=Q(feedback=Feedback.FRAUD)),
            users=Count("user", distinct=True),
            avg_score=Avg("score"),
        )
        .filter(risky__gt=0)
        .order_by("-fraud", "-risky", "-avg_score", "asn")[:limit]
    )
    return tuple(
        NetworkRow(
            asn=row["asn"],
            as_org=row["as_org"] or "",
            country=row["country"] or "",
            logins=row["logins"],
            risky=row["risky"],
            denied=row["denied"],
            fraud=row["fraud"],
            users=row["users"],
            avg_score=round(float(row["avg_score"] or 0), 1),
        )
        for row in rows
    )


def held_order_counts(span: DateRange) -> dict[str, int]:
    """Held orders created in ``span``, by status."""
    first, after = span.bounds()
    rows = (
        HeldOrder.objects.filter(created_at__gte=first, created_at__lt=after)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return dict(rows)


def campaigns(span: DateRange, *, limit: int = 20) -> tuple[CampaignFlag, ...]:
    """Campaign flags raised in ``span``, and any still active, newest first."""
    first, after = span.bounds()
    flags = CampaignFlag.objects.filter(Q(flagged_at__gte=first, flagged_at__lt=after) | Q(active=True))
    return tuple(flags.order_by("-flagged_at")[:limit])


# -- compliance (JSDA 2025 preset) -----------------------------------------------------------------------


def customers(user_model: Any = None) -> QuerySet[Any]:
    """The customers a compliance report covers: active users who are not staff."""
    user_model = user_model or get_user_model()
    return user_model._default_manager.filter(is_active=True, is_staff=False, is_superuser=False)


def customers_without_passkeys() -> QuerySet[Any]:
    """Active customers with no confirmed passkey, annotated with what they have instead.

    Annotations: ``has_totp`` (a confirmed TOTP device), ``has_recovery_codes``.
    """
    # SECURITY: only confirmed passkeys count; an enrollment started and abandoned is not a factor.
    return (
        customers()
        .exclude(Exists(PasskeyDevice.objects.filter(user=OuterRef("pk"), confirmed=True)))
        .annotate(
            has_totp=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
            has_recovery_codes=Exists(RecoveryCodeDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
        )
        .order_by(get_user_model().USERNAME_FIELD)
    )


def compliance_rows(queryset: Iterable[Any]) -> Iterator[list[str]]:
    """The CSV/table rows of the compliance report (header first)."""
    yield [
        _("username"),
        _("email"),
        _("joined"),
        _("last login"),
        _("factors instead of a passkey"),
    ]
    for user in queryset:
        yield [
            user.get_username(),
            user.email,
            _iso(user.date_joined),
            _iso(user.last_login),
            ", ".join(
                name
                for name, has in (
                    (_("authenticator app (TOTP)"), user.has_totp),
                    (_("recovery codes"), user.has_recovery_codes),
                )
                if has
            )
            or _("none"),
        ]


# -- incident report -----------------------------------------------------------------------------------


#: How each kind of timeline entry is named on the page (the CSV keeps the codes).
KIND_LABELS: dict[str, Any] = {
    "login": gettext_lazy("login"),
    "step_up": gettext_lazy("step-up"),
    "factor": gettext_lazy("sign-in method"),
    "lock": gettext_lazy("account lock"),
    "order": gettext_lazy("order"),
    "notification": gettext_lazy("notification"),
    "staff": gettext_lazy("staff action"),
}


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to an account, at one moment."""

    at: datetime
    kind: str  # login | step_up | factor | lock | order | notification | staff
    summary: str
    place: str = ""
    network: str = ""
    ip: str = ""
    device: str = ""
    score: int | None = None
    reasons: tuple[str, ...] = ()
    detail: str = ""
    reference: str = ""

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))


INCIDENT_COLUMNS = (
    "time",
    "kind",
    "summary",
    "place",
    "network",
    "ip",
    "device",
    "score",
    "reasons",
    "detail",
    "reference",
)


@dataclass(frozen=True)
class _Window:
    """The time window of an incident report (``None`` bounds: everything recorded)."""

    first: datetime | None
    after: datetime | None

    def filter(self, queryset: QuerySet[Any], field_name: str = "created_at") -> QuerySet[Any]:
        if self.first is None:
            return queryset
        return queryset.filter(**{f"{field_name}__gte": self.first, f"{field_name}__lt": self.after})

    def contains(self, at: datetime | None) -> bool:
        if at is None:
            return False
        return self.first is None or self.first <= at < self.after  # type: ignore[operator]


def incident_timeline(user: Any, span: DateRange | None = None) -> list[TimelineEntry]:
    """Everything recorded about ``user`` in ``span`` (default: all of it), oldest first.

    Logins include failed attempts typed with the account's name. About ten queries in all.
    """
    within = _Window(*span.bounds()) if span else _Window(None, None)
    events = within.filter(
        LoginEvent.objects.filter(Q(user=user) | Q(user__isnull=True, username=user.get_username()))
    )
    entries: list[TimelineEntry] = [_login_entry(event) for event in events.order_by("created_at", "pk")]
    entries += _factor_entries(user, within)
    entries += _lock_entries(user, within)
    entries += _order_entries(user, within)
    entries += _notification_entries(user, within)
    entries += _staff_entries(user, within)
    entries.sort(key=lambda e: e.at)
    return entries


# Keyed by LoginEvent.outcome, a plain string equal to the members.
_OUTCOME_KIND: dict[str, str] = {
    Outcome.STEP_UP_PASSED: "step_up",
    Outcome.STEP_UP_FAILED: "step_up",
    Outcome.STEP_UP_PENDING: "step_up",
}


def _login_entry(event: LoginEvent) -> TimelineEntry:
    verdict = f" [{event.get_feedback_display()}]" if event.feedback else ""
    if event.password_ok:
        summary = _("login %(action)s, %(outcome)s") % {
            "action": event.get_action_display(),
            "outcome": event.get_outcome_display(),
        }
    else:
        summary = _("failed login: %(outcome)s") % {"outcome": event.get_outcome_display()}
    network = " ".join(part for part in (f"AS{event.asn}" if event.asn else "", event.as_org) if part)
    return TimelineEntry(
        at=event.created_at,
        kind=_OUTCOME_KIND.get(event.outcome, "login"),
        summary=summary + verdict,
        place=", ".join(p for p in (event.city, event.country) if p),
        network=network,
        ip=event.ip or "",
        device=event.device_summary,
        score=event.score,
        reasons=tuple(event.reasons or ()),
        reference=f"login event {event.pk}",
    )


def _factor_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    """Factors enrolled (with how and from what session), disabled after failures; removals are in the
    notifications (``factor_removed``), since a removed device leaves no row behind."""
    entries: list[TimelineEntry] = []
    recorded: set[str] = set()
    for record in FactorRecord.objects.filter(user=user).order_by("enrolled_at"):
        recorded.add(record.device_id)
        detail = "; ".join(
            part
            for part in (
                record.enrolled_via and _("authorised by %(how)s") % {"how": record.enrolled_via},
                _("from a low-risk session")
                if record.enrolled_low_risk
                else _("from a session that was not low-risk"),
                record.cooling_off_until
                and _("cooling off until %(time)s") % {"time": _iso(record.cooling_off_until)},
            )
            if part
        )
        for at, summary in (
            (record.enrolled_at, _("%(kind)s added") % {"kind": record.get_kind_display()}),
            (record.disabled_at, _("%(kind)s disabled after failures") % {"kind": record.get_kind_display()}),
        ):
            if at is not None and within.contains(at):
                entries.append(
                    TimelineEntry(
                        at=at, kind="factor", summary=summary, detail=detail, reference=record.device_id
                    )
                )
    # Devices without a record (created outside authguard's flows, e.g. by an import) still show.
    for model, label in (
        (TOTPDevice, "TOTP"),
        (PasskeyDevice, "passkey"),
        (RecoveryCodeDevice, "recovery codes"),
    ):
        for device in model.objects.filter(user=user).order_by("created_at"):
            if device.persistent_id in recorded or not within.contains(device.created_at):
                continue
            entries.append(
                TimelineEntry(
                    at=device.created_at,
                    kind="factor",
                    summary=_("%(type)s added: %(name)s") % {"type": label, "name": device.name},
                    reference=device.persistent_id,
                )
            )
    return entries


def _lock_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    lock = AccountLock.objects.filter(user=user).first()
    if lock is None:
        return []
    entries = []
    for at, summary, detail in (
        (lock.locked_at, _("account locked"), lock.locked_reason),
        (lock.unlocked_at, _("account unlocked"), lock.unlock_reason),
    ):
        if at is not None and within.contains(at):
            entries.append(TimelineEntry(at=at, kind="lock", summary=summary, detail=detail))
    return entries


#: An order's side as people read it (stored as the code "buy" or "sell").
ORDER_SIDES = {"buy": pgettext_lazy("order side", "buy"), "sell": pgettext_lazy("order side", "sell")}


def _order_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    """The order guard's ledger (every order placed or held) and each held order's confirmation or close."""
    entries: list[TimelineEntry] = []
    ledger = (
        within.filter(GuardedOrder.objects.filter(user=user)).select_related("held").order_by("created_at")
    )
    for order in ledger:
        held = getattr(order, "held", None)
        entries.append(
            TimelineEntry(
                at=order.created_at,
                kind="order",
                summary=_("order %(side)s %(quantity)s %(symbol)s: %(status)s")
                % {
                    "side": ORDER_SIDES.get(order.side, order.side),
                    "quantity": order.quantity,
                    "symbol": order.symbol,
                    "status": order.get_status_display(),
                },
                reasons=tuple(order.reasons or ()),
                detail="; ".join(
                    part
                    for part in (
                        f"{order.amount} {order.currency}",
                        _("from a risky session") if order.risky_session else "",
                        _("illiquid instrument") if order.illiquid else "",
                        held.summary if held is not None else "",
                    )
                    if part
                ),
                reference=f"ledger {order.pk}" + (f", held order {held.pk}" if held is not None else ""),
            )
        )
        if held is not None:
            entries += _held_entries(held, within)
    return entries


def _held_entries(held: HeldOrder, within: _Window) -> list[TimelineEntry]:
    ref = f"held order {held.pk}" + (f", portal order {held.portal_ref}" if held.portal_ref else "")
    if held.result_ref:
        ref += f", execution {held.result_ref}"
    out = []
    if held.confirmed_at and held.status == HeldOrder.Status.CONFIRMED and within.contains(held.confirmed_at):
        out.append(
            TimelineEntry(
                at=held.confirmed_at,
                kind="order",
                summary=_("held order confirmed with %(method)s and executed")
                % {"method": held.confirmed_method},
                detail=held.confirmed_device,
                reference=ref,
            )
        )
    elif held.closed_at and held.status != HeldOrder.Status.CONFIRMED and within.contains(held.closed_at):
        out.append(
            TimelineEntry(
                at=held.closed_at,
                kind="order",
                summary=_("held order %(status)s") % {"status": held.get_status_display()},
                detail=held.failure,
                reference=ref,
            )
        )
    return out


def _notification_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=row.created_at,
            kind="notification",
            summary=_("notification %(kind)s: %(status)s")
            % {"kind": row.kind, "status": row.get_status_display()},
            detail=row.to_email,
            reference=f"notification {row.pk}",
        )
        for row in within.filter(Notification.objects.filter(user=user, staff=False)).order_by("created_at")
    ]


def _staff_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    """What staff did about this account in the console (admin log): orders released or cancelled,
    devices revoked, the account unlocked, and every four-eyes request, approval, rejection and execution
    (:class:`~authguard.models.StaffApproval`), with their reasons."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from .models import StaffApproval

    targets = Q()
    for model, ids in (
        (HeldOrder, HeldOrder.objects.filter(user=user).values_list("pk", flat=True)),
        (KnownDevice, KnownDevice.objects.filter(user=user).values_list("pk", flat=True)),
        (AccountLock, [user.pk]),
        (StaffApproval, StaffApproval.objects.filter(customer=user).values_list("pk", flat=True)),
    ):
        targets |= Q(
            content_type=ContentType.objects.get_for_model(model), object_id__in=[str(pk) for pk in ids]
        )
    rows = within.filter(LogEntry.objects.filter(targets).select_related("user"), "action_time")
    return [
        TimelineEntry(
            at=row.action_time,
            kind="staff",
            summary=_("staff %(who)s: %(what)s")
            % {"who": row.user.get_username(), "what": row.get_change_message()},
            reference=f"{row.content_type.model} {row.object_id}",
        )
        for row in rows.order_by("action_time")
    ]


def timeline_rows(entries: Sequence[TimelineEntry]) -> Iterator[list[str]]:
    """CSV rows of an incident timeline (header first), times in ISO 8601 with their offset."""
    yield list(INCIDENT_COLUMNS)
    for e in entries:
        yield [
            _iso(e.at),
            e.kind,
            e.summary,
            e.place,
            e.network,
            e.ip,
            e.device,
            "" if e.score is None else str(e.score),
            " ".join(e.reasons),
            e.detail,
            e.reference,
        ]


# -- CSV -------------------------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """Rows as CSV text lines, with spreadsheet formula injection neutralised."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([_safe_cell(cell) for cell in row])


def _safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # SECURITY: user-controlled text (usernames, user agents) must not run as a formula in a spreadsheet.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _iso(value: datetime | None) -> str:
    return timezone.localtime(value).isoformat() if value else ""


__all__ = [
    "Dashboard",
    "DateRange",
    "NetworkRow",
    "ReportError",
    "TimelineEntry",
    "campaigns",
    "compliance_rows",
    "csv_lines",
    "customers_without_passkeys",
    "dashboard",
    "held_order_counts",
    "incident_timeline",
    "parse_range",
    "riskiest_networks",
    "step_up_outcomes",
    "timeline_rows",
    "top_reasons",
]
