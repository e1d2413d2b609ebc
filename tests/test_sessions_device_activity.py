"""A device cookie in two places at once (issue 13): signing in from another browser session while a
verified session bound to the same cookie was active minutes ago somewhere else is a copy.

The live half of the infostealer defence: the replay has no sessions, so this evidence is tested here, on
real sign-ins through the demo's JSON API, the real session middleware and the test cache.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from authguard.choices import Action
from authguard.models import LoginEvent, Notification
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.risk.engine import score_login
from authguard.risk.findings import configured_signals
from authguard.risk.policy import Thresholds
from authguard.risk.signals import DeviceCookie
from authguard.sessions import device_activity
from authguard.sessions.device_activity import DeviceActivity

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import IP_DOCOMO, IP_OSAKA, IP_SG_VPS, IP_TOKYO, IP_TOKYO_2, IP_V6_FUKUOKA, UA_CHROME_WIN
from .factories import T0, ctx, daily, history_of

pytestmark = [pytest.mark.usefixtures("geoip")]

DEVICE = "authguard_device"
START = datetime(2026, 12, 4, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


# -- the signal ------------------------------------------------------------------------------------------


def _active(
    at: datetime,
    *,
    ip: str = IP_TOKYO,
    lat: float | None = 35.6895,
    lon: float | None = 139.6917,
    acc: float | None = 10,
    asn: int | None = 4713,
) -> DeviceActivity:
    return DeviceActivity(
        session="another", at=at.timestamp(), ip=ip, asn=asn, latitude=lat, longitude=lon, accuracy_km=acc
    )


def _codes(store: Any, login: Any) -> dict[str, Any]:
    return {f.code: f for f in DeviceCookie().evaluate(store.evidence(login))}


def test_a_device_cookie_used_in_tokyo_minutes_ago_signing_in_from_osaka_is_stepped_up() -> None:
    # Alice's PC signs in from Tokyo and from her Osaka office: both are its own places, so a copy of its
    # cookie replayed from Osaka passes every history test. Her PC is in use in Tokyo right now.
    store = history_of(*daily(10), *daily(10, start=T0 + timedelta(days=10), ip=IP_OSAKA))
    login = ctx(at=T0 + timedelta(days=21), ip=IP_OSAKA)
    assert "known_device" in _codes(store, login)
    copied = replace(login, device_activity=_active(login.time - timedelta(minutes=4)))
    found = _codes(store, copied)
    assert "known_device" not in found  # SECURITY: no discount for a copy
    assert found["device_in_two_places"].score == 45
    assert found["device_in_two_places"].evidence["seconds"] == 240
    assert found["device_in_two_places"].evidence["km"] > 300
    assessment, _ = score_login(
        copied, store, signals=configured_signals(), thresholds=Thresholds(step_up=40, deny=100)
    )
    assert assessment.action == Action.STEP_UP
    allowed, _ = score_login(
        login, store, signals=configured_signals(), thresholds=Thresholds(step_up=40, deny=100)
    )
    assert allowed.action == Action.ALLOW


def test_only_another_place_within_the_window_counts() -> None:
    store = history_of(*daily(10))
    login = ctx(at=T0 + timedelta(days=11), ip=IP_TOKYO_2)
    # The same city: a browser reopened at home after its session cookie ended with it.
    assert "device_in_two_places" not in _codes(store, replace(login, device_activity=_active(login.time)))
    # Older than device_in_two_places_seconds (900): the other session may have ended since.
    at_osaka = ctx(at=T0 + timedelta(days=11), ip=IP_OSAKA)
    old = _active(at_osaka.time - timedelta(seconds=901))
    assert "device_in_two_places" not in _codes(store, replace(at_osaka, device_activity=old))
    recent = _active(at_osaka.time - timedelta(seconds=899))
    assert "device_in_two_places" in _codes(store, replace(at_osaka, device_activity=recent))
    # A mobile carrier placed 200 km around Tokyo is not provably elsewhere.
    phone = ctx(at=T0 + timedelta(days=11), ip=IP_DOCOMO)
    assert "device_in_two_places" not in _codes(store, replace(phone, device_activity=recent))
    # Unplaced on one side: another network and /24 (/48) counts instead, the same network does not.
    unplaced = _active(at_osaka.time, lat=None, lon=None, acc=None, ip="2001:db8:9::1", asn=64500)
    assert "device_in_two_places" in _codes(store, replace(at_osaka, device_activity=unplaced))
    same_asn = _active(at_osaka.time, lat=None, lon=None, acc=None, ip="2001:db8:9::1", asn=2516)
    assert "device_in_two_places" not in _codes(store, replace(at_osaka, device_activity=same_asn))
    # A cookie whose DBSC key proved possession is on its own device.
    bound = replace(at_osaka, device_activity=recent, dbsc="bound_ok")
    assert "device_in_two_places" not in _codes(store, bound)


def test_the_finding_needs_no_history_and_can_be_switched_off() -> None:
    store = history_of()
    login = replace(ctx(at=T0, ip=IP_V6_FUKUOKA), device_activity=_active(T0 - timedelta(minutes=1)))
    assert "device_in_two_places" in _codes(store, login)
    assert not [f for f in DeviceCookie(device_in_two_places=0).evaluate(store.evidence(login))]


def test_a_cache_entry_that_is_not_ours_reads_as_none() -> None:
    for junk in ("x", [1, 2], ["s", "t", None, None, None, None, None], {"session": "s"}):
        cache.set("authguard:device-active:abc", junk)
        assert device_activity.read("abc") is None
    assert device_activity.session_digest("key") != "key"


# -- real sign-ins -----------------------------------------------------------------------------------------


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100}, totp=True)


def _client(ip: str) -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)


def _login(client: Client) -> Any:
    return client.post(
        "/api/login", {"username": "hanako", "password": PASSWORD}, content_type="application/json"
    )


@pytest.fixture
def at_home(hanako: Any) -> Client:
    """Hanako's PC in Tokyo, signed in and using the portal."""
    client = _client(IP_TOKYO)
    client.get("/api/csrf")  # the browser has visited before: it holds a device cookie
    assert _login(client).json()["status"] == "ok"
    assert client.get("/api/portfolio").status_code == 200
    return client


def _copy_of_device_cookie(victim: Client, ip: str) -> Client:
    thief = _client(ip)
    thief.cookies[DEVICE] = victim.cookies[DEVICE].value
    return thief


def _in_use(client: Client) -> DeviceActivity | None:
    """What the cache says of the device cookie ``client`` holds."""
    return device_activity.read(device_hash(device_id_from_cookie(client.cookies[DEVICE].value)))


def _two_places() -> list[LoginEvent]:
    return [e for e in LoginEvent.objects.all() if "device_in_two_places" in e.reasons]


@pytest.mark.battery(62)
@pytest.mark.django_db
def test_a_copied_device_cookie_signing_in_while_the_customer_is_active_is_stepped_up(
    at_home: Client,
) -> None:
    thief = _copy_of_device_cookie(at_home, IP_OSAKA)
    answer = _login(thief)
    assert answer.status_code == 200 and answer.json()["status"] == "step_up_required"
    (event,) = _two_places()
    assert event.ip == IP_OSAKA and event.action == Action.STEP_UP
    finding = next(f for f in event.findings if f["code"] == "device_in_two_places")
    assert finding["evidence"]["km"] > 300 and 0 <= finding["evidence"]["seconds"] < 60
    # The thief's pending session reaches nothing; the customer's session goes on.
    assert thief.get("/api/portfolio").status_code == 401
    assert at_home.get("/api/portfolio").status_code == 200
    # The customer is told at once (malware on her computer reads its cookies), once an hour at most.
    (warning,) = Notification.objects.filter(kind="device_cookie_copied")
    assert (
        warning.user == event.user
        and warning.context["city"] == "Osaka"
        and warning.context["ip"] == IP_OSAKA
    )
    _login(_copy_of_device_cookie(at_home, IP_OSAKA))
    assert len(_two_places()) == 2 and Notification.objects.filter(kind="device_cookie_copied").count() == 1


@pytest.mark.django_db
def test_the_cache_holds_a_digest_of_the_session_not_its_key(at_home: Client) -> None:
    found = _in_use(at_home)
    session_key = at_home.cookies[settings.SESSION_COOKIE_NAME].value
    assert found is not None and found.ip == IP_TOKYO and found.asn == 4713
    assert found.session == device_activity.session_digest(session_key) and session_key not in repr(found)


@pytest.mark.django_db
def test_the_same_browser_signing_in_again_elsewhere_is_not_two_places(at_home: Client) -> None:
    # The customer's own browser (its session cookie with it) moved to Osaka and signs in again.
    assert _in_use(at_home) is not None
    moved = _client(IP_OSAKA)
    for name, morsel in at_home.cookies.items():
        moved.cookies[name] = morsel.value
    _login(moved)
    assert _two_places() == []
    assert not Notification.objects.filter(kind="device_cookie_copied").exists()


@pytest.mark.django_db
def test_after_signing_out_the_device_is_no_longer_in_use_there(at_home: Client) -> None:
    token = at_home.get("/api/csrf").json()["csrf_token"]
    assert _in_use(at_home) is not None
    at_home.post("/api/logout", HTTP_X_CSRFTOKEN=token)
    assert _in_use(at_home) is None
    _login(_copy_of_device_cookie(at_home, IP_OSAKA))
    assert _two_places() == []


@pytest.mark.django_db
def test_a_session_idle_for_longer_than_the_window_is_not_two_places(hanako: Any) -> None:
    with time_machine.travel(START, tick=False) as traveller:
        home = _client(IP_TOKYO)
        home.get("/api/csrf")
        assert _login(home).json()["status"] == "ok"
        home.get("/api/portfolio")
        assert _in_use(home) is not None
        traveller.shift(timedelta(minutes=16))
        _login(_copy_of_device_cookie(home, IP_OSAKA))
    assert _two_places() == []


@pytest.mark.django_db
def test_activity_is_recorded_once_a_minute_and_only_by_verified_sessions(
    at_home: Client, hanako: Any
) -> None:
    first = _in_use(at_home)
    assert first is not None
    at_home.get("/api/portfolio")
    assert _in_use(at_home) == first  # within the minute: not written again
    # A sign-in held at step-up (a hosting address) records nothing for its device.
    risky = _client(IP_SG_VPS)
    risky.get("/api/csrf")
    _login(risky)
    risky.get("/api/portfolio")
    assert LoginEvent.objects.filter(ip=IP_SG_VPS).get().action != Action.ALLOW
    assert _in_use(risky) is None
