"""Red team, round seventy-three: the demo's instrument sync paid a consolidation's odd lots at the day's
price, which in a thin stock the gang's own trades print. Real ``services.sync_instruments``, real accounts.

Held since the sync pays odd lots at the lowest of the day's, the long-run and yesterday's price per new
share."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.models import Account

ROWS = {row.symbol: row for row in INSTRUMENTS}
PUMPED = "7Z2A"


@pytest.mark.django_db
def test_held_a_hundredfold_print_on_the_consolidation_day_pays_the_gangs_odd_lots_no_more(
    db: Any,
) -> None:
    """Secure: a consolidation moves no value: an odd lot (a fraction of a new share) is worth what the old
    shares were worth, so whoever held them is paid that (services._apply_split: "a fraction of a new share
    is paid out in cash at ``price``"). The price the sync reads for a thin stock is whatever the gang's
    trades printed that day (docs/order-guard.md, round twenty-three: "in a thin stock the gang *is* the
    market for the whole day"); the guard's reference price exists for exactly that.

    Attack: 7Z2A (¥845, ¥5.5 million a day) announces a ten-into-one consolidation (public weeks ahead).
    The gang's twenty accounts at the broker each hold 9 old shares (¥7,605; a thousand lots of 9 or a
    few hundred are all the same). On the effective day the gang wash-trades its own stock at a hundred times
    its price (¥845,000 a new share, ¥84,500 per old one) for the close the portal's market-data sync reads.
    Each account's 9 old shares (0.9 new share) are paid ¥760,500 in cash: ¥15.2 million paid to the gang out
    of the broker for ¥152,100 of stock, cash it can withdraw to its own registered banks.

    Root cause: demo_site/brokerage/services.py:_apply_split pays ``odd = (shares - whole) x price`` at
    ``row.price``, the day's print of a stock whose long-run price (``Instrument.reference_price``, rescaled
    just above it) the demo keeps for this very reason.

    Fix: pay odd lots at the long-run price per new share (the rescaled ``reference_price``), or at the
    lower of it and the day's price; or, as a real broker does, pay what the issuer's sale of the pooled
    fractions actually fetched, later, not at the sync."""
    services.sync_instruments()
    gang = [
        services.open_account(
            f"gang{i}", "gang-2025-pw", email=f"g{i}@example.jp", cash=0, holdings={PUMPED: 9}
        )
        for i in range(20)
    ]
    row = ROWS[PUMPED]
    printed = row.price * 10 * 100  # per new share, the gang's close of the day
    services.sync_instruments(
        [replace(row, price=printed, avg_daily_volume=row.avg_daily_volume // 10, split=Fraction(1, 10))]
    )
    paid = sum((Account.objects.get(user=user).cash for user in gang), Decimal(0))
    stock_before = row.price * 9 * len(gang)
    assert paid <= stock_before * Decimal("1.3"), (
        f"the gang's {len(gang)} accounts held ¥{stock_before:,.0f} of {PUMPED} in odd lots and were paid"
        f" ¥{paid:,.0f} in cash by the consolidation"
    )
