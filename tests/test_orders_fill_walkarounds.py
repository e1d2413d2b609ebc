"""Red team, round nineteen: the price the order guard checks is the price the order fills at (now held).

The guard judges ``quantity x InstrumentInfo.price``; the demo filled the same quantity at whatever the price
was at execution (a market order). What the guard allows is an amount: its answer carries the
:class:`~authguard.orders.approval.Approval` (the checked quantity at the checked price), and the portal
executes the order as a limit order at that price; a price that moved above it fills nothing, and the order is
submitted through the guard again at the new price (docs/order-guard.md, "Integrating a portal").
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.test import RequestFactory
from django.utils import timezone

from authguard.models import GuardedOrder, GuardStatus, HeldOrder, KnownDevice
from authguard.orders import guard
from demo_site.brokerage import services
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Instrument, Order, OrderStatus

from . import test_battery_exposure as battery
from .conftest import bind_passkey, settle_device
from .test_battery_exposure import PASSWORD, customer, placed_buys, sign_in, value

start = battery.start
clock = battery.clock

PUMPED = "7Z2A"  # a small cap: ¥845 x 6,500 shares = ¥5.5 million a day


def _home_pc(user: Any) -> None:
    now = timezone.now()
    KnownDevice.objects.create(
        user=user, cookie_hash="0" * 64, label="Home PC",
        first_seen_at=now - timedelta(days=400), last_seen_at=now - timedelta(days=1),
    )  # fmt: skip


def _sell_up_to(thief: Any, user: Any, share: Decimal) -> Decimal:
    """Sell whole large-cap positions, largest first, while the running total stays under ``share`` of the
    holdings' value (every one of them placed)."""
    holdings = value(user).holdings_value
    sold = Decimal(0)
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.is_small_cap or sold + holding.value_jpy > share * holdings:
            continue
        answer = thief.order("sell", holding.symbol, holding.quantity).json()
        assert answer["status"] == "placed", answer
        sold += Decimal(answer["order"]["amount_jpy"])
    return sold


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
    _home_pc(tanaka)
    clock(-10)
    thief = order_api()
    thief.login_known(TANAKA.username, TANAKA.password)
    settle_device(thief.client.cookies["authguard_device"].value, tanaka, days=400)
    clock(0)
    sign_in(thief, TANAKA.username, TANAKA.password)
    before = value(tanaka)
    _sell_up_to(thief, tanaka, Decimal("0.2"))  # ~¥2 million of large caps: cash for the fill

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
    from authguard.orders.approval import stored_approval

    approval = stored_approval(held)  # what the executor read: the stored order at its checked price
    assert (approval.limit_price, approval.amount, approval.quantity) == (845, 845_000, 1000)


@pytest.mark.django_db
def test_a_sell_fills_at_the_checked_price_or_lower_never_at_a_value_the_guard_never_saw(
    order_api: Any, clock: Any
) -> None:
    """A sell's risk is its quantity, which the approval fixes; a lower price moves less than was checked.
    A price above the checked one is a value the guard never saw: not executed either."""
    user = customer("sato", cash=0, holdings={"7203": 1000})
    clock(0)
    draft = services.validate_order(user, side="sell", symbol="7203", quantity=100)
    _lift("7203", "3000")
    with pytest.raises(services.PriceMoved) as moved:
        services.execute_order(user, draft)
    assert moved.value.errors["price"] and (moved.value.limit, moved.value.price) == (2850, 3000)
    assert services.portfolio(user).cash == 0
    _lift("7203", "2800")
    order = services.execute_order(user, draft)
    assert (order.price, order.amount_jpy) == (Decimal(2800), Decimal(280_000))
    assert services.portfolio(user).cash == Decimal(280_000)


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
    from authguard.orders.approval import Approval

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
    from authguard.orders.approval import takes_approval

    def optional(approval: Any = None) -> None: ...

    def keyword_only(*, approval: Any) -> None: ...

    assert takes_approval(lambda approval: None)
    assert takes_approval(services.execute_order) is True  # (user, draft): required positionals
    assert not takes_approval(lambda: None)
    assert not takes_approval(optional)
    assert not takes_approval(keyword_only)
