"""Red team round thirty-two (b): a token client's device cookie never moved on, so a copy of it was never
behind. Fixed (authguard.sessions.token_devices): the answer that hands out a token re-issues the client's
device cookie, and the client's next presentation of it (an API call with the token, or its next token
sign-in) confirms it.

docs/drf.md asks API clients to keep the ``authguard_device`` cookie of their answers (a
``requests.Session`` does). A browser's device cookie moves on to a new generation at every verified
sign-in and a copy taken before is then behind (``device_cookie_superseded``, battery case 62). A token
login runs in a private session and ``_in_session`` drops ``BOUND_ATTR``, so the middleware's
``_verified_in_this_request`` was false and the token client's cookie was never re-issued, nor ever
confirmed: an infostealer's copy of her API client's cookie jar stayed "her device" for good.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

# isort: split
from .test_drf import TOKEN_URL, api

# isort: split
import time_machine

from authguard.models import KnownDevice, LoginEvent, TokenActivity
from authguard.risk.context import device_cookie_generation, device_hash, device_id_from_cookie
from authguard.sessions import token_devices
from authguard.sessions.device_generations import LEFT_BEHIND_CODES

from . import test_device_cookie_generations as gen
from .conftest import HANAKO_PASSWORD, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]

DEVICE = "authguard_device"
PORTFOLIO_URL = "/drf/portfolio"


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100}, totp=True)


def _token_login(client: Any) -> Any:
    return client.post(TOKEN_URL, {"username": "hanako", "password": HANAKO_PASSWORD}, format="json")


def _sign_in_and_use(app: Any) -> None:
    """Her app signs in and calls the API with its token, sending the cookies it keeps."""
    answer = _token_login(app)
    assert answer.status_code == 200, answer.content
    app.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
    assert app.get(PORTFOLIO_URL).status_code == 200
    app.credentials()


def _her_api_client() -> Any:
    """Her trading app at home (her browser's agent), keeping its cookies like a requests.Session."""
    return api(IP_TOKYO, UA_CHROME_WIN)


@pytest.mark.battery(62)
def test_an_infostealers_copy_of_her_api_clients_jar_two_sign_ins_old_is_stepped_up(hanako: Any) -> None:
    """Her API client signs in at home (a token login, allowed), uses its token, and keeps its device cookie.
    Malware copies its cookie jar and her saved password. She signs in twice more over the next days; the
    thief then replays the copied device cookie and the password at the token endpoint from her own line with
    her agent. The browser twin (tests/test_device_cookie_generations.py, battery 62) is stepped up with
    ``device_cookie_superseded`` and she is told. Before: her client's cookie was never re-issued, the copy
    was identical to hers, the thief's login was allowed and got a token (and ended hers). Secure: a verified
    token login (or step-up exchange) moves the client's device cookie on as a browser sign-in does, and a
    copy left behind is stepped up."""
    with time_machine.travel(gen.START, tick=False) as clock:
        app = _her_api_client()
        _sign_in_and_use(app)
        stolen = app.cookies[DEVICE].value  # the malware's copy of the jar, this morning
        issued = [stolen]
        for _ in range(2):
            clock.shift(timedelta(days=1))
            _sign_in_and_use(app)
            issued.append(app.cookies[DEVICE].value)
        clock.shift(timedelta(days=1))
        thief = api(IP_TOKYO, UA_CHROME_WIN)
        thief.cookies[DEVICE] = stolen
        answer = _token_login(thief)
        event = LoginEvent.objects.filter(user=hanako).latest("pk")
        outcome = (
            answer.status_code,
            answer.json().get("status"),
            event.action,
            event.reasons,
            f"her client's cookie re-issued: {len(set(issued)) > 1}",
        )
        assert answer.status_code == 401 and "token" not in answer.json(), outcome


def test_held_the_browser_twin_is_stepped_up(hanako: Any) -> None:
    """HELD (control, battery 62): the same with her browser and the JSON login is stepped up."""
    with time_machine.travel(gen.START, tick=False) as clock:
        browser = gen._browser_in_use()
        stolen = gen._cookie(browser)
        gen._later_sign_ins(browser, clock, 2)
        clock.shift(timedelta(days=1))
        assert gen._login(gen._copy(stolen))["status"] == "step_up_required"


def _issued(app: Any) -> Any:
    """The generation the token's state waits to see (``tdg``), or None once confirmed (or no token)."""
    row = TokenActivity.objects.first()
    return row.binding.get(token_devices.ISSUED_KEY) if row is not None else None


def test_her_app_that_pins_one_cookie_value_is_never_taken_for_a_copy(hanako: Any) -> None:
    """A client that sends one cookie value it saved instead of keeping its jar (docs/drf.md allows it) never
    shows a newer generation, so none is confirmed and its pinned cookie stays current: five sign-ins a day
    apart, each allowed with no left-behind finding (confirming at issue had made it a copy of itself)."""
    with time_machine.travel(gen.START, tick=False) as clock:
        app = _her_api_client()
        assert _token_login(app).status_code == 200
        pinned = app.cookies[DEVICE].value
        for _ in range(5):
            clock.shift(timedelta(days=1))
            app.cookies[DEVICE] = pinned
            answer = _token_login(app)
            assert answer.status_code == 200, answer.content
            event = LoginEvent.objects.filter(user=hanako).latest("pk")
            assert event.action == "allow" and not set(event.reasons) & LEFT_BEHIND_CODES, event.reasons
            app.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
            app.cookies[DEVICE] = pinned
            assert app.get(PORTFOLIO_URL).status_code == 200
            app.credentials()
        row = KnownDevice.objects.get(user=hanako, cookie_hash=device_hash(device_id_from_cookie(pinned)))
        assert row.cookie_generation in (None, device_cookie_generation(pinned))


def test_an_api_call_confirms_the_generation_its_sign_in_carried_and_an_older_one_confirms_nothing(
    hanako: Any,
) -> None:
    """The token's answer re-issues the device cookie (same device id, a newer generation) and the token's
    state waits for it; a call presenting the older cookie leaves it waiting and the account's row as it
    was; the call presenting the new one makes it the device's newest and stops waiting."""
    with time_machine.travel(gen.START, tick=False) as clock:
        app = _her_api_client()
        _sign_in_and_use(app)
        clock.shift(timedelta(days=1))
        _sign_in_and_use(app)  # the device is learned with the cookie it presented
        older = app.cookies[DEVICE].value
        clock.shift(timedelta(hours=1))
        answer = _token_login(app)
        newer = app.cookies[DEVICE].value
        assert device_id_from_cookie(newer) == device_id_from_cookie(older) and newer != older
        issued = _issued(app)
        assert issued == [device_hash(device_id_from_cookie(newer)), device_cookie_generation(newer)]
        row = KnownDevice.objects.get(user=hanako, cookie_hash=issued[0])
        before = row.cookie_generation

        app.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
        app.cookies[DEVICE] = older
        assert app.get(PORTFOLIO_URL).status_code == 200
        row.refresh_from_db()
        assert row.cookie_generation == before and _issued(app) == issued

        app.cookies[DEVICE] = newer
        assert app.get(PORTFOLIO_URL).status_code == 200
        row.refresh_from_db()
        assert row.cookie_generation == device_cookie_generation(newer) and _issued(app) is None


def test_a_step_up_exchange_moves_her_api_clients_cookie_on_too(hanako: Any) -> None:
    """A token sign-in stepped up (her app, new, on a hosting network abroad) and passed with her app code:
    the exchange's answer re-issues the device cookie as the browser's step-up does, and the token waits for
    it."""
    with time_machine.travel(gen.START, tick=False):
        app = api(IP_SG_VPS, UA_CHROME_WIN)
        pending = _token_login(app)
        assert pending.status_code == 401, pending.content
        before = app.cookies[DEVICE].value  # a first cookie, as a browser gets on the login page
        assert _issued(app) is None
        passed = app.post(
            "/api/auth/step-up/totp",
            {"step_up_token": pending.json()["step_up_token"], "code": totp_token(hanako.totp)},
            format="json",
        )
        assert passed.status_code == 200, passed.content
        after = app.cookies[DEVICE].value
        assert device_id_from_cookie(after) == device_id_from_cookie(before)
        assert device_cookie_generation(after) > device_cookie_generation(before)
        assert _issued(app) == [device_hash(device_id_from_cookie(after)), device_cookie_generation(after)]
