"""Red team, round sixty-nine: the former codes of an instrument (``InstrumentInfo.former_symbols``,
authguard/orders/codes.py) and the demo's code change (``services.sync_instruments``' ``formerly``).

Fixed in the demo: a former code trades no more (``Instrument.succeeded_by``: orders for it are refused with
the new code named, a held order of it is not executed), and a later row for that code is a new listing (the
old row is archived under another name), so a reused code takes no company's long run. Held in the library:
an account's own buys of the former code, rolled up or not, count for the new code."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from authguard.models import CampaignFlag
from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.models import Order, OrderStatus

from . import test_battery_exposure as battery
from .test_battery_exposure import PUMPED, PUMPED_DAILY, sign_in
from .test_orders_campaign_month_round66_walkarounds import _placed
from .test_orders_campaign_month_walkarounds import _gang

start = battery.start
clock = battery.clock
ROWS = {row.symbol: row for row in INSTRUMENTS}


def _buy(client: Any, symbol: str, quantity: int) -> str:
    """One buy; a held one is cancelled (the gang never confirms); a refused one says so."""
    answer = client.order("buy", symbol, quantity).json()
    if answer["status"] == "held":
        client.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
    return str(answer["status"])


def _group(clock: Any, thieves: list[tuple[Any, Any]], day: float, symbol: str, chunks: int = 2) -> list[str]:
    out = []
    for i, (victim, thief) in enumerate(thieves):
        clock(day, hours=i / 6)
        sign_in(thief, victim.username)
        for _ in range(chunks):
            status = _buy(thief, symbol, 320)
            out.append(status)
            if status != "placed":
                break
    return out


@pytest.mark.django_db
def test_held_the_former_code_trades_no_more(order_api: Any, clock: Any) -> None:
    """Held since this round (the attack as found; the second group's buys of the former code are refused).

    Secure: after a code change the company is one instrument for the month arm, whichever code an order
    names: a gang buys no more than ``month_share`` (1.0) of a day's value of it within 30 days.

    Attack: twenty victims signed in on day 0. Day 31: 7Z2A changes code to 7Z2B. Day 31: nine victims buy
    7Z2B (two chunks of 320 each, 0.89 of a day). Day 38: nine others buy 7Z2A, the former code, which the
    demo still lists and fills: its InstrumentInfo names no former code, and no code names it, so it reads
    only its own (empty) rows. 1.77 days of the company in a week, no hold, no flag.

    Root cause: demo_site/brokerage/services.py:_create_instrument leaves the former Instrument in place
    (tradable, its own data); authguard/orders/codes.py:instrument_codes only looks backwards (the new code
    reads the old, never the old the new). Fix: the demo retires the former code on a code change (refuse
    orders of an instrument some instrument names as former, or move/alias it to the new one); the guard
    could also read codes that name this one as former (a reverse lookup the portal's hook gives)."""
    thieves = _gang(order_api, clock, 20, "o69a")
    clock(31)
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B", formerly=PUMPED)])
    first = _group(clock, thieves[:9], 31.1, "7Z2B")
    assert first == ["placed"] * 18, first
    second = _group(clock, thieves[9:18], 38, PUMPED)
    bought = _placed(PUMPED, "7Z2B")
    assert bought <= PUMPED_DAILY, (
        f"{bought / PUMPED_DAILY:.2f} days of the company's value in 7 days; second group (old code)"
        f" {second};"
        f" flags {list(CampaignFlag.objects.values_list('symbol', 'active'))}"
    )


@pytest.mark.django_db
def test_held_a_flag_on_the_new_code_leaves_no_former_code_to_buy(order_api: Any, clock: Any) -> None:
    """Held since this round (the attack as found).

    Secure: a flagged company's buys are held under any code of it.

    Attack: the code changes 7Z2A -> 7Z2B on day 31; two groups buy 7Z2B (days 31 and 38) until the month
    arm flags 7Z2B. Then four members buy 7Z2A, the former code the demo still fills: the flag is on 7Z2B,
    and 7Z2A's codes are only itself.

    Root cause: authguard/orders/exposure.py:_ledger_sql/_campaign_sql read flags of ``instrument_codes``
    (the code and its former ones) and the demo keeps the former Instrument tradable
    (services._create_instrument). Fix: as above (retire the former code in the demo)."""
    thieves = _gang(order_api, clock, 20, "o69b")
    clock(31)
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B", formerly=PUMPED)])
    _group(clock, thieves[:9], 31.1, "7Z2B")
    _group(clock, thieves[9:18], 38.05, "7Z2B")
    assert CampaignFlag.objects.filter(symbol="7Z2B", active=True).exists()
    after = _group(clock, [thieves[i] for i in (18, 19, 0, 1)], 45.1, PUMPED, chunks=1)
    assert "placed" not in after, after


def _pivot(order_api: Any, clock: Any, name: str, symbol: str, reuse: bool) -> dict[str, Any]:
    from demo_site.brokerage.instruments import InstrumentData

    victim = battery.customer(name, cash=20_000_000, holdings={"6758": 2000}, home_device=True)
    clock(0)
    thief = order_api()
    thief.login_known(victim.username, battery.PASSWORD)
    if reuse:
        # Toyota's code changes (7203 -> 720A): its long-run data and positions go to 720A.
        services.sync_instruments([replace(ROWS["7203"], symbol="720A", formerly="7203")])
    clock(20)
    # Day 20: a new thin company lists on the code (reused, or a fresh one), wash-traded on its first days
    # to ¥12.7 billion a day (15 million shares at ¥845).
    services.sync_instruments(
        [
            InstrumentData(
                symbol, "Shinonome Newco (fictional)", "TSE Growth", "JPY", Decimal("845"), 15_000_000, "JP"
            )
        ]
    )
    clock(21)
    battery.sign_in(thief, victim.username)
    # Half of her cash into the new listing.
    return thief.order("buy", symbol, 11_000).json()


@pytest.mark.django_db
def test_held_a_fresh_new_listing_wash_traded_on_its_first_days_is_held(order_api: Any, clock: Any) -> None:
    """Control (round fifty-seven holds): a new code's first days weigh as illiquid."""
    answer = _pivot(order_api, clock, "o69c", "7Z9Z", reuse=False)
    assert answer["status"] == "held", answer


@pytest.mark.django_db
def test_held_a_new_listing_on_a_reused_code_takes_no_former_companys_long_run(
    order_api: Any, clock: Any
) -> None:
    """Held since this round (the attack as found).

    Secure: a new listing is weighed as illiquid for its first 20 trading days, whatever code it is given
    (its long run is its first days, which the gang's wash trades printed: round fifty-seven).

    Attack: Toyota changes code (7203 -> 720A; the demo moves its data to 720A and leaves the 7203 row). Day
    20: the exchange gives the retired code 7203 to a new thin listing, which the gang wash-trades to ¥12.7
    billion a day. The demo's sync finds a 7203 row and *updates* it: the new company keeps Toyota's
    history_since (2015), baseline (¥71 billion a day) and reference price. Day 21 the thief (her known
    browser, signed in with her password) puts ¥9.3 million, half her cash, into it: placed, no hold.

    Root cause: demo_site/brokerage/services.py:sync_instruments/_update_instrument key an instrument by its
    code only; a code some instrument names as former (retired) is reused by another company. Fix: a row for
    a code that an instrument names in ``former_symbols`` is a new listing (start its history, baseline and
    reference anew; archive the old row), and the guard's former-code reads then mix two companies (see
    the cost test)."""
    answer = _pivot(order_api, clock, "o69d", "7203", reuse=True)
    assert answer["status"] == "held", answer


@pytest.mark.django_db
def test_held_one_accounts_buys_of_the_former_code_count_against_its_volume_share(
    order_api: Any, clock: Any
) -> None:
    """Held: the account's own buys of the former code (ledger rows, and any rolled-up day rows) count for
    ``max_adv_share`` of the new code within the week.

    Attack: day 1 the thief buys ¥253,500 of 7Z2A (4.6 % of a day: under the halved 5 % limit); day 2 the
    code changes; day 3 the roll-up runs; day 4 he buys ¥42,250 of 7Z2B (together 5.4 %)."""
    from django.utils import timezone

    from authguard.orders.rollup import roll_up, rollable_before

    victim = battery.customer("o69e", cash=20_000_000, holdings={"6758": 2000}, home_device=True)
    clock(0)
    thief = order_api()
    thief.login_known(victim.username, battery.PASSWORD)
    clock(1)
    battery.sign_in(thief, victim.username)
    assert thief.order("buy", PUMPED, 300).json()["status"] == "placed"
    clock(2)
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B", formerly=PUMPED)])
    clock(3)
    roll_up(victim.pk, before=rollable_before(timezone.now()))
    clock(4)
    battery.sign_in(thief, victim.username)
    answer = thief.order("buy", "7Z2B", 50).json()
    assert answer["status"] == "held", answer
    assert "exposure_instrument_volume" in answer["confirmation"]["reasons"], answer


@pytest.mark.django_db
def test_cost_a_buy_held_across_a_code_change_is_not_executed_and_says_why(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Cost measured: a customer's own buy of 7Z2A, held, then confirmed with her passkey after the code
    change 7Z2A -> 7Z2B. As found, it executed on the former code's row (her shares on a code nothing
    prices any more, beside her 7Z2B position). Now nothing executes: her confirmation is answered with the
    reason (the code changed: place it again), her cash and positions are untouched, and the brokerage's
    order is not left placed. A held order waits minutes, a code changes once in years at an opening."""
    victim = battery.customer(
        "o69f", cash=20_000_000, holdings={"6758": 2000, PUMPED: 100}, authenticator=authenticator
    )
    clock(0)
    browser = order_api()
    browser.login_known(victim.username, battery.PASSWORD)
    answer = browser.order("buy", PUMPED, 2000).json()
    assert answer["status"] == "held", answer
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B", formerly=PUMPED)])
    cash = battery.value(victim).cash
    confirmed = browser.confirm_with_passkey(answer["confirmation"]["id"], authenticator)
    assert confirmed.status_code != 200 and "code changed" in confirmed.content.decode(), confirmed.content
    held = {h.symbol: h.quantity for h in battery.value(victim).holdings}
    assert held == {"6758": 2000, "7Z2B": 100} and battery.value(victim).cash == cash, held
    assert not Order.objects.filter(account__user=victim, status=OrderStatus.PLACED).exists()
    retried = browser.order("buy", PUMPED, 10)
    assert retried.status_code == 400 and "7Z2B" in retried.content.decode(), retried.content
