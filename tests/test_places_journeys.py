"""Journeys the place rules must let through (round nineteen's fixes: authguard.sessions.places).

A session or a token back at a place from one provably 150 km away sooner than 400 km/h allows is in two
places; a precise place after an unplaced one is a new place; a binding with no precise place is compared with
the session's last precise place. None of it may hold or end a customer who travels by train, whose line's
IPv4 and IPv6 sides are placed apart in one region, whose phone's carrier is placed coarsely, or who switches
her VPN on and off: each test walks one through a working day.

Real views, the real risk engine, the test GeoIP databases; time-machine for time; no mock of authguard.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

# isort: split
# test_drf skips this module without djangorestframework (and fails under CI=true): imported first.
from .test_drf import with_token

# isort: split
from authguard.models import LoginEvent
from authguard.sessions.rescoring import SESSION_IN_TWO_PLACES
from authguard.testing import write_geoip_databases

from .conftest import IP_DOCOMO, IP_OSAKA, IP_TOKYO, IP_VPN, TEST_NETWORKS
from .test_copy_walkarounds import KANSAI, PORTFOLIO, _her_app, _token_at
from .test_sessions_binding_anchor import (  # noqa: F401 (fixtures)
    DOCOMO_FUKUOKA,
    DOCOMO_OSAKA,
    EXTRA,
    IIJ,
    OCN_UNPLACED,
    START,
    _at,
    _jar,
    _signed_in_after,
    _state,
    _use,
    hanako,
)

pytestmark = [pytest.mark.django_db]

#: The IPv6 side of her Tokyo line, on its provider's network, placed in Hitachi: 118 km from her IPv4 side
#: (radii subtracted), one region; flipping every 16 minutes is 440 km/h between them.
IIJ_V6_HITACHI = "2001:db8:6::1"


@pytest.fixture(scope="session")
def journeys_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hitachi = _at("2001:db8:6::/48", "Hitachi", 36.5991, 140.6505, 5, IIJ)
    return write_geoip_databases(
        tmp_path_factory.mktemp("journeys"), [*TEST_NETWORKS, *EXTRA, *KANSAI, hitachi]
    )


@pytest.fixture
def journeys_geoip(settings: Any, journeys_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(journeys_geoip_dir)
    return journeys_geoip_dir


def _two_places() -> list[tuple[str, list[str]]]:
    return [(e.ip, e.reasons) for e in LoginEvent.objects.all() if SESSION_IN_TWO_PLACES in e.reasons]


#: Her day: at home in Tokyo, on the Shinkansen (her phone's carrier, placed in Tokyo or Osaka 200 km either
#: way) for two and a half hours, a working afternoon at her Osaka office (KDDI), and back, where her home
#: line first hands her an address GeoIP places in the country only: (minutes, address).
TRAIN_DAY = [
    *[(30, ip) for ip in [IP_TOKYO, IP_TOKYO, IP_DOCOMO, DOCOMO_OSAKA, IP_DOCOMO, DOCOMO_OSAKA, IP_OSAKA]],
    *[(30, IP_OSAKA)] * 3,
    *[(30, ip) for ip in [DOCOMO_OSAKA, IP_DOCOMO, DOCOMO_OSAKA, IP_DOCOMO, OCN_UNPLACED, IP_TOKYO]],
]
#: Her usual places, one sign-in a day, stepping up where asked: home, office, her phone's carrier.
HISTORY = [IP_TOKYO, IP_OSAKA, IP_DOCOMO] * 6


def test_her_session_taken_by_train_to_her_osaka_office_and_back_is_never_held(
    hanako: Any,  # noqa: F811
    journeys_geoip: Path,
) -> None:
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        laptop = _signed_in_after(t, HISTORY, totp=hanako.totp)
        codes = []
        for minutes, ip in TRAIN_DAY:
            t.shift(timedelta(minutes=minutes))
            laptop = _jar(laptop, ip)  # her one browser, wherever it is
            codes.append((ip, _use(laptop)))
        state = _state(laptop)
    finally:
        traveller.stop()

    assert all(code == 200 for _ip, code in codes), codes
    assert state["s"] == "verified" and _two_places() == []


@pytest.mark.urls("tests.drf_urlconf")
def test_her_apps_token_taken_by_train_to_osaka_and_back_lives_on(
    hanako: Any,  # noqa: F811
    journeys_geoip: Path,
) -> None:
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device = _signed_in_after(t, HISTORY, totp=hanako.totp).cookies["authguard_device"].value
        token = _token_at(IP_TOKYO, device)
        codes = []
        for minutes, ip in TRAIN_DAY:
            t.shift(timedelta(minutes=minutes))
            codes.append((ip, with_token(_her_app(ip, device), token).get(PORTFOLIO).status_code))
    finally:
        traveller.stop()

    assert all(code == 200 for _ip, code in codes), (codes, _two_places())
    assert _two_places() == []


def test_a_dual_stack_line_whose_sides_are_placed_118_km_apart_is_no_journey_however_often_it_flips(
    hanako: Any,  # noqa: F811
    journeys_geoip: Path,
) -> None:
    """Her line's IPv6 runs on IIJ, placed in Hitachi, 118 km from her IPv4 side: every flip is another
    network (re-scored, allowed on her history), a return more than 15 minutes later, and 440 km/h between
    the two places. Under 150 km is one region: never a journey, however fast. She signed in on IPv4 only, so
    nothing vouches for the IPv6 side: the distance alone keeps her session."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        laptop = _signed_in_after(t, [IP_TOKYO, IIJ_V6_HITACHI] * 8, totp=hanako.totp)
        codes = []
        for ip in [IIJ_V6_HITACHI, IP_TOKYO] * 4:
            t.shift(timedelta(minutes=16))
            laptop = _jar(laptop, ip)
            codes.append(_use(laptop))
        state = _state(laptop)
    finally:
        traveller.stop()

    assert codes == [200] * 8, codes
    assert state["s"] == "verified" and state["r"] is True and _two_places() == []


@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.parametrize("elsewhere", [IP_VPN, DOCOMO_FUKUOKA], ids=["vpn-amsterdam", "carrier-fukuoka"])
def test_her_vpn_or_her_phones_carrier_switched_on_and_off_all_morning_keeps_her_token(
    hanako: Any,  # noqa: F811
    journeys_geoip: Path,
    elsewhere: str,
) -> None:
    """Her VPN exits in Amsterdam (9,000 km), her phone's carrier is placed in Fukuoka 200 km either way
    (880 km): she switches to it and back every 20 minutes. Neither place says where she is (anonymous, or
    coarse), so neither is ever a place she came back from too fast, nor one she left minutes ago."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device = _signed_in_after(t, [IP_TOKYO, elsewhere] * 6, totp=hanako.totp).cookies["authguard_device"]
        token = _token_at(IP_TOKYO, device.value)
        codes = []
        for ip in [elsewhere, IP_TOKYO] * 6:
            t.shift(timedelta(minutes=20))
            codes.append(with_token(_her_app(ip, device.value), token).get(PORTFOLIO).status_code)
    finally:
        traveller.stop()

    assert codes == [200] * 12, (codes, _two_places())
    assert _two_places() == []
