"""Red team round fifty-nine against the order guard: the long count (``exposure_illiquid_unvouched``) against
a thief who makes her confirm its hold innocently (closed: the ledger keeps the placing browser), and twenty
victims in rotating groups against the campaign rule (a known limit, strict xfail; docs/order-guard.md says
what closing it would take). Real demo endpoints, real passkey payloads, the battery's simulated clock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from authguard.models import CampaignFlag, GuardedOrder, HeldOrder
from demo_site.brokerage.models import Order, OrderStatus

from . import test_battery_exposure as battery
from .conftest import IP_OSAKA, UA_FIREFOX_LINUX
from .test_battery_exposure import PUMPED, PUMPED_DAILY, customer, placed_buys, sign_in, value

start = battery.start
clock = battery.clock

LARGE = {"7203": 1000, "9984": 100, "6758": 300, "8306": 500}
CASH = 3_000_000
PUMP = "5Z4A"  # ¥1,050, weighs 1 to the guard
HERS = "3Z3A"  # her own small cap habit: 540 x ¥127 = ¥68,580 a week (0.7 %)
HER_WEEKLY = 540


def _thin(user: Any, **where: Any) -> Decimal:
    rows = GuardedOrder.objects.filter(user=user, side="buy", status__in=["placed", "held"], **where)
    return rows.aggregate(s=Sum("illiquid_amount"))["s"] or Decimal(0)


def _last_long_count_confirmation(user: Any) -> Any:
    rows = HeldOrder.objects.filter(user=user, status="confirmed").exclude(confirmed_method="staff")
    rows = [h for h in rows if "exposure_illiquid_unvouched" in str(h.reasons)]
    return max((h.confirmed_at for h in rows), default=None)


@pytest.mark.django_db
def test_her_confirmation_of_her_own_small_buy_held_by_the_long_count_does_not_forgive_the_thiefs_buys(
    order_api: Any, clock: Any, authenticator: Any
) -> None:
    """Secure: thin buys from a browser she never vouched for total no more than ``max_illiquid_share``
    (10 %) of her portfolio until she confirms a hold that showed her *those* buys.

    The attack (round 58's, one step on): she signs in with her password from her usual browser (no passkey
    step-up: every session of hers is unvouched, as the benchmark's customers) and buys ¥68,580 of her small
    cap every week. The thief (her password, his own browser) keeps the *month's* window under 10 % (his
    buy + her next four weekly buys), so her next weekly buy is held by ``exposure_illiquid_unvouched``
    alone, the very finding round 58 made the only one that restarts the count. The hold she is shown names
    her ¥68,580 order of 3Z3A and "your buys of thinly traded stocks since you last confirmed them would
    reach 10.x %": she is a small-cap buyer, so it reads as hers; nothing names 5Z4A, his buys or his
    browser. She confirms with her passkey, and two days later he fills again.

    Fixed in round fifty-nine: each ledger row keeps its placing browser (``GuardedOrder.device_hash``) and
    unvouched thin buys are never rolled up, so her confirmation restarts the count for her own browser's
    buys only; his next fill is held."""
    user = customer("rt59a_abe", cash=CASH, holdings=LARGE, authenticator=authenticator)
    clock(0)
    total = value(user).total_value
    weekly = Decimal(HER_WEEKLY * 127)
    her = order_api()
    her.login_usual(user.username, battery.PASSWORD, days=400)
    thief = order_api(HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    thief.login(user.username, battery.PASSWORD)
    her_holds: list[dict[str, Any]] = []
    thief_holds = 0
    thief_next = 9
    thief_last = -100
    for day in range(1, 101):
        now = clock(day, hours=1)
        if day % 7 == 1:
            battery.sign_in(her, user.username)
            answer = her.order("buy", HERS, HER_WEEKLY).json()
            if answer["status"] == "held":
                her_holds.append(answer["confirmation"])
                confirmed = her.confirm_with_passkey(answer["confirmation"]["id"], authenticator)
                assert confirmed.status_code == 200, confirmed.content
                thief_next = max(day + 2, thief_last + 32)
            else:
                assert answer["status"] == "placed", answer
        if day == thief_next:
            battery.sign_in(thief, user.username)
            # His arithmetic from the code: at each of her weekly buys the month's window (30 days) holds his
            # fill and at most five of her buys: under 9.6 % the month's rule stays silent, and the long count
            # alone holds her buy (its own hold: the only confirmation that restarts it). His own fills are a
            # month apart; his fill itself stays under the long count since her last such confirmation.
            month = _thin(user, symbol=PUMP, created_at__gt=now - timedelta(days=31))
            since = _last_long_count_confirmation(user)
            long = _thin(user, created_at__gt=since) if since else _thin(user)
            room = min(Decimal("0.096") * total - 5 * weekly - month, Decimal("0.096") * total - long)
            thief_last = day
            quantity = int(room / 1050)
            if quantity > 0:
                answer = thief.order("buy", PUMP, quantity).json()
                if answer["status"] != "placed":
                    thief_holds += 1
                    thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
    bought = placed_buys(user, PUMP)
    assert her_holds, "her habit was never held"
    assert all(h["reasons"] == ["exposure_illiquid_unvouched"] for h in her_holds), her_holds
    # What she was shown: her own order; nothing names the gang's stock.
    assert all(PUMP not in str(h) for h in her_holds), her_holds
    assert thief_holds >= 1  # his next fill is held: her confirmation forgave only her own browser's buys
    # Secure: a browser she never vouched for moves no more than the share into thin stock.
    assert bought <= Decimal("0.101") * total, (
        f"{bought / total:.1%} of her portfolio in {PUMP}, unheld; she confirmed {len(her_holds)} of her own "
        f"¥{weekly:,} buys: {[h['summary'] for h in her_holds][:1]}"
    )


def _gang(order_api: Any, clock: Any, accounts: int, cash: int) -> list[tuple[Any, Any]]:
    thieves = []
    for n in range(accounts):
        clock(0, hours=n / 60)
        victim = customer(f"rt59a_v{n}", cash=cash, holdings={}, home_device=True)
        thief = order_api()
        thief.login(victim.username, battery.PASSWORD)
        thieves.append((victim, thief))
    return thieves


@pytest.mark.django_db
def test_held_twenty_victims_in_groups_of_nine_a_week_feed_one_pump_for_a_quarter(
    order_api: Any, clock: Any, settings: Any
) -> None:
    """Held since round sixty-five (``Campaign``'s month arm: ``month_hours``, ``month_share``,
    ``month_accounts``; tests/test_orders_campaign_month_walkarounds.py).

    Secure: many taken-over accounts buying one thin stock are a campaign (flag, admins alerted) before
    together they buy much more than a day's traded value; docs/order-guard.md: what a patient gang buys
    before the slow rule flags is "up to about half a day's value".

    The attack: the gang signs in to 20 victims (¥20 million cash each) from new browsers on day 0 and waits
    out ``changed_days`` (30): no buy of theirs counts in the risky volume windows. From day 31 every
    7 days 1 hour one group of nine accounts (rotating through all twenty) buys 7Z2A (¥5.49 million a day),
    each account two chunks of 320 (4.9 % of a day each: under ``IlliquidBuy.max_adv_share``; 9.8 % a week:
    under ``Exposure.max_adv_share``), within its own 10 % of its portfolio (the month and the long count).
    Nine accounts per 168 h are one fewer than ``slow_accounts``; nine within 6 h one fewer than
    ``accounts``; none risky. Each account stays under every per-account limit, and the campaign rule sees
    at most nine buyers in any of its windows.

    Root cause: ``Campaign.evaluate``'s slow arm requires ``slow_accounts`` distinct buyers within the
    longest volume window (``exposure.illiquid_buy_facts``: 168 h) and nothing looks further back.
    Fix: a look-back of ``changed_days``/a month for the slow arm by volume alone (e.g. accounts >= 3 that
    bought more than N days' traded value within 30 days, or a per-account-count-free ceiling: all accounts
    together above ~1 day's traded value within 30 days flags), so rotating groups add up."""
    settings.ADMINS = [("Security desk", "desk@demo-broker.example")]
    thieves = _gang(order_api, clock, 20, 20_000_000)
    statuses: list[str] = []
    for week in range(9):  # day 31 .. day 88
        day = 31 + week * 7
        members = [thieves[(week * 9 + i) % 20] for i in range(9)]
        for i, (victim, thief) in enumerate(members):
            clock(day + week / 24, hours=i / 6)  # each week one hour later: never two groups within 168 h
            sign_in(thief, victim.username)
            for _chunk in range(2):
                answer = thief.order("buy", PUMPED, 320).json()
                statuses.append(answer["status"])
                if answer["status"] != "placed":
                    thief.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
                    break
    bought = sum(
        (o.amount_jpy for o in Order.objects.filter(instrument__symbol=PUMPED, status=OrderStatus.PLACED)),
        Decimal(0),
    )
    flagged = CampaignFlag.objects.filter(symbol=PUMPED).exists()
    held = [s for s in statuses if s != "placed"]
    assert flagged or bought <= Decimal("1.0") * PUMPED_DAILY, (
        f"{bought / PUMPED_DAILY:.1f} days of {PUMPED}'s traded value bought by 20 taken-over accounts, "
        f"no flag; {len(held)} of {len(statuses)} orders held"
    )


# -- round sixty: the count per browser against a copy of her device cookie -------------------------------


@pytest.mark.django_db
@pytest.mark.xfail(
    strict=True,
    reason="a known limit (docs/order-guard.md, the long count per browser): with no risk signal scoring "
    "sign-ins (this fixture) a copy's sign-in never judges the cookie's generation, so a copy of her device "
    "cookie is her browser and her confirmation forgives his buys; with the engine on, see "
    "test_orders_long_count_copied_cookie_walkarounds.py",
)
def test_her_confirmation_forgives_the_buys_he_placed_with_her_copied_device_cookie(
    order_api: Any, clock: Any, authenticator: Any
) -> None:
    """Secure: thin buys from sessions no passkey vouched for total no more than ``max_illiquid_share`` (10 %)
    of her portfolio until she confirms a hold that showed her *those* buys.

    The attack: an infostealer took her browser's cookie jar on day 0 (the device cookie; same User-Agent).
    On day 9 the thief signs in with her password presenting her copied device cookie (the engine lets him
    in: a known device) and fills 9.6 % of her portfolio with the gang's stock. His ledger rows carry *her*
    browser's ``device_hash``. On day 40 her weekly small-cap buy is held by ``exposure_illiquid_unvouched``;
    she confirms her own ¥68,580 order with her passkey. ``vouching._sums_sql``'s ``forgiven`` matches
    ``c.device_hash = g.device_hash``: his buys are forgiven with hers. Even if the copy is now caught
    (device-cookie generations retire the id), he carries on from a brand-new browser the next day: the
    month's window holds only her 0.7 %, the long count nothing.

    Fix: the device cookie is a bearer token an infostealer copies; forgive per browser only rows whose
    device id the confirmation's own session proved (DBSC-bound key, or the cookie generation current at
    confirmation, not retired/superseded since), or simply: a confirmation restarts the count only for rows
    the hold's summary named (list the unvouched buys, symbol by symbol, in the hold she confirms), and a
    device id later retired as copied un-forgives its rows."""
    user = customer("rt60a_ito", cash=CASH, holdings=LARGE, authenticator=authenticator)
    clock(0)
    total = value(user).total_value
    her = order_api()
    her.login_usual(user.username, battery.PASSWORD, days=400)
    stolen = her.client.cookies["authguard_device"].value  # the infostealer's copy
    clock(9)
    thief = order_api(REMOTE_ADDR=IP_OSAKA)
    thief.client.cookies["authguard_device"] = stolen
    thief.login(user.username, battery.PASSWORD)
    first = int(Decimal("0.096") * total / 1050)
    answer = thief.order("buy", PUMP, first).json()
    assert answer["status"] == "placed", answer
    row = GuardedOrder.objects.get(user=user, symbol=PUMP)
    clock(40)
    battery.sign_in(her, user.username)
    mine = her.order("buy", HERS, HER_WEEKLY).json()
    assert mine["status"] == "held", mine
    assert "exposure_illiquid_unvouched" in mine["confirmation"]["reasons"]
    ok = her.confirm_with_passkey(mine["confirmation"]["id"], authenticator)
    assert ok.status_code == 200, ok.content
    hers = HeldOrder.objects.get(pk=mine["confirmation"]["id"]).guarded
    assert hers.device_hash == row.device_hash  # his rows carry her browser
    clock(41)
    thief.post("/api/logout")
    thief.login(user.username, battery.PASSWORD)
    second = thief.order("buy", PUMP, int(Decimal("0.09") * total / 1050)).json()
    if second["status"] != "placed":
        if second["status"] == "held":
            thief.post(f"/authguard/api/confirmations/{second['confirmation']['id']}/cancel")
        fresh = order_api(REMOTE_ADDR=IP_OSAKA)
        fresh.login(user.username, battery.PASSWORD)
        second = fresh.order("buy", PUMP, int(Decimal("0.09") * total / 1050)).json()
    bought = placed_buys(user, PUMP)
    assert bought <= Decimal("0.101") * total, (second.get("status"), f"{bought / total:.1%} in {PUMP}")


def _cookieless(client: Any) -> None:
    if "authguard_device" in client.client.cookies:
        del client.client.cookies["authguard_device"]


@pytest.mark.django_db
def test_held_a_thief_who_drops_the_device_cookie_cannot_order_password_only(
    order_api: Any, clock: Any
) -> None:
    """The thief's client drops the device cookie (to place rows with ``device_hash`` ''): the session's
    request without the cookie it was bound to is re-scored: signed out (no factor) or stepped up; nothing
    placed."""
    user = customer("rt60a_mase", cash=CASH, holdings=LARGE)
    clock(9)
    thief = order_api(REMOTE_ADDR=IP_OSAKA)
    _cookieless(thief)
    thief.login(user.username, battery.PASSWORD)
    _cookieless(thief)
    answer = thief.order("buy", PUMP, 100).json()
    assert answer["status"] in ("step_up_required", "login_required"), answer
    assert not GuardedOrder.objects.filter(user=user).exists()
    assert placed_buys(user, PUMP) == 0
