"""A code change in the demo's market data (``InstrumentData.formerly``): the company keeps its shares, its
long run and its ledger memory under the new code, and the former code trades no more.

``market_data.sync_instruments`` applies it through :func:`take_over_former_code` whether the new code is new
to the demo or already listed (a when-issued line, a vendor's early row, a merger into a listed code: red
team, round seventy-one found the second path ignoring ``formerly``, and the former code tradable beside the
new).
"""

from __future__ import annotations

from datetime import date

from authguard.orders.codes import MAX_FORMER_CODES

from .models import Instrument, Position


class CodeChangeError(ValueError):
    """A row's ``formerly`` the sync cannot apply. Raised rather than ignored: the day's sync runs in one
    transaction and writes nothing, and whoever runs it fixes the row."""


def _longer(since: date | None, than: date | None) -> bool:
    """Whether long-run data since ``since`` cover more days than data since ``than`` (``None``: long
    listed, the longest)."""
    if since is None:
        return than is not None
    return than is not None and since < than


def _merge_positions(former: Instrument, instrument: Instrument) -> None:
    """Every position in ``former`` becomes (or is added to) the account's position in ``instrument``."""
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


def take_over_former_code(instrument: Instrument, formerly: str) -> list[str]:
    """Retire the code ``formerly`` into the saved ``instrument``: move its positions, name it (and its own
    former codes) in ``instrument.former_symbols``, and carry its long run (daily value, price, start) over
    when it covers more days than the instrument's own. Returns the instrument's fields it set, for the
    caller to save with its own.

    A row that repeats a change already applied changes nothing. Raises :class:`CodeChangeError` for a code
    the demo does not list (and never retired into this one), the instrument's own code, or a code already
    retired into another instrument.
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
        return []
    if former is None:
        # SECURITY: dropped, the former code's positions, long run and ledger memory would stay behind it.
        raise CodeChangeError(
            f"{instrument.symbol}: its former code {code} is not listed, so its positions and long run "
            "cannot be carried over"
        )
    if former.succeeded_by_id == instrument.pk:
        return []  # applied by an earlier row
    if former.succeeded_by_id is not None:
        raise CodeChangeError(f"{instrument.symbol}: the code {code} already changed to another code")
    fields = ["former_symbols"]
    # SECURITY: the new code reads the former codes' orders and campaign flags (round sixty-six).
    codes = [former.symbol, *former.former_symbols.split(), *instrument.former_symbols.split()]
    instrument.former_symbols = " ".join(
        [c for i, c in enumerate(codes) if c not in codes[:i] and c != instrument.symbol][:MAX_FORMER_CODES]
    )
    if _longer(former.history_since, instrument.history_since):
        # SECURITY: a young code's long run is its first days, which a gang's wash trades print (round
        # fifty-seven): the company's is the former code's.
        instrument.baseline_daily_value = former.baseline_daily_value
        instrument.reference_price = former.reference_price
        instrument.history_since = former.history_since
        fields += ["baseline_daily_value", "reference_price", "history_since"]
    _merge_positions(former, instrument)
    # SECURITY: its code trades no more (validate_order), and an order held under it executes nothing.
    former.succeeded_by = instrument
    former.save(update_fields=["succeeded_by"])
    return fields
