"""A copy used beside her in blocks of an hour (red team, round twenty-one; authguard.sessions.places).

The return rule measured its speed from when the session *arrived* at the far place: a copy used from Osaka
in 55-minute blocks, each begun a minute after her last call from Tokyo, came back at "392 km/h". It is now
measured from when the session was last seen there. Each test failed on the code before. Real views, the
real risk engine, the test GeoIP databases; time-machine for time.
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

from .conftest import IP_OSAKA, IP_TOKYO
from .test_copy_walkarounds import (  # noqa: F401 (fixtures)
    PORTFOLIO,
    _her_app,
    _token_at,
    rt16_geoip,
    rt16_geoip_dir,
)
from .test_sessions_binding_anchor import (  # noqa: F401 (fixtures)
    START,
    _jar,
    _signed_in_after,
    _use,
    hanako,
)
from .test_sessions_binding_anchor import _state as _session_state


def _binding(token: str) -> Any:
    return TokenActivity.objects.filter(token_digest=_digest(token)).values_list("binding", flat=True).first()


def _recorded(user: Any, since: int = 0) -> list[Any]:
    return [(e.ip, e.outcome, e.reasons) for e in LoginEvent.objects.filter(user=user).order_by("pk")][since:]


# -- 1. blocks of use: the speed rule counted from the arrival, never from the last request there --------


#: Her day and his, in blocks: (who, address). Each block is six calls eleven minutes apart, starting one
#: minute after the other holder's last call: 56 minutes after the other holder's block began (3,360 s;
#: Tokyo-Osaka is 366 km with both radii subtracted, 3,294 s at MAX_KMH).
SHIFTS = [("her", IP_TOKYO), ("thief", IP_OSAKA)] * 6
BLOCK = (1, 11, 11, 11, 11, 11)


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.battery(66)
def test_a_copied_token_used_in_osaka_in_hour_blocks_a_minute_from_her_calls_is_never_ended(
    hanako: Any,  # noqa: F811
    rt16_geoip: Path,  # noqa: F811
) -> None:
    """places.in_two_places measures a return from a place ``there`` 366 km away (Tokyo-Osaka, radii
    subtracted) by the time since the token *arrived* there (``since`` of its entry), never since it was
    last used there. The thief's copy of her app's token (and device cookie) is used from her Osaka office
    network (KDDI, her history: allowed) for 55 minutes, a call every eleven; one minute after his last
    call her app calls from Tokyo. The token was in Osaka a minute ago (22,000 km/h), but it *arrived* in
    Osaka 56 minutes ago: 392 km/h, under MAX_KMH, and it left Tokyo as long ago (> TWO_PLACES_SECONDS). Her
    block of 55 minutes follows, and his next one starts one minute after her last call, 56 minutes after
    her arrival. Two holders, four hundred kilometres apart, alternate all day, a minute apart at every
    switch; the token is never ended, nothing is recorded (allowed re-scores are not events)."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10).cookies["authguard_device"].value
        token = _token_at(IP_TOKYO, device)
        events = LoginEvent.objects.filter(user=hanako).count()
        served = []
        for who, ip in SHIFTS:
            for minute in BLOCK:  # a block of 55 minutes, one minute after the other's last call
                t.shift(timedelta(minutes=minute))
                served.append((who, with_token(_her_app(ip, device), token).get(PORTFOLIO).status_code))
            if served[-1][1] != 200:
                break
        state = _binding(token)
    finally:
        traveller.stop()

    switches = sum(1 for a, b in zip(served, served[1:], strict=False) if a[0] != b[0])
    assert not all(code == 200 for _who, code in served), (
        f"a copied token used from Osaka (366 km) in 55-minute blocks, each starting one minute after her "
        f"app's last call from Tokyo, is served all day ({len(served)} calls, {switches} switches one minute "
        f"apart); recorded: {_recorded(hanako, events)}; places: {state and state.get('h')}"
    )
    assert not Token.objects.filter(key=token).exists()


@pytest.mark.django_db
@pytest.mark.battery(62)
def test_a_copied_session_used_in_osaka_in_hour_blocks_a_minute_from_her_requests_is_never_held(
    hanako: Any,  # noqa: F811
    rt16_geoip: Path,  # noqa: F811
) -> None:
    """The same for her browser session's whole cookie jar (session cookie and device cookie):
    rescoring.check_binding uses the same in_two_places. 55-minute blocks, each starting one minute after
    the other's last request: never held."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        home = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10)
        events = LoginEvent.objects.filter(user=hanako).count()
        served = []
        for who, ip in SHIFTS:
            for minute in BLOCK:
                t.shift(timedelta(minutes=minute))
                served.append((who, _use(home if who == "her" else _jar(home, ip))))
            if served[-1][1] != 200:
                break
        state = _session_state(home)
    finally:
        traveller.stop()

    assert not all(code == 200 for _who, code in served), (
        f"a copied session used from Osaka in 55-minute blocks, each one minute after her last request from "
        f"Tokyo, is served all day ({len(served)} requests); recorded: {_recorded(hanako, events)}; "
        f"places: {state.get('h')}"
    )
