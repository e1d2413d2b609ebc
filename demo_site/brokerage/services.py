"""The brokerage's business logic: the one place that moves money and shares.

The HTML views, the JSON API and the management commands all call these functions; none of them touches the
models' money fields directly. Every function that writes runs in one transaction, so a failure halfway
leaves nothing half-written.

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

Cash is in yen. US stocks are priced in dollars and converted at the fixed demo rate :data:`USD_JPY`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from authguard import statements
from authguard.models import HeldOrder
from authguard.orders import guard as guard_orders
from authguard.orders.approval import Approval, fills_within
from authguard.orders.guard import OrderIntent, OrderNotExecutable
from authguard.orders.rules import DEFAULT_MIN_HISTORY_DAYS, HoldingValue, InstrumentInfo, PortfolioSnapshot

from .code_change import CodeChangeError as CodeChangeError
from .code_change import take_over_former_code
from .instruments import INSTRUMENTS, InstrumentData
from .models import Account, Currency, Instrument, Order, OrderStatus, Position, Side

#: Fixed demo exchange rate: yen per US dollar. The demo never fetches live rates.
USD_JPY = Decimal("150")
#: Yen per unit of each instrument currency.
JPY_PER_UNIT: dict[str, Decimal] = {Currency.JPY: Decimal(1), Currency.USD: USD_JPY}
CENTS = Decimal("0.01")
#: Largest quantity one order may have; anything above is a typo or an attack, never a real order.
MAX_ORDER_QUANTITY = 10_000_000
#: Largest cash balance an account may be opened with (the column holds 16 integer digits).
MAX_CASH = Decimal("1000000000000")
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


class AccountError(ValueError):
    """:func:`open_account` or :func:`reset_portfolio` was given an impossible portfolio."""


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


def to_jpy(amount: Decimal, currency: str) -> Decimal:
    """Convert ``amount`` of ``currency`` to yen at the demo rate, rounded half-up to whole yen.

    The result carries two decimal places like every money column, so it prints as ``"285000.00"``.
    """
    return (amount * JPY_PER_UNIT[currency]).quantize(Decimal(1), rounding=ROUND_HALF_UP).quantize(CENTS)


def format_money(amount: Decimal, currency: str) -> str:
    """``¥1,234`` (``¥152.5`` when there are tenths) or ``$1,234.56``."""
    if currency == Currency.JPY:
        tenths = amount.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        if tenths == tenths.to_integral_value():
            return f"¥{tenths:,.0f}"
        return f"¥{tenths:,.1f}"
    return f"${amount:,.2f}"


# -- instruments ---------------------------------------------------------------------------------------


def list_instruments() -> QuerySet[Instrument]:
    """All tradable instruments (not a former code), Tokyo listings first, then by symbol."""
    return Instrument.objects.filter(succeeded_by__isnull=True).order_by("listing_country", "symbol")


def history_days(since: date | None, today: date | None = None) -> int | None:
    """Trading days of long-run data from ``since`` to ``today`` (default: the local date), both counted:
    weekdays, as the demo keeps no exchange calendar. ``None`` for an instrument without a start (long
    listed): the guard then reads its long-run figures as it always did."""
    if since is None:
        return None
    today = timezone.localdate() if today is None else today
    if today < since:
        return 0
    weeks, rest = divmod((today - since).days + 1, 7)
    return weeks * 5 + sum(1 for day in range(rest) if (since.weekday() + day) % 7 < 5)


def _young(instrument: Instrument, today: date) -> bool:
    days = history_days(instrument.history_since, today)
    return days is not None and days < DEFAULT_MIN_HISTORY_DAYS


def sync_instruments(rows: Iterable[InstrumentData] = INSTRUMENTS) -> int:
    """Create or update the instruments from :mod:`~demo_site.brokerage.instruments` (or a day's rows of
    the same shape); return how many.

    The long-run daily traded value (``Instrument.baseline_daily_value``) is written from a row's explicit
    ``baseline_daily_value``; without one, a new instrument starts from its row's price x volume (the demo's
    levels are its long run) and an existing one keeps the value it has. The long-run price
    (``Instrument.reference_price``) likewise: from a row's explicit ``reference_price``, else a new
    instrument's from its row's price, and an existing one's kept.

    A new instrument's long-run data start on the day it arrives (``Instrument.history_since``) unless its
    row gives a start (``history_since``) or a former code (``formerly``: a code change), whose long-run data
    and positions it takes over. While they cover fewer than 20 trading days the order guard weighs it as
    illiquid (``InstrumentInfo.history_days``), and a day's row can only lower its long-run daily value: the
    demo keeps no series to take a median of, and its first day is the one a gang wash-trades. A row's
    ``split`` rescales the long-run price and the positions (:func:`_apply_split`) and counts in
    ``Instrument.share_basis``, so that no order checked before it executes.

    A row's ``formerly`` is applied whether its code is new to the demo or listed already
    (:func:`~demo_site.brokerage.code_change.take_over_former_code`: the former code is retired, its
    positions and codes move, its long run too where it is the longer); one the sync cannot apply raises
    :class:`CodeChangeError` and the whole sync writes nothing.
    """
    count = 0
    today = timezone.localdate()
    with transaction.atomic():
        for row in rows:
            fields: dict[str, object] = {
                "name": row.name,
                "market": row.market,
                "currency": row.currency,
                "price": row.price,
                "avg_daily_volume": row.avg_daily_volume,
                "listing_country": row.listing_country,
                "is_small_cap": row.is_small_cap,
            }
            existing = Instrument.objects.select_for_update().filter(symbol=row.symbol).first()
            if existing is not None and existing.succeeded_by_id is not None:
                # SECURITY: a row for a former code is a new listing on a reused code: a new company, its
                # history starting now; the old row keeps its orders under an archived name.
                existing.symbol = f"{row.symbol}~{existing.pk}"[
                    : Instrument._meta.get_field("symbol").max_length
                ]
                existing.save(update_fields=["symbol"])
                existing = None
            if existing is None:
                _create_instrument(row, fields, today)
            else:
                _update_instrument(existing, row, fields, today)
            count += 1
    return count


def _create_instrument(row: InstrumentData, fields: dict[str, object], today: date) -> Instrument:
    instrument = Instrument.objects.create(
        symbol=row.symbol,
        **fields,
        baseline_daily_value=to_jpy(row.price * row.avg_daily_volume, row.currency),
        reference_price=row.price,
        history_since=today,
    )
    # SECURITY: a new code's long run is its former code's, not its first day, which the gang's wash trades
    # print (red team, round fifty-seven); and its orders are the new code's (round sixty-six).
    changed = take_over_former_code(instrument, row.formerly) if row.formerly else []
    changed += _explicit_long_run(instrument, row)  # the row's own figures win over the former code's
    if changed:
        instrument.save(update_fields=sorted(set(changed)))
    return instrument


def _explicit_long_run(instrument: Instrument, row: InstrumentData) -> list[str]:
    """Set the long-run figures ``row`` gives explicitly; return their fields."""
    given = {
        "baseline_daily_value": row.baseline_daily_value,
        "reference_price": row.reference_price,
        "history_since": row.history_since,
    }
    for name, value in given.items():
        if value is not None:
            setattr(instrument, name, value)
    return [name for name, value in given.items() if value is not None]


def _update_instrument(
    instrument: Instrument, row: InstrumentData, fields: dict[str, object], today: date
) -> None:
    updates = dict(fields)
    # SECURITY: a code change into a code the demo already lists (a when-issued line, a merger) retires the
    # former code as a new code does (red team, round seventy-one: this path ignored it).
    taken = take_over_former_code(instrument, row.formerly) if row.formerly else []
    updates.update({name: getattr(instrument, name) for name in taken})
    # SECURITY: the long run is what a pump cannot lift: never the day's price x volume of a stock the demo
    # already knows (red team, round twenty: one morning's sync of a pumped day made 5Z4A's ¥10.5 billion a
    # day its long-run value, and half a portfolio went into it without a hold). A young one's only falls
    # (round fifty-seven: its first day was the gang's).
    if row.baseline_daily_value is not None:
        updates["baseline_daily_value"] = row.baseline_daily_value
    elif _young(instrument, today) and instrument.baseline_daily_value is not None:
        day_value = to_jpy(row.price * row.avg_daily_volume, row.currency)
        updates["baseline_daily_value"] = min(instrument.baseline_daily_value, day_value)
    # SECURITY: nor the long-run price from the day's, which in a thin stock the gang's trades set (red team,
    # round twenty-three: 7Z2A's day printed at ¥85, a tenth of its price); a split rescales it per share
    # as the stock trades now (round fifty-seven: a consolidation left it a tenth of the new share's).
    if row.reference_price is not None:
        updates["reference_price"] = row.reference_price
    elif row.split is not None and instrument.reference_price is not None:
        updates["reference_price"] = (instrument.reference_price / _ratio(row.split)).quantize(CENTS)
    if row.history_since is not None:
        updates["history_since"] = row.history_since
    if row.split is not None:
        ratio = _ratio(row.split)
        # SECURITY: odd lots are paid at the lowest of the day's price, the long-run price and yesterday's,
        # each per new share: the day's print of a thin stock is the gang's, and twenty accounts of nine old
        # shares were paid a hundredfold print in cash (red team, round seventy-three).
        candidates = (row.price, updates.get("reference_price"), instrument.price / ratio)
        odd_price = min(p for p in candidates if p is not None and p > 0)
        _apply_split(instrument, ratio, price=odd_price)
        updates["share_basis"] = instrument.share_basis + 1
    for name, value in updates.items():
        setattr(instrument, name, value)
    instrument.save(update_fields=list(updates))


def _ratio(split: Fraction) -> Decimal:
    if split <= 0:
        raise ValueError(f"a split must be a positive number of new shares per old share, not {split!r}")
    return Decimal(split.numerator) / Decimal(split.denominator)


def _apply_split(instrument: Instrument, ratio: Decimal, *, price: Decimal) -> None:
    """Every position in ``instrument`` times ``ratio`` new shares per old share; a fraction of a new share
    is paid out in cash at ``price`` (per new share: the caller's lowest of the day's, the long-run and
    yesterday's), as a consolidation's odd lots are. An order checked
    before it (held, or between validation and execution) executes nothing: the caller counts the split in
    ``Instrument.share_basis`` (:class:`SharesChanged`). Its price band alone would not do: a
    consolidation's sell fills at the tenfold price, its quantity now ten times the value (round
    seventy-one)."""
    positions = Position.objects.select_for_update().filter(instrument=instrument).order_by("pk")
    for position in positions:
        shares = Decimal(position.quantity) * ratio
        whole = int(shares)
        odd = to_jpy((shares - whole) * price, instrument.currency)
        if odd > 0:
            Account.objects.filter(pk=position.account_id).update(cash=F("cash") + odd)
        if whole > 0:
            position.quantity = whole
            position.save(update_fields=["quantity"])
        else:
            position.delete()


# -- accounts ------------------------------------------------------------------------------------------


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


# -- orders --------------------------------------------------------------------------------------------


def _draft(side: str, instrument: Instrument, quantity: int) -> OrderDraft:
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
    draft = _draft(side, instrument, quantity)
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
        current = _draft(draft.side, instrument, draft.quantity)
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


# -- the order guard (authguard.orders.guard)
# -----------------------------------------------------------------
#
# The portal's three hooks (demo_site/settings.py names them) and the one call that places an order through
# the guard. HTML and JSON order entry both go through :func:`submit_order`.

#: Longest ``Idempotency-Key`` accepted (the column is 64 wide).
MAX_IDEMPOTENCY_KEY = 64
_IDEMPOTENCY_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


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
                _draft(stored["side"], instrument, stored["quantity"]),
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


def order_intent(user: AbstractBaseUser | AnonymousUser, draft: OrderDraft) -> OrderIntent:
    """The guard's description of a validated order."""
    account_id = Account.objects.filter(user_id=user.pk).values_list("pk", flat=True).first()
    return OrderIntent(
        account=str(account_id),
        side=draft.side,
        symbol=draft.symbol,
        quantity=draft.quantity,
        price=draft.price,
        currency=draft.currency,
        market=draft.market,
    )


def idempotency_key(value: object) -> str | None:
    """A usable ``Idempotency-Key`` header value, ``None`` when absent; raises for a malformed one."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _IDEMPOTENCY_RE.fullmatch(value):
        raise OrderRejected(
            {"idempotency_key": [_("The Idempotency-Key must be 1 to 64 letters, digits or ._:-")]}
        )
    return value


@dataclass(frozen=True)
class Submitted:
    """What :func:`submit_order` did: ``order`` is ``placed`` or ``held`` (then ``confirmation`` is set)."""

    order: Order
    confirmation: HeldOrder | None = None
    replayed: bool = False

    @property
    def held(self) -> bool:
        return self.confirmation is not None


def submit_order(
    request: HttpRequest,
    *,
    side: object,
    symbol: object,
    quantity: object,
    idempotency_key: str | None = None,
) -> Submitted:
    """Validate an order and submit it through authguard's order guard: placed at once, or held until the
    customer confirms it. The same ``idempotency_key`` answers with the first order, never a second one.

    Raises :class:`OrderRejected` (invalid, unaffordable) or ``authguard.orders.guard.OrderDenied``.
    """
    user = request.user
    draft = validate_order(user, side=side, symbol=symbol, quantity=quantity)
    intent = order_intent(user, draft)
    with transaction.atomic():
        guard_orders.lock_customer(user)
        if idempotency_key is not None:
            # SECURITY: checked under the customer's lock, so parallel retries find the first order.
            existing = Order.objects.filter(account__user_id=user.pk, idempotency_key=idempotency_key).first()
            if existing is not None:
                held = HeldOrder.objects.filter(user_id=user.pk, portal_ref=str(existing.pk)).first()
                return Submitted(existing, held, replayed=True)
        outcome = guard_orders.submit_order(
            request,
            user=user,
            intent=intent,
            instrument=instrument_info(draft),
            # The guard's approval: executed as a limit order at the price it checked.
            place=lambda approval: execute_order(
                user, draft, approval=approval, idempotency_key=idempotency_key
            ),
            hold=lambda decision: hold_order(
                user, draft, reason=", ".join(decision.reasons), idempotency_key=idempotency_key
            ),
        )
    if isinstance(outcome, guard_orders.Held):
        return Submitted(outcome.portal_result, outcome.confirmation)
    return Submitted(outcome.result)


def pending_confirmations(
    user: AbstractBaseUser | AnonymousUser, orders: Iterable[Order]
) -> dict[int, HeldOrder]:
    """The pending authguard confirmation of each held order in ``orders``, by order id (none past its
    deadline: those are expired here first)."""
    if user.pk is not None:
        guard_orders.expire_due(user=user)
    refs = [str(o.pk) for o in orders if o.status == OrderStatus.HELD]
    if not refs or user.pk is None:
        return {}
    rows = HeldOrder.objects.filter(
        user_id=user.pk, portal_ref__in=refs, status=HeldOrder.Status.PENDING, expires_at__gt=timezone.now()
    )
    return {int(h.portal_ref): h for h in rows}
