"""Security battery cases 49-53 (issue 11): the patient attacker who reads the code and has days.

Every case runs through the demo's JSON API (``/api/orders``) with ``time_machine`` over days, and checks the
acceptance of issue 11: no evasion moves more than 10 % of a portfolio into an illiquid instrument (nor sells
more than the horizon's limit) without the customer's passkey confirmation. On the 24-hour, per-order guard
before issue 11, each of these walks were placed without a single hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from authguard.models import CampaignFlag, GuardedOrder, GuardStatus, HeldOrder, KnownDevice, Notification
from demo_site.brokerage import services
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Account, Order, OrderStatus

from .conftest import OrderApi, bind_passkey

PASSWORD = "patient-thief-2025"
#: Minato Precision Parts (fictional): ¥845 x 6,500 shares = ¥5,492,500 traded a day.
PUMPED = "7Z2A"
PUMPED_DAILY = Decimal(845 * 6_500)
#: 320 shares = ¥270,400: 4.92 % of a day's value, just under the per-order limit of 5 %.
CHUNK = 320


@pytest.fixture
def start() -> Any:
    """Tomorrow 09:30 JST (00:30 UTC), so every factor bound now is older than every order."""
    now = timezone.now()
    return (now + timedelta(days=1)).replace(hour=0, minute=30, second=0, microsecond=0)


@pytest.fixture
def clock(start: Any) -> Iterator[Any]:
    """``clock(days, hours=0)``: travel there (time stands still there until the next call)."""
    travellers: list[Any] = []

    def go(days: float = 0, hours: float = 0) -> Any:
        if travellers:
            travellers.pop().stop()
        traveller = time_machine.travel(start + timedelta(days=days, hours=hours), tick=False)
        traveller.start()
        travellers.append(traveller)
        return start + timedelta(days=days, hours=hours)

    yield go
    for traveller in travellers:
        traveller.stop()


def customer(
    username: str, *, cash: int, holdings: dict[str, int], authenticator: Any = None, home_device: bool = True
) -> Any:
    """A long-standing customer: a passkey bound long ago and, by default, a home PC used for a year."""
    services.sync_instruments()
    user = services.open_account(
        username, PASSWORD, email=f"{username}@example.jp", cash=Decimal(cash), holdings=holdings
    )
    if authenticator is not None:
        bind_passkey(user, authenticator)
    if home_device:
        now = timezone.now()
        KnownDevice.objects.create(
            user=user,
            cookie_hash="0" * 64,
            label="Home PC",
            first_seen_at=now - timedelta(days=400),
            last_seen_at=now - timedelta(days=1),
        )
    return user


def value(user: Any) -> services.Portfolio:
    return services.portfolio(user)


def position_value(user: Any, symbol: str) -> Decimal:
    return sum((h.value_jpy for h in value(user).holdings if h.symbol == symbol), Decimal(0))


def sign_in(client: OrderApi, username: str, password: str = PASSWORD) -> None:
    """The thief signs in (again) from the same browser: the device cookie is kept, so from the second day
    on the session is on a known device."""
    client.post("/api/logout")
    client.login(username, password)


def sell_up_to_the_limit(client: OrderApi, user: Any) -> tuple[Decimal, list[dict[str, Any]]]:
    """Sell whole positions, largest first, until one is held; cancel that one (the thief stays under the
    limit, so nothing waits for the customer and nothing counts against the next day)."""
    sold = Decimal(0)
    holds = []
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.is_small_cap or holding.symbol == PUMPED:
            continue
        answer = client.order("sell", holding.symbol, holding.quantity).json()
        if answer["status"] == "held":
            holds.append(answer)
            cancel = client.post(f"/authguard/api/confirmations/{answer['confirmation']['id']}/cancel")
            assert cancel.status_code == 200
            break
        assert answer["status"] == "placed", answer
        sold += Decimal(answer["order"]["amount_jpy"])
    return sold, holds


def home_pc(user: Any) -> None:
    """``user``'s computer of more than a year, last seen yesterday (a known device)."""
    now = timezone.now()
    KnownDevice.objects.create(
        user=user, cookie_hash="0" * 64, label="Home PC",
        first_seen_at=now - timedelta(days=400), last_seen_at=now - timedelta(days=1),
    )  # fmt: skip


def sell_large_caps_up_to(thief: Any, user: Any, share: Decimal) -> Decimal:
    """Sell whole large-cap positions, largest first, while the running total stays under ``share`` of the
    holdings' value (every one of them placed)."""
    holdings = value(user).holdings_value
    sold = Decimal(0)
    for holding in sorted(value(user).holdings, key=lambda h: -h.value_jpy):
        if holding.is_small_cap or sold + holding.value_jpy > share * holdings:
            continue
        answer = thief.order("sell", holding.symbol, holding.quantity).json()
        assert answer["status"] == "placed", answer
        sold += Decimal(answer["order"]["amount_jpy"])
    return sold


def placed_buys(user: Any, symbol: str) -> Decimal:
    return sum(
        (
            o.amount_jpy
            for o in Order.objects.filter(
                account__user=user, side="buy", instrument__symbol=symbol, status=OrderStatus.PLACED
            )
        ),
        Decimal(0),
    )


# -- case 49: the illiquid stock first, in chunks each under the per-order limit -----------------------------


@pytest.mark.battery(49)
def test_battery_49_chunked_illiquid_buys_first_add_up_and_are_held(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    victim = customer(
        "sato", cash=3_000_000, holdings={"7203": 1000, "6758": 500, "8306": 1000, "9432": 8000},
        authenticator=authenticator,
    )  # fmt: skip
    before = value(victim).total_value
    thief = order_api()
    answers = []
    for day in range(10):  # ten days, three chunks a day, spaced over the trading day
        for hour in (0, 2, 4):
            clock(day, hour)
            sign_in(thief, "sato")  # sessions idle out after an hour: sign in again each time
            answers.append(thief.order("buy", PUMPED, CHUNK).json())
    statuses = [a["status"] for a in answers]
    assert set(statuses) <= {"placed", "held"}
    # Each chunk alone is under every per-order limit; together they are not.
    assert statuses[0] == "placed" and "held" in statuses
    held = [a for a in answers if a["status"] == "held"]
    reasons = {r for a in held for r in a["confirmation"]["reasons"]}
    assert reasons & {"exposure_instrument_volume", "exposure_illiquid"}
    # Acceptance: at most 10 % of the portfolio went into the illiquid stock without the customer's passkey.
    assert placed_buys(victim, PUMPED) <= Decimal("0.10") * before
    # Within any week (the horizon) the account bought at most 10 % of what the stock trades in a day.
    times = list(
        Order.objects.filter(account__user=victim, status=OrderStatus.PLACED, instrument__symbol=PUMPED)
        .order_by("created_at")
        .values_list("created_at", "amount_jpy")
    )
    for moment, _amount in times:
        week = sum((a for t, a in times if moment - timedelta(days=7) < t <= moment), Decimal(0))
        assert week <= Decimal("0.10") * PUMPED_DAILY
    assert all(a["confirmation"]["methods"] == ["passkey"] for a in held)


# -- case 50: liquidation spread over days as the 24-hour window rolls ---------------------------------------


@pytest.mark.battery(50)
def test_battery_50_selling_up_to_the_limit_for_four_days_is_held_over_the_horizon(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    bind_passkey(tanaka, authenticator)
    now = timezone.now()
    KnownDevice.objects.create(
        user=tanaka, cookie_hash="0" * 64, first_seen_at=now - timedelta(days=400), last_seen_at=now
    )
    start = value(tanaka)
    thief = order_api()
    sold_total = Decimal(0)
    holds = []
    for day in range(4):
        clock(day)
        sign_in(thief, TANAKA.username, TANAKA.password)
        sold, held = sell_up_to_the_limit(thief, tanaka)
        sold_total += sold
        holds += held
        # ...and what was sold goes into the pumped stock, in chunks under the per-order limit.
        for _chunk in range(3):
            answer = thief.order("buy", PUMPED, CHUNK).json()
            holds += [answer] if answer["status"] == "held" else []
    # Acceptance: over the week-long horizon the sells add up: at most half the holdings (here a quarter:
    # the account's sign-in context changed) without the customer's passkey, and at most 10 % of the
    # portfolio in the pumped stock.
    assert sold_total <= Decimal("0.5") * start.holdings_value
    assert placed_buys(tanaka, PUMPED) <= Decimal("0.10") * start.total_value
    codes = {r for h in holds for r in h["confirmation"]["reasons"]}
    assert "exposure_liquidation" in codes or "risky_session_sell" in codes
    assert GuardedOrder.objects.filter(user=tanaka, side="sell", status=GuardStatus.CANCELLED).count() >= 3


# -- case 51: buying liquid stock with cash first to inflate the liquidation base ----------------------------


@pytest.mark.battery(51)
def test_battery_51_buying_first_does_not_raise_the_liquidation_base(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    # ¥5 million of large caps and ¥5 million cash; no older device, and the thief signs in twice from the
    # same browser: a known-device session with the full (not the lowered) limits.
    victim = customer(
        "suzuki", cash=5_000_000, holdings={"7203": 700, "6758": 500, "8306": 500},
        authenticator=authenticator, home_device=False,
    )  # fmt: skip
    original = value(victim).holdings_value  # ¥4,990,000
    clock(0)
    thief = order_api()
    thief.login_known("suzuki", PASSWORD)
    # Step 1: buy liquid stock with the cash (NTT: ¥4.88 million), so the holdings look twice as large.
    assert thief.order("buy", "9432", 32_000).json()["status"] == "placed"
    # Step 2: sell the original holdings, position by position.
    answers = [thief.order("sell", symbol, qty).json() for symbol, qty in (("7203", 700), ("6758", 500))]
    answers.append(thief.order("sell", "8306", 500).json())
    sold = sum((Decimal(a["order"]["amount_jpy"]) for a in answers if a["status"] == "placed"), Decimal(0))
    # Acceptance: the base is the holdings' value at the window's start: at most half of it is sold.
    assert sold <= Decimal("0.5") * original
    held = [a for a in answers if a["status"] == "held"]
    assert held and {"mass_liquidation", "exposure_liquidation"} & set(held[0]["confirmation"]["reasons"])
    # The summary says what was placed and what waits, not "you sold" what is held.
    assert "waiting for your confirmation" in held[0]["confirmation"]["summary"]


# -- case 52: campaign buyers spaced just beyond the 6-hour campaign window ----------------------------------


@pytest.mark.battery(52)
def test_battery_52_twenty_accounts_spaced_over_six_hour_windows_flag_the_instrument(
    order_api: Any, settings: Any, clock: Any
) -> None:
    settings.ADMINS = [("Security desk", "desk@demo-broker.example")]
    answers = []
    for n in range(20):
        clock(0, hours=n * 6 + n / 60)  # 6 h 01 min apart: never two buyers within the 6-hour window
        victim = customer(f"mule{n}", cash=6_000_000, holdings={}, home_device=False)
        thief = order_api()
        thief.login(victim.username, PASSWORD)  # a first sign-in from this browser: a new-device session
        answers.append(thief.order("buy", PUMPED, CHUNK).json())
    statuses = [a["status"] for a in answers]
    # Acceptance: the share of the stock's daily volume bought by such accounts flags it, whatever the
    # spacing: after the third buyer within a day (15 % of a day's volume, limit 10 %) every buy is held.
    assert statuses[:2] == ["placed", "placed"] and set(statuses[2:]) == {"held"}
    assert "campaign_detected" in answers[2]["confirmation"]["reasons"]
    assert all("campaign_instrument" in a["confirmation"]["reasons"] for a in answers[3:])
    flag = CampaignFlag.objects.get(symbol=PUMPED)
    assert flag.active
    bought = sum(
        (o.amount_jpy for o in Order.objects.filter(instrument__symbol=PUMPED, status=OrderStatus.PLACED)),
        Decimal(0),
    )
    assert bought <= Decimal("0.10") * PUMPED_DAILY
    alerts = Notification.objects.filter(kind="campaign_flagged", staff=True)
    assert alerts.count() == 1 and PUMPED in alerts.get().context["summary"]


# -- case 53: a pivot into a stock just above the old liquidity floor ----------------------------------------


@pytest.mark.battery(53)
def test_battery_53_a_pivot_into_a_stock_just_above_the_liquidity_floor_is_held(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    bind_passkey(tanaka, authenticator)
    start = value(tanaka)
    clock(0)
    thief = order_api()
    thief.login_known(TANAKA.username, TANAKA.password)
    # Sell just under half of the holdings (the 24-hour limit), then buy the ¥105-million-a-day stock.
    target = Decimal("0.49") * start.holdings_value
    sold = Decimal(0)
    for holding in sorted(start.holdings, key=lambda h: -h.value_jpy):
        if sold + holding.value_jpy > target:
            continue
        answer = thief.order("sell", holding.symbol, holding.quantity).json()
        assert answer["status"] == "placed", answer
        sold += holding.value_jpy
    cash = Account.objects.get(user=tanaka).cash
    quantity = int(Decimal("0.9") * sold // 1050)  # ¥4.4 million: 4.2 % of what 5Z4A trades a day
    answer = thief.order("buy", "5Z4A", quantity).json()
    assert answer["status"] == "held", answer
    reasons = answer["confirmation"]["reasons"]
    assert "exposure_illiquid" in reasons and "liquidate_and_pivot" in reasons
    assert placed_buys(tanaka, "5Z4A") == 0
    assert Account.objects.get(user=tanaka).cash == cash


def test_the_liquidity_scale_has_no_floor_to_trade_just_above() -> None:
    from authguard.orders.rules import InstrumentInfo, illiquidity

    def weight(daily: int) -> float:
        return illiquidity(
            InstrumentInfo("X", Decimal(1), "JPY", "TSE Standard", "JP", avg_daily_value=daily)
        )

    weights = [weight(d) for d in (5_000_000, 50_000_000, 99_000_000, 105_000_000, 10**9, 10**10, 10**11)]
    assert weights == sorted(weights, reverse=True)
    assert weights[0] == weights[1] == 1.0 and weights[-2] == weights[-1] == 0.0
    assert abs(weight(99_000_000) - weight(105_000_000)) < 0.02  # no step at the old floor
    assert 0.8 < weight(105_000_000) < 0.9
    small = InstrumentInfo(
        "S", Decimal(1), "JPY", "TSE Growth", "JP", avg_daily_value=10**10, is_small_cap=True
    )
    foreign = InstrumentInfo(
        "F", Decimal(1), "USD", "NASDAQ", "US", avg_daily_value=10**10, is_small_cap=True
    )
    assert illiquidity(small) == 0.5 and illiquidity(foreign) == 1.0
    assert illiquidity(InstrumentInfo("U", Decimal(1), "JPY", "TSE Growth", "JP")) == 1.0  # unknown volume


def test_held_orders_expire_in_the_order_path_without_a_periodic_task(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    bind_passkey(tanaka, authenticator)
    clock(0)
    thief = order_api()
    thief.login_known(TANAKA.username, TANAKA.password)
    held = thief.order("buy", PUMPED, 1_000).json()  # 15 % of a day's volume
    assert held["status"] == "held"
    confirmation = HeldOrder.objects.get(pk=held["confirmation"]["id"])
    clock(0, hours=1)  # past the 5-minute deadline; no Celery beat ran
    assert thief.order("buy", "7203", 10).json()["status"] == "placed"
    confirmation.refresh_from_db()
    assert confirmation.status == HeldOrder.Status.EXPIRED
    assert confirmation.guarded.status == GuardStatus.EXPIRED
    assert Order.objects.get(pk=held["order_id"]).status == OrderStatus.EXPIRED
