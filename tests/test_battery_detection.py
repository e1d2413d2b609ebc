"""Battery case 62 (issue 13): a stolen device cookie (infostealer) replayed from a clean residential line.

The thief has the victim's real device cookie and the user agent of that browser, and signs in with the
right password from a residential address in Japan that no list flags. The cookie must count as evidence,
not identity: the login is stepped up through the live store and the shipped policy.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from authguard.choices import Action
from authguard.risk.engine import score_login
from authguard.risk.history import DatabaseHistory, trusted_until

from .conftest import IP_OSAKA, IP_TOKYO
from .factories import T0, ctx

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _login(user, **kwargs):
    login = ctx(user=user.username, **kwargs)
    object.__setattr__(login, "user_id", user.pk)
    return login


def _history_of(user, days: int = 30) -> DatabaseHistory:
    history = DatabaseHistory()
    for day in range(days):
        login = _login(user, ip=IP_TOKYO, at=T0 + timedelta(days=day))
        history.learn(login, history.evidence(login))
    return history


@pytest.mark.battery(62)
def test_battery_62_stolen_device_cookie_from_a_clean_residential_line_is_stepped_up(user_factory):
    victim = user_factory("victim62")
    history = _history_of(victim)
    at = T0 + timedelta(days=30, hours=5)
    # The customer's own browser at home: allowed as a known device.
    own, _ = score_login(_login(victim, ip=IP_TOKYO, at=at), history)
    assert own.action == Action.ALLOW
    # The same cookie and user agent from a clean residential line in another city, on another ISP.
    stolen = _login(victim, ip=IP_OSAKA, at=at)
    evidence = history.evidence(stolen)
    assert evidence.device.known and not evidence.ctx.geo.residential_proxy
    assessment, _ = score_login(stolen, history)
    assert assessment.action == Action.STEP_UP
    assert {"device_new_network", "device_new_city"} <= set(assessment.reasons)
    assert "known_device" not in {f.code for f in assessment.findings}


@pytest.mark.battery(62)
def test_battery_62_a_remembered_device_does_not_launder_a_stolen_cookie(user_factory):
    victim = user_factory("victim62b")
    history = _history_of(victim)
    at = T0 + timedelta(days=30, hours=5)
    history.trust_device(_login(victim, ip=IP_TOKYO, at=at), trusted_until(_login(victim, at=at)))
    stolen = _login(victim, ip=IP_OSAKA, at=at + timedelta(hours=1))
    assert history.evidence(stolen).device.trusted
    assessment, _ = score_login(stolen, history)
    assert assessment.action == Action.STEP_UP
    remembered = next(f for f in assessment.findings if f.code == "remembered_device")
    assert remembered.score == -10  # not the full -25 a remembered device gets at home
