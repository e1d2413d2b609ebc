"""The portal's three hooks into authguard's order guard (``demo_site/settings.py`` names them):

- :func:`guard_portfolio` (``AUTHGUARD_ORDER_PORTFOLIO``): the customer's cash and holdings, each with its
  instrument's data;
- :func:`guard_instrument` (``AUTHGUARD_ORDER_INSTRUMENT``): one instrument's price, liquidity and long run;
- :data:`held_order_executor` (``AUTHGUARD_ORDER_EXECUTOR``): executes or releases an order held for the
  customer's confirmation.

:func:`instrument_info` is the guard's view of the instrument an order was just validated against.
"""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from authguard import statements
from authguard.models import HeldOrder
from authguard.orders import guard as guard_orders
from authguard.orders.guard import OrderNotExecutable
from authguard.orders.rules import HoldingValue, InstrumentInfo, PortfolioSnapshot

from .market_data import history_days
from .models import Account, Currency, Instrument, Order, OrderStatus, Position
from .orders import OrderDraft, OrderRejected, execute_order, order_draft
from .yen import CENTS, JPY_PER_UNIT, to_jpy


@functools.lru_cache(maxsize=4)
def _portfolio_sql(vendor: str) -> str:
    """The portfolio statement, written once per database vendor: the account's cash with each position."""
    q = connection.ops.quote_name
    account, position, instrument = (q(m._meta.db_table) for m in (Account, Position, Instrument))
    # Only the models' own (quoted) table names are formatted in; the user's id is a parameter.
    return (
        "SELECT a.cash, i.symbol, p.quantity, i.price, i.currency, i.name, i.market, i.listing_country,"  # noqa: S608
        " i.avg_daily_volume, i.is_small_cap, i.baseline_daily_value, i.reference_price, i.history_since"
        f" FROM {account} a"
        f" LEFT JOIN {position} p ON p.account_id = a.id LEFT JOIN {instrument} i ON i.id = p.instrument_id"
        " WHERE a.user_id = %s ORDER BY i.symbol"
    )


def _date(value: object) -> date | None:
    """A date column's value: SQLite answers text."""
    return date.fromisoformat(value) if isinstance(value, str) else value if isinstance(value, date) else None


def _decimal(value: object) -> Decimal:
    """A money column's value (two places) as Decimal: SQLite answers numbers, not Decimals."""
    return value if isinstance(value, Decimal) else Decimal(str(value)).quantize(CENTS)


def guard_portfolio(user: AbstractBaseUser) -> PortfolioSnapshot:
    """``AUTHGUARD_ORDER_PORTFOLIO``: cash and holdings valued in yen, each with its instrument's data (the
    guard counts a thinly traded position in the base of the sell limits only as far as its market is
    liquid), in one statement.

    It runs on every guarded order, so it is plain SQL written once rather than an ORM query compiled on
    each call (the compilation cost more than the database's answer), run through
    :func:`authguard.statements.fetch_all` (prepared on the server where the database allows it).
    """
    rows = statements.fetch_all(_portfolio_sql(connection.vendor), [user.pk])
    cash = _decimal(rows[0][0]) if rows else Decimal(0)
    holdings = []
    for row in rows:
        symbol, quantity, price, currency, name, market, country, volume, small, baseline, ref = row[1:12]
        since = _date(row[12])
        if symbol is None:
            continue
        price = _decimal(price)
        instrument = InstrumentInfo(
            symbol=symbol, name=name, price=price, currency=currency, market=market, listing_country=country,
            avg_daily_volume=volume, is_small_cap=bool(small), fx_rate=JPY_PER_UNIT[currency],
            # SECURITY: the long-run value, so a pump of the position's stock does not make it look liquid.
            baseline_daily_value=None if baseline is None else _decimal(baseline),
            reference_price=None if ref is None else _decimal(ref),
            # SECURITY: a new code's position never counts up to its first days' price (round fifty-seven).
            history_days=history_days(since),
        )  # fmt: skip
        value = to_jpy(price * int(quantity), currency)
        holdings.append(
            HoldingValue(symbol=symbol, quantity=int(quantity), value=value, instrument=instrument)
        )
    return PortfolioSnapshot(currency=Currency.JPY, cash=cash, holdings=tuple(holdings))


_INSTRUMENT_FIELDS = (
    "symbol", "name", "price", "currency", "market", "listing_country", "avg_daily_volume", "is_small_cap",
    "baseline_daily_value", "reference_price", "history_since", "former_symbols",
)  # fmt: skip


@functools.lru_cache(maxsize=4)
def _instrument_sql(vendor: str) -> str:
    """The instrument statement, written once per database vendor (symbols are unique)."""
    q = connection.ops.quote_name
    # Only the model's own (quoted) names are formatted in; the symbol is a parameter.
    return (
        f"SELECT {', '.join(q(field) for field in _INSTRUMENT_FIELDS)}"  # noqa: S608
        f" FROM {q(Instrument._meta.db_table)} WHERE {q('symbol')} = %s"
    )


def guard_instrument(symbol: str) -> InstrumentInfo | None:
    """``AUTHGUARD_ORDER_INSTRUMENT``: price, average daily volume, long-run daily value and price, market and
    listing of ``symbol``.

    Plain SQL through :func:`authguard.statements.fetch_all`, like the portfolio hook: it runs on every order
    a portal checks without handing the guard the instrument.
    """
    rows = statements.fetch_all(_instrument_sql(connection.vendor), [symbol])
    if not rows:
        return None
    row = dict(zip(_INSTRUMENT_FIELDS, rows[0], strict=True))
    row["price"] = _decimal(row["price"])
    baseline = row["baseline_daily_value"]
    row["baseline_daily_value"] = None if baseline is None else _decimal(baseline)
    reference = row["reference_price"]
    row["reference_price"] = None if reference is None else _decimal(reference)
    row["is_small_cap"] = bool(row["is_small_cap"])  # SQLite answers 0 or 1
    since = _date(row.pop("history_since"))
    row["former_symbols"] = tuple((row["former_symbols"] or "").split())
    return InstrumentInfo(**row, fx_rate=JPY_PER_UNIT[row["currency"]], history_days=history_days(since))


def instrument_info(draft: OrderDraft) -> InstrumentInfo:
    """The guard's view of the instrument a validated order was just checked against (no second query)."""
    return InstrumentInfo(
        symbol=draft.symbol,
        name=draft.name,
        price=draft.price,
        currency=draft.currency,
        market=draft.market,
        listing_country=draft.listing_country,
        avg_daily_volume=draft.avg_daily_volume,
        is_small_cap=draft.is_small_cap,
        fx_rate=JPY_PER_UNIT[draft.currency],
        # SECURITY: without it the guard cannot see a pump of a stock no customer traded this month.
        baseline_daily_value=draft.baseline_daily_value,
        # SECURITY: without it the guard checks a thin stock's order at whatever price a gang printed today.
        reference_price=draft.reference_price,
        # SECURITY: a new listing's or a new code's long run is its first days: the guard weighs it as thin.
        history_days=history_days(draft.history_since),
        # SECURITY: a code change is no new instrument to a gang's month of buys (round sixty-six).
        former_symbols=draft.former_symbols,
    )


class HeldOrderExecutor:
    """``AUTHGUARD_ORDER_EXECUTOR``: executes a held order from authguard's stored canonical order.

    The brokerage's own ``held`` :class:`Order` row must still describe exactly that order (same account,
    side, instrument and quantity); :func:`execute_order` then places it once, under row locks.
    """

    def _held_order(self, held: HeldOrder) -> Order:
        order = Order.objects.select_related("account").filter(pk=int(held.portal_ref or 0)).first()
        if order is None or order.account.user_id != held.user_id:
            raise OrderNotExecutable(_("The portal has no such order."))
        return order

    def execute(self, held: HeldOrder) -> str:
        stored = guard_orders.stored_order(held)
        order = self._held_order(held)
        instrument = Instrument.objects.filter(symbol=stored["symbol"]).first()
        if instrument is not None and instrument.succeeded_by_id is not None:
            # Nothing fills on a code that trades no more; she places the order again under the new one.
            raise OrderNotExecutable(
                _("The stock's code changed since this order was held: please place it again.")
            )
        # SECURITY: the portal's copy must be the order the customer confirmed, or nothing executes.
        if (
            instrument is None
            or stored["account"] != str(order.account_id)
            or (order.side, order.instrument_id, order.quantity)
            != (stored["side"], instrument.pk, stored["quantity"])
        ):
            raise OrderNotExecutable(_("The order does not match the one held for confirmation."))
        try:
            placed = execute_order(
                order.account.user,
                order_draft(stored["side"], instrument, stored["quantity"]),
                order=order,
                # SECURITY: what the customer confirmed is the order at the price it was checked and held at.
                approval=guard_orders.stored_approval(held),
            )
        except OrderRejected as rejected:
            raise OrderNotExecutable(rejected.message) from None
        return str(placed.pk)

    def release(self, held: HeldOrder, *, status: str) -> None:
        new_status = OrderStatus.EXPIRED if status == HeldOrder.Status.EXPIRED else OrderStatus.CANCELLED
        reason = held.failure or str(HeldOrder.Status(status).label)
        Order.objects.filter(pk=int(held.portal_ref or 0), status=OrderStatus.HELD).update(
            status=new_status, status_changed_at=timezone.now(), status_reason=reason[:200]
        )


held_order_executor = HeldOrderExecutor()
