"""Red team, round twenty-seven (a): sessions and tokens after round twenty-six.

Round twenty-six judges a pending session's step-up by its login's own score only when it is posted from
the very context that login was scored in (``sessions.state.SCORED_KEYS``; ``scored_context`` reads ``sc``,
else the binding ``b``). Each test not marked HELD fails on the code it was written against (1abf015).

1. A session signed in without a request (a websocket login: Channels' ``login(scope, user)``; nothing
   scored it) is adopted as *pending* by ``sessions.state.adopt`` at its first HTTP request, and bound to
   that request's context. That binding was never scored, yet ``scored_context`` falls back to it: a
   step-up posted from where the thief's first request came from (a Tor exit) is "the scored context",
   never scored, and the session is verified and bound at the Tor exit, where a sign-in is refused.

2. A step-up posted from the very context its login was scored in is judged by that score however stale:
   the desk's network block added since (battery case 68), or her PC coming back into use at home since
   (device_in_two_places), makes a sign-in there a refusal, yet the pending login (browser or parked token
   login) completes there.
3. A parked token login (``authguard.drf``'s private session) is in no ``SessionRecord``: the desk's "end
   sessions" and her own "sign out everywhere else" leave it, and it is exchanged for a token afterwards.

HELD: round twenty-six's ``x`` for an API token: a copy moved onto a Tor exit on her own ISP in her own city
is re-scored and ended (no test covered the token side); a desk lock ends a parked token login.

Real views (the demo's JSON login, authguard's JSON and HTML step-up, DRF views behind authguard's
permission classes), the real risk engine, synthetic GeoIP databases, real TOTP codes.
"""

from __future__ import annotations

import json
from importlib import import_module
from typing import Any

import pytest

# isort: split
# test_drf skips this module without djangorestframework (and fails under CI=true): imported first.
from .test_drf import with_token  # noqa: F401

# isort: split
from pathlib import Path

from django.conf import settings as django_settings
from django.test import Client

from authguard.models import LoginEvent
from authguard.testing import GeoNetwork, write_geoip_databases

from .conftest import IP_TOR, TEST_NETWORKS, UA_CHROME_WIN, totp_token
from .test_requestless_sign_ins import websocket_login

SessionStore = import_module(django_settings.SESSION_ENGINE).SessionStore
PASSWORD = "correct horse battery"


def _events(user: Any) -> list[tuple[str, str, str]]:
    return [(e.ip, e.outcome, e.action) for e in LoginEvent.objects.filter(user=user).order_by("pk")]


def _state(client: Client) -> dict[str, Any]:
    key = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return SessionStore(session_key=key).load().get("_authguard") or {}


def _served(client: Client, ip: str) -> tuple[int, int]:
    portfolio = client.get("/drf/portfolio", REMOTE_ADDR=ip).status_code
    withdraw = client.post("/drf/withdraw", REMOTE_ADDR=ip).status_code
    return portfolio, withdraw


def _victim(user_factory: Any, browser_at: Any, totp_factory: Any) -> tuple[Any, Any]:
    """alice signs in at home (Tokyo, Chrome) twice, and has an authenticator app (her phone)."""
    from .test_drf import customer

    alice = customer(user_factory, browser_at, "alice")
    return alice, totp_factory(alice)


# -- 1. an adopted (never scored) pending session: its first request's context passes for the scored one ----


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.parametrize("page", ["json", "html"])
def test_a_websocket_sign_in_is_not_stepped_up_unscored_from_the_tor_exit_of_its_first_request(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any, page: str
) -> None:
    """The portal also signs customers in over its websocket (Channels' ``login(scope, user)``, no request:
    nothing scores it). The thief signs in there with her password, then takes the session cookie to HTTP
    through a Tor exit. ``adopt`` holds the session (pending, no login event) and binds it to the Tor
    exit. He posts her relayed TOTP code from the same exit: ``refused_where_posted`` compares the request
    with ``scored_context``, which falls back to that binding, finds the same address, device cookie and
    browser, and never scores it. The session is verified and bound at the Tor exit; the portfolio and a
    fresh-step-up withdrawal are served there. A sign-in from that Tor exit is refused."""
    alice, phone = _victim(user_factory, browser_at, totp_factory)
    direct = Client(HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json", REMOTE_ADDR=IP_TOR,
    )  # fmt: skip
    assert direct.json()["status"] == "denied", direct.content  # the precondition: refused at the exit
    thief = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.cookies[django_settings.SESSION_COOKIE_NAME] = websocket_login(alice)
    held = thief.get("/drf/portfolio", REMOTE_ADDR=IP_TOR, HTTP_ACCEPT="application/json")
    assert held.status_code == 401 and _state(thief).get("s") == "pending", held.content  # adopted, held
    if page == "json":
        step_up = thief.post(
            "/authguard/api/step-up/totp", json.dumps({"code": totp_token(phone)}),
            content_type="application/json", REMOTE_ADDR=IP_TOR,
        )  # fmt: skip
        refused = step_up.status_code == 403
    else:
        step_up = thief.post("/authguard/step-up/totp/", {"code": totp_token(phone)}, REMOTE_ADDR=IP_TOR)
        refused = step_up.status_code == 302 and step_up["Location"].endswith("/denied/")
    state = _state(thief) if django_settings.SESSION_COOKIE_NAME in thief.cookies else {}
    served, withdrew = _served(thief, IP_TOR)
    assert refused and served in (401, 403) and withdrew in (401, 403), (
        f"a never-scored websocket session was stepped up from a Tor exit (a sign-in there is refused): "
        f"step-up {step_up.status_code}, portfolio {served}, withdraw {withdrew}; session "
        f"{state.get('s')} bound at {(state.get('b') or {}).get('ip')}; events {_events(alice)}"
    )
    # the precondition's refusal, and the step-up's own
    assert _events(alice).count((IP_TOR, "refused", "deny")) == 2, _events(alice)


# -- 2. a network the desk blocked after the login was scored: the pending login completes from it ---------


def _a_minute_later() -> Any:
    """The kit posts the relayed code a minute after its login was scored (past ``SCORE_FRESH_SECONDS``:
    within it, a step-up from the very context a login was scored in is judged by that score)."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from authguard.login.stepup import SCORE_FRESH_SECONDS

    return time_machine.travel(timezone.now() + timedelta(seconds=SCORE_FRESH_SECONDS + 1), tick=False)


def _desk_blocks(network: str) -> None:
    """The security desk blocks ``network`` for four hours from the console's network lists page (one
    staff member: four eyes off for the block), as battery case 68's test does."""
    from .console_data import staff_user
    from .staff_fixtures import staff_client
    from .test_containment import DESK_PERMS, NETWORKS

    desk = staff_client(staff_user("desk-a", perms=DESK_PERMS))
    answer = desk.post(NETWORKS, {"op": "block", "network": network, "hours": "4", "reason": "phishing kit"})
    assert answer.status_code in (200, 302, 303), answer.status_code
    from authguard.models import NetworkBlock

    assert NetworkBlock.objects.filter(network=network).exists()


def _kit_login(kit: Client, ip: str) -> None:
    login = kit.post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json", REMOTE_ADDR=ip,
    )  # fmt: skip
    assert login.json()["status"] == "step_up_required", login.content


@pytest.mark.battery(68)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.parametrize("page", ["json", "html"])
def test_a_pending_login_does_not_complete_from_a_network_the_desk_blocked_after_it_was_scored(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any, settings: Any, page: str
) -> None:
    """The kit's password login from its Osaka address is scored step_up (pending): the victim is now being
    asked, on the phishing page, for her authenticator code. Meanwhile the desk sees the wave and blocks
    the kit's address (battery case 68: a right password from there is refused until the block ends).
    The kit posts her relayed code from the same address a minute later: the request is the very context
    the login was scored in, so ``refused_where_posted`` never scores it again and the block is never read.
    The session is verified there and served, withdrawals included."""
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    from .conftest import IP_OSAKA

    alice, phone = _victim(user_factory, browser_at, totp_factory)
    kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    _kit_login(kit, IP_OSAKA)
    _desk_blocks(f"{IP_OSAKA}/32")
    direct = Client(HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json", REMOTE_ADDR=IP_OSAKA,
    )  # fmt: skip
    assert direct.json()["status"] == "denied", direct.content  # the precondition: the block refuses
    with _a_minute_later():  # past SCORE_FRESH_SECONDS: the login's own score no longer stands for it
        if page == "json":
            step_up = kit.post(
                "/authguard/api/step-up/totp", json.dumps({"code": totp_token(phone)}),
                content_type="application/json", REMOTE_ADDR=IP_OSAKA,
            )  # fmt: skip
            refused = step_up.status_code == 403
        else:
            step_up = kit.post("/authguard/step-up/totp/", {"code": totp_token(phone)}, REMOTE_ADDR=IP_OSAKA)
            refused = step_up.status_code == 302 and step_up["Location"].endswith("/denied/")
        served, withdrew = _served(kit, IP_OSAKA)
    assert refused and served in (401, 403) and withdrew in (401, 403), (
        f"a pending login stepped up from the network the desk blocked after it was scored is served there: "
        f"step-up {step_up.status_code}, portfolio {served}, withdraw {withdrew}; events {_events(alice)}"
    )


@pytest.mark.battery(68)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_step_up_token_is_not_exchanged_from_a_network_the_desk_blocked_after_the_login(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any, settings: Any
) -> None:
    """The token flavour: the kit's app login from Osaka is parked (step_up_token, five minutes); the desk
    blocks the kit's address; the exchange with her relayed code from the same address and agent is the
    scored context, never scored again: a TOTP-strength token is issued on the blocked network and
    withdraws there."""
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    from rest_framework.test import APIClient

    from .conftest import IP_OSAKA
    from .test_drf import api, obtain

    alice, phone = _victim(user_factory, browser_at, totp_factory)
    login = obtain(api(IP_OSAKA, UA_CHROME_WIN))
    assert login.status_code == 401 and login.json()["status"] == "step_up_required", login.content
    _desk_blocks(f"{IP_OSAKA}/32")
    direct = obtain(api(IP_OSAKA, UA_CHROME_WIN))
    assert direct.status_code == 403 and direct.json()["status"] == "denied", direct.content
    with _a_minute_later():
        exchange = APIClient(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_WIN).post(
            "/api/auth/step-up/totp",
            {"step_up_token": login.json()["step_up_token"], "code": totp_token(phone)},
            format="json",
        )
        withdrew = None
        if exchange.status_code == 200:
            token = exchange.json()["token"]
            withdrew = with_token(api(IP_OSAKA, UA_CHROME_WIN), token).post("/drf/withdraw").status_code
    assert exchange.status_code == 403, (
        f"a step_up_token exchanged from the network the desk blocked since the login gave a token: "
        f"exchange {exchange.status_code}, withdraw {withdrew}; events {_events(alice)}"
    )


# -- 3. a parked token login outlives "end every session" ---------------------------------------------------


@pytest.mark.battery(66)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.parametrize("who", ["desk", "customer"])
def test_a_parked_token_login_does_not_outlive_the_end_of_every_session(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any, settings: Any, who: str
) -> None:
    """The kit's app login (password, from Osaka) is parked for its step-up (a ``step_up_token``, five
    minutes): the victim is being asked for her code. Alerted (a sign-in pending from a new browser), the
    desk ends every session and API token of the account from the incident page; or she does, with "sign
    out everywhere else" after confirming with her app. The parked login lives in a private session no
    ``SessionRecord`` lists, so ``end_all_sessions`` never deletes it; the kit exchanges the token with her
    next relayed code and gets a fresh API token, which withdraws. The kit's browser login, pending in a
    browser session, is ended by the same click (docs/drf.md: both end "every token of the user as they end
    the user's sessions")."""
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    from rest_framework.test import APIClient

    from .conftest import IP_OSAKA, IP_TOKYO
    from .console_data import staff_user
    from .staff_fixtures import staff_client
    from .test_containment import DESK_PERMS, INCIDENT
    from .test_drf import api, obtain

    alice, phone = _victim(user_factory, browser_at, totp_factory)
    browser_kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    _kit_login(browser_kit, IP_OSAKA)
    login = obtain(api(IP_OSAKA, UA_CHROME_WIN))
    assert login.status_code == 401 and login.json()["status"] == "step_up_required", login.content
    if who == "desk":
        desk = staff_client(staff_user("desk-a", perms=DESK_PERMS))
        form = {"user": str(alice.pk), "containment": "end_sessions", "reason": "takeover"}
        ended = desk.post(INCIDENT, form)
        assert ended.status_code in (200, 302, 303), ended.status_code
    else:
        home = browser_at(IP_TOKYO, UA_CHROME_WIN)
        assert home.sign_in("alice").status_code == 302
        assert home.post("/authguard/step-up/totp/", {"code": totp_token(phone)}).status_code == 302
        ended = home.post("/authguard/security/sessions/end-others/")
        assert ended.status_code == 302 and ended["Location"].endswith("/security/"), ended
    browser_step_up = browser_kit.post(
        "/authguard/api/step-up/totp", json.dumps({"code": totp_token(phone, steps=1)}),
        content_type="application/json", REMOTE_ADDR=IP_OSAKA,
    )  # fmt: skip
    assert browser_step_up.status_code == 401, browser_step_up.content  # the browser's pending login: ended
    exchange = APIClient(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/api/auth/step-up/totp",
        {"step_up_token": login.json()["step_up_token"], "code": totp_token(phone, steps=1)},
        format="json",
    )
    withdrew = None
    if exchange.status_code == 200:
        token = exchange.json()["token"]
        withdrew = with_token(api(IP_OSAKA, UA_CHROME_WIN), token).post("/drf/withdraw").status_code
    assert exchange.status_code == 401 and exchange.json().get("code") == "step_up_expired", (
        f"a parked token login survived the end of every session ({who}) and was exchanged for a token: "
        f"exchange {exchange.status_code} {exchange.content[:120]!r}, withdraw {withdrew}; "
        f"events {_events(alice)}"
    )


@pytest.mark.battery(61)
@pytest.mark.battery(62)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_pending_login_with_her_copied_cookie_does_not_complete_after_her_pc_came_back_into_use(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any
) -> None:
    """The same stale score without the desk. The kit signs in from Osaka with her password and her PC's
    copied device cookie (infostealer) while her PC is idle: step_up (device_new_network,
    settled_device_moved, device_new_city). Before the relayed code arrives she signs in at home in Tokyo
    and uses the portal: now a sign-in from the kit's context is refused (device_in_two_places,
    impossible_travel: deny). The kit posts the code from the context its login was scored in: not scored
    again, verified, served, and handed the next generation of her PC's device id, so her own browser's
    cookie is the one left behind."""
    from datetime import datetime, timedelta, timezone

    import time_machine

    from authguard.risk.context import device_cookie_parts

    from .conftest import IP_OSAKA, IP_TOKYO, settle_device

    traveller = time_machine.travel(datetime(2026, 12, 4, 1, 0, tzinfo=timezone.utc), tick=False)
    t = traveller.start()
    try:
        alice = user_factory("alice")
        phone = totp_factory(alice)
        her = browser_at(IP_TOKYO, UA_CHROME_WIN)
        her.sign_in("alice")
        her.post("/logout/")
        her.sign_in("alice")
        her_cookie = her.cookies["authguard_device"].value
        settle_device(her_cookie, alice)
        her.post("/logout/")
        t.shift(timedelta(hours=2))
        kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
        kit.cookies["authguard_device"] = her_cookie
        _kit_login(kit, IP_OSAKA)  # scored step_up with her cookie, her PC idle
        t.shift(timedelta(seconds=30))
        assert her.sign_in("alice").status_code == 302 and her.get("/drf/portfolio").status_code == 200
        t.shift(timedelta(seconds=30))
        copy = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
        copy.cookies["authguard_device"] = her_cookie
        direct = copy.post(
            "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
            content_type="application/json", REMOTE_ADDR=IP_OSAKA,
        )  # fmt: skip
        assert direct.json()["status"] == "denied", direct.content  # the precondition: refused there now
        t.shift(timedelta(seconds=1))  # past SCORE_FRESH_SECONDS since the kit's login
        step_up = kit.post(
            "/authguard/api/step-up/totp", json.dumps({"code": totp_token(phone)}),
            content_type="application/json", REMOTE_ADDR=IP_OSAKA,
        )  # fmt: skip
        served, withdrew = _served(kit, IP_OSAKA)
        handed = device_cookie_parts(kit.cookies["authguard_device"].value)
        hers = device_cookie_parts(her.cookies["authguard_device"].value)
    finally:
        traveller.stop()
    assert step_up.status_code == 403 and served in (401, 403) and withdrew in (401, 403), (
        f"the kit's pending login completed from where a sign-in is refused since her PC came back into use: "
        f"step-up {step_up.status_code}, portfolio {served}, withdraw {withdrew}; the kit holds {handed}, "
        f"her browser {hers}; events {_events(alice)}"
    )


# -- HELD ---------------------------------------------------------------------------------------------------

#: A Tor exit relay on an OCN home line in Tokyo, her own ISP and city (IP_TOKYO is OCN Tokyo).
OCN_TOKYO_TOR_NET = GeoNetwork(
    "203.0.94.0/24", country="JP", city="Tokyo", latitude=35.69, longitude=139.70, accuracy_km=10,
    time_zone="Asia/Tokyo", asn=4713, as_org="NTT Communications (OCN)", tor_exit=True,
)  # fmt: skip
OCN_TOKYO_TOR = "203.0.94.9"


@pytest.fixture(scope="session")
def rt27a_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(tmp_path_factory.mktemp("rt27ageoip"), [*TEST_NETWORKS, OCN_TOKYO_TOR_NET])


@pytest.fixture
def rt27a_geoip(settings: Any, rt27a_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(rt27a_geoip_dir)
    return rt27a_geoip_dir


@pytest.mark.battery(66)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_held_a_copy_of_her_api_token_on_a_tor_exit_of_her_own_isp_in_her_city_is_ended(
    user_factory: Any, browser_at: Any, totp_factory: Any, rt27a_geoip: Any
) -> None:
    """HELD: the token flavour (``token_binding.binding_of`` carries ``x``): her app's token, issued at home,
    replayed from the OCN Tor exit nearby with her agent is re-scored and ended; her app signs in again."""
    from .conftest import IP_TOKYO
    from .test_drf import api, obtain

    alice, phone = _victim(user_factory, browser_at, totp_factory)
    login = obtain(api(IP_TOKYO, UA_CHROME_WIN))
    if login.status_code == 401:
        login = api(IP_TOKYO, UA_CHROME_WIN).post(
            "/api/auth/step-up/totp",
            {"step_up_token": login.json()["step_up_token"], "code": totp_token(phone)},
            format="json",
        )
    token = login.json()["token"]
    assert with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get("/drf/portfolio").status_code == 200
    copy = with_token(api(OCN_TOKYO_TOR, UA_CHROME_WIN), token).get("/drf/portfolio")
    assert copy.status_code in (401, 403), copy.content
    assert with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get("/drf/portfolio").status_code in (401, 403)
    assert any(ip == OCN_TOKYO_TOR and outcome == "refused" for ip, outcome, _action in _events(alice))


@pytest.mark.battery(66)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_held_a_parked_token_login_is_refused_after_the_desk_locks_the_account(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any, settings: Any
) -> None:
    """HELD: the same parked token login as above, but the desk *locks* the account: the exchange checks the
    lock first (``check_step_up_allowed``) and answers 403 ``denied``; no token is issued."""
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from .conftest import IP_OSAKA
    from .console_data import staff_user
    from .staff_fixtures import staff_client
    from .test_containment import DESK_PERMS, INCIDENT
    from .test_drf import api, obtain

    alice, phone = _victim(user_factory, browser_at, totp_factory)
    login = obtain(api(IP_OSAKA, UA_CHROME_WIN))
    assert login.status_code == 401, login.content
    desk = staff_client(staff_user("desk-a", perms=DESK_PERMS))
    locked = desk.post(INCIDENT, {"user": str(alice.pk), "containment": "lock_account", "reason": "takeover"})
    assert locked.status_code in (200, 302, 303), locked.status_code
    exchange = APIClient(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/api/auth/step-up/totp",
        {"step_up_token": login.json()["step_up_token"], "code": totp_token(phone)},
        format="json",
    )
    # 403 denied (the lock is checked first), or 401 step_up_expired should the lock end the parked login
    assert (exchange.status_code, exchange.json()["status"]) in (
        (403, "denied"),
        (401, "login_required"),
    ), exchange.content
    assert not Token.objects.filter(user=alice).exists()
