"""The instruments the demo lists, and the day's market data that creates and updates them.

:func:`sync_instruments` is the demo's one way to write an instrument, in one transaction: the long-run
figures the order guard reads (daily value, price, the day its data start), a code change
(:mod:`~demo_site.brokerage.code_change`) and a split or consolidation (:func:`_apply_split`: every position
rescaled, odd lots paid in cash).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from fractions import Fraction

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from authguard.orders.rules import DEFAULT_MIN_HISTORY_DAYS

from .code_change import take_over_former_code
from .instruments import INSTRUMENTS, InstrumentData
from .models import Account, Instrument, Position
from .yen import CENTS, to_jpy


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
