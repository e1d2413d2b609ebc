"""Yen: the demo's one cash currency, and what an amount in an instrument's currency is worth in it.

Cash is in yen. US stocks are priced in dollars and converted at the fixed demo rate :data:`USD_JPY`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .models import Currency

#: Fixed demo exchange rate: yen per US dollar. The demo never fetches live rates.
USD_JPY = Decimal("150")
#: Yen per unit of each instrument currency.
JPY_PER_UNIT: dict[str, Decimal] = {Currency.JPY: Decimal(1), Currency.USD: USD_JPY}
CENTS = Decimal("0.01")


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
