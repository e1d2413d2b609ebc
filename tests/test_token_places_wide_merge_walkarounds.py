"""An API token's re-score measures travel from the token's places (``seen_history``), kept by
the same ``places.place_binding`` as a session's: the merge of "the same place" removed her place too (red
team, round fifty-three; fixed by ``places._covers``).

Thief: a copy of the token her cookie-less app (her browser's agent) got at home in Tokyo. No password.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

# isort: split
from .test_drf import api, with_token

# isort: split
from rest_framework.authtoken.models import Token

from authguard.models import LoginEvent

from .conftest import HANAKO_PASSWORD, IP_TOKYO, UA_CHROME_WIN
from .test_places_wide_merge_walkarounds import OCN_NUMAZU_WIDE, OCN_WIDE, wide_geoip_dir  # noqa: F401
from .test_sessions_binding_anchor import (
    OCN_NAGOYA,
    OCN_OSAKA,
    OCN_UNPLACED,
    START,
    _signed_in_after,
    hanako,  # noqa: F401
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.drf_urlconf")]
PORTFOLIO = "/drf/portfolio"


@pytest.fixture
def her_token(hanako: Any, settings: Any, wide_geoip_dir: Path) -> Iterator[tuple[Any, str]]:  # noqa: F811
    """Her laptop's history (Tokyo, Nagoya), then her app's token at home, used every ten minutes."""
    settings.AUTHGUARD_GEOIP_PATH = str(wide_geoip_dir)
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        home = _signed_in_after(t, [IP_TOKYO, IP_TOKYO, OCN_NAGOYA] * 4)
        t.shift(timedelta(hours=1))
        app = api(IP_TOKYO, UA_CHROME_WIN)  # her API client, keeping her laptop's device cookie (docs/drf.md)
        app.cookies["authguard_device"] = home.cookies["authguard_device"].value
        answer = app.post(
            "/api/auth/token", {"username": "hanako", "password": HANAKO_PASSWORD}, format="json"
        )
        assert answer.status_code == 200, answer.content
        token = answer.json()["token"]
        for _ in range(3):
            t.shift(timedelta(minutes=10))
            assert with_token(app, token).get(PORTFOLIO).status_code == 200
        yield t, token, app
    finally:
        traveller.stop()


def _call(ip: str, token: str, app: Any) -> int:
    """The token called from ``ip`` with a copy of her app's cookie jar (the infostealer's copy)."""
    copy = api(ip, UA_CHROME_WIN)
    for name, morsel in app.cookies.items():
        copy.cookies[name] = morsel.value
    return with_token(copy, token).get(PORTFOLIO).status_code


def test_held_a_copied_token_straight_from_osaka_a_minute_after_her_call_ends(her_token: Any) -> None:
    t, token, app = her_token
    t.shift(timedelta(seconds=60))
    assert _call(OCN_OSAKA, token, app) != 200
    assert not Token.objects.filter(key=token).exists()
    assert "impossible_travel" in LoginEvent.objects.order_by("pk").last().reasons


def test_a_copied_token_that_merges_her_tokyo_place_away_is_still_measured_from_her_call(
    her_token: Any,
) -> None:
    """Secure: the copied token's call from Osaka a minute after her app's call from Tokyo ends the token
    (400 km in a minute), as it does straight away; otherwise the copy serves itself her portfolio and
    orders, and is re-anchored in Osaka for the rest of the token's day.

    Free hops, ten seconds apart: an unplaced OCN address, the Numazu block placed with a 100 km radius (its
    entry replaces her Tokyo one: "the same place" after both radii), the unplaced address, the Toyohashi
    block (replaces Numazu: two 100 km radii). Osaka's re-score measures travel from Toyohashi alone."""
    t, token, app = her_token
    for ip in [OCN_UNPLACED, OCN_NUMAZU_WIDE, OCN_UNPLACED, OCN_WIDE]:
        t.shift(timedelta(seconds=10))
        assert _call(ip, token, app) == 200
    t.shift(timedelta(seconds=20))
    code = _call(OCN_OSAKA, token, app)
    recorded = [(e.ip, e.outcome, e.reasons) for e in LoginEvent.objects.order_by("pk")][-2:]
    assert code != 200 and not Token.objects.filter(key=token).exists(), (code, recorded)
