"""Finished days of the ledger rolled into day totals (issue 11, acceptance 3): the same exposure, fewer rows.

The order guard's windows must add up to exactly what they added up to before a roll-up, for any ledger
(sides, symbols, illiquid buys, held, cancelled and expired orders, days and hours), and a held order that
becomes placed after its day was rolled up must still count, once.
"""

from __future__ import annotations

import importlib
import random
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.db.models import F

from authguard.models import GuardedOrder, GuardStatus, OrderDayTotal
from authguard.orders import exposure, long_sells, rollup, vouching
from authguard.tasks import roll_up_orders

NOW = datetime(2026, 12, 3, 14, 37, 21, tzinfo=dt_timezone.utc)
WINDOWS = [24, 48, 168, 720]
SYMBOLS = ["7203", "6758", "7Z2A", "9984"]
STATUSES = [GuardStatus.PLACED] * 6 + [GuardStatus.HELD, GuardStatus.CANCELLED, GuardStatus.EXPIRED]


def _ledger(user: Any, *, rows: int, seed: int, now: datetime = NOW) -> list[GuardedOrder]:
    rng = random.Random(seed)
    orders = []
    for _ in range(rows):
        illiquid = rng.random() < 0.3
        amount = Decimal(rng.randrange(1_000, 3_000_000)) / 100
        # About one thin buy in four bought far below its long-run price: the ledger charges it at that price,
        # 40 times its amount, which the sell limits' base takes out (red team, round seventy-six).
        weight = Decimal(40) if int(amount * 100) % 4 == 0 else Decimal("0.8")
        orders.append(
            GuardedOrder(
                user=user,
                created_at=now - timedelta(seconds=rng.randrange(40 * 24 * 3600)),
                side=rng.choice(["buy", "sell"]),
                symbol=rng.choice(SYMBOLS),
                quantity=1,
                amount=amount,
                currency="JPY",
                status=rng.choice(STATUSES),
                illiquid=illiquid,
                illiquidity=0.8 if illiquid else 0.0,
                illiquid_amount=(amount * weight).quantize(Decimal("0.01")) if illiquid else Decimal(0),
                vouched=rng.random() < 0.5,
            )
        )
    return GuardedOrder.objects.bulk_create(orders)


def _totals(user: Any, *, now: datetime = NOW, symbol: str = "7203") -> tuple[Any, bool, Any, bool, float]:
    return exposure.ledger_totals(
        user, now=now, hours=WINDOWS, symbol=symbol, held_seconds=300, trust_days=14
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rolled_up_days_give_exactly_the_long_count_of_unvouched_thin_buys(
    user_factory: Any, seed: int
) -> None:
    """The long count (``vouching.thin_since_confirmation``) reads only buys no passkey vouched for, from the
    ledger and from the rolled-up days alike: the same sum before and after a roll-up, when the count starts
    at a midnight (a rolled day counts whole from the day the count starts in)."""
    user = user_factory("busy")
    _ledger(user, rows=600, seed=seed)
    days = 35
    now = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    raw = vouching.thin_since_confirmation(user, now=now, days=days).amount
    expected = sum(
        (
            o.illiquid_amount
            for o in GuardedOrder.objects.filter(
                user=user, side="buy", vouched=False, status__in=[GuardStatus.PLACED, GuardStatus.HELD],
                created_at__gte=now - timedelta(days=days),
            )
        ),
        Decimal(0),
    )  # fmt: skip
    assert raw == expected and raw > 0
    assert GuardedOrder.objects.filter(user=user, vouched=True, illiquid=True, side="buy").exists()
    rollup.roll_up(user.pk, before=rollup.rollable_before(NOW))
    assert vouching.thin_since_confirmation(user, now=now, days=days).amount == raw


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rolled_up_days_give_exactly_the_buys_the_sells_long_count_takes_out(
    user_factory: Any, seed: int
) -> None:
    """The sells' long count (``long_sells.sells_since_confirmation``) takes each placed buy since its start
    out of the base at what the base counts of it, the larger of its amount and its ``illiquid_amount`` (a
    thin stock bought below its long-run price: at that price), from the ledger and from the rolled-up days
    (``OrderDayTotal.counted_extra``) alike: the same before and after a roll-up."""
    user = user_factory("busy")
    _ledger(user, rows=600, seed=seed)
    days = 35
    now = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    raw = long_sells.sells_since_confirmation(user, now=now, days=days).bought
    buys = GuardedOrder.objects.filter(
        user=user, side="buy", status=GuardStatus.PLACED, created_at__gte=now - timedelta(days=days)
    )
    assert raw == sum((max(o.amount, o.illiquid_amount) for o in buys), Decimal(0))
    assert raw > sum((o.amount for o in buys), Decimal(0))
    rollup.roll_up(user.pk, before=rollup.rollable_before(NOW))
    assert GuardedOrder.objects.filter(rolled=True, side="buy", illiquid_amount__gt=F("amount")).exists()
    assert long_sells.sells_since_confirmation(user, now=now, days=days).bought == raw


def test_the_upgrade_gives_the_days_rolled_up_before_it_their_counted_extra(user_factory: Any) -> None:
    """Migration 0038 fills ``counted_extra`` of the days rolled up before it from their own ledger rows (a
    roll-up marks them, never deletes them): exactly what a roll-up now writes."""
    user = user_factory("busy")
    _ledger(user, rows=600, seed=7)
    rollup.roll_up(user.pk, before=rollup.rollable_before(NOW))
    rolled = OrderDayTotal.objects.filter(user=user)
    expected = dict(rolled.values_list("pk", "counted_extra"))
    assert any(expected.values())
    rolled.update(counted_extra=0)
    upgrade = importlib.import_module("authguard.migrations.0038_order_day_total_counted_extra")
    upgrade.rolled_buys_below_reference(apps, None)
    assert dict(rolled.values_list("pk", "counted_extra")) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rolled_up_days_give_exactly_the_windows_of_the_raw_ledger(user_factory: Any, seed: int) -> None:
    user = user_factory("busy")
    _ledger(user, rows=600, seed=seed)
    before = {symbol: _totals(user, symbol=symbol) for symbol in SYMBOLS}
    # Thin buys bought below their long-run price, rolled up and not: the base counts them at that price.
    assert before["7203"][0][720].buys_counted > before["7203"][0][720].buys_placed
    rolled = rollup.roll_up(user.pk, before=rollup.rollable_before(NOW))
    assert rolled > 200 and OrderDayTotal.objects.filter(user=user).count() > 30
    # Sells no passkey vouched for stay in the ledger: the sells' long count forgives them per browser.
    assert not GuardedOrder.objects.filter(rolled=True, side="sell", vouched=False).exists()
    # Only placed orders of finished days were rolled; held ones and the last 24 hours stay in the ledger.
    assert not GuardedOrder.objects.filter(rolled=True).exclude(status=GuardStatus.PLACED).exists()
    assert not GuardedOrder.objects.filter(rolled=True, created_at__gte=NOW - timedelta(hours=24)).exists()
    for symbol in SYMBOLS:
        assert _totals(user, symbol=symbol) == before[symbol]
    # A second roll-up finds nothing more to do and changes nothing.
    assert rollup.roll_up(user.pk, before=rollup.rollable_before(NOW)) == 0
    assert _totals(user) == before["7203"]


def test_windows_that_reach_into_rolled_days_only_get_longer(user_factory: Any) -> None:
    """A window reaching back before the rollable days starts at the midnight (UTC) before its start, never
    later; the shortest window (24 h) is exact."""
    user = user_factory("busy")
    windows, *_ = _totals(user)
    assert windows[24].start == NOW - timedelta(hours=24)
    for hours in (48, 168, 720):
        exact = NOW - timedelta(hours=hours)
        assert exact - timedelta(days=1) < windows[hours].start <= exact
        assert windows[hours].start == exact.replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_sell_just_inside_the_rounded_start_counts_in_the_week(user_factory: Any) -> None:
    user = user_factory("busy")
    week_start = (NOW - timedelta(hours=168)).replace(hour=0, minute=0, second=0, microsecond=0)
    GuardedOrder.objects.create(
        user=user, created_at=week_start + timedelta(minutes=1), side="sell", symbol="7203", quantity=1,
        amount=Decimal(5_000_000), currency="JPY", status=GuardStatus.PLACED, vouched=True,
    )  # fmt: skip
    before, *_ = _totals(user)
    assert rollup.roll_up(user.pk, before=rollup.rollable_before(NOW)) == 1
    after, *_ = _totals(user)
    assert before[168].sells_placed == after[168].sells_placed == Decimal(5_000_000)
    assert after[24].sells_placed == after[48].sells_placed == 0


def test_a_held_order_confirmed_after_its_day_was_rolled_up_counts_once(user_factory: Any) -> None:
    user = user_factory("busy")
    _ledger(user, rows=200, seed=4)
    held = GuardedOrder.objects.create(
        user=user, created_at=NOW - timedelta(days=3), side="sell", symbol="7203", quantity=1,
        amount=Decimal(7_000_000), currency="JPY", status=GuardStatus.HELD, vouched=True,
    )  # fmt: skip
    before, *_ = _totals(user)
    rollup.roll_up(user.pk, before=rollup.rollable_before(NOW))
    held.refresh_from_db()
    assert not held.rolled  # held orders are never rolled
    # Confirmed later (as orders.held does): placed now, still unrolled, so it counts from the ledger.
    GuardedOrder.objects.filter(pk=held.pk).update(status=GuardStatus.PLACED)
    after, *_ = _totals(user)
    assert after[168].sells_placed == before[168].sells_placed + Decimal(7_000_000)
    assert after[168].sells_held == before[168].sells_held - Decimal(7_000_000)
    # The next roll-up moves it into its day's total: the week still counts it exactly once.
    assert rollup.roll_up(user.pk, before=rollup.rollable_before(NOW)) == 1
    assert _totals(user)[0] == after


def test_the_periodic_task_rolls_busy_accounts_only(user_factory: Any, settings: Any) -> None:
    busy, quiet = user_factory("busy"), user_factory("quiet")
    _ledger(busy, rows=400, seed=5)
    _ledger(quiet, rows=20, seed=6)
    quiet_before = _totals(quiet)
    busy_before = _totals(busy)
    assert rollup.roll_up_accounts(now=NOW) > 100
    assert OrderDayTotal.objects.filter(user=busy).exists()
    assert not OrderDayTotal.objects.filter(user=quiet).exists()  # fewer than ROLL_AFTER_ROWS: left raw
    assert _totals(busy) == busy_before and _totals(quiet) == quiet_before
    # The Celery task (eager in the tests) is the same call with the clock's now: nothing left to roll.
    assert roll_up_orders.delay().get() == 0
