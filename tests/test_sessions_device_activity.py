"""A device cookie in two places at once (issue 13): used for an account too far from where the account's
verified session used it minutes ago, it is a copy, whatever cookies come with it.

The live half of the infostealer defence: the replay has no sessions, so this evidence is tested here, on
real sign-ins through the demo's JSON API, the real session middleware and the test cache.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from importlib import import_module
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
from authguard.sessions.state import STATE_KEY

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import (
    IP_DOCOMO,
    IP_JP_PROXY,
    IP_OSAKA,
    IP_SG_VPS,
    IP_TOKYO,
    IP_TOKYO_2,
    IP_V6_FUKUOKA,
    IP_V6_KUMAMOTO,
    IP_V6_SAPPORO,
    UA_CHROME_WIN,
    totp_token,
)
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
    # A mobile carrier placed 200 km around Tokyo is not provably 170 km from Nagano; Osaka's fixed line is.
    nagano = _active(at_osaka.time, lat=36.6486, lon=138.1948, acc=10)
    phone = ctx(at=T0 + timedelta(days=11), ip=IP_DOCOMO)
    assert "device_in_two_places" not in _codes(store, replace(phone, device_activity=nagano))
    assert "device_in_two_places" in _codes(store, replace(at_osaka, device_activity=nagano))
    # An address GeoIP cannot place proves no distance (a dual-stack line's other family may be one).
    unplaced = _active(at_osaka.time, lat=None, lon=None, acc=None, ip="2001:db8:9::1", asn=64500)
    assert "device_in_two_places" not in _codes(store, replace(at_osaka, device_activity=unplaced))
    # An activity from the future: within a clock's tolerance (60 s) it counts, beyond it it is junk.
    soon = _active(at_osaka.time + timedelta(seconds=59))
    assert "device_in_two_places" in _codes(store, replace(at_osaka, device_activity=soon))
    later = _active(at_osaka.time + timedelta(seconds=61))
    assert "device_in_two_places" not in _codes(store, replace(at_osaka, device_activity=later))
    # Not even a DBSC-proven cookie is excused: its short-lived bound cookie is copied with the rest.
    bound = replace(at_osaka, device_activity=recent, dbsc="bound_ok")
    assert "device_in_two_places" in _codes(store, bound)


def test_the_requests_own_live_session_moving_never_counts() -> None:
    # Its own session 1,400 km away on the same ISP a minute ago: a relay or cloud proxy changing its exit
    # city as often as a thief with the whole jar; the session binding re-scores it, not this finding.
    store = history_of()
    fukuoka = _active(T0 - timedelta(minutes=1), ip=IP_V6_FUKUOKA, lat=33.59, lon=130.40, acc=20, asn=17676)
    login = replace(ctx(at=T0, ip=IP_V6_SAPPORO), device_activity=fukuoka)
    assert "device_in_two_places" in _codes(store, login)
    assert "device_in_two_places" not in _codes(store, replace(login, device_activity_own=True))


def test_the_finding_needs_no_history_and_can_be_switched_off() -> None:
    store = history_of()
    login = replace(ctx(at=T0, ip=IP_V6_FUKUOKA), device_activity=_active(T0 - timedelta(minutes=1)))
    assert "device_in_two_places" in _codes(store, login)
    assert not [f for f in DeviceCookie(device_in_two_places=0).evaluate(store.evidence(login))]


def test_a_cache_entry_that_is_not_ours_reads_as_none() -> None:
    good = ["s", 1.5, "203.0.113.10", 4713, 35.7, 139.7, 10]
    key = device_activity._key("abc", "7")
    cache.set(key, good)
    assert device_activity.read("abc", "7") == DeviceActivity("s", 1.5, "203.0.113.10", 4713, 35.7, 139.7, 10)
    assert device_activity.read("abc", "8") is None  # another account's entry is not this one's
    nan, inf = float("nan"), float("inf")
    junk = (
        "x",
        [1, 2],
        {"session": "s"},
        [*good[:1], "t", *good[2:]],
        [*good[:1], nan, *good[2:]],
        [*good[:4], inf, *good[5:]],
        [*good[:3], True, *good[4:]],
        [*good[:6], nan],
    )
    for value in junk:
        cache.set(key, value)
        assert device_activity.read("abc", "7") is None, value
    assert device_activity.session_digest("key") != "key"


def _undecodable() -> None:
    raise ValueError("unsupported pickle protocol: 9")


class Undecodable:
    """Stored fine, but unpickling it raises what an entry of another Python or serializer raises."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_undecodable, ())


# -- real sign-ins -----------------------------------------------------------------------------------------


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100}, totp=True)


def _client(ip: str) -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)


def _login(client: Client, username: str = "hanako", password: str = PASSWORD) -> Any:
    return client.post(
        "/api/login", {"username": username, "password": password}, content_type="application/json"
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


def _in_use(client: Client, user: Any) -> DeviceActivity | None:
    """What the cache says of the device cookie ``client`` holds, for ``user``'s account."""
    device = device_hash(device_id_from_cookie(client.cookies[DEVICE].value))
    return device_activity.read(device, str(user.pk))


def _two_places() -> list[LoginEvent]:
    return [e for e in LoginEvent.objects.order_by("pk") if "device_in_two_places" in e.reasons]


def _last_event() -> LoginEvent:
    return LoginEvent.objects.order_by("-pk").first()


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
    assert warning.user == event.user and warning.context["city"] == "Osaka"
    assert warning.context["ip"] == IP_OSAKA
    _login(_copy_of_device_cookie(at_home, IP_OSAKA))
    assert len(_two_places()) == 2
    assert Notification.objects.filter(kind="device_cookie_copied").count() == 1


def _same_jar(victim: Client, ip: str) -> Client:
    """A client elsewhere with every cookie of ``victim`` (the customer's browser moved, or a thief who
    took the whole jar)."""
    other = _client(ip)
    for name, morsel in victim.cookies.items():
        other.cookies[name] = morsel.value
    return other


def _session_state(client: Client) -> dict[str, Any]:
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return store(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value).load()[STATE_KEY]


@pytest.mark.django_db
def test_the_html_sign_in_form_meets_the_customers_live_session_too(at_home: Client, hanako: Any) -> None:
    # The portal's HTML form (the path a thief's anti-detect browser takes) builds the same context.
    thief = _copy_of_device_cookie(at_home, IP_OSAKA)
    answer = thief.post("/login/", {"username": "hanako", "password": PASSWORD})
    assert answer.status_code == 302 and "/authguard/step-up/" in answer["Location"]
    (event,) = _two_places()
    assert event.ip == IP_OSAKA and event.user == hanako and event.action == Action.STEP_UP
    assert thief.get("/api/portfolio").status_code == 401
    assert Notification.objects.filter(kind="device_cookie_copied", user=hanako).count() == 1


@pytest.mark.django_db
def test_the_customers_own_session_switching_to_a_far_vpn_is_not_two_places(
    at_home: Client, hanako: Any
) -> None:
    # She switches on her employer's VPN (another network, placed in Osaka): one session moving, which the
    # session binding re-scores as before; no copy, no malware warning.
    moved = _same_jar(at_home, IP_OSAKA)
    assert moved.get("/api/portfolio").status_code == 200
    assert _session_state(moved)["r"] is True  # re-scored
    assert _two_places() == []
    assert not Notification.objects.filter(kind="device_cookie_copied").exists()
    assert _in_use(at_home, hanako).ip == IP_OSAKA  # the session's activity moved with it


@pytest.mark.django_db
def test_a_far_move_on_the_customers_own_isp_is_re_scored_a_regional_one_is_not(hanako: Any) -> None:
    # Fukuoka and Sapporo are both on one ISP (AS17676): a whole cookie jar replayed through the
    # customer's own ISP 1,400 km away used to pass the session binding unlooked-at. Kumamoto, 90 km
    # from Fukuoka on the same ISP, is one region (a dual-stack line's other family placed apart).
    home = _client(IP_V6_FUKUOKA)
    home.get("/api/csrf")
    assert _login(home).json()["status"] == "ok"
    assert home.get("/api/portfolio").status_code == 200
    regional = _same_jar(home, IP_V6_KUMAMOTO)
    assert regional.get("/api/portfolio").status_code == 200
    assert _session_state(regional)["r"] is False and _session_state(regional)["b"]["ip"] == IP_V6_KUMAMOTO
    far = _same_jar(home, IP_V6_SAPPORO)
    far.get("/api/portfolio")
    assert _session_state(far)["r"] is True  # re-scored by the full engine
    assert _two_places() == []  # the session's own move is never this finding


@pytest.mark.django_db
def test_another_address_of_the_same_line_in_the_same_city_is_no_move(at_home: Client) -> None:
    near = _same_jar(at_home, IP_TOKYO_2)
    assert near.get("/api/portfolio").status_code == 200
    assert _session_state(near)["r"] is False and _session_state(near)["b"]["ip"] == IP_TOKYO_2


@pytest.mark.django_db
def test_a_held_session_cannot_wipe_the_customers_activity_by_signing_out(
    at_home: Client, hanako: Any
) -> None:
    # A whole jar replayed from a flagged residential proxy: re-scored and held at step-up.
    thief = _same_jar(at_home, IP_JP_PROXY)
    assert thief.get("/api/portfolio").status_code == 401
    assert _session_state(thief)["s"] == "pending"
    found = _in_use(at_home, hanako)
    assert found is not None and found.ip == IP_TOKYO
    assert thief.post("/api/logout").status_code == 200  # (the test client checks no CSRF token)
    assert _in_use(at_home, hanako) == found
    # Its session cookie, now dead, proves nothing: a sign-in with the jar from Osaka meets the entry.
    again = _same_jar(at_home, IP_OSAKA)
    assert _login(again).json()["status"] == "step_up_required"
    assert [e.ip for e in _two_places()] == [IP_OSAKA]


@pytest.mark.django_db
def test_a_re_verification_rotates_the_session_key_and_its_activity_follows(
    at_home: Client, hanako: Any
) -> None:
    before = at_home.cookies[settings.SESSION_COOKIE_NAME].value
    answer = at_home.post(
        "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    after = at_home.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert _in_use(at_home, hanako).session == device_activity.session_digest(after)
    # So her session moving on is still her own session moving.
    assert _same_jar(at_home, IP_OSAKA).get("/api/portfolio").status_code == 200
    assert _two_places() == []


@pytest.mark.django_db
def test_the_thief_cannot_hide_the_copy_behind_his_own_account(
    at_home: Client, hanako: Any, user_factory: Any
) -> None:
    # He signs in to an account of his own with the copied device cookie and uses it from Osaka...
    user_factory("taro", password="taro-password-1")
    thief = _copy_of_device_cookie(at_home, IP_OSAKA)
    thief.get("/api/csrf")
    assert _login(thief, "taro", "taro-password-1").json()["status"] == "ok"
    assert thief.get("/api/portfolio").status_code == 200
    # ...which neither overwrites hanako's record nor tells him whether she is online.
    assert _in_use(at_home, hanako).ip == IP_TOKYO
    assert _two_places() == []
    assert not Notification.objects.filter(kind="device_cookie_copied").exists()
    # Then he signs in to hers from the same browser: caught.
    assert thief.post("/api/logout").status_code == 200
    assert _login(thief).json()["status"] == "step_up_required"
    (event,) = _two_places()
    assert event.user == hanako


@pytest.mark.django_db
def test_the_cache_holds_a_digest_of_the_session_not_its_key(at_home: Client, hanako: Any) -> None:
    found = _in_use(at_home, hanako)
    session_key = at_home.cookies[settings.SESSION_COOKIE_NAME].value
    assert found is not None and found.ip == IP_TOKYO and found.asn == 4713
    assert found.session == device_activity.session_digest(session_key) and session_key not in repr(found)


@pytest.mark.django_db
def test_the_customer_moving_across_town_or_signing_in_again_is_not_two_places(
    at_home: Client,
) -> None:
    # Her own browser, its session cookie with it, on another address in Tokyo, then signing in again.
    moved = _client(IP_TOKYO_2)
    for name, morsel in at_home.cookies.items():
        moved.cookies[name] = morsel.value
    assert moved.get("/api/portfolio").status_code == 200
    assert _login(moved).json()["status"] == "ok"
    assert _last_event().ip == IP_TOKYO_2
    assert _two_places() == []
    assert not Notification.objects.filter(kind="device_cookie_copied").exists()


@pytest.mark.django_db
def test_after_signing_out_the_device_is_no_longer_in_use_there(at_home: Client, hanako: Any) -> None:
    assert _in_use(at_home, hanako) is not None
    assert at_home.post("/api/logout").status_code == 200
    assert _in_use(at_home, hanako) is None
    _login(_copy_of_device_cookie(at_home, IP_OSAKA))
    assert _last_event().ip == IP_OSAKA
    assert _two_places() == []


@pytest.mark.django_db
def test_a_session_idle_for_longer_than_the_window_is_not_two_places(hanako: Any) -> None:
    with time_machine.travel(START, tick=False) as traveller:
        home = _client(IP_TOKYO)
        home.get("/api/csrf")
        assert _login(home).json()["status"] == "ok"
        home.get("/api/portfolio")
        assert _in_use(home, hanako) is not None
        traveller.shift(timedelta(minutes=16))
        _login(_copy_of_device_cookie(home, IP_OSAKA))
    assert _last_event().ip == IP_OSAKA
    assert _two_places() == []


@pytest.mark.django_db
def test_activity_is_recorded_once_a_minute_and_only_by_verified_sessions(
    at_home: Client, hanako: Any
) -> None:
    first = _in_use(at_home, hanako)
    assert first is not None
    at_home.get("/api/portfolio")
    assert _in_use(at_home, hanako) == first  # within the minute: not written again
    # A sign-in held at step-up (a hosting address) records nothing for its device.
    risky = _client(IP_SG_VPS)
    risky.get("/api/csrf")
    _login(risky)
    risky.get("/api/portfolio")
    assert LoginEvent.objects.filter(ip=IP_SG_VPS).get().action != Action.ALLOW
    assert _in_use(risky, hanako) is None


@pytest.mark.django_db
def test_an_entry_that_does_not_decode_loses_only_this_evidence(at_home: Client, hanako: Any) -> None:
    device = device_hash(device_id_from_cookie(at_home.cookies[DEVICE].value))
    cache.set(device_activity._key(device, str(hanako.pk)), Undecodable())
    with pytest.raises(ValueError):
        cache.get(device_activity._key(device, str(hanako.pk)))
    answer = _login(_copy_of_device_cookie(at_home, IP_OSAKA))
    assert answer.status_code == 200 and _last_event().ip == IP_OSAKA
    assert _two_places() == []
    assert at_home.post("/api/logout").status_code == 200


@pytest.mark.django_db
def test_under_report_only_the_copy_is_recorded_and_the_customer_is_not_told(
    at_home: Client, settings: Any
) -> None:
    settings.AUTHGUARD_REPORT_ONLY = ["login", "step_up"]
    assert _login(_copy_of_device_cookie(at_home, IP_OSAKA)).json()["status"] == "ok"
    (event,) = _two_places()
    assert "report_only" in {f["code"] for f in event.findings} and event.outcome == "signed_in"
    assert not Notification.objects.filter(kind="device_cookie_copied").exists()


@pytest.mark.django_db
def test_a_key_the_portal_rotated_itself_keeps_the_sessions_activity(at_home: Client, hanako: Any) -> None:
    # The portal moves the session to a new key (its own cycle_key) and the browser gets the new cookie.
    store = import_module(settings.SESSION_ENGINE).SessionStore
    old = store(session_key=at_home.cookies[settings.SESSION_COOKIE_NAME].value)
    data = old.load()
    new = store()
    new.update(data)
    new.create()
    at_home.cookies[settings.SESSION_COOKIE_NAME] = new.session_key
    # Its first request with the new key comes from far away (a VPN switched on): still her own session.
    assert _same_jar(at_home, IP_OSAKA).get("/api/portfolio").status_code == 200
    assert _two_places() == []
    assert _in_use(at_home, hanako).session == device_activity.session_digest(new.session_key)


@pytest.mark.django_db
def test_signing_out_forgets_only_the_sessions_own_activity(at_home: Client, hanako: Any) -> None:
    # A second browser profile at home holding the same device cookie signs in and is used after the first.
    second = _copy_of_device_cookie(at_home, IP_TOKYO_2)
    assert _login(second).json()["status"] == "ok"
    assert second.get("/api/portfolio").status_code == 200
    written = _in_use(at_home, hanako)
    assert written.session == device_activity.session_digest(
        second.cookies[settings.SESSION_COOKIE_NAME].value
    )
    # The first one signing out (within the minute of its own last record, so it writes none) leaves the
    # second's record alone.
    assert at_home.post("/api/logout").status_code == 200
    assert _in_use(at_home, hanako) == written


@pytest.mark.django_db
def test_a_sign_out_whose_own_request_the_re_score_held_forgets_nothing(at_home: Client, hanako: Any) -> None:
    # The replayed jar's very first request is the sign-out: re-scored, held, and only then signed out.
    found = _in_use(at_home, hanako)
    assert found is not None
    assert _same_jar(at_home, IP_JP_PROXY).post("/api/logout").status_code == 200
    assert LoginEvent.objects.filter(ip=IP_JP_PROXY, outcome="rescored").exists()
    assert _in_use(at_home, hanako) == found
