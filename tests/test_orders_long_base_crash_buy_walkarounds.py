"""Red team, round seventy-six (held since): the sells' long count's base after round seventy-four's fix
(every buy since her last confirmation out of the base "in full", authguard/orders/long_sells.py), and the
week's and the month's base (``OrderFacts.sold_share``), against a thin position bought far below its
long-run price.

Real demo endpoints (``POST /api/orders``, authguard's cancel API), the demo's market-data path
(``services.sync_instruments``) for the gang's prints, the battery's simulated clock and long-standing
customer. Nothing of authguard is mocked. The order-guard fixture scores no sign-in (the thief's own browser
is let in, as in rounds 73 and 74).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

import pytest

from authguard.models import GuardedOrder, HeldOrder, Notification
from authguard.orders import exposure, long_sells, rollup
from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS

from . import test_battery_exposure as battery
from .test_battery_exposure import value
from .test_orders_long_liquidation_walkarounds import LARGE_CAPS, _allowed
from .test_orders_long_sells_base_walkarounds import PUMP, PUMP_PRICE, _large_caps, _pump, _sell

start = battery.start
clock = battery.clock

ROWS = {row.symbol: row for row in INSTRUMENTS}
#: PUMP: Sakuragawa Logistics (fictional, ¥1,050, about ¥105 million a day), the gang's thin stock (weight
#: 1), and the helpers, as in round seventy-four.


def _market(symbol: str, *, divide: int = 1) -> None:
    """The day's row for ``symbol``: the gang's wash trades print it at 1/``divide`` of its price with
    ``divide`` times its volume (the same yen a day); long-run figures kept, as the sync keeps them."""
    row = ROWS[symbol]
    services.sync_instruments(
        [
            replace(
                row,
                price=(row.price / divide).quantize(Decimal("0.1")),
                avg_daily_volume=row.avg_daily_volume * divide,
            )
        ]
    )


def _normal(symbol: str) -> None:
    services.sync_instruments([ROWS[symbol]])


def _run(
    order_api: Any, clock_: Any, name: str, *, crash: int
) -> tuple[Decimal, Decimal, int, int, list[str], Decimal]:
    """Round 74's schedule: day 8 the thin buy (at 1/``crash`` of its price), then sells just under every
    window and under the long count as the thief reads the fixed long_sells.py (today's holdings, plus his
    sells, less what the ledger says was bought since)."""
    victim = battery.customer(name, cash=1_200_000, holdings=LARGE_CAPS)
    start_large = _large_caps(victim)
    thief = order_api()
    held: list[dict[str, Any]] = []
    log: list[str] = []
    sells: list[tuple[float, Decimal]] = []
    unvouched = Decimal(0)
    clock_(0)
    battery.sign_in(thief, victim.username)
    clock_(8)
    battery.sign_in(thief, victim.username)
    total = value(victim).total_value
    quantity = int(Decimal("0.096") * total / PUMP_PRICE)
    if crash > 1:
        _market(PUMP, divide=crash)
    answer = thief.order("buy", PUMP, quantity).json()
    assert answer["status"] == "placed", answer
    paid = Decimal(answer["order"]["amount_jpy"])
    if crash > 1:
        _normal(PUMP)
    log.append(
        f"day 8: {quantity} {PUMP} bought for ¥{paid:,.0f}, worth ¥{_pump(victim):,.0f} at the normal print"
    )
    for day in (8, 16, 24, 32, 40, 48, 56, 64):
        clock_(day)
        battery.sign_in(thief, victim.username)
        window_holdings = value(victim).holdings_value - (paid if day - 8 < 31 else 0)
        long_room = Decimal("0.79") * (value(victim).holdings_value + unvouched - paid) - unvouched
        budget = min(_allowed(sells, day, window_holdings, changed=False), max(long_room, Decimal(0)))
        sold = _sell(thief, victim, budget, held)
        sells.append((day, sold))
        unvouched += sold
        log.append(f"day {day}: sold ¥{sold:,.0f}")
    ledger_sells = sum(
        (g.amount for g in GuardedOrder.objects.filter(user=victim, side="sell", status="placed")), Decimal(0)
    )
    assert abs(ledger_sells - unvouched) < 100
    holds = HeldOrder.objects.filter(user=victim).count()
    notices = Notification.objects.filter(user=victim, kind="order_held").count()
    return unvouched, start_large, holds, notices, log, paid


@pytest.mark.django_db
def test_a_crash_bought_thin_position_widens_the_long_counts_base_by_its_long_run_value(
    order_api: Any, clock: Any
) -> None:
    """Secure: docs/order-guard.md ("Sells that do not renew without her either"): from a session no passkey
    vouched for, his sells since her last confirmation of that count must not pass 80 %
    (``slow_max_liquidation_share``) of "her holdings at that point" without a hold only her passkey
    releases; "the buys only keep the base from counting stock bought with her cash"; round seventy-four:
    "every buy placed since, in full".

    Attack: round seventy-four's thief, having read the fix. Day 8 (his browser known, the account no
    longer "changed"), the gang prints its thin stock 5Z4A at a hundredth of its price for minutes (its wash
    trades at a hundred times the volume: the yen a day unchanged, round thirty-seven's crash). He buys
    1,019 shares with her cash for ¥10,700 (a buy below the long-run price is never held; the thin budgets
    charge it at its long-run price, ¥1.07 million, 9.6 % of her portfolio, under the month's and the long
    count's 10 %). The print returns to ¥1,050. From then on he sells her large caps just under every window
    and just under the long count as the fixed code computes it: 80 % of (today's trusted holdings, the
    5Z4A position at ¥1.07 million, its long-run price, plus his sells, less the ledger's buys: ¥10,700).
    Measured (SQLite and PostgreSQL): ¥8.70 million, 87.4 % of her ¥9.95 million of large caps, sold by day
    40 (day 8 ¥5.18 million, day 16 ¥2.74 million, day 24 ¥0.56 million, day 40 ¥0.22 million), not one order
    held and not one notice to her. The control below (the same buy at the normal price) stays under 80 %: the
    crash is worth about ¥0.75 million more of her large caps sold without her (round seventy-four's 87.5 %
    again, the gang paying ¥1.06 million of its own stock for it, which it owns anyway).

    Root cause: authguard/orders/long_sells.py:_sums_sql takes each buy out at ``SUM(g.amount)``, what was
    paid, while authguard/orders/facts.py:_base_holdings counts the thin position at its value up to 1.3 x its
    long-run price: a buy below the long-run price is added to "her holdings at that point" at its long-run
    value and taken out at its price. The thin budgets already charge such a buy at its long-run price
    (``OrderFacts.counted_amount``, round thirty-seven), and the ledger keeps it
    (``GuardedOrder.illiquid_amount`` = weighted amount plus ``counted_amount - amount``). The month's base
    (``OrderFacts.sold_share``, ``buys_placed``) subtracts the same paid amount.

    Fix: take each buy out at no less than what the base can count of it: ``SUM(GREATEST(g.amount,
    g.illiquid_amount))`` (and the rolled-up days' ``GREATEST(buys, illiquid_amount)``), or record
    ``counted_amount`` in the ledger and subtract that; the same for ``buys_placed`` in the week's and the
    month's base."""
    sold, large, holds, notices, log, paid = _run(order_api, clock, "r76crash", crash=100)
    share = sold / large
    assert paid < Decimal(20_000), log
    assert holds or share <= Decimal("0.805"), (
        f"sold ¥{sold:,.0f} of her ¥{large:,.0f} of large caps ({share:.1%}), {holds} holds, {notices}"
        " notices; " + "; ".join(log)
    )


@pytest.mark.django_db
def test_held_the_same_thin_buy_at_its_normal_price_leaves_him_at_80_percent(
    order_api: Any, clock: Any
) -> None:
    """The control: the same schedule, the buy at the normal ¥1,050 (¥1.07 million out of the base in full,
    round seventy-four's fix): no more than 80 % of her large caps without a hold."""
    sold, large, holds, _notices, log, _paid = _run(order_api, clock, "r76ctl", crash=1)
    assert sold / large <= Decimal("0.805"), log


@pytest.mark.django_db
def test_cost_she_buys_a_small_cap_on_a_real_dip_then_sells_three_quarters_of_her_large_caps(
    order_api: Any, clock: Any
) -> None:
    """What a fix (buys out of the base at their long-run value) must keep: Tanaka, from her usual browser
    with her password alone, buys 9 % of her portfolio in 5Z4A on a real 10 % dip (¥945, a little more
    volume: the usual yen a day), the dip lasts, and she sells 30 %, 25 % and 20 % of her large caps on days
    1, 9 and 45: all placed. (At its long-run value the buy leaves her base 0.9 % under her large caps: 75 %
    is under 80 %.)"""
    user = battery.customer("r76cost", cash=1_200_000, holdings=LARGE_CAPS)
    start_large = _large_caps(user)
    her = order_api()
    her.login_usual(user.username, battery.PASSWORD, days=400)
    clock(0)
    battery.sign_in(her, user.username)
    services.sync_instruments(
        [replace(ROWS[PUMP], price=Decimal(945), avg_daily_volume=112_000, history_since=None)]
    )
    quantity = int(Decimal("0.09") * value(user).total_value / PUMP_PRICE)
    bought = her.order("buy", PUMP, quantity).json()
    assert bought["status"] == "placed", bought.get("confirmation", {}).get("reasons")
    held: list[dict[str, Any]] = []
    for day, share in ((1, "0.30"), (9, "0.25"), (45, "0.20")):
        clock(day)
        battery.sign_in(her, user.username)
        _sell(her, user, Decimal(share) * start_large, held)
    assert not held, held


@pytest.mark.django_db
def test_held_cancelling_each_hold_he_still_sells_no_more_than_80_percent(order_api: Any, clock: Any) -> None:
    """The attack above, with the holds counted as nothing: he cancels each held sell (she gets its notice)
    and goes on with the next stock. Fixing the week's and the month's base alone left him 87.4 % of her
    large caps sold by day 40 (day 40: ¥0.75 million more, sells from day 8 out of the month by then); the
    long count must keep his placed sells at 80 % of her holdings at its start, with the crash-bought
    position out of that base at what today's holdings count of it."""
    sold, large, _holds, _notices, log, _paid = _run(order_api, clock, "r76cancel", crash=100)
    assert sold / large <= Decimal("0.805"), log


def _ledger_buy(user: Any, when: Any, amount: str, counted: str, *, vouched: bool) -> None:
    GuardedOrder.objects.create(
        user=user, created_at=when, side="buy", symbol=PUMP if counted != "0" else "7203", quantity=1_019,
        amount=Decimal(amount), currency="JPY", status="placed", illiquid=counted != "0",
        illiquidity=1.0 if counted != "0" else 0.0, illiquid_amount=Decimal(counted), vouched=vouched,
    )  # fmt: skip


@pytest.mark.django_db
def test_held_a_crash_buy_comes_out_of_every_base_at_its_long_run_value_rolled_up_or_not(
    user_factory: Any,
) -> None:
    """Both statements that take buys out of a sell base (the week's and the month's windows,
    ``exposure.ledger_totals`` -> ``WindowTotals.buys_counted``; the long count, ``long_sells``) take a buy of
    a thin stock bought at a hundredth of its long-run price out at what the ledger charged it
    (``illiquid_amount``: its long-run value), from the ledger and, once its day is rolled up, from the
    day's ``counted_extra``: a vouched crash buy is rolled up beside a ¥2 million liquid buy of the same day
    (a day's ``GREATEST(buys, illiquid_amount)`` would count ¥2.01 million of the ¥3.07 million); an
    unvouched one stays in the ledger (``rollup.UNVOUCHED_THIN``)."""
    user = user_factory("r76ledger")
    now = datetime(2026, 12, 20, tzinfo=dt_timezone.utc)
    _ledger_buy(user, now - timedelta(days=20), "10700", "1069950", vouched=True)
    _ledger_buy(user, now - timedelta(days=20) + timedelta(hours=1), "2000000", "0", vouched=True)
    _ledger_buy(user, now - timedelta(days=10), "10700", "1069950", vouched=False)
    counted = Decimal(2_000_000) + 2 * Decimal(1_069_950)

    def read() -> tuple[Decimal, Decimal, Decimal]:
        windows, *_ = exposure.ledger_totals(
            user, now=now, hours=[168, 720], symbol="7203", held_seconds=300, trust_days=14
        )
        bought = long_sells.sells_since_confirmation(user, now=now, days=35).bought
        return windows[720].buys_placed, windows[720].buys_counted, bought

    assert read() == (Decimal(2_021_400), counted, counted)
    assert rollup.roll_up(user.pk, before=rollup.rollable_before(now)) == 2
    assert GuardedOrder.objects.filter(user=user, rolled=False, side="buy").count() == 1
    assert read() == (Decimal(2_021_400), counted, counted)
