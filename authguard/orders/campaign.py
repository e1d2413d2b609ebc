"""The ``Campaign`` rule's side of the ledger: the campaign facts of a buy of a thin instrument (one
statement over every account's buys of it, :func:`illiquid_buy_facts`), the instrument's flag
(:func:`flag_campaign`) and an admin's clearing of it (:func:`clear_flag`).

A flag keeps which arm raised it and what it showed of the instrument's month, whichever arm raised it; the
month's count starts again only from a flag an admin cleared that showed her the month over its share.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.db.models import Case, F, When
from django.utils.translation import gettext as _

from authguard import statements
from authguard.models import CampaignFlag, GuardedOrder
from authguard.notifications.outbox import notify_staff
from authguard.orders.codes import codes_in, instrument_codes
from authguard.orders.exposure import _ZERO, _money
from authguard.orders.rules import CampaignFacts

if TYPE_CHECKING:
    from authguard.orders.guard import OrderDecision

logger = logging.getLogger(__name__)

#: The largest month share a flag stores (``CampaignFlag.month_share``: 16 digits before the point).
_MAX_SHARE = Decimal("9999999999999999")


@functools.lru_cache(maxsize=16)
def _campaign_sql(vendor: str, volume_windows: int, codes: int = 1) -> str:
    """The campaign query for ``volume_windows`` volume windows and an instrument of ``codes`` codes (its
    former ones): built once, then only executed."""
    known_as = codes_in(codes)
    q = connection.ops.quote_name
    ledger = q(GuardedOrder._meta.db_table)
    flags = q(CampaignFlag._meta.db_table)
    columns = [
        "COUNT(DISTINCT CASE WHEN created_at >= %s THEN user_id END)",
        "COUNT(DISTINCT CASE WHEN created_at >= %s AND risky_session THEN user_id END)",
        "SUM(CASE WHEN created_at >= %s AND user_id = %s THEN 1 ELSE 0 END)",
        "SUM(CASE WHEN created_at >= %s THEN amount ELSE 0 END)",
        "COUNT(DISTINCT CASE WHEN created_at >= %s AND risky_session THEN user_id END)",
        "SUM(CASE WHEN created_at >= %s AND risky_session AND user_id = %s THEN 1 ELSE 0 END)",
    ]
    columns += ["SUM(CASE WHEN created_at >= %s AND risky_session THEN amount ELSE 0 END)"] * volume_windows
    # Every account within the longest volume window (the week's range): how many, this one, how much.
    columns += ["COUNT(DISTINCT user_id)", "SUM(CASE WHEN user_id = %s THEN 1 ELSE 0 END)", "SUM(amount)"]
    buys = f"FROM {ledger} WHERE symbol {known_as} AND side = 'buy' AND status IN ('placed', 'held')"  # noqa: S608
    # SECURITY: only the models' own (quoted) table names are formatted in; every value is a parameter.
    week = (
        f"SELECT {', '.join(columns)},"  # noqa: S608
        f" (SELECT COUNT(*) FROM {flags} WHERE symbol {known_as} AND active),"
        f" (SELECT COUNT(*) FROM {ledger} WHERE user_id = %s AND symbol {known_as} AND side = 'buy'"
        f" AND status = 'placed') {buys} AND created_at >= %s"
    )
    # The same over the month, in a part of its own: the week's part reads the week's rows only, this one
    # three sums over the month's. The month starts again when an admin clears a flag that showed her the
    # month over its share, from the moment it was raised: the buys she judged do not flag it again on every
    # next buy for a month (clear_flag).
    # SECURITY: placed buys only: three of the gang's own accounts placed three big buys that were held
    # (never bought), passed a day's value together and flagged a stock for every customer (red team, round
    # sixty-six). A held buy counts once it is confirmed.
    # SECURITY: not from any clearing (MAX(cleared_at)): the desk rightly cleared a flag of the 24-hour arm
    # raised by three of the gang's own held and cancelled buys, which showed nothing of the victims' month,
    # and every week's group of victims started from nothing (red team, round seventy-five).
    cleared = f"(SELECT MAX(month_judged_until) FROM {flags} WHERE symbol {known_as})"  # noqa: S608
    placed = f"FROM {ledger} WHERE symbol {known_as} AND side = 'buy' AND status = 'placed'"  # noqa: S608
    month = (
        "SELECT COUNT(DISTINCT user_id), SUM(CASE WHEN user_id = %s THEN 1 ELSE 0 END), SUM(amount)"
        f" {placed} AND created_at >= %s AND created_at >= COALESCE({cleared}, %s)"
    )
    return f"SELECT * FROM ({week}) w CROSS JOIN ({month}) m"  # noqa: S608


#: The first key of the campaign's advisory locks (PostgreSQL): "ag" and 1, so that a portal's own advisory
#: locks, which usually use one 64-bit key, do not meet ours.
CAMPAIGN_LOCK_KEY = 0x61670001


def _serialise_buys_of(codes: list[str]) -> None:
    """Within the order's transaction, wait for any other transaction buying the instrument (any of its
    ``codes``, in one order: no two buys wait on each other) to finish.

    SECURITY: the campaign facts are other accounts' buys; under READ COMMITTED twenty orders submitted at
    the same moment from twenty taken-over accounts each read none of the others and all pass (red team,
    2026-12-05). Each holds its own customer's row lock only, so buys of one instrument queue on a
    transaction-scoped advisory lock instead. SQLite serialises every writer already. A portal that submits
    several buys in one transaction should submit them in a stable order (PostgreSQL refuses a deadlock,
    and the transaction, with nothing written, rolls back).
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for code in sorted(codes):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [CAMPAIGN_LOCK_KEY, code])


def illiquid_buy_facts(
    user: AbstractBaseUser,
    symbol: str,
    *,
    former: Sequence[str] | str = (),
    now: datetime,
    hours: int | None,
    risky: bool,
    amount: Decimal,
    volume_hours: list[int],
    daily_value: Decimal | None,
    serialise: bool = False,
) -> tuple[CampaignFacts | None, bool]:
    """For a buy of an illiquid instrument, in one statement over the ledger's buys of it (the
    ``(symbol, created_at)`` index ranges of the week and of the month): the campaign facts (is it flagged,
    how many accounts bought it within ``hours`` and how much, how much accounts with a recent context change
    bought within each of ``volume_hours``) and whether this customer never bought it.

    ``volume_hours`` (:meth:`Campaign.volume_hours <authguard.orders.exposure_rules.Campaign.volume_hours>`):
    the volume windows' hours and, the longest, the month's: the value and the accounts of every kind over
    the month (:attr:`CampaignFacts.month_volume`).
    ``risky``: this order comes from such an account (its ``amount`` then counts in the volume windows).
    ``former``: the instrument's former codes: their buys and flags are the instrument's (a code change is
    no new instrument to a gang's month).
    ``serialise``: first wait for the other transactions buying ``symbol`` (inside the order's transaction).
    """
    codes = instrument_codes(symbol, former)
    if serialise:
        _serialise_buys_of(codes)
    adapt = connection.ops.adapt_datetimefield_value
    campaign_start = adapt(now - timedelta(hours=hours or 0))
    month_hours = max(volume_hours or [0])
    windows = sorted(volume_hours)[:-1]
    slow = max([hours or 0, *windows])
    volume_start = adapt(now - timedelta(hours=max(windows or [0])))
    month_start = adapt(now - timedelta(hours=month_hours))
    uid = statements.user_id(user.pk)
    params: list[Any] = [campaign_start, campaign_start, campaign_start, uid, campaign_start]
    params += [volume_start, volume_start, uid]
    params += [adapt(now - timedelta(hours=h)) for h in windows]
    params += [uid, *codes, uid, *codes, *codes, adapt(now - timedelta(hours=slow))]
    params += [uid, *codes, month_start, *codes, month_start]
    (row,) = statements.fetch_all(_campaign_sql(connection.vendor, len(windows), len(codes)), params)
    accounts, risky_accounts, mine, window_volume, volume_accounts, mine_volume = row[:6]
    risky_sums = row[6 : 6 + len(windows)]
    slow_accounts, slow_mine, slow_volume, flagged, mine_placed, *month = row[6 + len(windows) :]
    month_accounts, month_mine, month_volume = month
    never_bought = not mine_placed
    if hours is None:
        return None, never_bought
    if flagged:
        return CampaignFacts(flagged=True, hours=hours, daily_value=daily_value), never_bought
    accounts, risky_accounts = int(accounts or 0), int(risky_accounts or 0)
    if not mine:  # this order's account is one more buyer
        accounts += 1
        risky_accounts += int(risky)
    risky_volume = {
        h: _money(v) + (amount if risky else _ZERO) for h, v in zip(windows, risky_sums, strict=True)
    }
    volume_accounts = int(volume_accounts or 0)
    if risky and not mine_volume:
        volume_accounts += 1
    return (
        CampaignFacts(
            False,
            accounts=accounts,
            risky_accounts=risky_accounts,
            hours=hours,
            risky_volume=risky_volume,
            risky_volume_accounts=volume_accounts,
            daily_value=daily_value,
            window_volume=_money(window_volume) + amount,
            slow_accounts=int(slow_accounts or 0) + (0 if slow_mine else 1),
            slow_volume=_money(slow_volume) + amount,
            slow_hours=slow,
            month_accounts=int(month_accounts or 0) + (0 if month_mine else 1),
            month_volume=_money(month_volume) + amount,
        ),
        never_bought,
    )


def flag_campaign(decision: OrderDecision, *, now: datetime) -> None:
    """Flag the instrument of ``decision`` when a ``campaign_detected`` finding says so (or raise its
    cleared flag again, with this finding's evidence) and alert the staff: the accounts and window of the
    arm that raised it and, on every flag, the instrument's month (:meth:`Campaign._month_shown
    <authguard.orders.exposure_rules.Campaign._month_shown>`)."""
    finding = next((f for f in decision.findings if f.code == "campaign_detected"), None)
    if finding is None or decision.facts is None:
        return
    symbol = decision.facts.symbol
    evidence = {
        "accounts": finding.evidence.get("accounts", 0),
        "risky_accounts": finding.evidence.get("risky_accounts", 0),
        "window_hours": finding.evidence.get("hours", 0),
        **_month_shown(finding.evidence),
    }
    flag, created = CampaignFlag.objects.get_or_create(
        symbol=symbol, defaults={"flagged_at": now, **evidence}
    )
    if not created and not flag.active:
        # SECURITY: the evidence of this finding, not of the flag an admin cleared before: the month's arm
        # re-flagged a stock showing "9 accounts within 6 hours" from the first flag, and her clearing on
        # that evidence started the month again (red team, round sixty-six).
        flag.active, flag.flagged_at, flag.cleared_at, flag.cleared_by = True, now, None, ""
        for name, value in evidence.items():
            setattr(flag, name, value)
        # The month's judged start (month_judged_until) stays: what an admin judged of the month stays judged.
        flag.save(update_fields=["active", "flagged_at", "cleared_at", "cleared_by", *evidence])
    elif not created:
        return
    logger.warning("authguard campaign flagged symbol=%s accounts=%s", symbol, flag.accounts)
    summary = _("%(accounts)s accounts bought %(symbol)s within %(hours)s hours; further buys are held.") % {
        "accounts": flag.accounts,
        "symbol": symbol,
        "hours": flag.window_hours,
    }
    if flag.month_volume is not None:
        # The month's buys on every flag, whichever arm raised it: what the desk's clearing judges.
        figures = {
            "month_hours": flag.month_hours,
            "month_accounts": flag.month_accounts,
            "month_volume": f"{flag.month_volume:,.0f}",
            "share": flag.month_share,
        }
        if flag.month_over:
            month = _(
                "Within %(month_hours)s hours %(month_accounts)s accounts bought %(month_volume)s of it, "
                "%(share)s days of its traded value: clearing this flag starts that count again."
            )
        else:
            month = _(
                "Within %(month_hours)s hours %(month_accounts)s accounts bought %(month_volume)s of it, "
                "%(share)s days of its traded value: clearing this flag does not start that count again."
            )
        summary = f"{summary} {month % figures}"
    notify_staff(
        "campaign_flagged",
        context={
            "summary": summary,
            "accounts": flag.accounts,
            "time": now,
        },
        dedupe_key=f"campaign:{symbol}:{now.isoformat()}",
    )


def _month_shown(evidence: dict[str, Any]) -> dict[str, Any]:
    """The flag's fields of the month (:meth:`Campaign._month_shown
    <authguard.orders.exposure_rules.Campaign._month_shown>`) from a ``campaign_detected`` finding's
    evidence."""
    volume, share = evidence.get("month_volume"), evidence.get("month_share")
    return {
        "arm": str(evidence.get("arm", "")),
        "month_hours": evidence.get("month_hours"),
        "month_accounts": evidence.get("month_accounts"),
        "month_volume": None if volume is None else Decimal(str(volume)),
        # Bounded to the column (a daily value of a few yen makes any buy millions of days).
        "month_share": None if share is None else min(Decimal(str(share)), _MAX_SHARE),
        # SECURITY: only a flag that showed the month over its share starts it again when cleared (round 75).
        "month_over": bool(evidence.get("month_over")),
    }


def clear_flag(flag: CampaignFlag, *, by: str, now: datetime) -> bool:
    """Clear ``flag`` (an admin's judgement, the console's action) if it is still active; whether it was.

    SECURITY: the month's count starts again only when the flag showed the admin the month over its share
    (``month_over``), and from the moment it was raised (``flagged_at``), not the clearing: she forgives the
    buys it showed her, not a decoy's (the 24-hour arm's flag raised by three of the gang's own cancelled
    buys: red team, round seventy-five), nor buys placed while it was up. A clearing of another arm's flag
    keeps the month's start where it was.
    """
    # SECURITY: the flag's own raising for a flag that showed the month over its share; else as it was.
    judged = Case(When(month_over=True, then=F("flagged_at")), default=F("month_judged_until"))
    updated = CampaignFlag.objects.filter(pk=flag.pk, active=True).update(
        active=False, cleared_at=now, cleared_by=by[:150], month_judged_until=judged
    )
    return bool(updated)


__all__ = ["CAMPAIGN_LOCK_KEY", "clear_flag", "flag_campaign", "illiquid_buy_facts"]
