"""The dashboard's aggregates and the JSDA 2025 compliance report: a handful of grouped queries each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.choices import Action
from authguard.console.reports.base import DateRange, _iso
from authguard.models import (
    CampaignFlag,
    Feedback,
    HeldOrder,
    LoginEvent,
    Outcome,
    PasskeyDevice,
    RecoveryCodeDevice,
)
from authguard.risk.event_categories import (
    CATEGORIES,
    SERIES,
    SERIES_CODES,
    categorize,
    category_q,
    codes_where,
)

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
    """Everything the security dashboard shows for one :class:`DateRange`.

    Every count comes from :func:`categorize`: ``by_action`` holds one row per day for each of
    :data:`SERIES`; ``totals`` the range's total of each series *and* of each category code;
    ``step_up_outcomes`` how the second-factor requests (password logins and re-scored sessions) ended.
    """

    range: DateRange
    days: tuple[date, ...]
    by_action: Mapping[str, tuple[int, ...]]
    totals: Mapping[str, int]
    score_bins: tuple[tuple[str, int], ...]
    top_reasons: tuple[tuple[str, int], ...]
    step_up_outcomes: Mapping[str, int]
    step_up_rate: float | None
    held_orders: Mapping[str, int]
    campaigns: tuple[Any, ...]
    networks: tuple[NetworkRow, ...]
    feedback: Mapping[str, int] = field(default_factory=dict)
    categories: Mapping[str, int] = field(default_factory=dict)

    @property
    def category_rows(self) -> list[tuple[str, str, int]]:
        """``(code, label, count)`` of every category with events, in the table's order."""
        return [
            (c.code, str(c.label), self.categories[c.code])
            for c in CATEGORIES.values()
            if self.categories.get(c.code)
        ]


def _events(span: DateRange) -> QuerySet[LoginEvent]:
    first, after = span.bounds()
    return LoginEvent.objects.filter(created_at__gte=first, created_at__lt=after)


def dashboard(span: DateRange, *, networks: int = 10, reasons: int = 10) -> Dashboard:
    """The dashboard's figures for ``span`` (about eight aggregate queries, whatever the volume)."""
    events = _events(span)
    days = tuple(span.days)
    index = {day: i for i, day in enumerate(days)}
    series: dict[str, list[int]] = {key: [0] * len(days) for key in SERIES}
    categories: Counter[str] = Counter()
    step_ups: Counter[str] = Counter()
    tz = timezone.get_current_timezone()
    per_day = (
        events.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "password_ok", "outcome", "action")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in per_day:
        category = CATEGORIES[categorize(row["password_ok"], row["outcome"], row["action"])]
        categories[category.code] += row["n"]
        if category.step_up:
            step_ups[category.step_up] += row["n"]
        if row["day"] in index:
            series[category.series][index[row["day"]]] += row["n"]
    totals = {key: sum(values) for key, values in series.items()}
    totals.update({code: categories.get(code, 0) for code in CATEGORIES})

    # Scores of the attempts scored on a verified first factor (password, passkey or session).
    verified = events.filter(category_q(codes_where(verified=True)))
    bins = [0] * 10
    for row in verified.annotate(bin=F("score") / 10).values("bin").annotate(n=Count("id")).order_by():
        bins[min(int(row["bin"]), 9)] += row["n"]
    score_bins = tuple((f"{10 * i}–{10 * i + 9 if i < 9 else 100}", n) for i, n in enumerate(bins))

    return Dashboard(
        range=span,
        days=days,
        by_action={key: tuple(values) for key, values in series.items()},
        totals=totals,
        score_bins=score_bins,
        top_reasons=top_reasons(verified.exclude(action=Action.ALLOW), limit=reasons),
        step_up_outcomes=dict(step_ups),
        step_up_rate=_rate(step_ups),
        held_orders=held_order_counts(span),
        campaigns=campaigns(span),
        networks=riskiest_networks(events, limit=networks),
        feedback=dict(events.exclude(feedback="").values_list("feedback").annotate(n=Count("id")).order_by()),
        categories=dict(categories),
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
    """How the second-factor requests among ``events`` ended (``step_up_passed``, ``step_up_failed``,
    ``step_up_pending``): password logins stepped up and re-scored sessions alike."""
    counts: Counter[str] = Counter()
    rows = (
        events.filter(category_q(c.code for c in CATEGORIES.values() if c.step_up))
        .values_list("password_ok", "outcome", "action")
        .annotate(n=Count("id"))
        .order_by()
    )
    for password_ok, outcome, action, n in rows:
        counts[CATEGORIES[categorize(password_ok, outcome, action)].step_up] += n
    return dict(counts)


def _rate(outcomes: Mapping[str, int]) -> float | None:
    """Passed step-ups of all second-factor requests (one never answered counts as not passed)."""
    total = sum(outcomes.values())
    return outcomes.get(Outcome.STEP_UP_PASSED, 0) / total if total else None


def riskiest_networks(events: QuerySet[LoginEvent], *, limit: int = 10) -> tuple[NetworkRow, ...]:
    """Networks (ASN) ranked by stepped-up or denied attempts, then by average score."""
    risky = category_q(SERIES_CODES["step_up"] + SERIES_CODES["deny"])
    rows = (
        events.values("asn", "as_org", "country")
        .annotate(
            logins=Count("id"),
            risky=Count("id", filter=risky),
            denied=Count("id", filter=category_q(SERIES_CODES["deny"])),
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
