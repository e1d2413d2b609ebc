"""The instruments the demo lists, and the day's market data that creates and updates them.

:func:`sync_instruments` is the demo's one way to write an instrument, in one transaction: the long-run
figures the order guard reads (daily value, price, the day its data start), a code change
(:mod:`~demo_site.brokerage.code_change`: the former code's positions at its exchange ratio) and a split or
consolidation (:func:`_apply_split`: every position rescaled, odd lots paid in cash), each applied once.
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

from .code_change import (
    CodeChangeError,
    CorporateActionError,
    former_code,
    per_new_share,
    take_over_former_code,
)
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
    demo keeps no series to take a median of, and its first day is the one a gang wash-trades.

    A row's ``split`` without ``formerly`` is the code's own: it rescales the long-run price and every
    position (:func:`_apply_split`) and counts in ``Instrument.share_basis``, so that no order checked
    before it executes. A row's ``formerly`` (a code change) is applied whether its code is new to the demo
    or listed already (:func:`_take_over`): the former code's positions are rescaled by the change's
    exchange ratio (``exchange_ratio``, else the row's ``split``: a split that comes with a code change is
    the change's; else one for one into a new code), odd lots in cash, before they join the code's own,
    whose holders keep theirs; its long run moves where it is the longer, per share of the new code; the
    former code is retired and its share basis counted.

    Each is applied once (``Instrument.corporate_actions``, every code change recorded, a plain one as
    ``x 1``): the same row run again on its day changes no position. A row for a code the day's sync
    retired is no new listing (:func:`_check_row_for_code_retired_today`): its own row of the day (sent
    beside its change, or synced again) and its own change synced again (a chain's middle code) write
    nothing; a reused code lists its new company from a later day's rows. A row the sync cannot apply
    unambiguously raises :class:`CorporateActionError` (a code change's: :class:`CodeChangeError`) and the
    whole sync writes nothing: a ``formerly`` it cannot carry over (not listed, the row's own code, retired
    into another), a change into a listed code without a ratio (a merger's is never assumed one for one),
    ``split`` beside ``exchange_ratio``, ``exchange_ratio`` without ``formerly``, a ratio that is not
    positive, a ``split`` on a row whose code change an earlier day applied (the change's again, or the code's
    own?), a code's own split and a code change from it or into it on the same day, in either order (the
    ratio, one for one too, per share before the split or after?), a second, other split of the same day or
    a change of the same day at another ratio, and a code retired today's own split or a change into it (a
    chain's rows in reverse, a change back).
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
            if (
                existing is not None
                and existing.succeeded_by_id is not None
                and _retired_today(existing, today)
            ):
                # SECURITY: not a new listing: the same day's rows again, the retired code's own last row,
                # or its own action after its change (red team, round seventy-six).
                _check_row_for_code_retired_today(existing, row, today)
                continue
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
    ratio = _change_ratio(row)
    instrument = Instrument.objects.create(
        symbol=row.symbol,
        **fields,
        baseline_daily_value=to_jpy(row.price * row.avg_daily_volume, row.currency),
        reference_price=row.price,
        history_since=today,
    )
    # SECURITY: a new code's long run is its former code's, not its first day, which the gang's wash trades
    # print (red team, round fifty-seven); and its orders are the new code's (round sixty-six); and its
    # holders' shares are the former code's at the change's ratio (round seventy-four: a reverse split
    # under a new ticker moved them one for one, tenfold their value). A new code has no holders of its
    # own, so a plain change (no ratio) is one for one.
    changed = (_take_over(instrument, row, ratio, listed=False, today=today) or []) if row.formerly else []
    changed += _explicit_long_run(instrument, row)  # the row's own figures win over the former code's
    # A new listing's own split rescales nothing (it has no positions yet, its price is per new share); it
    # is recorded all the same, so that a second run of the day's rows does not split what was bought since.
    changed += _record(instrument, [], _action(row, ratio), today)
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
    ratio = _change_ratio(row)
    action = _action(row, ratio)
    done = _actions_on(instrument, today)
    # SECURITY: a code change into a code the demo already lists (a when-issued line, a merger) retires the
    # former code as a new code does (red team, round seventy-one: this path ignored it), at its own ratio,
    # on the former code's positions only (round seventy-four: the row's split rescaled the listed code's
    # own holders too, a second time for when-issued shares).
    taken = _take_over(instrument, row, ratio, listed=True, today=today) if row.formerly else None
    updates.update({name: getattr(instrument, name) for name in taken or []})
    # SECURITY: the long run is what a pump cannot lift: never the day's price x volume of a stock the demo
    # already knows (red team, round twenty: one morning's sync of a pumped day made 5Z4A's ¥10.5 billion a
    # day its long-run value, and half a portfolio went into it without a hold). A young one's only falls
    # (round fifty-seven: its first day was the gang's).
    if row.baseline_daily_value is not None:
        updates["baseline_daily_value"] = row.baseline_daily_value
    elif _young(instrument, today) and instrument.baseline_daily_value is not None:
        day_value = to_jpy(row.price * row.avg_daily_volume, row.currency)
        updates["baseline_daily_value"] = min(instrument.baseline_daily_value, day_value)
    split = _own_split(instrument, row, action, done)
    # SECURITY: nor the long-run price from the day's, which in a thin stock the gang's trades set (red team,
    # round twenty-three: 7Z2A's day printed at ¥85, a tenth of its price); a split rescales it per share
    # as the stock trades now (round fifty-seven: a consolidation left it a tenth of the new share's).
    if row.reference_price is not None:
        updates["reference_price"] = row.reference_price
    elif split is not None and instrument.reference_price is not None:
        updates["reference_price"] = per_new_share(instrument.reference_price, split).quantize(CENTS)
    if row.history_since is not None:
        updates["history_since"] = row.history_since
    if split is not None:
        # SECURITY: odd lots are paid at the lowest of the day's price, the long-run price and yesterday's,
        # each per new share: the day's print of a thin stock is the gang's, and twenty accounts of nine old
        # shares were paid a hundredfold print in cash (red team, round seventy-three).
        candidates = (row.price, updates.get("reference_price"), per_new_share(instrument.price, split))
        _apply_split(instrument, split, price=_lowest(candidates))
        updates["share_basis"] = instrument.share_basis + 1
    for name, value in updates.items():
        setattr(instrument, name, value)
    # Recorded when applied today: a change an earlier day applied, named again, retired nothing today.
    applied = taken is not None or split is not None
    instrument.save(update_fields=[*updates, *_record(instrument, done, action if applied else None, today)])


def _ratio(value: Fraction) -> Fraction:
    """``value`` (new shares per old share) as an exact fraction: a ratio in decimals loses shares (a third
    is 0.333..., and three old shares consolidated three into one were 0.999... of a new one)."""
    ratio = Fraction(value)
    if ratio <= 0:
        raise CorporateActionError(
            f"a split must be a positive number of new shares per old share, not {value!r}"
        )
    return ratio


def _change_ratio(row: InstrumentData) -> Fraction | None:
    """The exchange ratio of the row's code change, shares of the row's code per share of the former one:
    its ``exchange_ratio``, else its ``split`` (a split that comes with a code change is the change's: it
    rescales the former code's shares); ``None`` when the row states none (or changes no code)."""
    if row.formerly is None:
        if row.exchange_ratio is not None:
            raise CodeChangeError(f"{row.symbol}: an exchange ratio without a former code (formerly)")
        return None
    if row.exchange_ratio is not None and row.split is not None:
        raise CodeChangeError(
            f"{row.symbol}: a code change from {row.formerly} with both an exchange ratio and a split: "
            "whether the split is this code's own holders' or the change's cannot be told (send a split of "
            "this code's own shares on a row without formerly)"
        )
    given = row.exchange_ratio if row.exchange_ratio is not None else row.split
    return None if given is None else _ratio(given)


def _action(row: InstrumentData, ratio: Fraction | None) -> str | None:
    """How the row's corporate action is recorded on the instrument (``Instrument.corporate_actions``): a
    split ``split 1/10``, a code change ``ZVXQ x 1/10`` (a plain one, into a new code, ``ZVXQ x 1``: the
    sync must know every code it retired today); ``None`` for a row with neither."""
    if row.formerly is not None:
        return f"{row.formerly.strip().upper()} x {1 if ratio is None else ratio}"
    return None if row.split is None else f"split {_ratio(row.split)}"


def _changed_from(action: str) -> str | None:
    """The former code a recorded action took over (``ZVXQ`` of ``ZVXQ x 1/10``); ``None`` for a split."""
    code, sep, _ = action.partition(" x ")
    return code if sep and not action.startswith("split ") else None


def _retired_today(instrument: Instrument, today: date) -> bool:
    """Whether today's sync retired the (retired) ``instrument``: its successor's actions of today name it."""
    successor = Instrument.objects.filter(pk=instrument.succeeded_by_id).first()
    return successor is not None and any(
        _changed_from(a) == instrument.symbol for a in _actions_on(successor, today)
    )


def _check_row_for_code_retired_today(retired: Instrument, row: InstrumentData, today: date) -> None:
    """A row for a code today's sync retired (red team, round seventy-six: each was read as a new company's
    listing on a reused code). Returns for a row to skip, which writes nothing: the retired code's own row of
    the day, sent beside its change or synced again (it trades no more: a new listing then would be a
    phantom of the old company), or its own code change of the day synced again (recorded on it: a chain's
    middle code, ZVXQ -> ZVXR -> ZVXS run twice). Raises for the rest, which the sync cannot apply
    unambiguously: its own split (after its change: the change's ratio counted its shares before the split
    or after?), or a code change into it (a chain's rows in reverse, or a change back the same day: which
    holders, at which code's shares?). A new company's listing on a retired code comes on a later day."""
    ratio = _change_ratio(row)
    action = _action(row, ratio)
    if row.formerly is None and action is None:
        return
    if row.formerly is not None and _repeats_todays_change(retired, row, ratio, today):
        return
    successor = retired.succeeded_by.symbol if retired.succeeded_by else "?"
    if row.formerly is None:
        raise CodeChangeError(
            f"{row.symbol}: a split ({action}) of a code that changed to {successor} today: whether the "
            "change's ratio counted its shares before the split or after cannot be told (send a split that "
            "comes with a code change on the change's row, formerly with split)"
        )
    raise CodeChangeError(
        f"{row.symbol}: a code change from {row.formerly} into a code that changed to {successor} today (a "
        "chain's rows in reverse order, or a change back): which holders it means, at which code's shares, "
        "cannot be told (send a chain's rows in order, the oldest code's change first)"
    )


def _repeats_todays_change(
    instrument: Instrument, row: InstrumentData, ratio: Fraction | None, today: date
) -> bool:
    """Whether the row's code change (``formerly``) is one the sync applied to ``instrument`` today: the
    day's row again (without a ratio, or at the ratio recorded). Raises :class:`CodeChangeError` for the
    same change at another ratio: a correction or a second action, the sync cannot tell (ignored, the first
    ratio stood unannounced)."""
    assert row.formerly is not None
    code = row.formerly.strip().upper()
    recorded = [a for a in _actions_on(instrument, today) if _changed_from(a) == code]
    if not recorded:
        return False
    action = _action(row, ratio)
    if ratio is None or action in recorded:
        return True
    raise CodeChangeError(
        f"{instrument.symbol}: the code change from {code} was applied today ({recorded[0]}); the same "
        f"change at another ratio ({action}) is refused: a correction or a second action cannot be told"
    )


def _actions_on(instrument: Instrument, today: date) -> list[str]:
    """The corporate actions the sync applied to ``instrument`` today."""
    return instrument.corporate_actions.splitlines() if instrument.corporate_actions_on == today else []


def _record(instrument: Instrument, done: list[str], action: str | None, today: date) -> list[str]:
    """Add ``action`` to the instrument's corporate actions of ``today``; return the fields set."""
    if action is None or action in done:
        return []
    instrument.corporate_actions_on = today
    instrument.corporate_actions = "\n".join([*done, action])
    return ["corporate_actions_on", "corporate_actions"]


def _own_split(
    instrument: Instrument, row: InstrumentData, action: str | None, done: list[str]
) -> Fraction | None:
    """The split of the instrument's own shares the row brings and the sync has still to apply: none on a
    row with ``formerly`` (its split is the code change's) or one the sync applied today (the day's rows run
    again). A second, other split of the same day is refused: a correction or a second action, it cannot be
    told, and applied on the first it would rescale the positions twice."""
    if row.formerly is not None or row.split is None or action in done:
        return None
    earlier = [a for a in done if a.startswith("split ")]
    if earlier:
        raise CorporateActionError(
            f"{instrument.symbol}: {earlier[0]} was applied today; another split the same day ({action}) "
            "is refused"
        )
    changes = [a for a in done if _changed_from(a) is not None]
    if changes:
        # SECURITY: the change's holders are this code's now; a split after it reads the change's ratio per
        # share before the split, a split before it per share after, and the feed does not say which (red
        # team, round seventy-six: a merger into Sony and Sony's consolidation, one order paid tenfold).
        raise CodeChangeError(
            f"{instrument.symbol}: a code change into it ({changes[0]}) was applied today; a split of its "
            f"own shares the same day ({action}) is refused (the change's ratio counts its shares before the "
            "split or after?): a split that comes with a change into a new code is the change's row "
            "(formerly with split); otherwise apply one of them on a later day"
        )
    return _ratio(row.split)


def _take_over(
    instrument: Instrument, row: InstrumentData, ratio: Fraction | None, *, listed: bool, today: date
) -> list[str] | None:
    """Apply the row's code change (``formerly``) to ``instrument`` at ``ratio``: the former code's positions
    rescaled (:func:`_apply_split`, odd lots in cash), then moved and the code retired
    (:func:`~demo_site.brokerage.code_change.take_over_former_code`). Returns the instrument's fields set;
    ``None`` when an earlier row applied the change (nothing to record).

    Raises :class:`CodeChangeError` for a row it cannot apply unambiguously: a change into a code the demo
    lists already (``listed``) without a ratio (a merger's is never assumed one for one:
    ``exchange_ratio=Fraction(1)`` states the same shares, a when-issued line's), or a ``split`` on a row
    whose change an earlier day applied (the change's split again, or this code's own split on a row that
    still names its former code: the sync cannot tell which holders it means), or a change from or into a
    code whose own split the sync applied today (does the ratio, or "the same shares", count its shares
    before the split or after?).
    """
    assert row.formerly is not None
    former = former_code(instrument, row.formerly)
    if former is None:  # applied by an earlier row
        if not _repeats_todays_change(instrument, row, ratio, today) and row.split is not None:
            raise CodeChangeError(
                f"{instrument.symbol}: a split on a row whose code change from {row.formerly} is applied "
                "already: send a split of this code's own shares on a row without formerly"
            )
        return None
    if ratio is None and listed:
        raise CodeChangeError(
            f"{instrument.symbol}: a code change from {former.symbol} into a code the demo lists already "
            "needs its exchange ratio (shares of this code per share of the former code; Fraction(1) for "
            "the same shares)"
        )
    ratio = Fraction(1) if ratio is None else ratio
    if any(a.startswith("split ") for a in _actions_on(former, today)):
        # SECURITY: its holders' shares were split once today already; a second rescale on top of it
        # multiplies what they hold unless the ratio counts the new shares, which no row says (one for one
        # too: a share before the split or after?).
        raise CodeChangeError(
            f"{instrument.symbol}: {former.symbol} had a split applied today; a code change from it the "
            "same day is refused (the ratio's shares, before the split or after, cannot be told): a split "
            "that comes with a change into a new code is the change's row (formerly with split)"
        )
    if any(a.startswith("split ") for a in _actions_on(instrument, today)):
        # SECURITY: the same question on the target's side (red team, round seventy-six: Sony consolidated
        # ten into one, then 7Z2A merged into it at a ratio announced per old Sony share and applied per new
        # one: the gang's ¥8.45 million became ¥84.5 million; a split instead cost her 90 %).
        raise CodeChangeError(
            f"{instrument.symbol}: had a split applied today; a code change into it from {former.symbol} "
            "the same day is refused (the ratio counts its shares before the split or after?): apply one of "
            "them on a later day"
        )
    if ratio != 1:
        # SECURITY: paid at the lowest of the day's price, this code's long-run and yesterday's and the
        # former code's, each per new share, as a split's odd lots are (round seventy-three).
        candidates = (
            row.price,
            instrument.price,
            instrument.reference_price,
            per_new_share(former.price, ratio),
            None if former.reference_price is None else per_new_share(former.reference_price, ratio),
        )
        _apply_split(former, ratio, price=_lowest(candidates))
    return take_over_former_code(instrument, former, ratio=ratio)


def _lowest(prices: Iterable[Decimal | None]) -> Decimal:
    return min(p for p in prices if p is not None and p > 0)


def _apply_split(instrument: Instrument, ratio: Fraction, *, price: Decimal) -> None:
    """Every position in ``instrument`` times ``ratio`` new shares per old share; a fraction of a new share
    is paid out in cash at ``price`` (per new share: the caller's lowest of the day's, the long-run and
    yesterday's), as a consolidation's odd lots are. An order checked
    before it (held, or between validation and execution) executes nothing: the caller counts the split in
    ``Instrument.share_basis`` (:class:`SharesChanged`). Its price band alone would not do: a
    consolidation's sell fills at the tenfold price, its quantity now ten times the value (round
    seventy-one)."""
    positions = Position.objects.select_for_update().filter(instrument=instrument).order_by("pk")
    for position in positions:
        shares = position.quantity * ratio
        whole = shares.numerator // shares.denominator
        odd = shares - whole
        paid = to_jpy(price * odd.numerator / odd.denominator, instrument.currency)
        if paid > 0:
            Account.objects.filter(pk=position.account_id).update(cash=F("cash") + paid)
        if whole > 0:
            position.quantity = whole
            position.save(update_fields=["quantity"])
        else:
            position.delete()
