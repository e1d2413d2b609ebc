"""Red team, round thirty (b): order-guard attempts the product withstood (they pass).

Churning (sell, buy back, sell again) to widen the base of the sell limits; a passkey assertion drawn for
one held order posted for another; the assertion replayed once the first order is confirmed; the sells
split across the JST and UTC day boundaries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from authguard.models import HeldOrder
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Order, OrderStatus

from . import test_battery_exposure as battery
from .conftest import bind_passkey
from .test_battery_exposure import home_pc, value

start = battery.start
clock = battery.clock


@pytest.mark.django_db
def test_held_churning_sells_and_buys_back_does_not_widen_the_quarter(
    order_api: Any, clock: Any, tanaka: Any
) -> None:
    """A thief on a new device (a quarter of the holdings in 24 hours) sells 9984 (¥495,000), buys it back,
    and sells it again, over and over, hoping the buys and sells cancel out in the base and in the sells:
    every sell counts, every buy comes out of the base, and the quarter is reached as by plain selling."""
    home_pc(tanaka)
    clock(0)
    before = value(tanaka).holdings_value
    thief = order_api()
    thief.login(TANAKA.username, TANAKA.password)
    statuses = []
    for _ in range(8):
        sell = thief.order("sell", "9984", 30).json()
        statuses.append(sell["status"])
        if sell["status"] == "held":
            break
        statuses.append(thief.order("buy", "9984", 30).json()["status"])
    assert "held" in statuses, statuses
    sold = sum(
        (
            o.amount_jpy
            for o in Order.objects.filter(account__user=tanaka, side="sell", status=OrderStatus.PLACED)
        ),
        Decimal(0),
    )
    assert sold <= Decimal("0.2525") * before, (sold / before, statuses)


def _a_large_cap(user: Any) -> tuple[str, int]:
    """The largest large-cap position still held, all of it (over 1 % of the holdings)."""
    holding = max((h for h in value(user).holdings if not h.is_small_cap), key=lambda h: h.value_jpy)
    return holding.symbol, holding.quantity


@pytest.mark.django_db
def test_held_sells_either_side_of_the_jst_and_utc_midnights_add_up(
    order_api: Any, clock: Any, tanaka: Any
) -> None:
    """The thief sells up to just under the quarter at 23:50 JST (14:50 UTC), then again at 00:10 JST, and
    at 00:10 UTC (09:10 JST): the day boundary of neither clock starts a new window."""
    home_pc(tanaka)
    thief = order_api()
    clock(0, hours=14 + 20 / 60)  # 23:50 JST
    thief.login(TANAKA.username, TANAKA.password)
    battery.sell_large_caps_up_to(thief, tanaka, Decimal("0.24"))
    clock(0, hours=15 + 40 / 60)  # 00:10 JST the next day
    battery.sign_in(thief, TANAKA.username, TANAKA.password)  # sessions idle out after an hour
    after_jst = thief.order("sell", *_a_large_cap(tanaka)).json()
    clock(0, hours=23 + 40 / 60)  # 00:10 UTC the next day
    battery.sign_in(thief, TANAKA.username, TANAKA.password)
    after_utc = thief.order("sell", *_a_large_cap(tanaka)).json()
    assert after_jst["status"] == "held", after_jst
    assert after_utc["status"] == "held", after_utc


@pytest.mark.django_db
def test_held_an_assertion_for_one_held_order_confirms_no_other_and_is_not_replayed(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """The customer's own browser has two held sells. An assertion signed over the first's challenge is
    posted for the second (400 ``challenge``), then used for the first (confirmed), then replayed for the
    first (410) and the second (400): only the first executes, once."""
    bind_passkey(tanaka, authenticator)
    clock(0)
    browser = order_api()
    browser.login_usual(TANAKA.username, TANAKA.password, days=400)
    clock(0, hours=1)
    battery.sign_in(browser, TANAKA.username, TANAKA.password)
    helds = []
    for holding in sorted(value(tanaka).holdings, key=lambda h: -h.value_jpy):
        if holding.is_small_cap:
            continue
        answer = browser.order("sell", holding.symbol, holding.quantity).json()
        if answer["status"] == "held":
            helds.append(answer["confirmation"]["id"])
        if len(helds) == 2:
            break
    assert len(helds) == 2
    first, second = helds
    options = browser.post(f"/authguard/api/confirmations/{first}/passkey/options").json()
    assertion = authenticator.get(options)
    crossed = browser.post(f"/authguard/api/confirmations/{second}/passkey", assertion)
    assert crossed.status_code == 400 and crossed.json().get("code") == "challenge", crossed.content
    ok = browser.post(f"/authguard/api/confirmations/{first}/passkey", assertion)
    assert ok.status_code == 200, ok.content
    assert browser.post(f"/authguard/api/confirmations/{first}/passkey", assertion).status_code == 410
    assert browser.post(f"/authguard/api/confirmations/{second}/passkey", assertion).status_code == 400
    assert HeldOrder.objects.get(pk=second).status == HeldOrder.Status.PENDING
