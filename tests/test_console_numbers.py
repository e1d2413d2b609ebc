"""The console's numbers against one fixed event set (issue 16, acceptance 1).

One account, Kenji, and one day (2026-11-20, JST), built through the real paths (the login form, the JSON
step-up and passkey APIs with real TOTP codes and real WebAuthn signatures, the security pages): passkey
sign-ins, a password sign-in, two passed step-ups (a new phone, and a session re-checked after it was used
from another network), wrong passwords, a denial, a failed step-up, a thief's passkey added and then
removed by Kenji, recovery codes issued and replaced, and a session ended when it turned up on a hosting
network. The dashboard, the incident timeline and the backtest must each tell exactly that story, and the
same one (they share :func:`authguard.console.reports.categorize`).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.utils import translation

from authguard.console import reports
from authguard.factors import lifecycle
from authguard.models import FactorKind, Feedback, LoginEvent, PasskeyDevice, RecoveryCodeDevice
from authguard.risk import backtest
from authguard.testing import SoftAuthenticator

from .conftest import (
    IP_DOCOMO,
    IP_JP_PROXY,
    IP_SG_VPS,
    IP_TOKYO,
    IP_VPN,
    UA_CHROME_WIN,
    UA_CURL,
    UA_FIREFOX_LINUX,
    UA_IPHONE,
    api_post,
    bind_passkey,
    totp_token,
    wrong_code,
)
from .console_data import mark, staff_client, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

JST = ZoneInfo("Asia/Tokyo")
DAY = date(2026, 11, 20)
PASSWORD = "kenji-correct-horse-2026"
THIEF_PASSKEY = "Thief's phone"
DASHBOARD = "/admin/authguard/loginevent/dashboard/"
INCIDENT = "/admin/authguard/loginevent/incident/"
BACKTEST = "/admin/authguard/loginevent/backtest/"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, tzinfo=JST)


@dataclass
class EventSet:
    """What :func:`build_event_set` did: Kenji, and his events by role."""

    user: Any
    events: dict[str, int] = field(default_factory=dict)
    thief_passkey_id: str = ""

    def event(self, role: str) -> LoginEvent:
        return LoginEvent.objects.get(pk=self.events[role])


def _latest() -> LoginEvent:
    return LoginEvent.objects.order_by("-pk").first()


def _password_sign_in(client: Client, when: datetime, password: str = PASSWORD) -> LoginEvent:
    with time_machine.travel(when, tick=False):
        client.get("/login/")
        client.post("/login/", {"username": "kenji", "password": password})
    return _latest()


def _passkey_sign_in(client: Client, authenticator: SoftAuthenticator, when: datetime) -> LoginEvent:
    with time_machine.travel(when, tick=False):
        client.get("/login/")
        options = api_post(client, "api-login-passkey-options")
        assert options.status_code == 200, options.content
        api_post(client, "api-login-passkey", authenticator.get(options.json()))
    return _latest()


def _step_up_totp(client: Client, when: datetime, device: Any, *, right: bool = True) -> None:
    with time_machine.travel(when, tick=False):
        code = totp_token(device) if right else wrong_code(device)
        response = api_post(client, "api-step-up-totp", {"code": code})
    assert (response.status_code == 200) is right, response.content


def _stolen(victim: Client, ip: str, ua: str) -> Client:
    """A client elsewhere carrying ``victim``'s session cookie (not its device cookie)."""
    thief = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
    thief.cookies[django_settings.SESSION_COOKIE_NAME] = victim.cookies[
        django_settings.SESSION_COOKIE_NAME
    ].value
    return thief


def _signed_out(client: Client) -> None:
    # Closing the browser: the session goes, the device cookie stays.
    client.cookies.pop(django_settings.SESSION_COOKIE_NAME, None)


def build_event_set(user_factory: Any, totp_factory: Any, authenticator: SoftAuthenticator) -> EventSet:
    """Kenji's day (module docstring), every step asserted as it happens, so a changed flow fails here."""

    with time_machine.travel(datetime(2026, 11, 1, 10, 0, tzinfo=JST), tick=False):
        kenji = user_factory("kenji", password=PASSWORD, email="kenji@example.jp")
        totp = totp_factory(kenji, name="Kenji's phone app")
        bind_passkey(kenji, authenticator, name="Kenji's PC")
    built = EventSet(kenji)
    home = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)

    # 09:00 Kenji signs in at home with his passkey; 09:05 with his password on the same browser.
    built.events["passkey_home"] = _passkey_sign_in(home, authenticator, at(9)).pk
    _signed_out(home)
    built.events["password_home"] = _password_sign_in(home, at(9, 5)).pk
    # 09:06 the session is used from a mobile network with another browser: re-checked, held at step-up;
    # 09:07 Kenji passes it there with his authenticator app (passed step-up number one). (A step-up from
    # home, where the session was verified before, would be his and leave the re-check held: that event
    # is where the session was re-checked, and only a step-up there passes it.)
    moved = _stolen(home, IP_DOCOMO, UA_FIREFOX_LINUX)
    with time_machine.travel(at(9, 6), tick=False):
        moved.get("/")
    built.events["rescored"] = _latest().pk
    _step_up_totp(moved, at(9, 7), totp)
    _signed_out(moved)
    _signed_out(home)

    # 09:30 a new phone: stepped up, passed with the app (passed step-up number two).
    phone = Client(REMOTE_ADDR=IP_DOCOMO, HTTP_USER_AGENT=UA_IPHONE)
    built.events["phone"] = _password_sign_in(phone, at(9, 30)).pk
    _step_up_totp(phone, at(9, 31), totp)

    # 11:00 two wrong guesses from a VPN; 11:05 the phished password from a VPS (curl): denied;
    # 11:10 from a residential proxy: stepped up, and a wrong code.
    gang = Client(REMOTE_ADDR=IP_VPN, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    built.events["wrong_1"] = _password_sign_in(gang, at(11), "guess-1").pk
    built.events["wrong_2"] = _password_sign_in(gang, at(11, 1), "guess-2").pk
    vps = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CURL)
    built.events["vps"] = _password_sign_in(vps, at(11, 5)).pk
    proxy = Client(REMOTE_ADDR=IP_JP_PROXY, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    built.events["proxy"] = _password_sign_in(proxy, at(11, 10)).pk
    _step_up_totp(proxy, at(11, 11), totp, right=False)

    # 11:20 the thief's passkey is on the account (enrolled through the factor lifecycle, as the passkey
    # API does after a verification the thief relayed), and 11:25 the thief signs in with it.
    thief_authenticator = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    with time_machine.travel(at(11, 20), tick=False):
        device = bind_passkey(kenji, thief_authenticator, name=THIEF_PASSKEY)
        lifecycle.record_enrollment(
            None, user=kenji, device=device, kind=FactorKind.PASSKEY, via="fresh_verification"
        )
    built.thief_passkey_id = device.persistent_id
    thief = Client(REMOTE_ADDR=IP_JP_PROXY, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    built.events["thief_passkey"] = _passkey_sign_in(thief, thief_authenticator, at(11, 25)).pk

    # 12:00 Kenji signs in with his passkey, removes the thief's, and issues recovery codes twice.
    built.events["passkey_back"] = _passkey_sign_in(home, authenticator, at(12)).pk
    with time_machine.travel(at(12, 1), tick=False):
        removed = home.post(f"/authguard/security/factors/passkey/{device.pk}/remove/")
    assert removed.status_code == 302 and not PasskeyDevice.objects.filter(pk=device.pk).exists()
    for minute in (2, 3):
        with time_machine.travel(at(12, minute), tick=False):
            issued = home.post("/authguard/security/recovery-codes/")
        assert issued.status_code == 200, issued.content[:300]
    assert RecoveryCodeDevice.objects.filter(user=kenji).count() == 1

    # 12:10 Kenji's session turns up on a hosting network: a fresh sign-in from there would be refused,
    # so the session is ended.
    with time_machine.travel(at(12, 10), tick=False):
        _stolen(home, IP_SG_VPS, UA_FIREFOX_LINUX).get("/")
    built.events["session_ended"] = _latest().pk

    mark([built.events[k] for k in ("vps", "proxy", "thief_passkey")], Feedback.FRAUD)
    return built


@pytest.fixture
def event_set(user_factory: Any, totp_factory: Any, authenticator: SoftAuthenticator) -> EventSet:
    return build_event_set(user_factory, totp_factory, authenticator)


#: What each event of the set is, in the one taxonomy.
EXPECTED_CATEGORIES = {
    "passkey_home": reports.PASSKEY_SIGN_IN,
    "password_home": reports.SIGNED_IN,
    "rescored": reports.RESCORED_STEPPED_UP,
    "phone": reports.STEPPED_UP,
    "wrong_1": reports.WRONG_PASSWORD,
    "wrong_2": reports.WRONG_PASSWORD,
    "vps": reports.DENIED,
    "proxy": reports.STEP_UP_FAILED,
    "thief_passkey": reports.DENIED_WITHOUT_PASSWORD,
    "passkey_back": reports.PASSKEY_SIGN_IN,
    "session_ended": reports.DENIED_WITHOUT_PASSWORD,
}


def test_every_event_of_the_set_is_what_happened(event_set: EventSet) -> None:
    got = {role: reports.category_of(event_set.event(role)).code for role in event_set.events}
    assert got == EXPECTED_CATEGORIES
    assert LoginEvent.objects.count() == len(EXPECTED_CATEGORIES)
    # The SQL form of the taxonomy selects exactly the same events.
    for code in set(EXPECTED_CATEGORIES.values()):
        roles = {r for r, c in EXPECTED_CATEGORIES.items() if c == code}
        pks = set(LoginEvent.objects.filter(reports.category_q([code])).values_list("pk", flat=True))
        assert pks == {event_set.events[r] for r in roles}, code


def test_dashboard_counts_the_set_exactly(event_set: EventSet) -> None:
    data = reports.dashboard(reports.DateRange(DAY, DAY))
    assert data.categories == dict(Counter(EXPECTED_CATEGORIES.values()))
    assert {k: data.totals[k] for k in reports.SERIES} == {
        "allow": 1,  # the password sign-in at home
        "passkey": 2,  # Kenji's two passkey sign-ins: never "wrong password"
        "step_up": 3,  # the phone, the re-checked session, the proxy
        "deny": 3,  # the VPS, the thief's passkey sign-in, the session ended on a hosting network
        "locked": 0,
        "bad_password": 2,
        "throttled": 0,
        "other": 0,
    }
    assert data.step_up_outcomes == {"step_up_passed": 2, "step_up_failed": 1}
    assert data.step_up_rate == pytest.approx(2 / 3)
    assert data.feedback == {"fraud": 3}
    assert sum(n for _label, n in data.score_bins) == 9  # every attempt scored on a verified first factor


def test_dashboard_page_shows_the_same_numbers(event_set: EventSet) -> None:
    viewer = staff_client(staff_user("viewer", perms=("authguard.view_loginevent",)))
    html = viewer.get(DASHBOARD, {"start": DAY.isoformat(), "end": DAY.isoformat()}).content.decode()
    for key, n in (("allow", 1), ("passkey", 2), ("step_up", 3), ("deny", 3), ("bad_password", 2)):
        assert f'id="total-{key}">{n}<' in html, key
    assert 'data-step-up="1">2<' in html and 'data-step-up="2">1<' in html  # passed, failed
    assert 'data-category="passkey_sign_in"' in html and "signed in with a passkey" in html
    assert 'id="total-locked"' not in html  # an empty stack is not shown


#: Kenji's timeline of the day: (time in JST, kind, sentence, status), sign-ins and sign-in methods.
EXPECTED_TIMELINE = [
    ("09:00", "login", "Signed in with a passkey.", ""),
    ("09:05", "login", "Signed in with the password; the risk check let it in without a second factor.", ""),
    (
        "09:06",
        "session",
        "The signed-in session was used from another network or browser; it was asked for a second factor "
        "again, and passed step-up.",
        "",
    ),
    ("09:30", "step_up", "Right password; asked for a second factor, and passed step-up.", ""),
    ("11:00", "login", "Failed login: wrong password.", ""),
    ("11:01", "login", "Failed login: wrong password.", ""),
    (
        "11:05",
        "login",
        "Right password, but the sign-in was refused: the risk was too high. "
        "An analyst marked it as confirmed fraud.",
        "",
    ),
    (
        "11:10",
        "step_up",
        "Right password; asked for a second factor, and failed step-up. "
        "An analyst marked it as confirmed fraud.",
        "",
    ),
    ("11:20", "factor", "New passkey added: “Thief's phone”. (Removed on 2026-11-20 12:01 JST.)", "removed"),
    (
        "11:25",
        "login",
        "Refused by the risk check without a password: a passkey sign-in, or a signed-in session used from "
        "another network or browser, which was then ended. An analyst marked it as confirmed fraud.",
        "",
    ),
    ("12:00", "login", "Signed in with a passkey.", ""),
    ("12:01", "factor", "The passkey “Thief's phone” was removed by the customer.", "removed"),
    (
        "12:02",
        "factor",
        "A new set of recovery codes was issued. (Replaced on 2026-11-20 12:03 JST.)",
        "replaced",
    ),
    ("12:03", "factor", "A new set of recovery codes was issued.", ""),
    (
        "12:03",
        "factor",
        "The earlier set of recovery codes was replaced by a new set; those codes no longer work.",
        "replaced",
    ),
    (
        "12:10",
        "login",
        "Refused by the risk check without a password: a passkey sign-in, or a signed-in session used from "
        "another network or browser, which was then ended.",
        "",
    ),
]


def _day_rows(entries: list[reports.TimelineEntry]) -> list[tuple[str, str, str, str]]:
    return [
        (e.local_at.strftime("%H:%M"), e.kind, e.summary, e.status)
        for e in entries
        if e.kind in ("login", "step_up", "session", "factor") and e.local_at.date() == DAY
    ]


def test_incident_timeline_tells_the_day_in_sentences_and_keeps_removed_factors(event_set: EventSet) -> None:
    entries = reports.incident_timeline(event_set.user)
    assert _day_rows(entries) == EXPECTED_TIMELINE
    # The passkey Kenji had before the day is there too, and still on the account.
    earlier = [e for e in entries if e.kind == "factor" and e.local_at.date() < DAY]
    assert [(e.summary, e.status) for e in earlier] == [
        ("New authenticator app (TOTP) added: “Kenji's phone app”.", ""),
        ("New passkey added: “Kenji's PC”.", ""),
    ]
    # No sentence tells the old, false stories.
    text = " ".join(e.summary for e in entries)
    assert "failed login: signed in" not in text.lower() and "failed login: passed" not in text.lower()
    # Each login event's row names its event and its category.
    logins = {e.reference: e for e in entries if e.reference.startswith("login event")}
    assert {logins[f"login event {pk}"].category for pk in event_set.events.values()} == set(
        EXPECTED_CATEGORIES.values()
    )


def test_incident_timeline_in_japanese_and_on_the_page(event_set: EventSet) -> None:
    with translation.override("ja"):
        rows = _day_rows(reports.incident_timeline(event_set.user))
    assert len(rows) == len(EXPECTED_TIMELINE)
    desk = staff_client(staff_user("desk", perms=("authguard.view_loginevent", "auth.view_user")))
    page = desk.get(INCIDENT, {"user": "kenji", "start": DAY.isoformat(), "end": DAY.isoformat()})
    html = page.content.decode()
    assert page.status_code == 200 and "Times are in Asia/Tokyo." in html
    # Site time zone on the page, whatever zone the request runs in.
    assert "2026-11-20 11:20:00 JST" in html and 'class="kind-factor status-removed"' in html
    assert html.count('class="factor-status"') == 4  # the thief's passkey twice, the first codes twice
    export = desk.get(INCIDENT, {"user": "kenji", "format": "csv"})
    csv_rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert csv_rows[0] == list(reports.INCIDENT_COLUMNS) and csv_rows[0][-1] == "status"
    removed = [r for r in csv_rows if "Thief's phone" in r[2]]
    assert [(r[0], r[-1]) for r in removed] == [
        ("2026-11-20T11:20:00+09:00", "removed"),
        ("2026-11-20T12:01:00+09:00", "removed"),
    ]


def test_backtest_covers_passkey_sign_ins_and_re_scored_sessions(event_set: EventSet) -> None:
    with time_machine.travel(at(18), tick=False):
        result = backtest.run_backtest({"thresholds": {"step_up": 40, "deny": 100}}, days=1)
    assert result.coverage == dict(Counter(EXPECTED_CATEGORIES.values()))
    assert result.left_out == {}
    assert result.events == len(EXPECTED_CATEGORIES)  # nothing silently left out
    for tally in (result.recorded, result.current, result.proposed):
        assert tally.fraud == 3  # the VPS, the proxy and the thief's passkey sign-in: all three counted
        assert tally.known_good == 5  # two passkey sign-ins, the home sign-in, two passed step-ups
        assert tally.passkey_sign_ins == 2
    # What happened, as recorded: the VPS denied, the proxy stepped up, the thief's passkey let in.
    recorded = result.recorded
    assert recorded.actions == {
        "allow": sum(1 for r in event_set.events if event_set.event(r).action == "allow"),
        "step_up": sum(1 for r in event_set.events if event_set.event(r).action == "step_up"),
        "deny": sum(1 for r in event_set.events if event_set.event(r).action == "deny"),
    }
    assert (recorded.caught_step_up, recorded.caught_deny) == (1, 2)  # the proxy; the VPS and the thief
    # Known-good friction as it happened: the phone and the re-checked session were asked for a factor.
    assert recorded.friction_step_up == 2 and recorded.friction_deny == 0
    lines = [line for line in backtest.iter_export(*backtest.window(1, now=at(18)))]
    assert len(lines) == len(EXPECTED_CATEGORIES)


def test_backtest_export_lines_of_passkey_and_session_events(event_set: EventSet) -> None:
    import json

    start, end = backtest.window(1, now=at(18))
    lines = {x["event"]: x for x in map(json.loads, backtest.iter_export(start, end))}
    for role in ("passkey_home", "passkey_back"):
        assert (
            lines[event_set.events[role]]["password_ok"],
            lines[event_set.events[role]]["second_factor_ok"],
        ) == (
            True,
            True,
        ), role
    assert lines[event_set.events["rescored"]]["second_factor_ok"] is True
    assert lines[event_set.events["proxy"]]["second_factor_ok"] is False
    # Refused without a password: replayed as a verified first factor, without a second one (fraud).
    assert (
        lines[event_set.events["thief_passkey"]]["password_ok"],
        lines[event_set.events["thief_passkey"]]["second_factor_ok"],
    ) == (True, False)
    assert [lines[event_set.events[r]]["password_ok"] for r in ("wrong_1", "wrong_2")] == [False, False]


def test_backtest_page_shows_what_happened_beside_the_replays(event_set: EventSet) -> None:
    with time_machine.travel(at(18), tick=False):
        # Signed in at the events' time: a session signed in "later" than the clock reads is ended.
        desk = staff_client(staff_user(perms=("authguard.view_loginevent",)))
        page = desk.post(BACKTEST, {"days": 1, "step_up": 40, "deny": 100, "signal_options": ""})
    html = page.content.decode()
    result = page.context["result"]
    assert f'data-metric="catches-recorded">{result.recorded.catches}<' in html
    assert f'data-metric="friction-recorded">{result.recorded.friction}<' in html
    assert 'id="backtest-coverage"' in html and 'data-category="rescored_stepped_up"' in html
    assert "what happened (recorded decisions)" in html


def test_a_throttled_attempt_is_counted_as_left_out_not_dropped(event_set: EventSet, settings: Any) -> None:
    # The gang's third try from the VPN, once two failures from that address are the limit: throttled,
    # its password never checked.
    settings.AUTHGUARD_LOGIN_THROTTLE = {"ip_failures": 2}
    gang = Client(REMOTE_ADDR=IP_VPN, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    assert _password_sign_in(gang, at(11, 2), "guess-3").outcome == "throttled"
    with time_machine.travel(at(18), tick=False):
        result = backtest.run_backtest({"thresholds": {"step_up": 40, "deny": 100}}, days=1)
    assert result.left_out == {reports.THROTTLED: 1}
    assert result.events == len(EXPECTED_CATEGORIES)
    data = reports.dashboard(reports.DateRange(DAY, DAY))
    assert data.totals["throttled"] == 1 and data.totals["bad_password"] == 2


# -- the taxonomy itself ---------------------------------------------------------------------------------


def test_the_sql_form_of_the_taxonomy_agrees_with_it_on_every_combination() -> None:
    from authguard.choices import Action
    from authguard.models import Outcome

    rows = [
        LoginEvent(created_at=at(8), username="x", password_ok=ok, outcome=outcome, action=action)
        for ok in (True, False)
        for outcome in Outcome.values
        for action in Action.values
    ]
    LoginEvent.objects.bulk_create(rows)
    events = list(LoginEvent.objects.all())
    assert len(events) == 2 * len(Outcome.values) * len(Action.values)
    for code in reports.CATEGORIES:
        expected = {e.pk for e in events if reports.categorize(e.password_ok, e.outcome, e.action) == code}
        got = set(LoginEvent.objects.filter(reports.category_q([code])).values_list("pk", flat=True))
        assert got == expected, code
    # Nothing recorded today falls outside the table except impossible combinations.
    other = {
        (e.password_ok, e.outcome)
        for e in events
        if reports.categorize(e.password_ok, e.outcome, e.action) == "other"
    }
    assert other == {(False, Outcome.SIGNED_IN), (False, Outcome.STEP_UP_PENDING), (True, Outcome.RESCORED)}


@pytest.mark.parametrize(
    ("password_ok", "outcome", "action", "code"),
    [
        (True, "signed_in", "allow", reports.SIGNED_IN),
        (False, "passkey_login", "allow", reports.PASSKEY_SIGN_IN),
        (False, "passkey_login", "step_up", reports.PASSKEY_SIGN_IN),  # the passkey was the step-up
        (True, "step_up_passed", "step_up", reports.STEPPED_UP),
        (False, "step_up_passed", "step_up", reports.RESCORED_STEPPED_UP),
        (False, "step_up_failed", "step_up", reports.RESCORED_STEP_UP_FAILED),
        (False, "rescored", "step_up", reports.RESCORED_PENDING),
        (True, "refused", "deny", reports.DENIED),
        (True, "refused", "step_up", reports.DENIED),  # no factor to step up with
        (True, "refused", "allow", reports.LOCKED),  # only a lock refuses an allowed score
        (False, "refused", "allow", reports.LOCKED),  # a locked account's attempt, password unchecked
        (False, "refused", "deny", reports.DENIED_WITHOUT_PASSWORD),
        (False, "bad_password", "deny", reports.WRONG_PASSWORD),
        (False, "throttled", "allow", reports.THROTTLED),
    ],
)
def test_categorize(password_ok: bool, outcome: str, action: str, code: str) -> None:
    assert reports.categorize(password_ok, outcome, action) == code


def test_a_locked_account_s_attempts_read_as_locked(user_factory: Any) -> None:
    from authguard.login import lockout

    with time_machine.travel(at(8), tick=False):
        kenji = user_factory("kenji", password=PASSWORD)
        while not lockout.is_locked(kenji):
            lockout.record_failure(kenji, kind="password")
    event = _password_sign_in(Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN), at(8, 30))
    assert event.outcome == "refused" and event.password_ok is False
    row = next(e for e in reports.incident_timeline(kenji) if e.reference == f"login event {event.pk}")
    assert row.summary == "A sign-in was refused: the account was locked (no password was checked)."
    data = reports.dashboard(reports.DateRange(DAY, DAY))
    assert data.totals["bad_password"] == 0 and data.totals["locked"] + data.totals["deny"] == 1
