"""Portal two's trading: its instrument table, order entry through authguard's order guard, and the three
hooks the guard calls (``AUTHGUARD_ORDER_PORTFOLIO``, ``…_INSTRUMENT``, ``…_EXECUTOR``).

Written as a brokerage would against the guard's public API (docs/order-guard.md), not copied from the
demo: instruments are a table in code (a brokerage's reference data service), the portal keeps its own
``Order`` rows, and every move of cash or shares happens under the account's row lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from authguard.models import HeldOrder
from authguard.orders import guard
from authguard.orders.approval import Approval
from authguard.orders.rules import HoldingValue, InstrumentInfo, PortfolioSnapshot

from .models import Account, Order, Position, User

#: symbol -> (name, price in yen, average daily volume in shares, small cap)
INSTRUMENTS: Mapping[str, tuple[str, Decimal, int, bool]] = {
    "7203": ("Toyota Motor", Decimal("2850"), 30_000_000, False),
    "9432": ("NTT", Decimal("152.5"), 120_000_000, False),
    "6758": ("Sony Group", Decimal("3400"), 9_000_000, False),
    "8306": ("Mitsubishi UFJ", Decimal("1900"), 60_000_000, False),
    "9984": ("SoftBank Group", Decimal("9800"), 12_000_000, False),
    "3xZ9": ("Kabuto Microtech", Decimal("410"), 40_000, True),  # about ¥16 million a day: thin
}
MAX_QUANTITY = 1_000_000


class OrderInvalid(Exception):
    """The order is malformed, unknown or unaffordable: ``errors`` per field (a 400, never a 500)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Draft:
    side: str
    symbol: str
    quantity: int
    price: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.price * self.quantity).quantize(Decimal("0.01"))


def open_account(email: str, password: str, *, cash: int | Decimal, holdings: Mapping[str, int]) -> User:
    """A customer with cash and positions (what the portal's back office does at account opening)."""
    user = User.objects.create_user(email, password)
    account = Account.objects.create(user=user, cash=Decimal(cash))
    for symbol, quantity in holdings.items():
        Position.objects.create(account=account, symbol=symbol, quantity=quantity)
    return user


def holdings_of(user: Any) -> dict[str, int]:
    return dict(Position.objects.filter(account__user_id=user.pk).values_list("symbol", "quantity"))


def validate(user: Any, data: Mapping[str, Any]) -> Draft:
    """A draft of a well-formed order at the table's price; :class:`OrderInvalid` otherwise."""
    side, symbol, quantity = data.get("side"), data.get("symbol"), data.get("quantity")
    errors: dict[str, str] = {}
    if side not in ("buy", "sell"):
        errors["side"] = "Choose buy or sell."
    if not isinstance(symbol, str) or symbol not in INSTRUMENTS:
        errors["symbol"] = "Unknown instrument."
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
        errors["quantity"] = f"Enter a whole number of shares from 1 to {MAX_QUANTITY}."
    if errors:
        raise OrderInvalid(errors)
    assert isinstance(side, str) and isinstance(symbol, str) and isinstance(quantity, int)
    if not Account.objects.filter(user_id=user.pk).exists():
        raise OrderInvalid({"account": "No trading account."})
    return Draft(side, symbol, quantity, INSTRUMENTS[symbol][1])


def _execute(account: Account, draft: Draft, *, approval: Approval, order: Order | None = None) -> Order:
    """Move cash and shares for ``draft`` as a limit order within the guard's ``approval`` (the caller holds
    the account's row lock)."""
    # SECURITY: what the guard allowed is the checked quantity at the checked price, within its band.
    if (approval.side, approval.symbol, approval.quantity) != (draft.side, draft.symbol, draft.quantity):
        raise OrderInvalid({"order": "This is not the order that was checked."})
    if not approval.fills_at(draft.price):
        raise OrderInvalid({"price": f"The price is now {draft.price}; place the order again."})
    position = Position.objects.select_for_update().filter(account=account, symbol=draft.symbol).first()
    if draft.side == "buy":
        if account.cash < draft.amount:
            raise OrderInvalid({"quantity": "Not enough cash."})
        account.cash -= draft.amount
        if position is None:
            Position.objects.create(account=account, symbol=draft.symbol, quantity=draft.quantity)
        else:
            position.quantity += draft.quantity
            position.save(update_fields=["quantity"])
    else:
        if position is None or position.quantity < draft.quantity:
            raise OrderInvalid({"quantity": "You do not hold that many shares."})
        account.cash += draft.amount
        if position.quantity == draft.quantity:
            position.delete()
        else:
            position.quantity -= draft.quantity
            position.save(update_fields=["quantity"])
    account.save(update_fields=["cash"])
    now = timezone.now()
    if order is None:
        return Order.objects.create(
            account=account, side=draft.side, symbol=draft.symbol, quantity=draft.quantity,
            price=draft.price, status=Order.Status.PLACED, executed_at=now,
        )  # fmt: skip
    order.status, order.executed_at, order.price = Order.Status.PLACED, now, draft.price
    order.save(update_fields=["status", "executed_at", "price"])
    return order


def _locked_account(user: Any) -> Account:
    # SECURITY: every move of this account's cash or shares happens under this row lock.
    return Account.objects.select_for_update().get(user_id=user.pk)


def submit(request: HttpRequest, user: Any, draft: Draft) -> tuple[Order, HeldOrder | None]:
    """Place ``draft`` through the order guard: ``(order, None)`` placed, or ``(order, confirmation)`` held.

    Raises :class:`OrderInvalid` or ``authguard.orders.guard.OrderDenied``.
    """
    account_id = Account.objects.filter(user_id=user.pk).values_list("pk", flat=True).get()
    intent = guard.OrderIntent(
        account=str(account_id), side=draft.side, symbol=draft.symbol, quantity=draft.quantity,
        price=draft.price, currency="JPY", market="TSE",
    )  # fmt: skip
    with transaction.atomic():
        outcome = guard.submit_order(
            request,
            user=user,
            intent=intent,
            # The guard's approval: a limit order at the price it checked.
            place=lambda approval: _execute(_locked_account(user), draft, approval=approval),
            hold=lambda decision: Order.objects.create(
                account_id=account_id,
                side=draft.side,
                symbol=draft.symbol,
                quantity=draft.quantity,
                price=draft.price,
                status=Order.Status.HELD,
            ),  # fmt: skip
        )
    if isinstance(outcome, guard.Held):
        return outcome.portal_result, outcome.confirmation
    return outcome.result, None


# -- the guard's hooks -------------------------------------------------------------------------------------


def guard_portfolio(user: Any) -> PortfolioSnapshot:
    """``AUTHGUARD_ORDER_PORTFOLIO``: cash and positions in yen, each with its instrument (the guard counts a
    thin position in the base of the sell limits only as far as its market is liquid)."""
    account = Account.objects.filter(user_id=user.pk).first()
    if account is None:
        return PortfolioSnapshot(currency="JPY", cash=Decimal(0))
    holdings = tuple(
        HoldingValue(
            symbol=p.symbol,
            quantity=p.quantity,
            value=INSTRUMENTS[p.symbol][1] * p.quantity,
            instrument=guard_instrument(p.symbol),
        )
        for p in account.positions.order_by("symbol")
    )
    return PortfolioSnapshot(currency="JPY", cash=account.cash, holdings=holdings)


def guard_instrument(symbol: str) -> InstrumentInfo | None:
    """``AUTHGUARD_ORDER_INSTRUMENT``: the instrument table's row, or None for a symbol the portal lacks."""
    row = INSTRUMENTS.get(symbol)
    if row is None:
        return None
    name, price, volume, small_cap = row
    return InstrumentInfo(
        symbol=symbol, name=name, price=price, currency="JPY", market="TSE", listing_country="JP",
        avg_daily_volume=volume, is_small_cap=small_cap,
        # The table is the portal's reference data, its long run: what a pump (or a crash) cannot move.
        baseline_daily_value=price * volume, reference_price=price,
    )  # fmt: skip


class Executor:
    """``AUTHGUARD_ORDER_EXECUTOR``: executes a confirmed held order from authguard's *stored* order."""

    def execute(self, held: HeldOrder) -> str:
        stored = guard.stored_order(held)
        with transaction.atomic():
            account = Account.objects.select_for_update().filter(pk=int(stored["account"])).first()
            order = Order.objects.select_for_update().filter(pk=int(held.portal_ref or 0)).first()
            # SECURITY: the portal's copy must still be this customer's held order, exactly as confirmed.
            if (
                account is None
                or order is None
                or account.user_id != held.user_id
                or order.account_id != account.pk
                or order.status != Order.Status.HELD
                or (order.side, order.symbol, order.quantity)
                != (stored["side"], stored["symbol"], stored["quantity"])
            ):
                raise guard.OrderNotExecutable()
            draft = Draft(order.side, order.symbol, order.quantity, INSTRUMENTS[order.symbol][1])
            try:
                # SECURITY: what the customer confirmed: the stored order at the price it was checked at.
                placed = _execute(account, draft, approval=guard.stored_approval(held), order=order)
            except OrderInvalid as error:
                raise guard.OrderNotExecutable(str(error)) from None
        return str(placed.pk)

    def release(self, held: HeldOrder, *, status: str) -> None:
        closed = Order.Status.EXPIRED if status == HeldOrder.Status.EXPIRED else Order.Status.CANCELLED
        Order.objects.filter(pk=int(held.portal_ref or 0), status=Order.Status.HELD).update(status=closed)


executor = Executor()
