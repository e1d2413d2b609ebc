"""Red team, round twenty-eight (b): the risk engine's device findings against the order guard.

The order guard lowers an account's limits for the trust week after a sign-in whose reasons name one of
``authguard.orders.exposure.CONTEXT_CHANGE_REASONS``; a finding with 0 points is in no login's reasons. The
attacks go through the demo portal's real JSON API (``/api/login``, ``/api/orders``) on the battery's
simulated clock, with the real risk engine and the test GeoIP databases.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from authguard.models import KnownDevice, LoginEvent
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from . import test_battery_exposure as battery
from .conftest import (
    IP_OSAKA,
    IP_TOKYO,
    IP_V6_FUKUOKA,
    IP_V6_JAPAN_ONLY,
    IP_V6_SAPPORO,
    UA_CHROME_WIN,
    OrderApi,
    bind_passkey,
    of_long_standing,
    settle_device,
)
from .factor_scenarios import passkey_verify
from .test_battery_exposure import sign_in, value
from .test_orders_first_device_walkarounds import LOWERED_SELL_SHARE, _buy_and_sell, _paid_for

start = battery.start
clock = battery.clock


def _fukuoka_pc(clock: Any, user: Any, *, days: int = 10) -> OrderApi:
    """Tanaka's home Chrome on Windows of more than a year, on her SoftBank fixed line in Fukuoka (IPv6,
    placed within 20 km), signed in every day for ``days`` days. Malware copies the jar after her last
    sign-in (her newest cookie)."""
    of_long_standing(user)
    clock(-days)
    home = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, user, days=400)
    for day in range(-days + 1, 0):
        clock(day)
        sign_in(home, TANAKA.username, TANAKA.password)
        assert home.get("/api/portfolio").status_code == 200
    home.post("/api/logout")
    return home


def _copy_of(home: OrderApi, ip: str) -> OrderApi:
    copy = OrderApi(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    return copy


# -- finding: a copy replayed from an address GeoIP places in the country only is no change ---------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_copy_of_her_settled_pc_at_an_address_placed_in_no_city_gets_the_lowered_limits(
    clock: Any, tanaka: Any
) -> None:
    """Tanaka's PC has only ever signed in from her SoftBank fixed line in Fukuoka. An infostealer copied its
    cookie jar. The thief (phished password, her exact user agent) replays it from a residential proxy on
    SoftBank whose block GeoIP places in Japan only (no city, 100 km radius). DeviceCookie._elsewhere skips
    ``device_new_city`` when the city is unknown (``features["city"] == "?"``), ``settled_device_moved`` sits
    under that same test, and ``device_moved`` needs 400 km/h: the same copy from Sapporo scores
    ``device_new_city`` + ``settled_device_moved`` (stepped up), from a block placed nowhere in particular it
    scores ``known_device`` -10: score 0, no reason, allowed, and the order guard sees her own PC at home.
    Secure: a settled computer at a place it never used whose city GeoIP cannot tell is a change of context
    (the 5Z4A buy and every sell beyond a quarter of the holdings are held)."""
    home = _fukuoka_pc(clock, tanaka)
    clock(0)
    copy = _copy_of(home, IP_V6_JAPAN_ONLY)
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (event.action, event.as_org) == ("allow", "SoftBank Corp.")
    assert not KnownDevice.objects.filter(user=tanaka, first_seen_at__gte=timezone.now() - timedelta(days=7))
    total = value(tanaka).total_value
    bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (
        (event.score, event.reasons),
        bought,
        f"{paid / total:.1%} of the portfolio in 5Z4A",
        f"sold {sold_share:.1%}",
        statuses,
    )
    # Secure: her settled PC's cookie at a place it never used, whose city is unknown, lowers the limits.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


# -- finding: a customer who signs in a few times a year has no device findings at all --------------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_copy_of_an_occasional_customers_pc_on_a_network_and_in_a_city_never_used_gets_the_lowered_limits(
    clock: Any, tanaka: Any, authenticator: Any
) -> None:
    """Tanaka, a customer for two years, buys and holds: she signs in from her home PC (Chrome on Windows,
    OCN, Tokyo) a few times a year. Her sign-in a month ago came after more than a year without one (dormant,
    no history: she stepped up with her passkey, which learned the login). An infostealer copied the PC's
    cookie jar. The thief replays it with the phished password and her exact user agent from a residential
    proxy on KDDI in Osaka: a network and a city neither her PC nor her account ever used. The profile holds
    one sign-in inside its horizon, below ``account_min_logins`` (2), and DeviceCookie._elsewhere then
    returns nothing ("an account too new to have habits"): no ``device_new_network``, no
    ``device_new_city``; ``known_device`` -10, score 0, allowed, reasons ``unfamiliar_login`` only. The order
    guard sees her own PC: 9.9 % of the portfolio into the illiquid 5Z4A and 44 % of the holdings sold, no
    hold. Secure: a browser known for a year on an account two years old is not "too new to have habits":
    the copy on a network and in a city it never used lowers the limits (or is stepped up)."""
    of_long_standing(tanaka, days=800)
    clock(-500)
    bind_passkey(tanaka, authenticator)
    clock(-400)
    home = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, tanaka, days=400)
    home.post("/api/logout")
    clock(-30)
    answer = home.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password}).json()
    assert answer["status"] == "step_up_required"  # dormant: she proves it is her with her passkey
    assert passkey_verify(home, authenticator).status_code == 200
    home.post("/api/logout")
    clock(0)
    copy = OrderApi(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (event.as_org, event.city) == ("KDDI CORPORATION", "Osaka")
    if event.action != "allow":
        # Now the device findings count for her (her lifetime sign-ins, not the horizon's): the copy is
        # stepped up at sign-in, and without her passkey it trades nothing.
        assert "device_new_network" in event.reasons, (event.score, event.reasons)
        assert copy.order("sell", "7203", 1).status_code in (401, 403)
        return
    total = value(tanaka).total_value
    bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (
        (event.score, event.reasons),
        bought,
        f"{paid / total:.1%} of the portfolio in 5Z4A",
        f"sold {sold_share:.1%}",
        statuses,
    )
    # Secure: her year-old PC's cookie on a network and in a city it never used lowers the account's limits.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


# -- held ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_the_same_copy_from_another_city_on_her_isp_is_stepped_up(clock: Any, tanaka: Any) -> None:
    """HELD (the control of the finding above): the same copy of her Fukuoka PC from a SoftBank fixed line
    placed in Sapporo is a settled computer moved (``device_new_city`` + ``settled_device_moved``): stepped
    up, never signed in on the password."""
    home = _fukuoka_pc(clock, tanaka)
    clock(0)
    copy = _copy_of(home, IP_V6_SAPPORO)
    copy.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert event.action != "allow", (event.score, event.reasons)
    assert "device_new_city" in event.reasons and "settled_device_moved" in event.reasons
    assert copy.order("sell", "7203", 1).status_code in (302, 401, 403)


# -- finding: a phone's new city rounds to 0 points under a policy the editor accepts ---------------------


@pytest.mark.usefixtures("geoip")
def test_a_copy_of_her_phone_in_a_new_city_keeps_its_reason_under_every_policy_the_editor_accepts() -> None:
    """Round twenty-seven gave a phone's ``device_new_network`` at least 1 point (``max(1, ...)``), because a
    finding without points is in no login's reasons and the order guard never sees it. ``device_new_city``
    (DeviceCookie._elsewhere) is still ``round(device_new_city * portable_factor)``, with no floor: the
    policy editor accepts ``portable_factor`` 0.1 (a share, 0..1) and ``device_new_city`` 4 (points), and a
    copy of her iPhone's cookie replayed in Sapporo (her phone only ever in Fukuoka, same carrier) then
    scores ``device_new_city`` 0: no reason, the order guard's full limits. ``device_new_network_known_to_
    account`` is commented "Never 0" but the editor accepts 0 for it as well (only
    ``copied_user_agent_shedding`` is refused below 1). Secure: both keep at least 1 point whatever the policy
    (or the editor refuses the policy)."""
    from authguard.risk.policy_validation import signal_problem
    from authguard.risk.signals import DeviceCookie

    from .conftest import UA_IPHONE
    from .factories import T0, ctx, daily, history_of

    name = "authguard.risk_signals.DeviceCookie"
    tuned = {"portable_factor": 0.1, "device_new_city": 4}
    store = history_of(*daily(30, ip=IP_V6_FUKUOKA, ua=UA_IPHONE, device="dev-alice-phone"))
    copy = ctx(at=T0 + timedelta(days=31), ip=IP_V6_SAPPORO, ua=UA_IPHONE, device="dev-alice-phone")
    found = {f.code: f.score for f in DeviceCookie(**tuned).evaluate(store.evidence(copy))}
    # Secure: the new city stays among the login's reasons (or such a policy is refused).
    assert signal_problem(name, tuned) is not None or found.get("device_new_city", 0) >= 1, found
    assert signal_problem(name, {"device_new_network_known_to_account": 0}) is not None


@pytest.mark.usefixtures("geoip")
def test_a_copy_of_her_phone_in_a_new_city_keeps_its_points_under_the_default_policy() -> None:
    """HELD: under the default options a phone's new city is ``round(10 * 0.25)`` = 2 points (Python rounds
    2.5 to even, not to 0) and a phone's new network on her other device's ISP keeps ``max(1, ...)`` = 1: both
    are among the login's reasons the order guard reads."""
    from authguard.risk.signals import DeviceCookie

    from .conftest import UA_IPHONE
    from .factories import T0, ctx, daily, history_of

    store = history_of(*daily(30, ip=IP_V6_FUKUOKA, ua=UA_IPHONE, device="dev-alice-phone"))
    copy = ctx(at=T0 + timedelta(days=31), ip=IP_V6_SAPPORO, ua=UA_IPHONE, device="dev-alice-phone")
    found = {f.code: f.score for f in DeviceCookie().evaluate(store.evidence(copy))}
    assert found == {"device_new_city": 2}
