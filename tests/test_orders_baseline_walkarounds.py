"""Red teams, rounds nineteen and twenty: a pumped stock that no customer of the portal traded in the month
before its pump (now held).

The ledger remembers how thinly a stock traded only if some customer traded it within 30 days; for the rest
the guard needs the portal's long-run daily value (``InstrumentInfo.baseline_daily_value``), which the demo's
instrument hooks did not give. They give it now, from the instrument's stored long-run value (migration
``brokerage.0003``), and the guard logs ``authguard.W121`` once per process when a portal gives none
(docs/order-guard.md, "A pump does not make its stock look liquid").

Round twenty: ``services.sync_instruments`` (the demo's one way to create *or update* its instruments) wrote
the long-run value from the row it was given, so the first sync of the day's prices while a stock was pumped
made the pump the long run. It keeps the stored value now, unless the row carries an explicit long-run value
(``InstrumentData.baseline_daily_value``); only a new instrument starts from its row's price x volume.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.test import RequestFactory

from authguard.checks import Codes
from authguard.orders import facts as guard_facts
from authguard.orders import guard
from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Instrument

from . import test_battery_exposure as battery
from .conftest import bind_passkey, settle_device
from .test_battery_exposure import home_pc, placed_buys, sell_large_caps_up_to, sign_in, value

start = battery.start
clock = battery.clock

MID = "5Z4A"  # the demo's mid-liquidity stock: ¥1,050 x 100,000 shares = ¥105 million a day (weight 0.86)


def _pump() -> None:
    """¥4,200 x 2.5 million shares = ¥10.5 billion a day while pumped (weight 0); the stored long-run value,
    which a pump cannot lift, is untouched."""
    Instrument.objects.filter(symbol=MID).update(price=Decimal("4200"), avg_daily_volume=2_500_000)


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_a_pumped_mid_cap_no_customer_traded_this_month_takes_half_the_portfolio_in_a_day(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """The pump ratchet remembers a thin stock only if some customer of the portal traded it within 30 days;
    ``baseline_daily_value`` would cover the rest, but the demo's instrument hooks (``guard_instrument``,
    ``instrument_info``) gave none. 5Z4A (¥105 million a day, weight 0.86) that nobody at the portal traded
    this month is pumped to ¥4,200 x 2.5 million shares = ¥10.5 billion a day: weight 0, so it was neither
    illiquid (no pivot, no risky-session cap, no campaign facts) nor counted at all in the month's illiquid
    exposure or the concentration. The thief sold 45 % of the holdings (under 50 %) and put every yen of
    cash, ~half the portfolio, into the pumped stock in one order, with no hold. Through the demo's real
    hooks, which now give the stock's long-run daily value, the buy is held."""
    bind_passkey(tanaka, authenticator)
    home_pc(tanaka)
    clock(-10)
    thief = order_api()
    thief.login_known(TANAKA.username, TANAKA.password)
    settle_device(thief.client.cookies["authguard_device"].value, tanaka, days=400)
    clock(0)
    _pump()
    sign_in(thief, TANAKA.username, TANAKA.password)
    before = value(tanaka)
    sell_large_caps_up_to(thief, tanaka, Decimal("0.45"))
    quantity = int(value(tanaka).cash // 4200)
    answer = thief.order("buy", MID, quantity).json()
    assert answer["status"] == "held", (answer["status"], placed_buys(tanaka, MID), before.total_value)
    assert placed_buys(tanaka, MID) <= Decimal("0.10") * before.total_value
    assert "liquidate_and_pivot" in answer["confirmation"]["reasons"], answer["confirmation"]["reasons"]


def _todays_rows() -> list[Any]:
    """The day's instrument data as a portal would sync it: 5Z4A pumped to ¥4,200 x 2.5 million shares."""
    return [
        replace(row, price=Decimal("4200"), avg_daily_volume=2_500_000) if row.symbol == MID else row
        for row in INSTRUMENTS
    ]


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_after_a_price_sync_of_the_pumped_day_the_mid_cap_is_still_held(
    order_api: Any, clock: Any, tanaka: Any
) -> None:
    """The walk-around above, with the pump arriving through the demo's own instrument update instead of a
    raw UPDATE: ``sync_instruments`` set the long-run value from the pumped day's row (¥10.5 billion a day),
    and the thief again sold 45 % of the holdings, then put every yen of cash (about half the portfolio)
    into the pumped stock in one order, with no hold. The sync keeps the long run: held."""
    home_pc(tanaka)
    clock(-10)
    thief = order_api()
    thief.login_known(TANAKA.username, TANAKA.password)
    settle_device(thief.client.cookies["authguard_device"].value, tanaka, days=400)
    clock(0)
    services.sync_instruments(_todays_rows())  # the portal's morning price update
    sign_in(thief, TANAKA.username, TANAKA.password)
    before = value(tanaka)
    sell_large_caps_up_to(thief, tanaka, Decimal("0.45"))
    quantity = int(value(tanaka).cash // 4200)
    answer = thief.order("buy", MID, quantity).json()
    bought = placed_buys(tanaka, MID)
    # Secure: at most 10 % of the portfolio into the pumped stock without the passkey.
    assert answer["status"] == "held" and bought <= Decimal("0.10") * before.total_value, (
        answer["status"],
        f"{bought / before.total_value:.1%} of the portfolio",
    )


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_syncing_the_days_prices_keeps_the_long_run_value(tanaka: Any) -> None:
    """After a sync of the pumped day the baseline is still the stock's long run (¥105 million); the day's
    price and volume are synced."""
    services.sync_instruments(_todays_rows())
    hooked = services.guard_instrument(MID)
    assert hooked is not None and hooked.price == Decimal(4200) and hooked.avg_daily_volume == 2_500_000
    # Secure: a price/volume update does not rewrite the long-run value to the pumped day's.
    assert hooked.daily_value == hooked.baseline_daily_value == Decimal(105_000_000)


@pytest.mark.django_db
def test_a_sync_row_with_a_long_run_value_sets_it_and_a_new_instrument_starts_from_its_row(
    tanaka: Any,
) -> None:
    """The portal's market data brings a new long-run value (its 250-day median moved): that row sets it. A
    symbol the demo does not know yet starts from its row's price x volume."""
    rows = [
        replace(row, baseline_daily_value=Decimal(120_000_000)) for row in INSTRUMENTS if row.symbol == MID
    ]
    new = replace(INSTRUMENTS[-2], symbol="6Z6A", name="Fictional New Listing", baseline_daily_value=None)
    assert services.sync_instruments([*rows, new]) == 2
    stored = dict(Instrument.objects.values_list("symbol", "baseline_daily_value"))
    assert stored[MID] == Decimal(120_000_000)
    assert stored["6Z6A"] == new.price * new.avg_daily_volume


@pytest.mark.django_db
def test_both_instrument_hooks_of_the_demo_give_the_long_run_daily_value_a_pump_cannot_lift(
    tanaka: Any,
) -> None:
    """``guard_instrument`` (the ``AUTHGUARD_ORDER_INSTRUMENT`` hook, plain SQL) and ``instrument_info`` (what
    the demo hands the guard with a validated order) give the same long-run value; the guard reads the lower
    of it and the pumped day's."""
    _pump()
    hooked = services.guard_instrument(MID)
    draft = services.validate_order(tanaka, side="buy", symbol=MID, quantity=10)
    given = services.instrument_info(draft)
    assert hooked is not None
    assert hooked.baseline_daily_value == given.baseline_daily_value == Decimal(105_000_000)
    assert hooked.daily_value == given.daily_value == Decimal(105_000_000)
    # US instruments in yen at the demo's rate: $230 x 55 million shares x 150.
    apple = services.guard_instrument("AAPL")
    assert apple is not None and apple.baseline_daily_value == Decimal(230 * 55_000_000 * 150)


@pytest.mark.django_db
def test_the_migration_seeds_the_long_run_value_of_existing_instruments(tanaka: Any) -> None:
    """A demo database of before the field: every instrument's long-run value is its price x volume in yen."""
    migration = importlib.import_module("demo_site.brokerage.migrations.0003_instrument_baseline_daily_value")
    Instrument.objects.update(baseline_daily_value=None)
    migration.seed_baselines(django_apps, None)
    seeded = dict(Instrument.objects.values_list("symbol", "baseline_daily_value"))
    assert seeded[MID] == Decimal(105_000_000) and seeded["7203"] == Decimal(2850 * 25_000_000)
    assert seeded["ZVXQ"] == (Decimal("1.37") * 85_000 * 150).quantize(Decimal(1))
    assert None not in seeded.values()


# -- authguard.W121: a portal that gives no long-run value is told, once ----------------------------------


def _check(user: Any, instrument: Any) -> Any:
    request = RequestFactory().post("/api/orders")
    request.user = user
    request.session = {}
    draft = services.validate_order(user, side="buy", symbol=instrument.symbol, quantity=10)
    return guard.check_order(request, services.order_intent(user, draft), user=user, instrument=instrument)


@pytest.mark.django_db
def test_an_instrument_without_a_long_run_value_is_warned_about_once_per_process(
    tanaka: Any, caplog: Any, monkeypatch: Any
) -> None:
    from dataclasses import replace

    monkeypatch.setattr(guard_facts, "_warned", set())
    hooked = services.guard_instrument(MID)
    assert hooked is not None
    with caplog.at_level(logging.WARNING, logger="authguard.orders.facts"):
        _check(tanaka, hooked)  # the demo gives one: nothing to say
        assert Codes.ORDER_BASELINE_MISSING not in caplog.text
        _check(tanaka, replace(hooked, baseline_daily_value=None))
        _check(tanaka, replace(hooked, baseline_daily_value=None))
    warnings = [r for r in caplog.records if Codes.ORDER_BASELINE_MISSING in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert "5Z4A" in warnings[0].getMessage() and "cannot see the pump" in warnings[0].getMessage()
    assert Codes.ORDER_BASELINE_MISSING == "authguard.W121"


@pytest.mark.django_db
def test_the_warning_is_silenced_like_a_check(
    tanaka: Any, caplog: Any, monkeypatch: Any, settings: Any
) -> None:
    from dataclasses import replace

    monkeypatch.setattr(guard_facts, "_warned", set())
    settings.SILENCED_SYSTEM_CHECKS = [Codes.ORDER_BASELINE_MISSING]
    hooked = services.guard_instrument(MID)
    assert hooked is not None
    with caplog.at_level(logging.WARNING, logger="authguard.orders.facts"):
        _check(tanaka, replace(hooked, baseline_daily_value=None))
    assert Codes.ORDER_BASELINE_MISSING not in caplog.text
