"""What the order guard allowed: the order's quantity at the price it checked, within a small band.

The guard judges an order by its value: ``quantity x price x fx_rate``, with the price of the
``InstrumentInfo`` it read (the portal's quote when the order was validated, or the instrument hook's). A
portal that then fills the same quantity at whatever the price is at execution (a market order) executes a
value the guard never saw: in a thin stock the gang *is* the market, and its own ask lifts the price between
the quote and the fill (red team, round nineteen: a buy checked at 2.4 % of a portfolio filled at 24 %), or
its own bid takes the victim's shares for a fraction of what was checked (round twenty). So the guard's
answer carries an :class:`Approval`, and the portal executes the order as a **limit order at the checked
price**: a buy fills at that price or lower, a sell at that price or higher, each with a small tolerance
(``AUTHGUARD_ORDER_PRICE_TOLERANCE``, 1 %) so that an ordinary tick does not refuse a customer's order,
or not at all (the order is submitted through the guard again at the new price). :func:`price_band` is that
rule, written once.

:func:`~authguard.orders.guard.submit_order` hands the approval to the portal's ``place`` callable when it
takes one positional argument, and keeps it on ``Placed.approval``; a held order keeps the checked price in
its stored canonical order, and the executor reads it back with :func:`stored_approval`. A ``place`` that
cannot take it is still called the old way, and ``authguard.W122`` is logged once per process.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings

from authguard.checks.codes import Codes
from authguard.conf import app_settings
from authguard.models import HeldOrder
from authguard.orders.held import stored_order

if TYPE_CHECKING:
    from authguard.orders.guard import OrderIntent
    from authguard.orders.rule_base import OrderFacts

T = TypeVar("T")

logger = logging.getLogger(__name__)

_CENTS = Decimal("0.01")

#: What this process has warned about once (``authguard.W122``).
_warned: set[str] = set()


def price_band(
    side: str, limit: Decimal, *, tolerance: Decimal | None = None
) -> tuple[Decimal | None, Decimal | None]:
    """``(lowest, highest)`` price at which an order of ``side`` checked at ``limit`` may fill (``None``: no
    bound on that side).

    A buy fills at most at ``limit x (1 + tolerance)``, a sell at least at ``limit x (1 - tolerance)``:
    each at the checked price or better for the customer, or within the tolerance of it. ``tolerance``
    defaults to ``AUTHGUARD_ORDER_PRICE_TOLERANCE`` (1 %).

    SECURITY: a buy above the band pays a value the guard never saw (the gang's ask, round nineteen); a sell
    below it hands the victim's shares to the gang's crashed bid (round twenty). A better price moves no
    more than the customer agreed to: a buy below the limit pays less, a sell above it is paid more.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
    if tolerance is None:
        tolerance = app_settings.ORDER_PRICE_TOLERANCE
    if not 0 <= tolerance < 1:
        raise ValueError("the tolerance must be at least 0 and below 1")
    if side == "buy":
        return None, limit * (1 + tolerance)
    return limit * (1 - tolerance), None


def fills_within(side: str, limit: Decimal, price: Decimal, *, tolerance: Decimal | None = None) -> bool:
    """Whether an order of ``side`` checked at ``limit`` may fill at ``price`` (:func:`price_band`)."""
    lowest, highest = price_band(side, limit, tolerance=tolerance)
    # SECURITY: the bound of what moves without the customer's confirmation is the checked price.
    return (lowest is None or price >= lowest) and (highest is None or price <= highest)


@dataclass(frozen=True)
class Approval:
    """The order the guard checked: ``quantity`` of ``symbol`` at ``limit_price`` (per share, in the
    instrument's ``currency``), counted as ``amount`` in the portfolio's ``amount_currency``.

    The portal executes no more than this: a buy at ``limit_price`` or lower, a sell at ``limit_price`` or
    higher, within the configured tolerance (:meth:`fills_at`, :meth:`price_band`).
    """

    side: str
    symbol: str
    quantity: int
    limit_price: Decimal
    currency: str
    amount: Decimal
    amount_currency: str

    def price_band(self, *, tolerance: Decimal | None = None) -> tuple[Decimal | None, Decimal | None]:
        """``(lowest, highest)`` fill price of this order (``None``: unbounded on that side): a buy at most
        ``limit_price x (1 + tolerance)``, a sell at least ``limit_price x (1 - tolerance)``; ``tolerance``
        defaults to ``AUTHGUARD_ORDER_PRICE_TOLERANCE`` (:func:`price_band`)."""
        return price_band(self.side, self.limit_price, tolerance=tolerance)

    def fills_at(self, price: Decimal, *, tolerance: Decimal | None = None) -> bool:
        """Whether filling ``quantity`` at ``price`` (in :attr:`currency`) stays within what the guard
        checked: within :meth:`price_band`."""
        return fills_within(self.side, self.limit_price, price, tolerance=tolerance)

    def allows(self, price: Decimal, *, tolerance: Decimal = Decimal(0)) -> bool:
        """:meth:`fills_at` with an explicit ``tolerance``, by default none: the exact limit (round
        nineteen's call, kept for portals that use it; it now bounds a sell from below, not from above)."""
        return self.fills_at(price, tolerance=tolerance)

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


def _warn_without_approval(place: Callable[..., Any]) -> None:
    """Log ``authguard.W122`` the first time (per process) the guard calls a ``place`` that cannot take the
    approval; silenced like a check, by its id in ``SILENCED_SYSTEM_CHECKS``.

    SECURITY: such a portal must bound the fill to the checked price itself; one that fills the checked
    quantity at market fills at whatever the gang made the price (red team, round twenty: the contract of
    before round nineteen, silently kept)."""
    if Codes.ORDER_PLACE_WITHOUT_APPROVAL in _warned:
        return
    _warned.add(Codes.ORDER_PLACE_WITHOUT_APPROVAL)
    if Codes.ORDER_PLACE_WITHOUT_APPROVAL in getattr(settings, "SILENCED_SYSTEM_CHECKS", ()):
        return
    logger.warning(
        "%s: the order guard called %r without its approval (the place callable takes no required "
        "positional argument). Such a portal must execute the order as a limit order at the price the guard "
        "checked itself; one that fills at market fills at whatever a gang made the price. Take the "
        "approval: place=lambda approval: ..., and fill only where approval.fills_at(price) "
        "(docs/order-guard.md). "
        "Logged once per process.",
        Codes.ORDER_PLACE_WITHOUT_APPROVAL,
        getattr(place, "__qualname__", place),
    )


def call_place(place: Callable[..., T], approval: Approval) -> T:
    """Run the portal's ``place`` with ``approval`` when it takes it; else without, as before round nineteen
    (``authguard.W122``, once per process)."""
    if takes_approval(place):
        return place(approval)
    _warn_without_approval(place)
    return place()


__all__ = [
    "Approval",
    "approval_for",
    "call_place",
    "fills_within",
    "price_band",
    "stored_approval",
    "takes_approval",
]
