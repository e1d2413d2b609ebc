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

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from authguard.models import LoginEvent

# Her laptop's history and the GeoIP test networks (the Toyohashi block too) of round fifty-three's file.
from .test_places_wide_merge_walkarounds import OCN_WIDE, _her_morning, seasoned, wide_geoip_dir  # noqa: F401
from .test_sessions_binding_anchor import (
    OCN_OSAKA,
    _jar,
    _state,
    _use,
    hanako,  # noqa: F401
)

pytestmark = [pytest.mark.django_db]


def test_held_the_copy_straight_from_osaka_a_minute_after_her_call_is_held(
    seasoned: tuple[Any, Client],  # noqa: F811
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
    seasoned: tuple[Any, Client],  # noqa: F811
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
