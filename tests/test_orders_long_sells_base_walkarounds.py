"""Red team round seventy-four (longsells; held since): the sells' long count
(``exposure_liquidation_unvouched``, authguard/orders/long_sells.py) against a thief who widens its base
("her holdings at that point").

Real demo endpoints (``POST /api/orders``, authguard's cancel API), the battery's simulated clock, the
battery's long-standing customer (a passkey bound long ago, a home PC of 400 days). Nothing of authguard is
mocked. The order-guard fixture scores no sign-in (the thief's own browser is let in, as in round 73).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from authguard.models import GuardedOrder, HeldOrder, Notification

from . import test_battery_exposure as battery
from .test_battery_exposure import value
from .test_orders_long_liquidation_walkarounds import LARGE_CAPS, _allowed

start = battery.start
clock = battery.clock

#: Sakuragawa Logistics (fictional, ¥1,050, about ¥105 million a day): it weighs 1 to the guard (a thin
#: stock), has a long-run price (its listing price), and a ¥1 million buy is far under its volume limits.
PUMP = "5Z4A"
PUMP_PRICE = Decimal(1050)


def _large_caps(user: Any) -> Decimal:
    return sum((h.value_jpy for h in value(user).holdings if h.symbol != PUMP), Decimal(0))


def _pump(user: Any) -> Decimal:
    return sum((h.value_jpy for h in value(user).holdings if h.symbol == PUMP), Decimal(0))


def _long_room(user: Any, unvouched_sold: Decimal, share: Decimal) -> Decimal:
    """What the thief, who has read long_sells.py, works out the long count still allows: ``share`` of
    (today's trusted holdings, the thin position at its value up to 1.3 x its long-run price, plus his sells
    since the count started, less the *liquid part* of the buys since: his thin buy's is nothing), less his
    sells."""
    holdings = value(user).holdings_value
    return max(share * (holdings + unvouched_sold) - unvouched_sold, Decimal(0))


def _sell(thief: Any, user: Any, budget: Decimal, held: list[dict[str, Any]]) -> Decimal:
    """Sell up to ``budget`` of her large caps, largest first; a held sell is cancelled and recorded."""
    sold = Decimal(0)
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.symbol == PUMP:
            continue
        price = holding.value_jpy / holding.quantity
        quantity = min(holding.quantity, int((budget - sold) / price))
        if quantity <= 0:
            continue
        answer = thief.order("sell", holding.symbol, quantity).json()
        if answer["status"] != "placed":
            held.append(answer)
            thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
            continue
        sold += Decimal(answer["order"]["amount_jpy"])
    return sold


@pytest.mark.django_db
def test_a_thin_buy_first_widens_the_long_counts_base_and_he_sells_88_percent_without_a_hold(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Secure: docs/order-guard.md ("Sells that do not renew without her either"): from a session no
    passkey vouched for, the sells since her last confirmation of that count must not pass
    ``slow_max_liquidation_share`` (80 %) of "her holdings at that point" without a hold only her passkey
    releases; "the buys only keep the base from counting stock bought with her cash". The month's share
    holds the same line (battery case 51: buying first does not raise the liquidation base).

    Attack: round seventy-three's thief (her password, his own browser, allowed; signs in every eight
    days), before selling, puts 9.6 % of her portfolio (¥1.07 million of her cash) into the gang's thin
    stock 5Z4A (weight 1: under the month's 10 % thin budget and under the thin long count's 10 %, so no
    hold). Then he sells her large caps just under every window (a day, a week, a month; the pump bought
    with her cash is left out of the month's base, as the month's rule does) and just under the long count
    as he reads it: 79 % of (her trusted holdings today, which count the thin position at its full value,
    up to 1.3 x its long-run price, plus his sells). Measured (SQLite and PostgreSQL): of her ¥9.95 million
    of large caps ¥8.71 million (87.5 %) sold by day 40 (day 8 ¥4.68 million, day 16 ¥2.48 million, day 24
    ¥0.51 million, day 40 ¥1.04 million), not one order held and not one notice to her; ¥1.07 million of
    her cash is in the thin stock. The control below (no thin buy first) stops at 79 %: the thin buy is
    worth ¥0.75 million more of her large caps sold without her.

    Root cause: authguard/orders/long_sells.py:_sums_sql subtracts each buy "at its amount less its weighted
    thin part" (``amount - illiquid_amount``: nothing for a buy of weight 1), but
    authguard/orders/facts.py:_base_holdings counts a thin position that has a long-run price at its value
    up to 1.3 x that price, i.e. in full: the thin buy made with her cash is added to "her holdings at that
    point" in full and taken out not at all (authguard/orders/exposure_rules.py:Exposure._sells_unvouched,
    ``base = holdings_now + counted.amount - counted.bought``). The month's rule subtracts buys in full
    (``OrderFacts.sold_share``).

    Fix: subtract every buy since ``since`` in full (``SUM(g.amount)`` and ``SUM(buys)`` of the rolled-up
    days), as ``sold_share`` does; or subtract exactly what ``_base_holdings`` counts of the bought
    position (its value up to the reference ceiling, or value x base_weight without one)."""
    victim = battery.customer("rt74base", cash=1_200_000, holdings=LARGE_CAPS, authenticator=authenticator)
    start_large = _large_caps(victim)
    thief = order_api()
    held: list[dict[str, Any]] = []
    log: list[str] = []
    sells: list[tuple[float, Decimal]] = []
    unvouched = Decimal(0)
    # Day 8: his browser is known (the account no longer "changed"): the thin stock first, in one order.
    clock(0)
    battery.sign_in(thief, victim.username)
    clock(8)
    battery.sign_in(thief, victim.username)
    total = value(victim).total_value
    quantity = int(Decimal("0.096") * total / PUMP_PRICE)
    answer = thief.order("buy", PUMP, quantity).json()
    assert answer["status"] == "placed", answer
    log.append(f"day 8: bought ¥{_pump(victim):,.0f} of {PUMP}")
    for day in (8, 16, 24, 32, 40, 48, 56, 64):
        clock(day)
        battery.sign_in(thief, victim.username)
        # The month's base leaves the pump out within 30 days of the buy (OrderFacts.sold_share).
        window_holdings = value(victim).holdings_value - (_pump(victim) if day - 8 < 31 else 0)
        budget = min(
            _allowed(sells, day, window_holdings, changed=False),
            _long_room(victim, unvouched, Decimal("0.79")),
        )
        sold = _sell(thief, victim, budget, held)
        sells.append((day, sold))
        unvouched += sold
        log.append(f"day {day}: sold ¥{sold:,.0f}")
    share = unvouched / start_large
    ledger_sells = sum(
        (g.amount for g in GuardedOrder.objects.filter(user=victim, side="sell", status="placed")), Decimal(0)
    )
    assert abs(ledger_sells - unvouched) < 100
    holds = HeldOrder.objects.filter(user=victim).count()
    notices = Notification.objects.filter(user=victim, kind="order_held").count()
    assert holds or share <= Decimal("0.805"), (
        f"sold ¥{unvouched:,.0f} of her ¥{start_large:,.0f} of large caps ({share:.1%}),"
        f" ¥{_pump(victim):,.0f} of her cash in {PUMP}, {holds} holds, {notices} notices; " + "; ".join(log)
    )


@pytest.mark.django_db
def test_held_the_same_sells_without_the_thin_buy_stop_at_80_percent(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """The control: the same schedule and the same long-count arithmetic without the thin buy first: he
    gets no further than 79 % of her large caps without a hold (round 73's fix)."""
    victim = battery.customer("rt74ctl", cash=1_200_000, holdings=LARGE_CAPS, authenticator=authenticator)
    start_large = _large_caps(victim)
    thief = order_api()
    held: list[dict[str, Any]] = []
    sells: list[tuple[float, Decimal]] = []
    unvouched = Decimal(0)
    clock(0)
    battery.sign_in(thief, victim.username)
    for day in (8, 16, 24, 32, 40, 48, 56, 64):
        clock(day)
        battery.sign_in(thief, victim.username)
        budget = min(
            _allowed(sells, day, value(victim).holdings_value, changed=False),
            _long_room(victim, unvouched, Decimal("0.79")),
        )
        sold = _sell(thief, victim, budget, held)
        sells.append((day, sold))
        unvouched += sold
    assert unvouched / start_large <= Decimal("0.8")


def _print(symbol: str, price: Decimal) -> None:
    """The gang's trades print ``symbol`` at ``price`` (a day's row of market data: its long-run price and
    volume are kept, as the demo's sync keeps them)."""
    from dataclasses import replace

    from demo_site.brokerage import services
    from demo_site.brokerage.instruments import INSTRUMENTS

    row = next(r for r in INSTRUMENTS if r.symbol == symbol)
    services.sync_instruments([replace(row, price=price, history_since=None)])


@pytest.mark.django_db
def test_the_gangs_own_thin_stock_printed_at_1_3_times_widens_it_further_to_90_percent(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Secure: as above (her sells since her last confirmation of the count at most 80 % of her holdings
    at that point, unless she confirms).

    Attack: the thief buys the gang's own small cap 7Z2A (¥845, ¥5.5 million a day) in four chunks of 320
    shares over two weeks (¥1.08 million of her cash, 9.7 % of her portfolio: under the per-order 5 % and
    the week's 10 % of its daily value, under the month's and the long count's 10 % thin budget: no hold).
    The gang then prints 7Z2A at ¥1,098 (1.3 x its long-run price, the most the base trusts). From day 17 he
    sells her large caps just under every window and just under the long count as he reads it. Measured:
    ¥8.97 million, 90.2 % of her ¥9.95 million of large caps, sold by day 49, not one hold, not one notice;
    ¥1.08 million of her cash in the gang's stock (¥1.41 million at the print).

    Root cause and fix: as ``test_a_thin_buy_first_widens_the_long_counts_base_and_he_sells_88_percent_
    without_a_hold`` (authguard/orders/long_sells.py:_sums_sql takes nothing out for a weight-1 buy, while
    authguard/orders/facts.py:_base_holdings counts the position up to 1.3 x its long-run price)."""
    victim = battery.customer("rt74print", cash=1_200_000, holdings=LARGE_CAPS, authenticator=authenticator)
    start_large = _large_caps(victim)
    thief = order_api()
    held: list[dict[str, Any]] = []
    log: list[str] = []
    sells: list[tuple[float, Decimal]] = []
    unvouched = Decimal(0)
    clock(0)
    battery.sign_in(thief, victim.username)
    for day in (8, 17):
        clock(day)
        battery.sign_in(thief, victim.username)
        for _chunk in range(2):
            answer = thief.order("buy", battery.PUMPED, battery.CHUNK).json()
            assert answer["status"] == "placed", (day, answer.get("confirmation", {}).get("reasons"))
    _print(battery.PUMPED, Decimal("1098"))
    pump = sum((h.value_jpy for h in value(victim).holdings if h.symbol == battery.PUMPED), Decimal(0))
    log.append(f"7Z2A position ¥{pump:,.0f}")
    for day in (17, 25, 33, 41, 49, 57, 65, 73):
        clock(day)
        battery.sign_in(thief, victim.username)
        window_holdings = value(victim).holdings_value - (pump if day < 49 else 0)
        budget = min(
            _allowed(sells, day, window_holdings, changed=False),
            _long_room(victim, unvouched, Decimal("0.79")),
        )
        sold = Decimal(0)
        for holding in sorted(value(victim).holdings, key=lambda h: -h.value_jpy):
            if holding.symbol == battery.PUMPED:
                continue
            price = holding.value_jpy / holding.quantity
            quantity = min(holding.quantity, int((budget - sold) / price))
            if quantity <= 0:
                continue
            answer = thief.order("sell", holding.symbol, quantity).json()
            if answer["status"] != "placed":
                held.append(answer)
                thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
                continue
            sold += Decimal(answer["order"]["amount_jpy"])
        sells.append((day, sold))
        unvouched += sold
        log.append(f"day {day}: sold ¥{sold:,.0f}")
    share = unvouched / start_large
    holds = HeldOrder.objects.filter(user=victim).count()
    assert holds or share <= Decimal("0.805"), (
        f"sold ¥{unvouched:,.0f} of her ¥{start_large:,.0f} of large caps ({share:.1%}), {holds} holds; "
        + "; ".join(log)
    )


@pytest.mark.django_db
def test_held_a_liquid_round_trip_does_not_widen_the_base(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """The thief sells 70 % of her large caps over days 8-24, then on day 40 puts ¥2 million of the
    proceeds into a liquid large cap (Toyota) and sells it again the next week, then tries for more: the
    liquid buy is taken out of the base in full, the round trip's sell counts, and his next sell past 80 %
    of her holdings at the start is held."""
    victim = battery.customer("rt74trip", cash=1_200_000, holdings=LARGE_CAPS, authenticator=authenticator)
    start_large = _large_caps(victim)
    thief = order_api()
    held: list[dict[str, Any]] = []
    sells: list[tuple[float, Decimal]] = []
    clock(0)
    battery.sign_in(thief, victim.username)
    total = Decimal(0)
    for day in (8, 16, 24):
        clock(day)
        battery.sign_in(thief, victim.username)
        budget = min(
            _allowed(sells, day, value(victim).holdings_value, changed=False),
            Decimal("0.70") * start_large - total,
        )
        sold = _sell(thief, victim, budget, held)
        sells.append((day, sold))
        total += sold
    assert not held
    clock(40)
    battery.sign_in(thief, victim.username)
    toyota = int(Decimal(2_000_000) / Decimal(2800))
    bought = thief.order("buy", "7203", toyota).json()
    assert bought["status"] == "placed", bought
    clock(47)
    battery.sign_in(thief, victim.username)
    position = next(h for h in value(victim).holdings if h.symbol == "7203")
    round_trip = thief.order("sell", "7203", position.quantity).json()
    room = Decimal("0.12") * start_large
    more = _sell(thief, victim, room, held) if round_trip["status"] == "placed" else Decimal(0)
    assert round_trip["status"] == "held" or held, (round_trip, more)


@pytest.mark.django_db
def test_held_the_roll_up_job_between_his_orders_does_not_drop_his_sells(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """The periodic roll-up (``roll_up_accounts``, here with no minimum of rows) runs after every day of his
    sells, and once more 40 days on: his unvouched sells stay in the ledger (``UNVOUCHED_SELLS``), the
    liquid buys of hers it rolls up still come out of the base, and his sell past 80 % is held."""
    from authguard import clock as ag_clock
    from authguard.orders import rollup

    victim = battery.customer("rt74roll", cash=1_200_000, holdings=LARGE_CAPS, authenticator=authenticator)
    start_large = _large_caps(victim)
    her = order_api()
    her.login_usual(victim.username, battery.PASSWORD, days=400)
    thief = order_api()
    held: list[dict[str, Any]] = []
    sells: list[tuple[float, Decimal]] = []
    total = Decimal(0)
    clock(0)
    battery.sign_in(thief, victim.username)
    for day in (8, 16, 24, 48):
        clock(day)
        battery.sign_in(her, victim.username)
        # Her own monthly savings plan: a liquid buy (rolled up into its day's total by the job).
        assert her.order("buy", "9432", 500).json()["status"] == "placed"
        battery.sign_in(thief, victim.username)
        budget = min(
            _allowed(sells, day, value(victim).holdings_value, changed=False),
            Decimal("0.78") * start_large - total,
        )
        sold = _sell(thief, victim, budget, held)
        sells.append((day, sold))
        total += sold
        clock(day + 2)
        rollup.roll_up_accounts(now=ag_clock.now(), min_rows=1)
    assert not held
    assert GuardedOrder.objects.filter(user=victim, side="buy", rolled=True).exists()
    assert not GuardedOrder.objects.filter(user=victim, side="sell", rolled=True).exists()
    clock(56)
    battery.sign_in(thief, victim.username)
    _sell(thief, victim, Decimal("0.05") * start_large, held)
    assert held and all("exposure_liquidation_unvouched" in str(a) for a in held), held


@pytest.mark.django_db
def test_cost_she_buys_a_small_cap_then_sells_three_quarters_of_her_large_caps_over_two_months(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """What a fix must keep: Tanaka, from her usual browser with her password alone, buys 9 % of her
    portfolio in a small cap (5Z4A) with her cash, then sells 30 %, 25 % and 20 % of her large caps on
    days 1, 9 and 45: 75 % of her holdings at the start, all placed. (Taking the small-cap buy out of the
    base in full leaves her base at her large caps: 75 % is under 80 %.)"""
    user = battery.customer("rt74cost", cash=1_200_000, holdings=LARGE_CAPS, authenticator=authenticator)
    start_large = _large_caps(user)
    her = order_api()
    her.login_usual(user.username, battery.PASSWORD, days=400)
    clock(0)
    battery.sign_in(her, user.username)
    quantity = int(Decimal("0.09") * value(user).total_value / PUMP_PRICE)
    assert her.order("buy", PUMP, quantity).json()["status"] == "placed"
    held: list[dict[str, Any]] = []
    for day, share in ((1, "0.30"), (9, "0.25"), (45, "0.20")):
        clock(day)
        battery.sign_in(her, user.username)
        _sell(her, user, Decimal(share) * start_large, held)
    assert not held, held
