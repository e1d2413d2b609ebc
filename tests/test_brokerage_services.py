"""The demo brokerage's business rules (demo_site.brokerage.services): money, shares and atomicity."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.models import Account, Instrument, Order, OrderStatus, Position
from demo_site.brokerage.services import AccountError, OrderRejected

from .conftest import HANAKO_PASSWORD as PASSWORD


@pytest.fixture
def instruments(db: Any) -> None:
    services.sync_instruments()


@pytest.fixture
def customer(instruments: None, brokerage_customer: Any) -> Any:
    """hanako: ¥1,000,000 cash, 100 Toyota (¥2,850) and 10 Apple ($230)."""
    return brokerage_customer(holdings={"7203": 100, "AAPL": 10}, sync_instruments=False)


def state(user: Any) -> tuple[Decimal, dict[str, int], int]:
    """Everything an order could change: cash, positions, and the number of orders."""
    account = Account.objects.get(user=user)
    positions = dict(account.positions.values_list("instrument__symbol", "quantity"))
    return account.cash, positions, Order.objects.count()


# -- instrument data ---------------------------------------------------------------------------------------


def test_instrument_list_has_liquid_large_caps_and_fictional_illiquid_small_caps() -> None:
    symbols = [i.symbol for i in INSTRUMENTS]
    assert len(symbols) == len(set(symbols))
    large = [i for i in INSTRUMENTS if not i.is_small_cap and "(fictional)" not in i.name]
    small = [i for i in INSTRUMENTS if i.is_small_cap]
    # One fictional mid-liquidity stock trades just above the old ¥100 million liquidity floor (case 53).
    (mid,) = [i for i in INSTRUMENTS if not i.is_small_cap and "(fictional)" in i.name]
    assert 100_000_000 < mid.price * mid.avg_daily_volume <= 110_000_000 and mid.listing_country == "JP"
    assert len(large) >= 30 and len(small) >= 3
    assert {"7203", "6758", "8306", "9984", "6861", "8035", "7974", "9983"} <= set(symbols)
    assert {"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL"} <= set(symbols)
    for i in large:
        if i.listing_country == "JP":
            assert (
                i.symbol.isdigit() and len(i.symbol) == 4 and i.currency == "JPY" and i.market == "TSE Prime"
            )
        else:
            assert i.currency == "USD" and i.market in {"NASDAQ", "NYSE"}
        assert i.avg_daily_volume >= 500_000 and i.price > 0
    for i in small:
        assert "(fictional)" in i.name and i.avg_daily_volume < 100_000
    assert any(i.listing_country != "JP" for i in small), "one small cap is listed abroad"
    assert {i.market for i in small} >= {"TSE Growth", "TSE Standard"}


def test_sync_instruments_is_idempotent_and_updates_prices(db: Any) -> None:
    assert services.sync_instruments() == len(INSTRUMENTS)
    Instrument.objects.filter(symbol="7203").update(price=Decimal("1"))
    services.sync_instruments()
    assert Instrument.objects.count() == len(INSTRUMENTS)
    assert Instrument.objects.get(symbol="7203").price == Decimal("2850")


def test_list_instruments_puts_tokyo_first(instruments: None) -> None:
    listed = list(services.list_instruments())
    assert len(listed) == len(INSTRUMENTS)
    countries = [i.listing_country for i in listed]
    assert countries == sorted(countries) and countries[0] == "JP"


def test_money_helpers() -> None:
    assert services.to_jpy(Decimal("230.00") * 3, "USD") == Decimal("103500")
    assert services.to_jpy(Decimal("1.37") * 1, "USD") == Decimal("206")  # 205.5 rounds half up
    assert services.to_jpy(Decimal("152.5") * 3, "JPY") == Decimal("458")  # 457.5 rounds half up
    assert services.format_money(Decimal("1234567"), "JPY") == "¥1,234,567"
    assert services.format_money(Decimal("152.50"), "JPY") == "¥152.5"
    assert services.format_money(Decimal("1234.5"), "USD") == "$1,234.50"


# -- buying and selling ----------------------------------------------------------------------------------


def test_buy_debits_cash_and_adds_to_the_position(customer: Any) -> None:
    order = services.place_order(customer, side="buy", symbol="7203", quantity=100)
    assert state(customer) == (Decimal("715000"), {"7203": 200, "AAPL": 10}, 1)
    order.refresh_from_db()
    assert (order.status, order.side, order.quantity) == (OrderStatus.PLACED, "buy", 100)
    assert (order.price, order.currency, order.amount_jpy) == (Decimal("2850"), "JPY", Decimal("285000"))
    assert order.executed_at is not None and order.account.user == customer


def test_buying_a_us_stock_converts_at_the_fixed_demo_rate(customer: Any) -> None:
    order = services.place_order(customer, side="buy", symbol="MSFT", quantity=2)
    # 2 × $510 × ¥150
    assert order.amount_jpy == Decimal("153000") and order.currency == "USD" and order.price == Decimal("510")
    assert state(customer) == (Decimal("847000"), {"7203": 100, "AAPL": 10, "MSFT": 2}, 1)


def test_symbols_are_forgiven_case_and_spaces(customer: Any) -> None:
    order = services.place_order(customer, side="sell", symbol="  aapl ", quantity=1)
    assert order.instrument.symbol == "AAPL"
    assert state(customer)[1]["AAPL"] == 9


def test_selling_credits_cash_and_selling_everything_removes_the_position(customer: Any) -> None:
    services.place_order(customer, side="sell", symbol="7203", quantity=40)
    assert state(customer) == (Decimal("1114000"), {"7203": 60, "AAPL": 10}, 1)
    services.place_order(customer, side="sell", symbol="7203", quantity=60)
    assert state(customer) == (Decimal("1285000"), {"AAPL": 10}, 2)
    assert not Position.objects.filter(instrument__symbol="7203").exists()


def test_spending_exactly_all_cash_is_allowed(instruments: None) -> None:
    user = services.open_account("exact", PASSWORD, email="e@example.com", cash=285000, holdings={})
    services.place_order(user, side="buy", symbol="7203", quantity=100)
    assert state(user) == (Decimal("0"), {"7203": 100}, 1)


def test_overspending_is_rejected_and_nothing_changes(customer: Any) -> None:
    before = state(customer)
    with pytest.raises(OrderRejected) as excinfo:
        services.place_order(customer, side="buy", symbol="6861", quantity=18)  # ¥1,008,000 > ¥1,000,000
    assert list(excinfo.value.errors) == ["cash"]
    assert "¥1,008,000" in excinfo.value.message and "¥1,000,000" in excinfo.value.message
    assert state(customer) == before


def test_overselling_is_rejected_and_nothing_changes(customer: Any) -> None:
    before = state(customer)
    with pytest.raises(OrderRejected) as excinfo:
        services.place_order(customer, side="sell", symbol="7203", quantity=101)
    assert list(excinfo.value.errors) == ["quantity"] and "100" in excinfo.value.message
    with pytest.raises(OrderRejected):
        services.place_order(customer, side="sell", symbol="6758", quantity=1)  # not held at all
    assert state(customer) == before


@pytest.mark.parametrize(
    "quantity", ["5", 5.0, 5.5, True, False, None, 0, -1, -100, 10_000_001, 10**30, [], {}, [5]]
)
def test_quantity_must_be_a_whole_number_within_limits(customer: Any, quantity: object) -> None:
    before = state(customer)
    with pytest.raises(OrderRejected) as excinfo:
        services.place_order(customer, side="buy", symbol="9432", quantity=quantity)
    assert list(excinfo.value.errors) == ["quantity"]
    assert state(customer) == before


def test_the_largest_allowed_quantity_is_checked_against_cash_not_refused_as_malformed(customer: Any) -> None:
    with pytest.raises(OrderRejected) as excinfo:
        services.place_order(customer, side="buy", symbol="9432", quantity=services.MAX_ORDER_QUANTITY)
    assert list(excinfo.value.errors) == ["cash"]


@pytest.mark.parametrize("side", ["BUY", "Sell", "hold", "", None, 1, ["buy"], {"buy": 1}])
def test_side_must_be_buy_or_sell(customer: Any, side: object) -> None:
    with pytest.raises(OrderRejected) as excinfo:
        services.place_order(customer, side=side, symbol="7203", quantity=1)
    assert list(excinfo.value.errors) == ["side"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "symbol", ["ZZZZ", "9999", "", "   ", None, 7203, "72\x0003", "7203;--", "A" * 17, ["7203"]]
)
def test_symbol_must_name_a_known_instrument(customer: Any, symbol: object) -> None:
    before = state(customer)
    with pytest.raises(OrderRejected) as excinfo:
        services.place_order(customer, side="buy", symbol=symbol, quantity=1)
    assert list(excinfo.value.errors) == ["symbol"]
    assert state(customer) == before


def test_every_problem_is_reported_at_once(customer: Any) -> None:
    with pytest.raises(OrderRejected) as excinfo:
        services.place_order(customer, side="short", symbol="NOPE", quantity=0)
    assert set(excinfo.value.errors) == {"side", "symbol", "quantity"}
    assert all(excinfo.value.errors.values())


def test_a_user_without_an_account_cannot_trade(instruments: None) -> None:
    staff = get_user_model().objects.create_user("staffer", password=PASSWORD, is_staff=True)
    with pytest.raises(OrderRejected) as excinfo:
        services.place_order(staff, side="buy", symbol="7203", quantity=1)
    assert list(excinfo.value.errors) == ["account"]
    assert services.portfolio(staff).holdings == [] and services.portfolio(staff).total_value == 0
    assert Order.objects.count() == 0 and not Account.objects.exists()


def test_a_failure_halfway_through_execution_leaves_nothing_written(customer: Any, monkeypatch: Any) -> None:
    before = state(customer)

    def broken_save(self: Order, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    # Cash and position are written before the order row: the failing last write must undo them.
    monkeypatch.setattr(Order, "save", broken_save)
    with pytest.raises(RuntimeError):
        services.place_order(customer, side="buy", symbol="7203", quantity=10)
    with pytest.raises(RuntimeError):
        services.place_order(customer, side="sell", symbol="AAPL", quantity=10)
    monkeypatch.undo()
    assert state(customer) == before


def test_the_database_refuses_a_negative_balance(customer: Any) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(user=customer).update(cash=Decimal("-1"))
    assert state(customer)[0] == Decimal("1000000")


def test_validate_order_describes_without_writing(customer: Any) -> None:
    draft = services.validate_order(customer, side="sell", symbol="7203", quantity=100)
    assert (draft.symbol, draft.quantity, draft.amount_jpy, draft.is_small_cap) == (
        "7203",
        100,
        Decimal("285000"),
        False,
    )
    assert draft.avg_daily_volume == 25_000_000 and draft.amount == Decimal("285000")
    assert draft.summary() == "Sell 100 × 7203 Toyota Motor at ¥2,850 (≈ ¥285,000)"
    assert Order.objects.count() == 0


def test_a_held_order_moves_nothing_and_executes_exactly_once(customer: Any) -> None:
    draft = services.validate_order(customer, side="sell", symbol="7203", quantity=100)
    held = services.hold_order(customer, draft, reason="mass liquidation")
    assert (held.status, held.status_reason, held.executed_at) == (OrderStatus.HELD, "mass liquidation", None)
    assert state(customer) == (Decimal("1000000"), {"7203": 100, "AAPL": 10}, 1)
    placed = services.execute_order(customer, draft, order=held)
    assert placed.pk == held.pk and placed.status == OrderStatus.PLACED and placed.executed_at is not None
    assert state(customer) == (Decimal("1285000"), {"AAPL": 10}, 1)
    with pytest.raises(OrderRejected) as excinfo:
        services.execute_order(customer, draft, order=held)
    assert list(excinfo.value.errors) == ["order"]
    assert state(customer) == (Decimal("1285000"), {"AAPL": 10}, 1)


def test_a_held_order_cannot_be_swapped_or_run_by_someone_else(customer: Any) -> None:
    draft = services.validate_order(customer, side="sell", symbol="7203", quantity=50)
    held = services.hold_order(customer, draft)
    bigger = services.validate_order(customer, side="sell", symbol="7203", quantity=100)
    with pytest.raises(OrderRejected):
        services.execute_order(customer, bigger, order=held)
    other = services.open_account("mallory", PASSWORD, email="m@example.com", cash=0, holdings={"7203": 100})
    with pytest.raises(OrderRejected):
        services.execute_order(other, draft, order=held)
    held.refresh_from_db()
    assert held.status == OrderStatus.HELD
    assert state(customer)[:2] == (Decimal("1000000"), {"7203": 100, "AAPL": 10})
    assert state(other)[:2] == (Decimal("0"), {"7203": 100})


def test_a_held_order_executes_at_the_price_of_the_moment_within_its_band(customer: Any) -> None:
    """A held sell checked at $230 fills at the price of the moment when that is $227.70 (1 % below) or more;
    at $200 it fills nothing (round twenty: it used to fill at any lower price)."""
    draft = services.validate_order(customer, side="sell", symbol="AAPL", quantity=10)
    held = services.hold_order(customer, draft)
    Instrument.objects.filter(symbol="AAPL").update(price=Decimal("200"))
    with pytest.raises(services.PriceMoved):
        services.execute_order(customer, draft, order=held)
    Instrument.objects.filter(symbol="AAPL").update(price=Decimal("240"))
    placed = services.execute_order(customer, draft, order=held)
    assert (placed.price, placed.amount_jpy) == (Decimal("240"), Decimal("360000"))
    assert state(customer)[0] == Decimal("1360000")


# -- portfolio and history -------------------------------------------------------------------------------


def test_portfolio_values_holdings_in_yen(customer: Any) -> None:
    p = services.portfolio(customer)
    assert p.cash == Decimal("1000000")
    assert [(h.symbol, h.quantity, h.currency, h.value, h.value_jpy) for h in p.holdings] == [
        ("7203", 100, "JPY", Decimal("285000"), Decimal("285000")),
        ("AAPL", 10, "USD", Decimal("2300"), Decimal("345000")),
    ]
    assert p.holdings_value == Decimal("630000") and p.total_value == Decimal("1630000")
    assert p.holdings[0].name == "Toyota Motor" and p.holdings[1].market == "NASDAQ"


def test_the_guards_portfolio_hook_agrees_with_the_portfolio_page_in_one_statement(customer: Any) -> None:
    """AUTHGUARD_ORDER_PORTFOLIO: the same cash and yen values as the portfolio page, in one statement;
    cash alone once everything is sold; nothing for a user without an account."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        snapshot = services.guard_portfolio(customer)
    assert len(queries) == 1
    page = services.portfolio(customer)
    assert snapshot.cash == page.cash == Decimal("1000000.00")
    assert [(h.symbol, h.quantity, h.value) for h in snapshot.holdings] == [
        (h.symbol, h.quantity, h.value_jpy) for h in page.holdings
    ]
    assert snapshot.currency == "JPY"
    Position.objects.filter(account__user=customer).delete()
    emptied = services.guard_portfolio(customer)
    assert emptied.cash == Decimal("1000000.00") and emptied.holdings == ()
    nobody = get_user_model().objects.create_user("no-account", password=PASSWORD)
    assert services.guard_portfolio(nobody).cash == Decimal(0)
    assert services.guard_portfolio(nobody).holdings == ()


def test_the_instrument_hook_answers_as_the_model_in_one_statement(db: Any) -> None:
    from django.test.utils import CaptureQueriesContext

    services.sync_instruments()
    for instrument in Instrument.objects.all():
        with CaptureQueriesContext(connection) as queries:
            info = services.guard_instrument(instrument.symbol)
        assert len(queries) == 1
        assert info is not None
        assert (info.symbol, info.name, info.price, info.currency, info.market) == (
            instrument.symbol, instrument.name, instrument.price, instrument.currency, instrument.market,
        )  # fmt: skip
        assert isinstance(info.price, Decimal) and info.is_small_cap is instrument.is_small_cap
        assert (info.listing_country, info.avg_daily_volume) == (
            instrument.listing_country, instrument.avg_daily_volume,
        )  # fmt: skip
    assert services.guard_instrument("NOPE") is None
    assert services.guard_instrument("7203' OR '1'='1") is None


def test_order_history_is_newest_first_and_only_ones_own(customer: Any) -> None:
    other = services.open_account("jiro", PASSWORD, email="j@example.com", cash=100000, holdings={})
    first = services.place_order(customer, side="sell", symbol="AAPL", quantity=1)
    services.place_order(other, side="buy", symbol="9432", quantity=10)
    second = services.place_order(customer, side="buy", symbol="9432", quantity=10)
    assert list(services.order_history(customer)) == [second, first]
    assert [o.account.user for o in services.order_history(other)] == [other]


# -- opening accounts ------------------------------------------------------------------------------------


def test_open_account_creates_a_customer_who_can_sign_in(customer: Any) -> None:
    assert customer.check_password(PASSWORD) and customer.email == "hanako@example.com"
    assert state(customer) == (Decimal("1000000"), {"7203": 100, "AAPL": 10}, 0)


@pytest.mark.parametrize(
    ("cash", "holdings"),
    [
        (1000, {"7203": 100, "NOPE": 1}),
        (1000, {"7203": 0}),
        (1000, {"7203": -5}),
        (1000, {"7203": "100"}),
        (1000, {"7203": True}),
        (-1, {}),
        ("lots", {}),
        (None, {}),
        (1.5, {}),
        ("NaN", {}),
    ],
)
def test_open_account_is_all_or_nothing(instruments: None, cash: Any, holdings: dict[str, Any]) -> None:
    with pytest.raises(AccountError):
        services.open_account("broken", PASSWORD, email="b@example.com", cash=cash, holdings=holdings)
    assert not get_user_model().objects.filter(username="broken").exists()
    assert not Account.objects.exists() and not Position.objects.exists()


def test_open_account_refuses_an_existing_username(customer: Any) -> None:
    with pytest.raises(AccountError):
        services.open_account("hanako", "other-pass-2025", email="x@example.com", cash=0, holdings={})
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD) and Account.objects.count() == 1


def test_reset_portfolio_replaces_cash_and_holdings_and_keeps_orders(customer: Any) -> None:
    services.place_order(customer, side="sell", symbol="AAPL", quantity=1)
    services.reset_portfolio(customer, cash="5000", holdings={"9984": 3})
    assert state(customer) == (Decimal("5000"), {"9984": 3}, 1)
    with pytest.raises(AccountError):
        services.reset_portfolio(customer, cash="1", holdings={"NOPE": 1})
    assert state(customer) == (Decimal("5000"), {"9984": 3}, 1)


# -- concurrency -----------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_buys_cannot_overspend() -> None:
    """Eight parallel ¥285,000 buys against ¥1,000,000: exactly three go through (row locks, not luck)."""
    assert connection.vendor == "postgresql"
    services.sync_instruments()
    user = services.open_account("racer", PASSWORD, email="r@example.com", cash=1000000, holdings={})
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def buy() -> None:
        try:
            barrier.wait()
            services.place_order(user, side="buy", symbol="7203", quantity=100)
            outcomes.append("placed")
        except OrderRejected:
            outcomes.append("rejected")
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["placed"] * 3 + ["rejected"] * 5
    assert state(user) == (Decimal("145000"), {"7203": 300}, 3)
