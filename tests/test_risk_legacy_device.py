"""Issue 13, "the first day": the portal's own device cookie (``AUTHGUARD_LEGACY_DEVICE_COOKIE``) after
``authguard import-history``: a returning browser is its imported device, a guessed or short id counts as no
cookie, a stolen one is judged as a known device is (evidence, not identity), and authguard's cookie takes
over."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import KnownDevice, LoginEvent, RiskProfile
from authguard.risk.context import build_context, device_hash
from authguard.risk.findings import configured_signals
from authguard.risk.history import MemoryHistory
from authguard.risk.import_history import import_history, mark_imported
from authguard.risk.policy import Thresholds
from authguard.risk.replay import Policy, ReplayError, replay

from .conftest import IP_OSAKA, IP_TOKYO, IP_US_HOME, UA_CHROME_WIN, UA_FIREFOX_LINUX, OrderApi
from .staff_fixtures import staff_client
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


def sign_in_again(api: OrderApi, when: datetime) -> Any:
    """The same browser (its cookies as they are) signs out and in again at ``when``; returns its event."""
    with time_machine.travel(when, tick=False):
        api.post("/api/logout")
        api.login("alice", PASSWORD)
    return LoginEvent.objects.latest("pk")


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
    api.client.cookies.pop(COOKIE)
    again = sign_in_again(api, imported + timedelta(days=1))
    assert again.action == "allow" and "new_device" not in again.reasons, again.reasons
    # A thief's browser with a copy of the portal's cookie only (stolen before the takeover): no longer a
    # known device, whatever the place; a second holder of the portal's cookie, a copy (round fourteen).
    thief, _ = sign_in(imported + timedelta(days=2), portal_id=PORTAL_ID)
    assert thief.reasons == ["device_cookie_superseded"] and thief.action == "step_up", thief.reasons


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
    # Her authguard cookie is known now.
    assert "new_device" not in sign_in_again(api, imported + timedelta(hours=1)).reasons
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


def test_a_portal_cookie_is_not_a_remembered_device_unless_a_passkey_verified_it(imported: datetime) -> None:
    event, _ = sign_in(imported, portal_id=PORTAL_ID)
    codes = {finding["code"] for finding in event.findings}
    # The old log names no factor: at most what authguard's own cookie of a known device gets, the
    # known-device discount, no more (a passkey named in the log: the tests below).
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


def _stepped_up_log(start: datetime, days: int, **overrides: Any) -> list[str]:
    """alice's PC (``PORTAL_ID``), daily; with :func:`_asking` every line is a step-up the line passed."""
    return log(start, "alice", days, second_factor_ok=True, **overrides)


def _asking() -> Policy:
    """A policy that steps up every sign-in: each line of the old log is a step-up (the factor decides)."""
    return Policy(configured_signals(), Thresholds(step_up=0, deny=10_000))


@pytest.fixture
def passkey_imported(user_factory: Any, totp_factory: Any, geoip: Any, settings: Any) -> datetime:
    """alice imported from 40 days of her PC's sign-ins, each a step-up the log says a passkey passed."""
    totp_factory(user_factory("alice"))
    now = timezone.now()
    lines = _stepped_up_log(now - timedelta(days=45), 40, second_factor="passkey")
    summary = import_history(lines, geoip_path=str(geoip), policy=_asking())
    assert summary.remembered_devices == 1
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = COOKIE
    return now


def test_a_portal_device_a_passkey_verified_in_the_old_log_is_remembered_and_listed(
    passkey_imported: datetime,
) -> None:
    listed = KnownDevice.objects.get()
    assert listed.cookie_hash == device_hash(PORTAL_ID) and listed.revoked_at is None
    # Remembered as authguard would have remembered it: from the last passkey step-up, for 30 days.
    last_line = passkey_imported - timedelta(days=6)
    assert listed.trusted_until == pytest.approx(last_line + timedelta(days=30), abs=timedelta(seconds=1))
    event, _ = sign_in(passkey_imported, portal_id=PORTAL_ID)
    codes = {finding["code"] for finding in event.findings}
    assert "remembered_device" in codes and event.action == "allow", codes
    # Only the portal's cookie presents it: the same id as authguard's cookie is nothing (it is signed).
    bare, _ = sign_in(passkey_imported + timedelta(minutes=1), portal_id=None)
    assert "remembered_device" not in {finding["code"] for finding in bare.findings}


def test_a_revoked_imported_device_is_no_longer_remembered_nor_brought_back_by_importing_again(
    passkey_imported: datetime, geoip: Any
) -> None:
    listed = KnownDevice.objects.get()
    # The customer revokes it from her security page, where it is listed like her other devices.
    page = staff_client(listed.user)  # forgetting a device needs a fresh verification (her passkey here)
    assert listed.label in page.get(reverse("authguard:security")).content.decode()
    page.post(reverse("authguard:security-revoke-device", args=[listed.pk]))
    listed.refresh_from_db()
    assert listed.revoked_at is not None and listed.trusted_until is None
    event, _ = sign_in(passkey_imported + timedelta(minutes=1), portal_id=PORTAL_ID)
    codes = {finding["code"] for finding in event.findings}
    assert "known_device" in codes and "remembered_device" not in codes, codes
    lines = _stepped_up_log(passkey_imported - timedelta(days=45), 40, second_factor="passkey")
    import_history(lines, geoip_path=str(geoip), policy=_asking(), replace=True)
    listed.refresh_from_db()
    assert listed.revoked_at is not None and listed.trusted_until is None


def test_authguards_cookie_takes_the_remembered_device_over(passkey_imported: datetime) -> None:
    imported = KnownDevice.objects.get()
    _, api = sign_in(passkey_imported, portal_id=PORTAL_ID)
    # The portal's entry became her browser's authguard cookie: first seen and remembered as it was.
    own = KnownDevice.objects.exclude(pk=imported.pk).get()
    assert (own.trusted_until, own.first_seen_at) == (imported.trusted_until, imported.first_seen_at)
    # Her passkey verified it in the old log: it vouches for a new factor as a browser she verified on
    # (round sixty-eight), from the first such line.
    assert imported.factor_verified_at == imported.learned_at is not None
    assert own.factor_verified_at == imported.factor_verified_at
    # The portal's entry has ended (kept, revoked: not listed, and an import cannot bring it back).
    imported.refresh_from_db()
    assert imported.revoked_at is not None and imported.trusted_until is None
    api.client.cookies.pop(COOKIE)
    again = sign_in_again(api, passkey_imported + timedelta(days=1))
    assert "remembered_device" in {finding["code"] for finding in again.findings}, again.findings
    # A copy of the portal's cookie alone (stolen before the takeover) is no device at all now: a second
    # holder of it, judged as a copy (round fourteen).
    thief, _ = sign_in(passkey_imported + timedelta(days=2), portal_id=PORTAL_ID)
    assert thief.reasons == ["device_cookie_superseded"] and thief.action == "step_up", thief.reasons


def test_importing_again_brings_back_no_device_taken_over_and_then_revoked(
    passkey_imported: datetime, geoip: Any
) -> None:
    sign_in(passkey_imported, portal_id=PORTAL_ID)  # her browser takes the imported device over
    own = KnownDevice.objects.get(revoked_at__isnull=True)
    page = staff_client(own.user)  # verified with her passkey: forgetting a device needs a fresh verification
    page.post(reverse("authguard:security-revoke-device", args=[own.pk]))  # she suspects a theft
    lines = _stepped_up_log(passkey_imported - timedelta(days=45), 40, second_factor="passkey")
    import_history(lines, geoip_path=str(geoip), policy=_asking(), replace=True)
    # Neither her browser's cookie nor the portal's entry comes back (the browser of the page where her
    # passkey verified her is listed since round seventy: a browser her factor verified).
    taken = [own.cookie_hash, device_hash(PORTAL_ID)]
    assert not KnownDevice.objects.filter(revoked_at__isnull=True, cookie_hash__in=taken).exists()
    thief, _ = sign_in(passkey_imported + timedelta(hours=1), portal_id=PORTAL_ID)
    assert "remembered_device" not in {finding["code"] for finding in thief.findings}, thief.findings


def test_the_portals_entry_ends_when_her_browser_signs_in_by_its_own_cookie(
    passkey_imported: datetime, settings: Any
) -> None:
    # Her browser got its authguard cookie while the portal's cookie was not read yet (setting switched on
    # a day after the import): two names for one browser, the portal's still remembered.
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = None
    _, api = sign_in(passkey_imported, portal_id=PORTAL_ID)
    sign_in_again(api, passkey_imported + timedelta(hours=1))
    portal = KnownDevice.objects.get(cookie_hash=device_hash(PORTAL_ID))
    assert portal.revoked_at is None and portal.trusted_until is not None
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = COOKIE
    mine = sign_in_again(api, passkey_imported + timedelta(hours=2))  # both cookies: judged by her own
    assert "known_device" in {finding["code"] for finding in mine.findings}, mine.findings
    portal.refresh_from_db()
    assert portal.revoked_at is not None and portal.trusted_until is None
    # SECURITY: a copy of the portal's cookie alone no longer counts for more than her own cookie does: her
    # own cookie took the imported device's memory over, so the portal's id names no device any more.
    thief, _ = sign_in(passkey_imported + timedelta(days=1), portal_id=PORTAL_ID)
    codes = {finding["code"] for finding in thief.findings}
    # A second holder of the portal's cookie: judged as a copy (round fourteen), never her browser.
    assert "device_cookie_superseded" in codes and not codes & {"known_device", "remembered_device"}, codes
    assert thief.action == "step_up"
    assert device_hash(PORTAL_ID)[:20] not in RiskProfile.objects.get().data["dv"]


@pytest.mark.parametrize(("passkey_days", "expected_until_day"), [(10, None), (31, 30)])
def test_a_later_line_naming_no_factor_does_not_extend_what_a_passkey_remembered(
    passkey_days: int, expected_until_day: int | None, user_factory: Any, geoip: Any
) -> None:
    user_factory("alice")
    start = timezone.now() - timedelta(days=45)
    named = _stepped_up_log(start, passkey_days, second_factor="passkey")
    unnamed = _stepped_up_log(start + timedelta(days=passkey_days), 40 - passkey_days)
    summary = import_history(named + unnamed, geoip_path=str(geoip), policy=_asking())
    if expected_until_day is None:  # the last passkey was 36 days ago: nothing is remembered any more
        assert summary.remembered_devices == 0 and not KnownDevice.objects.exists()
    else:
        until = start + timedelta(days=expected_until_day + 30)
        assert KnownDevice.objects.get().trusted_until == pytest.approx(until, abs=timedelta(seconds=1))


@pytest.mark.parametrize("factor", ["totp", "recovery_code", None])
def test_a_relayable_or_unnamed_factor_in_the_old_log_remembers_nothing(
    factor: str | None, user_factory: Any, geoip: Any, settings: Any
) -> None:
    user_factory("alice")
    now = timezone.now()
    extra = {} if factor is None else {"second_factor": factor}
    summary = import_history(
        _stepped_up_log(now - timedelta(days=45), 40, **extra), geoip_path=str(geoip), policy=_asking()
    )
    assert summary.remembered_devices == 0 and not KnownDevice.objects.exists()
    # SECURITY: as live, a step-up passed with a relayable factor teaches the profile nothing either.
    assert RiskProfile.objects.exists() is (factor is None)
    if factor is None:
        settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = COOKIE
        event, _ = sign_in(now, portal_id=PORTAL_ID)
        assert "remembered_device" not in {finding["code"] for finding in event.findings}


@pytest.mark.parametrize("value", [5, "", "x" * 41, ["passkey"]])
def test_a_malformed_second_factor_stops_an_import_and_is_ignored_by_the_replay(
    value: Any, user_factory: Any, geoip: Any
) -> None:
    user_factory("alice")
    lines = log(timezone.now() - timedelta(days=3), "alice", 3, second_factor=value)
    with pytest.raises(ReplayError, match="line 1: 'second_factor'"):
        import_history(lines, geoip_path=str(geoip))
    assert not RiskProfile.objects.exists()
    # The replay's contract reads seven keys and ignores the others: the same lines replay.
    assert replay(lines, _Null(), geoip_path=str(geoip)).lines == 3


def test_the_replay_contract_ignores_the_factor_an_import_reads(geoip: Any) -> None:
    start = timezone.now() - timedelta(days=45)
    lines = _stepped_up_log(start, 40, second_factor="totp")
    contract, imported = MemoryHistory(), MemoryHistory()
    with override_settings(AUTHGUARD_GEOIP_PATH=str(geoip)):
        replay(lines, _Null(), geoip_path=str(geoip), policy=_asking(), history=contract)
        replay(lines, _Null(), geoip_path=str(geoip), policy=_asking(), history=imported, factors=True)
    assert "alice" in contract.profiles and contract.trusted  # as CONTRACTS section 5 says
    assert not imported.profiles and not imported.trusted and not imported.passkey_devices
    # Whatever the key holds, `authguard replay` writes the same lines as without it.
    plain = _stepped_up_log(start, 40)
    outputs = []
    for variant in (plain, lines, _stepped_up_log(start, 40, second_factor=5)):
        sink = io.StringIO()
        replay(variant, sink, geoip_path=str(geoip), policy=_asking())
        outputs.append(sink.getvalue())
    assert outputs[0] and outputs[0] == outputs[1] == outputs[2]


# -- round fourteen: two holders of the portal's cookie ---------------------------------------------------


@pytest.mark.battery(62)
def test_a_copy_of_the_portals_device_cookie_shown_first_is_caught_when_her_own_pc_shows_it_too(
    imported: datetime,
) -> None:
    """docs/dbsc.md: a device cookie with two holders is caught when the one left behind shows up (the id is
    retired, both holders start again as new browsers, "either may be the thief (he signed in first)"). The
    portal's own device cookie (``AUTHGUARD_LEGACY_DEVICE_COOKIE``) has no generations and no such rule. The
    infostealer's stock holds her PC's portal cookie from before the install; on the first day the thief
    signs in with her password and that copy from a proxy on her line in Tokyo (her user agent): judged as
    her imported PC, allowed, learned, and *his* authguard cookie takes the imported device over with its 40
    days of memory and its first sign-in (``legacy_device.take_over``, ``history._move_trust``). Her own PC
    then shows the same portal cookie: its entry is gone, so it is "no cookie" (``judged_context``): she is
    the new browser, nothing says two browsers held one portal id, nobody is told, and his browser goes on
    as her PC of 40 days (known device, allowed) at every later sign-in."""
    first, thief = sign_in(imported, portal_id=PORTAL_ID)  # the thief, with the copy: her PC to the engine
    assert first.action == "allow", first.reasons

    hers, _ = sign_in(imported + timedelta(days=1), portal_id=PORTAL_ID)  # her own PC, the same cookie
    later = sign_in_again(thief, imported + timedelta(days=2))

    codes = {finding["code"] for finding in later.findings}
    assert not (later.action == "allow" and "known_device" in codes), (
        f"after her PC showed the portal cookie his copy had taken over, his browser is still her PC: "
        f"{later.action} {sorted(codes)} (hers: {hers.action} {hers.reasons})"
    )


@pytest.mark.battery(62)
def test_her_pc_first_then_a_copy_of_its_portal_cookie_is_caught_and_her_next_sign_in_steps_up(
    imported: datetime,
) -> None:
    """The other order: her PC takes the imported device over; the thief's copy of the portal cookie is a
    second holder: stepped up (a copy), and her PC's id is retired, so her next sign-in steps up once and
    gets a new id (either holder may be the thief). Seen once: her re-issued id is not taken for a fork."""

    first, hers = sign_in(imported, portal_id=PORTAL_ID)
    assert first.action == "allow", first.reasons
    thief, _ = sign_in(imported + timedelta(hours=1), portal_id=PORTAL_ID, ip=IP_OSAKA)
    assert thief.action != "allow" and "device_cookie_superseded" in thief.reasons, thief.reasons

    again = sign_in_again(hers, imported + timedelta(days=1))
    assert again.action != "allow", again.reasons
