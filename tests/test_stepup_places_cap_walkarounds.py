"""Red team, round thirty-three (a): the step-up's three-places cap (``MAX_POSTED_CONTEXTS``, round 32) as a
denial of service. The thief holds a copy of her session (cookie jar) and makes her session wait for a
step-up; can he use up her three places so that her own step-up is refused? Real middleware and endpoints,
real TOTP codes, GeoIP test databases, the battery clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from . import test_battery_exposure as battery
from .conftest import totp_token, wrong_code
from .test_sessions_browser_list_walkarounds import FILLERS
from .test_stepup_event_booking_walkarounds import _events, _her_request_held_by_the_copy

start = battery.start
clock = battery.clock

PORTFOLIO = "/api/portfolio"


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_the_thief_cannot_use_up_her_step_up_places_where_she_was_held(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: her request at home is held (his copy's Mac went first). Before she types her code he posts
    wrong codes from three other browsers (user agents) at his address, filling ``ep``. Her step-up comes from
    the very context the hold was scored in (``sc``), which is never one of the "places": her code passes
    and her session goes on; his fourth place would end only the session he shares with her (which a
    re-score from a Tor exit ends too)."""
    home, copy, events, device = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    for i, ua in enumerate(FILLERS[:3]):
        clock(0, hours=1.021 + i * 0.002)
        answer = copy.post("/authguard/api/step-up/totp", {"code": wrong_code(device)}, HTTP_USER_AGENT=ua)
        assert answer.status_code in (400, 403), answer.content
    clock(0, hours=1.03)
    mine = home.post("/authguard/api/step-up/totp", {"code": totp_token(device)})
    assert mine.status_code == 200, (mine.content, _events(tanaka, events))
    assert home.get(PORTFOLIO).status_code == 200
