"""Red team, round twenty-three: an order of a thin stock checked at the price the gang printed that day
(now held).

Round twenty bounded a fill to the price the guard *checked*; the checked price is the day's quote, and in a
thin stock the gang is the market for the whole day. Its wash trades print ¥85 for a stock worth ¥845, the
portal's market-data sync (``services.sync_instruments``) writes that price before the thief quotes, and the
sell rules measure the victim's shares at it: 3 % of the base, under every limit, sold into the gang's bid.
The mirror is the pump the 2025 gangs sold into victims' cash: a buy checked at ten times the usual price.

The portal now gives the instrument's long-run price (``InstrumentInfo.reference_price``, the demo's
``Instrument.reference_price``, migration ``brokerage.0004``, kept by the sync like the long-run daily value),
and the ``Exposure`` rule holds an order of a thin stock checked more than ``max_reference_deviation`` (30 %,
halved for an account whose sign-in context changed) below it for a sell, or above it for a buy, weighted by
the instrument's exposure weight, so a liquid stock is never held for its price
(``exposure_reference_price``).
Without a reference price the guard behaves as before and logs ``authguard.W124`` once per process
(docs/order-guard.md, "Exposure over days").
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.checks import run_checks
from django.utils import translation

from authguard.checks import Codes
from authguard.models import HeldOrder
from authguard.orders import facts as guard_facts
from authguard.orders import rules as r
from authguard.orders.rule_base import render_message
from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.models import Instrument, Order, OrderStatus

from . import test_battery_exposure as battery
from .conftest import settle_device
from .test_battery_exposure import PASSWORD, PUMPED, customer, placed_buys, sign_in, value
from .test_orders_rules import exposure_facts

start = battery.start
clock = battery.clock

#: The round's victim: ¥10.66 million, of which 3,000 shares of 7Z2A (¥845) are ¥2.54 million, 24 %.
HOLDINGS = {"7203": 1000, "6758": 500, "8306": 1000, "9432": 8000, PUMPED: 3000}


def _market_data(symbol: str, *, price: str, volume: int | None = None) -> None:
    """The day's market data for ``symbol`` as the portal syncs it (the gang's own trades set a thin stock's
    last price and volume); the row carries no long-run values, as a day's data does not."""
    row = next(r for r in INSTRUMENTS if r.symbol == symbol)
    day = replace(row, price=Decimal(price), avg_daily_volume=volume or row.avg_daily_volume)
    services.sync_instruments([day])


def _her_own_browser(order_api: Any, clock: Any, user: Any) -> Any:
    """The customer in her browser of more than a year, signed in today: an account whose context did not
    change (her full limits)."""
    clock(-10)
    api = order_api()
    api.login_known(user.username, PASSWORD)
    settle_device(api.client.cookies["authguard_device"].value, user, days=400)
    clock(0)
    sign_in(api, user.username)
    return api


def _thief(order_api: Any, clock: Any, user: Any) -> Any:
    """The thief with the phished password on a new device: the account's lowered limits."""
    clock(0)
    thief = order_api()
    thief.login(user.username, PASSWORD)
    return thief


# -- the attack and its mirror ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_a_sell_of_a_thin_holding_checked_at_the_gangs_crashed_price_is_held(
    order_api: Any, clock: Any
) -> None:
    """Round twenty bounded a sell's fill to the price the guard *checked*, so a crash between the quote and
    the fill fills nothing. But the gang is the market in 7Z2A for the whole day: its wash trades print ¥85
    (a tenth of ¥845) in the day's market data *before* the thief quotes. The thief sold the victim's 3,000
    shares: checked at ¥85 x 3,000 = ¥255,000, 3 % of the trusted base, under every sell limit (the lowered
    25 % of a new-device session included), placed at ¥85 into the gang's own bid: the victim's ¥2.5 million
    position (24 % of the portfolio) went for ¥255,000, ¥2.28 million to the gang, with no hold. Now the sell
    is checked against the stock's long-run price, 90 % below it: held for the customer's passkey."""
    clock(0)
    victim = customer("hayashi", cash=0, holdings=HOLDINGS)
    before = value(victim)
    thin = sum((h.value_jpy for h in before.holdings if h.symbol == PUMPED), Decimal(0))
    assert Decimal("0.2") < thin / before.total_value < Decimal("0.3")
    thief = _thief(order_api, clock, victim)
    _market_data(PUMPED, price="85", volume=65_000)  # the gang's wash trades at a tenth of the price
    answer = thief.order("sell", PUMPED, 3000).json()
    received = value(victim).cash - before.cash
    # Secure: the victim's thin holding does not go for a tenth of its value without the passkey.
    assert answer["status"] == "held" and received == 0, (answer["status"], f"received ¥{received:,.0f}")
    assert "exposure_reference_price" in answer["confirmation"]["reasons"], answer["confirmation"]["reasons"]
    # The customer's confirmation page (and the console) say why, in her language.
    held = HeldOrder.objects.get(pk=answer["confirmation"]["id"])
    (finding,) = [f for f in held.reasons if f["code"] == "exposure_reference_price"]
    assert finding["reason"] == (
        "This sell's price is 90 % below the usual price of 7Z2A, a thinly traded stock."
    )
    assert finding["evidence"]["price"] == "85.00" and finding["evidence"]["reference_price"] == "845.00"
    with translation.override("ja"):
        japanese = render_message(finding)
    assert japanese == "この売却の価格は、売買の少ない銘柄7Z2Aの通常の株価を90%下回っています。"


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_a_buy_of_a_thin_stock_checked_at_the_gangs_pumped_price_is_held(order_api: Any, clock: Any) -> None:
    """The mirror: the gang's wash trades print 7Z2A at ten times its price (¥8,450) and the thief buys 30
    shares with the victim's cash, ¥253,500: 4.6 % of the stock's long-run day, 2 % of the portfolio, under
    the lowered 300,000 of a new-device session and every exposure limit of a changed account: placed, and
    the victim paid ten times what the shares are worth, to the gang. Now held: 900 % above its usual
    price."""
    clock(0)
    victim = customer("mori", cash=3_000_000, holdings={"7203": 1000, "6758": 500, "8306": 1000})
    thief = _thief(order_api, clock, victim)
    _market_data(PUMPED, price="8450", volume=65_000)
    answer = thief.order("buy", PUMPED, 30).json()
    # Secure: no yen of the victim's cash into the pump without the passkey.
    assert answer["status"] == "held" and placed_buys(victim, PUMPED) == 0, answer
    assert answer["confirmation"]["reasons"] == ["exposure_reference_price"], answer
    held = HeldOrder.objects.get(pk=answer["confirmation"]["id"])
    assert held.reasons[0]["reason"].startswith("This buy's price is 900 % above the usual price of 7Z2A")


# -- what it does not hold ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_liquid_stocks_big_day_is_not_held_even_on_a_changed_account(order_api: Any, clock: Any) -> None:
    """Toyota down 20 % and Sony up 20 % on the day (more than a normal day's move): a new-device session
    sells and buys them as before. A stock trading ¥10 billion a day or more weighs 0 on the liquidity scale,
    and no gang's trades set its price."""
    clock(0)
    user = customer("ishida", cash=2_000_000, holdings={"7203": 1000, "6758": 500})
    toyota = services.guard_instrument("7203")
    assert toyota is not None and toyota.reference_price == Decimal(2850)
    thief = _thief(order_api, clock, user)
    _market_data("7203", price="2280")
    _market_data("6758", price="4680")
    assert thief.order("sell", "7203", 100).json()["status"] == "placed"
    assert thief.order("buy", "6758", 100).json()["status"] == "placed"


@pytest.mark.django_db
def test_a_thin_stocks_move_within_the_deviation_is_not_held(order_api: Any, clock: Any) -> None:
    """7Z2A 25 % below its usual price (a profit warning and a limit-down day or two), then 25 % above it:
    the customer in her own browser sells 1,000 shares and buys 200, both placed (30 %). The same sell from
    a new device is held: an account whose sign-in context changed has the deviation halved, like every
    exposure limit (15 %)."""
    clock(-10)
    user = customer("okada", cash=1_000_000, holdings={**HOLDINGS, PUMPED: 2000}, home_device=False)
    thin = services.guard_instrument(PUMPED)
    assert thin is not None and thin.reference_price == Decimal(845)
    own = _her_own_browser(order_api, clock, user)
    _market_data(PUMPED, price="634")  # -25 %
    assert own.order("sell", PUMPED, 1000).json()["status"] == "placed"
    _market_data(PUMPED, price="1056")  # +25 %
    assert own.order("buy", PUMPED, 200).json()["status"] == "placed"
    _market_data(PUMPED, price="634")
    thief = order_api()
    thief.login(user.username, PASSWORD)
    answer = thief.order("sell", PUMPED, 500).json()
    assert answer["status"] == "held" and answer["confirmation"]["reasons"] == ["exposure_reference_price"]


def test_the_deviation_is_weighted_by_the_exposure_weight() -> None:
    """No floor to trade just above (case 53): a stock at ¥2 billion a day (exposure weight 0.61) is held
    only about 49 % below its usual price, a large cap (weight 0) never, an illiquid one at 30 %."""
    mid = r.InstrumentInfo(
        "6Z6A", Decimal(600), "JPY", "TSE Prime", "JP", avg_daily_value=Decimal(2_000_000_000),
        reference_price=Decimal(1000),
    )  # fmt: skip
    rule = r.Exposure()

    def found(instrument: r.InstrumentInfo, side: str = "sell") -> list[str]:
        return [f.code for f in rule.evaluate(exposure_facts(side, instrument, 100))]

    assert found(mid) == []  # 40 % below
    assert found(replace(mid, price=Decimal(450))) == ["exposure_reference_price"]  # 55 % below
    toyota = r.InstrumentInfo(
        "7203", Decimal(1140), "JPY", "TSE Prime", "JP", avg_daily_volume=25_000_000,
        reference_price=Decimal(2850),
    )  # fmt: skip
    assert found(toyota) == [] and found(replace(toyota, price=Decimal(9000)), "buy") == []
    thin = r.InstrumentInfo(
        "7Z2A", Decimal(590), "JPY", "TSE Standard", "JP", avg_daily_volume=6_500, is_small_cap=True,
        reference_price=Decimal(845),
    )  # fmt: skip
    assert found(thin) == ["exposure_reference_price"]  # 30.2 % below
    assert found(replace(thin, price=Decimal(600))) == []  # 29 % below
    assert found(replace(thin, price=Decimal(2000))) == []  # a sell above the usual price loses nothing
    assert found(replace(thin, price=Decimal(500)), "buy") == []  # nor a buy below it


# -- a portal that gives no reference price ------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_reference_price_the_guard_behaves_as_before_and_warns_once_per_process(
    order_api: Any, clock: Any, caplog: Any, monkeypatch: Any
) -> None:
    """A portal whose instrument hook gives no ``reference_price``: the guard cannot tell the gang's print
    from the price, the crashed sell is placed as before round twenty-three, and ``authguard.W124`` is logged
    once per process."""
    monkeypatch.setattr(guard_facts, "_warned", set())
    clock(0)
    victim = customer("hayashi", cash=0, holdings=HOLDINGS)
    Instrument.objects.update(reference_price=None)
    thief = _thief(order_api, clock, victim)
    _market_data(PUMPED, price="85", volume=65_000)
    with caplog.at_level(logging.WARNING, logger="authguard.orders.facts"):
        assert thief.order("sell", PUMPED, 1000).json()["status"] == "placed"
        assert thief.order("sell", PUMPED, 1000).json()["status"] == "placed"
    warnings = [r for r in caplog.records if Codes.ORDER_REFERENCE_PRICE_MISSING in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert "7Z2A" in warnings[0].getMessage() and "reference_price" in warnings[0].getMessage()
    assert Codes.ORDER_REFERENCE_PRICE_MISSING == "authguard.W124"


@pytest.mark.django_db
def test_the_reference_price_warning_is_silenced_like_a_check(
    order_api: Any, clock: Any, caplog: Any, monkeypatch: Any, settings: Any
) -> None:
    monkeypatch.setattr(guard_facts, "_warned", set())
    settings.SILENCED_SYSTEM_CHECKS = [Codes.ORDER_REFERENCE_PRICE_MISSING]
    clock(0)
    user = customer("hayashi", cash=1_000_000, holdings={})
    Instrument.objects.update(reference_price=None)
    api = _thief(order_api, clock, user)
    with caplog.at_level(logging.WARNING, logger="authguard.orders.facts"):
        assert api.order("buy", "7203", 10).json()["status"] == "placed"
    assert Codes.ORDER_REFERENCE_PRICE_MISSING not in caplog.text


# -- the option, the demo's long-run price ------------------------------------------------------------------


@pytest.mark.parametrize("deviation", [0, 1, 1.5, "0.3", True])
def test_the_deviation_option_is_checked(settings: Any, deviation: Any) -> None:
    """``max_reference_deviation`` is above 0 and below 1 (at 1 no sell is ever held); otherwise the rule
    list fails ``authguard.E020``, like every rule option."""
    with pytest.raises(ValueError, match="max_reference_deviation|non-negative number"):
        r.Exposure(max_reference_deviation=deviation)
    settings.AUTHGUARD_ORDER_RULES = [
        {"NAME": "authguard.order_rules.Exposure", "OPTIONS": {"max_reference_deviation": deviation}}
    ]
    assert Codes.ORDER_RULES_INVALID in {m.id for m in run_checks()}


@pytest.mark.django_db
def test_syncing_the_days_prices_keeps_the_long_run_price(tanaka: Any) -> None:
    """After a sync of the gang's day the stock's long-run price is still its own (¥845); a row with an
    explicit long-run price (the portal's market data moved its median) sets it; a symbol the demo does not
    know yet starts from its row's price. Both instrument hooks and the portfolio hook's positions give it."""
    _market_data(PUMPED, price="85", volume=65_000)
    hooked = services.guard_instrument(PUMPED)
    assert hooked is not None and hooked.price == Decimal(85)
    # Secure: a price update does not make the gang's print the usual price.
    assert hooked.reference_price == Decimal(845)
    draft = services.validate_order(tanaka, side="buy", symbol=PUMPED, quantity=10)
    assert services.instrument_info(draft).reference_price == Decimal(845)
    positions = {h.symbol: h.instrument for h in services.guard_portfolio(tanaka).holdings}
    assert all(i is not None and i.reference_price is not None for i in positions.values())
    row = next(r for r in INSTRUMENTS if r.symbol == PUMPED)
    new = replace(row, symbol="6Z6A", name="Fictional New Listing", price=Decimal(410))
    services.sync_instruments([replace(row, reference_price=Decimal(800)), new])
    stored = dict(Instrument.objects.values_list("symbol", "reference_price"))
    assert stored[PUMPED] == Decimal(800) and stored["6Z6A"] == Decimal(410)


@pytest.mark.django_db
def test_the_migration_seeds_the_long_run_price_of_existing_instruments(tanaka: Any) -> None:
    migration = importlib.import_module("demo_site.brokerage.migrations.0004_instrument_reference_price")
    Instrument.objects.update(reference_price=None)
    migration.seed_reference_prices(django_apps, None)
    seeded = dict(Instrument.objects.values_list("symbol", "reference_price"))
    assert seeded[PUMPED] == Decimal(845) and seeded["AAPL"] == Decimal(230) and None not in seeded.values()


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_a_print_walked_down_over_days_never_moves_the_reference_and_each_slice_is_bounded(
    order_api: Any, clock: Any
) -> None:
    """Red team, round twenty-four (the defence held). Day by day the gang prints 7Z2A 14 % lower than the
    day before (¥727, ¥625, ¥537, ...) and the thief
    (a new device: the changed account's 15 %) sells 500 of the victim's 3,000 shares each day. Only the
    first day's slice is placed; every later one is measured against the unchanged ¥845 and held, so the
    victim's loss is bounded by 15 % of what was sold."""
    clock(0)
    victim = customer("kondo", cash=0, holdings=HOLDINGS)
    thief = _thief(order_api, clock, victim)
    price = Decimal(845)
    statuses = []
    for day in range(6):
        clock(day)
        sign_in(thief, victim.username)
        price = (price * Decimal("0.86")).quantize(Decimal(1))
        _market_data(PUMPED, price=str(price))
        statuses.append(thief.order("sell", PUMPED, 500).json()["status"])
    assert Instrument.objects.get(symbol=PUMPED).reference_price == Decimal(845)
    placed = Order.objects.filter(account__user=victim, side="sell", status=OrderStatus.PLACED)
    loss = sum((o.quantity * Decimal(845) - o.amount_jpy for o in placed), Decimal(0))
    sold = sum((o.quantity * Decimal(845) for o in placed), Decimal(0))
    assert statuses[0] == "placed" and set(statuses[1:]) == {"held"}, statuses
    assert loss <= Decimal("0.15") * sold, (loss, sold)
