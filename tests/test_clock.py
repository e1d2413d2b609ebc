"""authguard.clock: the node's time corrected to the database's, and time-machine still moving it.

The real skewed node (faketime) is in tests/test_faults_clock.py; here both clocks agree, as in every test.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from authguard import clock
from authguard.checks.clock import check_clock_settings, check_clock_skew
from authguard.risk.signals import NetworkHop

from .conftest import IP_OSAKA, IP_TOKYO, OrderApi
from .factories import T0, ctx, history_of

LATER = datetime(2031, 4, 1, 9, 0, tzinfo=UTC)


def test_os_time_is_the_operating_systems_clock_out_of_reach_of_time_machine() -> None:
    before = time.time()
    with time_machine.travel(LATER, tick=False):
        assert time.time() == LATER.timestamp()
        seen = clock.os_time()
    assert seen is not None and before - 1 < seen < time.time() + 1


@pytest.mark.django_db
def test_time_travel_moves_authguard_clock_after_a_measurement(on_postgres: bool) -> None:
    measured = clock.measure()
    if on_postgres:
        # The same machine: PostgreSQL's clock and this process's agree, so nothing is corrected.
        assert measured is not None and abs(measured.offset) < 1 and measured.correction == 0
        assert measured.round_trip < 0.5 and clock.skew() == measured
    else:
        assert measured is None  # SQLite's clock is this process's own: nothing to measure
    with time_machine.travel(LATER, tick=False) as traveller:
        assert clock.now() == LATER == timezone.now()
        # Measured while travelling: both clocks it compares are out of time-machine's reach.
        again = clock.measure()
        assert (again is None) == (measured is None) and (again is None or again.correction == 0)
        traveller.shift(timedelta(hours=2))
        assert clock.now() == LATER + timedelta(hours=2)
        assert clock.timestamp() == (LATER + timedelta(hours=2)).timestamp()


def test_negative_elapsed_time_beyond_the_tolerance_is_from_the_future(settings: Any) -> None:
    # Twice the tolerance (2 s): two uncorrected nodes each within it disagree by up to 4 s.
    assert not clock.is_from_the_future(0) and not clock.is_from_the_future(-3.9)
    assert clock.is_from_the_future(-4.1) and clock.is_from_the_future(-7200)
    settings.AUTHGUARD_CLOCK = {"tolerance_seconds": 10}
    assert not clock.is_from_the_future(-19) and clock.is_from_the_future(-21)


@pytest.mark.usefixtures("geoip")
def test_a_last_sign_in_from_the_future_is_a_network_hop_not_long_ago() -> None:
    # The last sign-in was written by a node 90 s ahead: the relay's elapsed time is negative.
    store = history_of(ctx(ip=IP_TOKYO, at=T0 + timedelta(seconds=90)))
    relay = ctx(ip=IP_OSAKA, device=None, at=T0 + timedelta(seconds=5))
    found = list(NetworkHop().evaluate(store.evidence(relay)))
    assert [(f.code, f.evidence["seconds"]) for f in found] == [("network_hop", -85)]
    # Long after, on another network: no hop, as before.
    assert not list(
        NetworkHop().evaluate(store.evidence(ctx(ip=IP_OSAKA, device=None, at=T0 + timedelta(hours=2))))
    )


@pytest.mark.django_db
def test_a_session_signed_in_in_the_future_is_ended(alice: Any, settings: Any) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = []
    with time_machine.travel(LATER, tick=False) as traveller:
        browser = OrderApi(REMOTE_ADDR=IP_TOKYO)
        browser.login("alice", "correct horse battery")
        assert browser.get("/api/portfolio").status_code == 200
        traveller.move_to(LATER - timedelta(seconds=1))  # within the tolerance: two nodes a second apart
        assert browser.get("/api/portfolio").status_code == 200
        # This node is now 60 s behind the one that signed the session in: no proof of recent activity.
        traveller.move_to(LATER - timedelta(seconds=60))
        assert browser.get("/api/portfolio").status_code in (401, 403)


@pytest.mark.parametrize(
    "value",
    [
        {"tolerance_seconds": -1},
        {"measure_seconds": "60"},
        {"tolerence_seconds": 2},
        {"tolerance_seconds": True},
        # Round thirteen: every freshness rule accepts twice the tolerance ahead; a day would stretch them.
        {"tolerance_seconds": 61},
        {"tolerance_seconds": 86_400},
        5,
    ],
)
def test_e180_for_an_invalid_clock_setting(settings: Any, value: Any) -> None:
    settings.AUTHGUARD_CLOCK = value
    assert [m.id for m in check_clock_settings(None)] == ["authguard.E180"]


def test_the_largest_tolerance_passes_the_check(settings: Any) -> None:
    settings.AUTHGUARD_CLOCK = {"tolerance_seconds": 60, "measure_seconds": 0}
    assert check_clock_settings(None) == []


@pytest.mark.django_db
def test_the_skew_check_is_silent_when_the_clocks_agree(settings: Any) -> None:
    settings.AUTHGUARD_CLOCK = {"measure_seconds": 30}
    assert check_clock_settings(None) == []
    assert check_clock_skew(None, databases=["default"]) == []
    assert check_clock_skew(None) == []  # without --database: no query
    call_command("check", "--database", "default", verbosity=0)


@pytest.mark.django_db
def test_an_activity_time_in_the_future_cannot_stretch_the_idle_timeout(alice: Any, settings: Any) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = []
    idle = settings.AUTHGUARD_SESSION_IDLE_SECONDS = 900
    with time_machine.travel(LATER, tick=False) as traveller:
        browser = OrderApi(REMOTE_ADDR=IP_TOKYO)
        browser.login("alice", "correct horse battery")
        traveller.move_to(LATER + timedelta(seconds=600))  # a node 10 minutes ahead serves one request
        assert browser.get("/api/portfolio").status_code == 200
        traveller.move_to(LATER + timedelta(seconds=10))  # back on time: still signed in, activity reset
        assert browser.get("/api/portfolio").status_code == 200
        # Idle from the request at +10 s, not from the "+600 s" the fast node wrote.
        traveller.move_to(LATER + timedelta(seconds=10 + idle + 1))
        assert browser.get("/api/portfolio").status_code in (401, 403)
