"""Sells the customer never vouched for: the exposure rule's long count of sells (issue 8, round 73).

The week's and the month's liquidation shares roll: a thief who kept her session past the trust week sold
just under the month's 80 % every month and had 94.7 % of her holdings sold in seven weeks without one hold
(red team, round seventy-three). What rolls for him must not roll for a session she has not vouched for, as
for thin buys (:mod:`authguard.orders.vouching`): a sell from a session no passkey verified also counts every
sell from such sessions since her last confirmation of a hold of this count, per placing browser, up to
``Exposure.unvouched_days`` back (:func:`sells_since_confirmation`), against the holdings at that point.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from authguard import statements
from authguard.choices import GuardStatus
from authguard.models import GuardedOrder, HeldOrder, OrderDayTotal
from authguard.orders.exposure import COUNTED_BUY, _as_datetime, _money
from authguard.orders.exposure_rules import LIQUIDATION_UNVOUCHED_FINDING
from authguard.orders.vouching import _UTC_DAY, STAFF_METHOD, UnvouchedThin, forgiving_confirmations


@functools.lru_cache(maxsize=4)
def _sums_sql(vendor: str) -> str:
    """In one statement: the latest confirmation of a hold of this count from this request's browser; the
    sells no passkey vouched for, each counted unless a confirmation from its own browser came after it (as
    :func:`authguard.orders.vouching._sums_sql` forgives thin buys); the buys placed since that
    confirmation, each at what today's holdings count of it (:data:`COUNTED_BUY`), from the ledger and from
    the days rolled up from its day on, which the holdings at that point leave out."""
    q = connection.ops.quote_name
    ledger = q(GuardedOrder._meta.db_table)
    days = q(OrderDayTotal._meta.db_table)
    # SECURITY: only the models' own (quoted) table names are formatted in; every value is a parameter. Only
    # her own factor (not the desk's release) on a hold that showed her this count restarts it, and only for
    # the sells of the browser she confirmed from (the buys' long count's rounds 58, 59 and 64: the same SQL).
    _confirmations, mine, forgiven = forgiving_confirmations()
    since = f"COALESCE(({mine}), %s)"
    day_of_since = _UTC_DAY.get(vendor, "CAST(({}) AS DATE)").format(since)
    return (
        f"SELECT 'last', NULL, ({mine})"  # noqa: S608
        f" UNION ALL SELECT 'sells', SUM(g.amount), NULL FROM {ledger} g"
        " WHERE g.user_id = %s AND g.created_at >= %s AND NOT g.rolled AND NOT g.vouched AND g.side = 'sell'"
        f" AND g.status IN (%s, %s) AND NOT EXISTS ({forgiven})"
        # SECURITY: every buy comes out of the base in full, as the week's and the month's do (battery case
        # 51): a thin buy counted only for its liquid part, while today's holdings count the thin position at
        # its long-run price, let a thief buy 9.6 % into a small cap first and sell 87.5 % of her large caps
        # unheld (red team, round seventy-four). In full is at what the base counts, not at what was paid:
        # see COUNTED_BUY (round seventy-six); a rolled-up day at its buys and their counted_extra.
        f" UNION ALL SELECT 'buys', SUM({COUNTED_BUY.format(g='g.')}), NULL FROM {ledger} g"
        f" WHERE g.user_id = %s AND g.created_at >= {since} AND NOT g.rolled AND g.side = 'buy'"
        " AND g.status = %s"
        f" UNION ALL SELECT 'days', SUM(buys + counted_extra), NULL FROM {days}"  # noqa: S608
        f" WHERE user_id = %s AND symbol = '' AND day >= {day_of_since}"
    )


def vouched_sell(*, now: datetime, days: int) -> UnvouchedThin:
    """What a sell from a vouched session carries: no count (none was read); its ledger row is marked."""
    return UnvouchedThin(since=now, amount=Decimal(0), days=days, confirmed=False, vouched=True)


def sells_since_confirmation(user: Any, *, now: datetime, days: int, device: str = "") -> UnvouchedThin:
    """The account's sells from sessions no passkey vouched for (placed or held) within ``days``, less those
    of each browser that its own confirmation of a hold of this count came after, as ``amount``; and the
    buys placed since ``since`` (the later of ``days`` ago and the last such confirmation from ``device``),
    each at what today's holdings count of it (:data:`~authguard.orders.exposure.COUNTED_BUY`), as
    ``bought``: one statement, whatever the history.

    The days rolled up count their buys whole from the day ``since`` falls in: the holdings at that point
    (today's, plus what was sold, less what was bought) can only come out smaller, never larger."""
    start = now - timedelta(days=days)
    uid = statements.user_id(user.pk)
    adapt = connection.ops.adapt_datetimefield_value
    finding = f"%{LIQUIDATION_UNVOUCHED_FINDING}%"
    held = [uid, HeldOrder.Status.CONFIRMED, adapt(start), adapt(now), STAFF_METHOD, finding]
    mine = [*held, device, device]
    params = [*mine]
    params += [uid, adapt(start), GuardStatus.PLACED, GuardStatus.HELD, *held]
    params += [uid, *mine, adapt(start), GuardStatus.PLACED]
    params += [uid, *mine, adapt(start)]
    sold = bought = Decimal(0)
    confirmed_at: datetime | None = None
    for part, value, when in statements.fetch_all(_sums_sql(connection.vendor), params):
        if part == "last":
            confirmed_at = None if when is None else _as_datetime(when)
        elif part == "sells":
            sold += _money(value)
        else:
            bought += _money(value)
    return UnvouchedThin(
        since=confirmed_at or start,
        amount=sold,
        days=days,
        confirmed=confirmed_at is not None,
        bought=max(bought, Decimal(0)),
    )


__all__ = ["sells_since_confirmation", "vouched_sell"]
