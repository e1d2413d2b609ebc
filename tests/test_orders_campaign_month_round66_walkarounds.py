"""Red team, round sixty-six: the campaign rule's month arm against a gang with many taken-over accounts and
time (docs/order-guard.md, "Campaigns by volume over days").

Held since this round: three held buys that never executed flagged a stock for every customer (the month
counts placed buys only now), and a re-flag showed the admin the cleared flag's evidence (it shows its own
now); and, the next session, a change of the instrument's code no longer starts its month and its flag
again (the former codes: ``InstrumentInfo.former_symbols``, :mod:`authguard.orders.codes`). A cost
measured: thirty ordinary buyers of a popular small cap. Real demo endpoints, the battery's simulated
clock, the demo's instrument sync for market data."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from authguard.models import CampaignFlag, GuardedOrder, Notification
from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.models import Order, OrderStatus

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, OrderApi
from .console_data import staff_client, staff_user
from .test_battery_exposure import PUMPED, PUMPED_DAILY, customer, sign_in
from .test_orders_campaign_month_walkarounds import _buy, _flag_hours, _gang

start = battery.start
clock = battery.clock
ROWS = {row.symbol: row for row in INSTRUMENTS}


def _placed(*symbols: str, **where: Any) -> Decimal:
    rows = Order.objects.filter(instrument__symbol__in=symbols, status=OrderStatus.PLACED, **where)
    return sum((o.amount_jpy for o in rows), Decimal(0))


def _group_buys(thieves: list[tuple[Any, Any]], day: float, symbol: str, chunks: int = 2) -> list[str]:
    """Each member signs in again (his known browser) and buys ``chunks`` chunks of 320 (4.9 % of a day)."""
    statuses = []
    for i, (victim, thief) in enumerate(thieves):
        clock_to(day, hours=i / 6)
        sign_in(thief, victim.username)
        for _ in range(chunks):
            status = _buy(thief, symbol, 320)
            statuses.append(status)
            if status != "placed":
                break
    return statuses


_CLOCK: list[Any] = []


def clock_to(days: float, hours: float = 0) -> Any:
    return _CLOCK[0](days, hours=hours)


def _clear(desk: Any, symbol: str) -> None:
    flag = CampaignFlag.objects.get(symbol=symbol)
    staff_client(desk).post(
        "/admin/authguard/campaignflag/",
        {"action": "clear", "_selected_action": [str(flag.pk)], "apply": "1", "reason": "looked"},
    )
    assert not CampaignFlag.objects.get(symbol=symbol).active


@pytest.mark.django_db
def test_held_a_code_change_does_not_start_the_month_again(order_api: Any, clock: Any) -> None:
    """Held since the next session (``InstrumentInfo.former_symbols``, :mod:`authguard.orders.codes`: the
    ledger's rows and flags of the former codes are the instrument's; the demo names them).

    Secure: a code change (``InstrumentData.formerly``) is no new instrument for the month arm: the buys of
    the former code within the month count for the new code (as its long-run data and positions carry over),
    so a gang buys no more than ``month_share`` (1.0) of a day's traded value of the company within 30 days.

    Attack: twenty victims signed in on day 0 (``changed_days`` waited out). Day 31: nine of them buy two
    chunks of 7Z2A each (0.89 of a day). Day 34: 7Z2A changes code to 7Z2B (announced weeks ahead on a real
    exchange). Day 38: nine others buy 7Z2B the same way (0.89 of a day). 1.77 days of the same stock's
    traded value in 8 days, no hold, no flag.

    Root cause: authguard/orders/exposure.py:_campaign_sql / illiquid_buy_facts sum the ledger's rows and the
    flags by ``symbol`` only; the portal's ``formerly`` is not known to the guard (InstrumentInfo has no
    former code). Fix: give InstrumentInfo the former codes (``formerly``, a chain within MAX_MONTH_HOURS)
    and read ``symbol IN (...)`` for the campaign statement and the flag (an active flag of the former code
    holds the new one), as the demo already carries the long-run data over."""
    _CLOCK[:] = [clock]
    thieves = _gang(order_api, clock, 20, "rt66f")
    first = _group_buys(thieves[:9], 31, PUMPED)
    assert first == ["placed"] * 18
    clock(34)
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B", formerly=PUMPED)])
    second = _group_buys(thieves[9:18], 38, "7Z2B")
    bought = _placed(PUMPED, "7Z2B")
    assert bought <= Decimal("1.0") * PUMPED_DAILY, (
        f"{bought / PUMPED_DAILY:.2f} days of the stock's value within 8 days; second group {second}; "
        f"flags {list(CampaignFlag.objects.values_list('symbol', 'active'))}"
    )


@pytest.mark.django_db
def test_held_an_active_flag_survives_a_code_change(order_api: Any, clock: Any) -> None:
    """Held since the next session (an active flag of a former code holds the new one).

    Secure: an instrument flagged as a campaign stays flagged under its new code: every buy of it is held
    until an admin clears the flag.

    Attack: the month arm flags 7Z2A (twenty victims, groups of nine, as round fifty-nine). The code changes
    to 7Z2B; the gang's next group buys 7Z2B: placed (until the new code's own month reaches a day's value).

    Root cause: authguard/orders/exposure.py:_campaign_sql reads ``CampaignFlag`` by ``symbol`` only (and
    authguard/orders/guard.py:_flag_campaign writes it so). Fix: as above, the guard reads the flag of the
    former codes too (or the portal's code change carries the flag over)."""
    _CLOCK[:] = [clock]
    thieves = _gang(order_api, clock, 20, "rt66g")
    _group_buys(thieves[:9], 31, PUMPED)
    _group_buys(thieves[9:18], 38.05, PUMPED)
    assert _flag_hours(PUMPED) == 720
    clock(40)
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B", formerly=PUMPED)])
    after = _group_buys([thieves[i] for i in (18, 19, 0, 1)], 45.1, "7Z2B", chunks=1)
    assert "placed" not in after, after


@pytest.mark.django_db
def test_held_a_re_flag_shows_the_admin_its_own_evidence_not_the_cleared_flags(
    order_api: Any, clock: Any, settings: Any
) -> None:
    """Held since round sixty-six.

    Secure: a campaign flag shows the admin what flagged it this time (the month's accounts, 720 h); she
    clears a month of a day's value knowingly, not a six-hour blip.

    Attack: the gang first makes the six-hour count arm flag 7Z2A with tiny buys on day 20 (¥33,800 each;
    nine accounts, 0.055 of a day): the flag reads "9 accounts (9 risky), 6 hours"; an admin looks at nine
    small buys and clears it. From then on every re-flag of 7Z2A (here by the month arm: 1.03 days' value
    by eighteen accounts over eight days) still reads "9 accounts bought 7Z2A within 6 hours" (the admin's
    list and the staff notice), and her next clearing starts the month again.

    Root cause: authguard/orders/guard.py:_flag_campaign re-activates an existing flag row updating only
    active/flagged_at/cleared_at, not accounts/risky_accounts/window_hours. Fix: write the finding's evidence
    on re-activation too (and keep the arm and the volume share on the flag, shown in the admin)."""
    settings.ADMINS = [("Security desk", "desk@demo-broker.example")]
    _CLOCK[:] = [clock]
    thieves = _gang(order_api, clock, 20, "rt66c")
    desk = staff_user("rt66_desk", perms=("authguard.view_campaignflag", "authguard.change_campaignflag"))
    # Ten tiny buys within six hours (day 20: not in any later month window that matters).
    for i, (victim, thief) in enumerate(thieves[10:20]):
        clock(20, hours=i / 6)
        sign_in(thief, victim.username)
        _buy(thief, PUMPED, 40)
    flag = CampaignFlag.objects.get(symbol=PUMPED)
    assert (flag.window_hours, flag.active) == (6, True)
    _clear(desk, PUMPED)
    # Now the month arm's flag.
    _group_buys(thieves[:9], 31, PUMPED)
    _group_buys(thieves[9:18], 38.05, PUMPED)
    flag = CampaignFlag.objects.get(symbol=PUMPED)
    assert flag.active
    notice = Notification.objects.filter(kind="campaign_flagged", staff=True).order_by("-pk").first()
    summary = notice.context["summary"] if notice else None
    assert flag.window_hours == 720 and "720" in str(summary), (
        f"the re-flag reads {flag.accounts} accounts / {flag.window_hours} h; "
        f"notice: {summary}; month bought {_placed(PUMPED) / PUMPED_DAILY:.2f} days"
    )


@pytest.mark.django_db
def test_held_a_pumped_volume_does_not_lift_the_months_day(order_api: Any, clock: Any) -> None:
    """The gang prints 7Z2A at ten times its volume (the same price: ¥55 million a day) before it buys: the
    month arm reads the long-run daily value (baseline ¥5.5 million), so nine plus nine accounts are flagged
    once together above one long-run day."""
    _CLOCK[:] = [clock]
    thieves = _gang(order_api, clock, 20, "rt66p")
    clock(30)
    services.sync_instruments([replace(ROWS[PUMPED], avg_daily_volume=ROWS[PUMPED].avg_daily_volume * 10)])
    _group_buys(thieves[:9], 31, PUMPED)
    _group_buys(thieves[9:18], 38.05, PUMPED)
    assert _flag_hours(PUMPED) == 720
    assert _placed(PUMPED) <= Decimal("1.0") * PUMPED_DAILY, _placed(PUMPED) / PUMPED_DAILY


@pytest.mark.django_db
def test_held_two_accounts_at_a_time_buy_about_a_day_a_month_at_most(order_api: Any, clock: Any) -> None:
    """Two accounts only (under ``month_accounts`` 3, the month arm never counts them): each buys two chunks
    a week (the exposure rule's 10 % of a day per week) for five weeks-ish within 29 days. Measured: what two
    accounts place within 30 days stays about a day's value (the per-account weekly limit bounds it)."""
    _CLOCK[:] = [clock]
    thieves = _gang(order_api, clock, 2, "rt66two")
    statuses = []
    for week in range(5):
        statuses += _group_buys(thieves, 31 + week * 7.01, PUMPED)
    share = _placed(PUMPED) / PUMPED_DAILY
    print(f"two accounts, 29 days: {share:.3f} days, {statuses}")
    assert share <= Decimal("1.0"), share


@pytest.mark.django_db
def test_cost_thirty_customers_buying_a_popular_small_cap_once_each_in_a_month(
    order_api: Any, clock: Any
) -> None:
    """Thirty long-standing customers (usual browsers) buy 7Z2A once each over 29 days, 300 shares (¥253,500,
    a typical retail ticket, 4.6 % of a day) on news: 1.38 days of its traded value in a month. Measured: how
    many ordinary buys wait for a passkey once the month arm flags it (every buyer after the flag)."""
    buyers = []
    for n in range(30):
        clock(0, hours=n / 60)
        user = customer(f"rt66cost{n}", cash=3_000_000, holdings={"7203": 200}, home_device=True)
        browser = order_api()
        browser.login_usual(user.username, battery.PASSWORD, days=400)
        buyers.append((user, browser))
    statuses = []
    for k, (user, browser) in enumerate(buyers):
        clock(1 + k * 29 / 30)
        sign_in(browser, user.username)
        statuses.append(_buy(browser, PUMPED, 300))
    held = statuses.count("held")
    reasons = {r for g in GuardedOrder.objects.filter(symbol=PUMPED, status="held") for r in g.reasons}
    # Measured (2026-12-07): the month arm flags after the 21st buy, and the last 9 wait for a passkey until
    # an admin clears the flag (month_share 1.0: docs/order-guard.md, what a portal should measure).
    assert held <= 10, (statuses, reasons, _flag_hours(PUMPED))


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["off", "on"])
def test_held_three_held_never_executed_buys_flag_no_stock_for_every_customer(
    request: Any, clock: Any, engine: str
) -> None:
    """Held since round sixty-six.

    Secure: buys that never executed (held, then cancelled) do not flag an instrument for every customer;
    a flag by the month arm takes at least a day's traded value actually bought (or a number of buyers).

    Attack (griefing, no money spent): three accounts of the gang's own (long standing, their usual
    browsers: no risky session, no takeover needed) each place one buy of 2,300 7Z2A (¥1.94 million, 35 % of
    a day): each is held (``illiquid_buy_large``), but held buys count in the month (status IN ('placed',
    'held')); the third one passes a day's value with three accounts and the month arm flags 7Z2A. The gang
    cancels its three orders: nothing was bought, the flag stays, and every ordinary customer's buy of 7Z2A
    waits for her passkey until an admin clears it (after her clearing, three more such orders would again).
    Before the month arm, the cheapest flag took ten accounts within six hours, or three risky ones.

    Root cause: authguard/orders/exposure.py:_campaign_sql (the month part counts held buys at their full
    amount) and exposure_rules.py:Campaign._month. Fix: in the month part count only placed buys (a held one
    counts once confirmed), or count a held buy at no more than IlliquidBuy's per-order share of a day.
    ``engine`` on: the default risk signals (the ``geoip`` fixture), every browser from Tokyo."""
    if engine == "on":
        request.getfixturevalue("geoip")

        def order_api() -> OrderApi:
            return OrderApi(REMOTE_ADDR=IP_TOKYO)
    else:
        order_api = request.getfixturevalue("order_api")
    gang = []
    for n in range(3):
        clock(0, hours=n / 60)
        user = customer(f"rt66own{n}", cash=3_000_000, holdings={"7203": 200}, home_device=True)
        browser = order_api()
        browser.login_usual(user.username, battery.PASSWORD, days=400)
        gang.append((user, browser))
    held = []
    for n, (user, browser) in enumerate(gang):
        clock(3, hours=n / 60)
        sign_in(browser, user.username)
        answer = browser.order("buy", PUMPED, 2_300).json()
        assert answer["status"] == "held", answer
        held.append((browser, answer["confirmation"]["id"]))
    for browser, confirmation in held:
        assert browser.post(f"/authguard/api/confirmations/{confirmation}/cancel").status_code == 200
    assert _placed(PUMPED) == 0
    # An ordinary customer's ordinary buy of 7Z2A the next day.
    clock(4)
    her = customer("rt66her", cash=3_000_000, holdings={"7203": 200}, home_device=True)
    browser = order_api()
    browser.login_usual(her.username, battery.PASSWORD, days=400)
    answer = browser.order("buy", PUMPED, 100).json()
    assert answer["status"] == "placed", (
        f"{answer['status']} {answer.get('confirmation', {}).get('reasons')}; flag {_flag_hours(PUMPED)} "
        "(nothing bought by anyone)"
    )


@pytest.mark.django_db
def test_held_her_own_buys_and_the_months_thinness_of_the_former_code_are_the_new_codes(
    order_api: Any, clock: Any
) -> None:
    """The account's own sums read the former codes too (``exposure.ledger_totals``: the order's instrument
    in every window, and its remembered thinness), not only the campaign: a buy of 7Z2A before the change
    is a buy of 7Z2B after it. Without the former code (a portal that names none) it is another stock."""
    from django.utils import timezone

    from authguard.orders.codes import MAX_FORMER_CODES, instrument_codes
    from authguard.orders.exposure import ledger_totals

    _CLOCK[:] = [clock]
    victim, thief = _gang(order_api, clock, 1, "rt66h")[0]
    clock_to(31)
    sign_in(thief, victim.username)
    assert _buy(thief, PUMPED, 320) == "placed"
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B", formerly=PUMPED)])
    assert services.guard_instrument("7Z2B").former_symbols == (PUMPED,)

    def totals(former: Any) -> tuple[Decimal, float]:
        windows, _due, _trust, _flagged, peak = ledger_totals(
            victim, now=timezone.now(), hours=[24, 168], symbol="7Z2B", former=former, held_seconds=600,
            trust_days=7,
        )  # fmt: skip
        return windows[168].symbol_buys, peak

    bought, peak = totals((PUMPED,))
    assert bought == GuardedOrder.objects.get(user=victim, symbol=PUMPED).amount and peak > 0
    assert totals(PUMPED) == (bought, peak)  # one code given as a string is one code
    assert totals(()) == (Decimal(0), 0.0)
    assert instrument_codes("D", ("C", "B", "A", "Z")) == ["D", "C", "B", "A"][: 1 + MAX_FORMER_CODES]
    assert instrument_codes("B", ("B", "", "A")) == ["B", "A"]
