"""A code change in the demo's market data (``InstrumentData.formerly``): the company's holders keep what they
held, in the new code's shares at the change's exchange ratio; its long run and its ledger memory go to the
new code, and the former code trades no more.

``market_data.sync_instruments`` applies it whether the new code is new to the demo or already listed (a
when-issued line, a vendor's early row, a merger into a listed code: red team, round seventy-one found the
second path ignoring ``formerly``, and the former code tradable beside the new): :func:`former_code` names
the code to retire (or none: an earlier row retired it), the sync rescales its positions by the exchange
ratio (``market_data._apply_split``), and :func:`take_over_former_code` moves them, its codes and its long
run. Red team, round seventy-four: the positions moved one for one whatever the ratio (a reverse split under
a new ticker made the gang's ¥20.55 million ¥205.5 million).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

from authguard.orders.codes import MAX_FORMER_CODES

from .models import Instrument, Position
from .yen import CENTS


class CorporateActionError(ValueError):
    """A row's split, consolidation or code change the sync cannot apply unambiguously. Raised rather than
    guessed: the day's sync runs in one transaction and writes nothing, and whoever runs it fixes the row."""


class CodeChangeError(CorporateActionError):
    """A row's ``formerly`` (with its ratio) the sync cannot apply."""


def per_new_share(price: Decimal, ratio: Fraction) -> Decimal:
    """``price`` per old share as the price per new share, ``ratio`` new shares per old share (unrounded)."""
    return price * ratio.denominator / ratio.numerator


def _longer(since: date | None, than: date | None) -> bool:
    """Whether long-run data since ``since`` cover more days than data since ``than`` (``None``: long
    listed, the longest)."""
    if since is None:
        return than is not None
    return than is not None and since < than


def _merge_positions(former: Instrument, instrument: Instrument) -> None:
    """Every position in ``former`` becomes (or is added to) the account's position in ``instrument``,
    share for share: the caller rescaled them to ``instrument``'s shares first."""
    for position in Position.objects.select_for_update().filter(instrument=former).order_by("pk"):
        into = (
            Position.objects.select_for_update()
            .filter(account_id=position.account_id, instrument=instrument)
            .first()
        )
        if into is None:
            position.instrument = instrument
            position.save(update_fields=["instrument"])
        else:
            # One position per account and instrument: her shares under both codes are one holding.
            into.quantity += position.quantity
            into.save(update_fields=["quantity"])
            position.delete()


def former_code(instrument: Instrument, formerly: str) -> Instrument | None:
    """The listed instrument whose code ``formerly`` a row retires into the saved ``instrument``, locked for
    update; ``None`` when an earlier row applied that change already (the code is among the instrument's
    former codes, or its archived row names it).

    Raises :class:`CodeChangeError` for a code the demo does not list (and never retired into this one), the
    instrument's own code, or a code already retired into another instrument.
    """
    code = formerly.strip().upper()
    if code == instrument.symbol:
        raise CodeChangeError(f"{instrument.symbol}: a code cannot be its own former code")
    former = Instrument.objects.select_for_update().filter(symbol=code).first()
    # Applied by an earlier row: the code is among the instrument's former codes, or its archived row (a
    # reused code's old listing, "CODE~pk") names this instrument. A code listed again since then is a new
    # company's, never retired into this one (review, round seventy-two: a repeated row took it over).
    applied = code in instrument.former_symbols.split() or (
        Instrument.objects.filter(symbol__startswith=f"{code}~", succeeded_by=instrument).exists()
    )
    if applied:
        return None
    if former is None:
        # SECURITY: dropped, the former code's positions, long run and ledger memory would stay behind it.
        raise CodeChangeError(
            f"{instrument.symbol}: its former code {code} is not listed, so its positions and long run "
            "cannot be carried over"
        )
    if former.succeeded_by_id == instrument.pk:
        return None  # applied by an earlier row
    if former.succeeded_by_id is not None:
        raise CodeChangeError(f"{instrument.symbol}: the code {code} already changed to another code")
    return former


def take_over_former_code(instrument: Instrument, former: Instrument, *, ratio: Fraction) -> list[str]:
    """Retire ``former`` (from :func:`former_code`) into the saved ``instrument``: move its positions, which
    the caller has rescaled to ``ratio`` shares of ``instrument`` per former share; name it (and its own
    former codes) in ``instrument.former_symbols``; and carry its long run (daily value, price per share of
    ``instrument``, start) over when it covers more days than the instrument's own. Returns the
    instrument's fields it set, for the caller to save with its own."""
    fields = ["former_symbols"]
    # SECURITY: the new code reads the former codes' orders and campaign flags (round sixty-six).
    codes = [former.symbol, *former.former_symbols.split(), *instrument.former_symbols.split()]
    instrument.former_symbols = " ".join(
        [c for i, c in enumerate(codes) if c not in codes[:i] and c != instrument.symbol][:MAX_FORMER_CODES]
    )
    if _longer(former.history_since, instrument.history_since):
        # SECURITY: a young code's long run is its first days, which a gang's wash trades print (round
        # fifty-seven): the company's is the former code's, per share as the new code trades (round
        # seventy-four: carried per former share, a reverse split's price looked a tenth of the usual).
        instrument.baseline_daily_value = former.baseline_daily_value
        instrument.reference_price = (
            None
            if former.reference_price is None
            else per_new_share(former.reference_price, ratio).quantize(CENTS)
        )
        instrument.history_since = former.history_since
        fields += ["baseline_daily_value", "reference_price", "history_since"]
    _merge_positions(former, instrument)
    # SECURITY: its code trades no more (validate_order), and an order held under it executes nothing; one
    # checked in its shares counts a share basis they no longer have, where the ratio changed them.
    former.succeeded_by = instrument
    update = ["succeeded_by"]
    if ratio != 1:
        former.share_basis += 1
        update.append("share_basis")
    former.save(update_fields=update)
    return fields
