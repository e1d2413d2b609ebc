"""Red team, round twenty-nine (b): round twenty-eight's device findings at an address placed in no city.

Round twenty-eight gave a known device at an address placed in no city one ``device_new_city`` point
(DeviceCookie._elsewhere), so the order guard reads a copy of her settled PC's cookie replayed from such a
proxy as a change of context. The finding is skipped when the profile already counts the pair
``device|?`` (the device was once at *any* address placed in no city) and when ``device_city_count`` is
``None`` (the account's ``dcity`` table is full): both make every later unplaced replay score no reason.
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
    IP_V6_FUKUOKA,
    IP_V6_JAPAN_ONLY,
    IP_V6_KUMAMOTO,
    IP_V6_SAPPORO,
    UA_CHROME_WIN,
    UA_IPHONE,
    OrderApi,
    bind_passkey,
    of_long_standing,
    settle_device,
)
from .factor_scenarios import passkey_verify
from .test_battery_exposure import sign_in, value
from .test_orders_device_findings_walkarounds import _fukuoka_pc
from .test_orders_first_device_walkarounds import LOWERED_SELL_SHARE, _buy_and_sell, _paid_for

start = battery.start
clock = battery.clock

#: Another residential proxy in the SoftBank block GeoIP places in Japan only (not her address: another /64).
IP_V6_JAPAN_ONLY_PROXY = "2001:db8:2:77::5"


# -- finding: one sign-in of her PC at an address placed in no city exempts every later one ---------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_copy_of_her_pc_placed_in_no_city_gets_the_lowered_limits_after_her_pc_once_was(
    clock: Any, tanaka: Any
) -> None:
    """Tanaka's home Chrome on Windows of more than a year signs in every day from her SoftBank fixed line in
    Fukuoka. Once, 15 days ago, her line's address came from a SoftBank block GeoIP places in Japan only (a
    renumbering; the profile learns ``dev|?``). An infostealer copies her jar after her last sign-in. The
    thief replays it with the phished password and her exact user agent from a residential proxy in that
    same country-only SoftBank block (another /64, not her address). DeviceCookie._elsewhere's round-28
    rule requires ``profile.count("dcity", "dev|?") == 0``: ``known_device`` -10, no reason, allowed; the
    order guard sees her own PC: 9.9 % into the illiquid 5Z4A and 43.8 % of the holdings sold, no hold. The
    same copy on a profile without that one day scores ``device_new_city`` 1 (lowered limits). Secure: an
    address placed in no city is no alibi however often the PC was at one (the 5Z4A buy and every sell
    beyond a quarter of the holdings are held)."""
    of_long_standing(tanaka)
    clock(-20)
    home = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, tanaka, days=400)
    for day in range(-19, 0):
        clock(day)
        home.client.defaults["REMOTE_ADDR"] = IP_V6_JAPAN_ONLY if day == -15 else IP_V6_FUKUOKA
        sign_in(home, TANAKA.username, TANAKA.password)
        assert home.get("/api/portfolio").status_code == 200
        if day == -15:
            mine = LoginEvent.objects.filter(user=tanaka).latest("id")
            assert mine.action == "allow" and "device_new_city" in mine.reasons, (mine.score, mine.reasons)
    home.post("/api/logout")
    clock(0)
    copy = OrderApi(REMOTE_ADDR=IP_V6_JAPAN_ONLY_PROXY, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (event.action, event.as_org, event.city or "") == ("allow", "SoftBank Corp.", "")
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
    # Secure: her PC's cookie at an address placed in no city, not hers, lowers the limits.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_the_thiefs_own_unplaced_replay_does_not_make_his_next_one_a_week_later_her_pc_at_home(
    clock: Any, tanaka: Any
) -> None:
    """The same rule, seeded by the thief himself. Tanaka's PC signs in daily from her SoftBank line in
    Fukuoka for ten days, then she does not sign in for a while. Day 0: the thief replays the copied jar from
    a SoftBank proxy placed in no city; round 28's rule scores ``device_new_city`` 1: allowed, the week's
    limits lowered, and the login learned (``dev|?`` now counted). He trades nothing and signs out. Day 8,
    after the trust week: the same jar from another proxy address of that country-only block scores 0, no
    reason, and the order guard gives the full limits: 9.9 % into 5Z4A, 43.8 % of the holdings sold, no hold.
    Secure: one unplaced sign-in (his) does not vouch for every later address placed in no city (held).
    """
    home = _fukuoka_pc(clock, tanaka)
    clock(0)
    copy = OrderApi(REMOTE_ADDR=IP_V6_JAPAN_ONLY, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    copy.login(TANAKA.username, TANAKA.password)
    first = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (first.action, first.reasons) == ("allow", ["device_new_city"]), (first.score, first.reasons)
    copy.post("/api/logout")
    clock(8)
    copy.client.defaults["REMOTE_ADDR"] = IP_V6_JAPAN_ONLY_PROXY
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (event.action, event.as_org, event.city or "") == ("allow", "SoftBank Corp.", "")
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
    # Secure: the copy at another address placed in no city is still a change of context.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


# -- finding: a full device|city table makes every address placed in no city her PC's own -------------


def _her_pc_and_private_phone(days: int = 30) -> list[Any]:
    """Tanaka's home PC in Fukuoka every day; her iPhone in private browsing (a new device cookie at each
    launch) at home in Fukuoka and at the office in Kumamoto: by day 16 the account's ``dcity`` table holds
    its 48 pairs (MAX_VALUES) and stays full (the least recently seen pair is evicted)."""
    from .factories import T0, ctx

    logins = []
    for day in range(days):
        at = T0 + timedelta(days=day)
        logins.append(ctx(at=at, ip=IP_V6_FUKUOKA, ua=UA_CHROME_WIN, device="dev-tanaka-pc"))
        phone = f"dev-tanaka-private-{day}"
        logins.append(ctx(at=at + timedelta(hours=3), ip=IP_V6_FUKUOKA, ua=UA_IPHONE, device=phone))
        logins.append(ctx(at=at + timedelta(hours=9), ip=IP_V6_KUMAMOTO, ua=UA_IPHONE, device=phone))
    return logins


@pytest.mark.usefixtures("geoip")
def test_a_copy_of_her_pc_placed_in_no_city_keeps_its_reason_when_the_device_city_table_is_full() -> None:
    """Tanaka's PC has only ever signed in from her SoftBank line in Fukuoka; her iPhone browses privately,
    so each launch is a new device cookie, and within 16 days the account's ``dcity`` table is full (48
    pairs). ``device_city_count`` then answers ``None`` ("not known for sure") for every device, and the
    round-28 rule reads it as ``(None or 0) >= 1``: false. The thief's replay of the PC's cookie from a
    SoftBank proxy placed in no city scores ``known_device`` -10 only: no reason, so the order guard gives the
    full limits (as in the finding above). The placed path has no such test: the same copy from Sapporo
    scores ``device_new_city`` 10. Secure: an unknown count is not "no city on record" (the device's
    remembered place, ``dv``, says it was placed): the unplaced copy keeps ``device_new_city``."""
    from authguard.risk.profile import device_city_count
    from authguard.risk.signals import DeviceCookie

    from .factories import T0, ctx, history_of

    store = history_of(*_her_pc_and_private_phone())
    at = T0 + timedelta(days=31)
    copy = ctx(at=at, ip=IP_V6_JAPAN_ONLY_PROXY, ua=UA_CHROME_WIN, device="dev-tanaka-pc")
    evidence = store.evidence(copy)
    assert device_city_count(evidence.profile, copy.features["dev"]) is None  # the table is full
    control = ctx(at=at, ip=IP_V6_SAPPORO, ua=UA_CHROME_WIN, device="dev-tanaka-pc")
    placed = {f.code: f.score for f in DeviceCookie().evaluate(store.evidence(control))}
    assert placed.get("device_new_city", 0) >= 1, placed
    found = {f.code: f.score for f in DeviceCookie().evaluate(evidence)}
    # Secure: the unplaced copy of her Fukuoka-only PC is among the login's reasons the order guard reads.
    assert found.get("device_new_city", 0) >= 1, found


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_copy_of_her_pc_placed_in_no_city_gets_the_lowered_limits_when_her_phone_browses_privately(
    clock: Any, tanaka: Any
) -> None:
    """The same gap through the demo portal. Tanaka's home PC signs in every day from her SoftBank line in
    Fukuoka; for seven weeks she also signed in every day from her iPhone in private browsing at home (a new
    device cookie each time, allowed as ``new_device``), then stopped nine days ago. Her account's ``dcity``
    table is full (48 pairs), so ``device_city_count`` is ``None`` for her PC. The thief replays the PC's
    copied cookie with the phished password and her user agent from a SoftBank proxy placed in no city:
    score 0, no reason, allowed; the order guard gives the full limits (9.9 % into 5Z4A, 43.8 % of the
    holdings sold, no hold). Secure: the copy is a change of context (held)."""
    from authguard.models import RiskProfile
    from authguard.risk.profile import Profile, device_city_count

    of_long_standing(tanaka)
    clock(-60)
    home = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, tanaka, days=400)
    for day in range(-59, 0):
        clock(day)
        sign_in(home, TANAKA.username, TANAKA.password)
        if day < -8:
            phone = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA, HTTP_USER_AGENT=UA_IPHONE)
            assert (
                phone.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password}).json()[
                    "status"
                ]
                == "ok"
            )
    home.post("/api/logout")
    clock(0)
    copy = OrderApi(REMOTE_ADDR=IP_V6_JAPAN_ONLY_PROXY, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (event.action, event.as_org, event.city or "") == ("allow", "SoftBank Corp.", "")
    assert not KnownDevice.objects.filter(user=tanaka, first_seen_at__gte=timezone.now() - timedelta(days=7))
    data = RiskProfile.objects.get(user=tanaka).data
    pc = next(dev for dev, seen in data["dv"].items() if seen[1] == "Chrome")  # her PC (the phones: Safari)
    assert device_city_count(Profile.at(data, timezone.now(), 180), pc) is None  # the table is full
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
    # Secure: her Fukuoka-only PC's cookie at an address placed in no city lowers the limits.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


# -- held --------------------------------------------------------------------------------------------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_an_occasional_customers_settled_pc_moved_on_her_isp_is_let_in_but_gets_the_lowered_limits(
    clock: Any, tanaka: Any, authenticator: Any
) -> None:
    """HELD (the 1-point cap of round 28, compared with the full points): Tanaka signs in a few times a year
    from her Fukuoka PC (SoftBank); the profile's horizon holds one sign-in (a month ago, stepped up as
    dormant), her lifetime more. The thief replays the PC's copied cookie from a SoftBank line placed in
    Sapporo. On a settled account the same copy scores ``device_new_city`` 10 + ``settled_device_moved`` 30
    and is stepped up; under the thin horizon each is cut to 1 point: allowed at 5 (before round 28: no
    finding at all). The reasons still name ``device_new_city``, so the order guard lowers the limits: the
    5Z4A buy and every sell beyond a quarter of the holdings are held."""
    of_long_standing(tanaka, days=800)
    clock(-500)
    bind_passkey(tanaka, authenticator)
    clock(-400)
    home = OrderApi(REMOTE_ADDR=IP_V6_FUKUOKA, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, tanaka, days=400)
    home.post("/api/logout")
    clock(-30)
    answer = home.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password}).json()
    assert answer["status"] == "step_up_required"  # dormant: she proves it is her with her passkey
    assert passkey_verify(home, authenticator).status_code == 200
    home.post("/api/logout")
    clock(0)
    copy = OrderApi(REMOTE_ADDR=IP_V6_SAPPORO, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert event.action == "allow" and {"device_new_city", "settled_device_moved"} <= set(event.reasons)
    bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    assert bought == "held" and _paid_for(tanaka, "5Z4A") == Decimal(0), (event.score, event.reasons)
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, (sold_share, statuses)
