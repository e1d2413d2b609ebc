"""Red team, round twenty: the base of the sell limits valued at the pumped price of the gang's own stock (now
held).

``OrderFacts.sold_share`` divides the sells by the holdings' value at the window's start: today's holdings
(the portfolio hook, at today's prices) plus what was sold, minus what was *paid* for buys. A stock the gang
pumps was in the victim's portfolio at the pumped price, so every pumped yen widened every sell limit (the
24-hour rules, the risky session's 25 %, the exposure week's and month's). The base now counts each position
at what the guard can trust of its value: a liquid stock's in full, an illiquid one's not at all, in between
the share the exposure limits do not count (``rule_base.base_weight``), read from the instrument data the
portfolio hook gives with each position (``HoldingValue.instrument``; without it the position counts in full
and ``authguard.W123`` is logged once per process). docs/order-guard.md, "Exposure over days".
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import timezone

from authguard.checks import Codes
from authguard.orders import facts as guard_facts
from authguard.orders import guard, rule_base
from authguard.orders.rule_base import (
    HoldingValue,
    InstrumentInfo,
    OrderFacts,
    PortfolioSnapshot,
    SessionFacts,
    WindowTotals,
)
from demo_site.brokerage import services
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Instrument

from . import test_battery_exposure as battery
from .conftest import settle_device
from .test_battery_exposure import PASSWORD, PUMPED, customer, home_pc, sign_in, value

start = battery.start
clock = battery.clock


def _sell_largest_first(thief: Any, user: Any) -> tuple[Decimal, list[str]]:
    """Sell whole large-cap positions, largest first, skipping any that is held (then cancelled)."""
    sold = Decimal(0)
    statuses = []
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.is_small_cap:
            continue
        answer = thief.order("sell", holding.symbol, holding.quantity).json()
        statuses.append(answer["status"])
        if answer["status"] == "placed":
            sold += Decimal(answer["order"]["amount_jpy"])
        elif answer["status"] == "held":
            thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
    return sold, statuses


@pytest.mark.django_db
@pytest.mark.battery(64)
@pytest.mark.parametrize("pump", [1, 20, 100])
def test_the_gangs_pump_of_its_own_stock_does_not_widen_the_victims_sell_limits(
    order_api: Any, clock: Any, tanaka: Any, pump: int
) -> None:
    """A thief on a new device (a risky session on a changed account: 25 % of the holdings) first buys 320
    shares of 7Z2A, ¥270,400, under every limit (the patient attacker's first step, battery 49). The gang
    pumps 7Z2A twentyfold: the 320 shares were "worth" ¥5.4 million in the portfolio hook, and the base the
    sells were judged against ¥15.1 million instead of ¥9.9 million. The thief then sold the large caps
    largest first: without the pump 23 % of the holdings was placed (the rest held); with it about 37 %, with
    no hold; pumped a hundredfold, 91 %. The small cap now counts nothing in the base, pumped or not
    (``pump`` 1 is the control): every sell beyond the quarter is held."""
    home_pc(tanaka)
    clock(0)
    holdings_before = value(tanaka).holdings_value
    thief = order_api()
    thief.login(TANAKA.username, TANAKA.password)  # a new device: risky session, account context changed
    bought = thief.order("buy", PUMPED, 320).json()
    assert bought["status"] == "placed", bought
    Instrument.objects.filter(symbol=PUMPED).update(price=Decimal(845 * pump))  # the gang's wash trades
    sold, statuses = _sell_largest_first(thief, tanaka)
    share = sold / holdings_before
    # Secure: the thief sells at most a quarter of the victim's holdings without the passkey, however high
    # the gang has pumped the stock it just made the victim buy.
    assert share <= Decimal("0.26"), (f"pump x{pump}: sold {share:.1%} of the holdings", statuses)
    assert "held" in statuses


# -- legit: a customer holding small caps rebalances -------------------------------------------------------

#: Three large caps (¥3.4 million) and three small caps (about ¥600,000) the customer has held for years.
ENTHUSIAST = {"7203": 400, "6758": 300, "8306": 500, "4Z1A": 640, "7Z2A": 236, "3Z3A": 1575}


def _her_usual_browser(order_api: Any, clock: Any, user: Any) -> Any:
    """The browser the customer has signed in from for a year, signed in today."""
    clock(-10)
    browser = order_api()
    browser.login_known(user.username, PASSWORD)
    settle_device(browser.client.cookies["authguard_device"].value, user, days=400)
    clock(0)
    sign_in(browser, user.username)
    return browser


@pytest.mark.django_db
def test_a_customer_holding_small_caps_rebalances_her_large_caps_without_a_hold(
    order_api: Any, clock: Any
) -> None:
    """Legit: the base leaves her small caps out (about 15 % of her holdings), so her sell limits are
    15 % tighter in yen than before, and no more. She moves ¥1.57 million between large caps on one day
    (39 % of all her holdings, 46 % of her large caps: under the 50 % of the 24-hour and weekly limits),
    sells a third of one small cap (its sale counts against the base like any other) and buys large caps
    with the proceeds: nothing is held."""
    user = customer("yamada", cash=300_000, holdings=ENTHUSIAST, home_device=False)
    browser = _her_usual_browser(order_api, clock, user)
    before = value(user)
    small = sum((h.value_jpy for h in before.holdings if h.is_small_cap), Decimal(0))
    assert Decimal("0.14") < small / before.holdings_value < Decimal("0.16")
    orders = [("sell", "6758", 300), ("sell", "7203", 140), ("sell", "7Z2A", 78), ("buy", "8306", 800)]
    answers = [browser.order(side, symbol, quantity).json() for side, symbol, quantity in orders]
    # Legit: every order of the rebalancing is placed.
    assert [a["status"] for a in answers] == ["placed"] * len(orders), answers
    sold = sum((Decimal(a["order"]["amount_jpy"]) for a in answers[:3]), Decimal(0))
    assert sold / before.holdings_value > Decimal("0.39")


@pytest.mark.django_db
def test_a_customer_on_a_new_phone_sells_a_small_cap_without_a_hold(order_api: Any, clock: Any) -> None:
    """Legit: on a new device (the lowered limits: 25 % of the holdings) she sells a third of one small cap
    and a tenth of a large cap: 5 % of the base, placed."""
    customer("kato", cash=0, holdings=ENTHUSIAST)
    clock(0)
    browser = order_api()
    browser.login("kato", PASSWORD)  # a new device: a risky session
    assert browser.order("sell", "4Z1A", 210).json()["status"] == "placed"
    assert browser.order("sell", "7203", 40).json()["status"] == "placed"


# -- the rule: what the base trusts of each position -------------------------------------------------------


def _instrument(symbol: str, *, daily: int, small_cap: bool = False, baseline: int | None = None) -> Any:
    return InstrumentInfo(
        symbol=symbol, price=Decimal(1000), currency="JPY", market="TSE", listing_country="JP",
        avg_daily_value=Decimal(daily), is_small_cap=small_cap,
        baseline_daily_value=None if baseline is None else Decimal(baseline),
    )  # fmt: skip


def test_each_position_counts_in_the_base_as_far_as_its_market_is_liquid() -> None:
    """A stock at ¥10 billion a day or more counts in full; a small cap, anything under the liquidity floor
    or weighing 0.5 or more on the liquidity scale nothing; in between the share the exposure limits leave
    out. A pumped stock's long-run value keeps it thin."""
    base_weight, exposure_weight = rule_base.base_weight, rule_base.exposure_weight
    assert base_weight(exposure_weight(_instrument("7203", daily=70_000_000_000))) == 1
    assert base_weight(exposure_weight(_instrument("7Z2A", daily=5_500_000, small_cap=True))) == 0
    assert base_weight(exposure_weight(_instrument("5Z4A", daily=105_000_000))) == 0
    two_billion = base_weight(exposure_weight(_instrument("X", daily=2_000_000_000)))
    assert Decimal("0.38") < two_billion < Decimal("0.40")
    pumped = _instrument("5Z4A", daily=10_500_000_000, baseline=105_000_000)
    assert base_weight(exposure_weight(pumped)) == 0


def _facts(holdings: tuple[HoldingValue, ...], base: Decimal | None) -> OrderFacts:
    now = datetime(2026, 12, 1, tzinfo=timezone.get_fixed_timezone(0))
    return OrderFacts(
        side="sell", symbol="7203", quantity=100, amount=Decimal(100_000),
        instrument=_instrument("7203", daily=70_000_000_000),
        portfolio=PortfolioSnapshot("JPY", Decimal(0), holdings),
        windows={24: WindowTotals(24, now, sells_placed=Decimal(200_000), buys_placed=Decimal(50_000))},
        session=SessionFacts(known=True, login_action="allow"), now=now, illiquid=False, session_risky=False,
        base_holdings=base,
    )  # fmt: skip


def test_the_base_is_the_trusted_holdings_plus_sells_minus_buys() -> None:
    holdings = (
        HoldingValue("7203", 100, Decimal(1_000_000)),
        HoldingValue("7Z2A", 320, Decimal(5_408_000)),  # pumped twentyfold
    )
    share, sold, base = _facts(holdings, Decimal(1_000_000)).sold_share(24)
    assert (sold, base) == (Decimal(300_000), Decimal(1_150_000))
    # Without a trusted value (a portal's own OrderFacts): every position in full, as before.
    assert _facts(holdings, None).sold_share(24)[2] == Decimal(6_558_000)


def _request(user: Any) -> Any:
    request = RequestFactory().post("/api/orders")
    request.user = user
    request.session = {}
    return request


def portfolio_without_instruments(user: Any) -> PortfolioSnapshot:
    """A portfolio hook of before round twenty: the demo's positions without their instruments."""
    snapshot = services.guard_portfolio(user)
    return replace(snapshot, holdings=tuple(replace(h, instrument=None) for h in snapshot.holdings))


@pytest.mark.django_db
def test_the_guard_reads_the_base_from_the_instruments_the_portfolio_hook_gives(
    clock: Any, monkeypatch: Any, caplog: Any, settings: Any
) -> None:
    """Through the demo's hooks: the small caps count in the base at no more than their long-run price
    lifted by the reference deviation (round thirty-four; before, not at all), never at a pumped price. A
    portfolio hook that gives positions without their instrument (the contract before round twenty) has them
    counted in full, and ``authguard.W123`` is logged once per process."""
    user = customer("ono", cash=0, holdings=ENTHUSIAST)
    clock(0)
    draft = services.validate_order(user, side="sell", symbol="7203", quantity=10)
    intent = services.order_intent(user, draft)
    facts = guard.check_order(_request(user), intent, user=user).facts
    assert facts is not None
    large = sum((h.value for h in facts.portfolio.holdings if h.symbol[1] != "Z"), Decimal(0))
    small = sum(
        (
            min(h.value, Decimal(h.instrument.reference_price) * Decimal("1.3") * h.quantity)
            for h in facts.portfolio.holdings
            if h.symbol[1] == "Z" and h.instrument is not None and h.instrument.reference_price
        ),
        Decimal(0),
    )
    assert small > 0
    assert facts.base_holdings == (large + small).quantize(Decimal("0.01"))

    settings.AUTHGUARD_ORDER_PORTFOLIO = f"{__name__}.portfolio_without_instruments"
    monkeypatch.setattr(guard_facts, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="authguard.orders.facts"):
        legacy = guard.check_order(_request(user), intent, user=user).facts
        guard.check_order(_request(user), intent, user=user)
    assert legacy is not None and legacy.base_holdings == legacy.portfolio.holdings_value
    warnings = [r for r in caplog.records if Codes.ORDER_HOLDING_INSTRUMENT_MISSING in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert Codes.ORDER_HOLDING_INSTRUMENT_MISSING == "authguard.W123"
