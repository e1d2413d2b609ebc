"""The device cookie moves on at every sign-in; a copy stays behind (issue 13, the infostealer variants).

An infostealer copies the browser's cookie jar; the thief replays it from the customer's own city and ISP
with the user agent of the day, where nothing in the sign-in line tells the copy from the customer. Every
sign-in and step-up re-issues the device cookie (same device id, a new signed generation); the customer's
browser confirms it on its next request; a copy taken before is then behind
(:mod:`authguard.sessions.device_generations`). Tested end to end through the demo's JSON API, the real
session middleware and real TOTP codes; the replay has no live cookies and is unchanged.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client

from authguard.choices import Action, Outcome
from authguard.models import KnownDevice, LoginEvent, Notification
from authguard.risk.context import (
    device_cookie_generation,
    device_hash,
    device_id_from_cookie,
    new_device_cookie,
)
from authguard.sessions import device_generations
from authguard.sessions.device_generations import BEHIND, CURRENT, SUPERSEDED, judge

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import IP_TOKYO, UA_CHROME_WIN, totp_token
from .test_sessions_binding_anchor import OCN_TOKYO, rt_geoip_dir  # noqa: F401  (rt_geoip_dir: a fixture)

pytestmark = [pytest.mark.usefixtures("geoip"), pytest.mark.django_db]

DEVICE = "authguard_device"
START = datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc)  # 10:00 in Tokyo


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100}, totp=True)


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _client(ip: str = IP_TOKYO) -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)


def _login(client: Client, username: str = "hanako") -> Any:
    answer = client.post(
        "/api/login", {"username": username, "password": PASSWORD}, content_type="application/json"
    )
    assert answer.status_code in (200, 403), answer.content
    return answer.json()


def _sign_in_and_use(client: Client) -> None:
    """A sign-in the engine allows, then a page: the browser took the new cookie and confirmed it."""
    assert _login(client)["status"] == "ok"
    assert client.get("/api/portfolio").status_code == 200


def _sign_out(client: Client) -> None:
    client.post("/api/logout")


def _browser_in_use() -> Client:
    """Her browser at home: it visited before (a device cookie), signed in, and opened a page."""
    browser = _client()
    browser.get("/api/csrf")
    _sign_in_and_use(browser)
    return browser


def _later_sign_ins(browser: Client, clock: Any, count: int) -> None:
    """The customer signs out and in again ``count`` times, a day apart; her browser moves on each time."""
    for _ in range(count):
        clock.shift(timedelta(days=1))
        _sign_out(browser)
        _sign_in_and_use(browser)


def _cookie(client: Client) -> str:
    return client.cookies[DEVICE].value


def _row(user: Any, client: Client) -> KnownDevice:
    return KnownDevice.objects.get(user=user, cookie_hash=device_hash(device_id_from_cookie(_cookie(client))))


def _copy(value: str, ip: str = IP_TOKYO) -> Client:
    thief = _client(ip)
    thief.cookies[DEVICE] = value
    return thief


def _last_event() -> LoginEvent:
    return LoginEvent.objects.order_by("-pk").first()


def _finding(event: LoginEvent, code: str) -> dict[str, Any] | None:
    return next((f for f in event.findings if f["code"] == code), None)


# -- the cookie ------------------------------------------------------------------------------------------


def test_a_cookie_keeps_its_device_id_across_generations_and_refuses_forgery(clock: Any) -> None:
    first = new_device_cookie()
    device_id = device_id_from_cookie(first)
    clock.shift(timedelta(seconds=5))
    second = new_device_cookie(device_id, after=device_cookie_generation(first))
    assert device_id_from_cookie(second) == device_id and second != first
    assert device_cookie_generation(second) > device_cookie_generation(first)
    # A node whose clock runs behind still issues a newer generation than the one presented.
    clock.shift(timedelta(hours=-1))
    third = new_device_cookie(device_id, after=device_cookie_generation(second))
    assert device_cookie_generation(third) == device_cookie_generation(second) + 1
    # SECURITY: the generation is signed with the id: neither can be changed or moved.
    tampered = second.replace(second.split(":")[0], f"{device_id}.zzzzzzzzz")
    assert device_id_from_cookie(tampered) is None and device_cookie_generation(tampered) is None
    # A cookie from before generations reads as generation 0 of the same id.
    from django.core import signing

    old = signing.Signer(salt="authguard.device-cookie").sign(device_id)
    assert (device_id_from_cookie(old), device_cookie_generation(old)) == (device_id, 0)


_LONG_AGO = START - timedelta(days=3)
_NOW_MS = int(START.timestamp() * 1000)
#: (rows of the device id, one per account, as (newest, confirmed at, previous[, issued]), the first the
#: judging account's own; presented; expected in a session[; expected at a sign-in, if other])
_RULES = [
    ([], 5, CURRENT),
    ([(None, None, None)], 0, CURRENT),  # nothing confirmed yet
    ([(10**6, _LONG_AGO, None)], 10**6, CURRENT),
    ([(10**6, _LONG_AGO, None)], 10**6 + 1, CURRENT),  # issued, not confirmed yet
    ([(10**6, _LONG_AGO, None)], 1, BEHIND),  # the first generation after an upgrade
    ([(10**6, _LONG_AGO, 10**5)], 10**5, BEHIND),
    ([(10**6, _LONG_AGO, 10**5)], 10**4, SUPERSEDED),
    ([(10**6, _LONG_AGO, 10**5)], 0, SUPERSEDED),  # a cookie from before generations
    ([(10**6, _LONG_AGO, 10**5)], 10**6 - 59_000, CURRENT),  # a sibling: issued 59 s apart
    # Requests sent with the old cookie just before the browser took the new one: the one before it only,
    # and at a sign-in only seconds after (the fourth: a copy one sign-in old timed into her minute).
    ([(10**6, START - timedelta(seconds=59), 10**5)], 10**5, CURRENT, BEHIND),
    ([(10**6, START - timedelta(seconds=9), 10**5)], 10**5, CURRENT),  # two of her sign-ins sent at once
    ([(10**6, START - timedelta(seconds=9), 10**5)], 10**4, SUPERSEDED),
    (
        [(10**6, START - timedelta(seconds=59), None)],
        0,
        CURRENT,
        BEHIND,
    ),  # the first confirmation after an upgrade
    ([(10**6, START - timedelta(seconds=61), 10**5)], 10**5, BEHIND),
    # An older copy shown in that minute is no such request (red team, round eight).
    ([(10**6, START - timedelta(seconds=59), 10**5)], 10**4, SUPERSEDED),
    ([(10**6, START - timedelta(seconds=61), 10**5)], 10**4, SUPERSEDED),
    # Nor is the one before it shown to another account (the first row is the judging account's): the grace
    # is for her browser's requests in flight, not for a copy one sign-in old (red team, round nine).
    ([(None, None, None), (10**6, START - timedelta(seconds=59), 10**5)], 10**5, BEHIND),
    ([(None, None, None), (10**6, START - timedelta(seconds=59), None)], 0, BEHIND),
    # Another account's row of the same browser moved on: the copy is behind for every account.
    ([(10**4, _LONG_AGO, None), (10**6, _LONG_AGO, 10**5)], 10**4, SUPERSEDED),
    # A retired id: the newest cookie at retirement is behind, older ones superseded; no grace.
    ([(device_generations.RETIRED, START, 10**6)], 10**6, BEHIND),
    ([(device_generations.RETIRED, START, 10**6)], 10**5, SUPERSEDED),
    ([(device_generations.RETIRED, START, None)], 10**6, SUPERSEDED),
    # A sign-in over a minute ago was given a newer generation (the fourth: issued_generation) that no
    # request presented since: an older cookie is one behind, whatever the row confirmed (round 64).
    ([(10**6, _LONG_AGO, 10**5, _NOW_MS - 61_000)], 10**6, BEHIND),
    ([(None, None, None, _NOW_MS - 61_000)], 10**6, BEHIND),  # a new row: nothing confirmed yet
    ([(None, None, None), (10**6, _LONG_AGO, None, _NOW_MS - 61_000)], 10**6, BEHIND),  # any account's row
    ([(10**6, _LONG_AGO, 10**5, _NOW_MS - 59_000)], 10**6, CURRENT),  # given under a minute ago
    ([(10**6, _LONG_AGO, 10**5, _NOW_MS - 61_000)], _NOW_MS - 61_000 - 59_000, CURRENT),  # a sibling of it
    ([(10**6, _LONG_AGO, 10**5, _NOW_MS - 61_000)], _NOW_MS - 30_000, CURRENT),  # the browser took it
    ([(10**6, _LONG_AGO, 10**5, _NOW_MS - 61_000)], 10**4, SUPERSEDED),
]


@pytest.mark.parametrize("rule", _RULES)
def test_the_rule_in_python_is_the_rule_in_sql(rule: tuple[Any, ...], user_factory: Any) -> None:
    rows, presented, expected = rule[:3]
    at_sign_in = rule[3] if len(rule) > 3 else expected
    rows = [(*row, None)[:4] for row in rows]
    judged_rows = [(*row[:3], number == 0, row[3]) for number, row in enumerate(rows)]
    assert judge(judged_rows, presented, START) == expected
    assert judge(judged_rows, presented, START, grace=device_generations.SIGN_IN_GRACE_SECONDS) == at_sign_in
    users = [user_factory(f"u{number}") for number in range(max(1, len(rows)))]
    for number, (newest, at, previous, issued) in enumerate(rows):
        KnownDevice.objects.create(
            issued_generation=issued,
            user=users[number],
            cookie_hash="h" * 64,
            first_seen_at=_LONG_AGO,
            last_seen_at=_LONG_AGO,
            cookie_generation=newest,
            cookie_generation_at=at,
            previous_generation=previous,
        )
    table = connection.ops.quote_name(KnownDevice._meta.db_table)
    context = SimpleNamespace(device_generation=presented, device_hash="h" * 64, time=START)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {device_generations.left_behind_sql(table)}",
            device_generations.left_behind_params(context, connection, users[0].pk),
        )
        (found,) = cursor.fetchone()
    assert (found or CURRENT) == at_sign_in
    judged = device_generations.left_behind(
        device_hash="h" * 64, generation=presented, now=START, user_id=users[0].pk
    )
    assert judged == expected


# -- sign-in ---------------------------------------------------------------------------------------------


def test_each_sign_in_moves_the_cookie_on_and_the_next_request_confirms_it(hanako: Any, clock: Any) -> None:
    browser = _client()
    browser.get("/api/csrf")
    before = _cookie(browser)
    assert _login(browser)["status"] == "ok"
    after = _cookie(browser)
    assert after != before and device_id_from_cookie(after) == device_id_from_cookie(before)
    assert _row(hanako, browser).cookie_generation is None  # issued, not yet seen back
    browser.get("/api/portfolio")
    row = _row(hanako, browser)
    assert row.cookie_generation == device_cookie_generation(after) and row.previous_generation is None
    clock.shift(timedelta(hours=1))
    _sign_out(browser)
    _sign_in_and_use(browser)
    row = _row(hanako, browser)
    assert row.cookie_generation == device_cookie_generation(_cookie(browser))
    assert row.previous_generation == device_cookie_generation(after)
    # Her own browser is never behind: every sign-in of it was allowed without a finding of this kind.
    assert not LoginEvent.objects.filter(reasons__icontains="device_cookie").exists()


@pytest.mark.battery(62)
def test_an_infostealers_copy_two_sign_ins_old_is_stepped_up_from_her_own_line(
    hanako: Any, clock: Any
) -> None:
    browser = _browser_in_use()
    stolen = _cookie(browser)  # the malware's copy of the jar, this morning
    _later_sign_ins(browser, clock, 2)  # she signs in twice more over the next days; her browser moves on
    clock.shift(timedelta(days=1))
    # The thief replays it from her own address with her user agent: the line is hers in every field.
    thief = _copy(stolen)
    answer = _login(thief)
    assert answer["status"] == "step_up_required"
    event = _last_event()
    assert event.action == Action.STEP_UP and event.ip == IP_TOKYO
    finding = _finding(event, "device_cookie_superseded")
    assert finding is not None and finding["score"] == 60
    assert "known_device" not in event.reasons  # SECURITY: no discount for a copy
    assert thief.get("/api/portfolio").status_code == 401
    # She is told: malware on her computer reads its browser data.
    (warning,) = Notification.objects.filter(kind="device_cookie_copied", user=hanako)
    assert warning.context["ip"] == IP_TOKYO
    # Two holders of one browser id: the id is retired. Her browser held its newest cookie: behind (+40,
    # allowed at home; never refused for what the thief did), and it gets a new id; from there on her
    # sign-ins are ordinary again.
    old_id = device_id_from_cookie(_cookie(browser))
    clock.shift(timedelta(hours=1))
    _sign_out(browser)
    assert _login(browser)["status"] == "ok"
    assert "device_cookie_behind" in _last_event().reasons
    assert device_id_from_cookie(_cookie(browser)) != old_id
    assert browser.get("/api/portfolio").status_code == 200
    clock.shift(timedelta(days=1))
    _sign_out(browser)
    assert _login(browser)["status"] == "ok"
    assert "device_cookie" not in " ".join(_last_event().reasons)
    # The thief's copy stays retired.
    _sign_out(thief)
    assert _login(thief)["status"] == "step_up_required"


def test_a_sign_in_held_at_step_up_gets_no_fresh_cookie_to_try_again_with(hanako: Any, clock: Any) -> None:
    browser = _browser_in_use()
    stolen = _cookie(browser)
    _later_sign_ins(browser, clock, 2)
    clock.shift(timedelta(hours=3))
    thief = _copy(stolen)
    assert _login(thief)["status"] == "step_up_required"
    # SECURITY: the held sign-in's answer does not move his copy on; he gives up and tries again.
    assert _cookie(thief) == stolen
    thief.post("/api/logout")
    assert _login(thief)["status"] == "step_up_required"
    assert "device_cookie_superseded" in _last_event().reasons


def test_a_copy_one_sign_in_old_counts_points_but_tells_no_one(hanako: Any, clock: Any) -> None:
    browser = _browser_in_use()
    older = _cookie(browser)
    _later_sign_ins(browser, clock, 1)
    clock.shift(timedelta(days=1))
    # One generation behind: a copy, or the same browser after a crash lost its newest cookie.
    _login(_copy(older))
    event = _last_event()
    finding = _finding(event, "device_cookie_behind")
    assert finding is not None and finding["score"] == 40
    # Without the finding it would have been her known browser at home (score 0): 40 points more, and no
    # discount, which a new city or network on top turns into a step-up.
    assert "known_device" not in event.reasons and event.score >= 30
    assert not Notification.objects.filter(kind="device_cookie_copied").exists()


def test_cost_a_browser_that_lost_the_new_cookie_is_one_behind_at_its_next_sign_in(
    hanako: Any, clock: Any
) -> None:
    """The price of noting the generation a sign-in gives (``KnownDevice.issued_generation``, red team round
    sixty-four's copy that signs in again every 55 s): a browser that lost the answer's Set-Cookie (a crash
    before its cookie store reached the disk) shows, at its next sign-in, a cookie older than one it was
    given: one behind (40 points, a step-up on top of any other finding, the id renewed), never superseded,
    never refused, nobody told. Until that round it was not behind at all."""
    browser = _browser_in_use()
    kept = _cookie(browser)
    clock.shift(timedelta(days=1))
    _sign_out(browser)
    assert _login(browser)["status"] == "ok"
    browser.cookies[DEVICE] = kept  # the answer's Set-Cookie never reached the disk
    assert browser.get("/api/portfolio").status_code == 200  # nothing confirmed: it saw the old one
    clock.shift(timedelta(days=1))
    _sign_out(browser)
    assert _login(browser)["status"] != "denied"
    event = _last_event()
    assert "device_cookie_behind" in event.reasons and "device_cookie_superseded" not in event.reasons
    assert not Notification.objects.filter(kind="device_cookie_copied").exists()


def test_a_household_signing_in_by_turns_on_one_browser_is_never_behind(
    hanako: Any, brokerage_customer: Any, user_factory: Any, clock: Any
) -> None:
    taro = user_factory("taro", password=PASSWORD)
    browser = _client()
    browser.get("/api/csrf")
    for day in range(4):
        clock.shift(timedelta(days=1))
        for name in ("hanako", "taro"):
            answer = browser.post(
                "/api/login", {"username": name, "password": PASSWORD}, content_type="application/json"
            )
            assert answer.json()["status"] == "ok", (day, name, answer.content)
            assert browser.get("/api/portfolio").status_code in (200, 403)
            _sign_out(browser)
    assert not LoginEvent.objects.filter(reasons__icontains="device_cookie").exists()
    assert KnownDevice.objects.filter(user=taro).get().cookie_generation is not None


# -- a live session --------------------------------------------------------------------------------------


def _jar(victim: Client, ip: str = IP_TOKYO) -> Client:
    other = _client(ip)
    for name, morsel in victim.cookies.items():
        other.cookies[name] = morsel.value
    return other


def test_a_copied_session_is_held_within_a_minute_of_her_next_sign_in(hanako: Any, clock: Any) -> None:
    browser = _browser_in_use()
    # The whole jar is copied, session cookie included, and used from her own line: nothing differs.
    thief = _jar(browser)
    assert thief.get("/api/portfolio").status_code == 200
    # She closes the browser (its session cookie goes) and signs in again the next morning; the thief
    # keeps his copy of the old session alive.
    for minutes in (10, 20, 30):
        clock.shift(timedelta(minutes=10))
        assert thief.get("/api/portfolio").status_code == 200, minutes
    del browser.cookies[settings.SESSION_COOKIE_NAME]
    _sign_in_and_use(browser)
    clock.shift(timedelta(seconds=device_generations.CHECK_SECONDS + 1))
    answer = thief.get("/api/portfolio")
    assert answer.status_code == 401 and answer.json()["status"] == "step_up_required"
    event = _last_event()
    assert event.outcome == Outcome.RESCORED and event.user == hanako
    assert "device_cookie_superseded" in event.reasons
    assert Notification.objects.filter(kind="device_cookie_copied", user=hanako).count() == 1
    # Two holders of one id: retired. Her session is held too; she steps up and her browser gets a new id.
    assert browser.get("/api/portfolio").status_code == 401
    answer = browser.post(
        "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    assert browser.get("/api/portfolio").status_code == 200
    clock.shift(timedelta(seconds=device_generations.CHECK_SECONDS + 1))
    assert browser.get("/api/portfolio").status_code == 200
    assert thief.get("/api/portfolio").status_code == 401


def test_when_the_thief_signs_in_first_her_browser_is_held_then_his(hanako: Any, clock: Any) -> None:
    browser = _browser_in_use()
    clock.shift(timedelta(minutes=5))
    # The thief copies the current cookie and signs in first, from her line with one relayed code.
    thief = _copy(_cookie(browser))
    first = _login(thief)
    if first["status"] == "step_up_required":
        code = totp_token(hanako.totp)
        answer = thief.post("/authguard/api/step-up/totp", {"code": code}, content_type="application/json")
        assert answer.status_code == 200
    assert thief.get("/api/portfolio").status_code == 200  # his browser confirms the next generation
    clock.shift(timedelta(seconds=device_generations.CHECK_SECONDS + 1))
    # Her live session now presents a cookie its browser was moved past: held, never silently allowed.
    mine = browser.get("/api/portfolio")
    assert mine.status_code == 401 and mine.json()["status"] == "step_up_required"
    # She steps up (the thief has no code of this time step); her browser moves past his copy.
    clock.shift(timedelta(seconds=60))
    answer = browser.post(
        "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    assert browser.get("/api/portfolio").status_code == 200
    clock.shift(timedelta(seconds=device_generations.CHECK_SECONDS + 1))
    held = thief.get("/api/portfolio")
    assert held.status_code == 401 and held.json()["status"] == "step_up_required"
    assert browser.get("/api/portfolio").status_code == 200


@pytest.mark.parametrize("swap", ["drop", "fresh"])
def test_a_copied_session_cannot_shed_the_check_by_dropping_its_device_cookie(
    hanako: Any, clock: Any, swap: str
) -> None:
    browser = _browser_in_use()
    thief = _jar(browser)
    if swap == "drop":
        del thief.cookies[DEVICE]
    else:
        thief.cookies[DEVICE] = new_device_cookie()
    # SECURITY: her browser confirmed its cookie: the session without it is held at once, not re-bound.
    answer = thief.get("/api/portfolio")
    assert answer.status_code == 401 and answer.json()["status"] == "step_up_required"
    assert "device_cookie_superseded" in _last_event().reasons
    assert _finding(_last_event(), "device_cookie_superseded")["evidence"]["session"] is True


def test_a_one_behind_copy_at_home_gets_a_new_id_and_no_lineage(hanako: Any, clock: Any) -> None:
    browser = _browser_in_use()
    older = _cookie(browser)
    _later_sign_ins(browser, clock, 1)
    clock.shift(timedelta(minutes=20))
    thief = _copy(older)
    assert _login(thief)["status"] == "ok"  # +40 at home: allowed, as a crashed browser would be
    # SECURITY: never the next generation of a copy; a new id, i.e. a new browser from here on.
    assert device_id_from_cookie(_cookie(thief)) != device_id_from_cookie(older)
    # Two holders of one id: retired, so her live session is held within a minute, and no ping-pong
    # follows: each side's next sign-in with the old id meets "superseded".
    clock.shift(timedelta(seconds=device_generations.CHECK_SECONDS + 1))
    mine = browser.get("/api/portfolio")
    assert mine.status_code == 401 and mine.json()["status"] == "step_up_required"


def test_a_copy_cannot_be_made_current_through_an_account_of_the_thiefs_own(
    hanako: Any, user_factory: Any, clock: Any
) -> None:
    user_factory("mallory", password=PASSWORD, email="mallory@example.jp")
    browser = _browser_in_use()
    stolen = _cookie(browser)
    _later_sign_ins(browser, clock, 3)
    clock.shift(timedelta(days=1))
    thief = _copy(stolen)
    # His own account: the copy is judged against every account's row of that browser id, so it is
    # superseded there too, and whatever his sign-in's outcome, he gets no next generation of her id.
    _login(thief, "mallory")
    assert "device_cookie_superseded" in _last_event().reasons
    laundered = _cookie(thief)
    assert laundered == stolen or device_id_from_cookie(laundered) != device_id_from_cookie(stolen)
    _sign_out(thief)
    thief.cookies[DEVICE] = stolen
    assert _login(thief)["status"] == "step_up_required"
    assert "device_cookie_superseded" in _last_event().reasons


def test_revoking_the_browser_does_not_switch_the_comparison_off(hanako: Any, clock: Any) -> None:
    # Her natural answer to the "copied" notice: she revokes the browser on her security page.
    browser = _browser_in_use()
    stolen = _cookie(browser)
    _later_sign_ins(browser, clock, 2)
    KnownDevice.objects.filter(user=hanako).update(revoked_at=START)
    clock.shift(timedelta(days=1))
    assert _login(_copy(stolen))["status"] == "step_up_required"
    assert "device_cookie_superseded" in _last_event().reasons


# -- a forgotten browser is a new browser (red team, 2026-12-05) ------------------------------------------


@pytest.fixture
def her_isp_too(geoip: Any, request: Any, settings: Any) -> None:
    """GeoIP knows another /24 of her ISP in her city (OCN_TOKYO): what a residential proxy there buys."""
    settings.AUTHGUARD_GEOIP_PATH = str(request.getfixturevalue("rt_geoip_dir"))


@pytest.mark.usefixtures("her_isp_too")
def test_a_copy_of_a_forgotten_browsers_cookie_is_a_new_browser(hanako: Any, clock: Any) -> None:
    """The security page and the admin promise a forgotten browser's "next sign-in is treated as a new
    device again"; the profile's device counts kept the known-device discount for a copy of its cookie (the
    copy current: taken after her last sign-in), and the thief on another line of her ISP was allowed."""
    browser = _browser_in_use()
    _later_sign_ins(browser, clock, 5)
    stolen = _cookie(browser)
    KnownDevice.objects.filter(user=hanako).update(revoked_at=datetime.now(timezone.utc), trusted_until=None)
    # The baseline: the thief on her ISP in her city with a fresh browser is stepped up.
    assert _login(_client(OCN_TOKYO))["status"] == "step_up_required"
    assert "new_device" in _last_event().reasons
    # With the forgotten cookie he is a new browser too, not her known one.
    assert _login(_copy(stolen, OCN_TOKYO))["status"] == "step_up_required"
    codes = {f["code"] for f in _last_event().findings}
    assert "new_device" in codes and "known_device" not in codes, codes


@pytest.mark.usefixtures("her_isp_too")
def test_a_forgotten_browser_the_engine_learns_again_is_known_and_listed_again(
    hanako: Any, clock: Any
) -> None:
    browser = _browser_in_use()
    _later_sign_ins(browser, clock, 5)
    KnownDevice.objects.filter(user=hanako).update(revoked_at=datetime.now(timezone.utc), trusted_until=None)
    # Her own browser, at home: new again (a new browser at home is allowed at the new-device points alone).
    clock.shift(timedelta(hours=1))
    _sign_out(browser)
    _sign_in_and_use(browser)
    assert "new_device" in _last_event().reasons or "new_device" in {
        f["code"] for f in _last_event().findings
    }
    # That allowed sign-in was learned: the browser is hers again, listed and known.
    assert _row(hanako, browser).revoked_at is None
    clock.shift(timedelta(hours=1))
    _sign_out(browser)
    _sign_in_and_use(browser)
    assert "known_device" in {f["code"] for f in _last_event().findings}


@pytest.mark.battery(66)
def test_a_forgotten_laptop_learned_again_vouches_for_nothing(hanako: Any, clock: Any, settings: Any) -> None:
    """Red team, 2026-12-05: her laptop of a year is stolen; she forgets it on her security page. The thief
    opens it on a line she uses: new to the engine, allowed, learned, and the revived row kept its year-old
    first sign-in, so one relayed code made his passkey "vouched" (a day's cooling-off, not 14 days). A
    forgotten browser brought back counts from its return."""
    from authguard.factors import throttles
    from authguard.models import FactorRecord, PasskeyDevice
    from authguard.testing import SoftAuthenticator

    from .conftest import of_long_standing, register_passkey

    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    of_long_standing(hanako)
    laptop = _browser_in_use()
    _later_sign_ins(laptop, clock, 3)
    KnownDevice.objects.filter(user=hanako).update(
        first_seen_at=START - timedelta(days=365), learned_at=START - timedelta(days=365)
    )
    stolen = _cookie(laptop)
    KnownDevice.objects.filter(user=hanako).update(revoked_at=datetime.now(timezone.utc), trusted_until=None)
    clock.shift(timedelta(hours=2))

    thief = _copy(stolen, IP_TOKYO)
    assert _login(thief)["status"] == "ok"  # a new browser where she signs in: allowed, and learned
    assert _row(hanako, thief).revoked_at is None
    assert _row(hanako, thief).first_seen_at == datetime.now(timezone.utc)  # back, as of now
    assert throttles.established_device(thief.get("/").wsgi_request, user=hanako) is None
    ok = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, "application/json")
    assert ok.status_code == 200, ok.content  # one relayed code
    key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    assert register_passkey(thief, key).status_code == 201
    record = FactorRecord.objects.get(device_id=PasskeyDevice.objects.get(user=hanako).persistent_id)
    assert record.cooling_off_until >= datetime.now(timezone.utc) + timedelta(days=13)  # unvouched


@pytest.mark.battery(71)
def test_a_copy_the_engine_caught_no_longer_counts_as_her_browser_at_the_factors_throttle(
    hanako: Any, clock: Any, settings: Any
) -> None:
    """Red team, round five: an infostealer's copy of her browser of a year, caught (superseded, the id
    retired), still counted as her established browser at the factor's throttle: his wrong step-up codes
    went onto django-otp's back-off of her authenticator, and ten seconds later her right code was refused.
    A caught copy is a stranger: his failures stay in his scopes, off her back-off."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from authguard.factors import throttles

    from .conftest import wrong_code

    browser = _browser_in_use()
    KnownDevice.objects.filter(user=hanako).update(
        first_seen_at=START - timedelta(days=365), learned_at=START - timedelta(days=365)
    )
    stolen = _cookie(browser)  # the malware's copy
    _later_sign_ins(browser, clock, 2)
    clock.shift(timedelta(days=1))

    thief = _copy(stolen)
    assert _login(thief)["status"] == "step_up_required"
    assert _finding(_last_event(), "device_cookie_superseded") is not None  # caught, the id retired
    assert throttles.established_device(thief.get("/api/csrf").wsgi_request, user=hanako) is None
    for _ in range(6):
        clock.shift(timedelta(seconds=40))
        answer = thief.post(
            "/authguard/api/step-up/totp", {"code": wrong_code(hanako.totp)}, "application/json"
        )
        assert answer.status_code in (400, 429), answer.content
    assert TOTPDevice.objects.get(pk=hanako.totp.pk).throttling_failure_count == 0

    clock.shift(timedelta(seconds=10))
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}  # every sign-in steps up
    _sign_out(browser)
    assert _login(browser)["status"] == "step_up_required"
    mine = browser.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, "application/json")
    assert mine.status_code == 200, mine.content
