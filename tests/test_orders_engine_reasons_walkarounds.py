"""Red team, round twenty-six: the order guard's reading of the risk engine.

The order guard lowers an account's limits for the trust week after a sign-in whose reasons name one of
``authguard.orders.exposure.CONTEXT_CHANGE_REASONS`` (matched as substrings). Every reason code the engine can
put on a sign-in allowed under the step-up threshold (40) was compared with that list; the attacks below go
through the demo portal's real JSON API (``/api/login``, ``/api/orders``) on the battery's simulated clock,
with the real risk engine and GeoIP.
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
from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, OrderApi, of_long_standing, settle_device
from .test_battery_exposure import sign_in, value
from .test_orders_first_device_walkarounds import LOWERED_SELL_SHARE, _buy_and_sell, _paid_for

start = battery.start
clock = battery.clock


def _home_browser_and_its_stolen_jar(clock: Any, user: Any, *, days: int = 10) -> tuple[OrderApi, str]:
    """Tanaka's home Chrome (OCN, Tokyo) of more than a year, signed in every day for ``days`` days, each
    session used (so the browser confirms each new generation of its device cookie). An infostealer copies
    the jar the day before her last sign-in: the copy is exactly one generation behind her browser."""
    of_long_standing(user)
    clock(-days)
    home = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, user, days=400)
    stolen = ""
    for day in range(-days + 1, 0):
        clock(day)
        if day == -1:
            stolen = home.client.cookies["authguard_device"].value
        sign_in(home, TANAKA.username, TANAKA.password)
        assert home.get("/api/portfolio").status_code == 200
    home.post("/api/logout")
    assert stolen and stolen != home.client.cookies["authguard_device"].value
    return home, stolen


# -- finding: a copy of her cookie the engine calls a copy ("behind") is no change of context ----------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize("ip", [IP_TOKYO_2, IP_TOKYO], ids=["another-address-of-her-24", "her-own-address"])
def test_a_copy_of_her_cookie_one_generation_behind_gets_the_lowered_limits(
    clock: Any, tanaka: Any, ip: str
) -> None:
    """Infostealer malware copied Tanaka's home browser (cookies, user agent) on Monday; she signed in again
    on Tuesday, so her browser moved on to a newer generation of its device cookie. On Wednesday the thief
    replays the copy with the phished password from a residential proxy on her own ISP in her city (another
    address of the /24). The engine recognises the copy for what it is, ``device_cookie_behind`` (+40, "an
    older copy of this browser's cookie than the browser itself now holds", no known-device discount), but
    the familiar network talks the score down to 39 and the sign-in is allowed. The order guard does not read
    ``device_cookie_behind`` (nor is any device new: the cookie's row is a year old), so the copy has the
    full limits: 9.9 % of the portfolio into the illiquid 5Z4A and 44 % of the holdings sold, no hold.
    Secure: a sign-in the engine scored as a copy of her cookie lowers the limits like device_new_network's
    copy (round twenty-five): the 5Z4A buy and every sell beyond a quarter are held.

    Since round thirty-two the familiar network no longer talks such a copy down away from an address the
    account used: it scores 40 and is not let in at all (Tanaka has no factor: refused). Where it is let in
    (at her exact address), the limits are lowered as above."""
    _home, stolen = _home_browser_and_its_stolen_jar(clock, tanaka)
    clock(0)
    copy = OrderApi(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.client.cookies["authguard_device"] = stolen
    answer = copy.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert "device_cookie_behind" in event.reasons, (event.score, event.reasons)
    assert not KnownDevice.objects.filter(user=tanaka, first_seen_at__gte=timezone.now() - timedelta(days=7))
    # At her own address (a browser that crashed at home looks the same) the copy is let in; elsewhere not.
    assert (event.action == "allow") is (ip == IP_TOKYO), (event.action, event.score, event.reasons)
    if event.action != "allow":
        # Not let in: nothing of hers is reachable, no order can be placed.
        assert answer.status_code in (401, 403) and event.score >= 40, (answer.status_code, event.score)
        assert copy.get("/api/portfolio").status_code in (401, 403)
        return
    total = value(tanaka).total_value
    bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (bought, f"{paid / total:.1%} of the portfolio in 5Z4A", f"sold {sold_share:.1%}", statuses)
    # Secure: a sign-in the engine scored as an older copy of her cookie lowers the account's limits.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


# -- finding: her PC's cookie on her phone's network scores nothing at all -----------------------------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_copy_of_her_pc_on_her_phones_carrier_gets_the_lowered_limits(
    clock: Any, tanaka: Any, settings: Any
) -> None:
    """Tanaka has two devices of more than a year: her home Chrome on OCN and her iPhone on NTT Docomo, both
    in Tokyo, each signed in every day for nine days. Infostealer malware copied the PC's cookie jar. The
    thief replays it with the phished password from a residential proxy on NTT Docomo in Tokyo (the largest
    carrier: he need not know hers). Her PC never used Docomo, so the engine's ``device_new_network`` applies,
    but on a network another of her devices uses it is ``device_new_network_known_to_account``, 0 points by
    default, so no finding is made at all; same city, no ``device_new_city``. The copy is scored as her own
    PC (``known_device`` -10, score 0) and, with no reason on the event, the order guard sees no change: 9.9 %
    of the portfolio into the illiquid 5Z4A and 44 % of the holdings sold, no hold. Secure: a known browser
    on a network it never signed in from changes the context whoever else uses that network (the 5Z4A buy
    and every sell beyond a quarter are held), as docs/order-guard.md promises for ``device_new_network``."""
    from authguard.conf import DEFAULT_RISK_SIGNALS

    from .conftest import IP_DOCOMO, UA_IPHONE

    of_long_standing(tanaka)
    # Her two devices, there long before authguard (their first sign-ins taught the profile, unscored).
    settings.AUTHGUARD_RISK_SIGNALS = []
    clock(-10)
    home = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, tanaka, days=400)
    phone = OrderApi(REMOTE_ADDR=IP_DOCOMO, HTTP_USER_AGENT=UA_IPHONE)
    phone.login(TANAKA.username, TANAKA.password)
    settle_device(phone.client.cookies["authguard_device"].value, tanaka, days=400)
    settings.AUTHGUARD_RISK_SIGNALS = DEFAULT_RISK_SIGNALS
    for day in range(-9, 0):
        clock(day)
        sign_in(home, TANAKA.username, TANAKA.password)
        clock(day, hours=10)
        sign_in(phone, TANAKA.username, TANAKA.password)
    home.post("/api/logout")
    clock(1)
    copy = OrderApi(REMOTE_ADDR="203.0.113.150", HTTP_USER_AGENT=UA_CHROME_WIN)  # another Docomo address
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (event.action, event.as_org, event.device_hash) == ("allow", "NTT DOCOMO", _device_hash(home))
    assert not KnownDevice.objects.filter(user=tanaka, first_seen_at__gte=timezone.now() - timedelta(days=7))
    total = value(tanaka).total_value
    bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (bought, f"{paid / total:.1%} of the portfolio in 5Z4A", f"sold {sold_share:.1%}", statuses)
    # Secure: her PC's cookie on a network her PC never used lowers the account's limits.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


def _device_hash(browser: OrderApi) -> str:
    from authguard.risk.context import device_hash, device_id_from_cookie

    return device_hash(device_id_from_cookie(browser.client.cookies["authguard_device"].value))


# -- held ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_cookie_replayed_in_the_thiefs_own_browser_is_stepped_up_not_let_in(
    clock: Any, tanaka: Any
) -> None:
    """HELD: the thief loads the stolen jar into his own Firefox on Linux (not her Chrome's user agent) and
    signs in from another address of her ISP in her city. ``device_user_agent_sideways`` (+40, no
    known-device discount; a code the order guard does not read) and the statistical model's unfamiliar
    browser put the sign-in over the step-up threshold: Tanaka has no second factor, so it is refused and no
    order can be placed. The guard never has to judge it."""
    from .conftest import UA_FIREFOX_LINUX

    home, _stolen = _home_browser_and_its_stolen_jar(clock, tanaka)
    clock(0)
    copy = OrderApi(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    answer = copy.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
    assert answer.status_code != 200, answer.content
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert event.action == "step_up" and "device_user_agent_sideways" in event.reasons, event.reasons
    holdings = value(tanaka).holdings
    refused = copy.order("sell", holdings[0].symbol, holdings[0].quantity)
    assert refused.status_code in (401, 403), refused.content
    assert value(tanaka).holdings == holdings
