"""Red team round thirty-seven (c): the limits on buys of thin stocks (``exposure_illiquid``,
``exposure_concentration``, ``illiquid_buy_thin``) and the sell base are shares of what the guard trusts of
her portfolio, where a thin position counts at ``min(value, reference price x 1.3 x quantity)``
(``facts._trusted_holdings``, ``facts._base_holdings``). That ceiling caps the *price* a pump can lift it to,
not what she *paid* for the shares: the gang crashes its own thin stock for one session (its wash trades at
a hundredth of the price, a hundred times the volume, so the day's traded value in yen is its usual one), the
thief buys it with her cash far *below* its long-run price (a buy below the reference is never held), and
when the print returns to normal her shares count at their long-run price: a hundred times what the ledger
counted against the month's 10 %. Everything goes through the demo's real order entry (``POST /api/orders``)
and the demo's market-data path (``services.sync_instruments``)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from authguard.models import HeldOrder
from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.models import Instrument, Order, OrderStatus

from . import test_battery_exposure as battery
from .test_battery_exposure import customer, value

start = battery.start
clock = battery.clock

#: Her large caps (¥9.6 million) and ¥500,000 cash: no thin stock at all.
LARGE = {"7203": 1000, "6758": 500, "8306": 1000, "9984": 100, "4568": 300}
THIN = ("7Z2A", "4Z1A", "3Z3A", "5Z4A")
ROWS = {row.symbol: row for row in INSTRUMENTS}


def market(symbol: str, *, price: Decimal | None = None, divide: int = 1) -> None:
    """The day's market data for ``symbol`` through the demo's sync (no long-run fields: the reference
    price and the long-run daily value stay what they were). ``divide``: the gang's wash trades print the
    stock at 1/``divide`` of its price with ``divide`` times its volume (the same yen traded a day)."""
    row = ROWS[symbol]
    day = replace(
        row,
        price=price if price is not None else (row.price / divide).quantize(Decimal(1)),
        avg_daily_volume=row.avg_daily_volume * divide,
    )
    services.sync_instruments([day])


def normal(symbol: str) -> None:
    services.sync_instruments([ROWS[symbol]])


def thin_buys(user: Any) -> Decimal:
    rows = Order.objects.filter(
        account__user=user, side="buy", status=OrderStatus.PLACED, instrument__symbol__in=THIN
    )
    return sum((o.amount_jpy for o in rows), Decimal(0))


def _order(thief: Any, side: str, symbol: str, quantity: int, log: list[str]) -> dict[str, Any]:
    answer = thief.order(side, symbol, quantity).json()
    log.append(
        f"{side} {quantity} {symbol}: {answer['status']} {answer.get('errors', '')}"
        + (f" {answer['confirmation']['reasons']}" if answer["status"] == "held" else "")
    )
    return answer


def _crash_buys(thief: Any, log: list[str]) -> None:
    """The gang prints three of its thin stocks at about a hundredth of their price for the session; the
    thief buys each in chunks under 5 % of the day's traded value (in yen, its usual one), within the week's
    10 % per instrument and the month's 10 % of her portfolio in thin stock; then the prints return to
    normal."""
    market("7Z2A", divide=94)  # ¥9 (reference ¥845)
    market("4Z1A", divide=104)  # ¥3 (reference ¥312)
    market("3Z3A", divide=127)  # ¥1 (reference ¥127)
    for symbol, quantity in (("7Z2A", 30_000), ("7Z2A", 30_000), ("4Z1A", 90_000), ("3Z3A", 150_000)):
        _order(thief, "buy", symbol, quantity, log)
    for symbol in ("7Z2A", "4Z1A", "3Z3A"):
        normal(symbol)


@pytest.mark.django_db
def test_crash_bought_thin_shares_count_at_their_reference_and_let_her_whole_portfolio_into_the_pump(
    order_api: Any, clock: Any
) -> None:
    """Secure: at most 10 % of her portfolio goes into thinly traded stock within a month without her
    passkey (the month's ``exposure_illiquid``), however the thin shares were priced when she bought them.

    The thief had her password (a sign-in from his own browser, day 0) and waited out the trust week; the
    gang owns the thin stocks 7Z2A, 4Z1A, 3Z3A and 5Z4A and prints their prices. Day 8, one session: the
    gang crashes 7Z2A, 4Z1A and 3Z3A to about 1 % of their long-run prices for minutes (same yen traded a
    day); the thief buys ¥960,000 of them (under 10 % of her ¥10.1 million); the prints return to normal,
    and her 60,000 + 90,000 + 150,000 shares count at their long-run prices (¥97.8 million) in what the
    guard trusts of her portfolio and in the sell base. He sells every large cap (9 % of that base) and
    buys the gang's 5Z4A with all the cash: nearly her whole portfolio in the gang's stocks, with no hold.
    """
    user = customer("mori", cash=500_000, holdings=LARGE)
    before = value(user).total_value
    clock(0)
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    clock(8)
    battery.sign_in(thief, user.username)
    log: list[str] = []
    # Cash for the crash buys: a fifth of the holdings (under the pivot's 30 % and every sell limit).
    _order(thief, "sell", "6758", 500, log)
    _crash_buys(thief, log)
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.symbol not in THIN:
            _order(thief, "sell", holding.symbol, holding.quantity, log)
    # 5Z4A trades ¥105 million a day: 5 % a buy, 10 % a week.
    price = Instrument.objects.get(symbol="5Z4A").price
    for _ in range(2):
        cash = value(user).cash
        quantity = int(min(cash, Decimal("5000000")) / price)
        if quantity > 0:
            _order(thief, "buy", "5Z4A", quantity, log)
    moved = thin_buys(user)
    held = HeldOrder.objects.filter(user=user).count()
    assert moved <= Decimal("0.101") * before or held, (
        f"¥{moved:,.0f} of her ¥{before:,.0f} ({moved / before:.0%}) placed in thin stocks, "
        f"{held} holds; {log}"
    )


@pytest.mark.django_db
def test_in_his_first_session_crash_bought_thin_shares_let_him_sell_everything_and_buy_the_pump(
    order_api: Any, clock: Any
) -> None:
    """Secure: in the thief's first session (a new device: the risky session's 25 % of her holdings in sells
    within 24 hours, the changed account's 5 % of her portfolio in thin stock within the month) he neither
    sells her large caps nor puts more than 5 % of her portfolio into thin stock without her passkey.

    The thief had her password only, one sign-in from his own browser, no waiting. The gang crashes 7Z2A
    and 4Z1A to about 1 % of their long-run prices for minutes; he buys ¥480,000 of them with her cash (each
    buy under the risky session's ¥300,000, all under 5 % of her portfolio); the prints return to normal,
    and her shares count at ¥47 million in the sell base and in the portfolio the buy limits are shares of.
    He sells every large cap (¥9.6 million, 100 % of her liquid holdings) and buys the gang's 5Z4A in
    ¥266,700 chunks: ¥2.6 million (26 % of her portfolio, with the crash buys) in thin stock, no hold."""
    user = customer("kudo", cash=500_000, holdings=LARGE)
    before = value(user).total_value
    large = value(user).holdings_value
    clock(0)
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    log: list[str] = []
    market("7Z2A", divide=94)
    market("4Z1A", divide=104)
    _order(thief, "buy", "7Z2A", 30_000, log)  # ¥270,000
    _order(thief, "buy", "4Z1A", 70_000, log)  # ¥210,000
    normal("7Z2A")
    normal("4Z1A")
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.symbol not in THIN:
            _order(thief, "sell", holding.symbol, holding.quantity, log)
    sells = Order.objects.filter(account__user=user, side="sell", status=OrderStatus.PLACED)
    sold = sum((o.amount_jpy for o in sells), Decimal(0))
    sells_held = HeldOrder.objects.filter(user=user).count()
    # ¥266,700 a chunk, under the risky session's ¥300,000; eight of them stay under 5 % of the ¥52 million
    # the guard now trusts of her portfolio (the thief computes it as the guard does).
    for _ in range(8):
        _order(thief, "buy", "5Z4A", 254, log)
    moved = thin_buys(user)
    held = HeldOrder.objects.filter(user=user).count()
    assert sold <= Decimal("0.2525") * large or sells_held, (
        f"¥{sold:,.0f} of her ¥{large:,.0f} large caps sold in his first session, {held} holds; {log}"
    )
    assert moved <= Decimal("0.0505") * before or held, (
        f"¥{moved:,.0f} of her ¥{before:,.0f} ({moved / before:.0%}) placed in thin stocks, "
        f"{held} holds; {log}"
    )


@pytest.mark.django_db
def test_held_a_crash_without_the_volume_leaves_no_room_for_a_crash_buy(order_api: Any, clock: Any) -> None:
    """The gang crashes 7Z2A to ¥9 without trading its volume up: the day's traded value (its usual volume
    at ¥9, ¥58,500) caps a buy at 5 % of it, so the thief's ¥270,000 crash buy is held
    (``illiquid_buy_large``): the attack above needs the gang's wash trades to keep the yen traded a day at
    its usual level."""
    user = customer("kudo", cash=500_000, holdings=LARGE)
    clock(0)
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    market("7Z2A", price=Decimal(9))
    log: list[str] = []
    answer = _order(thief, "buy", "7Z2A", 30_000, log)
    assert answer["status"] == "held", log
    assert "illiquid_buy_large" in answer["confirmation"]["reasons"], log


@pytest.mark.django_db
def test_held_a_pump_of_the_target_above_its_reference_is_held(order_api: Any, clock: Any) -> None:
    """After the crash buys the gang prints 5Z4A at 1.5 x its long-run price and the thief buys it: held
    (``exposure_reference_price``), so the crash-bought base moves her cash into the gang's stock at no more
    than its long-run price (the harm is the thin stock itself, not an overpayment)."""
    user = customer("kudo", cash=500_000, holdings=LARGE)
    clock(0)
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    clock(8)
    battery.sign_in(thief, user.username)
    market("5Z4A", price=Decimal(1575))
    log: list[str] = []
    answer = _order(thief, "buy", "5Z4A", 150, log)
    assert answer["status"] == "held", log
    assert "exposure_reference_price" in answer["confirmation"]["reasons"], log
