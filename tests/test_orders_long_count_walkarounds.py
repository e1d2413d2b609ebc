"""The order guard's long count of thin buys (``exposure_illiquid_unvouched``) and the fading weight of a
young instrument (``InstrumentInfo.history_days``) against a thief who read them (red team, round
fifty-eight), through the demo portal's real order entry and market-data path with the battery's simulated
clock. Each test's docstring starts "Secure:" with what holds; ``test_held_...`` is an attack the guard
withstood from the start."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Max, Q, Sum
from django.urls import reverse

from authguard.models import GuardedOrder, HeldOrder
from authguard.orders.held import staff_release
from demo_site.brokerage import services
from demo_site.brokerage.models import Instrument

from . import test_battery_exposure as battery
from .conftest import UA_FIREFOX_LINUX
from .test_battery_exposure import customer, placed_buys, value
from .test_orders_instrument_history_walkarounds import NEW_CODE

start = battery.start
clock = battery.clock

LARGE = {"7203": 1000, "9984": 100, "6758": 300, "8306": 500}
CASH = 3_000_000
PUMP = "5Z4A"  # ¥1,050, ¥105 million a day: weighs 1
#: Her own habit: a small cap, 3Z3A (¥127, ¥5.3 million a day), ¥68,580 a week (0.7 % of her portfolio).
HERS = "3Z3A"
HER_WEEKLY = 540


def _thin(user: Any, **where: Any) -> Decimal:
    rows = GuardedOrder.objects.filter(user=user, side="buy", status__in=["placed", "held"], **where)
    return rows.aggregate(s=Sum("illiquid_amount"))["s"] or Decimal(0)


def _last_confirmation(user: Any) -> Any:
    return HeldOrder.objects.filter(user=user, status="confirmed").aggregate(m=Max("confirmed_at"))["m"]


def _thief_room(user: Any, now: Any, total: Decimal, share: Decimal) -> Decimal:
    """The thief's arithmetic, from the code: under the month's share (look back 31 days) and under the
    unvouched count (since her last confirmation), both read from the order history he sees."""
    month = _thin(user, created_at__gt=now - timedelta(days=31))
    since = _last_confirmation(user)
    unvouched = _thin(user, created_at__gt=since) if since else _thin(user)
    return share * total - max(month, unvouched)


def _passkey_session(client: Any, authenticator: Any) -> None:
    options = client.post(reverse("authguard:api-step-up-passkey-options"))
    assert options.status_code == 200, options.content
    verified = client.post(reverse("authguard:api-step-up-passkey"), authenticator.get(options.json()))
    assert verified.status_code == 200, verified.content


def _fill_then_a_tiny_buy(order_api: Any, clock: Any, user: Any, total: Decimal) -> tuple[Any, int, Any]:
    """His browser: 9.6 % of her portfolio into the pump on day 9, a 50-share buy on day 40 (its answer)."""
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    clock(9)
    battery.sign_in(thief, user.username)
    first = int(Decimal("0.096") * total / 1050)
    assert thief.order("buy", PUMP, first).json()["status"] == "placed"
    clock(40)
    battery.sign_in(thief, user.username)
    return thief, first, thief.order("buy", PUMP, 50).json()


@pytest.mark.django_db
def test_her_confirmations_of_her_own_holds_do_not_forgive_the_thiefs_unvouched_buys(
    order_api: Any, clock: Any, authenticator: Any
) -> None:
    """Secure: thin buys from a browser she never vouched for total no more than ``max_illiquid_share``
    (10 %) of her portfolio until she confirms an order that showed her *those* buys.

    The attack: she is a small-cap investor who buys ¥68,580 of a small cap every week from her passkey
    session (3 % a month; judged by the month alone, never held). The thief (her password, his own browser)
    reads ``vouching._sums_sql``: the long count starts at *any* confirmed held order of hers. So once a
    month he fills the month's thin budget with the gang's stock to just under 10 %: her next weekly buy
    crosses the month's share and is held (``exposure_illiquid``), she confirms her own ¥68,580 order with
    her passkey, and that confirmation forgives every thin buy he placed before it. He repeats monthly and
    never sees a hold himself: 22.9 % of her portfolio in the gang's stock after three fills (she confirmed
    eight of her own weekly buys; filling to 8.5 % instead, two confirmations and 13.8 %).

    Fixed in round fifty-eight: only her confirmation of a hold whose findings included
    ``exposure_illiquid_unvouched`` (the hold that showed her that count) restarts it. Not done: recording
    on each ``GuardedOrder`` whether its session was vouched (her own passkey buys count in the long count
    her unvouched sessions read)."""
    user = customer("rt58a_endo", cash=2 * CASH, holdings=LARGE, authenticator=authenticator)
    clock(0)
    total = value(user).total_value
    her = order_api()
    her.login_usual(user.username, battery.PASSWORD, days=400)
    thief = order_api(HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    thief.login(user.username, battery.PASSWORD)
    her_holds = thief_holds = 0
    for day in range(1, 100):
        now = clock(day, hours=1)
        if day % 7 == 1:
            battery.sign_in(her, user.username)
            _passkey_session(her, authenticator)
            answer = her.order("buy", HERS, HER_WEEKLY).json()
            if answer["status"] == "held":
                her_holds += 1
                confirmed = her.confirm_with_passkey(answer["confirmation"]["id"], authenticator)
                assert confirmed.status_code == 200, confirmed.content
            else:
                assert answer["status"] == "placed", answer
        if day in (9, 40, 71):
            battery.sign_in(thief, user.username)
            room = _thief_room(user, now, total, Decimal("0.096"))
            quantity = int(room / 1050)
            if quantity > 0:
                answer = thief.order("buy", PUMP, quantity).json()
                if answer["status"] != "placed":
                    thief_holds += 1
                    thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
    bought = placed_buys(user, PUMP)
    assert her_holds >= 1  # the thief's fill made her own habit hold, and she confirmed
    assert thief_holds >= 1  # his next fill is held: her confirmation forgave nothing
    # Secure: a browser she never vouched for moves no more than the share into thin stock.
    assert bought <= Decimal("0.101") * total, f"{bought / total:.1%} of her portfolio in {PUMP} (unheld)"


@pytest.mark.django_db
def test_a_desk_release_of_a_tiny_held_buy_does_not_restart_the_unvouched_count(
    order_api: Any, clock: Any
) -> None:
    """Secure: only her own factor restarts the unvouched count (docs: "only her factor, on an order the guard
    showed her, starts that count again").

    The attack: the thief fills 9.6 % with the gang's stock from his browser; his next buy, of 50 shares
    (¥52,500), is held (``exposure_illiquid_unvouched``). He phones the desk as her ("please release my small
    order, I can't get my passkey to work"); a ¥52,500 release is an easy call for the desk, which sees no
    stake. ``staff_release`` records the held order as CONFIRMED (method ``staff``) and ``_sums_sql``'s
    ``MAX(confirmed_at)`` takes any confirmed held order: his 9.6 % are forgiven, and the next day he
    places another 9 % unheld (the month's window holds only the released order).

    Fixed in round fifty-eight: ``_sums_sql``'s ``last`` skips the desk's releases (``confirmed_method``
    ``staff``): a release confirms the order, not the account's unvouched buys."""
    user = customer("rt58a_kato", cash=CASH, holdings=LARGE)
    clock(0)
    total = value(user).total_value
    thief, first, tiny = _fill_then_a_tiny_buy(order_api, clock, user, total)
    assert tiny["status"] == "held" and "exposure_illiquid_unvouched" in tiny["confirmation"]["reasons"]
    desk = get_user_model().objects.create_user("rt58a_desk", password="x" * 20, is_staff=True)
    staff_release(HeldOrder.objects.get(pk=tiny["confirmation"]["id"]), by=desk, reason="customer phoned")
    clock(41)
    battery.sign_in(thief, user.username)
    # Within the month's share (the released order counts there); the long count restarted at the release.
    second = thief.order("buy", PUMP, int(Decimal("0.09") * total / 1050)).json()
    bought = placed_buys(user, PUMP)
    assert second["status"] == "held" and "exposure_illiquid_unvouched" in second["confirmation"]["reasons"]
    # What he placed: his first fill and the tiny order the desk chose to release, nothing more.
    assert bought <= (first + 50) * 1050, (second, f"{bought / total:.1%} in {PUMP}")


@pytest.mark.django_db
def test_held_a_hold_he_lets_expire_or_cancels_does_not_restart_the_count(order_api: Any, clock: Any) -> None:
    """The thief's held buy expires (or he cancels it): only CONFIRMED restarts the count; the next month's
    buy is held again by the unvouched count."""
    user = customer("rt58a_mori", cash=CASH, holdings=LARGE)
    clock(0)
    total = value(user).total_value
    thief, first, tiny = _fill_then_a_tiny_buy(order_api, clock, user, total)
    assert tiny["status"] == "held"
    clock(43)  # expired
    battery.sign_in(thief, user.username)
    again = thief.order("buy", PUMP, 100).json()
    assert again["status"] == "held" and "exposure_illiquid_unvouched" in again["confirmation"]["reasons"]
    thief.post(f"/authguard/api/confirmations/{again['confirmation']['id']}/cancel")
    clock(75)
    battery.sign_in(thief, user.username)
    assert thief.order("buy", PUMP, 100).json()["status"] == "held"
    assert placed_buys(user, PUMP) <= Decimal("0.101") * total
    assert not HeldOrder.objects.filter(user=user, status="confirmed").exists()
    assert not GuardedOrder.objects.filter(
        ~Q(status__in=["placed", "held", "cancelled", "expired"]), user=user
    )


# -- the instrument-history rule --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_listing_wash_traded_every_day_of_its_first_month_still_weighs_on_day_twenty_one(
    order_api: Any, clock: Any
) -> None:
    """Secure: a new listing whose only "long run" is the gang's wash trades is not liquid to the guard; no
    more than the month's thin budget (10 %) of her portfolio goes into it without her passkey.

    The attack: the gang lists 5Z5A (or moves its stock to a new code) and wash-trades it at ¥2,100 x 6
    million shares (¥12.6 billion) on *every* trading day of its first four weeks, not just the first (the
    round-57 test stops after a day, and the demo's young-instrument rule only lets a day's row lower the
    long run). ``history_days`` reaches 20 on the 20th weekday; the demo freezes the baseline at the lowest
    wash day, ¥12.6 billion, over ``DEFAULT_LIQUID_VALUE``: 5Z5A weighs 0, every thin-stock rule and the
    unvouched count return early, and the thief puts all of her cash into it in one order.

    Fix: history only bounds how long a gang must wash-trade (20 days: about ¥25 million of fees at 0.01 %
    of ¥252 billion). Let a young instrument's weight fade with its history rather than drop at a cliff
    (e.g. weight at least 1 - history_days / 250, as the baseline is a 250-day median), and/or cap a young
    listing's baseline by its free-float value (turnover ratio); have the demo keep a median over its
    series instead of a running minimum."""
    user = customer("rt58a_ueda", cash=CASH, holdings={"7203": 1000, "6758": 300})
    clock(0)
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    total = value(user).total_value
    day = 1
    listed = clock(day)
    services.sync_instruments([NEW_CODE])
    while True:
        day += 1
        clock(day)
        services.sync_instruments([NEW_CODE])  # the gang's wash trades, every day
        info = services.guard_instrument("5Z5A")
        assert info is not None
        if info.history_days is not None and info.history_days >= 20:
            break
    assert day - 1 < 30, (listed, day)
    assert Instrument.objects.get(symbol="5Z5A").baseline_daily_value == Decimal(12_600_000_000)
    battery.sign_in(thief, user.username)
    answer = thief.order("buy", "5Z5A", 1400).json()  # ¥2.94 million: all her cash
    bought = placed_buys(user, "5Z5A")
    assert bought <= Decimal("0.101") * total, (answer["status"], f"{bought / total:.1%} of her portfolio")


@pytest.mark.django_db
def test_held_a_wash_traded_listing_is_thin_on_its_nineteenth_trading_day(order_api: Any, clock: Any) -> None:
    """The same gang, one trading day earlier: history_days 19 < 20, the buy of all her cash is held."""
    user = customer("rt58a_oda", cash=CASH, holdings={"7203": 1000, "6758": 300})
    clock(0)
    thief = order_api()
    thief.login(user.username, battery.PASSWORD)
    day = 1
    clock(day)
    services.sync_instruments([NEW_CODE])
    while True:
        day += 1
        clock(day)
        services.sync_instruments([replace(NEW_CODE)])
        info = services.guard_instrument("5Z5A")
        assert info is not None and info.history_days is not None
        if info.history_days == 19:
            break
    battery.sign_in(thief, user.username)
    assert thief.order("buy", "5Z5A", 1400).json()["status"] == "held"
    assert placed_buys(user, "5Z5A") == 0
