"""Closed days of the ledger summed into :class:`~authguard.models.OrderDayTotal` rows.

Issue 11, acceptance 3: a check's cost must not grow with the account's orders. :func:`ledger_totals
<authguard.orders.exposure.ledger_totals>` reads the ledger rows not yet rolled up (the last day or two, and
held orders) and one total per earlier day of its longest window. :func:`roll_up` moves placed orders of
finished days into those totals; the periodic task ``authguard.roll_up_orders`` (:func:`roll_up_accounts`)
does it for every account with at least :data:`ROLL_AFTER_ROWS` such rows. Without it (a portal with no
Celery beat) nothing is wrong, a busy account's check only reads more rows.

Exactness is the whole point of the design: a placed order is counted either from the ledger (``rolled`` is
false) or from its day's total (``rolled`` is true), and :func:`roll_up` flips the flag and adds the amounts
in one transaction that rolls back when any row was rolled meanwhile by someone else. Held orders are never
rolled (they may still become placed, cancelled or expired), and a placed order never changes again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, F, Q

from authguard.models import GuardedOrder, GuardStatus, OrderDayTotal
from authguard.orders.exposure_rules import MAX_UNVOUCHED_DAYS

#: Thin buys no passkey vouched for stay in the ledger while the long count reads them: it forgives them per
#: placing browser (``GuardedOrder.device_hash``), which a day's total does not keep (red team, round
#: fifty-nine). Past this many days (the count's default ``unvouched_days`` and a day) they are rolled up, so
#: the partial index of unrolled rows does not grow for good.
UNVOUCHED_KEPT_DAYS = MAX_UNVOUCHED_DAYS + 1
UNVOUCHED_THIN = Q(side="buy", vouched=False, illiquid_amount__gt=0)
#: Sells no passkey vouched for stay in the ledger as long, for the same reason: the long count of sells
#: forgives them per placing browser (:mod:`authguard.orders.long_sells`, red team, round seventy-three).
UNVOUCHED_SELLS = Q(side="sell", vouched=False)


def _kept_unvouched(before: datetime) -> Q:
    """The unvouched thin buys a roll-up before ``before`` leaves in the ledger."""
    return (UNVOUCHED_THIN | UNVOUCHED_SELLS) & Q(
        created_at__gte=before - timedelta(days=UNVOUCHED_KEPT_DAYS)
    )


logger = logging.getLogger(__name__)

#: Unrolled placed orders of finished days that make the periodic task roll an account up (fewer cost
#: less to read than to roll).
ROLL_AFTER_ROWS = 48


class RollupConflict(Exception):
    """Another process rolled some of the same rows first: this roll-up is undone (nothing counts twice)."""


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of the day ``moment`` falls in: the days of :class:`OrderDayTotal` are UTC days."""
    utc = moment.astimezone(dt_timezone.utc)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def rollable_before(now: datetime) -> datetime:
    """Orders created before this are rolled up: midnight UTC a day before ``now``'s day, so every row of the
    last 24 hours (the shortest window's) stays in the ledger and that window stays exact."""
    return day_start(now) - timedelta(days=1)


def roll_up(user_id: int, *, before: datetime) -> int:
    """Sum ``user_id``'s placed, unrolled orders created before ``before`` into their days' totals and mark
    them rolled, in one transaction; return how many rows were rolled.

    Raises :class:`RollupConflict` (after rolling back) when another process rolled or changed some of the
    rows in between; the rows then stay counted exactly once, wherever they are.
    """
    with transaction.atomic():
        rows = list(
            GuardedOrder.objects.select_for_update()
            .filter(user_id=user_id, status=GuardStatus.PLACED, rolled=False, created_at__lt=before)
            .exclude(_kept_unvouched(before))
            .values_list(
                "pk", "created_at", "side", "symbol", "amount", "illiquid", "illiquid_amount", "vouched"
            )
        )
        if not rows:
            return 0
        # SECURITY: flip the flags first and check every one flipped; a concurrent roll-up (SQLite has no row
        # locks) would otherwise add the same amounts twice.
        flipped = GuardedOrder.objects.filter(
            pk__in=[row[0] for row in rows], rolled=False, status=GuardStatus.PLACED
        ).update(rolled=True)
        if flipped != len(rows):
            raise RollupConflict(f"{len(rows) - flipped} of {len(rows)} rows were rolled meanwhile")
        for (day, symbol), sums in _day_sums(rows).items():
            _add(user_id, day, symbol, sums)
    return len(rows)


def _day_sums(rows: list[tuple]) -> dict[tuple[date, str], dict[str, Decimal | int]]:
    sums: dict[tuple[date, str], dict[str, Decimal | int]] = defaultdict(
        lambda: {
            "sells": Decimal(0),
            "buys": Decimal(0),
            "illiquid_buys": 0,
            "illiquid_amount": Decimal(0),
            "unvouched_illiquid_amount": Decimal(0),
            "counted_extra": Decimal(0),
        }
    )
    for _pk, created_at, side, symbol, amount, illiquid, illiquid_amount, vouched in rows:
        day = day_start(created_at).date()
        account = sums[(day, "")]
        if side == "sell":
            account["sells"] += amount
            continue
        account["buys"] += amount
        account["illiquid_buys"] += int(bool(illiquid))
        account["illiquid_amount"] += illiquid_amount
        if not vouched:
            account["unvouched_illiquid_amount"] += illiquid_amount
        # SECURITY: the sell limits' base takes each buy out at what it counts of it (exposure.COUNTED_BUY:
        # the larger of its amount and its illiquid_amount, a thin stock bought below its long-run price at
        # that price; red team, round seventy-six), from the ledger and from the days alike. A column, not an
        # argument: a thief's crash buy stays in the ledger for UNVOUCHED_KEPT_DAYS (UNVOUCHED_THIN), but
        # her own vouched ones roll, a slow horizon may reach further back, and a day's GREATEST(buys,
        # illiquid_amount) counts a crash buy beside a larger liquid buy of the day at nothing: rolling a day
        # up must not widen the base.
        account["counted_extra"] += max(illiquid_amount - amount, Decimal(0))
        sums[(day, symbol)]["buys"] += amount
    return sums


def _add(user_id: int, day: date, symbol: str, sums: dict[str, Decimal | int]) -> None:
    increments = {name: F(name) + value for name, value in sums.items() if value}
    if not increments:
        return
    if OrderDayTotal.objects.filter(user_id=user_id, day=day, symbol=symbol).update(**increments):
        return
    # A new day (or symbol): a concurrent creation fails the unique constraint and undoes the whole roll-up.
    OrderDayTotal.objects.create(user_id=user_id, day=day, symbol=symbol, **sums)


def roll_up_accounts(*, now: datetime, min_rows: int = ROLL_AFTER_ROWS, limit: int = 1000) -> int:
    """Roll up every account (at most ``limit`` per run) with at least ``min_rows`` placed orders of finished
    days not yet rolled; return how many rows were rolled. An account whose roll-up fails is logged and left
    as it was (its checks still count every order, from the ledger) and the next run tries again."""
    before = rollable_before(now)
    busy = (
        GuardedOrder.objects.filter(rolled=False, status=GuardStatus.PLACED, created_at__lt=before)
        .exclude(_kept_unvouched(before))
        .values("user_id")
        .annotate(rows=Count("pk"))
        .filter(rows__gte=min_rows)
        .values_list("user_id", flat=True)[:limit]
    )
    rolled = 0
    for user_id in list(busy):
        try:
            rolled += roll_up(user_id, before=before)
        except (RollupConflict, IntegrityError, DatabaseError):
            logger.warning(
                "authguard: rolling up the orders of user %s failed; they stay in the ledger", user_id
            )
    return rolled


__all__ = ["ROLL_AFTER_ROWS", "RollupConflict", "day_start", "roll_up", "roll_up_accounts", "rollable_before"]
