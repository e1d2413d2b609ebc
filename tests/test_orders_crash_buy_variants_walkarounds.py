"""Red team round thirty-eight (b): round thirty-seven's crash-buy fix (``OrderFacts.counted_amount``, commit
3988fdb) and what is next to it. The market data goes through the demo's ``services.sync_instruments`` and
every order through the demo's ``POST /api/orders``, as in ``tests/test_orders_crash_buy_walkarounds.py``."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from authguard.models import CampaignFlag, GuardedOrder, HeldOrder
from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS, InstrumentData
from demo_site.brokerage.models import Instrument, Order, OrderStatus

from . import test_battery_exposure as battery
from .test_battery_exposure import customer, value

start = battery.start
clock = battery.clock

LARGE = {"7203": 1000, "6758": 500, "8306": 1000, "9984": 100, "4568": 300}
THIN = ("7Z2A", "4Z1A", "3Z3A", "5Z4A", "ZVXQ")
ROWS = {row.symbol: row for row in INSTRUMENTS}
REFERENCE = {"7Z2A": Decimal(845), "4Z1A": Decimal(312), "3Z3A": Decimal(127)}


def market(symbol: str, *, price: Decimal | None = None, divide: int = 1, **long_run: Any) -> None:
    """The day's market data for ``symbol`` through the demo's sync; ``divide``: the gang's wash trades
    print it at 1/``divide`` of its price with ``divide`` times its volume (the same yen a day)."""
    row = ROWS[symbol]
    day = replace(
        row,
        price=price if price is not None else (row.price / divide).quantize(Decimal("0.01")),
        avg_daily_volume=row.avg_daily_volume * divide,
        **long_run,
    )
    services.sync_instruments([day])


def normal(symbol: str) -> None:
    services.sync_instruments([ROWS[symbol]])


def placed(user: Any, symbol: str, side: str = "buy") -> list[Order]:
    return list(
        Order.objects.filter(
            account__user=user, side=side, status=OrderStatus.PLACED, instrument__symbol=symbol
        )
    )


def _order(thief: Any, side: str, symbol: str, quantity: int, log: list[str]) -> dict[str, Any]:
    answer = thief.order(side, symbol, quantity).json()
    log.append(
        f"{side} {quantity} {symbol}: {answer['status']} {answer.get('errors', '')}"
        + (f" {answer['confirmation']['reasons']}" if answer["status"] == "held" else "")
    )
    return answer


def _thief_after_trust_week(order_api: Any, clock: Any, user: Any) -> Any:
    clock(0)
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    clock(8)
    battery.sign_in(thief, user.username)
    return thief


# -- findings ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.xfail(
    strict=True,
    reason="known limit (docs/order-guard.md, round thirty-eight): the week's buys of one instrument and the "
    "campaign sum the ledger's amounts at the price paid, like the day's traded value; every crash-bought "
    "share is charged at its long-run price against the month's exposure, which bounds it",
)
def test_crash_bought_chunks_count_at_the_price_paid_in_the_weeks_volume_of_their_instrument(
    order_api: Any, clock: Any
) -> None:
    """Secure: within a week her buys of one thin stock reach at most 10 % of what it trades in a day
    (``exposure_instrument_volume``), each counted as round thirty-seven counts it, at no less than its
    long-run price: a week of crash-bought chunks is held once they reach it.

    The thief had her password (a sign-in from his browser, day 0) and waited out the trust week. The gang
    prints 7Z2A at ¥9 (1/94 of its ¥845, 94 times the volume: the usual ¥5.5 million a day). He buys it in
    chunks of 320 shares: each counts at ¥270,400 (4.92 % of a day, under the per-order 5 %), but the ledger
    remembers ¥2,880 of it, which is what the next chunk's weekly sum reads (``WindowTotals.symbol_buys``
    sums ``GuardedOrder.amount``). Ten chunks: 49 % of a day's traded value of 7Z2A, counted at its long-run
    price, in a week, no hold."""
    user = customer("aoki", cash=20_000_000, holdings=LARGE)
    thief = _thief_after_trust_week(order_api, clock, user)
    log: list[str] = []
    market("7Z2A", divide=94)
    for _ in range(10):
        if _order(thief, "buy", "7Z2A", 320, log)["status"] != "placed":
            break
    normal("7Z2A")
    shares = sum(o.quantity for o in placed(user, "7Z2A"))
    daily = Decimal(845 * 6_500)
    counted = REFERENCE["7Z2A"] * shares
    assert counted <= Decimal("0.1") * daily, (
        f"{shares} shares of 7Z2A bought in a week: ¥{counted:,.0f} at its long-run price, "
        f"{counted / daily:.0%} of a day's traded value (limit 10 %); {log}"
    )


@pytest.mark.django_db
@pytest.mark.xfail(
    strict=True,
    reason="known limit (docs/order-guard.md, round thirty-eight): the week's buys of one instrument and the "
    "campaign sum the ledger's amounts at the price paid, like the day's traded value; every crash-bought "
    "share is charged at its long-run price against the month's exposure, which bounds it",
)
def test_a_gangs_crash_buys_across_five_taken_over_accounts_are_no_campaign(
    order_api: Any, clock: Any
) -> None:
    """Secure: five taken-over accounts buying 7Z2A within the hour, 320 shares each (together ¥1.35
    million at its long-run price, 25 % of a day's traded value), are a campaign: the buys are held from the
    third account on (``campaign_detected``, the 24-hour volume window's 10 %) and the stock is flagged for
    the staff, as the same buys at its usual price are (``test_held_the_same_buys_at_the_usual_price...``).

    The thieves had five customers' passwords (each a sign-in from a new browser: risky sessions). The gang
    prints 7Z2A at ¥9 for the hour; each thief buys 320 shares, counted at ¥270,400 by every limit of the
    buyer's own account, but the campaign facts sum the price paid (¥2,880 a buy, 0.26 % of a day together):
    no hold, no flag, no staff notice, and each victim's portfolio now holds ¥270,400 at its long-run price
    the gang sold her for ¥2,880."""
    log: list[str] = []
    victims = [customer(f"victim{i}", cash=500_000, holdings=LARGE) for i in range(5)]
    clock(0)
    market("7Z2A", divide=94)
    for user in victims:
        thief = order_api()
        thief.login(user.username, battery.PASSWORD)
        _order(thief, "buy", "7Z2A", 320, log)
    normal("7Z2A")
    flagged = CampaignFlag.objects.filter(symbol="7Z2A", active=True).exists()
    held = HeldOrder.objects.filter(guarded__symbol="7Z2A").count()
    assert flagged or held, f"no campaign flag, no hold: {log}"


# -- held ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_held_the_same_buys_at_the_usual_price_are_a_campaign(order_api: Any, clock: Any) -> None:
    """The control of the campaign test above: five taken-over accounts buying 320 shares of 7Z2A at its
    usual ¥845 within the hour are held and the stock flagged."""
    log: list[str] = []
    victims = [customer(f"usual{i}", cash=500_000, holdings=LARGE) for i in range(5)]
    clock(0)
    for user in victims:
        thief = order_api()
        thief.login(user.username, battery.PASSWORD)
        _order(thief, "buy", "7Z2A", 320, log)
    flagged = CampaignFlag.objects.filter(symbol="7Z2A", active=True).exists()
    held = HeldOrder.objects.filter(guarded__symbol="7Z2A").count()
    assert flagged and held, log


@pytest.mark.django_db
def test_held_control_the_same_chunks_at_the_usual_price_are_held_at_the_weeks_ten_percent(
    order_api: Any, clock: Any
) -> None:
    """The control of the weekly test above: the same 320-share chunks of 7Z2A at its usual ¥845 are held
    at the third (``exposure_instrument_volume``: 14.8 % of a day within the week)."""
    user = customer("aoki", cash=20_000_000, holdings=LARGE)
    thief = _thief_after_trust_week(order_api, clock, user)
    log: list[str] = []
    answers = [_order(thief, "buy", "7Z2A", 320, log) for _ in range(3)]
    assert [a["status"] for a in answers] == ["placed", "placed", "held"], log
    assert "exposure_instrument_volume" in answers[2]["confirmation"]["reasons"], log


def _pump_after(thief: Any, user: Any, log: list[str]) -> None:
    """Sell every large cap, then buy 5Z4A (¥105 million a day) in 5 % chunks until one is held."""
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.symbol not in THIN:
            _order(thief, "sell", holding.symbol, holding.quantity, log)
    price = Instrument.objects.get(symbol="5Z4A").price
    for _ in range(4):
        quantity = int(min(value(user).cash, Decimal("5000000")) / price)
        if quantity <= 0 or _order(thief, "buy", "5Z4A", quantity, log)["status"] != "placed":
            break


def _paid_in_thin(user: Any) -> Decimal:
    rows = Order.objects.filter(
        account__user=user, side="buy", status=OrderStatus.PLACED, instrument__symbol__in=THIN
    )
    return sum((o.amount_jpy for o in rows), Decimal(0))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "crash", [Decimal("0.71"), Decimal("0.69"), Decimal("0.01")], ids=["inside", "outside", "hundredth"]
)
def test_held_a_crash_near_the_deviation_then_a_print_at_130_percent_leaves_the_months_budget(
    order_api: Any, clock: Any, crash: Decimal
) -> None:
    """The gang prints 7Z2A, 4Z1A and 3Z3A at ``crash`` x their long-run prices (71 %: just inside the 30 %
    deviation; 69 %: just outside; 1 %), the thief (password, trust week waited) buys in 5 % chunks until a
    hold, then the gang prints them at 130 % of their long-run price (the most the totals count), and he
    sells every large cap and buys 5Z4A. What she paid into thin stock stays within the month's 10 % of her
    portfolio, lifted at most by the 30 % of what the crash-buys were charged (the doc's bound)."""
    user = customer("mori", cash=500_000, holdings=LARGE)
    before = value(user).total_value
    thief = _thief_after_trust_week(order_api, clock, user)
    log: list[str] = []
    _order(thief, "sell", "6758", 500, log)
    for symbol in ("7Z2A", "4Z1A", "3Z3A"):
        price = (REFERENCE[symbol] * crash).quantize(Decimal("0.01"))
        market(symbol, price=price, divide=1)
        Instrument.objects.filter(symbol=symbol).update(
            avg_daily_volume=int(ROWS[symbol].avg_daily_volume * REFERENCE[symbol] / price)
        )
        chunk = int(Decimal("0.049") * REFERENCE[symbol] * ROWS[symbol].avg_daily_volume / REFERENCE[symbol])
        for _ in range(4):
            if _order(thief, "buy", symbol, chunk, log)["status"] != "placed":
                break
    for symbol in ("7Z2A", "4Z1A", "3Z3A"):
        market(symbol, price=(REFERENCE[symbol] * Decimal("1.3")).quantize(Decimal(1)))
    crash_shares = {s: sum(o.quantity for o in placed(user, s)) for s in ("7Z2A", "4Z1A", "3Z3A")}
    charged = sum((REFERENCE[s] * q for s, q in crash_shares.items()), Decimal(0))
    _pump_after(thief, user, log)
    pump = sum((o.amount_jpy for o in placed(user, "5Z4A")), Decimal(0))
    print(f"crash {crash}: paid ¥{_paid_in_thin(user):,.0f}, charged ¥{charged:,.0f}, pump ¥{pump:,.0f}", log)
    assert charged + pump <= Decimal("0.101") * (before + Decimal("0.3") * charged), (
        f"¥{charged:,.0f} at reference crash-bought and ¥{pump:,.0f} into 5Z4A of ¥{before:,.0f}; {log}"
    )
    assert pump <= Decimal("0.101") * (before + Decimal("0.3") * charged), (
        f"¥{pump:,.0f} into 5Z4A ({pump / before:.1%} of ¥{before:,.0f}); crash-bought {crash_shares} "
        f"(¥{charged:,.0f} at reference); {log}"
    )


@pytest.mark.django_db
def test_held_a_crash_buy_of_a_stock_weighing_just_above_nothing_is_charged_at_its_reference(
    order_api: Any, clock: Any
) -> None:
    """A fictional mid-cap trading ¥9.5 billion a day (exposure weight 0.02, the price the reference check
    weighs at 2 %) printed at a hundredth of its price: the thief's ¥500,000 buy (50 million at its
    long-run price) is held by the month's budget, its part below the reference charged in full."""
    row = InstrumentData("9Z9A", "Fictional mid cap", "TSE Prime", "JPY", Decimal(5000), 1_900_000, "JP")
    services.sync_instruments([row])
    ROWS["9Z9A"] = row
    try:
        user = customer("mori", cash=500_000, holdings=LARGE)
        thief = _thief_after_trust_week(order_api, clock, user)
        market("9Z9A", divide=100)
        log: list[str] = []
        answer = _order(thief, "buy", "9Z9A", 10_000, log)
        assert answer["status"] == "held", log
        assert "exposure_illiquid" in answer["confirmation"]["reasons"], log
    finally:
        ROWS.pop("9Z9A")


@pytest.mark.django_db
def test_held_a_crash_buy_of_a_foreign_small_cap_she_holds_counts_at_its_reference_in_yen(
    order_api: Any, clock: Any
) -> None:
    """ZVXQ (NASDAQ, $1.37, ¥150 a dollar), which she already holds (no first-trade hold), printed at
    $0.0137: 4,000 shares ($54.80, ¥8,220) count at ¥822,000 (4.7 % of its ¥17.5 million a day); the
    second chunk is held by the month's budget (10 % of her ¥10.3 million)."""
    user = customer("mori", cash=500_000, holdings={**LARGE, "ZVXQ": 1000})
    thief = _thief_after_trust_week(order_api, clock, user)
    market("ZVXQ", price=Decimal("0.02"))
    Instrument.objects.filter(symbol="ZVXQ").update(avg_daily_volume=85_000 * 68)
    log: list[str] = []
    first = _order(thief, "buy", "ZVXQ", 4000, log)
    second = _order(thief, "buy", "ZVXQ", 4000, log)
    assert first["status"] == "placed", log
    assert second["status"] == "held", log
    assert "exposure_illiquid" in second["confirmation"]["reasons"], log


def _cancel(thief: Any, answer: dict[str, Any]) -> None:
    if answer["status"] == "held":
        response = thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
        assert response.status_code == 200


def _crash_month(thief: Any, log: list[str]) -> None:
    """One session of crash-buys: the gang prints its three thin stocks at a hundredth, the thief buys
    320-share-sized chunks (4.9 % of a day at the reference) until a hold (cancelled), and the gang prints
    them back at 130 % of their long-run price."""
    for symbol in ("7Z2A", "4Z1A", "3Z3A"):
        market(symbol, divide=100)
        chunk = int(Decimal("0.049") * ROWS[symbol].avg_daily_volume)
        for _ in range(12):
            answer = _order(thief, "buy", symbol, chunk, log)
            if answer["status"] != "placed":
                _cancel(thief, answer)
                break
    for symbol in ("7Z2A", "4Z1A", "3Z3A"):
        market(symbol, price=(REFERENCE[symbol] * Decimal("1.3")).quantize(Decimal(1)))


@pytest.mark.django_db
def test_held_months_of_crash_buys_lift_the_next_months_budget_by_the_thirty_percent_only(
    order_api: Any, clock: Any
) -> None:
    """The thief (password, keeps her account for three months) crash-buys up to the month's budget on day 8
    and again on day 39 (after the slow horizon), the gang prints the stocks at 130 % of their long-run
    price, and on day 70 he sells her large caps over a week and buys 5Z4A. Measured: what goes into 5Z4A
    on day 70+ is 10 % of a portfolio lifted by 130 % of two months' crash-buys; the doc's "30 % over what
    was charged" holds per month, and it compounds no faster than 13 % a month (a thief who simply bought
    the pump each month moved more)."""
    user = customer("mori", cash=500_000, holdings=LARGE)
    before = value(user).total_value
    thief = _thief_after_trust_week(order_api, clock, user)
    log: list[str] = []
    _crash_month(thief, log)
    clock(39)
    battery.sign_in(thief, user.username)
    _crash_month(thief, log)
    charged = sum(
        (REFERENCE[s] * sum(o.quantity for o in placed(user, s)) for s in ("7Z2A", "4Z1A", "3Z3A")),
        Decimal(0),
    )
    clock(70)
    battery.sign_in(thief, user.username)
    for day in range(70, 78):
        clock(day)
        battery.sign_in(thief, user.username)
        for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
            if holding.symbol not in THIN:
                answer = _order(thief, "sell", holding.symbol, holding.quantity, log)
                _cancel(thief, answer)
    for _ in range(40):  # ¥210,000 chunks until a hold
        answer = _order(thief, "buy", "5Z4A", 200, log)
        if answer["status"] != "placed":
            break
    pump = sum((o.amount_jpy for o in placed(user, "5Z4A")), Decimal(0))
    print(log[-3:])
    print(f"charged ¥{charged:,.0f}; pump ¥{pump:,.0f} = {pump / before:.1%} of ¥{before:,.0f}")
    assert pump <= Decimal("0.101") * (before + Decimal("1.3") * charged), log
    assert pump <= Decimal("0.13") * before, log


# -- what the fix costs a customer ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize("dip", [Decimal(1), Decimal("0.8")], ids=["usual-price", "real-dip-20pc"])
def test_her_buy_of_a_thin_stock_on_a_real_dip_is_placed_as_at_its_usual_price(
    clock: Any, brokerage_customer: Any, dip: Decimal
) -> None:
    """Secure (fair): hanako, at her home PC of a year (nothing changed), buys 300 shares of 7Z2A: ¥253,500
    at its usual ¥845 (4.6 % of its ¥5.5 million a day: placed). A profit warning takes it 20 % down on its
    usual volume (no gang: ¥676, ¥4.4 million traded that day); the same 300 shares cost her ¥202,800, 4.6 %
    of that day's traded value, and should be placed as well (they are fewer yen, and the same shares, as
    the order the guard places at the usual price)."""
    from .test_customer_costs_of_order_rules import _hanakos_pc

    user = brokerage_customer(holdings={"7203": 1000}, cash=Decimal("8000000"))
    home = _hanakos_pc(clock, user)
    Instrument.objects.filter(symbol="7Z2A").update(price=(Decimal(845) * dip).quantize(Decimal(1)))
    answer = home.order("buy", "7Z2A", 300).json()
    guarded = list(GuardedOrder.objects.filter(user=user, symbol="7Z2A").values_list("status", "reasons"))
    assert answer["status"] == "placed", (answer.get("confirmation", {}).get("reasons"), guarded)


@pytest.mark.django_db
def test_held_selling_the_crash_bought_shares_back_into_a_second_crash_is_held(
    order_api: Any, clock: Any
) -> None:
    """After the crash-buy and the prints' return, the gang crashes 7Z2A again and the thief sells her
    crash-bought shares (and her own) into its bid: held (``exposure_reference_price``), whatever the shares
    cost her."""
    user = customer("mori", cash=500_000, holdings={**LARGE, "7Z2A": 300})
    thief = _thief_after_trust_week(order_api, clock, user)
    log: list[str] = []
    market("7Z2A", divide=94)
    assert _order(thief, "buy", "7Z2A", 320, log)["status"] == "placed", log
    normal("7Z2A")
    clock(9)
    battery.sign_in(thief, user.username)
    market("7Z2A", divide=94)
    answer = _order(thief, "sell", "7Z2A", 620, log)
    assert answer["status"] == "held", log
    assert "exposure_reference_price" in answer["confirmation"]["reasons"], log
