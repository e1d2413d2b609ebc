"""Red team round thirty-two (b): a token client's device cookie never moves on, so a copy of it is never
behind.

docs/drf.md asks API clients to keep the ``authguard_device`` cookie of their answers (a
``requests.Session`` does). A browser's device cookie moves on to a new generation at every verified
sign-in and a copy taken before is then behind (``device_cookie_superseded``, battery case 62). A token
login runs in a private session and ``_in_session`` drops ``BOUND_ATTR``, so the middleware's
``_verified_in_this_request`` is false and the token client's cookie is never re-issued, nor ever confirmed:
an infostealer's copy of her API client's cookie jar stays "her device" for good.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

# isort: split
from .test_drf import TOKEN_URL, api

# isort: split
import time_machine

from authguard.models import LoginEvent

from . import test_device_cookie_generations as gen
from .conftest import HANAKO_PASSWORD, IP_TOKYO, UA_CHROME_WIN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]

DEVICE = "authguard_device"


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100}, totp=True)


def _token_login(client: Any) -> Any:
    return client.post(TOKEN_URL, {"username": "hanako", "password": HANAKO_PASSWORD}, format="json")


def _her_api_client() -> Any:
    """Her trading app at home (her browser's agent), keeping its cookies like a requests.Session."""
    return api(IP_TOKYO, UA_CHROME_WIN)


@pytest.mark.xfail(
    strict=True,
    reason="open, red team round thirty-two (docs/drf.md, Not covered yet): the token endpoint issues no "
    "new device-cookie generation, so an API client's copied jar never falls behind",
)
def test_an_infostealers_copy_of_her_api_clients_jar_two_sign_ins_old_is_stepped_up(hanako: Any) -> None:
    """Her API client signs in at home (a token login, allowed) and keeps its device cookie. Malware copies
    its cookie jar and her saved password. She signs in twice more over the next days; the thief then
    replays the copied device cookie and the password at the token endpoint from her own line with her
    agent. The browser twin (tests/test_device_cookie_generations.py, battery 62) is stepped up with
    ``device_cookie_superseded`` and she is told. Now: her client's cookie is never re-issued, the copy is
    identical to hers, the thief's login is allowed and gets a token (and ends hers). Secure: a verified
    token login (or step-up exchange) moves the client's device cookie on as a browser sign-in does, and a
    copy left behind is stepped up."""
    with time_machine.travel(gen.START, tick=False) as clock:
        app = _her_api_client()
        first = _token_login(app)
        assert first.status_code == 200, first.content
        stolen = app.cookies[DEVICE].value  # the malware's copy of the jar, this morning
        issued = [stolen]
        for _ in range(2):
            clock.shift(timedelta(days=1))
            again = _token_login(app)
            assert again.status_code == 200, again.content
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
