"""Red team, round twenty-three: a strong verification carried across a re-scored move.

A session or API token that moves materially (another network) is re-scored as a fresh sign-in from there
would be; allowed, it is rebound and goes on. Its strong verification from the customer's own context
(``st`` of the session, the token's cached strength) goes on with it: a copy replayed from elsewhere within
``AUTHGUARD_STEP_UP_FRESH_SECONDS`` of her step-up passes ``@step_up_required`` / ``StepUpRequired`` views
that a fresh sign-in from the same place could not. Each test failed before a re-score cleared the step-up
(``sessions.state.rebind``, ``sessions.token_binding``). Real views, the real middleware and risk engine,
synthetic GeoIP databases, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

# isort: split
# test_drf skips this module without djangorestframework (and fails under CI=true): imported first.
from .test_drf import api, with_token

# isort: split
from rest_framework.authtoken.models import Token

from authguard.models import LoginEvent, TokenActivity
from authguard.sessions.token_activity import _digest

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, IP_V6_FUKUOKA, totp_token
from .test_copy_walkarounds import _her_app
from .test_sessions_binding_anchor import (  # noqa: F401 (fixtures)
    START,
    _jar,
    _signed_in_after,
    hanako,
    rt_geoip,
    rt_geoip_dir,
)
from .test_sessions_binding_anchor import _state as _session_state


def _recorded(user: Any, since: int = 0) -> list[Any]:
    return [(e.ip, e.outcome, e.reasons) for e in LoginEvent.objects.filter(user=user).order_by("pk")][since:]


def her_hotel_token(t: Any, user: Any) -> tuple[str, str]:
    """Her history at home (OCN Tokyo) and office (KDDI Osaka); five hours later her laptop's API client
    signs in at a Fukuoka hotel (a network it never used: a TOTP step-up). Her device cookie and the token."""
    home = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10)
    device = home.cookies["authguard_device"].value
    t.shift(timedelta(hours=5))  # a business trip
    login = _her_app(IP_V6_FUKUOKA, device).post(
        "/api/auth/token", {"username": "hanako", "password": HANAKO_PASSWORD}, format="json"
    )
    assert login.status_code == 401 and login.json()["status"] == "step_up_required", login.content
    t.shift(timedelta(seconds=20))
    passed = _her_app(IP_V6_FUKUOKA, device).post(
        "/api/auth/step-up/totp",
        {"step_up_token": login.json()["step_up_token"], "code": totp_token(user.totp)},
        format="json",
    )
    return device, passed.json()["token"]


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_copied_session_rescored_at_her_office_withdraws_with_her_fresh_tokyo_step_up(
    hanako: Any,  # noqa: F811
    rt_geoip: Path,  # noqa: F811
) -> None:
    """hanako re-verifies with her TOTP in her Tokyo browser to withdraw (sessions.state.mark_strong: ``st``).
    An infostealer's copy of her cookie jar is replayed 90 s later from KDDI Osaka (her office's ISP):
    rescoring.check_binding sees another network, re-scores, the engine allows it (her history) and
    state.rebind moves the binding and anchor there, leaving ``st``/``sm`` as they were; so
    state.has_fresh_verification answers yes at Osaka and ``StepUpRequired`` serves the withdrawal. A
    fresh sign-in from there, allowed just the same, would have no strong verification (403)."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        home = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10)
        assert home.post("/drf/withdraw").status_code == 403  # no fresh factor yet
        t.shift(timedelta(seconds=30))
        reverified = home.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)})
        assert reverified.status_code == 302, reverified
        assert home.post("/drf/withdraw").status_code == 200  # her own withdrawal
        events = LoginEvent.objects.filter(user=hanako).count()
        t.shift(timedelta(seconds=90))
        thief = _jar(home, IP_OSAKA)  # an infostealer's copy of the jar, replayed from her office's ISP
        answer = thief.post("/drf/withdraw")
        recorded = _recorded(hanako, events)
        state = _session_state(thief)
        # The move was re-scored and allowed (rebound and anchored at Osaka), not waved through unseen.
        assert state["r"] and state["b"]["ip"] == IP_OSAKA and state["an"][3] == 2516, state
    finally:
        traveller.stop()
    assert answer.status_code in (401, 403), (
        f"a copy of her session replayed from another network (KDDI Osaka) 90 s after her TOTP re-verify in "
        f"Tokyo is re-scored, allowed as a fresh sign-in would be, and withdraws on her step-up: "
        f"{answer.status_code} {answer.content!r}; recorded: {recorded}"
    )


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_copied_token_rescored_at_her_office_withdraws_with_the_step_up_that_issued_it(
    hanako: Any,  # noqa: F811
    rt_geoip: Path,  # noqa: F811
) -> None:
    """Her laptop's API client signs in at a Fukuoka hotel (a network it never used: a TOTP step-up) and
    gets a token strong for ``StepUpRequired`` for 300 s. The thief's own client replays a copy of the token
    a minute later from KDDI Osaka (her office's ISP): token_binding.check re-scores the move, the engine
    allows it (her history), and drf.StepUpRequired._token_fresh reads the token's cached strength, which no
    move touches: the withdrawal is served. A fresh token sign-in from the same place would get no
    strength."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device, token = her_hotel_token(t, hanako)
        assert with_token(_her_app(IP_V6_FUKUOKA, device), token).post("/drf/withdraw").status_code == 200
        events = LoginEvent.objects.filter(user=hanako).count()
        t.shift(timedelta(seconds=60))
        answer = with_token(api(IP_OSAKA), token).post("/drf/withdraw")  # his own client, no cookie
        recorded = _recorded(hanako, events)
        activity = TokenActivity.objects.filter(token_digest=_digest(token)).first()
        # The move was re-scored, not waved through unseen: allowed (rebound and anchored at Osaka) before
        # round forty-eight; since, measured from Fukuoka a minute ago, refused and the token ended.
        assert activity is None or (
            activity.binding["b"]["ip"] == IP_OSAKA and activity.binding["an"][3] == 2516
        ), activity.binding
        assert activity is not None or not Token.objects.filter(key=token).exists()
    finally:
        traveller.stop()
    assert answer.status_code in (401, 403), (
        f"a copy of her token replayed from KDDI Osaka a minute after her TOTP step-up in Fukuoka is "
        f"re-scored, allowed, and withdraws on the strength of her step-up: {answer.status_code} "
        f"{answer.content!r}; recorded: {recorded}"
    )
