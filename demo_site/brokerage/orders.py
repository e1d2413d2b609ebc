"""A customer's orders at the demo brokerage: the one place that moves cash and shares for a trade.

Placing an order is split in two so that an order guard can sit in between:

- :func:`validate_order` checks the request and returns an :class:`OrderDraft` (what would happen), or raises
  :class:`OrderRejected` with errors per field;
- :func:`execute_order` carries a draft out under row locks, re-checking cash and holdings, as a limit order
  at the price the guard checked (the draft's, or the guard's :class:`~authguard.orders.approval.Approval`): a
  buy whose price moved above it, or a sell whose price moved below it, by more than the tolerance
  (``AUTHGUARD_ORDER_PRICE_TOLERANCE``) fills nothing (:class:`PriceMoved`);
- :func:`hold_order` stores a draft as a ``held`` order without moving anything, and
  ``execute_order(user, draft, order=held)`` later executes that held order exactly once.

:func:`place_order` is ``execute_order(validate_order(...))``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from authguard.orders.approval import Approval, fills_within

from .models import Account, Currency, Instrument, Order, OrderStatus, Position, Side
from .yen import format_money, to_jpy

#: Largest quantity one order may have; anything above is a typo or an attack, never a real order.
MAX_ORDER_QUANTITY = 10_000_000
# Symbols are TSE codes ("7203", "130A") or US tickers ("AAPL", "BRK.B"). Checking the shape before any
# query keeps NUL bytes and other junk away from the database driver.
_SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.]{0,15}")


class OrderRejected(Exception):
    """An order (or an account change) was refused; nothing was written.

    ``errors`` maps a field (``side``, ``symbol``, ``quantity``, ``cash``, ``account``, ``order``) to
    human-readable messages, in the shape of a Django form's ``errors``.
    """

    def __init__(self, errors: Mapping[str, Iterable[str]]) -> None:
        self.errors: dict[str, list[str]] = {
            field: [str(m) for m in messages] for field, messages in errors.items()
        }
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """All messages in one sentence-separated string, for a banner or a log line."""
        return " ".join(m for messages in self.errors.values() for m in messages)


class PriceMoved(OrderRejected):
    """The instrument's price has moved out of the band the order was checked at: nothing was executed.

    A limit order at the checked price does not fill: a buy above ``limit x (1 + tolerance)``, a sell below
    ``limit x (1 - tolerance)`` (:func:`authguard.orders.approval.price_band`). The customer sees the new
    price and submits the order again (through the order guard, at the new price). ``errors`` has it under
    ``price``.
    """

    def __init__(
        self, symbol: str, *, limit: Decimal, price: Decimal, currency: str, side: str = Side.BUY
    ) -> None:
        params = {
            "symbol": symbol,
            "price": format_money(price, currency),
            "limit": format_money(limit, currency),
        }
        if side == Side.SELL:
            message = _(
                "The price of %(symbol)s is now %(price)s, below the %(limit)s this order was checked at, so "
                "nothing was executed. Check the new price and place the order again."
            )
        else:
            message = _(
                "The price of %(symbol)s is now %(price)s, above the %(limit)s this order was checked at, so "
                "nothing was executed. Check the new price and place the order again."
            )
        super().__init__({"price": [message % params]})
        self.limit, self.price, self.side = limit, price, side


class SharesChanged(OrderRejected):
    """The instrument had a split or consolidation after the order was checked (validated or held): its
    quantity is in shares that no longer exist, so nothing was executed. ``errors`` has it under ``order``."""

    def __init__(self, symbol: str) -> None:
        message = _(
            "%(symbol)s had a split or consolidation after this order was checked, so its shares are no "
            "longer the ones in this order and nothing was executed. Check your holding and place the order "
            "again."
        ) % {"symbol": symbol}
        super().__init__({"order": [message]})


@dataclass(frozen=True)
class OrderDraft:
    """A validated order request: what executing it would do at the current price."""

    side: str
    instrument_id: int
    symbol: str
    name: str
    currency: str
    quantity: int
    price: Decimal
    amount_jpy: Decimal
    is_small_cap: bool
    avg_daily_volume: int
    market: str = ""
    listing_country: str = ""
    #: The instrument's long-run daily traded value in yen (``None``: the portal has none).
    baseline_daily_value: Decimal | None = None
    #: The instrument's long-run price in its own currency (``None``: the portal has none).
    reference_price: Decimal | None = None
    #: The first trading day of the instrument's long-run data (``None``: long listed).
    history_since: date | None = None
    #: The codes the instrument traded under before (a code change), newest first.
    former_symbols: tuple[str, ...] = ()
    #: ``Instrument.share_basis`` when checked: the shares ``quantity`` counts (a split changes them).
    share_basis: int = 0

    @property
    def amount(self) -> Decimal:
        """Value of the order in the instrument's own currency."""
        return self.price * self.quantity

    def summary(self) -> str:
        """A line for a confirmation screen: ``Sell 100 × 7203 Toyota Motor at ¥2,850 (≈ ¥285,000)``."""
        return _("%(side)s %(quantity)s × %(symbol)s %(name)s at %(price)s (≈ %(amount)s)") % {
            "side": Side(self.side).label,
            "quantity": f"{self.quantity:,}",
            "symbol": self.symbol,
            "name": self.name,
            "price": format_money(self.price, self.currency),
            "amount": format_money(self.amount_jpy, Currency.JPY),
        }


def order_draft(side: str, instrument: Instrument, quantity: int) -> OrderDraft:
    """What an order of ``quantity`` shares of ``instrument`` would do at its current price."""
    return OrderDraft(
        side=side,
        instrument_id=instrument.pk,
        symbol=instrument.symbol,
        name=instrument.name,
        currency=instrument.currency,
        quantity=quantity,
        price=instrument.price,
        amount_jpy=to_jpy(instrument.price * quantity, instrument.currency),
        is_small_cap=instrument.is_small_cap,
        avg_daily_volume=instrument.avg_daily_volume,
        market=instrument.market,
        listing_country=instrument.listing_country,
        baseline_daily_value=instrument.baseline_daily_value,
        reference_price=instrument.reference_price,
        history_since=instrument.history_since,
        former_symbols=tuple(instrument.former_symbols.split()),
        share_basis=instrument.share_basis,
    )


def _check_funds(account: Account, position: Position | None, draft: OrderDraft) -> dict[str, list[str]]:
    """Errors if the account cannot afford a buy or does not hold enough for a sell."""
    if draft.side == Side.BUY:
        if account.cash < draft.amount_jpy:
            return {
                "cash": [
                    _("Not enough cash: this order needs %(needed)s and the account has %(cash)s.")
                    % {
                        "needed": format_money(draft.amount_jpy, Currency.JPY),
                        "cash": format_money(account.cash, Currency.JPY),
                    }
                ]
            }
    else:
        held = position.quantity if position is not None else 0
        if held < draft.quantity:
            return {
                "quantity": [
                    _("You hold %(held)s shares of %(symbol)s and cannot sell %(quantity)s.")
                    % {"held": f"{held:,}", "symbol": draft.symbol, "quantity": f"{draft.quantity:,}"}
                ]
            }
    return {}


def _no_account_error() -> OrderRejected:
    return OrderRejected({"account": [_("This user has no trading account.")]})


def validate_order(
    user: AbstractBaseUser | AnonymousUser, *, side: object, symbol: object, quantity: object
) -> OrderDraft:
    """Check an order request exactly as it arrived (any JSON value) and describe it, or raise.

    ``side`` must be ``"buy"`` or ``"sell"``; ``symbol`` a known symbol (case and surrounding spaces are
    forgiven); ``quantity`` an ``int`` (not a bool, float or string) from 1 to :data:`MAX_ORDER_QUANTITY`. A
    buy must be affordable and a sell covered by holdings at this moment; :func:`execute_order` checks again
    under locks. Raises :class:`OrderRejected` with every problem found.
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(side, str) or side not in Side.values:
        errors["side"] = [_("Choose buy or sell.")]
    instrument = None
    normalized = symbol.strip().upper() if isinstance(symbol, str) else ""
    if not _SYMBOL_RE.fullmatch(normalized):
        errors["symbol"] = [_("Enter a symbol such as 7203 or AAPL.")]
    else:
        instrument = Instrument.objects.select_related("succeeded_by").filter(symbol=normalized).first()
        if instrument is None:
            errors["symbol"] = [_("There is no instrument with this symbol.")]
        elif instrument.succeeded_by is not None:
            # SECURITY: a former code is no second door to the company (red team, round sixty-nine).
            errors["symbol"] = [
                _("This code changed: the stock now trades as %(symbol)s.")
                % {"symbol": instrument.succeeded_by.symbol}
            ]
    # SECURITY: bools are ints in Python, and floats or strings must not be rounded into an order.
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        errors["quantity"] = [_("Enter the quantity as a whole number of shares.")]
    elif quantity < 1:
        errors["quantity"] = [_("The quantity must be at least 1.")]
    elif quantity > MAX_ORDER_QUANTITY:
        errors["quantity"] = [_("The quantity must be at most %(max)s.") % {"max": f"{MAX_ORDER_QUANTITY:,}"}]
    if errors:
        raise OrderRejected(errors)
    assert (
        instrument is not None and isinstance(side, str) and isinstance(quantity, int)
    )  # narrows the types for mypy
    account = Account.objects.filter(user_id=user.pk).first() if user.pk is not None else None
    if account is None:
        raise _no_account_error()
    draft = order_draft(side, instrument, quantity)
    position = Position.objects.filter(account=account, instrument=instrument).first()
    errors = _check_funds(account, position, draft)
    if errors:
        raise OrderRejected(errors)
    return draft


@functools.lru_cache(maxsize=4)
def _key_share_sql(vendor: str) -> str:
    q = connection.ops.quote_name
    # Only the model's own (quoted) names are formatted in; the id is a parameter.
    return f"SELECT 1 FROM {q(Instrument._meta.db_table)} WHERE {q('id')} = %s FOR KEY SHARE"  # noqa: S608


def _share_instrument(pk: int) -> None:
    """Lock the instrument row shared (PostgreSQL's ``FOR KEY SHARE``) until the transaction ends.

    SECURITY: a sync's split locks the row for update before it rescales the positions, so an order either
    waits for the split and then reads its share basis (READ COMMITTED reads the committed row), or the
    split waits for the order and rescales the position it wrote; never a fill in old shares written after
    the rescale. Shared, so orders of one instrument do not queue on each other; taken before the account,
    whose cash the split's odd-lot payout writes, so the two never deadlock. SQLite serialises writers.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_key_share_sql(connection.vendor), [pk])


def execute_order(
    user: AbstractBaseUser | AnonymousUser,
    draft: OrderDraft,
    *,
    order: Order | None = None,
    idempotency_key: str | None = None,
    approval: Approval | None = None,
) -> Order:
    """Execute ``draft`` as a limit order and return the ``placed`` order.

    The limit is the price the order guard checked: ``approval.limit_price`` (what
    ``authguard.orders.guard.submit_order`` hands ``place``, or
    :func:`~authguard.orders.guard.stored_approval` of a held order), else the draft's own price (the quote
    it was validated at). The order fills at the instrument's current price when that is within the limit's
    band (:func:`authguard.orders.approval.price_band`): a buy at the limit or lower, a sell at the limit or
    higher, each within ``AUTHGUARD_ORDER_PRICE_TOLERANCE`` (1 %) of it; outside the band nothing fills
    (:class:`PriceMoved`): nothing executes at a value the guard never saw. Nor in other shares than it saw:
    an order whose instrument had a split or consolidation since it was checked (the draft's, or the held
    order's, ``share_basis``) executes nothing (:class:`SharesChanged`).

    Runs in one transaction that locks the instrument row shared (:func:`_share_instrument`) and then the
    account row (so parallel orders of one customer queue up and cannot overspend or oversell), then
    re-checks cash or holdings. With ``order``, executes that held order instead of creating one: it must
    belong to ``user``, still be ``held`` and describe the same side, instrument and quantity as ``draft``;
    it is placed exactly once. Raises :class:`OrderRejected`.
    """
    if approval is not None and (approval.side, approval.symbol, approval.quantity) != (
        draft.side,
        draft.symbol,
        draft.quantity,
    ):
        raise ValueError("the approval is not this order's")
    with transaction.atomic():
        _share_instrument(draft.instrument_id)
        # SECURITY: every write to an account's cash or positions happens under this row lock.
        account = Account.objects.select_for_update().filter(user_id=user.pk).first() if user.pk else None
        if account is None:
            raise _no_account_error()
        held = None
        if order is not None:
            held = Order.objects.select_for_update().filter(pk=order.pk, account=account).first()
            # SECURITY: a held order is executed once, by its owner, as it was held.
            if held is None or held.status != OrderStatus.HELD:
                raise OrderRejected({"order": [_("This order is no longer waiting for confirmation.")]})
            if (held.side, held.instrument_id, held.quantity) != (
                draft.side,
                draft.instrument_id,
                draft.quantity,
            ):
                raise OrderRejected({"order": [_("The order does not match the one held for confirmation.")]})
        instrument = Instrument.objects.select_related("succeeded_by").get(pk=draft.instrument_id)
        if instrument.succeeded_by is not None:
            # SECURITY: read under the instrument's lock: a code change committed after the order was checked
            # (or after the executor's own look) fills nothing on the retired code (review, round 72).
            raise OrderRejected(
                {
                    "symbol": [
                        _("This code changed: the stock now trades as %(symbol)s.")
                        % {"symbol": instrument.succeeded_by.symbol}
                    ]
                }
            )
        current = order_draft(draft.side, instrument, draft.quantity)
        # SECURITY: the quantity counts shares of the day the order was checked (validated, or held for her
        # confirmation): after a split or consolidation it is another amount, and a consolidation's sell
        # even passes the price band, at ten times the value confirmed (red team, round seventy-one).
        if instrument.share_basis != draft.share_basis or (
            held is not None and held.share_basis != instrument.share_basis
        ):
            raise SharesChanged(current.symbol)
        limit = draft.price if approval is None else approval.limit_price
        # SECURITY: a limit order at the checked price, in authguard's one band for both sides: in a thin
        # stock the gang's own ask lifts the price between the quote and a buy's fill (a market order paid
        # ten times what the guard allowed, round nineteen), and its own bid crashes it before a sell's (the
        # victim's shares for a hundredth of what was checked, round twenty).
        if (approval is not None and approval.currency != current.currency) or not fills_within(
            current.side, limit, current.price
        ):
            raise PriceMoved(
                current.symbol, limit=limit, price=current.price, currency=current.currency, side=current.side
            )
        # ``of=("self",)``: the position's default ordering joins the instrument, and a plain FOR UPDATE would
        # lock its row too, against the key-share lock a parallel order of the same account holds while it
        # waits for the account: a deadlock (eight parallel buys on PostgreSQL).
        position = (
            Position.objects.select_for_update(of=("self",))
            .filter(account=account, instrument=instrument)
            .order_by("pk")
            .first()
        )
        errors = _check_funds(account, position, current)
        if errors:
            raise OrderRejected(errors)
        if current.side == Side.BUY:
            account.cash -= current.amount_jpy
            if position is None:
                Position.objects.create(account=account, instrument=instrument, quantity=current.quantity)
            else:
                position.quantity += current.quantity
                position.save(update_fields=["quantity"])
        else:
            assert position is not None  # _check_funds refused a sell without one
            account.cash += current.amount_jpy
            if position.quantity == current.quantity:
                position.delete()
            else:
                position.quantity -= current.quantity
                position.save(update_fields=["quantity"])
        account.save(update_fields=["cash"])
        now = timezone.now()
        if held is None:
            return Order.objects.create(
                account=account,
                side=current.side,
                instrument=instrument,
                quantity=current.quantity,
                price=current.price,
                currency=current.currency,
                amount_jpy=current.amount_jpy,
                status=OrderStatus.PLACED,
                executed_at=now,
                status_changed_at=now,
                idempotency_key=idempotency_key,
                share_basis=instrument.share_basis,
            )
        held.price = current.price
        held.amount_jpy = current.amount_jpy
        held.status = OrderStatus.PLACED
        held.executed_at = now
        held.status_changed_at = now
        held.save(update_fields=["price", "amount_jpy", "status", "executed_at", "status_changed_at"])
        return held


def hold_order(
    user: AbstractBaseUser | AnonymousUser,
    draft: OrderDraft,
    *,
    reason: str = "",
    idempotency_key: str | None = None,
) -> Order:
    """Store ``draft`` as a ``held`` order awaiting confirmation; no cash or shares move."""
    account = Account.objects.filter(user_id=user.pk).first() if user.pk is not None else None
    if account is None:
        raise _no_account_error()
    now = timezone.now()
    return Order.objects.create(
        account=account,
        side=draft.side,
        instrument_id=draft.instrument_id,
        quantity=draft.quantity,
        price=draft.price,
        currency=draft.currency,
        amount_jpy=draft.amount_jpy,
        status=OrderStatus.HELD,
        status_changed_at=now,
        status_reason=reason[:200],
        idempotency_key=idempotency_key,
        share_basis=draft.share_basis,
    )


def place_order(
    user: AbstractBaseUser | AnonymousUser, *, side: object, symbol: object, quantity: object
) -> Order:
    """Validate and execute an order at once, as a limit order at the price it was validated at: the
    ``placed`` order, or :class:`OrderRejected` (:class:`PriceMoved` when the price left the band in
    between)."""
    draft = validate_order(user, side=side, symbol=symbol, quantity=quantity)
    return execute_order(user, draft)
