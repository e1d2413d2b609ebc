"""Red team, round twenty-four: a step-up carried by a copy that moves without a re-score.

Round twenty-three cleared ``st``/``sm``/``fv`` when a re-score allows a moved session (``state.rebind`` with
``rescored``). A move that is not material (``rescoring.check_binding`` -> ``"moved"``: the same network,
another address placed nearby or coarsely) is rebound with no re-score and keeps her step-up. A mobile
carrier's addresses are placed coarsely (200 km), so a copy of her phone's cookie jar replayed through the
same carrier 400 km away is "no move" and withdraws on the TOTP step-up she made a minute before. Fixed: a
step-up holds at the address it was made from (``state.rebind``, ``token_binding``); each test failed before.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

# isort: split
from .test_drf import api, with_token

# isort: split
from authguard.models import LoginEvent

from .conftest import IP_DOCOMO, IP_OSAKA, IP_TOKYO, totp_token
from .test_sessions_binding_anchor import (  # noqa: F401 (fixtures)
    DOCOMO_OSAKA,
    START,
    _jar,
    _signed_in_after,
    hanako,
    rt_geoip,
    rt_geoip_dir,
)
from .test_sessions_binding_anchor import _state as _session_state


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_copy_of_her_phones_session_400_km_away_on_her_carrier_withdraws_on_her_step_up(
    hanako: Any,  # noqa: F811
    rt_geoip: Path,  # noqa: F811
) -> None:
    """hanako uses the portal from her phone on NTT docomo in Tokyo (her history: docomo, home, office),
    re-verifies with her TOTP and withdraws. An infostealer's copy of the phone's cookie jar is replayed
    60 s later through a docomo address GeoIP places in Osaka, 400 km away: both places carry docomo's
    200 km radius, so places.is_material_change sees no provable move, check_binding answers "moved",
    state.rebind keeps ``st`` (no ``rescored``), and StepUpRequired serves the copy's withdrawal. A fresh
    sign-in from there would hold no strong verification; a copy re-scored at her office (KDDI Osaka) now
    holds none either."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        phone = _signed_in_after(t, [IP_DOCOMO, IP_TOKYO, IP_OSAKA] * 6, at=IP_DOCOMO, totp=hanako.totp)
        assert phone.post("/drf/withdraw").status_code == 403
        t.shift(timedelta(seconds=30))
        assert phone.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)}).status_code == 302
        assert phone.post("/drf/withdraw").status_code == 200  # her own
        events = LoginEvent.objects.filter(user=hanako).count()
        t.shift(timedelta(seconds=60))
        thief = _jar(phone, DOCOMO_OSAKA)
        answer = thief.post("/drf/withdraw")
        state = _session_state(thief)
        rescored = LoginEvent.objects.filter(user=hanako).count() - events
    finally:
        traveller.stop()
    assert answer.status_code in (401, 403), (
        f"a copy of her phone's session replayed 400 km away (docomo Osaka) 60 s after her TOTP step-up in "
        f"Tokyo withdrew on it: {answer.status_code} {answer.content!r}; bound to {state['b']['ip']}, "
        f"st={state.get('st')}, re-score events: {rescored}"
    )


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_copy_of_her_session_on_her_own_isp_in_her_city_withdraws_on_her_step_up(
    hanako: Any,  # noqa: F811
    rt_geoip: Path,  # noqa: F811
) -> None:
    """The same from a residential proxy on her own ISP (OCN) in Tokyo: another address of the network,
    nearby: "moved", her step-up kept, the copy withdraws 90 s after her re-verification."""
    from .conftest import IP_TOKYO_2, totp_token

    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        home = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10)
        t.shift(timedelta(seconds=30))
        assert home.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)}).status_code == 302
        assert home.post("/drf/withdraw").status_code == 200
        t.shift(timedelta(seconds=90))
        thief = _jar(home, IP_TOKYO_2)
        answer = thief.post("/drf/withdraw")
    finally:
        traveller.stop()
    assert answer.status_code in (401, 403), (
        f"a copy of her session on another address of her ISP withdrew on her step-up: {answer.status_code}"
    )


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_copy_of_her_token_at_another_address_of_her_network_nearby_has_no_step_up(
    hanako: Any,  # noqa: F811
    rt_geoip: Path,  # noqa: F811
) -> None:
    """Her laptop's app signs in at a Fukuoka hotel (a network it never used: a TOTP step-up) and withdraws;
    a copy of the token a minute later from another address of the hotel's network nearby (no material
    move: rebound, not re-scored) finds no strength, and back at her address her app steps up again."""
    from .conftest import IP_V6_FUKUOKA
    from .test_copy_walkarounds import _her_app
    from .test_places_stepup_walkarounds import her_hotel_token

    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device, token = her_hotel_token(t, hanako)
        strong = with_token(_her_app(IP_V6_FUKUOKA, device), token).post("/drf/withdraw").status_code
        t.shift(timedelta(seconds=60))
        answer = with_token(api("2001:db8::99"), token).post("/drf/withdraw")
        again = with_token(_her_app(IP_V6_FUKUOKA, device), token).post("/drf/withdraw")
    finally:
        traveller.stop()
    assert strong == 200, "her own token, stepped up at the hotel, withdraws there"
    assert answer.status_code == 403 and answer.json()["status"] == "step_up_required", answer.content
    # Back at her own address the token still works, but what wants a fresh factor asks for one again.
    assert again.status_code == 403
