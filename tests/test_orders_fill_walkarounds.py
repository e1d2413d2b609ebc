"""Red teams, rounds nineteen and twenty: the price the order guard checks is the price the order fills at
(now held).

The guard judges ``quantity x InstrumentInfo.price``; the demo filled the same quantity at whatever the price
was at execution (a market order). What the guard allows is an amount: its answer carries the
:class:`~authguard.orders.approval.Approval` (the checked quantity at the checked price), and the portal
executes the order as a limit order at that price; a price that moved out of the band fills nothing, and the
order is submitted through the guard again at the new price (docs/order-guard.md, "Integrating a portal").

Round twenty: the demo's limit was a buy limit for sells too. A sell filled at any price at or *below* the
checked one, so in a thin stock the gang's own bid took the victim's shares for a hundredth of what was
checked, and a customer's sell whose price ticked up a yen was refused. The band is now authguard's, one rule
for both sides (``approval.price_band``): a buy fills at most ``limit x (1 + tolerance)``, a sell at least
``limit x (1 - tolerance)``, with ``AUTHGUARD_ORDER_PRICE_TOLERANCE`` (1 %). A ``place`` that cannot take the
approval is still called, and ``authguard.W122`` is logged once per process.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.test import RequestFactory

from authguard.checks import Codes
from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from authguard.orders import approval as guard_approval
from authguard.orders import guard
from authguard.orders.approval import Approval, stored_approval, takes_approval
from demo_site.brokerage import services
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Instrument, Order, OrderStatus

from . import test_battery_exposure as battery
from .conftest import bind_passkey, settle_device
from .test_battery_exposure import (
    PASSWORD,
    customer,
    home_pc,
    placed_buys,
    sell_large_caps_up_to,
    sign_in,
    value,
)

start = battery.start
clock = battery.clock

PUMPED = "7Z2A"  # a small cap: ¥845 x 6,500 shares = ¥5.5 million a day


def _checked(user: Any, symbol: str) -> Decimal:
    """What the guard's ledger counts as placed buys of ``symbol`` (the checked amounts)."""
    rows = GuardedOrder.objects.filter(user=user, symbol=symbol, side="buy", status=GuardStatus.PLACED)
    return rows.aggregate(total=Sum("amount"))["total"] or Decimal(0)


def _lift(symbol: str, price: str) -> None:
    Instrument.objects.filter(symbol=symbol).update(price=Decimal(price))


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_a_buy_fills_at_the_price_the_guard_checked_not_at_a_price_the_gang_lifted_meanwhile(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any, monkeypatch: Any
) -> None:
    """The guard judged ``quantity x InstrumentInfo.price`` (the portal's quote when the order was validated);
    the demo's ``place()`` (``execute_order``) re-read the instrument and filled the same quantity at
    whatever the price was by then, with no bound (a market order). In a thin stock the gang *is* the
    market: its own ask lifts the price between the quote and the fill. The victim's 320 shares of 7Z2A
    were checked as ¥270,400 (4.9 % of a day's value, 2.4 % of the portfolio: under every limit) and filled
    at ten times that, ¥2.7 million: 24 % of the portfolio in the pumped stock, with no hold; the ledger kept
    the checked ¥270,400, so every later limit undercounted too. Now the order is a limit order at the
    checked price: it fills nothing (a clear 400, never a 500), and submitted again it is checked at the
    price it would fill at, and held."""
    bind_passkey(tanaka, authenticator)
    home_pc(tanaka)
    clock(-10)
    thief = order_api()
    thief.login_known(TANAKA.username, TANAKA.password)
    settle_device(thief.client.cookies["authguard_device"].value, tanaka, days=400)
    clock(0)
    sign_in(thief, TANAKA.username, TANAKA.password)
    before = value(tanaka)
    sell_large_caps_up_to(thief, tanaka, Decimal("0.2"))  # ~¥2 million of large caps: cash for the fill

    real = services.order_intent

    def quote_then_gang_lifts_the_ask(user: Any, draft: Any) -> Any:
        intent = real(user, draft)
        if draft.symbol == PUMPED and draft.side == "buy":
            # The gang's own trade lands between the portal's quote and the fill.
            _lift(PUMPED, "8450")
        return intent

    monkeypatch.setattr(services, "order_intent", quote_then_gang_lifts_the_ask)
    response = thief.order("buy", PUMPED, 320)
    answer = response.json()
    paid = placed_buys(tanaka, PUMPED)
    # Secure: what the customer pays without her passkey is what the guard allowed (or the order is held).
    assert answer["status"] == "held" or paid <= _checked(tanaka, PUMPED), (answer["status"], paid)
    assert paid <= Decimal("0.10") * before.total_value, (paid, before.total_value)
    # The price moved: nothing executed, nothing recorded, and the customer is told why.
    assert response.status_code == 400 and answer["status"] == "invalid", answer
    assert "¥8,450" in answer["errors"]["price"][0] and "¥845" in answer["errors"]["price"][0]
    assert not GuardedOrder.objects.filter(user=tanaka, symbol=PUMPED).exists()
    # Submitted again, the order is checked at the price it would fill at: ¥2.7 million, held.
    again = thief.order("buy", PUMPED, 320).json()
    assert again["status"] == "held", again
    assert placed_buys(tanaka, PUMPED) == 0


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_a_held_buy_confirmed_after_the_gang_lifted_the_price_is_not_executed_at_the_new_price(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """The customer confirms "Buy 1,000 of 7Z2A (¥845,000)" with her passkey; meanwhile the gang has lifted
    the price tenfold. The executor used to fill the stored quantity at the price of the moment (¥8.45
    million). It executes the stored order within its stored approval: nothing fills above the checked price
    (400 ``not_executable``), and the same order confirmed at an unchanged price fills at it."""
    user = customer("kimura", cash=12_000_000, holdings={"7203": 100}, authenticator=authenticator)
    clock(0)
    client = order_api()
    client.login("kimura", PASSWORD)
    first = client.order("buy", PUMPED, 1000).json()  # 15 % of a day's value: held
    second = client.order("buy", PUMPED, 1000).json()
    assert first["status"] == second["status"] == "held", (first, second)
    held = HeldOrder.objects.get(pk=first["confirmation"]["id"])
    assert Order.objects.get(pk=first["order_id"]).price == Decimal(845)

    _lift(PUMPED, "8450")
    refused = client.confirm_with_passkey(first["confirmation"]["id"], authenticator)
    assert refused.status_code == 400 and refused.json()["code"] == "not_executable", refused.content
    assert "¥8,450" in refused.json()["message"]
    assert placed_buys(user, PUMPED) == 0
    assert Order.objects.get(pk=first["order_id"]).status != OrderStatus.PLACED

    _lift(PUMPED, "800")  # a lower price is within what was checked
    confirmed = client.confirm_with_passkey(second["confirmation"]["id"], authenticator)
    assert confirmed.status_code == 200, confirmed.content
    order = Order.objects.get(pk=second["order_id"])
    assert order.status == OrderStatus.PLACED and order.price == Decimal(800)
    assert placed_buys(user, PUMPED) == Decimal(800_000)
    approval = stored_approval(held)  # what the executor read: the stored order at its checked price
    assert (approval.limit_price, approval.amount, approval.quantity) == (845, 845_000, 1000)


def _between_quote_and_fill(monkeypatch: Any, symbol: str, price: str) -> None:
    """The market moves between the portal's quote (validate_order) and the fill (execute_order)."""
    real = services.order_intent

    def moved(user: Any, draft: Any) -> Any:
        intent = real(user, draft)
        if draft.symbol == symbol:
            _lift(symbol, price)
        return intent

    monkeypatch.setattr(services, "order_intent", moved)


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_a_sell_of_a_thin_holding_does_not_fill_at_the_gangs_crashed_bid(
    order_api: Any, clock: Any, monkeypatch: Any
) -> None:
    """The victim holds 3,000 shares of the small cap 7Z2A (¥2.5 million). The thief sells 1,000 of them:
    ¥845,000 checked, 11.5 % of the holdings, under every limit, placed. Between the quote and the fill the
    gang (which *is* the market in 7Z2A) drops its bid to ¥8; execute_order filled the sell because ¥8 was
    "at or below" the checked ¥845, and the victim received ¥8,000: ¥837,000 (11.4 % of the portfolio) went
    to the gang's bid without a hold. A sell limit at the checked price fills at ¥845 or more (¥836.55 with
    the 1 % tolerance), or not at all: here a clear 400 that says the price is now below."""
    user = customer("kimura", cash=0, holdings={"7203": 1000, "6758": 500, PUMPED: 3000})
    clock(0)
    thief = order_api()
    thief.login("kimura", PASSWORD)
    before = value(user)
    _between_quote_and_fill(monkeypatch, PUMPED, "8")
    response = thief.order("sell", PUMPED, 1000)
    answer = response.json()
    received = value(user).cash - before.cash
    # Secure: a sell the guard checked at ¥845,000 is never executed for less than that (or not at all).
    assert answer["status"] != "placed" or received >= Decimal(845_000), (answer["status"], received)
    assert response.status_code == 400 and answer["status"] == "invalid", answer
    assert "now ¥8, below the ¥845" in answer["errors"]["price"][0], answer["errors"]
    still = {h.symbol: h.quantity for h in value(user).holdings}
    assert received == 0 and still[PUMPED] == 3000


@pytest.mark.django_db
def test_a_customers_sell_whose_price_ticked_up_a_yen_fills(
    order_api: Any, clock: Any, monkeypatch: Any
) -> None:
    """Legit: a customer sells 100 Toyota at the quoted ¥2,850; by the fill it trades at ¥2,851. A sell limit
    at ¥2,850 fills at ¥2,851 (better for her); the demo answered 400 "the price is now above" and sold
    nothing, so on a rising market her sell failed again and again. It fills."""
    user = customer("sato", cash=0, holdings={"7203": 1000, "6758": 1000})
    clock(0)
    browser = order_api()
    browser.login_known("sato", PASSWORD)
    _between_quote_and_fill(monkeypatch, "7203", "2851")
    response = browser.order("sell", "7203", 100)
    # Legit: the sell is executed (at the better price), not refused.
    assert response.status_code == 201 and response.json()["status"] == "placed", response.content
    assert value(user).cash == Decimal(285_100)


@pytest.mark.django_db
def test_a_customers_buy_whose_price_ticked_up_within_the_tolerance_fills(
    order_api: Any, clock: Any, monkeypatch: Any, settings: Any
) -> None:
    """Legit: a buy whose price ticked up by a yen (0.04 %) fills within the 1 % tolerance; with
    ``AUTHGUARD_ORDER_PRICE_TOLERANCE = 0`` (the exact limit) the same tick refuses it."""
    user = customer("ito", cash=1_000_000, holdings={"6758": 100})
    clock(0)
    browser = order_api()
    browser.login_known("ito", PASSWORD)
    _between_quote_and_fill(monkeypatch, "7203", "2851")
    assert browser.order("buy", "7203", 100).json()["status"] == "placed"
    assert value(user).cash == Decimal(1_000_000 - 285_100)
    settings.AUTHGUARD_ORDER_PRICE_TOLERANCE = 0
    _lift("7203", "2850")
    refused = browser.order("buy", "7203", 100)
    assert refused.status_code == 400 and "above the ¥2,850" in refused.json()["errors"]["price"][0]


@pytest.mark.django_db
def test_a_held_sell_confirmed_with_the_passkey_fills_when_the_price_ticked_up(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Legit: the one customer in 500 who really sells everything is held (mass liquidation) and confirms
    with her passkey a minute later; Toyota has ticked up a yen. The executor refused the sell (400
    ``not_executable``) though she would receive more than she confirmed; submitted again it was held again,
    and on a rising market no confirmation ever executed. It fills, at the better price."""
    user = customer("suzuki", cash=0, holdings={"7203": 1000}, authenticator=authenticator)
    clock(0)
    browser = order_api()
    browser.login_known("suzuki", PASSWORD)
    answer = browser.order("sell", "7203", 1000).json()
    assert answer["status"] == "held", answer
    _lift("7203", "2851")
    confirmed = browser.confirm_with_passkey(answer["confirmation"]["id"], authenticator)
    # Legit: her passkey confirmation of "sell 1,000 Toyota (¥2,850,000)" sells them (for ¥2,851,000).
    assert confirmed.status_code == 200, confirmed.content
    assert Order.objects.get(pk=answer["order_id"]).status == OrderStatus.PLACED
    assert value(user).cash == Decimal(2_851_000)


@pytest.mark.django_db
def test_a_sell_fills_at_the_checked_price_or_higher_never_below_the_band(clock: Any) -> None:
    """A sell fills at the checked price or better (higher), down to the 1 % tolerance below it; lower, it
    fills nothing and says so (the round-nineteen rule refused the higher price and filled any lower one)."""
    user = customer("sato", cash=0, holdings={"7203": 1000})
    clock(0)
    draft = services.validate_order(user, side="sell", symbol="7203", quantity=100)
    _lift("7203", "2800")  # 1.75 % below
    with pytest.raises(services.PriceMoved) as moved:
        services.execute_order(user, draft)
    assert (moved.value.limit, moved.value.price, moved.value.side) == (2850, 2800, "sell")
    assert "below the ¥2,850" in moved.value.errors["price"][0]
    assert services.portfolio(user).cash == 0
    _lift("7203", "2822")  # within 1 %: ¥2,821.50 is the lowest fill
    order = services.execute_order(user, draft)
    assert (order.price, order.amount_jpy) == (Decimal(2822), Decimal(282_200))
    _lift("7203", "3000")  # a higher price is better for her
    order = services.execute_order(user, draft)
    assert order.amount_jpy == Decimal(300_000)
    assert services.portfolio(user).cash == Decimal(582_200)


@pytest.mark.django_db
def test_the_html_order_form_says_the_price_moved_instead_of_failing(
    order_api: Any, clock: Any, monkeypatch: Any
) -> None:
    """The demo's order form shows the moved price as the form's error: no 500, nothing executed."""
    user = customer("form", cash=1_000_000, holdings={"7203": 100})
    clock(0)
    browser = order_api()
    browser.login("form", PASSWORD)
    real = services.order_intent

    def lifted(who: Any, draft: Any) -> Any:
        intent = real(who, draft)
        _lift("7203", "2900")
        return intent

    monkeypatch.setattr(services, "order_intent", lifted)
    page = browser.client.post(
        "/trade/", {"side": "buy", "symbol": "7203", "quantity": "100"}, HTTP_X_CSRFTOKEN=browser.token
    )
    assert page.status_code == 200
    assert "¥2,900" in page.content.decode() and "¥2,850" in page.content.decode()
    assert not Order.objects.filter(account__user=user, side="buy").exists()


# -- the contract: the guard's answer carries what it checked --------------------------------------------


def _request(user: Any) -> Any:
    request = RequestFactory().post("/api/orders")
    request.user = user
    request.session = {}
    return request


@pytest.mark.django_db
def test_submit_order_hands_place_the_approval_at_the_price_the_instrument_hook_gave(
    clock: Any, settings: Any
) -> None:
    """The approval is the price the guard read (here the instrument hook's, not the portal's quote in the
    intent) and the value it counted; ``place`` that takes one argument gets it, ``Placed`` keeps it."""
    user = customer("hook", cash=10_000_000, holdings={"7203": 100})
    clock(0)
    draft = services.validate_order(user, side="buy", symbol="7203", quantity=100)
    intent = services.order_intent(user, draft)
    _lift("7203", "2900")  # the hook reads ¥2,900; the intent says ¥2,850
    given: list[Approval] = []

    def place(approval: Approval) -> str:
        given.append(approval)
        return "oms-1"

    placed = guard.submit_order(_request(user), user=user, intent=intent, place=place)
    assert isinstance(placed, guard.Placed) and placed.result == "oms-1"
    assert given == [placed.approval]
    approval = placed.approval
    assert approval is not None
    assert (approval.side, approval.symbol, approval.quantity) == ("buy", "7203", 100)
    assert (approval.limit_price, approval.currency) == (Decimal(2900), "JPY")
    assert approval.amount == GuardedOrder.objects.get(user=user).amount == Decimal(290_000)
    assert approval.allows(Decimal(2900)) and approval.allows(Decimal(2000))
    assert not approval.allows(Decimal("2900.01"))
    assert approval.allows(Decimal(2914), tolerance=Decimal("0.005"))
    assert not approval.allows(Decimal(2915), tolerance=Decimal("0.005"))
    assert approval.value_at(Decimal(2000)) == Decimal(200_000)
    # The configured band (1 %): a buy up to ¥2,929, no floor.
    assert approval.price_band() == (None, Decimal(2929))
    assert approval.fills_at(Decimal(2929)) and not approval.fills_at(Decimal("2929.01"))


def test_the_price_band_bounds_a_buy_from_above_and_a_sell_from_below(settings: Any) -> None:
    sell = Approval("sell", "7Z2A", 1000, Decimal(845), "JPY", Decimal(845_000), "JPY")
    assert sell.price_band() == (Decimal("836.55"), None)
    assert sell.fills_at(Decimal(845)) and sell.fills_at(Decimal(8450)) and sell.fills_at(Decimal("836.55"))
    assert not sell.fills_at(Decimal("836.54")) and not sell.fills_at(Decimal(8))
    assert not sell.allows(Decimal(844)) and sell.allows(Decimal(846))  # the exact limit: no tolerance
    assert guard_approval.price_band("buy", Decimal(100), tolerance=Decimal(0)) == (None, Decimal(100))
    settings.AUTHGUARD_ORDER_PRICE_TOLERANCE = "0.02"
    assert sell.price_band() == (Decimal("828.10"), None)
    settings.AUTHGUARD_ORDER_PRICE_TOLERANCE = 0.5  # invalid (E025): the exact limit, never a wider band
    assert sell.price_band() == (Decimal(845), None)
    with pytest.raises(ValueError):
        sell.fills_at(Decimal(845), tolerance=Decimal(-1))


@pytest.mark.django_db
def test_a_place_callable_without_an_argument_is_still_called(clock: Any) -> None:
    """The contract before round nineteen: ``place()`` with no argument (such a portal bounds the fill to the
    checked price itself, docs/order-guard.md)."""
    user = customer("legacy", cash=10_000_000, holdings={"7203": 100})
    clock(0)
    draft = services.validate_order(user, side="buy", symbol="7203", quantity=10)
    placed = guard.submit_order(
        _request(user), user=user, intent=services.order_intent(user, draft), place=lambda: "done"
    )
    assert isinstance(placed, guard.Placed) and placed.result == "done"
    assert placed.approval is not None and placed.approval.limit_price == Decimal(2850)


def test_which_place_callables_take_the_approval() -> None:
    def optional(approval: Any = None) -> None: ...

    def keyword_only(*, approval: Any) -> None: ...

    assert takes_approval(lambda approval: None)
    assert takes_approval(services.execute_order) is True  # (user, draft): required positionals
    assert not takes_approval(lambda: None)
    assert not takes_approval(optional)
    assert not takes_approval(keyword_only)


# -- authguard.W122: a place that cannot take the approval is told, once -----------------------------------


@pytest.mark.django_db
@pytest.mark.battery(64)
@pytest.mark.parametrize(
    "place",
    [lambda: "market order", lambda *args: "market order", lambda approval=None: "market order"],
    ids=["no-argument", "var-positional", "optional-approval"],
)
def test_a_place_that_cannot_take_the_approval_is_warned_about_once_per_process(
    clock: Any, caplog: Any, monkeypatch: Any, place: Any
) -> None:
    """docs/order-guard.md said "a ``place`` that takes none is still called without it, as before". Such a
    portal (``place=lambda: oms.place(...)``, as integrators wrote it for eighteen rounds) whose OMS fills at
    market fills the checked quantity at whatever the price is by then: exactly round nineteen's walk-around
    (2.4 % of a portfolio checked, 24 % filled). The guard cannot know it bounds the fill itself, and logged
    nothing, while a missing ``baseline_daily_value`` gets ``authguard.W121``; likewise a ``place`` written
    ``lambda *args: ...`` or ``def place(approval=None)``. Legacy portals keep working, and are told once:
    ``authguard.W122``."""
    monkeypatch.setattr(guard_approval, "_warned", set())
    user = customer("legacy", cash=10_000_000, holdings={"7203": 100})
    clock(0)
    draft = services.validate_order(user, side="buy", symbol=PUMPED, quantity=100)
    with caplog.at_level(logging.WARNING, logger="authguard"):
        for _twice in range(2):
            placed = guard.submit_order(
                _request(user), user=user, intent=services.order_intent(user, draft), place=place,
                instrument=services.instrument_info(draft),
            )  # fmt: skip
            assert isinstance(placed, guard.Placed) and placed.result == "market order"
            assert placed.approval is not None and placed.approval.limit_price == Decimal(845)
    # Secure: the integrator is told (once, like W121) that the guard's answer never reached the order.
    told = [r for r in caplog.records if r.name.startswith("authguard") and "approval" in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in caplog.records]
    assert Codes.ORDER_PLACE_WITHOUT_APPROVAL in told[0].getMessage()
    assert Codes.ORDER_PLACE_WITHOUT_APPROVAL == "authguard.W122"


@pytest.mark.django_db
def test_a_place_that_takes_the_approval_is_not_warned_about_and_the_warning_is_silenced_like_a_check(
    clock: Any, caplog: Any, monkeypatch: Any, settings: Any
) -> None:
    monkeypatch.setattr(guard_approval, "_warned", set())
    user = customer("modern", cash=10_000_000, holdings={"7203": 100})
    clock(0)
    draft = services.validate_order(user, side="buy", symbol="7203", quantity=10)
    intent = services.order_intent(user, draft)
    with caplog.at_level(logging.WARNING, logger="authguard"):
        guard.submit_order(_request(user), user=user, intent=intent, place=lambda approval: "ok")
        assert Codes.ORDER_PLACE_WITHOUT_APPROVAL not in caplog.text
        settings.SILENCED_SYSTEM_CHECKS = [Codes.ORDER_PLACE_WITHOUT_APPROVAL]
        guard.submit_order(_request(user), user=user, intent=intent, place=lambda: "ok")
    assert Codes.ORDER_PLACE_WITHOUT_APPROVAL not in caplog.text
