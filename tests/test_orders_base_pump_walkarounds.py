"""Red team round thirty-six (h): the sell limits' base after round thirty-four (a thin position counts at no
more than its long-run price lifted by the reference deviation, ``facts._base_holdings``), attacked over
days through the demo portal's real order entry (``POST /api/orders``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from authguard.models import HeldOrder
from demo_site.brokerage.models import Instrument, Order, OrderStatus

from . import test_battery_exposure as battery
from .test_battery_exposure import customer, placed_buys, value
from .test_orders_trusted_total_walkarounds import TARGET, TARGET_CHUNK, _buy_in_chunks

start = battery.start
clock = battery.clock

#: Large caps ¥5.07 million and two of her small caps at their long-run prices: 4Z1A 3,000 x ¥312
#: (¥936,000) and 3Z3A 7,000 x ¥127 (¥889,000): a third of her holdings in thin stocks.
MIXED = {"7203": 1000, "6758": 300, "8306": 500, "4Z1A": 3000, "3Z3A": 7000}
THIN = ("4Z1A", "3Z3A")


def _placed(user: Any, side: str) -> Decimal:
    rows = Order.objects.filter(account__user=user, side=side, status=OrderStatus.PLACED)
    return sum((o.amount_jpy for o in rows), Decimal(0))


def _trusted(user: Any) -> tuple[Decimal, Decimal, Decimal]:
    """(large caps, thin positions at their long-run price x 1.3, cash) as the demo values them now."""
    large = thin = Decimal(0)
    for holding in value(user).holdings:
        if holding.symbol in THIN:
            ref = Instrument.objects.get(symbol=holding.symbol).reference_price
            thin += Decimal(ref) * Decimal("1.3") * holding.quantity
        else:
            large += holding.value_jpy
    return large, thin, value(user).cash


def _sell_large_caps(thief: Any, user: Any) -> list[str]:
    statuses = []
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.symbol in THIN or holding.is_small_cap:
            continue
        for quantity in (holding.quantity, holding.quantity // 2, holding.quantity // 4):
            if quantity <= 0:
                continue
            answer = thief.order("sell", holding.symbol, quantity).json()
            statuses.append(answer["status"])
            if answer["status"] == "held":
                thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
                continue
            break
    return statuses


@pytest.mark.django_db
@pytest.mark.parametrize("pump", [1, 100])
def test_held_a_pump_of_her_thin_holdings_widens_the_sell_base_by_at_most_the_reference_deviation(
    order_api: Any, clock: Any, pump: int
) -> None:
    """The gang prints both of her small caps at a hundred times their price (``pump`` 100; 1 is the
    control), then the thief (a new device: a quarter of the base, risky session) sells her large caps,
    largest first, halving a held sell until one is placed, and puts the cash into the gang's 5Z4A in chunks
    under ¥300,000. The base counts her small caps at no more than their long-run price x 1.3: the large caps
    sold stay under a quarter of (large caps + small caps at ¥ref x 1.3), and the thin buys under 5 % of
    what the guard trusts of the portfolio, pumped or not."""
    user = customer("ono", cash=100_000, holdings=MIXED)
    clock(0)
    large, thin, cash = _trusted(user)
    Instrument.objects.filter(symbol="4Z1A").update(price=Decimal(312 * pump))
    Instrument.objects.filter(symbol="3Z3A").update(price=Decimal(127 * pump))
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    statuses = _sell_large_caps(thief, user)
    sold = _placed(user, "sell")
    assert "held" in statuses, statuses
    assert sold <= Decimal("0.2525") * (large + thin), (sold, large, thin, statuses)
    _buy_in_chunks(thief, TARGET, TARGET_CHUNK)
    bought = placed_buys(user, TARGET)
    assert bought <= Decimal("0.0505") * (large + thin + cash), (bought, large + thin + cash)
    assert not HeldOrder.objects.filter(user=user, status=HeldOrder.Status.PENDING).exists()


@pytest.mark.django_db
def test_held_a_patient_thief_over_a_month_gets_no_more_than_the_months_share_into_thin_stock(
    order_api: Any, clock: Any
) -> None:
    """The patient variant: the thief keeps his browser for a month (his device stops being new after the
    trust week, so the limits double), signs in every other day, sells what large caps the larger base lets
    him, and buys the gang's 5Z4A in chunks under ¥300,000 until one is held (cancelled). The larger base
    lets him sell more of her large caps unheld (cash stays in her account); his buys of thin stock over the
    month stay under 10 % of what the guard trusts of her portfolio (5 % in the first week)."""
    user = customer("ono", cash=100_000, holdings=MIXED)
    clock(0)
    large, thin, cash = _trusted(user)
    trusted = large + thin + cash
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    week = Decimal(0)
    for day in range(0, 29, 2):
        clock(day)
        if day:
            battery.sign_in(thief, user.username)
        _sell_large_caps(thief, user)
        _buy_in_chunks(thief, TARGET, TARGET_CHUNK)
        if day <= 6:
            week = placed_buys(user, TARGET)
    bought = placed_buys(user, TARGET)
    assert week <= Decimal("0.0505") * trusted, week / trusted
    assert bought <= Decimal("0.101") * trusted, (bought / trusted, _placed(user, "sell") / large)
