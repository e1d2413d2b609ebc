"""Red team round thirty-two (b): a copied API token against the browser rules a session has.

Sessions are held when their browser goes back a release (``places.went_back``, round twenty-nine) or back to
a browser they left for another (``places.returned_browser``, round thirty). ``token_binding`` checks only the
two-places rule. And a token's re-score has no device at all: the same copy that is denied as a session
(device signals) is allowed as a token from another country. Real DRF, the real risk engine, the test GeoIP
databases; time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

# isort: split
from .test_drf import api, obtain, with_token

# isort: split
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from authguard.models import LoginEvent

from . import test_device_cookie_generations as gen
from .conftest import HANAKO_PASSWORD, IP_TOKYO, IP_TOKYO_2, IP_US_HOME, UA_CHROME_WIN
from .test_orders_copied_browser_os_walkarounds import UA_CHROME_MAC

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]

PORTFOLIO = "/drf/portfolio"
UA_CHROME_WIN_OLDER = UA_CHROME_WIN.replace("131.0.0.0", "120.0.0.0")


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _events(user: Any, since: int) -> list[tuple[Any, ...]]:
    rows = LoginEvent.objects.filter(user=user).order_by("pk")[since:]
    return [(e.ip, e.outcome, e.action, e.reasons) for e in rows]


def _her_token(clock: Any) -> str:
    answer = obtain(api(IP_TOKYO, UA_CHROME_WIN))
    assert answer.status_code == 200, answer.content
    token = answer.json()["token"]
    for _ in range(3):
        clock.shift(timedelta(minutes=10))
        assert with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get(PORTFOLIO).status_code == 200
    return token


@pytest.mark.battery(62)
def test_a_copied_token_taking_turns_with_her_app_in_another_os_is_stopped(
    alice_with_totp: Any, clock: Any
) -> None:
    """Her app's token (Chrome on Windows, at home in Tokyo) is copied by an infostealer. The thief uses it
    from another address of her ISP in Tokyo in Chrome on a Mac. Each turn is another browser: re-scored,
    allowed (her network, her city), rebound; her app's next call is another browser again, allowed again.
    A browser session doing this is held (``session_in_two_browsers``, round thirty). Secure: a token back
    in a browser it left for another is ended (or its re-score counts as a step-up at least)."""
    token = _her_token(clock)
    since = LoginEvent.objects.filter(user=alice_with_totp).count()
    seen = []
    for _ in range(3):
        clock.shift(timedelta(minutes=2))
        seen.append(("copy", with_token(api(IP_TOKYO_2, UA_CHROME_MAC), token).get(PORTFOLIO).status_code))
        clock.shift(timedelta(minutes=2))
        seen.append(("her", with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get(PORTFOLIO).status_code))
    outcome = (seen, _events(alice_with_totp, since))
    assert any(status != 200 for _, status in seen), outcome


@pytest.mark.battery(62)
def test_a_copied_token_going_back_a_release_is_stopped(alice_with_totp: Any, clock: Any) -> None:
    """The thief's kit sends her user agent at an older Chrome (120) from another address of her ISP.
    Sessions: an older release than the bound one is a copy (``device_user_agent_backwards``, held at a
    step-up). Now: each turn is another release, re-scored and allowed, no event. (A kit sending her exact
    agent is the documented same-network limit; this is the session rule's token twin.) Secure: a token
    going back a release is ended (the engine has no device cookie to notice it by)."""
    token = _her_token(clock)
    since = LoginEvent.objects.filter(user=alice_with_totp).count()
    seen = []
    for _ in range(3):
        clock.shift(timedelta(minutes=2))
        copy = with_token(api(IP_TOKYO_2, UA_CHROME_WIN_OLDER), token)
        seen.append(("copy", copy.get(PORTFOLIO).status_code))
        clock.shift(timedelta(minutes=2))
        seen.append(("her", with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get(PORTFOLIO).status_code))
    outcome = (seen, _events(alice_with_totp, since))
    assert any(status != 200 for _, status in seen), outcome


# -- a copied token abroad: the re-score without the device the token was issued to ----------------------


def _hanako_with_history(brokerage_customer: Any, start: Any) -> Any:
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    for days in (10, 7, 4):  # her app signs in at home now and then (allowed, learned)
        with time_machine.travel(start - timedelta(days=days), tick=False):
            answer = obtain(api(IP_TOKYO, UA_CHROME_WIN), username="hanako", password=HANAKO_PASSWORD)
            assert answer.status_code == 200, answer.content
    return hanako


@pytest.mark.battery(62)
def test_a_copied_token_replayed_abroad_half_an_hour_after_her_use_at_home_ends(
    brokerage_customer: Any,
) -> None:
    """Hanako's app (her browser's agent) signs in at home in Tokyo and is used. An infostealer's copy of the
    token is replayed 32 minutes later from a residential ISP in Los Angeles with her exact agent. Another
    country: re-scored by the real engine, which sees no device (a token's re-score has none) and scores
    ``unfamiliar_login`` +8, ``impossible_travel`` +30 = 38: allow. The token is rebound to Los Angeles and
    serves the account; nothing is recorded. The same copy of her *browser session* (cookie jar) from there
    is denied at 100 (``device_moved``, ``device_new_network``, ``settled_device_moved``...; the held twin
    below). Secure: a token's re-score knows the device it was issued to (its device cookie at issue, kept
    in the binding) so the device signals fire, or a country change is a step-up at least: the token ends."""
    start = timezone.now()
    hanako = _hanako_with_history(brokerage_customer, start)
    with time_machine.travel(start, tick=False) as clock:
        app = api(IP_TOKYO, UA_CHROME_WIN)
        token = obtain(app, username="hanako", password=HANAKO_PASSWORD).json()["token"]
        assert with_token(app, token).get(PORTFOLIO).status_code == 200
        clock.shift(timedelta(minutes=32))
        since = LoginEvent.objects.filter(user=hanako).count()
        answer = with_token(api(IP_US_HOME, UA_CHROME_WIN), token).get(PORTFOLIO)
        outcome = (answer.status_code, answer.content, _events(hanako, since))
        assert answer.status_code in (401, 403), outcome
        assert not Token.objects.filter(key=token).exists(), outcome


def test_held_the_same_copy_of_her_browser_session_abroad_is_denied(brokerage_customer: Any) -> None:
    """HELD (control): her browser session's cookie jar replayed from Los Angeles 32 minutes later is
    re-scored with its device cookie and denied."""
    start = timezone.now()
    brokerage_customer(holdings={"7203": 100}, totp=True)
    for days in (10, 7, 4):
        with time_machine.travel(start - timedelta(days=days), tick=False):
            browser = gen._client()
            browser.get("/api/csrf")
            assert gen._login(browser)["status"] == "ok"
    with time_machine.travel(start, tick=False) as clock:
        browser = gen._browser_in_use()
        clock.shift(timedelta(minutes=32))
        copy = Client(REMOTE_ADDR=IP_US_HOME, HTTP_USER_AGENT=UA_CHROME_WIN)
        for name in (settings.SESSION_COOKIE_NAME, "authguard_device"):
            copy.cookies[name] = browser.cookies[name].value
        assert copy.get("/api/portfolio").status_code == 401
        event = LoginEvent.objects.latest("pk")
        assert (event.ip, event.action) == (IP_US_HOME, "deny")
