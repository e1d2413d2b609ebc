"""Red team, round thirty (b): the order guard's *portfolio value* (the denominator of the illiquid limits)
at the pumped price of a thin stock the victim holds.

Round twenty took the gang's pumped stock out of the base of the *sell* limits (``OrderFacts.base_holdings``,
``rule_base.base_weight``). The buy side still divides by ``PortfolioSnapshot.total_value``, cash plus every
position at today's price from the portfolio hook: ``Exposure`` (``exposure_illiquid``: the month's buys of
thin stocks against 10 % of it, 5 % on a changed account; ``exposure_concentration``) and ``IlliquidBuy``'s
``floor_max_share``. A thin stock's price is whatever the gang's wash trades print, so every pumped yen of a
position the victim holds (or that the thief just made her buy, within every limit) widens the share of her
cash the thief may put into the gang's other thin stock.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from authguard.models import GuardedOrder, GuardStatus
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Instrument

from . import test_battery_exposure as battery
from .test_battery_exposure import PUMPED, home_pc, placed_buys, sell_large_caps_up_to, value

start = battery.start
clock = battery.clock

#: The gang's second stock, the one the victim's cash goes into: Sakuragawa Logistics, ¥105 million a day
#: (weight 0.86: illiquid, counted in full), deep enough that its own per-order and weekly volume limits
#: (5 % and, on a changed account, 5 % of a day's value: ¥5.25 million) are not what binds.
TARGET = "5Z4A"
#: Under the risky session's ``max_illiquid_amount`` (¥300,000) per order.
TARGET_CHUNK = 260  # 260 x ¥1,050 = ¥273,000


def _buy_in_chunks(thief: Any, symbol: str, chunk: int, *, most: int = 12) -> list[dict[str, Any]]:
    """Buy ``chunk`` shares at a time until one is held (cancelled, so nothing waits for the customer) or
    refused (the victim's cash is spent, or the price moved)."""
    answers = []
    for _ in range(most):
        answer = thief.order("buy", symbol, chunk).json()
        answers.append(answer)
        if answer["status"] == "held":
            thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
            break
        if answer["status"] == "invalid":
            break
        assert answer["status"] == "placed", answer
    return answers


@pytest.mark.django_db
@pytest.mark.battery(64)
@pytest.mark.parametrize("pump", [1, 100, 1000])
def test_a_pump_of_a_thin_stock_the_victim_holds_widens_the_illiquid_exposure_limit(
    order_api: Any, clock: Any, tanaka: Any, pump: int
) -> None:
    """A thief on a new device (risky session, changed account: 5 % of the portfolio a month into thin
    stocks) makes the victim buy 320 shares of 7Z2A (¥270,400, under every limit: battery 49's first step).
    The gang's wash trades then print 7Z2A at a hundred (a thousand) times its price: the 320 shares are
    "worth" ¥27 million (¥270 million) in the portfolio hook, and ``total_value`` with them. The thief then
    spends the victim's cash on the gang's second thin stock, 5Z4A, in chunks under the risky session's
    ¥300,000 per order. Without the pump (``pump`` 1, the control) one chunk is placed and the next held
    (``exposure_illiquid``: 5 %). Pumped x100: five chunks placed, 14.5 % of her portfolio (¥1.64
    million) in thin stocks with no hold; x1000: 26.6 % (¥3.0 million), every yen of her cash and of the
    fifth of her large caps the thief sold for it, stopped only by the cash running out.

    Secure: the limits on buys of thin stocks are shares of what the guard can trust of the portfolio (a
    thin position at no more than its long-run price, or weighted as the sell base is): whatever the gang
    prints, at most 5 % of the victim's portfolio goes into thin stocks this month without her passkey."""
    home_pc(tanaka)
    clock(0)
    before = value(tanaka).total_value
    thief = order_api()
    thief.login(TANAKA.username, TANAKA.password)  # a new device: risky session, account context changed
    first = thief.order("buy", PUMPED, 320).json()
    assert first["status"] == "placed", first
    # Cash for it: a fifth of her holdings in large caps (under the session's 25 % and the pivot's 30 %).
    sell_large_caps_up_to(thief, tanaka, Decimal("0.20"))
    Instrument.objects.filter(symbol=PUMPED).update(price=Decimal(845 * pump))  # the gang's prints
    answers = _buy_in_chunks(thief, TARGET, TARGET_CHUNK)
    statuses = [a["status"] for a in answers]
    thin = placed_buys(tanaka, PUMPED) + placed_buys(tanaka, TARGET)
    assert GuardedOrder.objects.filter(user=tanaka, symbol=TARGET, status=GuardStatus.PLACED, illiquid=True)
    # Secure: at most 5 % (the changed account's halved 10 %) of her portfolio into thin stocks, pumped or
    # not.
    assert thin <= Decimal("0.0505") * before, (
        f"pump x{pump}: {thin / before:.1%} of the portfolio (¥{thin:,.0f}) placed in thin stocks; "
        f"5Z4A orders {statuses}"
    )
