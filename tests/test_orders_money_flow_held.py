"""Red team, round thirty-one (b): the money flow through the order guard after round thirty's trusted total.

Round thirty made the limits on buys of thin stocks (``exposure_illiquid``, ``exposure_concentration``,
``IlliquidBuy``'s ``floor_max_share``) shares of ``OrderFacts.trusted_total``: cash plus each holding at no
more than its long-run price x 1.3 (``facts._trusted_holdings``). These are the gang's attempts to get more
of the victim's yen into its thin stocks than that lets through: a pumped *foreign* small cap she holds (the
fx path of the ceiling), a thin holding whose portal data has no usable long-run price (missing or 0), the
exposure windows across the trust week over a month of returns, and the demo's HTML order entry (an order
path other than ``POST /api/orders``).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from demo_site.brokerage import services
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Instrument, Order, OrderStatus

from . import test_battery_exposure as battery
from .test_battery_exposure import PUMPED, home_pc, placed_buys, sell_large_caps_up_to, sign_in, value
from .test_orders_trusted_total_walkarounds import _buy_in_chunks

start = battery.start
clock = battery.clock

#: The gang's second thin stock (¥105 million a day, weight 0.86: illiquid, counted in full).
TARGET = "5Z4A"
#: Under the risky session's ¥300,000 per order: 260 x ¥1,050 = ¥273,000.
TARGET_CHUNK = 260
#: Zephyr Vale Quantum Holdings: a NASDAQ small cap at $1.37 (¥205.50 a share at the demo's ¥150).
FOREIGN = "ZVXQ"


def _thin_placed(user: Any) -> Decimal:
    return sum(
        (placed_buys(user, s) for s in (PUMPED, TARGET, FOREIGN, "4Z1A", "3Z3A")),
        Decimal(0),
    )


# -- the fx path of the ceiling --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("pump", [1, 100])
def test_held_a_pumped_foreign_small_cap_she_holds_does_not_widen_her_thin_limits(
    order_api: Any, clock: Any, tanaka: Any, pump: int
) -> None:
    """Tanaka also holds 5,000 shares of the NASDAQ small cap ZVXQ ($1.37, ¥1.03 million at ¥150 a dollar;
    a position she has had for years, so no first-trade hold). The gang prints ZVXQ at a hundred times its
    price: $137, ¥103 million in the portfolio hook. A thief on a new device (the changed account's 5 %)
    sells 15 % of her holdings in large caps and spends the cash on the gang's 5Z4A in chunks under ¥300,000.

    The ceiling of a foreign position is its long-run price in dollars x 1.3 x quantity x ``fx_rate``: the
    hook's value (yen) and the ceiling (dollars x fx) must be in one currency, or the cap is off by 150.
    Held: at most 5 % of her (unpumped) portfolio goes into thin stocks, pumped or not."""
    services.reset_portfolio(tanaka, cash=TANAKA.cash, holdings={**dict(TANAKA.holdings), FOREIGN: 5_000})
    home_pc(tanaka)
    clock(0)
    before = value(tanaka).total_value
    thief = order_api()
    thief.login(TANAKA.username, TANAKA.password)
    sell_large_caps_up_to(thief, tanaka, Decimal("0.15"))
    Instrument.objects.filter(symbol=FOREIGN).update(price=Decimal("1.37") * pump)  # the gang's prints
    answers = _buy_in_chunks(thief, TARGET, TARGET_CHUNK)
    statuses = [a["status"] for a in answers]
    thin = placed_buys(tanaka, TARGET)
    assert statuses[-1] == "held", statuses
    assert thin <= Decimal("0.0505") * before, (
        f"pump x{pump}: {thin / before:.1%} of the portfolio (¥{thin:,.0f}) into 5Z4A; orders {statuses}"
    )


# -- a thin holding whose portal data has no usable long-run price -------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("reference", [None, Decimal(0)])
def test_held_a_pumped_thin_holding_without_a_usable_reference_price_adds_nothing(
    order_api: Any, clock: Any, tanaka: Any, reference: Decimal | None
) -> None:
    """Round thirty's attack, on a portal whose market data has no long-run price for 7Z2A (missing, or 0
    from a feed that writes 0 for "unknown"): the thief makes her buy 320 shares of 7Z2A, the gang prints it
    at a thousand times its price (¥270 million in the portfolio hook), and the thief spends her cash on
    5Z4A. Without a reference the position counts as the sell base counts it (weight 1: nothing), so the
    pump adds nothing to the trusted total. Held: at most 5 %."""
    home_pc(tanaka)
    clock(0)
    before = value(tanaka).total_value
    thief = order_api()
    thief.login(TANAKA.username, TANAKA.password)
    first = thief.order("buy", PUMPED, 320).json()
    assert first["status"] == "placed", first
    sell_large_caps_up_to(thief, tanaka, Decimal("0.20"))
    Instrument.objects.filter(symbol=PUMPED).update(price=Decimal(845 * 1000), reference_price=reference)
    answers = _buy_in_chunks(thief, TARGET, TARGET_CHUNK)
    statuses = [a["status"] for a in answers]
    thin = placed_buys(tanaka, PUMPED) + placed_buys(tanaka, TARGET)
    assert statuses[-1] == "held", statuses
    assert thin <= Decimal("0.0505") * before, (
        f"reference {reference}: {thin / before:.1%} of the portfolio (¥{thin:,.0f}) in thin stocks; "
        f"{statuses}"
    )


# -- the windows across the trust week, over a month of returns ----------------------------------------------


@pytest.mark.django_db
def test_held_a_thief_returning_for_a_month_moves_at_most_a_tenth_in_any_thirty_days(
    order_api: Any, clock: Any, tanaka: Any
) -> None:
    """The patient gang with the victim's password and a browser of its own: day 0 on a new device (the
    changed account's halved limits), then back from the same browser on days 3, 8 (the device is a week old:
    the account's context no longer "changed"), 15, 22 and 29. Each visit sells her large caps up to the
    first hold and buys the gang's thin stocks (7Z2A in chunks under its per-order 5 % of a day's value,
    5Z4A in chunks) until one is held; every held order is cancelled, so Tanaka is never asked anything.

    Held: the month's buys of thin stocks are one rolling 30-day sum against 10 % (5 % in the trust week) of
    the trusted portfolio, so the week's halving ending on day 8 adds only the other half: at most 10 % of
    her portfolio in thin stocks within 30 days."""
    home_pc(tanaka)
    clock(0)
    before = value(tanaka).total_value
    thief = order_api()
    thief.login(TANAKA.username, TANAKA.password)
    log = []
    for day in (0, 3, 8, 15, 22, 29):
        clock(day)
        sign_in(thief, TANAKA.username, TANAKA.password)
        battery.sell_up_to_the_limit(thief, tanaka)
        for symbol, chunk in ((PUMPED, 320), (TARGET, TARGET_CHUNK), (TARGET, 2000)):
            answers = _buy_in_chunks(thief, symbol, chunk, most=15)
            log.append((day, symbol, [a["status"] for a in answers]))
    thin = _thin_placed(tanaka)
    held = HeldOrder.objects.filter(user=tanaka).count()
    assert held > 0
    assert thin <= Decimal("0.101") * before, (
        f"{thin / before:.1%} of the portfolio (¥{thin:,.0f}) in thin stocks within 30 days; {log}"
    )
    # And within any 30 days of it (here: the whole run is 29 days).
    rows = list(
        GuardedOrder.objects.filter(user=tanaka, side="buy", status=GuardStatus.PLACED, illiquid=True)
        .order_by("created_at")
        .values_list("created_at", "amount")
    )
    for moment, _amount in rows:
        month = sum((a for t, a in rows if moment - timedelta(days=30) < t <= moment), Decimal(0))
        assert month <= Decimal("0.101") * before, (month, before)


# -- the orders the guard never sees -------------------------------------------------------------------------


@pytest.mark.django_db
def test_held_the_html_order_form_goes_through_the_guard_like_the_api(
    order_api: Any, clock: Any, tanaka: Any
) -> None:
    """The demo has two order entries besides the confirmations: ``POST /api/orders`` and the HTML form at
    ``/trade/``. The thief (a new device) uses the form for a buy of 1,000 7Z2A (¥845,000: 15 % of its day,
    above the risky session's ¥300,000) and for a sale of every share of 9984 after a quarter of the
    holdings: both held, the form redirecting to the confirmation page, nothing executed."""
    home_pc(tanaka)
    clock(0)
    thief = order_api()
    thief.login(TANAKA.username, TANAKA.password)
    cash = value(tanaka).cash
    response = thief.client.post(
        "/trade/",
        {"side": "buy", "symbol": PUMPED, "quantity": 1000, "csrfmiddlewaretoken": thief.token},
    )
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith("/authguard/confirmations/"), response["Location"]
    assert not Order.objects.filter(account__user=tanaka, status=OrderStatus.PLACED, side="buy").exists()
    assert value(tanaka).cash == cash
    held = HeldOrder.objects.get(user=tanaka)
    assert held.status == HeldOrder.Status.PENDING
