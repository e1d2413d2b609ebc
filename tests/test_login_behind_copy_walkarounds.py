"""Red team, round thirty-two (c): an infostealer's copy one sign-in old, talked down by the statistics.

docs/dbsc.md ("A cookie left behind"): once the customer signs in again, the infostealer's copy of her device
cookie is one generation behind, ``device_cookie_behind`` (+40, no known-device discount). That is excused
*at home* only ("a browser that crashed before it wrote its newest cookie... at home it scores 35 and is
allowed, from a new city or network it is stepped up"). The 35 is a site with one customer. On a site with
other customers (a few dozen suffice; any brokerage has thousands, and a thief can add his own accounts'
sign-ins), her network is rare site-wide, so ``familiar_login`` is worth -12 to -17 on the same sign-in: the
copy is never a "new browser" for ``new_device_can_lower`` (the cookie is known), so nothing stops the
familiar network from paying for the copy. Her phone's copy is allowed from her ISP in another city and
even from a network she never used; her PC's from any other address of her ISP in her city, the residential
proxy dbsc.md names as the infostealer buyer's. The sign-in is not a new browser, so no "new sign-in" mail
either (``device_cookie_behind`` tells no one).

Real sign-ins through the demo's JSON API and the HTML login form, the real middleware (the cookie's
generation is confirmed by a real request), real GeoIP test databases, time-machine for time.

Fixed: a copy one generation behind is never talked down by the familiar part of the login away from an
address the account used (``signals_profile._copy_elsewhere``), is stepped up on a network or in a city its
device never used (``device_cookie_behind`` with a step-up floor), and a copy let in is never learned
(``login.flow.COPIED_COOKIE_FINDINGS``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from authguard.models import LoginEvent, Notification

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import (
    IP_DOCOMO,
    IP_OSAKA,
    IP_TOKYO,
    IP_US_HOME,
    IP_V6_SAPPORO,
    UA_CHROME_WIN,
    UA_FIREFOX_LINUX,
    UA_IPHONE,
)
from .test_sessions_binding_anchor import (  # noqa: F401  (rt_geoip, rt_geoip_dir: fixtures)
    DOCOMO_OSAKA,
    OCN_NAGOYA,
    OCN_SAPPORO,
    OCN_TOKYO,
    rt_geoip,
    rt_geoip_dir,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("rt_geoip")]

DEVICE = "authguard_device"
START = datetime(2026, 12, 7, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
OTHER_PASSWORD = "other-customer-pw-1"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100}, totp=True)


def _login(client: Client, username: str = "hanako", password: str = PASSWORD) -> dict[str, Any]:
    answer = client.post(
        "/api/login", {"username": username, "password": password}, content_type="application/json"
    )
    return answer.json()


def _last() -> LoginEvent:
    return LoginEvent.objects.order_by("-pk").first()


def _summary(event: LoginEvent) -> str:
    parts = ", ".join(f"{f['code']} {f['score']:+d}" for f in event.findings if f["score"])
    return f"{event.action} at {event.score} ({parts})"


def _other_customers(user_factory: Any, count: int = 30) -> None:
    """The site's other customers (or accounts the thief opened) sign in, once each, from their own lines:
    what every live portal's population counts hold, and what makes her own network rare site-wide."""
    lines = [DOCOMO_OSAKA, IP_OSAKA, OCN_NAGOYA, IP_DOCOMO, IP_V6_SAPPORO, IP_US_HOME]
    for number in range(count):
        user_factory(f"customer{number}", password=OTHER_PASSWORD)
        client = Client(REMOTE_ADDR=lines[number % len(lines)], HTTP_USER_AGENT=UA_FIREFOX_LINUX)
        answer = _login(client, f"customer{number}", OTHER_PASSWORD)
        assert answer["status"] == "ok" or lines[number % len(lines)] == IP_US_HOME, _summary(_last())


def _her_browser_and_a_copy(clock: Any, ua: str) -> tuple[Client, str]:
    """Her browser at home signs in on ten days; the infostealer copies its cookie after the ninth; her tenth
    sign-in moves the cookie on (confirmed by her next request). Returns her browser and the copy."""
    browser = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=ua)
    browser.get("/api/csrf")
    stolen = ""
    for day in range(10):
        browser.post("/api/logout")
        assert _login(browser)["status"] == "ok", _summary(_last())
        assert browser.get("/api/portfolio").status_code == 200  # confirms the new generation
        if day == 8:
            stolen = browser.cookies[DEVICE].value
        clock.shift(timedelta(days=1))
    assert browser.cookies[DEVICE].value != stolen
    return browser, stolen


def _thief(ip: str, ua: str, stolen: str) -> Client:
    thief = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
    thief.cookies[DEVICE] = stolen
    return thief


@pytest.mark.battery(62)
def test_her_phones_copy_one_sign_in_old_is_allowed_from_her_isp_in_another_city(
    hanako: Any, user_factory: Any, clock: Any
) -> None:
    """Her iPhone signs in at home (OCN, Tokyo) for ten days; an infostealer took its cookie jar the day
    before her last sign-in. The next day the thief posts the real HTML login form from a residential proxy on
    her ISP in Sapporo, 830 km away, with her user agent and the copy. Now: ``device_cookie_behind`` +40,
    ``device_new_city`` +2 (a phone), ``familiar_login`` -15: 27, allowed, a verified session, and no "new
    sign-in" mail. Secure: a copy behind the cookie its browser holds, away from where that browser
    was, is stepped up (the crash excuse is for home); the familiar network never pays for it."""
    _other_customers(user_factory)
    _, stolen = _her_browser_and_a_copy(clock, UA_IPHONE)
    mails = Notification.objects.filter(user=hanako).count()
    thief = _thief(OCN_SAPPORO, UA_IPHONE, stolen)
    thief.get("/login/")
    answer = thief.post("/login/", {"username": "hanako", "password": PASSWORD})
    event = _last()
    assert event.ip == OCN_SAPPORO and "device_cookie_behind" in event.reasons
    told = Notification.objects.filter(user=hanako).count() - mails
    assert answer.get("Location", "").startswith("/authguard/step-up/"), (
        f"her phone's one-behind copy from her ISP 830 km away was {_summary(event)}; "
        f"redirected to {answer.get('Location')!r}; {told} message(s) to her"
    )


@pytest.mark.battery(62)
def test_her_phones_copy_one_sign_in_old_is_allowed_from_a_network_she_never_used(
    hanako: Any, user_factory: Any, clock: Any
) -> None:
    """The same copy of her iPhone's cookie, replayed through the demo's JSON login from a mobile proxy on
    Docomo, a network her account never used. Now: +40 behind, ``device_new_network`` +9 (a phone),
    ``familiar_login`` -12: 37, allowed (dbsc.md says a new network steps it up). Secure: stepped up."""
    _other_customers(user_factory)
    _, stolen = _her_browser_and_a_copy(clock, UA_IPHONE)
    thief = _thief(IP_DOCOMO, UA_IPHONE, stolen)
    answer = _login(thief)
    event = _last()
    assert event.ip == IP_DOCOMO and "device_cookie_behind" in event.reasons
    assert answer["status"] == "step_up_required", f"from a network she never used: {_summary(event)}"


@pytest.mark.battery(62)
def test_her_pcs_copy_one_sign_in_old_is_allowed_from_another_line_of_her_isp_in_her_city(
    hanako: Any, user_factory: Any, clock: Any
) -> None:
    """Her Windows PC's copy, one sign-in old, from another /24 of her ISP in Tokyo (the residential proxy
    docs/dbsc.md names as the infostealer buyer's, the very case generations exist for), JSON login.
    Now: +40 behind, ``familiar_login`` -15: 25, allowed. Secure: stepped up (not her address: no crash
    excuse)."""
    _other_customers(user_factory)
    _, stolen = _her_browser_and_a_copy(clock, UA_CHROME_WIN)
    thief = _thief(OCN_TOKYO, UA_CHROME_WIN, stolen)
    answer = _login(thief)
    event = _last()
    assert event.ip == OCN_TOKYO and "device_cookie_behind" in event.reasons
    assert answer["status"] == "step_up_required", f"another line of her ISP in her city: {_summary(event)}"


def test_held_her_pcs_copy_one_sign_in_old_from_her_isp_in_another_city(
    hanako: Any, user_factory: Any, clock: Any
) -> None:
    """Her settled PC's copy from her ISP in Sapporo: ``settled_device_moved`` +30 keeps it at a step-up,
    whatever the population."""
    _other_customers(user_factory)
    _, stolen = _her_browser_and_a_copy(clock, UA_CHROME_WIN)
    answer = _login(_thief(OCN_SAPPORO, UA_CHROME_WIN, stolen))
    assert answer["status"] == "step_up_required", _summary(_last())


def test_held_without_other_customers_the_copy_scores_forty(hanako: Any, clock: Any) -> None:
    """The site's only customer (the tests' usual world): the same copy from another line of her ISP in her
    city scores the bare +40 and is stepped up. Only a population makes ``familiar_login`` pay for it."""
    _, stolen = _her_browser_and_a_copy(clock, UA_CHROME_WIN)
    answer = _login(_thief(OCN_TOKYO, UA_CHROME_WIN, stolen))
    assert answer["status"] == "step_up_required", _summary(_last())


@pytest.mark.battery(62)
def test_the_allowed_copy_teaches_her_profile_his_network_and_his_next_browser_becomes_hers(
    hanako: Any, user_factory: Any, clock: Any
) -> None:
    """Where the one-behind copy leads. The allowed sign-in is learned: his mobile proxy's network (Docomo,
    never hers) and address join her profile, and the id is retired, so his answer carries a *new* device id.
    Next day that new browser signs in from the same proxy: a new browser at an address "the account signs in
    from", ``new_device`` +25 alone, allowed and learned; from the third day on it is her known device
    (``known_device`` -10, ``familiar_login``), score 0, every day, with her password alone. Secure: a sign-in
    carrying a copied-cookie finding teaches the profile nothing (as a step-up with a relayed code teaches
    nothing), and the first allowed copy is stepped up anyway (above)."""
    _other_customers(user_factory)
    _, stolen = _her_browser_and_a_copy(clock, UA_IPHONE)
    thief = _thief(IP_DOCOMO, UA_IPHONE, stolen)  # his mobile proxy's sticky address
    first = _login(thief)
    first_event = _summary(_last())
    outcomes = []
    for _day in range(3):
        clock.shift(timedelta(days=1))
        thief.post("/api/logout")
        answer = _login(thief)
        outcomes.append(f"{answer['status']}: {_summary(_last())}")
    assert first["status"] == "step_up_required" or not outcomes[-1].startswith("ok"), (
        f"copy {first['status']}: {first_event}; then his own browser: " + " | ".join(outcomes)
    )


@pytest.mark.parametrize(
    "ip", [OCN_TOKYO, OCN_SAPPORO, IP_DOCOMO], ids=["her-isp-her-city", "her-isp-sapporo", "docomo"]
)
def test_held_without_a_cookie_her_user_agent_on_her_isp_is_stepped_up_whatever_the_population(
    hanako: Any, user_factory: Any, clock: Any, ip: str
) -> None:
    """No cookie at all (phished password, her user agent): a new browser, which ``familiar_login`` may not
    lower (``new_device_can_lower``), so the population buys nothing: stepped up."""
    _other_customers(user_factory)
    _her_browser_and_a_copy(clock, UA_IPHONE)
    answer = _login(Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_IPHONE))
    assert answer["status"] == "step_up_required", _summary(_last())
