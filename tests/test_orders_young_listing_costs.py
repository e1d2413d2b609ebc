"""Red team round fifty-nine: the young instrument's fading weight (``facts._history_floor``) and its cost
to a real customer of a large, liquid new listing. Real demo endpoints and market-data path, simulated
clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from authguard.models import HeldOrder
from demo_site.brokerage import services
from demo_site.brokerage.instruments import InstrumentData
from demo_site.brokerage.models import Instrument

from . import test_battery_exposure as battery
from .test_battery_exposure import customer

start = battery.start
clock = battery.clock

#: A real, large new listing (fictional): ¥3,000 x 10 million shares = ¥30 billion a day, ¥30 billion a day
#: in its long run too (weight 0 on the liquidity scale), its 20-day median close ¥3,000.
IPO = InstrumentData(
    "9Z9A", "Hikari Semiconductor (fictional, new listing)", "TSE Prime", "JPY", Decimal(3000), 10_000_000,
    "JP", baseline_daily_value=Decimal(30_000_000_000), reference_price=Decimal(3000),
)  # fmt: skip
#: The same figures for a stock listed for years (no history start): the control.
OLD = replace(IPO, symbol="9Z9B", name="Hikari Semiconductor (fictional, long listed)")


def _trading_days_ago(days: int) -> Any:
    """The date ``days`` weekdays before today (both counted), as ``services.history_days`` counts."""
    today = timezone.localdate()
    since = today
    while services.history_days(since, today) < days:
        since -= timedelta(days=1)
    return since


@pytest.mark.django_db
@pytest.mark.parametrize("age", [40, 90])
def test_cost_her_sell_of_a_large_liquid_listing_after_a_real_fall_is_held_for_months(
    order_api: Any, clock: Any, authenticator: Any, age: int
) -> None:
    """The cost of the fade (round 58) for a real customer, not stated in docs/order-guard.md (which names
    only "buys beyond the month's thin budget"): a ¥30-billion-a-day new listing weighs
    ``0.5 x (120 - days) / 100`` on the liquidity scale until its 120th trading day, so its exposure weight
    is 0.8 on day 40 and 0.3 on day 90, and ``Exposure._reference_price`` checks her *sells* of it against
    its 20-day median close. She bought 1,000 shares at the listing; on day 40 the stock has fallen 45 %
    (¥1,650) in a real sell-off and she sells her whole position from her own usual browser: held
    (0.45 x 0.8 = 0.36 > 0.3, the finding alone), she must find her passkey while the price falls; on day 90
    the same sell is placed (0.45 x 0.3). The same position in a long-listed stock of the same
    liquidity (control) is sold unheld. Before round 58 (weight 0 from day 21) her sell was placed.

    Suggested: exempt sells (her own shares of a stock whose current and long-run daily value are both far
    above ``liquid_value``) from the fade's reference check, or fade the reference check only for buys;
    at least document that sells of a new listing's falls are held for months."""
    clock(0)
    services.sync_instruments(
        [
            replace(IPO, history_since=_trading_days_ago(age)),
            replace(OLD, history_since=_trading_days_ago(1000)),
        ]
    )
    info = services.guard_instrument(IPO.symbol)
    assert info is not None and info.history_days == age
    user = customer(
        "rt59a_ipo",
        cash=3_000_000,
        holdings={"7203": 3000, "9984": 100, "6758": 300, "8306": 500, IPO.symbol: 1000, OLD.symbol: 1000},
        authenticator=authenticator,
    )
    her = order_api()
    her.login_usual(user.username, battery.PASSWORD, days=400)
    # A real sell-off of both, 45 % under their 20-day median close; their volume stays high.
    Instrument.objects.filter(symbol__in=[IPO.symbol, OLD.symbol]).update(price=Decimal(1650))
    control = her.order("sell", OLD.symbol, 1000).json()
    assert control["status"] == "placed", control.get("confirmation", {}).get("reasons")
    answer = her.order("sell", IPO.symbol, 1000).json()
    if age == 40:
        assert answer["status"] == "held", answer
        assert answer["confirmation"]["reasons"] == ["exposure_reference_price"], answer
        assert HeldOrder.objects.filter(user=user, status="pending").count() == 1
    else:
        assert answer["status"] == "placed", answer
