"""Red team orders73 (issue 8, the order guard's core): a thief who keeps her session past the trust week.

Real demo endpoints (``POST /api/orders``, authguard's cancel API), the battery's simulated clock, the
battery's long-standing customer (a passkey bound long ago, a home PC of 400 days). Nothing of authguard is
mocked.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from authguard.models import HeldOrder, Notification
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from . import test_battery_exposure as battery
from .test_battery_exposure import value

start = battery.start
clock = battery.clock

#: Tanaka's 29 large caps (no small cap): about ¥10 million, with ¥1.2 million cash.
LARGE_CAPS = {symbol: qty for symbol, qty in TANAKA.holdings.items() if symbol != "3Z3A"}


def _allowed(sells: list[tuple[float, Decimal]], day: float, holdings: Decimal, changed: bool) -> Decimal:
    """What the thief, who has read authguard/orders/exposure_rules.py, works out he may still sell today:
    for each window (a day: 50 %, 25 % on a changed account; a week: 50 %, 25 %; a month: 80 %, 40 %) the
    limit times the base (today's holdings plus what he sold within it) less what he sold within it; 3 %
    spare for the prices and the windows' midnight rounding."""
    room = holdings
    for days, limit, changed_limit in ((1, "0.5", "0.25"), (7, "0.5", "0.25"), (30, "0.8", "0.4")):
        sold = sum((amount for when, amount in sells if day - when < days + 1), Decimal(0))
        share = Decimal(changed_limit if changed else limit) - Decimal("0.03")
        room = min(room, share * (holdings + sold) - sold)
    return max(room, Decimal(0))


def _sell_quietly(
    thief: Any, user: Any, budget: Decimal, held: list[dict[str, Any]] | None = None
) -> Decimal:
    """Sell up to ``budget`` yen, largest positions first, in whole shares. A held sell is cancelled at once
    (nothing waits for her) and recorded in ``held``; without ``held`` every order must be placed."""
    sold = Decimal(0)
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        price = holding.value_jpy / holding.quantity
        quantity = min(holding.quantity, int((budget - sold) / price))
        if quantity <= 0:
            continue
        answer = thief.order("sell", holding.symbol, quantity).json()
        if answer["status"] != "placed" and held is not None:
            held.append(answer)
            thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
            continue
        assert answer["status"] == "placed", answer
        sold += Decimal(answer["order"]["amount_jpy"])
    return sold


@pytest.mark.django_db
def test_held_a_thief_who_keeps_her_session_sells_nearly_all_her_holdings_in_seven_weeks_without_a_hold(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Secure: docs/order-guard.md ("Exposure over days"): a thief in a session no passkey vouched for must
    not sell nearly all her holdings without a hold only her passkey releases, however he spreads the sells
    over days; the month's ``slow_max_liquidation_share`` (80 %, 40 % on a changed account) is the limit.

    Attack: the thief (her password, his own browser, allowed: the order-guard fixture scores no sign-in)
    signs in on day 0 and then every eight days from the same browser. Having read the rules, he works out
    what each window still allows (a day, a week, a month; halved while the account is changed) and sells
    just under it, largest positions first, so that not one order is ever held and she gets not one
    "order waiting for your confirmation" notice. Past the trust week his browser is a known device of an
    unchanged account (50 % a week, 80 % a month); the month's window rolls off his first sells and every
    month he sells 80 % of what is left. Measured: of her ¥9.95 million of large caps (Tanaka's 29 holdings,
    ¥1.2 million cash beside them) ¥9.43 million, 94.7 %, is sold by day 48 (day 0 ¥2.19 million, day 8
    ¥3.65 million, day 16 ¥1.82 million, day 32-48 ¥1.76 million), with no hold at all. The cash then waits
    for the thin-stock budget (the companion test: the long count holds the pump at a tenth), but the sells
    alone are the forced, untimed liquidation the guard exists to stop (taxes, spreads, the moves she
    misses), and nothing told her.

    Root cause: authguard/orders/exposure_rules.py:Exposure._liquidation reads two rolling windows only (a
    week, a month): unlike the thin-stock budget (``exposure_illiquid_unvouched``,
    authguard/orders/vouching.py), nothing counts a session's sells beyond the month, so the 80 % renews
    every 30 days for a browser she never vouched for.

    Fix: give sells the long count thin buys have: for a sell from a session no passkey vouched for, sum
    every sell from unvouched sessions since her last confirmation of a hold of that count (at most
    ``unvouched_days`` back, per placing browser as ``thin_since_confirmation`` does) against the holdings
    at that point (today's plus what was sold since), and hold above ``slow_max_liquidation_share``.

    Held since: round seventy-three (``exposure_liquidation_unvouched``, authguard/orders/long_sells.py):
    his sells from day 24 on are held by the long count and he cancels each; no more than 80 % is sold and
    she is told of every hold."""
    victim = battery.customer(
        "o73liq", cash=int(TANAKA.cash), holdings=LARGE_CAPS, authenticator=authenticator
    )
    start_value = value(victim).holdings_value
    thief = order_api()
    total_sold = Decimal(0)
    log = []
    sells: list[tuple[float, Decimal]] = []
    held: list[dict[str, Any]] = []
    for day in (0, 8, 16, 24, 32, 40, 48):
        clock(day)
        battery.sign_in(thief, victim.username)
        budget = _allowed(sells, day, value(victim).holdings_value, changed=day < 8)
        sold = _sell_quietly(thief, victim, budget, held)
        sells.append((day, sold))
        total_sold += sold
        log.append(f"day {day}: sold ¥{sold:,.0f}")
    # Held: the long count holds his sells once they would pass 80 % of her holdings, and she is told.
    assert held, "; ".join(log)
    assert all("exposure_liquidation_unvouched" in str(answer) for answer in held), held[0]
    assert HeldOrder.objects.filter(user=victim).exists()
    assert Notification.objects.filter(user=victim, kind="order_held").exists()
    left = value(victim).holdings_value
    share = total_sold / start_value
    assert share <= Decimal("0.8"), (
        f"sold ¥{total_sold:,.0f} of ¥{start_value:,.0f} ({share:.1%}) with not one order held"
        f" and not one notice to her; ¥{left:,.0f} of holdings left. " + "; ".join(log)
    )


@pytest.mark.django_db
def test_held_after_the_long_liquidation_the_pumped_stock_gets_no_more_than_the_long_counts_tenth(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """The same thief, her ¥10 million sold to cash over seven weeks as above (his held sells cancelled
    at once since round seventy-three), then buys the gang's small cap 7Z2A every week for ten weeks, two
    chunks of 320 shares a week (¥270,400 each: under the per-order 5 % and the week's 10 % of its ¥5.5
    million a day), every held buy cancelled at once. The long count (``exposure_illiquid_unvouched``)
    holds him at a tenth of her portfolio, however the month rolls: the money the liquidation frees does
    not reach the pump beyond it."""
    victim = battery.customer(
        "o73piv", cash=int(TANAKA.cash), holdings=LARGE_CAPS, authenticator=authenticator
    )
    thief = order_api()
    sells: list[tuple[float, Decimal]] = []
    for day in (0, 8, 16, 24, 32, 40, 48):
        clock(day)
        battery.sign_in(thief, victim.username)
        sold = _sell_quietly(
            thief, victim, _allowed(sells, day, value(victim).holdings_value, changed=day < 8), []
        )
        sells.append((day, sold))
    total = value(victim).total_value
    bought = Decimal(0)
    for week in range(10):
        clock(56 + 7 * week)
        battery.sign_in(thief, victim.username)
        for _chunk in range(2):
            answer = thief.order("buy", battery.PUMPED, battery.CHUNK).json()
            if answer["status"] == "placed":
                bought += Decimal(answer["order"]["amount_jpy"])
                continue
            thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
    assert bought <= total * Decimal("0.101"), f"¥{bought:,.0f} of ¥{total:,.0f} into {battery.PUMPED}"


@pytest.mark.django_db
def test_cost_a_password_only_customer_who_sells_most_of_her_holdings_over_months_confirms_once(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """The cost of the sells' long count: Tanaka, signing in with her password from her usual browser of 400
    days (never her passkey), sells 30 % of her large caps every five weeks (never near the week's 50 % or
    the month's 80 %). Her sell that takes her sells since her last confirmation past 80 % of her holdings
    at that point is held (``exposure_liquidation_unvouched``, once, in the fifth round: 1 - 0.7^5 = 83 %);
    she confirms it with her passkey, and the count starts again: her sixth round is placed."""
    user = battery.customer(
        "o73cost", cash=int(TANAKA.cash), holdings=LARGE_CAPS, authenticator=authenticator
    )
    her = order_api()
    her.login_usual(user.username, battery.PASSWORD, days=400)
    held_in: list[int] = []
    for round_ in range(6):
        clock(round_ * 35, hours=1)
        battery.sign_in(her, user.username)
        budget = value(user).holdings_value * Decimal("0.3")
        sold = Decimal(0)
        for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
            quantity = min(holding.quantity, int((budget - sold) / (holding.value_jpy / holding.quantity)))
            if quantity <= 0:
                continue
            answer = her.order("sell", holding.symbol, quantity).json()
            if answer["status"] != "placed":
                held_in.append(round_)
                assert "exposure_liquidation_unvouched" in str(answer), answer
                confirmed = her.confirm_with_passkey(answer["confirmation"]["id"], authenticator)
                assert confirmed.status_code == 200, confirmed.content
            sold += holding.value_jpy / holding.quantity * quantity
    assert held_in == [4]
    assert HeldOrder.objects.filter(user=user, status="confirmed").count() == 1
    assert value(user).holdings_value < Decimal("0.15") * Decimal(9_950_000)


@pytest.mark.django_db
def test_held_her_confirmation_of_her_own_held_sell_does_not_forgive_his_sells(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """The count per browser (as the thin buys', round fifty-nine): the thief fills 77 % of her holdings by
    day 16 as above; on day 40 her own sell of 30 % of what is left, from her usual browser and her
    password alone, is held by the long count and she confirms it with her passkey. Her confirmation
    forgives the sells of her browser only: his next sell, the next day, is held again."""
    victim = battery.customer(
        "o73her", cash=int(TANAKA.cash), holdings=LARGE_CAPS, authenticator=authenticator
    )
    her = order_api()
    her.login_usual(victim.username, battery.PASSWORD, days=400)
    thief = order_api()
    sells: list[tuple[float, Decimal]] = []
    for day in (0, 8, 16):
        clock(day)
        battery.sign_in(thief, victim.username)
        budget = _allowed(sells, day, value(victim).holdings_value, changed=day < 8)
        sells.append((day, _sell_quietly(thief, victim, budget)))
    clock(40)
    battery.sign_in(her, victim.username)
    budget, sold, answer = value(victim).holdings_value * Decimal("0.3"), Decimal(0), {}
    for holding in sorted(value(victim).holdings, key=lambda h: -h.value_jpy):
        price = holding.value_jpy / holding.quantity
        quantity = min(holding.quantity, int((budget - sold) / price))
        if quantity > 0:
            answer = her.order("sell", holding.symbol, quantity).json()
            if answer["status"] != "placed":
                break
            sold += price * quantity
    assert answer["status"] == "held" and "exposure_liquidation_unvouched" in str(answer), answer
    assert her.confirm_with_passkey(answer["confirmation"]["id"], authenticator).status_code == 200
    clock(41)
    battery.sign_in(thief, victim.username)
    smallest = min(value(victim).holdings, key=lambda h: h.value_jpy)
    answer = thief.order("sell", smallest.symbol, smallest.quantity).json()
    assert answer["status"] == "held" and "exposure_liquidation_unvouched" in str(answer), answer
