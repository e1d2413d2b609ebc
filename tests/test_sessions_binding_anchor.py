"""The session binding's anchor, its last precise place and its last places (red-team review of issue 13).

A thief who replays the customer's whole cookie jar (live session cookie included) must not move the session
unlooked-at by small steps (creeping), through an address GeoIP cannot place (the placeless wildcard), nor
by going back and forth between two places the customer uses (ping-pong). Legitimate moves (across one
city, a mobile carrier, a VPN switched on and off, a dual-stack line) must not be re-scored or held for it.

Real sign-ins through the demo's JSON API and the real middleware, with time-machine for time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.test import Client

from authguard.models import LoginEvent, Outcome
from authguard.sessions.rescoring import SESSION_IN_TWO_PLACES
from authguard.sessions.state import STATE_KEY
from authguard.testing import GeoNetwork, write_geoip_databases

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import (
    IP_DOCOMO,
    IP_OSAKA,
    IP_TOKYO,
    IP_TOKYO_2,
    IP_VPN,
    TEST_NETWORKS,
    UA_CHROME_WIN,
    UA_IPHONE,
    totp_token,
)

pytestmark = [pytest.mark.django_db]

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
START = datetime(2026, 12, 4, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))

OCN: dict[str, Any] = dict(country="JP", time_zone="Asia/Tokyo", asn=4713, as_org="NTT Communications (OCN)")
DOCOMO: dict[str, Any] = dict(country="JP", time_zone="Asia/Tokyo", asn=9605, as_org="NTT DOCOMO")
IIJ: dict[str, Any] = dict(country="JP", time_zone="Asia/Tokyo", asn=2497, as_org="Internet Initiative Japan")


def _at(network: str, city: str, lat: float, lon: float, acc: int, isp: dict[str, Any] = OCN) -> GeoNetwork:
    return GeoNetwork(network, city=city, latitude=lat, longitude=lon, accuracy_km=acc, **isp)


#: Test-local networks (TEST_NETWORKS holds 203.0.113.0/24, 198.51.100.0/24, 192.0.2.0/24, 2001:db8:0-3::).
EXTRA = [
    _at("203.0.112.0/24", "Tokyo", 35.6895, 139.6917, 10),
    _at("203.0.111.0/24", "Shizuoka", 34.9756, 138.3828, 10),
    _at("203.0.110.0/24", "Nagoya", 35.1815, 136.9066, 10),
    _at("203.0.109.0/24", "Osaka", 34.6937, 135.5023, 10),
    _at("203.0.108.0/24", "Choshi", 35.7347, 140.8267, 10),
    GeoNetwork("203.0.107.0/24", **OCN),  # the country only, no coordinates
    GeoNetwork("203.0.104.0/24", latitude=35.69, longitude=139.69, accuracy_km=1000, **OCN),  # a centroid
    _at("203.0.105.0/24", "Sapporo", 43.0618, 141.3545, 10),
    # A mobile carrier's coarse placements (its egress region, 200 km either way).
    _at("203.0.106.0/24", "Osaka", 34.6937, 135.5023, 200, DOCOMO),
    _at("203.0.103.0/24", "Fukuoka", 33.5902, 130.4017, 200, DOCOMO),
    # The IPv6 side of hanako's Tokyo line, placed in another ward of the city.
    _at("2001:db8:4::/48", "Tokyo", 35.6581, 139.7017, 5),
    # The IPv6 side of another Tokyo line, on its IPv6 provider's network, which GeoIP places in Tsukuba.
    _at("2001:db8:5::/48", "Tsukuba", 36.0835, 140.0764, 5, IIJ),
]
OCN_TOKYO, OCN_SHIZUOKA, OCN_NAGOYA, OCN_OSAKA = "203.0.112.9", "203.0.111.9", "203.0.110.9", "203.0.109.9"
OCN_CHOSHI, OCN_UNPLACED, OCN_CENTROID = "203.0.108.9", "203.0.107.9", "203.0.104.9"
OCN_SAPPORO = "203.0.105.9"
DOCOMO_OSAKA, DOCOMO_FUKUOKA = "203.0.106.9", "203.0.103.9"
OCN_TOKYO_V6 = "2001:db8:4::1"
IIJ_V6_TSUKUBA = "2001:db8:5::1"
OSAKA_2, OSAKA_3 = "203.0.113.80", "203.0.113.90"  # KDDI Osaka, as IP_OSAKA


@pytest.fixture(scope="session")
def rt_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(tmp_path_factory.mktemp("rtgeoip"), [*TEST_NETWORKS, *EXTRA])


@pytest.fixture
def rt_geoip(settings: Any, rt_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(rt_geoip_dir)
    return rt_geoip_dir


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100}, totp=True)


def _client(ip: str, ua: str = UA_CHROME_WIN) -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)


def _login(c: Client) -> Any:
    return c.post("/api/login", {"username": "hanako", "password": PASSWORD}, content_type="application/json")


def _jar(victim: Client, ip: str) -> Client:
    """A client at ``ip`` with the whole cookie jar of ``victim`` (her browser moved, or a thief's copy)."""
    other = _client(ip, victim.defaults.get("HTTP_USER_AGENT", UA_CHROME_WIN))
    for name, morsel in victim.cookies.items():
        other.cookies[name] = morsel.value
    return other


def _use(c: Client, path: str = "/api/portfolio") -> int:
    return c.get(path).status_code


def _state(c: Client) -> dict[str, Any]:
    return SessionStore(session_key=c.cookies[settings.SESSION_COOKIE_NAME].value).load()[STATE_KEY]


def _signed_in_after(
    t: Any, days: list[str], *, at: str = IP_TOKYO, totp: Any = None, ua: str = UA_CHROME_WIN
) -> Client:
    """hanako's laptop (or ``ua``'s device) signs in once a day from each of ``days`` (the same browser;
    stepping up with ``totp`` where asked), then at START from ``at`` and uses the portal."""
    home = _client(at, ua)
    home.get("/api/csrf")  # a browser that visited before: it holds a device cookie
    for ip in days:
        here = _jar(home, ip)
        status = _login(here).json()["status"]
        if totp is not None and status == "step_up_required":
            assert here.post("/authguard/step-up/totp/", {"code": totp_token(totp)}).status_code == 302
            status = "ok"
        assert status == "ok", ip
        here.get("/api/portfolio")
        here.post("/api/logout")
        for name, morsel in here.cookies.items():  # one browser: what it was given there, it keeps
            home.cookies[name] = morsel.value
        t.shift(timedelta(days=1))
    t.move_to(START)
    assert _login(home).json()["status"] == "ok"
    assert _use(home) == 200
    return home


@pytest.fixture
def seasoned(hanako: Any, rt_geoip: Path) -> Iterator[tuple[Any, Client]]:
    """10 daily sign-ins from Tokyo on OCN, then signed in there and active."""
    traveller = time_machine.travel(START - timedelta(days=10), tick=False)
    t = traveller.start()
    yield t, _signed_in_after(t, [IP_TOKYO] * 10)
    traveller.stop()


@pytest.fixture
def commuter(hanako: Any, rt_geoip: Path) -> Iterator[tuple[Any, Client]]:
    """20 days alternating Tokyo (OCN) and her Osaka office (KDDI, IP_OSAKA) on one laptop, then signed in
    in Tokyo and active."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    yield t, _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10)
    traveller.stop()


def _walk(t: Any, home: Client, ips: list[str], *, seconds: int = 5) -> list[int]:
    """The jar at each of ``ips`` in turn, ``seconds`` apart: the status codes of the portfolio."""
    codes = []
    for ip in ips:
        t.shift(timedelta(seconds=seconds))
        codes.append(_use(_jar(home, ip)))
    return codes


def _rescored() -> list[LoginEvent]:
    return list(LoginEvent.objects.filter(outcome=Outcome.RESCORED).order_by("pk"))


# -- the attacks ----------------------------------------------------------------------------------------


def test_creeping_along_the_customers_isp_is_re_scored_before_osaka(seasoned: tuple[Any, Client]) -> None:
    t, home = seasoned
    # Each hop is under 150 km from the one before; Nagoya is 240 km from where she signed in.
    codes = _walk(t, home, [OCN_SHIZUOKA, OCN_NAGOYA, OCN_OSAKA])
    assert codes == [200, 401, 401]
    (event,) = _rescored()
    assert event.ip == OCN_NAGOYA and event.action == "step_up"
    assert _state(home)["s"] == "pending" and _state(home)["r"] is True


@pytest.mark.parametrize("placeless", [OCN_UNPLACED, OCN_CENTROID], ids=["country-only", "centroid-1000km"])
def test_a_placeless_hop_is_no_wildcard_to_sapporo(seasoned: tuple[Any, Client], placeless: str) -> None:
    t, home = seasoned
    assert _walk(t, home, [placeless, OCN_SAPPORO]) == [200, 401]
    assert [e.ip for e in _rescored()] == [OCN_SAPPORO]


@pytest.mark.parametrize("placeless", [OCN_UNPLACED, OCN_CENTROID], ids=["country-only", "centroid-1000km"])
def test_a_placeless_hop_keeps_the_last_precise_place(seasoned: tuple[Any, Client], placeless: str) -> None:
    t, home = seasoned
    # Shizuoka and Choshi are each under 150 km from Tokyo (the anchor), but 225 km apart: the hop through
    # an unplaced address must not make Choshi comparable with nothing.
    assert _walk(t, home, [OCN_SHIZUOKA, placeless]) == [200, 200]
    assert _state(home)["r"] is False
    _walk(t, home, [OCN_CHOSHI])
    assert _state(home)["r"] is True  # re-scored (whatever the engine made of it)


def test_ping_pong_between_two_usual_places_is_held_on_the_return(
    commuter: tuple[Any, Client], hanako: Any
) -> None:
    t, home = commuter
    thief = _jar(home, IP_OSAKA)
    t.shift(timedelta(seconds=5))
    # Her office, on another network: re-scored, and allowed (her history there).
    assert _use(thief) == 200
    assert _state(home)["r"] is True and _state(home)["s"] == "verified"
    # Other addresses of the same Osaka block: one place, however many addresses he goes through.
    assert _walk(t, home, [OSAKA_2, OSAKA_3, OSAKA_2], seconds=10) == [200] * 3
    t.shift(timedelta(seconds=40))
    # Back in Tokyo 70 s after leaving it, 400 km away in between: one of the two holds a copy.
    answer = home.get("/api/portfolio")
    assert answer.status_code == 401 and answer.json()["status"] == "step_up_required"
    event = _rescored()[-1]
    assert event.ip == IP_TOKYO and event.action == "step_up" and SESSION_IN_TWO_PLACES in event.reasons
    finding = next(f for f in event.findings if f["code"] == SESSION_IN_TWO_PLACES)
    assert finding["evidence"]["seconds"] == 70 and finding["evidence"]["km"] > 300
    t.shift(timedelta(seconds=70))
    assert _use(thief) == 401  # the session is held, for both
    # She steps up in Tokyo; the thief's next switch to Osaka is the same ping-pong, held again.
    assert home.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)}).status_code == 302
    assert _use(home) == 200
    t.shift(timedelta(seconds=70))
    assert _use(_jar(home, IP_OSAKA)) == 401
    assert SESSION_IN_TWO_PLACES in _rescored()[-1].reasons and _rescored()[-1].ip == IP_OSAKA


# -- what must not be re-scored or held ----------------------------------------------------------------


def test_moving_across_tokyo_on_her_line_is_not_re_scored(seasoned: tuple[Any, Client]) -> None:
    """Moves to other addresses of her network in her city are no material change. (Back at an address
    block the session left minutes ago, with another block between, is two holders taking turns, held since
    round sixty-three: tests/test_sessions_copy_same_isp_walkarounds.py.)"""
    t, home = seasoned
    assert _walk(t, home, [IP_TOKYO_2, OCN_TOKYO], seconds=60) == [200] * 2
    assert _state(home)["r"] is False and _rescored() == []
    assert _walk(t, home, [IP_TOKYO], seconds=1801) == [200]  # back after half an hour: a move
    assert _state(home)["r"] is False and _rescored() == []


def test_a_dual_stack_line_flipping_between_ipv4_and_ipv6_is_not_re_scored(
    seasoned: tuple[Any, Client],
) -> None:
    t, home = seasoned
    assert _walk(t, home, [OCN_TOKYO_V6, IP_TOKYO, OCN_TOKYO_V6, IP_TOKYO], seconds=30) == [200] * 4
    assert _state(home)["r"] is False and _rescored() == []


def test_a_dual_stack_line_on_two_networks_placed_apart_is_not_two_places_where_she_stepped_up(
    seasoned: tuple[Any, Client], hanako: Any
) -> None:
    """Her IPv6 runs on its provider's network, which GeoIP places 56 km from her IPv4 side; her browser
    alternates between the two. Where she signed in or passed a step-up is hers: going back there is never
    "two places" (a thief can step up at neither). The IPv6 side itself is re-scored as another network,
    as before."""
    t, home = seasoned
    back_home = []
    for ip in [IIJ_V6_TSUKUBA, IP_TOKYO] * 3:
        t.shift(timedelta(seconds=40))
        here = _jar(home, ip)  # her one browser (its cookie jar) on one side of the line or the other
        status = _use(here)
        if ip == IP_TOKYO:
            back_home.append(status)
        elif status == 401:
            t.shift(timedelta(seconds=31))  # a new code
            answer = here.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)})
            assert answer.status_code == 302 and "step-up" not in answer["Location"], answer["Location"]
            assert _use(here) == 200
        home = here
    assert back_home == [200, 200, 200]
    assert not [e for e in _rescored() if SESSION_IN_TWO_PLACES in e.reasons]


def test_a_mobile_customer_roaming_on_her_carrier_is_not_re_scored(hanako: Any, rt_geoip: Path) -> None:
    with time_machine.travel(START, tick=False) as t:
        phone = _client(IP_DOCOMO)
        phone.get("/api/csrf")
        assert _login(phone).json()["status"] == "ok"
        # Placed coarsely in Tokyo, Osaka and Fukuoka in turn, and back, on one carrier: no hop is provably
        # a move (Tokyo to Fukuoka at once would be, as before), nor is Fukuoka from where she signed in.
        hops = [DOCOMO_OSAKA, DOCOMO_FUKUOKA, DOCOMO_OSAKA, IP_DOCOMO, DOCOMO_OSAKA]
        assert _walk(t, phone, hops, seconds=120) == [200] * 5
        assert _state(phone)["r"] is False and _rescored() == []


def test_a_vpn_switched_on_and_off_within_minutes_is_not_two_places(hanako: Any, rt_geoip: Path) -> None:
    """She signs in through her VPN most days, and switches it off and on: re-scored (another network each
    time) and allowed, never held for being in two places."""
    traveller = time_machine.travel(START - timedelta(days=10), tick=False)
    t = traveller.start()
    try:
        laptop = _signed_in_after(t, [IP_TOKYO, IP_VPN] * 5, at=IP_VPN, totp=hanako.totp)
        assert _walk(t, laptop, [IP_TOKYO, IP_VPN, IP_TOKYO, IP_VPN], seconds=60) == [200] * 4
        assert _state(laptop)["s"] == "verified" and _state(laptop)["r"] is True
        assert not [e for e in LoginEvent.objects.all() if SESSION_IN_TWO_PLACES in e.reasons]
    finally:
        traveller.stop()


def test_a_session_signed_in_at_an_unplaced_address_is_anchored_at_its_first_precise_place(
    seasoned: tuple[Any, Client],
) -> None:
    t, home = seasoned
    home.post("/api/logout")
    laptop = _jar(home, OCN_UNPLACED)
    assert _login(laptop).json()["status"] == "ok" and _use(laptop) == 200
    assert _walk(t, laptop, [IP_TOKYO, OCN_SHIZUOKA, OCN_NAGOYA]) == [200, 200, 401]
    assert [e.ip for e in _rescored()] == [OCN_NAGOYA]


def test_switching_between_wi_fi_and_a_coarsely_placed_mobile_carrier_is_not_two_places(
    hanako: Any, rt_geoip: Path
) -> None:
    """Her phone's carrier is placed in Osaka, 200 km either way, while she is at home in Tokyo: toggling
    Wi-Fi off and on again is re-scored (another network each time) and allowed, never held. (Her phone:
    a desktop browser taking turns between networks is held since round sixty-five,
    tests/test_sessions_copy_same_isp_walkarounds.py.)"""
    traveller = time_machine.travel(START - timedelta(days=10), tick=False)
    t = traveller.start()
    try:
        phone = _signed_in_after(t, [IP_TOKYO, DOCOMO_OSAKA] * 5, totp=hanako.totp, ua=UA_IPHONE)
        assert _walk(t, phone, [DOCOMO_OSAKA, IP_TOKYO, DOCOMO_OSAKA, IP_TOKYO], seconds=60) == [200] * 4
        assert _state(phone)["s"] == "verified" and _state(phone)["r"] is True
        assert not [e for e in LoginEvent.objects.all() if SESSION_IN_TWO_PLACES in e.reasons]
    finally:
        traveller.stop()


def test_a_session_saved_before_anchors_keeps_working_and_is_anchored_where_bound(
    seasoned: tuple[Any, Client],
) -> None:
    t, home = seasoned
    session = SessionStore(session_key=home.cookies[settings.SESSION_COOKIE_NAME].value)
    state = session.load()
    old = state[STATE_KEY]
    for key in ("an", "h"):
        old.pop(key)
    old["b"].pop("pl")
    session.update({STATE_KEY: old, **{k: v for k, v in state.items() if k != STATE_KEY}})
    session.save()
    # 125 km away: no move from Tokyo, where the old binding anchors it (not where it moved to).
    assert _walk(t, home, [OCN_SHIZUOKA]) == [200]
    assert _state(home)["r"] is False
    assert _state(home)["an"] == [35.6895, 139.6917, 10, 4713]  # anchored in Tokyo, where it was bound
    assert _walk(t, home, [OCN_NAGOYA]) == [401]  # creeping, as for a new session
    assert [e.ip for e in _rescored()] == [OCN_NAGOYA]
