"""Issue 13, "the first day": the portal's own device cookie (``AUTHGUARD_LEGACY_DEVICE_COOKIE``) after
``authguard import-history``: a returning browser is its imported device, a guessed or short id counts as no
cookie, a stolen one is judged as a known device is (evidence, not identity), and authguard's cookie takes
over."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import LoginEvent, RiskProfile
from authguard.risk.context import build_context, device_hash
from authguard.risk.history import MemoryHistory
from authguard.risk.import_history import import_history, mark_imported
from authguard.risk.replay import replay

from .conftest import IP_TOKYO, IP_US_HOME, UA_CHROME_WIN, UA_FIREFOX_LINUX, OrderApi
from .test_risk_import_history import log as import_log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

PASSWORD = "correct horse battery"
COOKIE = "brokerage_device"
PORTAL_ID = "b7e2c4a19f03d6e8a5c1"  # the portal's id of alice's PC, as its sign-in log has it
OTHER_ID = "0f9e8d7c6b5a49382716"  # a well-formed id the portal never gave alice


def log(start: datetime, user: str, days: int, **overrides: Any) -> list[str]:
    """``days`` daily sign-ins of ``user`` at 9:00 from home on her PC (``PORTAL_ID``), replay format."""
    return import_log(start, user, days, **{"device_id": PORTAL_ID, **overrides})


@pytest.fixture
def imported(user_factory: Any, totp_factory: Any, geoip: Any, settings: Any) -> datetime:
    """alice imported from 40 days of her PC's sign-ins (she has a TOTP: a step-up is possible); returns the
    install time. The setting is on."""
    totp_factory(user_factory("alice"))
    now = timezone.now()
    import_history(log(now - timedelta(days=45), "alice", 40), geoip_path=str(geoip))
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = COOKIE
    return now


def sign_in(when: datetime, *, portal_id: str | None, ip: str = IP_TOKYO, ua: str = UA_CHROME_WIN) -> Any:
    """One password sign-in of alice from a fresh browser (authguard's cookie is new) that presents the
    portal's cookie ``portal_id``; returns its login event and the client."""
    with time_machine.travel(when, tick=False):
        api = OrderApi(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
        if portal_id is not None:
            api.client.cookies[COOKIE] = portal_id
        api.login("alice", PASSWORD)
    return LoginEvent.objects.latest("pk"), api


def test_a_returning_browser_with_the_portals_cookie_is_its_imported_device(
    imported: datetime, settings: Any
) -> None:
    event, _ = sign_in(imported, portal_id=PORTAL_ID)
    assert event.action == "allow" and "new_device" not in event.reasons, event.reasons
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = None  # the same browser, the portal's cookie not read
    without, _ = sign_in(imported + timedelta(minutes=5), portal_id=PORTAL_ID)
    assert "new_device" in without.reasons and without.score > event.score


def test_authguards_cookie_takes_over_and_the_portal_id_then_stops_counting(imported: datetime) -> None:
    _, api = sign_in(imported, portal_id=PORTAL_ID)
    old = device_hash(PORTAL_ID)[:20]
    data = RiskProfile.objects.get().data
    assert old not in data["dv"] and old not in data["f"]["dev"]
    assert not any(key.startswith(old) for key in data["f"]["dasn"])
    # Her browser's next sign-in, without the portal's cookie (cleared, or a portal that stopped setting it):
    # authguard's own cookie is now that device, with its past.
    with time_machine.travel(imported + timedelta(days=1), tick=False):
        api.client.cookies.pop(COOKIE)
        api.post("/api/logout")
        api.login("alice", PASSWORD)
    again = LoginEvent.objects.latest("pk")
    assert again.action == "allow" and "new_device" not in again.reasons, again.reasons
    # A thief's browser with a copy of the portal's cookie only (stolen before the takeover): no longer a
    # known device, whatever the place.
    thief, _ = sign_in(imported + timedelta(days=2), portal_id=PORTAL_ID)
    assert "new_device" in thief.reasons


def test_a_guessed_or_short_portal_id_counts_as_no_cookie(imported: datetime, geoip: Any) -> None:
    guessed, _ = sign_in(imported, portal_id=OTHER_ID)
    bare, _ = sign_in(imported + timedelta(minutes=1), portal_id=None)
    assert "new_device" in guessed.reasons and (guessed.score, guessed.reasons) == (bare.score, bare.reasons)
    # A portal whose device ids are short (a counter) gets nothing from its cookie: they could be guessed.
    RiskProfile.objects.all().delete()
    import_history(
        log(imported - timedelta(days=45), "alice", 40, device_id="42"), geoip_path=str(geoip), replace=True
    )
    short, _ = sign_in(imported + timedelta(minutes=2), portal_id="42")
    assert "new_device" in short.reasons


def test_an_id_authguard_learned_counts_as_no_cookie_in_the_portals_cookie(
    imported: datetime, settings: Any
) -> None:
    # alice's browser is learned by its authguard cookie (the portal's cookie not read yet).
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = None
    _, api = sign_in(imported, portal_id=None)
    with time_machine.travel(imported + timedelta(hours=1), tick=False):
        api.post("/api/logout")
        api.login("alice", PASSWORD)
    assert "new_device" not in LoginEvent.objects.latest("pk").reasons  # her authguard cookie is known now
    own_id = api.client.cookies[app_settings.DEVICE_COOKIE_NAME].value.rsplit(":", 1)[0]
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = COOKIE
    # Only devices the import learned: that id in the portal's cookie (signature dropped) is no cookie.
    event, _ = sign_in(imported + timedelta(hours=2), portal_id=own_id)
    assert "new_device" in event.reasons, event.reasons


def test_another_accounts_portal_id_counts_as_no_cookie(
    imported: datetime, user_factory: Any, geoip: Any
) -> None:
    user_factory("bob")
    import_history(log(imported - timedelta(days=45), "bob", 40, device_id=OTHER_ID), geoip_path=str(geoip))
    event, _ = sign_in(imported, portal_id=OTHER_ID)  # bob's PC id on alice's account
    assert "new_device" in event.reasons


def test_a_stolen_portal_cookie_is_evidence_not_identity(imported: datetime) -> None:
    # An infostealer copied alice's cookies; replayed from a network and country her PC never used.
    far, _ = sign_in(imported, portal_id=PORTAL_ID, ip=IP_US_HOME)
    assert "device_new_network" in far.reasons and far.action != "allow", far.reasons
    # At home, but with another browser than the one that PC always sent.
    other, _ = sign_in(imported + timedelta(hours=6), portal_id=PORTAL_ID, ua=UA_FIREFOX_LINUX)
    assert "device_user_agent_sideways" in other.reasons and other.action != "allow", other.reasons


def test_a_portal_cookie_never_counts_as_a_remembered_device(imported: datetime) -> None:
    event, _ = sign_in(imported, portal_id=PORTAL_ID)
    codes = {finding["code"] for finding in event.findings}
    # At most what authguard's own cookie of a known device gets: the known-device discount, no more.
    assert "known_device" in codes and "remembered_device" not in codes, codes


def _replayed(lines: list[str], state: MemoryHistory) -> list[dict]:
    out: list[str] = []

    class Sink:
        def write(self, text: str) -> int:
            out.append(text)
            return len(text)

    replay(lines, Sink(), history=state)
    return [json.loads(text) for text in out]


def test_the_replay_reads_the_optional_field_only_with_the_setting(geoip: Any) -> None:
    start = timezone.now() - timedelta(days=45)
    learned = MemoryHistory()
    replay(log(start, "alice", 40), _Null(), geoip_path=str(geoip), history=learned)
    after = timezone.now()
    row = json.loads(log(after, "alice", 1)[0])
    row.update(device_id="authguard-new-cookie", legacy_device_id=PORTAL_ID)
    lines = [json.dumps(row)]

    def fresh() -> MemoryHistory:
        state = MemoryHistory()
        state.profiles = {
            user: json.loads(json.dumps(mark_imported(data, at=after.timestamp() - 1)))
            for user, data in learned.profiles.items()
        }
        state.population = dict(learned.population)
        return state

    with override_settings(AUTHGUARD_GEOIP_PATH=str(geoip)):
        off = _replayed(lines, fresh())
        with override_settings(AUTHGUARD_LEGACY_DEVICE_COOKIE=COOKIE):
            on = _replayed(lines, fresh())
    assert "new_device" in off[0]["reasons"] and "new_device" not in on[0]["reasons"]
    assert on[0]["score"] < off[0]["score"]


class _Null:
    def write(self, text: str) -> int:
        return len(text)


def test_with_the_portals_cookie_read_a_copied_user_agent_needs_no_first_authguard_cookie(
    imported: datetime, settings: Any
) -> None:
    # Her user agent from a network she never used, without the portal's cookie: her own browser would
    # present it, so this is the copy a thief makes (as on day 180), not her browser's first authguard cookie.
    event, _ = sign_in(imported, portal_id=None, ip=IP_US_HOME)
    assert "copied_user_agent" in event.reasons and event.action != "allow", event.reasons
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = None  # not read: the finding waits for her first cookie
    waiting, _ = sign_in(imported + timedelta(minutes=5), portal_id=None, ip=IP_US_HOME)
    assert "copied_user_agent" not in waiting.reasons


@pytest.mark.parametrize("value", ["", "x" * 15, "x" * 16, "x" * 200, "x" * 201, "ü\x00;=" * 10])
def test_any_portal_cookie_value_builds_a_context(value: str, settings: Any, rf: Any) -> None:
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = COOKIE
    request = rf.get("/", REMOTE_ADDR=IP_TOKYO)
    request.COOKIES[COOKIE] = value
    ctx = build_context(request, username="alice")
    expected = device_hash(value) if 16 <= len(value) <= 200 else None
    assert ctx.legacy_device_hash == expected and ctx.device_hash is None
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = None
    assert build_context(request, username="alice").legacy_device_hash is None
