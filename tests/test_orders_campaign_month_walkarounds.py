"""The campaign rule's month by volume (``Campaign`` options ``month_hours``, ``month_share``,
``month_accounts``) against the gang of round fifty-nine that takes turns, and against the walk a code reader
tries next (many accounts, one small buy each); an admin's clearing starts the month again; and what it
costs a popular small cap's ordinary buyers. Real demo endpoints, the battery's simulated clock."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.checks import run_checks

from authguard.checks import Codes
from authguard.models import CampaignFlag, GuardedOrder, Notification
from authguard.orders import rules as r
from demo_site.brokerage.models import Order, OrderStatus

from . import test_battery_exposure as battery
from .console_data import staff_client, staff_user
from .test_battery_exposure import PUMPED, PUMPED_DAILY, customer, sign_in

start = battery.start
clock = battery.clock


def _gang(order_api: Any, clock: Any, accounts: int, prefix: str) -> list[tuple[Any, Any]]:
    """Victims the gang signs in to on day 0 from its own browsers (¥20 million cash each)."""
    thieves = []
    for n in range(accounts):
        clock(0, hours=n / 60)
        victim = customer(f"{prefix}{n}", cash=20_000_000, holdings={}, home_device=True)
        thief = order_api()
        thief.login(victim.username, battery.PASSWORD)
        thieves.append((victim, thief))
    return thieves


def _buy(client: Any, symbol: str, quantity: int) -> str:
    """One buy; a held one is cancelled (the gang never confirms)."""
    answer = client.order("buy", symbol, quantity).json()
    if answer["status"] != "placed":
        client.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
    return str(answer["status"])


def _placed(symbol: str, **where: Any) -> Decimal:
    rows = Order.objects.filter(instrument__symbol=symbol, status=OrderStatus.PLACED, **where)
    return sum((o.amount_jpy for o in rows), Decimal(0))


def _flag_hours(symbol: str) -> int | None:
    flag = CampaignFlag.objects.filter(symbol=symbol, active=True).first()
    return None if flag is None else flag.window_hours


@pytest.mark.django_db
def test_held_twenty_victims_taking_turns_nine_a_week_are_flagged_by_the_month(
    order_api: Any, clock: Any, settings: Any
) -> None:
    """Round fifty-nine's gang: twenty victims signed in on day 0, ``changed_days`` waited out, then every
    7 days 1 hour a group of nine (rotating through all twenty) buys two chunks of 320 7Z2A each (4.9 % of a
    day's value per chunk): never ten buyers within 168 h, none risky, each under every per-account limit.
    It bought 6.9 days of the stock's traded value in nine weeks, unflagged. The month adds the groups up:
    the instrument is flagged (the admins alerted) once every account together passes a day's value."""
    settings.ADMINS = [("Security desk", "desk@demo-broker.example")]
    thieves = _gang(order_api, clock, 20, "cm_r")
    for week in range(9):  # day 31 .. day 88
        members = [thieves[(week * 9 + i) % 20] for i in range(9)]
        for i, (victim, thief) in enumerate(members):
            clock(31 + week * 7 + week / 24, hours=i / 6)
            sign_in(thief, victim.username)
            for _chunk in range(2):
                if _buy(thief, PUMPED, 320) != "placed":
                    break
    assert _flag_hours(PUMPED) == 720, "the month's arm flags it"
    # What the gang bought before the flag: no more than the month's share of a day's value.
    assert _placed(PUMPED) <= Decimal("1.0") * PUMPED_DAILY, _placed(PUMPED) / PUMPED_DAILY
    assert Notification.objects.filter(kind="campaign_flagged", staff=True).exists()
    rows = GuardedOrder.objects.filter(symbol=PUMPED)
    assert any("campaign_detected" in g.reasons for g in rows)  # the buy that passed it was held


@pytest.mark.django_db
def test_held_the_groups_again_a_day_of_value_after_an_admin_clears_the_month_flag(
    order_api: Any, clock: Any
) -> None:
    """Clearing the month's flag starts the month again: the buys the admin judged do not flag the stock on
    the very next buy (her judgement would last a day otherwise), but the same groups, carrying on, are
    flagged again once they pass a day's value since the clearing."""
    thieves = _gang(order_api, clock, 20, "cm_a")
    desk = staff_user("cm_desk", perms=("authguard.view_campaignflag", "authguard.change_campaignflag"))
    cleared = None
    after: list[str] = []
    for week in range(16):
        members = [thieves[(week * 9 + i) % 20] for i in range(9)]
        for i, (victim, thief) in enumerate(members):
            now = clock(31 + week * 7 + week / 24, hours=i / 6)
            if cleared is None and _flag_hours(PUMPED) == 720:
                flag = CampaignFlag.objects.get(symbol=PUMPED)
                staff_client(desk).post(  # the admin's action, as the security desk clears it
                    "/admin/authguard/campaignflag/",
                    {"action": "clear", "_selected_action": [str(flag.pk)], "apply": "1", "reason": "looked"},
                )
                assert not CampaignFlag.objects.get(symbol=PUMPED).active
                cleared = now
            sign_in(thief, victim.username)
            for _chunk in range(2):
                status = _buy(thief, PUMPED, 320)
                if cleared is not None:
                    after.append(status)
                if status != "placed":
                    break
    assert cleared is not None, "never flagged"
    assert after[:4] == ["placed"] * 4  # the clearing held
    assert _flag_hours(PUMPED) == 720, "flagged again"
    since = _placed(PUMPED, created_at__gte=cleared)
    assert since <= Decimal("1.0") * PUMPED_DAILY, since / PUMPED_DAILY


@pytest.mark.django_db
def test_held_many_victims_buying_once_each_a_few_a_week_are_flagged_by_the_month(
    order_api: Any, clock: Any
) -> None:
    """The next walk: the month counts no buyers, so the gang spends more accounts and fewer buys per account:
    24 victims, each one chunk of 320 (4.9 % of a day's value) once, six a week, on six different days
    (never two within 6 h, never ten buyers within 168 h, none risky after ``changed_days``). More accounts
    buying less each add up the same: flagged once together they pass a day's value within 30 days."""
    thieves = _gang(order_api, clock, 24, "cm_t")
    for n, (victim, thief) in enumerate(thieves):
        clock(31 + (n // 6) * 7 + n % 6, hours=n / 10)
        sign_in(thief, victim.username)
        _buy(thief, PUMPED, 320)
    assert _flag_hours(PUMPED) == 720
    assert _placed(PUMPED) <= Decimal("1.0") * PUMPED_DAILY, _placed(PUMPED) / PUMPED_DAILY


@pytest.mark.django_db
def test_cost_a_popular_small_cap_bought_by_forty_customers_over_a_month_is_not_flagged(
    order_api: Any, clock: Any
) -> None:
    """Forty long-standing customers (their usual browsers) each buy 7Z2A twice in a month, ¥33,800-83,655
    a time (the benchmark's small-cap enthusiasts), evenly over the month: 0.8 of a day's traded value within
    30 days from forty accounts (0.2 within any week, under the slow arm's quarter). No flag, nothing held."""
    buyers = []
    for n in range(40):
        clock(0, hours=n / 60)
        user = customer(f"cm_c{n}", cash=3_000_000, holdings={"7203": 200}, home_device=True)
        browser = order_api()
        browser.login_usual(user.username, battery.PASSWORD, days=400)
        buyers.append((user, browser))
    # Eighty buys evenly over 29 days, each customer's two about two weeks apart.
    statuses = []
    for k in range(80):
        user, browser = buyers[k % 40]
        clock(1 + k * 29 / 80)
        sign_in(browser, user.username)
        statuses.append(_buy(browser, PUMPED, 40 + (k * 37) % 60))  # ¥33,800 .. ¥83,655
    bought = _placed(PUMPED)
    assert Decimal("0.75") * PUMPED_DAILY < bought < PUMPED_DAILY, bought / PUMPED_DAILY
    assert statuses == ["placed"] * 80
    assert not CampaignFlag.objects.filter(symbol=PUMPED).exists(), _flag_hours(PUMPED)


@pytest.mark.parametrize(
    "options",
    [
        {"month_hours": 168},  # not longer than the longest volume window
        {"month_hours": 100, "volume_windows": [[24, 0.1], [120, 0.2]]},
        {"month_hours": 92 * 24 + 1},  # beyond what the statement may read
        {"month_hours": "720"},
        {"month_accounts": 1},  # one account's own buys are the exposure rule's
        {"month_share": -1},
        {"month_share": True},
    ],
)
def test_the_month_options_are_checked(settings: Any, options: dict[str, Any]) -> None:
    """``month_hours`` is longer than every volume window (the guard tells the month's hours from theirs so)
    and at most 92 days; ``month_accounts`` at least 2; otherwise the rule list fails ``authguard.E020``."""
    with pytest.raises((TypeError, ValueError)):
        r.Campaign(**options)
    settings.AUTHGUARD_ORDER_RULES = [{"NAME": "authguard.order_rules.Campaign", "OPTIONS": options}]
    assert Codes.ORDER_RULES_INVALID in {m.id for m in run_checks()}
    assert r.Campaign(month_hours=169, month_accounts=2, month_share=0).volume_hours() == [24, 72, 168, 169]
