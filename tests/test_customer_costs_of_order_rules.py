"""Round thirty-one (c), the legitimate customer's advocate: what round thirty's trusted portfolio value
(``orders.facts._trusted_holdings``, ``OrderFacts.trusted_total``) costs a customer whose holdings truly rose.

Round thirty made the limits on buys of thin stocks (``exposure_illiquid``, ``exposure_concentration``,
``IlliquidBuy``'s ``floor_max_share``) shares of cash plus each position at no more than its long-run price
(``InstrumentInfo.reference_price``, the 20-day median close) lifted by ``max_reference_deviation`` (30 %).
The attack it closed: a gang prints the victim's *thin* stock at 100x its price and the pumped value widens
the share of her cash the thief may put into the gang's second thin stock. The commit and docs/order-guard.md
speak of thin positions; the code caps every position that has a reference price, a blue chip's included.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from authguard.models import GuardedOrder
from demo_site.brokerage.models import Instrument

from . import test_battery_exposure as battery
from .conftest import HANAKO_PASSWORD, IP_TOKYO, UA_CHROME_WIN, OrderApi, of_long_standing, settle_device
from .test_battery_exposure import sign_in, value

start = battery.start
clock = battery.clock

TARGET = "5Z4A"  # ¥1,050, ¥105 million a day: thin (counted in full against the 10 % a month)


def _hanakos_pc(clock: Any, user: Any, days: int = 10) -> OrderApi:
    """hanako's home Chrome of more than a year, signed in every day for ``days`` days; signed in today."""
    of_long_standing(user)
    clock(-days)
    home = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login("hanako", HANAKO_PASSWORD)
    settle_device(home.client.cookies["authguard_device"].value, user, days=400)
    for day in range(-days + 1, 1):
        clock(day)
        sign_in(home, "hanako", HANAKO_PASSWORD)
        assert home.get("/api/portfolio").status_code == 200
    return home


def _buy_share_of_portfolio(home: OrderApi, user: Any, share: Decimal) -> tuple[dict[str, Any], Decimal]:
    total = value(user).total_value
    quantity = int(share * total // Decimal(1050))
    answer = home.order("buy", TARGET, quantity).json()
    return answer, total


#: (what she holds, the move of its price since the 20-day reference, the story)
RISES = {
    # A tender offer for Toyota (hypothetical) at a 50 % premium: the price jumps overnight, the 20-day
    # median close lags for two weeks. Toyota trades ¥71 billion a day: no gang can print it.
    "blue-chip-tender-offer-premium": ({"7203": 1000}, Decimal("1.5")),
}
DOCUMENTED_RISES = {
    # docs/order-guard.md: "a customer whose small cap has truly doubled in a month has the gain counted only
    # up to 30 % above its 20-day price until the reference catches up" (kept, the trade of round thirty).
    "small-cap-doubled-in-a-month": ({"7Z2A": 2000, "7203": 300}, Decimal("2")),
}


def _journey(clock: Any, brokerage_customer: Any, holdings: dict[str, int], move: Decimal) -> tuple[Any, ...]:
    customer = brokerage_customer(holdings=holdings)
    home = _hanakos_pc(clock, customer)
    symbol = next(iter(holdings))
    reference = Instrument.objects.get(symbol=symbol).reference_price
    Instrument.objects.filter(symbol=symbol).update(price=(reference * move).quantize(Decimal(1)))
    # She invests 9 % of her portfolio (its value on her screen) in a thin stock: under the usual 10 %.
    answer, total = _buy_share_of_portfolio(home, customer, Decimal("0.09"))
    codes = [f.get("code") for f in answer.get("confirmation", {}).get("findings", [])] if answer else []
    guarded = GuardedOrder.objects.filter(user=customer, symbol=TARGET).values_list("status", "reasons")
    return answer["status"], total, codes, list(guarded)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize("rise", list(RISES))
def test_her_thin_stock_buy_after_a_blue_chip_she_holds_jumped_is_held_only_by_the_usual_limit(
    clock: Any, brokerage_customer: Any, rise: str
) -> None:
    """hanako, at her home PC of a year (nothing changed: the usual 10 % a month into thin stocks), holds
    1,000 Toyota and ¥1 million cash. A tender offer lifts Toyota 50 % overnight; the 20-day reference price
    lags. She puts 9 % of her portfolio (as her statement values it) into the thin 5Z4A. ``_trusted_holdings``
    counts her Toyota at no more than 130 % of its 20-day price, so the 9 % is 10.1 % of the "trusted"
    portfolio: held (``exposure_illiquid``), she confirms with her factor. No gang can print a stock that
    trades ¥71 billion a day; the cap protects nothing here. Secure (fair): a position the gang cannot move
    (exposure weight 0: liquid) counts at its value; only thin positions are capped (e.g. in
    ``orders.facts._trusted_holdings``: ``if weigh(instrument) <= 0: total += holding.value; continue``)."""
    holdings, move = RISES[rise]
    status, total, codes, guarded = _journey(clock, brokerage_customer, holdings, move)
    assert status == "placed", (f"9 % of ¥{total:,.0f} into 5Z4A: {status}", codes, guarded)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize("rise", list(DOCUMENTED_RISES))
def test_held_documented_her_small_cap_doubled_holds_her_thin_stock_buy_until_the_reference_catches_up(
    clock: Any, brokerage_customer: Any, rise: str
) -> None:
    """HELD (the documented trade, measured): her small cap 7Z2A truly doubled in a month; her 9 % buy of
    another thin stock is held (she confirms it with her factor). The gang's pump looks the same to the
    guard, request for request; the cost ends when the 20-day reference catches up."""
    holdings, move = DOCUMENTED_RISES[rise]
    status, total, codes, guarded = _journey(clock, brokerage_customer, holdings, move)
    assert status == "held", (f"9 % of ¥{total:,.0f} into 5Z4A: {status}", codes, guarded)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_control_the_same_buy_without_the_jump_is_placed(clock: Any, brokerage_customer: Any) -> None:
    """HELD (the control): the same customer, Toyota at its reference price: 9 % into 5Z4A is placed."""
    status, total, codes, guarded = _journey(clock, brokerage_customer, {"7203": 1000}, Decimal(1))
    assert status == "placed", (status, total, codes, guarded)
