"""Session timeouts (battery case 20): idle after ``AUTHGUARD_SESSION_IDLE_SECONDS`` (1 h), absolute after
``AUTHGUARD_SESSION_ABSOLUTE_SECONDS`` (24 h), whatever the activity. Time moves with time-machine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

from authguard.sessions import state as sessions_state

from .conftest import IP_TOKYO, UA_CHROME_WIN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def signed_in(user_factory: Any, browser_at: Any) -> Client:
    user_factory("alice")
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice").url == "/"
    return client


def portfolio_status(client: Client) -> int:
    return client.get("/").status_code


@pytest.mark.battery(20)
def test_battery_20_an_hour_idle_signs_the_session_out(signed_in: Client) -> None:
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=59)):
        assert portfolio_status(signed_in) == 200
    with time_machine.travel(start + timedelta(minutes=59 + 61)):
        response = signed_in.get("/")
        assert response.status_code == 302 and response.url.startswith("/login/")
        assert SESSION_KEY not in signed_in.session
        assert signed_in.get("/api/portfolio").json()["status"] == "login_required"


def test_activity_keeps_the_session_alive_until_the_absolute_limit(signed_in: Client) -> None:
    start = timezone.now()
    for minutes in range(50, 24 * 60, 50):
        with time_machine.travel(start + timedelta(minutes=minutes)):
            assert portfolio_status(signed_in) == 200, minutes
    with time_machine.travel(start + timedelta(hours=24, minutes=1)):
        assert portfolio_status(signed_in) == 302
        assert SESSION_KEY not in signed_in.session


def test_the_timeouts_are_settings(signed_in: Client, settings: Any) -> None:
    settings.AUTHGUARD_SESSION_IDLE_SECONDS = 15 * 60  # e.g. AAL3's 15 minutes
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=16)):
        assert portfolio_status(signed_in) == 302


def test_last_activity_is_written_at_most_once_a_minute(signed_in: Client) -> None:
    first = signed_in.session[sessions_state.STATE_KEY]["w"]
    signed_in.get("/")
    assert signed_in.session[sessions_state.STATE_KEY]["w"] == first
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        signed_in.get("/")
    assert signed_in.session[sessions_state.STATE_KEY]["w"] > first


def test_a_pending_session_times_out_too(user_factory: Any, totp_factory: Any, browser_at: Any) -> None:
    from .conftest import IP_SG_VPS

    totp_factory(user_factory("bob"))
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    assert client.sign_in("bob").url.startswith("/authguard/step-up/")
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = client.get("/authguard/step-up/")
        assert response.status_code == 302 and response.url.startswith("/login/")
