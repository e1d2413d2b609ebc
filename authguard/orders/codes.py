"""The codes the order guard knows an instrument by: its code today and the codes it traded under before.

An exchange changes a listed company's code now and then (a merger, a move between markets, the four-character
codes of Japan's 2024 scheme). The ledger keeps each order under the code it was placed with, so the rules
that sum an instrument's orders over weeks (the account's own buys of it, the campaign's accounts and
volume, its remembered thinness, its campaign flag) read the former codes the portal names
(``InstrumentInfo.former_symbols``) as the same instrument. SECURITY: a code change is no new instrument to
a gang that spreads its buys over a month (red team, round sixty-six).
"""

from __future__ import annotations

from collections.abc import Sequence

#: How many former codes of an instrument the guard reads (a code changes once in years).
MAX_FORMER_CODES = 3


def instrument_codes(symbol: str, former: Sequence[str] | str = ()) -> list[str]:
    """The codes the ledger knows the instrument by: ``symbol`` and at most :data:`MAX_FORMER_CODES` of its
    former codes (one code given as a string is one code), each once."""
    listed = (former,) if isinstance(former, str) else tuple(former)[:MAX_FORMER_CODES]
    return list(dict.fromkeys([symbol, *[str(code) for code in listed if code]]))


def codes_in(codes: int) -> str:
    """``IN (%s, ...)`` for ``codes`` codes (:func:`instrument_codes`): the SQL's placeholders."""
    return f"IN ({', '.join(['%s'] * codes)})"
