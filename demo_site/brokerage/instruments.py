"""The demo's instruments: liquid large caps in Tokyo and New York, and a few fictional illiquid small caps.

Prices and average daily volumes (shares per day) are rounded, approximate 2025 levels, for the demo only:
they are not market data and are never updated. US prices are in dollars; the portal converts them to yen at
``services.USD_JPY``.

The small caps are fictional companies with made-up symbols (new-style TSE codes with a ``Z``, which the
exchange has not issued, and an invented NASDAQ ticker). They model the thinly traded stocks that hijacked
accounts are made to buy at inflated prices, so their volumes are tiny next to the large caps'.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

#: Since when the demo's levels stand for its instruments' long run (``InstrumentData.history_since``): the
#: listed stocks of the demo are long listed.
LONG_RUN_SINCE = date(2015, 1, 5)


@dataclass(frozen=True)
class InstrumentData:
    """One row of the demo's instrument list (or of a day's instrument data synced into it).

    ``baseline_daily_value``, optional: the instrument's long-run daily traded value in yen (a 250-day median
    of market data). ``reference_price``, optional: its long-run price in its own currency (a median close
    of the last 20 trading days). Only a row that carries one changes the stored long-run value
    (``services.sync_instruments``): the day's price and volume never do, or a sync on the day of a pump (or
    of a gang's crash) would make it the long run.

    ``history_since``, optional: the first trading day of the long-run data; a new instrument without one
    starts its history on the day it arrives (the order guard weighs it as illiquid for 20 trading days).
    ``formerly``, optional: the code this one traded under before (a code change, a move between markets, a
    merger into this code): it takes over that code's long-run data and the positions in it.
    ``exchange_ratio``, optional, only with ``formerly``: the code change's ratio, as shares of this code per
    share of the former code (``Fraction(845, 3900)``: a merger at ¥845 into ¥3,900; ``Fraction(1)``: the
    same shares): the former code's positions, and its long-run price where carried over, are rescaled by
    it before they join this code's; this code's own holders are not touched. ``split``, optional: a split or
    consolidation that takes effect with this row, as new shares per old share (``Fraction(10)`` ten for
    one, ``Fraction(1, 10)`` ten into one): the stored long-run price and the positions are rescaled. On a
    row with ``formerly`` it is the code change's ratio (a reverse split under a new ticker): it rescales the
    former code's positions only, as ``exchange_ratio`` does; a split of this code's own shares comes on a
    row without ``formerly``. A row carries either once, on the day it takes effect (the sync records it and
    a second run of the same day's rows applies it once); the rules a row must meet, and what the sync
    refuses, are in ``market_data.sync_instruments``.
    """

    symbol: str
    name: str
    market: str
    currency: str
    price: Decimal
    avg_daily_volume: int
    listing_country: str
    is_small_cap: bool = False
    baseline_daily_value: Decimal | None = None
    reference_price: Decimal | None = None
    history_since: date | None = None
    formerly: str | None = None
    split: Fraction | None = None
    exchange_ratio: Fraction | None = None


def _jp(symbol: str, name: str, price: str, adv: int, market: str = "TSE Prime") -> InstrumentData:
    return InstrumentData(symbol, name, market, "JPY", Decimal(price), adv, "JP")


def _us(symbol: str, name: str, price: str, adv: int, market: str) -> InstrumentData:
    return InstrumentData(symbol, name, market, "USD", Decimal(price), adv, "US")


_ROWS: tuple[InstrumentData, ...] = (
    # -- Tokyo Stock Exchange, Prime market (4-digit securities codes) ------------------------------------
    _jp("7203", "Toyota Motor", "2850", 25_000_000),
    _jp("6758", "Sony Group", "3900", 12_000_000),
    _jp("8306", "Mitsubishi UFJ Financial Group", "2100", 40_000_000),
    _jp("9984", "SoftBank Group", "16500", 14_000_000),
    _jp("6861", "Keyence", "56000", 600_000),
    _jp("8035", "Tokyo Electron", "27000", 3_500_000),
    _jp("7974", "Nintendo", "12500", 8_000_000),
    _jp("9983", "Fast Retailing", "50000", 900_000),
    _jp("6501", "Hitachi", "4300", 15_000_000),
    _jp("8316", "Sumitomo Mitsui Financial Group", "3900", 10_000_000),
    _jp("9432", "Nippon Telegraph and Telephone", "152.5", 150_000_000),
    _jp("6098", "Recruit Holdings", "9000", 5_000_000),
    _jp("4063", "Shin-Etsu Chemical", "4700", 6_000_000),
    _jp("8058", "Mitsubishi Corporation", "3200", 10_000_000),
    _jp("8001", "Itochu", "8300", 4_000_000),
    _jp("4502", "Takeda Pharmaceutical", "4300", 5_000_000),
    _jp("9433", "KDDI", "2500", 10_000_000),
    _jp("6367", "Daikin Industries", "18000", 1_000_000),
    _jp("7267", "Honda Motor", "1550", 20_000_000),
    _jp("6902", "Denso", "2000", 6_000_000),
    _jp("4568", "Daiichi Sankyo", "3500", 7_000_000),
    # -- United States (prices in US dollars) ------------------------------------------------------------
    _us("AAPL", "Apple", "230.00", 55_000_000, "NASDAQ"),
    _us("MSFT", "Microsoft", "510.00", 20_000_000, "NASDAQ"),
    _us("NVDA", "NVIDIA", "180.00", 180_000_000, "NASDAQ"),
    _us("AMZN", "Amazon.com", "225.00", 40_000_000, "NASDAQ"),
    _us("GOOGL", "Alphabet Class A", "250.00", 35_000_000, "NASDAQ"),
    _us("META", "Meta Platforms", "720.00", 12_000_000, "NASDAQ"),
    _us("TSLA", "Tesla", "420.00", 90_000_000, "NASDAQ"),
    _us("JPM", "JPMorgan Chase", "300.00", 9_000_000, "NYSE"),
    _us("V", "Visa Class A", "340.00", 6_000_000, "NYSE"),
    _us("JNJ", "Johnson & Johnson", "180.00", 7_000_000, "NYSE"),
    _us("BRK.B", "Berkshire Hathaway Class B", "490.00", 4_500_000, "NYSE"),
    # -- A fictional mid-liquidity stock: about ¥105 million traded a day, just above the old liquidity floor
    # of ¥100 million (battery case 53: liquidity is a scale, not a floor to trade just above) -------------
    InstrumentData(
        "5Z4A", "Sakuragawa Logistics (fictional)", "TSE Standard", "JPY", Decimal("1050"), 100_000, "JP"
    ),
    # -- Fictional illiquid small caps ---------------------------------------------------------------------
    InstrumentData(
        "4Z1A", "Kagura Biotech (fictional)", "TSE Growth", "JPY", Decimal("312"), 18_000, "JP", True
    ),
    InstrumentData(
        "7Z2A", "Minato Precision Parts (fictional)", "TSE Standard", "JPY", Decimal("845"), 6_500, "JP", True
    ),
    InstrumentData(
        "3Z3A",
        "Hoshizora Digital Holdings (fictional)",
        "TSE Growth",
        "JPY",
        Decimal("127"),
        42_000,
        "JP",
        True,
    ),
    InstrumentData(
        "ZVXQ",
        "Zephyr Vale Quantum Holdings (fictional)",
        "NASDAQ",
        "USD",
        Decimal("1.37"),
        85_000,
        "US",
        True,
    ),
)

INSTRUMENTS: tuple[InstrumentData, ...] = tuple(replace(row, history_since=LONG_RUN_SINCE) for row in _ROWS)
