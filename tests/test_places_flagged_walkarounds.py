"""A flagged address next to the copy's place (red team, round twenty-two; authguard.sessions.places).

A proxy or a VPS on her office's network in Osaka was "the same place" as the copy's Osaka entry and replaced
it with an anonymous one, which no rule reads: the copy went back and forth with her every minute unseen.
Entries of one place that differ in being anonymous are two places now. Each test failed on the code
before. Real views, the real risk engine, synthetic GeoIP databases; time-machine for time.
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
from rest_framework.authtoken.models import Token

from authguard.models import LoginEvent, TokenActivity
from authguard.sessions.token_activity import _digest
from authguard.testing import GeoNetwork, write_geoip_databases

from .conftest import IP_OSAKA, IP_TOKYO, TEST_NETWORKS
from .test_copy_walkarounds import KANSAI, KDDI, PORTFOLIO, _her_app, _token_at
from .test_sessions_binding_anchor import (  # noqa: F401 (fixtures)
    EXTRA,
    START,
    _jar,
    _signed_in_after,
    _use,
    hanako,
)
from .test_sessions_binding_anchor import _state as _session_state

#: An address of KDDI (her Osaka office's ISP) that GeoIP does not place (country only), and an address of
#: KDDI in Osaka that the anonymous-IP database flags as a public proxy (an exit of a residential proxy
#: network on a home line: the thief's own pool has them).
KDDI_UNPLACED_NET = GeoNetwork("203.0.90.0/24", **KDDI)
KDDI_OSAKA_PROXY_NET = GeoNetwork(
    "203.0.91.0/24", city="Osaka", latitude=34.70, longitude=135.50, accuracy_km=10, public_proxy=True, **KDDI
)
#: A VPS in a KDDI data centre in Osaka (the ISP's own hosting, on its residential ASN): flagged as hosting.
KDDI_OSAKA_VPS_NET = GeoNetwork(
    "203.0.92.0/24", city="Osaka", latitude=34.69, longitude=135.51, accuracy_km=5, hosting=True, **KDDI
)
KDDI_UNPLACED, KDDI_OSAKA_PROXY, KDDI_OSAKA_VPS = "203.0.90.9", "203.0.91.9", "203.0.92.9"


@pytest.fixture(scope="session")
def rt22b_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(
        tmp_path_factory.mktemp("rt22bgeoip"),
        [*TEST_NETWORKS, *EXTRA, *KANSAI, KDDI_UNPLACED_NET, KDDI_OSAKA_PROXY_NET, KDDI_OSAKA_VPS_NET],
    )


@pytest.fixture
def rt22b_geoip(settings: Any, rt22b_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(rt22b_geoip_dir)
    return rt22b_geoip_dir


def _recorded(user: Any, since: int = 0) -> list[Any]:
    return [(e.ip, e.outcome, e.reasons) for e in LoginEvent.objects.filter(user=user).order_by("pk")][since:]


def _token_state(token: str) -> Any:
    return TokenActivity.objects.filter(token_digest=_digest(token)).values_list("binding", flat=True).first()


# -- 1. the dedup swaps his place for an anonymous entry of the same place -----------------------------------

#: Each of the thief's blocks: his Osaka office address (re-scored, allowed: her history), then two free hops
#: on KDDI, seconds apart (an unplaced address, then a flagged address in Osaka), then Osaka again. Without
#: the two hops (four calls from IP_OSAKA) both tests below are held / ended at her first return, as they
#: should be (checked by hand against this code).
HOPS = [IP_OSAKA, KDDI_UNPLACED, KDDI_OSAKA_PROXY, IP_OSAKA]


@pytest.mark.django_db
@pytest.mark.battery(62)
@pytest.mark.parametrize("flagged", [KDDI_OSAKA_PROXY, KDDI_OSAKA_VPS], ids=["public-proxy", "kddi-hosting"])
def test_a_copied_session_swaps_its_osaka_place_for_an_anonymous_entry_and_ping_pongs_every_minute(
    hanako: Any,  # noqa: F811
    rt22b_geoip: Path,
    flagged: str,
) -> None:
    """places._same_place merges two entries of one network under 30 km whatever their ``anonymous`` flag,
    and _kept_places keeps the *newest* of them; in_two_places skips anonymous entries both as the place
    returned to and as the place ``there``. So the thief, allowed at her Osaka office (KDDI, her history),
    hops at once through an unplaced KDDI address (a new entry: not the same place as a precise one; no
    move: unplaced) and a KDDI address in Osaka flagged as a public proxy, or a VPS in KDDI's
    own Osaka data centre flagged as hosting (a new entry after the unplaced
    one, the same place as his Osaka entry, which it *replaces*; no move: under 150 km of the binding and
    anchor), then goes on from his Osaka address (the same place as the last entry: nothing noted). The
    session's places are now [Tokyo, unplaced, Osaka(anonymous)]: her next request from Tokyo a minute
    after his finds no non-anonymous place after Tokyo; his next one from Osaka finds no non-anonymous
    Osaka entry to be "back" at. Three free requests per block; the copy and her browser alternate every
    minute, all day, never held."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        home = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10)
        thief = _jar(home, IP_OSAKA)  # the infostealer's copy of her cookie jar, taken once
        events = LoginEvent.objects.filter(user=hanako).count()
        served = []
        for _round in range(4):
            t.shift(timedelta(seconds=60))  # a minute after her last request
            for ip in [*HOPS[:2], flagged, HOPS[3]]:
                t.shift(timedelta(seconds=3))
                served.append(("thief", ip, thief.get("/api/portfolio", REMOTE_ADDR=ip).status_code))
            t.shift(timedelta(seconds=60))  # her browser, a minute after his last request, at home
            served.append(("her", IP_TOKYO, _use(home)))
            if any(code != 200 for *_who, code in served):
                break
        state = _session_state(home) if "sessionid" in home.cookies else {}
    finally:
        traveller.stop()

    assert not all(code == 200 for *_who, code in served), (
        f"a copied session alternating every minute between Osaka (400 km) and her live session in Tokyo, "
        f"with an unplaced and an anonymous hop at each arrival, is never held: {served}; recorded: "
        f"{_recorded(hanako, events)}; places: {state.get('h')}"
    )


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.battery(66)
def test_a_copied_token_swaps_its_osaka_place_for_an_anonymous_entry_and_ping_pongs_every_minute(
    hanako: Any,  # noqa: F811
    rt22b_geoip: Path,
) -> None:
    """The same for her app's API token (token_binding uses place_binding and in_two_places): never
    ended, though it alternates every minute between Osaka and her app in Tokyo."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10).cookies["authguard_device"].value
        token = _token_at(IP_TOKYO, device)
        for _ in range(4):  # her app, through the first hour at home
            t.shift(timedelta(minutes=15))
            assert with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO).status_code == 200
        events = LoginEvent.objects.filter(user=hanako).count()
        served = []
        for _round in range(4):
            t.shift(timedelta(seconds=60))
            for ip in HOPS:  # the thief's copy of the token and of her app's device cookie
                t.shift(timedelta(seconds=3))
                served.append(
                    ("thief", ip, with_token(_her_app(ip, device), token).get(PORTFOLIO).status_code)
                )
            t.shift(timedelta(seconds=60))
            hers = with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO)
            served.append(("her", IP_TOKYO, hers.status_code))
            if any(code != 200 for *_who, code in served):
                break
        state = _token_state(token)

    finally:
        traveller.stop()

    assert not all(code == 200 for *_who, code in served), (
        f"a copied token alternating every minute between Osaka and her app in Tokyo, with an unplaced and "
        f"an anonymous hop at each arrival, is never ended: {served}; recorded: {_recorded(hanako, events)}; "
        f"places: {state and state.get('h')}"
    )
    assert not Token.objects.filter(key=token).exists()
