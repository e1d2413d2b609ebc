"""The re-score's travel reference against a free hop (red team, round fifty-two): measured from every place
the session was seen at (``places.known_seen``), the one that gives the travel rule the most points.

Thief: a byte-for-byte copy of hanako's whole cookie jar (infostealer), replayed through residential
addresses of her own ISP (OCN). No password, no code. She signs in in Tokyo and keeps using her session.

A move on her network that is no material move (under 150 km from the bound place and the anchor, *after
both GeoIP accuracy radii*) is never scored, yet it writes a new precise place into the session's places
(accuracy under ``COARSE_KM`` counts as precise). The next re-score measures travel from that place, with
its 100 km radius subtracted again: a hop through an address GeoIP places 225 km away at 100 km makes his
Osaka, 400 km from her call a minute ago, no travel at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from authguard.models import LoginEvent, Outcome
from authguard.testing import write_geoip_databases

from .conftest import IP_TOKYO, TEST_NETWORKS
from .test_sessions_binding_anchor import (
    EXTRA,
    OCN,
    OCN_NAGOYA,
    OCN_OSAKA,
    START,
    _at,
    _jar,
    _signed_in_after,
    _state,
    _use,
    hanako,  # noqa: F401
)

pytestmark = [pytest.mark.django_db]

#: An OCN block GeoIP places near Toyohashi with MaxMind's common 100 km radius (225 km from Tokyo).
OCN_WIDE = "203.0.102.9"
HOP = _at("203.0.102.0/24", "Toyohashi", 34.7692, 137.3915, 100, OCN)


@pytest.fixture(scope="session")
def hop_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(tmp_path_factory.mktemp("travel-reference"), [*TEST_NETWORKS, *EXTRA, HOP])


@pytest.fixture
def seasoned(hanako: Any, settings: Any, hop_geoip_dir: Path) -> Iterator[tuple[Any, Client]]:  # noqa: F811
    """Her laptop: twelve daily sign-ins at home in Tokyo and on trips to Nagoya (both OCN), then signed in
    at home and active. Osaka is a city her laptop never signed in from."""
    settings.AUTHGUARD_GEOIP_PATH = str(hop_geoip_dir)
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    yield t, _signed_in_after(t, [IP_TOKYO, IP_TOKYO, OCN_NAGOYA] * 4)
    traveller.stop()


def _her_morning(t: Any, home: Client) -> None:
    for _ in range(3):  # she reads her portfolio every ten minutes at home
        t.shift(timedelta(minutes=10))
        assert _use(home) == 200


def _last_rescore() -> LoginEvent | None:
    return LoginEvent.objects.filter(outcome__in=[Outcome.RESCORED, Outcome.SIGNED_IN]).order_by("pk").last()


def test_held_the_copy_straight_from_osaka_a_minute_after_her_call_is_held(
    seasoned: tuple[Any, Client],
) -> None:
    """Control: the copy's first call from an OCN address in Osaka a minute after her call from Tokyo is held
    (50 points: impossible_travel 30, 400 km in a minute; device_new_city 10; device_moved 10)."""
    t, home = seasoned
    _her_morning(t, home)
    t.shift(timedelta(seconds=60))
    thief = _jar(home, OCN_OSAKA)
    code = _use(thief)
    event = LoginEvent.objects.order_by("pk").last()
    assert code == 401
    assert event is not None and "impossible_travel" in event.reasons, event and event.reasons


def test_a_copy_hopping_through_a_widely_placed_address_of_her_isp_is_still_measured_from_her_call(
    seasoned: tuple[Any, Client],
) -> None:
    """Secure: the copy's call from Osaka a minute after her call from Tokyo is held for travel, whatever
    address of her ISP it went through first: 400 km in a minute is no one's journey.

    Thirty seconds after her call the copy calls once from an OCN address GeoIP places near Toyohashi with a
    100 km radius (225 km from Tokyo minus 110 km of radii: no material move, never scored, rebound there,
    and a new *precise* place in the session's places). Thirty seconds later it calls from Osaka (material
    against the Tokyo anchor: re-scored), but the re-score measures travel from the Toyohashi place (175 km,
    minus 110 km of radii: under ImpossibleTravel's 100 km) and finds none. Her portfolio is served to him,
    the session rebound and re-anchored in Osaka (20 points: device_new_city and device_moved; the control's
    impossible_travel is gone)."""
    t, home = seasoned
    _her_morning(t, home)
    t.shift(timedelta(seconds=30))
    thief = _jar(home, OCN_WIDE)
    assert _use(thief) == 200  # the free hop: no material move
    assert _state(home)["r"] is False
    t.shift(timedelta(seconds=30))
    code = _use(_jar(home, OCN_OSAKA))
    event = LoginEvent.objects.order_by("pk").last()
    reasons = event.reasons if event is not None else []
    state = _state(home)
    assert code != 200 and state["s"] != "verified", (code, state.get("s"), reasons)
    assert "impossible_travel" in reasons, reasons
