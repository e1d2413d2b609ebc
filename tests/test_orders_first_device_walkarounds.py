"""Red team, round twenty-three: a long-standing customer's first device on record is a change of context.

docs/order-guard.md, trust over time: "a customer's very first devices are no change". The ledger statement
and ``account_trust`` counted a device first seen within the trust week only on an account that also had an
older one, and the campaign's look-back spared every account's earliest device. An account with no
``KnownDevice`` row is every customer who has not signed in since the portal installed authguard (and,
after ``import-history``, every one without a passkey-trusted device): the thief's browser was the first
the guard ever saw, so his sign-in changed nothing, and from the next day on his session had the full
limits. The exemption now holds only for an account opened within the days (``date_joined``); one the
guard cannot date (a user model without it) is not new. A sign-in after a dormancy (``dormant_account``)
is a change too: on the customer's old browser no device is new.

Every attack runs through the demo portal's real JSON order endpoint (``POST /api/orders``) with the
battery's simulated clock.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from authguard.models import KnownDevice, LoginEvent
from authguard.orders import exposure
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Order, OrderStatus

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, UA_FIREFOX_LINUX, OrderApi, of_long_standing, settle_device
from .test_battery_exposure import CHUNK, PASSWORD, PUMPED, PUMPED_DAILY, customer, home_pc, sign_in, value

start = battery.start
clock = battery.clock

#: The lowered sell limit of a changed account (RiskySession's 25 % of the holdings, within the price band).
LOWERED_SELL_SHARE = Decimal("0.2525")


def _day_one(clock: Any, user: Any, browser: OrderApi | None = None) -> tuple[str, Decimal, list[str]]:
    """Day 0: a browser signs in with the right password (the real risk engine, GeoIP; by default a new
    browser on a clean Tokyo line) and does nothing. Day 1: it signs in again (a known device), buys 5Z4A
    (the ¥105-million-a-day stock the guard calls illiquid) for 9.9 % of the portfolio, then sells the
    largest holdings up to 49 % of them (a held sell is cancelled)."""
    clock(0)
    browser = browser or OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    browser.login(TANAKA.username, TANAKA.password)
    clock(1)
    sign_in(browser, TANAKA.username, TANAKA.password)
    return _buy_and_sell(browser, user)


def _buy_and_sell(browser: OrderApi, user: Any) -> tuple[str, Decimal, list[str]]:
    """Buy 5Z4A for 9.9 % of the portfolio, then sell the largest holdings up to 49 % of them."""
    before = value(user)
    quantity = int(Decimal("0.099") * before.total_value // 1050)
    bought = browser.order("buy", "5Z4A", quantity).json()["status"]
    target = Decimal("0.49") * before.holdings_value
    sold = Decimal(0)
    statuses = []
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.symbol == "5Z4A" or sold + holding.value_jpy > target:
            continue
        answer = browser.order("sell", holding.symbol, holding.quantity).json()
        statuses.append(answer["status"])
        if answer["status"] == "placed":
            sold += Decimal(answer["order"]["amount_jpy"])
        else:
            browser.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
    return bought, sold / before.holdings_value, statuses


def _paid_for(user: Any, symbol: str) -> Decimal:
    rows = Order.objects.filter(
        account__user=user, side="buy", instrument__symbol=symbol, status=OrderStatus.PLACED
    )
    return sum((o.amount_jpy for o in rows), Decimal(0))


def _joined(user: Any, when: Any) -> Any:
    user.date_joined = when
    user.save(update_fields=["date_joined"])
    return user


# -- 1. a long-standing account with no device on record: the thief's browser is its "very first" ------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_thief_on_the_first_device_the_guard_ever_saw_gets_the_lowered_limits_the_next_day(
    clock: Any, tanaka: Any
) -> None:
    """Tanaka, a customer for a year, has not signed in since the portal installed authguard (or it imported
    his sign-in log, which lists no passkey-trusted device): no KnownDevice row. Day 0 the thief signs in
    with the phished password from a clean home line (no history: allowed) and does nothing; day 1 again
    from the same browser (a known device, no reasons). Before: the account's context never 'changed', so
    he put 9.9 % of the portfolio into the illiquid 5Z4A and sold 44 % of the holdings with no hold. Now
    his browser, first seen yesterday on an account opened a year ago, is a change: the week's lowered
    limits, as for a thief next to the customer's home PC (the control below)."""
    of_long_standing(tanaka)
    assert not KnownDevice.objects.filter(user=tanaka).exists()
    total = value(tanaka).total_value
    bought, sold_share, statuses = _day_one(clock, tanaka)
    events = list(LoginEvent.objects.filter(user=tanaka).order_by("id").values_list("action", flat=True))
    assert events == ["allow", "allow"], events
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (bought, f"{paid / total:.1%} of the portfolio in 5Z4A", f"sold {sold_share:.1%}", statuses)
    assert bought == "held" and paid == 0, outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_control_the_same_thief_on_an_account_with_a_home_pc_is_held(clock: Any, tanaka: Any) -> None:
    """Control (held before the fix too): the same day on Tanaka's account with his year-old home PC on
    record keeps the week's lowered limits: the 5Z4A buy is held, and every sell beyond a quarter."""
    home_pc(tanaka)
    bought, sold_share, statuses = _day_one(clock, tanaka)
    assert bought == "held" and _paid_for(tanaka, "5Z4A") == 0
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_new_customer_keeps_the_full_limits_on_her_very_first_devices(clock: Any, tanaka: Any) -> None:
    """SECURITY (availability): a customer who opened her account yesterday has no device but the ones she
    starts with; those are no change of context, or every new customer would have the lowered limits for
    her first week. Her own browser, first used on day 0, places the same day-1 orders without a hold.
    (The guard cannot tell her from a thief who signs in to a brand-new account first.)"""
    _joined(tanaka, clock(0) - timedelta(days=1))
    total = value(tanaka).total_value
    bought, sold_share, statuses = _day_one(clock, tanaka)
    assert bought == "placed" and _paid_for(tanaka, "5Z4A") > Decimal("0.09") * total
    assert sold_share > Decimal("0.4"), (sold_share, statuses)  # the full limits (a changed account's: 25 %)


# -- 2. the same victims feed one pumped symbol: a campaign by volume ----------------------------------------


@pytest.mark.django_db
def test_victims_without_a_device_on_record_are_a_campaign_by_volume(
    order_api: Any, settings: Any, clock: Any
) -> None:
    """Battery 52's gang, with long-standing victims who had not signed in since the install (no device on
    record). Day 0 the gang signs in to each from a new browser and buys nothing; from day 1 each buys 320
    shares of 7Z2A (4.9 % of a day's value) from that browser, one account every 6 h 01 min. Before: no
    account counted as 'changed' (nor 'lately': over the look-back the thief's browser was each account's
    earliest), so the volume windows never saw them and the gang bought 44 % of a day's value before the
    slow rule's tenth account. Now, as battery 52: flagged at the third buyer."""
    settings.ADMINS = [("Security desk", "desk@demo-broker.example")]
    thieves = []
    for n in range(12):
        clock(0, hours=n / 60)
        victim = of_long_standing(customer(f"dormant{n}", cash=6_000_000, holdings={}, home_device=False))
        thief = order_api()
        thief.login(victim.username, PASSWORD)
        thieves.append((victim, thief))
    statuses = []
    for n, (victim, thief) in enumerate(thieves):
        clock(1, hours=n * 6 + n / 60)
        sign_in(thief, victim.username)
        statuses.append(thief.order("buy", PUMPED, CHUNK).json()["status"])
    bought = sum(
        (o.amount_jpy for o in Order.objects.filter(instrument__symbol=PUMPED, status=OrderStatus.PLACED)),
        Decimal(0),
    )
    outcome = (statuses, f"placed {bought / PUMPED_DAILY:.0%} of a day's value")
    assert statuses[:3] == ["placed", "placed", "held"], outcome
    assert bought <= Decimal("0.10") * PUMPED_DAILY, outcome


# -- 3. a sign-in after a dormancy, on the customer's own old browser ----------------------------------------


def idle_browser_back(clock: Any, user: Any, settings: Any, *, idle_days: int) -> tuple[OrderApi, str, Any]:
    """Tanaka's home browser of a year (``user``), unused for ``idle_days``, signs in again (or a copy of its
    cookies, address and user agent does); the portal keeps a profile horizon longer than the dormancy. The
    browser, and the engine's action and reasons."""
    settings.AUTHGUARD_PROFILE_HORIZON_DAYS = 400
    of_long_standing(user)
    clock(-idle_days)
    browser = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    browser.login(TANAKA.username, TANAKA.password)
    settle_device(browser.client.cookies["authguard_device"].value, user, days=400)
    clock(0)
    sign_in(browser, TANAKA.username, TANAKA.password)
    action, reasons = LoginEvent.objects.filter(user=user).values_list("action", "reasons").latest("id")
    return browser, action, reasons


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_sign_in_after_months_of_dormancy_lowers_the_limits(clock: Any, tanaka: Any, settings: Any) -> None:
    """Tanaka last signed in 130 days ago, from the home browser he has used for a year. An infostealer's
    copy of that browser (its cookies, its address, its user agent) signs in with his password: no device
    is new and the engine allows it (``dormant_account``; the portal keeps a profile horizon longer than the
    dormancy, so the account is not also without history, which would step it up). Before: no change of
    context, and the copy sold 44 % of the holdings in one sitting with no hold. Now the dormancy is a
    change."""
    browser, action, reasons = idle_browser_back(clock, tanaka, settings, idle_days=130)
    assert action == "allow" and "dormant_account" in reasons, (action, reasons)
    _bought, sold_share, statuses = _buy_and_sell(browser, tanaka)
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, (sold_share, statuses)


# -- 4. both readings, and a user model the guard cannot date ------------------------------------------------


def _trust(user: Any, *, days: int = 7, changed_days: int = 30) -> tuple[Any, Any]:
    """The ledger statement's TrustFacts (SQL, with ``lately``) and ``account_trust``'s (ORM)."""
    now = timezone.now()
    _totals, _due, by_sql, _flagged, _peak = exposure.ledger_totals(
        user, now=now, hours=[24, 168], symbol="7203", held_seconds=300, trust_days=days,
        changed_days=changed_days,
    )  # fmt: skip
    return by_sql, exposure.account_trust(user, now=now, days=days)


def _device(user: Any, n: int, days_ago: float) -> None:
    when = timezone.now() - timedelta(days=days_ago)
    KnownDevice.objects.create(
        user_id=user.pk, cookie_hash=f"{n:064x}", label=f"device {n}", first_seen_at=when, last_seen_at=when
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("joined_days_ago", "devices_days_ago", "changed", "lately"),
    [
        # A long-standing customer: any device first seen within the week is a change, the only one too.
        (400, [1], True, True),
        (400, [1, 3], True, True),
        (400, [1, 40], True, True),
        (400, [40], False, False),
        # ... and within the campaign's look-back, its earliest device on record too.
        (400, [10], False, True),
        # A customer of three days: her first devices are no change; one next to an older one is.
        (3, [1], False, False),
        (3, [1, 2], False, True),
        # Opened 20 days ago: older than the week, younger than the look-back.
        (20, [1], True, True),
        (20, [10], False, False),
        (20, [1, 10], True, True),
        (400, [], False, False),
    ],
)
def test_both_readings_count_a_first_device_by_the_accounts_age(
    user_factory: Any, joined_days_ago: int, devices_days_ago: list[int], changed: bool, lately: bool
) -> None:
    """The ledger statement (SQL) and ``account_trust`` (ORM) agree, and the exemption of a customer's very
    first devices follows ``date_joined``: the trust week's for the trust row, the campaign look-back's for
    the lately row."""
    user = _joined(user_factory("firsts"), timezone.now() - timedelta(days=joined_days_ago))
    for n, days_ago in enumerate(devices_days_ago):
        _device(user, n, days_ago)
    by_sql, by_orm = _trust(user)
    case = (joined_days_ago, devices_days_ago)
    assert (by_sql.changed, by_sql.reasons) == (by_orm.changed, by_orm.reasons), case
    assert by_sql.changed == changed and by_sql.lately == lately, (case, by_sql)
    assert by_sql.reasons == (("new_device",) if changed else ()), (case, by_sql)


@pytest.mark.django_db
def test_a_user_model_without_date_joined_fails_closed(user_factory: Any) -> None:
    """SECURITY: a portal's custom user model need not have ``date_joined``. Such an account cannot be shown
    to be new, so its first device within the days is a change in both readings, as a long-standing one's
    (the same account, read through its real model, was opened today: exempt)."""
    user = user_factory("undated")
    _device(user, 0, 1)
    assert not any(t.changed for t in _trust(user))
    undated = SimpleNamespace(pk=user.pk)  # what the guard sees of a user model without the field
    assert not hasattr(undated, "date_joined")
    by_sql, by_orm = _trust(undated)
    assert by_sql.changed and by_orm.changed and by_sql.lately, (by_sql, by_orm)
    assert by_sql.reasons == by_orm.reasons == ("new_device",)
    assert not exposure.new_account(undated, since=timezone.now() - timedelta(days=7))  # type: ignore[arg-type]
