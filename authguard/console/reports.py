"""The numbers behind the security console: dashboard, compliance report and incident report.

Every figure is computed by a handful of aggregate queries (``GROUP BY`` in the database), never by looping
in Python over the login table. The views in :mod:`authguard.console.admin` only parse parameters, call one
function here and render; the CSV exports write the same rows the pages show.

* :func:`categorize` / :data:`CATEGORIES` — the one event taxonomy: what a recorded login event was
  (a password or passkey sign-in, a step-up and how it ended, a re-checked session, a denial, a lock, a
  wrong password...). The dashboard, the incident timeline and :mod:`authguard.risk.backtest` all count by it;
  :func:`category_q` is the same table as a database filter.
* :func:`dashboard` — sign-in attempts over time by category, score distribution, top reasons, step-up
  success, held orders, campaigns and the riskiest networks of a date range.
* :func:`customers_without_passkeys` — the JSDA 2025 compliance report: active customers who have no
  passkey yet (what they use instead, so the firm can publish and follow its migration schedule).
* :func:`incident_timeline` — everything that happened to one account, as sentences, in the site's time
  zone: logins (place, network, device, score, reasons), step-ups, re-checked sessions, factor changes
  (factors removed or replaced since stay, marked so), account locks, orders guarded, held, confirmed or
  cancelled, and notifications sent.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import (
    AccountLock,
    CampaignFlag,
    FactorKind,
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
from authguard.risk.policy import Action

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


# -- the event taxonomy ----------------------------------------------------------------------------------
#
# One table says what a recorded LoginEvent *was*; the dashboard, the incident timeline and the backtest
# all read it, so they never tell three different stories. A LoginEvent's ``password_ok`` is false for
# passkey sign-ins and mid-session re-scores as well as for wrong passwords, so no figure may be drawn
# from ``password_ok`` alone: it is always read together with ``outcome`` (and ``action``), here.

SIGNED_IN = "signed_in"
PASSKEY_SIGN_IN = "passkey_sign_in"
STEPPED_UP = "stepped_up"
STEP_UP_FAILED = "step_up_failed"
STEP_UP_PENDING = "step_up_pending"
RESCORED_STEPPED_UP = "rescored_stepped_up"
RESCORED_STEP_UP_FAILED = "rescored_step_up_failed"
RESCORED_PENDING = "rescored_pending"
DENIED = "denied"
DENIED_WITHOUT_PASSWORD = "denied_without_password"
LOCKED = "locked"
WRONG_PASSWORD = "wrong_password"
THROTTLED = "throttled"
OTHER = "other"


@dataclass(frozen=True)
class Category:
    """What one kind of recorded event was, and where each report counts it.

    ``series``: the dashboard's stack (``allow`` password sign-ins let in, ``passkey``, ``step_up`` any
    second-factor request, ``deny``, ``locked``, ``bad_password``, ``throttled``, ``other``).
    ``step_up``: how a step-up ended (an :class:`~authguard.models.Outcome` code) for the step-up figures.
    ``verified``: a first factor (the password, a passkey, or a signed-in session) was verified and the
    attempt scored on it, so the backtest replays it as a sign-in (``password_ok`` true in the replay line).
    ``replayed``: the backtest replays it (wrong passwords too: they feed the velocity signals).
    ``got_in``: the attempt ended signed in (or with its session kept).
    """

    code: str
    label: Any
    series: str
    step_up: str = ""
    verified: bool = False
    replayed: bool = False
    got_in: bool = False


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category(
            SIGNED_IN,
            gettext_lazy("signed in with the password"),
            "allow",
            verified=True,
            replayed=True,
            got_in=True,
        ),
        Category(
            PASSKEY_SIGN_IN,
            gettext_lazy("signed in with a passkey"),
            "passkey",
            verified=True,
            replayed=True,
            got_in=True,
        ),
        Category(
            STEPPED_UP,
            gettext_lazy("password, then passed step-up"),
            "step_up",
            Outcome.STEP_UP_PASSED,
            verified=True,
            replayed=True,
            got_in=True,
        ),
        Category(
            STEP_UP_FAILED,
            gettext_lazy("password, then failed step-up"),
            "step_up",
            Outcome.STEP_UP_FAILED,
            verified=True,
            replayed=True,
        ),
        Category(
            STEP_UP_PENDING,
            gettext_lazy("password, step-up never completed"),
            "step_up",
            Outcome.STEP_UP_PENDING,
            verified=True,
            replayed=True,
        ),
        Category(
            RESCORED_STEPPED_UP,
            gettext_lazy("session re-checked, passed step-up"),
            "step_up",
            Outcome.STEP_UP_PASSED,
            verified=True,
            replayed=True,
            got_in=True,
        ),
        Category(
            RESCORED_STEP_UP_FAILED,
            gettext_lazy("session re-checked, failed step-up"),
            "step_up",
            Outcome.STEP_UP_FAILED,
            verified=True,
            replayed=True,
        ),
        Category(
            RESCORED_PENDING,
            gettext_lazy("session re-checked, step-up never completed"),
            "step_up",
            Outcome.STEP_UP_PENDING,
            verified=True,
            replayed=True,
        ),
        Category(DENIED, gettext_lazy("right password, refused"), "deny", verified=True, replayed=True),
        Category(
            DENIED_WITHOUT_PASSWORD,
            gettext_lazy("passkey sign-in or session refused"),
            "deny",
            verified=True,
            replayed=True,
        ),
        Category(LOCKED, gettext_lazy("refused: account locked"), "locked"),
        Category(WRONG_PASSWORD, gettext_lazy("wrong password"), "bad_password", replayed=True),
        Category(THROTTLED, gettext_lazy("throttled (not checked)"), "throttled"),
        Category(OTHER, gettext_lazy("other"), "other"),
    )
}

#: The dashboard's stacks, in drawing order.
SERIES = ("allow", "passkey", "step_up", "deny", "locked", "bad_password", "throttled", "other")

_PASSWORD_OUTCOMES = {
    Outcome.SIGNED_IN: SIGNED_IN,
    Outcome.STEP_UP_PASSED: STEPPED_UP,
    Outcome.STEP_UP_FAILED: STEP_UP_FAILED,
    Outcome.STEP_UP_PENDING: STEP_UP_PENDING,
}
# Without a password a step-up outcome can only be a re-scored session's: a passkey sign-in is verified
# by its passkey and never held at step-up (authguard.sessions.stepup).
_SESSION_OUTCOMES = {
    Outcome.STEP_UP_PASSED: RESCORED_STEPPED_UP,
    Outcome.STEP_UP_FAILED: RESCORED_STEP_UP_FAILED,
    Outcome.RESCORED: RESCORED_PENDING,
}


def categorize(password_ok: bool, outcome: str, action: str) -> str:
    """The :data:`CATEGORIES` code of an event with these ``LoginEvent`` fields.

    ``refused`` is split by what was verified: with the right password it is a risk refusal (``denied``)
    unless the score allowed it, which only a locked account refuses (``locked``); without one it is a
    passkey sign-in or a moved session the risk engine refused (``denied_without_password``), or, when
    the score allowed it, an attempt on a locked account whose password was never checked (``locked``).
    """
    if outcome == Outcome.BAD_PASSWORD:
        return WRONG_PASSWORD
    if outcome == Outcome.THROTTLED:
        return THROTTLED
    if outcome == Outcome.PASSKEY_LOGIN:
        return PASSKEY_SIGN_IN
    if outcome == Outcome.REFUSED:
        if action == Action.ALLOW:
            return LOCKED
        return DENIED if password_ok else DENIED_WITHOUT_PASSWORD
    table = _PASSWORD_OUTCOMES if password_ok else _SESSION_OUTCOMES
    return table.get(outcome, OTHER)  # type: ignore[call-overload]


def category_of(event: LoginEvent) -> Category:
    """The :class:`Category` of one recorded event."""
    return CATEGORIES[categorize(event.password_ok, event.outcome, event.action)]


def category_q(codes: Iterable[str]) -> Q:
    """A filter matching exactly the events of the categories ``codes`` (the same table, in SQL)."""
    wanted = set(codes)
    query = Q(pk__in=[])
    for password_ok in (True, False):
        for outcome in Outcome.values:
            actions = [a for a in Action.values if categorize(password_ok, outcome, a) in wanted]
            if len(actions) == len(Action.values):
                query |= Q(password_ok=password_ok, outcome=outcome)
            elif actions:
                query |= Q(password_ok=password_ok, outcome=outcome, action__in=actions)
    return query


def codes_where(**flags: Any) -> list[str]:
    """The category codes whose :class:`Category` attributes equal ``flags`` (``verified=True``...)."""
    return [c.code for c in CATEGORIES.values() if all(getattr(c, k) == v for k, v in flags.items())]


#: The category codes of each dashboard stack.
SERIES_CODES: dict[str, list[str]] = {key: codes_where(series=key) for key in SERIES}


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


# -- incident report -----------------------------------------------------------------------------------


#: How each kind of timeline entry is named on the page (the CSV keeps the codes).
KIND_LABELS: dict[str, Any] = {
    "login": gettext_lazy("sign-in"),
    "step_up": gettext_lazy("step-up"),
    "session": gettext_lazy("session re-check"),
    "factor": gettext_lazy("sign-in method"),
    "lock": gettext_lazy("account lock"),
    "order": gettext_lazy("order"),
    "notification": gettext_lazy("notification"),
    "staff": gettext_lazy("staff action"),
}

#: How a timeline entry's ``status`` is shown: a factor that is no longer on the account stays in the
#: report (evidence), marked so.
STATUS_LABELS: dict[str, Any] = {
    "removed": pgettext_lazy("factor status", "removed"),
    "replaced": pgettext_lazy("factor status", "replaced"),
    "disabled": pgettext_lazy("factor status", "disabled"),
}
_STATUS_SENTENCES: dict[str, Any] = {
    "removed": gettext_lazy("(Removed on %(time)s.)"),
    "replaced": gettext_lazy("(Replaced on %(time)s.)"),
    "disabled": gettext_lazy("(Disabled on %(time)s.)"),
}


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to an account, at one moment, told as a sentence (``summary``)."""

    at: datetime
    kind: str  # login | step_up | session | factor | lock | order | notification | staff
    summary: str
    place: str = ""
    network: str = ""
    ip: str = ""
    device: str = ""
    score: int | None = None
    reasons: tuple[str, ...] = ()
    detail: str = ""
    reference: str = ""
    category: str = ""  # a login event's CATEGORIES code
    status: str = ""  # a factor's: "", "removed", "replaced" or "disabled"

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS.get(self.status, self.status))

    @property
    def local_at(self) -> datetime:
        """``at`` in the site's time zone (``TIME_ZONE``), whatever zone the request activated."""
        return timezone.localtime(self.at, site_timezone())


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
    "status",
)


def site_timezone() -> tzinfo:
    """The site's time zone (``TIME_ZONE``): every time in a report is written in it."""
    return timezone.get_default_timezone()


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

    Logins include failed attempts typed with the account's name. Factors removed or replaced since stay,
    marked so (from the ``factor_added``/``factor_removed`` notifications, which outlive the devices).
    About a dozen queries in all.
    """
    within = _Window(*span.bounds()) if span else _Window(None, None)
    events = within.filter(
        LoginEvent.objects.filter(Q(user=user) | Q(user__isnull=True, username=user.get_username()))
    )
    lock = AccountLock.objects.filter(user=user).first()
    entries: list[TimelineEntry] = [
        _login_entry(event, lock) for event in events.order_by("created_at", "pk")
    ]
    entries += _factor_entries(user, within)
    entries += _lock_entries(lock, within)
    entries += _order_entries(user, within)
    entries += _notification_entries(user, within)
    entries += _staff_entries(user, within)
    entries.sort(key=lambda e: e.at)
    return entries


def _was_locked(lock: AccountLock | None, at: datetime) -> bool:
    """Whether the account's last lock covered ``at`` (only the last lock period is kept)."""
    if lock is None or lock.locked_at is None or at < lock.locked_at:
        return False
    return lock.unlocked_at is None or lock.unlocked_at <= lock.locked_at or at < lock.unlocked_at


def _login_sentence(event: LoginEvent, code: str, lock: AccountLock | None) -> str:
    """What one login event was, as a sentence an investigator reads without knowing the codes."""
    asked = event.action == Action.STEP_UP
    if code == SIGNED_IN:
        return _("Signed in with the password; the risk check let it in without a second factor.")
    if code == PASSKEY_SIGN_IN:
        if asked:
            return _(
                "Signed in with a passkey; the risk check asked for a second factor and the passkey was it."
            )
        return _("Signed in with a passkey.")
    if code == STEPPED_UP:
        return _("Right password; asked for a second factor, and passed step-up.")
    if code == STEP_UP_FAILED:
        return _("Right password; asked for a second factor, and failed step-up.")
    if code == STEP_UP_PENDING:
        return _("Right password; asked for a second factor, which was never given.")
    if code == RESCORED_STEPPED_UP:
        return _(
            "The signed-in session was used from another network or browser; it was asked for a second "
            "factor again, and passed step-up."
        )
    if code == RESCORED_STEP_UP_FAILED:
        return _(
            "The signed-in session was used from another network or browser; it was asked for a second "
            "factor again, and failed step-up."
        )
    if code == RESCORED_PENDING:
        return _(
            "The signed-in session was used from another network or browser; it was held until a second "
            "factor is given, and none was."
        )
    if code == DENIED:
        if _was_locked(lock, event.created_at):
            return _("Right password, but the sign-in was refused: the account was locked.")
        if asked:
            return _(
                "Right password, but the sign-in was refused: the risk check asked for a second factor "
                "and the account had none."
            )
        return _("Right password, but the sign-in was refused: the risk was too high.")
    if code == DENIED_WITHOUT_PASSWORD:
        if _was_locked(lock, event.created_at):
            return _("A sign-in was refused: the account was locked (no password was checked).")
        return _(
            "Refused by the risk check without a password: a passkey sign-in, or a signed-in session used "
            "from another network or browser, which was then ended."
        )
    if code == LOCKED:
        if event.password_ok:
            return _("Right password, but the sign-in was refused: the account was locked.")
        return _("A sign-in was refused: the account was locked (no password was checked).")
    if code == WRONG_PASSWORD:
        if event.user_id is None:
            return _("Failed login: wrong password, or no account had this name then.")
        return _("Failed login: wrong password.")
    if code == THROTTLED:
        return _("A sign-in was refused unchecked: too many attempts in a short time.")
    return _("Login event recorded as %(outcome)s.") % {"outcome": event.get_outcome_display()}


#: The timeline kind of each category: a step-up, a re-checked session, or a sign-in attempt.
_CATEGORY_KIND = {
    STEPPED_UP: "step_up",
    STEP_UP_FAILED: "step_up",
    STEP_UP_PENDING: "step_up",
    RESCORED_STEPPED_UP: "session",
    RESCORED_STEP_UP_FAILED: "session",
    RESCORED_PENDING: "session",
}


def _login_entry(event: LoginEvent, lock: AccountLock | None = None) -> TimelineEntry:
    code = categorize(event.password_ok, event.outcome, event.action)
    summary = _login_sentence(event, code, lock)
    if event.feedback == Feedback.FRAUD:
        summary += " " + _("An analyst marked it as confirmed fraud.")
    elif event.feedback == Feedback.LEGITIMATE:
        summary += " " + _("An analyst marked it as legitimate.")
    network = " ".join(part for part in (f"AS{event.asn}" if event.asn else "", event.as_org) if part)
    return TimelineEntry(
        at=event.created_at,
        kind=_CATEGORY_KIND.get(code, "login"),
        summary=summary,
        place=", ".join(p for p in (event.city, event.country) if p),
        network=network,
        ip=event.ip or "",
        device=event.device_summary,
        score=event.score,
        reasons=tuple(event.reasons or ()),
        detail=_("decision: %(action)s") % {"action": event.get_action_display()},
        reference=f"login event {event.pk}",
        category=code,
    )


# -- factors: the devices still there, and from the notifications those removed or replaced since ----------


#: A factor's kind as sentences name it.
_FACTOR_NOUNS: dict[str, Any] = {
    FactorKind.PASSKEY: gettext_lazy("passkey"),
    FactorKind.TOTP: gettext_lazy("authenticator app (TOTP)"),
    FactorKind.RECOVERY_CODE: gettext_lazy("set of recovery codes"),
}
#: Notifications and the record of one change are written within moments of each other.
_SAME_CHANGE = timedelta(seconds=5)


@dataclass
class _Factor:
    kind: str
    name: str
    added_at: datetime | None
    reference: str = ""
    detail: str = ""
    removed_at: datetime | None = None
    removed_how: str = ""  # "customer" | "staff" | "replaced" | "disabled" | "unknown"


def _factor_kinds_by_label() -> dict[str, str]:
    """Every translation of each factor label, to its kind (notifications store the label as sent)."""
    from django.conf import settings
    from django.utils import translation

    from authguard.factors.base import FACTOR_LABELS

    labels: dict[str, str] = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            labels.update({str(label).casefold(): kind for kind, label in FACTOR_LABELS.items()})
    return labels


def _factor_history(user: Any) -> list[_Factor]:
    """Every factor the account ever had that authguard recorded: the devices it has now (with their
    records) and, from the ``factor_added``/``factor_removed`` notifications, those removed or replaced."""
    from authguard.notifications.outbox import defang

    records = {r.device_id: r for r in FactorRecord.objects.filter(user=user)}
    factors: list[_Factor] = []
    for model, kind in (
        (TOTPDevice, FactorKind.TOTP),
        (PasskeyDevice, FactorKind.PASSKEY),
        (RecoveryCodeDevice, FactorKind.RECOVERY_CODE),
    ):
        for device in model.objects.filter(user=user).order_by("created_at", "pk"):
            record = records.get(device.persistent_id)
            factor = _Factor(
                kind=kind,
                name=device.name,
                added_at=record.enrolled_at if record is not None else device.created_at,
                reference=device.persistent_id,
                detail=_record_detail(record) if record is not None else "",
            )
            if record is not None and record.disabled_at is not None:
                factor.removed_at, factor.removed_how = record.disabled_at, "disabled"
            elif not device.confirmed and record is None:
                continue  # an enrollment begun and never finished: never a factor
            factors.append(factor)

    kinds = _factor_kinds_by_label()
    notes = Notification.objects.filter(
        user=user, staff=False, kind__in=("factor_added", "factor_removed")
    ).order_by("created_at", "pk")
    seen: list[tuple[tuple[str, str, str], datetime]] = []
    for note in notes:
        context = note.context if isinstance(note.context, dict) else {}
        label = str(context.get("factor") or "")
        factor_kind: str = kinds.get(label.casefold(), "")
        name = str(context.get("name") or "")
        key = (note.kind, factor_kind or label, name)
        # One change may notify two addresses (after an e-mail change): count it once.
        if any(k == key and abs(at - note.created_at) <= _SAME_CHANGE for k, at in seen):
            continue
        seen.append((key, note.created_at))
        if note.kind == "factor_added":
            _note_added(factors, factor_kind or label, name, note, defang)
        else:
            _note_removed(
                factors, factor_kind or label, name, note, defang, by_staff=bool(context.get("by_staff"))
            )
    return factors


def _same(factor: _Factor, kind: str, name: str, defang: Any) -> bool:
    return factor.kind == kind and defang(factor.name) == name


def _note_added(factors: list[_Factor], kind: str, name: str, note: Notification, defang: Any) -> None:
    if kind == FactorKind.RECOVERY_CODE:
        # A new set of recovery codes invalidates the earlier set without a removal of its own: say so.
        for factor in factors:
            if (
                factor.kind == kind
                and factor.removed_how == "unknown"
                and factor.added_at is not None
                and factor.added_at < note.created_at - _SAME_CHANGE
            ):
                factor.removed_at, factor.removed_how = note.created_at, "replaced"
    for factor in factors:
        if (
            _same(factor, kind, name, defang)
            and factor.added_at is not None
            and abs(factor.added_at - note.created_at) <= _SAME_CHANGE
        ):
            return  # a factor still there (or disabled): its record tells more than the notification
    cooling = note.context.get("cooling_off_until") if isinstance(note.context, dict) else None
    factors.append(
        _Factor(
            kind=kind,
            name=name,
            added_at=note.created_at,
            reference=f"notification {note.pk}",
            detail=_("cooling off until %(time)s") % {"time": _iso_text(cooling)} if cooling else "",
            removed_how="unknown",  # until a removal or a later set says more, it is simply gone
        )
    )


def _note_removed(
    factors: list[_Factor], kind: str, name: str, note: Notification, defang: Any, *, by_staff: bool
) -> None:
    for factor in factors:
        if (
            factor.removed_how == "disabled"
            and _same(factor, kind, name, defang)
            and abs(factor.removed_at - note.created_at) <= _SAME_CHANGE  # type: ignore[operator]
        ):
            return  # the notice of a factor disabled after failures: its record already says so
    for factor in factors:
        if (
            _same(factor, kind, name, defang)
            and factor.added_at
            and factor.added_at <= note.created_at
            and (factor.removed_at is None and factor.removed_how == "unknown")
        ):
            factor.removed_at, factor.removed_how = note.created_at, "staff" if by_staff else "customer"
            return
    # A removal of a factor added before the notifications kept (retention) or outside authguard's flows.
    factors.append(
        _Factor(
            kind=kind,
            name=name,
            added_at=None,
            reference=f"notification {note.pk}",
            removed_at=note.created_at,
            removed_how="staff" if by_staff else "customer",
        )
    )


def _record_detail(record: FactorRecord) -> str:
    return "; ".join(
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


#: A factor's ``removed_how`` as the status its timeline rows carry.
_FACTOR_STATUS = {
    "": "",
    "customer": "removed",
    "staff": "removed",
    "unknown": "removed",
    "replaced": "replaced",
    "disabled": "disabled",
}


def _factor_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    """Each factor's addition and, for those gone, its removal, replacement or disabling.

    A factor removed since keeps its ``added`` row, marked ``removed`` (or ``replaced``, ``disabled``):
    the thief's passkey the customer removed is evidence, and must not vanish from the report.
    """
    entries: list[TimelineEntry] = []
    for factor in _factor_history(user):
        noun = _FACTOR_NOUNS.get(factor.kind, factor.kind)
        what = {"noun": noun, "name": factor.name}
        status = _FACTOR_STATUS[factor.removed_how]
        if factor.added_at is not None and within.contains(factor.added_at):
            if factor.kind == FactorKind.RECOVERY_CODE:
                summary = _("A new set of recovery codes was issued.")
            else:
                summary = _("New %(noun)s added: “%(name)s”.") % what
            if factor.removed_at is not None:
                summary += " " + str(_STATUS_SENTENCES[status]) % {"time": _iso_text(factor.removed_at)}
            elif factor.removed_how == "unknown":
                summary += " " + _("(No longer on the account; when it was removed was not recorded.)")
            entries.append(
                TimelineEntry(
                    at=factor.added_at,
                    kind="factor",
                    summary=summary,
                    detail=factor.detail,
                    reference=factor.reference,
                    status=status,
                )
            )
        if factor.removed_at is not None and within.contains(factor.removed_at):
            sentences = {
                "customer": _("The %(noun)s “%(name)s” was removed by the customer."),
                "staff": _("The %(noun)s “%(name)s” was removed by the security desk."),
                "disabled": _("The %(noun)s “%(name)s” was disabled after repeated failures."),
            }
            if factor.kind == FactorKind.RECOVERY_CODE:
                sentences.update(
                    customer=_("A set of recovery codes was removed by the customer."),
                    staff=_("A set of recovery codes was removed by the security desk."),
                    replaced=_(
                        "The earlier set of recovery codes was replaced by a new set; "
                        "those codes no longer work."
                    ),
                )
            entries.append(
                TimelineEntry(
                    at=factor.removed_at,
                    kind="factor",
                    summary=sentences.get(factor.removed_how, sentences["customer"]) % what,
                    reference=factor.reference,
                    status=status,
                )
            )
    return entries


def _lock_entries(lock: AccountLock | None, within: _Window) -> list[TimelineEntry]:
    if lock is None:
        return []
    entries = []
    for at, summary, detail in (
        (lock.locked_at, _("The account was locked."), lock.locked_reason),
        (lock.unlocked_at, _("The account was unlocked."), lock.unlock_reason),
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
    from authguard.notifications.outbox import KINDS

    entries = []
    for row in within.filter(Notification.objects.filter(user=user, staff=False)).order_by("created_at"):
        kind = KINDS.get(row.kind)
        subject = str(kind.subject) if kind is not None else row.kind
        entries.append(
            TimelineEntry(
                at=row.created_at,
                kind="notification",
                summary=_("Message to the customer “%(subject)s”: %(status)s.")
                % {"subject": subject, "status": row.get_status_display()},
                detail=row.to_email,
                reference=f"notification {row.pk} ({row.kind})",
            )
        )
    return entries


def _staff_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    """What staff did about this account in the console (admin log): orders released or cancelled,
    devices revoked, the account unlocked, and every four-eyes request, approval, rejection and execution
    (:class:`~authguard.models.StaffApproval`), with their reasons."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from authguard.models import StaffApproval

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
    """CSV rows of an incident timeline (header first), times in ISO 8601 in the site's time zone."""
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
            e.status,
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
    """ISO 8601 with its offset, in the site's time zone (the CSV)."""
    return timezone.localtime(value, site_timezone()).isoformat() if value else ""


def _iso_text(value: datetime | str | None) -> str:
    """A time as a sentence shows it: ``2026-11-20 10:15 JST``, in the site's time zone."""
    if isinstance(value, str):
        from django.utils.dateparse import parse_datetime

        value = parse_datetime(value)
    if value is None:
        return ""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, site_timezone())
    return timezone.localtime(value, site_timezone()).strftime("%Y-%m-%d %H:%M %Z")


__all__ = [
    "CATEGORIES",
    "Category",
    "Dashboard",
    "DateRange",
    "NetworkRow",
    "ReportError",
    "TimelineEntry",
    "campaigns",
    "categorize",
    "category_of",
    "category_q",
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
