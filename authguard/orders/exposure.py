"""The account's exposure over days: what the order guard's rules read, in a constant number of queries.

Issue 11: the guard judges the account's exposure over a horizon (a week, and a month for the slow variant),
not one order in a 24-hour window, so that splitting, ordering (buy first), waiting for a window to roll and
spreading over days add up to the same exposure:

- :func:`ledger_totals`: one grouped query over the ledger's ``(user, created_at)`` index gives, for every
  window, the placed and held sells and buys, the buys of the order's instrument and the buys weighted by
  illiquidity (the ledger stores each order's weight, so one ``SUM`` is the exposure), and whether a held
  order is past its deadline;
- :func:`account_trust`: one query says whether the account's sign-in context changed within the trust days
  (a device first seen recently, unless it is among a new account's first ones; a risky or stepped-up login
  or re-scored session; the account's cooling-off after a factor or contact change);
- :func:`authguard.orders.campaign.illiquid_buy_facts` (its own module): for a buy of an illiquid
  instrument, one query over the ledger's ``(symbol, created_at)`` index gives the campaign counts, the
  value bought by accounts with a recent context change over each volume window, and by accounts of every
  kind over the week and the month.

None of them reads more than the horizon, whatever the account's history.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.db.models import Case, Exists, IntegerField, Q, Value, When

from authguard import statements
from authguard.choices import Action
from authguard.models import (
    AccountSecurity,
    CampaignFlag,
    GuardedOrder,
    GuardStatus,
    KnownDevice,
    LoginEvent,
    OrderDayTotal,
    RiskProfile,
)
from authguard.models import Outcome as LoginOutcome
from authguard.orders import rollup
from authguard.orders.codes import codes_in, instrument_codes
from authguard.orders.rules import TrustFacts, WindowTotals
from authguard.risk.import_history import IMPORTED_AT

#: Reason codes of a login that mean its context changed (a new network, a proxy, a factor or password
#: change...): any of them within the trust days lowers the account's limits.
CONTEXT_CHANGE_REASONS = (
    "network_hop",
    "unknown_network",
    "impossible_travel",
    "anonymous",
    "factor_changed",
    "password_changed",
    # A sign-in after months without one (or with none left in the profile's horizon): on an old device
    # row (a copied cookie of the customer's idle browser) no device is new, and nothing else says it
    # changed (red team, round twenty-three).
    "dormant_account",
    # Matched as a substring: also "copied_user_agent_shedding" (a new cookie a shedding browser's habit
    # let through, issue 13), which lowers the limits like the copy it may be.
    "copied_user_agent",
    # A browser idle for months (or a copy of it) coming back, as dormant_account for the whole account:
    # a copy used 60-119 days after her last sign-in was scored only stale_device (round twenty-four).
    "stale_device",
    # A known browser on a network, in a city or far from where it settled, never seen with it: an
    # infostealer's copy of her cookie jar scored under the step-up threshold (a phone's points are cut to a
    # quarter) got the full limits, and nine such copies fed one thin stock unflagged (round twenty-five).
    # Matched as substrings: "device_new_network" (also "new_device_new_network", a new browser on a new
    # network), "device_moved" (also "settled_device_moved").
    "device_new_network",
    "device_new_city",
    "device_moved",
    # A copy of her cookie one generation behind her browser, allowed at 39 on her own network (round
    # twenty-six). Her own crashed browser showing its older cookie is a new device at its next sign-in.
    "device_cookie_behind",
    # Her cookie in another browser or OS (device_user_agent_sideways, _backwards), allowed at 39 on her
    # own network (round twenty-seven).
    "device_user_agent_",
)
_ZERO = Decimal(0)


#: How long the ledger remembers how thinly an instrument traded (:func:`ledger_totals`' peak).
LIQUIDITY_MEMORY_DAYS = 30
#: Weights below this are not looked back for (the partial index ``authguard_guarded_thin`` holds the rest).
REMEMBERED_WEIGHT = 0.25
#: A ledger row's buy at what the sell limits' base counts of it (``{g}``: the table's alias and a dot, or
#: nothing): its amount, or its ``illiquid_amount`` when larger. SECURITY: today's holdings count a thin
#: position at up to its long-run price (``facts._base_holdings``); a buy of it below that price, taken out
#: of the base at its price, widened the base by the rest: the gang printed its stock at a hundredth, the
#: thief bought ¥1.07 million of it (at its long-run price) for ¥10,700, and sold 87.4 % of her large caps
#: unheld (red team, round seventy-six). ``illiquid_amount`` is the amount weighted plus, in full, what
#: ``OrderFacts.counted_amount`` adds at the long-run price: a weight-1 buy's long-run value; for a lighter
#: weight w the base still counts up to ``amount x (1 - w)`` more, at most what was paid.
COUNTED_BUY = "CASE WHEN {g}amount > {g}illiquid_amount THEN {g}amount ELSE {g}illiquid_amount END"


def _money(value: Any) -> Decimal:
    """A SUM as a Decimal in cents (SQLite may answer a float or an int)."""
    if value is None:
        return _ZERO
    if isinstance(value, Decimal):
        return value
    return Decimal(str(round(float(value), 2)))


def new_account(user: AbstractBaseUser, *, since: datetime) -> bool:
    """Whether ``user``'s account was opened after ``since`` (its ``date_joined``): a genuinely new customer,
    whose very first devices are no change of context (:func:`account_trust`).

    SECURITY: an account the guard cannot date (a custom user model without ``date_joined``, a naive date
    against an aware clock) is not new: every device first seen within the days is then a change.
    """
    joined = getattr(user, "date_joined", None)
    if not isinstance(joined, datetime) or (joined.tzinfo is None) != (since.tzinfo is None):
        return False
    # The guard's own records overrule a recent date_joined: an imported profile counts as an older device
    # (_trust_expressions, _ledger_sql), so a customer migrated on the install day is not new.
    return joined > since


def _trust_expressions(user: AbstractBaseUser, *, now: datetime, days: int) -> dict[str, Any]:
    """EXISTS subqueries (as 0/1) of what changed the account's sign-in context within ``days``."""
    since = now - timedelta(days=days)
    context = Q()
    for code in CONTEXT_CHANGE_REASONS:
        context |= Q(reasons__icontains=code)
    # SECURITY: a re-scored session's or token's event has password_ok false, like a stranger's wrong
    # password: read by its own mark, or a hijack stepped up with a relayed code changed nothing (round 19).
    verified = Q(password_ok=True) | Q(rescore=True)
    risky_login = (
        LoginEvent.objects.filter(user_id=user.pk, created_at__gte=since)
        .filter(verified)
        .filter(
            ~Q(action=Action.ALLOW)
            | Q(outcome__in=(LoginOutcome.STEP_UP_PASSED, LoginOutcome.RESCORED))
            | context
        )
    )
    # SECURITY: an account whose profile came from import-history existed before authguard, whatever its
    # date_joined says: it counts as having an older device (a user table migrated on the install day made
    # every customer "new" for that week: red team, round twenty-four).
    imported = Exists(RiskProfile.objects.filter(user_id=user.pk, data__has_key=IMPORTED_AT))
    older = Exists(KnownDevice.objects.filter(user_id=user.pk, first_seen_at__lt=since)) | imported
    subqueries = {
        "t_new_device": Exists(KnownDevice.objects.filter(user_id=user.pk, first_seen_at__gte=since)),
        "t_old_device": older,
        "t_risky_login": Exists(risky_login),
        "t_cooling_off": Exists(
            AccountSecurity.objects.filter(user_id=user.pk).filter(
                Q(cooling_off_until__gt=now) | Q(cooling_off_started_at__gte=since)
            )
        ),
    }
    return {
        name: Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())
        for name, condition in subqueries.items()
    }


def _trust_from(row: dict[str, Any], days: int, *, new: bool) -> TrustFacts:
    """The trust EXISTS flags as :class:`TrustFacts`; ``new``: the account was opened within the days
    (:func:`new_account`)."""
    reasons = []
    # SECURITY: a customer's very first devices are no change only on an account younger than the days. A
    # long-standing customer with no device on record (not signed in since the portal installed authguard,
    # or imported without a passkey-trusted device) has the thief's browser as her "first": it lowered
    # nothing, and a day later he sold 44 % of the holdings and bought 9.9 % of the portfolio in a thin
    # stock with no hold (red team, round twenty-three).
    if row.get("t_new_device") and (row.get("t_old_device") or not new):
        reasons.append("new_device")
    if row.get("t_risky_login"):
        reasons.append("risky_login")
    if row.get("t_cooling_off"):
        reasons.append("cooling_off")
    return TrustFacts(bool(reasons), tuple(reasons), days)


@functools.lru_cache(maxsize=16)
def _ledger_sql(vendor: str, windows: int, rounded: int, codes: int = 1) -> str:
    """The ledger query for ``windows`` windows, ``rounded`` of which start at a midnight before the rolled-up
    days end: built once, then only executed (no ORM compilation).

    Four parts in one ``UNION ALL`` that SQLite and PostgreSQL both run: the ledger rows not rolled up (the
    partial ``(user, created_at) WHERE NOT rolled`` index: the last day or two and held orders), grouped by
    side, status, the smallest window a row falls in and whether it is of the order's instrument; the
    rolled-up days' sells, and their buys (the account's and the order
    instrument's), each grouped by the smallest window the day falls in (at most one row per day and window);
    one row with the trust EXISTS subqueries and whether the order's instrument is flagged by a campaign; one
    row with the same subqueries over the campaign's longer look-back and the instrument's peak illiquidity
    of the month (:data:`LIQUIDITY_MEMORY_DAYS`). The order's instrument is any of ``codes`` codes (its
    former ones: :func:`~authguard.orders.codes.instrument_codes`).
    """
    known_as = codes_in(codes)
    q = connection.ops.quote_name
    ledger = q(GuardedOrder._meta.db_table)
    days = q(OrderDayTotal._meta.db_table)
    devices = q(KnownDevice._meta.db_table)
    events = q(LoginEvent._meta.db_table)
    security = q(AccountSecurity._meta.db_table)
    campaign_flags = q(CampaignFlag._meta.db_table)
    # At least one WHEN (PostgreSQL refuses a bare CASE ... ELSE): one window alone gets a WHEN for itself.
    bucket = "CASE " + " ".join(["WHEN created_at >= %s THEN %s"] * max(windows - 1, 1)) + " ELSE %s END"
    day_bucket = "CASE " + " ".join(["WHEN day >= %s THEN %s"] * max(rounded - 1, 1)) + " ELSE %s END"
    context = " OR ".join(["CAST(reasons AS TEXT) LIKE %s"] * len(CONTEXT_CHANGE_REASONS))
    # SECURITY: only the models' own (quoted) table names are formatted in; every value is a parameter.
    profiles = q(RiskProfile._meta.db_table)
    # An imported profile (import-history) stands for a device older than any window, as in
    # _trust_expressions; the key is a constant of this module, never a value from outside.
    has_key = {
        "postgresql": f"(p.data -> '{IMPORTED_AT}') IS NOT NULL",
        "sqlite": f"json_extract(p.data, '$.{IMPORTED_AT}') IS NOT NULL",
    }.get(vendor, f"p.data LIKE '%%\"{IMPORTED_AT}\"%%'")
    imported = f"SELECT 1 FROM {profiles} p WHERE p.user_id = %s AND {has_key}"  # noqa: S608
    exists = [
        f"SELECT 1 FROM {devices} WHERE user_id = %s AND first_seen_at >= %s",  # noqa: S608
        f"SELECT 1 FROM {devices} WHERE user_id = %s AND first_seen_at < %s UNION ALL {imported}",  # noqa: S608
        # SECURITY: the right password or a re-score's mark (never a stranger's failed attempt), as in
        # _trust_expressions: a re-scored session stepped up with a relayed code is a change (round 19).
        f"SELECT 1 FROM {events} WHERE user_id = %s AND created_at >= %s"  # noqa: S608
        f" AND (password_ok = %s OR rescore = %s) AND (action <> %s OR outcome IN (%s, %s) OR {context})",
        f"SELECT 1 FROM {security} WHERE user_id = %s"  # noqa: S608
        " AND (cooling_off_until > %s OR cooling_off_started_at >= %s)",
    ]
    flags = [f"CASE WHEN EXISTS ({sub}) THEN 1 ELSE 0 END" for sub in exists]
    grouped = (
        f"SELECT side, status, {bucket} AS bucket,"  # noqa: S608
        f" CASE WHEN symbol {known_as} THEN 1 ELSE 0 END AS same,"
        " SUM(amount) AS total, SUM(illiquid_amount) AS weighted,"
        " SUM(CASE WHEN illiquid THEN 1 ELSE 0 END) AS thin, MIN(created_at) AS first,"
        f" SUM({COUNTED_BUY.format(g='')}) AS counted"
        f" FROM {ledger} WHERE user_id = %s AND created_at >= %s AND NOT rolled"
        " AND status IN ('placed', 'held') GROUP BY 1, 2, 3, 4"
    )
    rolled_sells = (
        f"SELECT 'rolled_sell', '', {day_bucket}, 0, SUM(sells), 0, 0, NULL, 0"  # noqa: S608
        f" FROM {days} WHERE user_id = %s AND day >= %s AND symbol = '' GROUP BY 3"
    )
    rolled_buys = (
        f"SELECT 'rolled_buy', '', {day_bucket}, CASE WHEN symbol = '' THEN 0 ELSE 1 END,"  # noqa: S608
        # A day's buys as its ledger rows counted them: counted_extra is what COUNTED_BUY adds over their
        # amounts (rollup._day_sums, the account's row).
        " SUM(buys), SUM(illiquid_amount), SUM(illiquid_buys), NULL, SUM(buys + counted_extra)"
        f" FROM {days} WHERE user_id = %s AND day >= %s AND (symbol = '' OR symbol {known_as}) GROUP BY 3, 4"
    )
    # SECURITY: a campaign flag holds every buy of its instrument, however liquid the instrument looks by
    # now (a pump lifts the volume too): read for every order, in this statement (red team, 2026-12-05).
    flagged = f"(SELECT COUNT(*) FROM {campaign_flags} WHERE symbol {known_as} AND active)"  # noqa: S608
    trust = f"SELECT 'trust', '', {flags[0]}, {flags[1]}, {flags[2]}, {flags[3]}, {flagged}, NULL, NULL"
    # SECURITY: over the look-back a "new device" is any but the account's earliest: a victim whose own
    # browser is younger than the look-back was no change at all (red team, 2026-12-05). The earliest is
    # spared only on an account opened within the look-back (the parameter: not new, as _trust_from): a
    # victim with no device on record had the thief's as her earliest (red team, round twenty-three).
    not_first = (
        f"SELECT 1 FROM {devices} d WHERE d.user_id = %s AND d.first_seen_at >= %s AND (%s OR EXISTS"  # noqa: S608
        f" (SELECT 1 FROM {devices} o WHERE o.user_id = d.user_id AND o.first_seen_at < d.first_seen_at)"
        f" OR EXISTS ({imported.replace('= %s', '= d.user_id')}))"
    )
    changed = f"CASE WHEN EXISTS ({not_first}) THEN 1 ELSE 0 END"
    # SECURITY: how thinly the order's instrument traded this month, over every account's orders (the
    # partial index authguard_guarded_thin), in ten-thousandths (weights have four decimals): a pump lifts
    # the price and the volume of the stock it pumps, and must not make it look liquid (red team, round
    # fourteen: ¥105 million a day, 0.86, weighed 0.16 at a fourfold price and a tenfold volume).
    peak = (
        f"(SELECT CAST(COALESCE(ROUND(MAX(illiquidity) * 10000), 0) AS INTEGER) FROM {ledger}"  # noqa: S608
        f" WHERE symbol {known_as} AND created_at >= %s AND illiquidity >= %s)"
    )
    # The second column is 1: "older" is in not_first itself.
    lately = f"SELECT 'lately', '', {changed}, 1, {flags[2]}, {flags[3]}, {peak}, NULL, NULL"
    return f"{grouped} UNION ALL {rolled_sells} UNION ALL {rolled_buys} UNION ALL {trust} UNION ALL {lately}"


def _trust_params(uid: Any, *, now: datetime, since: datetime, established: bool | None = None) -> list[Any]:
    """The parameters of the trust EXISTS subqueries of :func:`_ledger_sql` for changes since ``since``:
    the trust row's (a device first seen since then, one before it), or with ``established`` the lately
    row's (``not_first``: whether even the account's earliest device counts)."""
    adapt = connection.ops.adapt_datetimefield_value
    if established is None:
        params: list[Any] = [uid, adapt(since), uid, adapt(since), uid]
    else:
        params = [uid, adapt(since), established]
    params += [uid, adapt(since), True, True]  # password_ok, rescore
    params += [Action.ALLOW, LoginOutcome.STEP_UP_PASSED, LoginOutcome.RESCORED]
    params += [f"%{code}%" for code in CONTEXT_CHANGE_REASONS]
    return [*params, uid, adapt(now), adapt(since)]


def _window_starts(now: datetime, hours: list[int]) -> tuple[dict[int, datetime], datetime]:
    """Each window's start and the time before which orders may be rolled up into days.

    A window that reaches back before that time starts at the midnight (UTC) before its exact start: the
    rolled-up days are whole days. SECURITY: rounding down only lengthens a window (by less than a day), so
    it can only add exposure, never hide any.
    """
    rollable = rollup.rollable_before(now)
    starts = {}
    for h in hours:
        exact = now - timedelta(hours=h)
        starts[h] = exact if exact >= rollable else rollup.day_start(exact)
    return starts, rollable


def ledger_totals(
    user: AbstractBaseUser,
    *,
    now: datetime,
    hours: list[int],
    symbol: str,
    former: Sequence[str] | str = (),
    held_seconds: int,
    trust_days: int,
    changed_days: int = 0,
) -> tuple[dict[int, WindowTotals], bool, TrustFacts, bool, float]:
    """Each window's placed and held orders of ``user``, whether a held order is past its deadline
    (older than ``held_seconds``), the account's :class:`TrustFacts` (:func:`account_trust`), whether
    ``symbol`` is flagged by a campaign (an active :class:`~authguard.models.CampaignFlag`) and the highest
    illiquidity weight any account's order of ``symbol`` was checked at this month (0.0 below
    :data:`REMEMBERED_WEIGHT`): one query.
    ``changed_days``: the campaign's look-back (``TrustFacts.lately``; at least ``trust_days``).
    ``former``: the instrument's former codes (``InstrumentInfo.former_symbols``), whose rows and flags are
    the instrument's.

    ``hours`` are the windows (e.g. 24, 168, 720). The query reads the ledger rows not yet rolled up (the
    last day or two, and held orders) and one total per earlier day (:mod:`authguard.orders.rollup`), so
    neither the account's older history nor its number of orders within the windows changes its cost. A
    window reaching back beyond the last day or two starts at a midnight (UTC), up to a day early. Reads
    only: the periodic task rolls finished days up. It is plain SQL built once per process: compiling two
    dozen conditional aggregates through the ORM cost more than running them.
    """
    hours = sorted(set(hours))
    starts, rollable = _window_starts(now, hours)
    rounded = [h for h in hours if starts[h] < rollable]
    adapt = connection.ops.adapt_datetimefield_value
    adapt_day = connection.ops.adapt_datefield_value
    since = now - timedelta(days=trust_days)
    earliest = starts[hours[-1]]
    uid = statements.user_id(user.pk)
    codes = instrument_codes(symbol, former)
    params: list[Any] = []
    for h in hours[:-1] or hours:
        params += [adapt(starts[h]), h]
    params += [hours[-1], *codes, uid, adapt(earliest)]
    day_params: list[Any] = []
    for h in rounded[:-1] or rounded[:1] or hours[:1]:  # as many WHENs as _ledger_sql writes
        day_params += [adapt_day(starts[h].date()), h]
    day_params += [hours[-1]]
    params += [*day_params, uid, adapt_day(earliest.date())]
    params += [*day_params, uid, adapt_day(earliest.date()), *codes]
    params += [*_trust_params(uid, now=now, since=since), *codes]
    lately_since = now - timedelta(days=max(changed_days, trust_days))
    new = new_account(user, since=since)
    params += _trust_params(
        uid, now=now, since=lately_since, established=not new_account(user, since=lately_since)
    )
    params += [*codes, adapt(now - timedelta(days=LIQUIDITY_MEMORY_DAYS)), REMEMBERED_WEIGHT]
    sql = _ledger_sql(connection.vendor, len(hours), max(len(rounded), 1), len(codes))
    rows = statements.fetch_all(sql, params)
    # Decimal sums and one int count ("il") per window.
    sums: dict[int, dict[str, Any]] = {
        h: {**dict.fromkeys(("sp", "sh", "bp", "bh", "ia", "sb", "bc"), _ZERO), "il": 0} for h in hours
    }
    due_before = now - timedelta(seconds=held_seconds)
    held_due = False
    trust = TrustFacts(True, ("unknown_account",), trust_days)  # SECURITY: no answer is no trust
    flagged = True  # SECURITY: no answer, no liquidity to trust either
    lately = True
    peak = 1.0  # SECURITY: no answer is no liquidity to trust
    for side, status, bucket, same, total, weighted, thin, first, counted in rows:
        if side in ("trust", "lately"):
            changes = {"t_new_device": bucket, "t_old_device": same, "t_risky_login": total}
            found = _trust_from({**changes, "t_cooling_off": weighted}, trust_days, new=new)
            if side == "trust":
                trust, flagged = found, bool(thin)
            else:
                lately, peak = found.changed, int(thin or 0) / 10000
            continue
        placed = status == GuardStatus.PLACED or side.startswith("rolled")
        if not placed and first is not None and _as_datetime(first) <= due_before:
            held_due = True
        total, weighted, counted = _money(total), _money(weighted), _money(counted)
        for h in hours:
            if int(bucket) > h:
                continue  # older than this window
            _add_row(sums[h], side, placed, int(same), (total, weighted, counted), int(thin or 0))
    totals = {
        h: WindowTotals(
            h,
            starts[h],
            sells_placed=acc["sp"],
            sells_held=acc["sh"],
            buys_placed=acc["bp"],
            illiquid_buys=acc["il"],
            illiquid_amount=acc["ia"],
            symbol_buys=acc["sb"],
            buys_held=acc["bh"],
            buys_counted=acc["bc"],
        )
        for h, acc in sums.items()
    }
    return totals, held_due, replace(trust, lately=lately or trust.changed), flagged, peak


def _add_row(
    acc: dict[str, Any],
    side: str,
    placed: bool,
    same: int,
    amounts: tuple[Decimal, Decimal, Decimal],
    thin: int,
) -> None:
    """Add one grouped row (of the ledger, or of the rolled-up days) to a window's sums; ``amounts``: its
    total, its weighted total and its buys at what the sell limits' base counts (:data:`COUNTED_BUY`)."""
    total, weighted, counted = amounts
    if side in ("sell", "rolled_sell"):
        acc["sp" if placed else "sh"] += total
        return
    if side == "rolled_buy" and same:
        acc["sb"] += total  # the order instrument's own day rows: its buys, already in the account's row
        return
    acc["bp" if placed else "bh"] += total
    if placed:
        acc["bc"] += counted
    acc["il"] += thin
    acc["ia"] += weighted
    if same and side == "buy":
        acc["sb"] += total


def _as_datetime(value: Any) -> datetime:
    """``MIN(created_at)`` as an aware datetime (SQLite answers the stored text)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt_timezone.utc)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)


def account_trust(user: AbstractBaseUser, *, now: datetime, days: int) -> TrustFacts:
    """Whether the account's sign-in context changed within ``days`` (one query; :func:`ledger_totals`
    answers the same along with the ledger's totals).

    Changed means any of: a device first seen within the days, unless the account has no older one and was
    itself opened within the days (:func:`new_account`: a genuinely new customer's very first devices are
    no change; a long-standing customer's first device on record is); a login with the right password
    within the days that was stepped up, denied, re-scored or scored for a new network, a proxy, a factor or
    password change or a dormancy (:data:`CONTEXT_CHANGE_REASONS`), or a signed-in session or API token
    re-scored to a step-up or an end (``LoginEvent.rescore``: its event has no password, yet a stranger's
    wrong password or an attempt on a locked account is no change); the
    account's cooling-off (:mod:`authguard.factors.lifecycle`: after a factor or contact change) running or
    begun within the days.
    """
    row = (
        get_user_model()
        ._default_manager.filter(pk=user.pk)
        .annotate(**_trust_expressions(user, now=now, days=days))
        # The plugin cannot see names annotated through **kwargs.
        .values("t_new_device", "t_old_device", "t_risky_login", "t_cooling_off")  # type: ignore[misc]
        .first()
    )
    if row is None:
        # SECURITY: a user the guard cannot read is not a trusted one.
        return TrustFacts(True, ("unknown_account",), days)
    return _trust_from(row, days, new=new_account(user, since=now - timedelta(days=days)))


__all__ = ["CONTEXT_CHANGE_REASONS", "account_trust", "ledger_totals"]
