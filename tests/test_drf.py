"""authguard.drf: a Django REST framework token login scored like a browser login, its step-up exchange, and
the permission classes (issue 14, item 1; docs/drf.md).

Real DRF (``APIClient``), real TOTP codes, real passkey assertions (``SoftAuthenticator``) and the test GeoIP
databases: ``IP_SG_VPS`` is a hosting network in Singapore, ``IP_TOKYO`` the customers' home.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

import pytest

if importlib.util.find_spec("rest_framework") is None:  # CI installs it (the test extra): never skip there
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI=true and djangorestframework is not installed: pip install -e '.[test]'")
    pytest.skip("djangorestframework is not installed", allow_module_level=True)

import time_machine  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from authguard import drf  # noqa: E402
from authguard.models import LoginEvent, Notification, Outcome, SessionRecord  # noqa: E402
from authguard.testing import SoftAuthenticator  # noqa: E402

from .conftest import (  # noqa: E402
    IP_OSAKA,
    IP_SG_VPS,
    IP_TOKYO,
    UA_CHROME_WIN,
    bind_passkey,
    totp_token,
    wrong_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]

#: The agent of the issue's attack script.
UA_REQUESTS = "python-requests/2.32.3"
PASSWORD = "correct horse battery"
TOKEN_URL = "/api/auth/token"
DEVICE_COOKIE = "authguard_device"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def customer(user_factory: Any, browser_at: Any, name: str = "alice") -> Any:
    """A customer who signs in from home (Tokyo, Chrome): the history a phished login is scored against."""
    user = user_factory(name)
    browser_at(IP_TOKYO, UA_CHROME_WIN).sign_in(name)
    browser_at(IP_TOKYO, UA_CHROME_WIN).sign_in(name)
    return user


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """A customer with an authenticator app and no sign-in yet (as in tests/test_api_stepup.py)."""
    return alice_with_totp


def api(ip: str = IP_TOKYO, ua: str = UA_CHROME_WIN) -> APIClient:
    return APIClient(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)


def obtain(client: APIClient, username: str = "alice", password: str = PASSWORD) -> Any:
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json")


def post(client: APIClient, url: str, body: Any) -> Any:
    return client.post(url, body, format="json")


def with_token(client: APIClient, token: str) -> APIClient:
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def latest_event(user: Any) -> LoginEvent:
    return LoginEvent.objects.filter(user=user).latest("pk")


def kinds(user: Any) -> list[str]:
    return sorted(Notification.objects.filter(user=user).values_list("kind", flat=True))


def step_up_pending(alice: Any) -> tuple[APIClient, dict[str, Any]]:
    """A token login from a hosting network in a real browser's agent: scored ``step_up``."""
    client = api(IP_SG_VPS, UA_CHROME_WIN)
    response = obtain(client)
    assert response.status_code == 401, response.content
    return client, response.json()


# -- the issue's bypass -----------------------------------------------------------------------------------


def test_the_issues_phished_token_login_gets_no_token_and_is_recorded_like_the_json_login(
    user_factory: Any, browser_at: Any, totp_factory: Any
) -> None:
    """Issue 14 item 1: a phished password POSTed to the token endpoint from a Singapore hosting address
    with a python-requests agent. Now: no token, a login event, and exactly the JSON login's decision and
    notifications (bob, with the same history, is phished through the portal's JSON login)."""
    alice, bob = customer(user_factory, browser_at, "alice"), customer(user_factory, browser_at, "bob")
    totp_factory(alice), totp_factory(bob)
    before = {user.pk: LoginEvent.objects.filter(user=user).count() for user in (alice, bob)}

    token_login = obtain(api(IP_SG_VPS, UA_REQUESTS))
    json_login = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_REQUESTS).post(
        "/api/login", json.dumps({"username": "bob", "password": PASSWORD}), content_type="application/json"
    )

    assert json_login.status_code == token_login.status_code == 403
    assert (
        token_login.json()
        == json_login.json()
        == {
            "status": "denied",
            "message": "We could not sign you in from here.",
        }
    )
    assert "token" not in token_login.json() and not Token.objects.exists()
    assert settings.SESSION_COOKIE_NAME not in token_login.cookies
    for user in (alice, bob):
        assert LoginEvent.objects.filter(user=user).count() == before[user.pk] + 1
    phished, reference = latest_event(alice), latest_event(bob)
    assert (phished.ip, phished.user_agent, phished.password_ok) == (IP_SG_VPS, UA_REQUESTS, True)
    assert phished.outcome == reference.outcome == Outcome.REFUSED
    assert (phished.action, phished.score) == (reference.action, reference.score)
    assert phished.reasons == reference.reasons and "anonymous_hosting" in phished.reasons
    assert kinds(alice) == kinds(bob)
    # And no read access: the portal's API asks for credentials.
    assert api(IP_SG_VPS, UA_REQUESTS).get("/drf/portfolio").status_code in (401, 403)


def test_a_home_token_login_gets_a_token_and_read_access(alice: Any) -> None:
    client = api()
    response = obtain(client)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["token"] == Token.objects.get(user=alice).key
    event = latest_event(alice)
    assert (event.ip, event.outcome, event.action) == (IP_TOKYO, Outcome.SIGNED_IN, "allow")
    # No session of any kind is left for a token login, and no cookie session was handed out.
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert not Session.objects.exists() and not SessionRecord.objects.filter(user_id=alice.pk).exists()
    portfolio = with_token(api(), body["token"]).get("/drf/portfolio")
    assert portfolio.status_code == 200 and portfolio.json() == {"status": "ok", "user": "alice"}
    # A password-only token is no fresh second factor: the sensitive action asks for one.
    withdraw = with_token(api(), body["token"]).post("/drf/withdraw")
    assert withdraw.status_code == 403
    assert withdraw.json()["status"] == "step_up_required" and withdraw.json()["methods"] == ["totp"]


def test_a_form_encoded_login_works_like_drfs_obtain_auth_token(alice: Any) -> None:
    response = api().post(TOKEN_URL, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200 and response.json()["token"] == Token.objects.get(user=alice).key


def test_a_wrong_password_is_one_answer_for_known_and_unknown_users_and_counts(alice: Any) -> None:
    wrong = obtain(api(), password="wrong password!")
    unknown = obtain(api(), username="nobody")
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()
    assert wrong.json()["status"] == "invalid" and wrong.json()["non_field_errors"]
    assert latest_event(alice).outcome == Outcome.BAD_PASSWORD
    assert not Token.objects.exists()


# -- step-up with TOTP ---------------------------------------------------------------------------------------


def test_step_up_with_a_relayed_wrong_code_fails_and_with_the_right_code_succeeds(
    alice: Any, clock: Any
) -> None:
    sessions_before = Session.objects.count()
    client, body = step_up_pending(alice)
    assert body["status"] == "step_up_required" and body["methods"] == ["totp"]
    assert body["expires_in"] == drf.STEP_UP_TOKEN_SECONDS and "token" not in body
    assert body["step_up"]["totp"] == "/api/auth/step-up/totp"
    assert latest_event(alice).outcome == Outcome.STEP_UP_PENDING and not Token.objects.exists()

    relayed = post(client, "/api/auth/step-up/totp", {"step_up_token": body["step_up_token"], "code": "1"})
    assert relayed.status_code == 400 and relayed.json()["code"] == "wrong_code"
    wrong = post(
        client,
        "/api/auth/step-up/totp",
        {"step_up_token": body["step_up_token"], "code": wrong_code(alice.totp)},
    )
    assert wrong.status_code in (400, 429) and "token" not in wrong.json()
    assert latest_event(alice).outcome == Outcome.STEP_UP_FAILED and not Token.objects.exists()

    clock.shift(60)  # past the factor's back-off
    right = post(
        client,
        "/api/auth/step-up/totp",
        {"step_up_token": body["step_up_token"], "code": totp_token(alice.totp)},
    )
    assert right.status_code == 200, right.content
    assert right.json()["token"] == Token.objects.get(user=alice).key and right.json()["method"] == "totp"
    assert latest_event(alice).outcome == Outcome.STEP_UP_PASSED
    # The parked login and the session its step-up rotated to are both gone.
    assert Session.objects.count() == sessions_before
    assert SessionRecord.objects.filter(user_id=alice.pk).count() == sessions_before
    token = right.json()["token"]
    assert with_token(api(IP_SG_VPS), token).get("/drf/portfolio").status_code == 200
    # A TOTP step-up is a fresh second factor for the token ...
    assert with_token(api(IP_SG_VPS), token).post("/drf/withdraw").status_code == 200
    # ... but not the passkey the payee view demands, and not for ever.
    payees = with_token(api(IP_SG_VPS), token).post("/drf/payees")
    assert payees.status_code == 403 and payees.json()["status"] == "step_up_required"
    clock.shift(301)
    assert with_token(api(IP_SG_VPS), token).post("/drf/withdraw").status_code == 403


def test_the_step_up_token_is_single_use(alice: Any, clock: Any) -> None:
    client, body = step_up_pending(alice)
    first = post(
        client,
        "/api/auth/step-up/totp",
        {"step_up_token": body["step_up_token"], "code": totp_token(alice.totp)},
    )
    assert first.status_code == 200
    clock.shift(31)
    again = post(
        client,
        "/api/auth/step-up/totp",
        {"step_up_token": body["step_up_token"], "code": totp_token(alice.totp)},
    )
    assert again.status_code == 401
    assert again.json()["status"] == "login_required" and again.json()["code"] == "step_up_expired"
    assert Token.objects.filter(user=alice).count() == 1


def test_the_step_up_token_expires(alice: Any, clock: Any) -> None:
    client, body = step_up_pending(alice)
    clock.shift(drf.STEP_UP_TOKEN_SECONDS + 1)
    late = post(
        client,
        "/api/auth/step-up/totp",
        {"step_up_token": body["step_up_token"], "code": totp_token(alice.totp)},
    )
    assert late.status_code == 401 and late.json()["code"] == "step_up_expired"
    assert not Token.objects.exists() and latest_event(alice).outcome == Outcome.STEP_UP_PENDING


@pytest.mark.parametrize("tamper", ["forged", "other_event", "password_changed"])
def test_a_forged_or_stale_step_up_token_is_refused(alice: Any, clock: Any, tamper: str) -> None:
    from django.core import signing

    client, body = step_up_pending(alice)
    step_up_token = body["step_up_token"]
    if tamper == "forged":
        step_up_token = step_up_token[:-2] + ("AA" if not step_up_token.endswith("AA") else "BB")
    elif tamper == "other_event":
        claims = signing.loads(step_up_token, salt="authguard.drf.step_up_token")
        step_up_token = signing.dumps({**claims, "e": claims["e"] - 1}, salt="authguard.drf.step_up_token")
    else:
        alice.set_password("a brand new password")  # the customer noticed and reset it
        alice.save()
    response = post(
        client, "/api/auth/step-up/totp", {"step_up_token": step_up_token, "code": totp_token(alice.totp)}
    )
    assert response.status_code == 401 and response.json()["code"] == "step_up_expired"
    assert not Token.objects.exists()


def test_the_parked_login_is_no_session_cookie(alice: Any) -> None:
    """The step-up token names a session; that session, sent as a cookie, signs nobody in."""
    from django.core import signing

    _client, body = step_up_pending(alice)
    key = signing.loads(body["step_up_token"], salt="authguard.drf.step_up_token")["k"]
    thief = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.cookies[settings.SESSION_COOKIE_NAME] = key
    response = thief.get("/api/portfolio")
    assert response.status_code == 401 and response.json()["status"] == "login_required"


def test_a_device_cookie_copied_from_a_customer_online_in_tokyo_gets_no_token_in_osaka(alice: Any) -> None:
    """Issue 13, ``device_in_two_places``: the token endpoint builds the browser login's context, so an
    infostealer's copy of the device cookie, sent minutes after the customer's session used it in Tokyo,
    is a copy here too: no token, the finding recorded, the customer told."""
    home = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.get("/api/csrf")  # her browser holds a device cookie
    signed_in = home.post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}), content_type="application/json"
    )
    assert signed_in.json()["status"] == "ok"
    home.get("/api/portfolio")  # her session in use: the middleware records where
    thief = api(IP_OSAKA, UA_CHROME_WIN)
    thief.cookies[DEVICE_COOKIE] = home.cookies[DEVICE_COOKIE].value

    response = obtain(thief)

    assert response.status_code == 401 and response.json()["status"] == "step_up_required"
    assert "token" not in response.json() and not Token.objects.exists()
    event = latest_event(alice)
    assert event.ip == IP_OSAKA and "device_in_two_places" in event.reasons
    assert kinds(alice).count("device_cookie_copied") == 1


# -- step-up with a passkey ----------------------------------------------------------------------------------


def test_a_passkey_step_up_issues_a_token_strong_for_passkey_views(
    alice: Any, authenticator: SoftAuthenticator, clock: Any
) -> None:
    bind_passkey(alice, authenticator)
    client, body = step_up_pending(alice)
    assert body["methods"] == ["passkey", "totp"]
    options = post(client, "/api/auth/step-up/passkey/options", {"step_up_token": body["step_up_token"]})
    assert options.status_code == 200 and options.json()["status"] == "ok"
    assertion = authenticator.get(options.json())
    response = post(
        client, "/api/auth/step-up/passkey", {"step_up_token": body["step_up_token"], "credential": assertion}
    )
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert latest_event(alice).outcome == Outcome.STEP_UP_PASSED
    assert with_token(api(IP_SG_VPS), token).post("/drf/payees").status_code == 200
    clock.shift(121)  # the payee view wants a passkey within two minutes
    assert with_token(api(IP_SG_VPS), token).post("/drf/payees").status_code == 403
    assert with_token(api(IP_SG_VPS), token).post("/drf/withdraw").status_code == 200


def test_every_login_gets_a_token_of_its_own_and_ends_the_previous_one(
    alice: Any, authenticator: SoftAuthenticator, clock: Any
) -> None:
    """Red team, 2026-12-04: every login got the account's one DRF token, so a thief's password-only login
    held the customer's token, which became passkey-strong when she stepped up, and hers was his."""
    bind_passkey(alice, authenticator)
    thief = api(IP_TOKYO)
    allowed = obtain(thief)
    assert allowed.status_code == 200, allowed.content
    with_token(thief, allowed.json()["token"])
    assert thief.post("/drf/withdraw").status_code == 403  # password only: no fresh factor
    clock.shift(3600)

    # The customer signs in from her phone and steps up with her passkey.
    phone, body = step_up_pending(alice)
    options = post(phone, "/api/auth/step-up/passkey/options", {"step_up_token": body["step_up_token"]})
    credential = authenticator.get(options.json())
    passed = post(
        phone, "/api/auth/step-up/passkey", {"step_up_token": body["step_up_token"], "credential": credential}
    )
    assert passed.status_code == 200, passed.content

    token = passed.json()["token"]
    assert token != allowed.json()["token"]
    assert list(Token.objects.filter(user=alice).values_list("key", flat=True)) == [token]
    assert thief.post("/drf/withdraw").status_code in (401, 403)  # his token ended with her login
    assert thief.post("/drf/payees").status_code in (401, 403)
    assert thief.get("/drf/portfolio").status_code in (401, 403)
    assert with_token(api(IP_SG_VPS), token).post("/drf/payees").status_code == 200


def test_a_passkey_assertion_is_checked_against_the_pending_logins_challenge(
    alice: Any, authenticator: SoftAuthenticator
) -> None:
    bind_passkey(alice, authenticator)
    client, body = step_up_pending(alice)
    options = post(client, "/api/auth/step-up/passkey/options", {"step_up_token": body["step_up_token"]})
    assertion = authenticator.get({**options.json(), "challenge": "A" * 43})
    response = post(
        client, "/api/auth/step-up/passkey", {"step_up_token": body["step_up_token"], "credential": assertion}
    )
    assert response.status_code == 400 and response.json()["status"] == "invalid"
    assert latest_event(alice).outcome == Outcome.STEP_UP_FAILED and not Token.objects.exists()


# -- locks and throttles -------------------------------------------------------------------------------------


def test_a_locked_account_answers_the_same_for_right_and_wrong_passwords(
    alice: Any, settings: Any, clock: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    for _ in range(3):
        assert obtain(api(), password="wrong password!").status_code == 400
    right, wrong = obtain(api()), obtain(api(), password="wrong password!")
    assert right.status_code == wrong.status_code == 403
    assert right.json() == wrong.json()
    assert right.json()["code"] == "locked" and right.json()["unlock"]["passkey"]["verify"]
    assert not Token.objects.exists()
    assert latest_event(alice).outcome == Outcome.REFUSED


def test_a_token_of_an_account_locked_later_stops_working(alice: Any, settings: Any) -> None:
    token = obtain(api()).json()["token"]
    settings.AUTHGUARD_LOCKOUT_FAILURES = 2
    obtain(api(), password="wrong password!")
    obtain(api(), password="wrong password!")
    assert with_token(api(), token).get("/drf/portfolio").status_code in (401, 403)


def test_a_password_change_or_reset_ends_the_api_tokens(alice: Any) -> None:
    """A thief's token must not outlive the password reset that ends his sessions (issue 10, case 58)."""
    token = obtain(api()).json()["token"]
    assert with_token(api(), token).get("/drf/portfolio").status_code == 200
    alice.set_password("a new password, 2026")
    alice.save()
    assert not Token.objects.filter(user=alice).exists()
    assert with_token(api(), token).get("/drf/portfolio").status_code in (401, 403)


def test_a_throttled_login_answers_the_same_for_right_and_wrong_passwords(alice: Any, settings: Any) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    settings.AUTHGUARD_LOGIN_THROTTLE = {"user_failures": 2}
    for _ in range(2):
        obtain(api(), password="wrong password!")
    right, wrong = obtain(api()), obtain(api(), password="wrong password!")
    assert right.status_code == wrong.status_code == 429
    assert (
        right.json()
        == wrong.json()
        == {
            "status": "throttled",
            "message": "Too many sign-in attempts. Please wait and try again.",
        }
    )
    assert latest_event(alice).outcome == Outcome.THROTTLED and not Token.objects.exists()


# -- malformed input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "http_status"),
    [
        ('{"username": "alice", ', "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"alice"', "application/json", 400),
        ("null", "application/json", 400),
        ('{"username": "alice", "password": NaN}', "application/json", 400),
        ("{" * 5000 + "}" * 5000, "application/json", 400),
        ("\xff\xfe", "application/json", 400),
        ('{"username": 5, "password": ["x"]}', "application/json", 400),
        ('{"username": "alice"}', "application/json", 400),
        ('{"username": "alice\\u0000", "password": "x"}', "application/json", 400),
        ('{"username": "\\ud800", "password": "x"}', "application/json", 400),
        ("username=alice&password=x", "text/plain", 415),
        (json.dumps({"username": "alice", "password": "x" * 70_000}), "application/json", 413),
    ],
)
def test_malformed_bodies_answer_4xx_with_a_message(
    alice: Any, raw: str, content_type: str, http_status: int
) -> None:
    events = LoginEvent.objects.count()
    response = api().post(TOKEN_URL, raw, content_type=content_type)
    assert response.status_code == http_status, response.content
    body = response.json()
    assert body["status"] == "invalid" and isinstance(body["message"], str) and body["message"]
    assert LoginEvent.objects.count() == events and not Token.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"step_up_token": None, "code": "123456"},
        {"step_up_token": 5},
        {"step_up_token": "x" * 2000},
    ],
)
def test_step_up_without_a_usable_token_answers_4xx(alice: Any, body: dict[str, Any]) -> None:
    response = post(api(), "/api/auth/step-up/totp", body)
    assert response.status_code in (400, 401)
    assert response.json()["status"] in ("invalid", "login_required") and response.json()["message"]


@pytest.mark.parametrize("code", [None, 123456, ["123456"], ""])
def test_step_up_with_a_mistyped_code_answers_400(alice: Any, code: Any) -> None:
    client, body = step_up_pending(alice)
    response = post(client, "/api/auth/step-up/totp", {"step_up_token": body["step_up_token"], "code": code})
    assert response.status_code == 400 and response.json()["status"] == "invalid"
    assert not Token.objects.exists()


def test_a_passkey_step_up_without_a_credential_answers_400(
    alice: Any, authenticator: SoftAuthenticator
) -> None:
    bind_passkey(alice, authenticator)
    client, body = step_up_pending(alice)
    response = post(client, "/api/auth/step-up/passkey", {"step_up_token": body["step_up_token"]})
    assert response.status_code == 400 and response.json()["message"]


def test_other_methods_answer_405(alice: Any) -> None:
    response = api().get(TOKEN_URL)
    assert response.status_code == 405 and response.json()["status"] == "method_not_allowed"
    assert "POST" in response["Allow"] and "GET" not in response["Allow"]


def test_a_step_up_method_the_user_lacks_is_refused(alice: Any) -> None:
    client, body = step_up_pending(alice)
    response = post(client, "/api/auth/step-up/passkey/options", {"step_up_token": body["step_up_token"]})
    assert response.status_code == 400 and response.json()["code"] == "method_unavailable"


# -- permission classes with session authentication ------------------------------------------------------


def test_session_clients_get_the_same_permission_answers(alice: Any, browser_at: Any, clock: Any) -> None:
    pending = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    pending.sign_in("alice")
    held = pending.get("/drf/portfolio", HTTP_ACCEPT="application/json")
    assert held.status_code == 401 and held.json()["status"] == "step_up_required"
    step_up = pending.post(
        "/authguard/api/step-up/totp",
        json.dumps({"code": totp_token(alice.totp)}),
        content_type="application/json",
    )
    assert step_up.status_code == 200, step_up.content
    assert pending.get("/drf/portfolio").status_code == 200
    # SessionAuthentication enforces CSRF on unsafe methods; the test client does not send it here.
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    home.sign_in("alice")
    refused = home.post("/drf/withdraw")
    assert refused.status_code == 403 and refused.json()["status"] == "step_up_required"
    assert pending.post("/drf/withdraw").status_code == 200


def test_report_only_step_up_lets_a_token_client_through_and_logs_what_it_would_have_asked(
    alice: Any, settings: Any, caplog: Any
) -> None:
    """Issue 14, item 10: ``StepUpRequired`` honours the ``step_up`` report-only part, as the decorator."""
    token = obtain(api()).json()["token"]
    settings.AUTHGUARD_REPORT_ONLY = ["step_up"]
    with caplog.at_level("WARNING", logger="authguard.drf"):
        withdraw = with_token(api(), token).post("/drf/withdraw")
    assert withdraw.status_code == 200
    assert "REPORT-ONLY step_up" in caplog.text and "a fresh verification" in caplog.text
    settings.AUTHGUARD_REPORT_ONLY = []
    assert with_token(api(), token).post("/drf/withdraw").status_code == 403  # enforced again
