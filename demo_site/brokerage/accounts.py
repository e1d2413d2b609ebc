"""Customers' trading accounts: opening one, resetting its portfolio, and what the customer's pages read
(the portfolio valued in yen, the order history)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import QuerySet

from authguard.orders import guard as guard_orders

from .models import Account, Instrument, Order, Position
from .orders import MAX_ORDER_QUANTITY
from .yen import CENTS, to_jpy

#: Largest cash balance an account may be opened with (the column holds 16 integer digits).
MAX_CASH = Decimal("1000000000000")


class AccountError(ValueError):
    """:func:`open_account` or :func:`reset_portfolio` was given an impossible portfolio."""


@dataclass(frozen=True)
class Holding:
    """One line of a portfolio. ``value`` is in the instrument's currency, ``value_jpy`` in yen."""

    symbol: str
    name: str
    market: str
    quantity: int
    price: Decimal
    currency: str
    value: Decimal
    value_jpy: Decimal
    is_small_cap: bool


@dataclass(frozen=True)
class Portfolio:
    """A customer's cash and holdings, valued in yen."""

    cash: Decimal
    holdings: list[Holding]
    holdings_value: Decimal
    total_value: Decimal


def _cash(value: Decimal | int | str) -> Decimal:
    try:
        cash = Decimal(value) if not isinstance(value, (bool, float)) else None
    except (InvalidOperation, TypeError, ValueError):
        cash = None
    if cash is None or not cash.is_finite() or cash < 0 or cash > MAX_CASH:
        raise AccountError(f"cash must be a number of yen between 0 and {MAX_CASH}, not {value!r}")
    return cash.quantize(CENTS, rounding=ROUND_HALF_UP)


def _write_positions(account: Account, holdings: Mapping[str, int]) -> None:
    symbols = set(holdings)
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    unknown = sorted(symbols - set(instruments))
    if unknown:
        raise AccountError(f"unknown symbols: {', '.join(unknown)}")
    for symbol, quantity in holdings.items():
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 < quantity <= MAX_ORDER_QUANTITY
        ):
            raise AccountError(f"quantity of {symbol} must be a positive whole number, not {quantity!r}")
    Position.objects.bulk_create(
        Position(account=account, instrument=instruments[symbol], quantity=quantity)
        for symbol, quantity in holdings.items()
    )


def open_account(
    username: str,
    password: str,
    *,
    email: str,
    cash: Decimal | int | str,
    holdings: dict[str, int],
) -> AbstractBaseUser:
    """Create a customer with a trading account holding ``cash`` yen and ``holdings`` (symbol → shares).

    All or nothing: an existing username, an unknown symbol or a bad quantity raises :class:`AccountError`
    and creates nothing. The password is not checked against ``AUTH_PASSWORD_VALIDATORS`` here; callers that
    take passwords from people (``seed_demo``'s documented ones included) do that.
    """
    user_model = get_user_model()
    amount = _cash(cash)
    with transaction.atomic():
        if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
            raise AccountError(f"user {username!r} already exists")
        user = user_model._default_manager.create_user(
            **{user_model.USERNAME_FIELD: username}, email=email, password=password
        )
        account = Account.objects.create(user=user, cash=amount)
        _write_positions(account, holdings)
    return user


def reset_portfolio(user: AbstractBaseUser, *, cash: Decimal | int | str, holdings: dict[str, int]) -> None:
    """Replace a customer's cash and holdings (the order history is kept). Creates the account if needed."""
    amount = _cash(cash)
    with transaction.atomic():
        account, _created = Account.objects.select_for_update().get_or_create(user=user)
        account.positions.all().delete()
        account.cash = amount
        account.save(update_fields=["cash"])
        _write_positions(account, holdings)


def portfolio(user: AbstractBaseUser | AnonymousUser) -> Portfolio:
    """The customer's cash and holdings with their yen values. A user without an account has an empty one."""
    account = Account.objects.filter(user_id=user.pk).first() if user.pk is not None else None
    if account is None:
        zero = Decimal("0.00")
        return Portfolio(cash=zero, holdings=[], holdings_value=zero, total_value=zero)
    holdings = []
    for position in account.positions.select_related("instrument").order_by("instrument__symbol"):
        instrument = position.instrument
        value = instrument.price * position.quantity
        holdings.append(
            Holding(
                symbol=instrument.symbol,
                name=instrument.name,
                market=instrument.market,
                quantity=position.quantity,
                price=instrument.price,
                currency=instrument.currency,
                value=value,
                value_jpy=to_jpy(value, instrument.currency),
                is_small_cap=instrument.is_small_cap,
            )
        )
    holdings_value = sum((h.value_jpy for h in holdings), Decimal("0.00"))
    return Portfolio(
        cash=account.cash,
        holdings=holdings,
        holdings_value=holdings_value,
        total_value=account.cash + holdings_value,
    )


def order_history(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Order]:
    """The customer's orders, newest first. Held orders past their deadline are expired first (on read: the
    demo runs no periodic task), so the list never shows one as still waiting."""
    if user.pk is not None:
        guard_orders.expire_due(user=user)
    return (
        Order.objects.filter(account__user_id=user.pk)
        .select_related("instrument")
        .order_by("-created_at", "-id")
    )
