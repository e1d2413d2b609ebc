"""What the order guard allowed: the order's quantity at the price it checked, and no more.

The guard judges an order by its value: ``quantity x price x fx_rate``, with the price of the
``InstrumentInfo`` it read (the portal's quote when the order was validated, or the instrument hook's). A
portal that then fills the same quantity at whatever the price is at execution (a market order) executes a
value the guard never saw: in a thin stock the gang *is* the market, and its own ask lifts the price between
the quote and the fill (red team, round nineteen: a buy checked at 2.4 % of a portfolio filled at 24 %). So
the guard's answer carries an :class:`Approval`, and the portal executes the order as a **limit order at the
checked price**: a fill at that price or better, or no fill (the order is submitted through the guard again
at the new price).

:func:`~authguard.orders.guard.submit_order` hands the approval to the portal's ``place`` callable when it
takes one positional argument, and keeps it on ``Placed.approval``; a held order keeps the checked price in
its stored canonical order, and the executor reads it back with :func:`stored_approval`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from authguard.models import HeldOrder
from authguard.orders.held import stored_order

if TYPE_CHECKING:
    from authguard.orders.guard import OrderIntent
    from authguard.orders.rule_base import OrderFacts

T = TypeVar("T")

_CENTS = Decimal("0.01")


@dataclass(frozen=True)
class Approval:
    """The order the guard checked: ``quantity`` of ``symbol`` at ``limit_price`` (per share, in the
    instrument's ``currency``), counted as ``amount`` in the portfolio's ``amount_currency``.

    The portal executes no more than this: a fill at ``limit_price`` or better (lower) for a buy, and for a
    sell no fill above it either (a sell's risk is its quantity, which the approval fixes; a lower price moves
    less value than was checked, a higher one more). :meth:`allows` says whether a fill price is within it.
    """

    side: str
    symbol: str
    quantity: int
    limit_price: Decimal
    currency: str
    amount: Decimal
    amount_currency: str

    def allows(self, price: Decimal, *, tolerance: Decimal = Decimal(0)) -> bool:
        """Whether filling ``quantity`` at ``price`` stays within what the guard checked.

        ``tolerance``: a share of the checked price a portal accepts above it (``Decimal("0.005")``: half a
        per cent) instead of an exact limit; anything more must go through the guard again.
        """
        if tolerance < 0:
            raise ValueError("the tolerance cannot be negative")
        # SECURITY: the bound of what moves without the customer's confirmation is the checked value.
        return price <= self.limit_price * (1 + tolerance)

    def value_at(self, price: Decimal, fx_rate: Decimal = Decimal(1)) -> Decimal:
        """The value of the approved quantity at ``price``, in the portfolio's currency."""
        return (price * self.quantity * fx_rate).quantize(_CENTS)


def approval_for(intent: OrderIntent, facts: OrderFacts | None) -> Approval:
    """What the guard checked of ``intent``: the price and value of ``facts`` (the instrument it read);
    without facts (an instrument it had no data on, placed only in report-only mode) the portal's quote."""
    if facts is None:
        amount = (intent.price * intent.quantity).quantize(_CENTS)
        return Approval(
            intent.side,
            intent.symbol,
            intent.quantity,
            intent.price,
            intent.currency,
            amount,
            intent.currency,
        )
    return Approval(
        side=facts.side,
        symbol=facts.symbol,
        quantity=facts.quantity,
        limit_price=facts.instrument.price,
        currency=facts.instrument.currency,
        amount=facts.amount,
        amount_currency=facts.portfolio.currency,
    )


def stored_approval(held: HeldOrder) -> Approval:
    """The approval of a held order, from its stored canonical order (checked against its digest): what the
    customer confirmed, and all the executor may execute.

    Raises :class:`~authguard.orders.confirmation.ConfirmationInvalid` for a changed row, as
    :func:`~authguard.orders.held.stored_order` does.
    """
    stored = stored_order(held)
    # Held before the checked price was stored (5 minutes at most): the portal's quote, checked as given.
    limit = stored.get("limit_price", stored["price"])
    return Approval(
        side=stored["side"],
        symbol=stored["symbol"],
        quantity=int(stored["quantity"]),
        limit_price=Decimal(limit),
        currency=stored.get("limit_currency", stored["currency"]),
        amount=Decimal(stored["amount"]),
        amount_currency=stored["amount_currency"],
    )


def takes_approval(place: Callable[..., Any]) -> bool:
    """Whether the portal's ``place`` callable takes the :class:`Approval` (one required positional
    parameter); one that takes none is called without it (the contract before round nineteen)."""
    try:
        parameters = inspect.signature(place).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the old contract
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional and p.default is inspect.Parameter.empty for p in parameters)


def call_place(place: Callable[..., T], approval: Approval) -> T:
    """Run the portal's ``place`` with ``approval`` when it takes it."""
    return place(approval) if takes_approval(place) else place()


__all__ = ["Approval", "approval_for", "call_place", "stored_approval", "takes_approval"]
