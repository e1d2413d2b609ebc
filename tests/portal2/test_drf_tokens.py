"""DRF on portal two: the issue's token bypass (a phished password POSTed to the token endpoint from a
Singapore hosting address by python-requests), token step-up with real codes, and the portal's API with
session and token authentication (the demo's twin: tests/test_drf.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone
from rest_framework.authtoken.models import Token

from authguard.models import HeldOrder, LoginEvent, Outcome

from ..conftest import IP_SG_VPS, IP_US_HOME, UA_CHROME_WIN, UA_IPHONE, totp_token, wrong_code
from .accounts import trading
from .accounts.models import Order
from .support import (
    UA_REQUESTS,
    api,
    browser,
    home_customer,
    json_login,
    kinds,
    latest_event,
    post_json,
    with_token,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

TOKEN_URL = "/api/v1/auth/token"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def obtain(client: Any, email: str = "alice@example.jp", password: str = "correct horse battery") -> Any:
    return client.post(TOKEN_URL, {"username": email, "password": password}, format="json")


def held_with_a_token(user_factory: Any, totp_factory: Any) -> Any:
    """A token client whose first sell (a third of the holdings, on a new device) is held."""
    alice = user_factory("alice", cash=100_000, holdings={"7203": 100, "9432": 2000, "6758": 100})
    totp_factory(alice)
    client = with_token(api(), obtain(api()).json()["token"])
    answer = client.post("/api/v1/orders", {"side": "sell", "symbol": "7203", "quantity": 100}, format="json")
    assert answer.status_code == 202, answer.content
    return answer


def test_the_issues_token_bypass_is_closed_on_portal_two(user_factory: Any, totp_factory: Any) -> None:
    """The phished password from a Singapore VPS by python-requests: no token, a login event with the very
    decision and notifications of the same login through the portal's JSON login."""
    alice, bob = home_customer(user_factory, "alice"), home_customer(user_factory, "bob")
    totp_factory(alice), totp_factory(bob)
    before = {user.pk: (LoginEvent.objects.filter(user=user).count(), kinds(user)) for user in (alice, bob)}

    token_login = obtain(api(IP_SG_VPS, UA_REQUESTS))
    json_answer = json_login(browser(IP_SG_VPS, UA_REQUESTS), "bob@example.jp")

    assert token_login.status_code == json_answer.status_code == 403
    assert token_login.json()["status"] == json_answer.json()["status"] == "denied"
    assert "token" not in token_login.json() and not Token.objects.exists()
    assert settings.SESSION_COOKIE_NAME not in token_login.cookies
    phished, reference = latest_event(alice), latest_event(bob)
    for user in (alice, bob):
        assert LoginEvent.objects.filter(user=user).count() == before[user.pk][0] + 1
    assert (phished.ip, phished.user_agent, phished.password_ok) == (IP_SG_VPS, UA_REQUESTS, True)
    assert phished.outcome == reference.outcome == Outcome.REFUSED
    assert (phished.action, phished.score, phished.reasons) == (
        reference.action,
        reference.score,
        reference.reasons,
    )
    assert {"anonymous_hosting", "automation_client"} <= set(phished.reasons)
    assert kinds(alice) == before[alice.pk][1] and kinds(bob) == before[bob.pk][1]
    assert api(IP_SG_VPS, UA_REQUESTS).get("/api/v1/portfolio").status_code in (401, 403)


def test_the_token_endpoint_takes_the_username_or_the_email_field(user_factory: Any) -> None:
    user_factory("alice")
    by_username = obtain(api())
    by_email = api().post(TOKEN_URL, {"email": "Alice@example.jp", "password": "correct horse battery"})
    assert by_username.status_code == by_email.status_code == 200, by_email.content
    # Both sign the same account in; each login gets a token of its own and ends the one before.
    assert by_email.json()["token"] == Token.objects.get().key != by_username.json()["token"]
    wrong = obtain(api(), password="wrong")
    unknown = obtain(api(), email="nobody@example.jp")
    assert wrong.status_code == unknown.status_code == 400 and wrong.json() == unknown.json()


def test_a_home_token_reads_the_account_but_needs_a_factor_for_a_withdrawal(user_factory: Any) -> None:
    alice = user_factory("alice", holdings={"7203": 100})
    response = obtain(api())
    assert response.status_code == 200
    assert latest_event(alice).outcome == Outcome.SIGNED_IN
    assert not Session.objects.exists()  # a token login leaves no session behind
    client = with_token(api(), response.json()["token"])
    portfolio = client.get("/api/v1/portfolio")
    assert portfolio.status_code == 200
    assert portfolio.json() == {"status": "ok", "email": "alice@example.jp", "holdings": {"7203": 100}}
    withdraw = client.post("/api/v1/withdrawals")
    assert withdraw.status_code == 403 and withdraw.json()["status"] == "step_up_required"


def test_a_stepped_up_token_login_exchanges_a_real_totp_code_for_a_strong_token(
    user_factory: Any, totp_factory: Any, clock: Any
) -> None:
    alice = user_factory("alice")
    device = totp_factory(alice)
    client = api(IP_SG_VPS, UA_CHROME_WIN)  # no history, a hosting network: stepped up
    body = obtain(client).json()
    assert body["status"] == "step_up_required" and body["methods"] == ["totp"] and "token" not in body
    assert body["step_up"]["totp"] == "/api/v1/auth/step-up/totp"
    assert latest_event(alice).outcome == Outcome.STEP_UP_PENDING and not Token.objects.exists()
    bad = post_json(
        client,
        "/api/v1/auth/step-up/totp",
        {"step_up_token": body["step_up_token"], "code": wrong_code(device)},
    )
    assert bad.status_code == 400 and latest_event(alice).outcome == Outcome.STEP_UP_FAILED
    clock.shift(60)
    good = post_json(
        client,
        "/api/v1/auth/step-up/totp",
        {"step_up_token": body["step_up_token"], "code": totp_token(device)},
    )
    assert good.status_code == 200, good.content
    assert latest_event(alice).outcome == Outcome.STEP_UP_PASSED
    token = good.json()["token"]
    assert with_token(api(IP_SG_VPS), token).post("/api/v1/withdrawals").status_code == 200
    clock.shift(301)  # the strength is fresh for five minutes
    assert with_token(api(IP_SG_VPS), token).post("/api/v1/withdrawals").status_code == 403


def test_a_token_step_up_with_a_recovery_code(user_factory: Any, totp_factory: Any, clock: Any) -> None:
    from authguard.models import RecoveryCode, RecoveryCodeDevice
    from authguard.models.factors import recovery_digest as _recovery_digest

    alice = user_factory("alice")
    totp_factory(alice)
    codes = RecoveryCodeDevice.objects.create(user=alice, name="codes", confirmed=True)
    RecoveryCode.objects.create(
        device=codes, digest=_recovery_digest(codes.pk, "ABCDEFGHIJKLMNOP"), hashed=""
    )
    body = obtain(api(IP_SG_VPS, UA_CHROME_WIN)).json()
    answer = post_json(
        api(IP_SG_VPS), "/api/v1/auth/step-up/recovery-code",
        {"step_up_token": body["step_up_token"], "code": "abcd-efgh-ijkl-mnop"},
    )  # fmt: skip
    assert answer.status_code == 200 and answer.json()["method"] == "recovery_code", answer.content
    assert "recovery_code_used" in kinds(alice)


def test_a_token_clients_held_order_waits_for_the_customer_and_cannot_be_confirmed_with_the_token(
    user_factory: Any, totp_factory: Any
) -> None:
    """docs/drf.md: "Confirming a held order with a token: the confirmation API is session-based". A token
    request carries no session state, so the guard's risky-session limits apply (fail closed): a sell of a
    third of the holdings is held; the token reaches none of the confirmation endpoints; nothing executes."""
    answer = held_with_a_token(user_factory, totp_factory)
    alice = Order.objects.get(pk=answer.json()["order_id"]).account.user
    assert "risky_session_sell" in answer.json()["confirmation"]["reasons"]
    confirmation = answer.json()["confirmation"]["id"]
    token = Token.objects.get(user=alice).key
    for path in (f"/authguard/api/confirmations/{confirmation}/passkey/options",
                 f"/authguard/api/confirmations/{confirmation}/totp"):  # fmt: skip
        refused = with_token(api(), token).post(path, {"code": "123456"}, format="json")
        assert refused.status_code in (401, 403, 404), (path, refused.status_code)
    assert HeldOrder.objects.get(pk=confirmation).status == HeldOrder.Status.PENDING
    assert Order.objects.get(pk=answer.json()["order_id"]).status == Order.Status.HELD
    assert trading.holdings_of(alice)["7203"] == 100


def test_a_token_clients_held_order_creates_no_session(user_factory: Any, totp_factory: Any) -> None:
    answer = held_with_a_token(user_factory, totp_factory)
    assert settings.SESSION_COOKIE_NAME not in answer.cookies
    assert not Session.objects.exists()


def test_a_stepped_up_token_from_abroad_places_orders_through_the_guard(
    user_factory: Any, totp_factory: Any
) -> None:
    alice = home_customer(user_factory, cash=500_000, holdings={"7203": 100})
    device = totp_factory(alice)
    body = obtain(api(IP_US_HOME, UA_IPHONE)).json()
    assert body["status"] == "step_up_required"
    token = post_json(
        api(IP_US_HOME, UA_IPHONE), "/api/v1/auth/step-up/totp",
        {"step_up_token": body["step_up_token"], "code": totp_token(device)},
    ).json()["token"]  # fmt: skip
    placed = with_token(api(IP_US_HOME, UA_IPHONE), token).post(
        "/api/v1/orders", {"side": "buy", "symbol": "8306", "quantity": 10}, format="json"
    )
    assert placed.status_code == 201, placed.content
    assert trading.holdings_of(alice) == {"7203": 100, "8306": 10}


# The documented REST_FRAMEWORK defaults (docs/drf.md) loaded in a fresh process: importing DRF's views
# resolves DEFAULT_AUTHENTICATION_CLASSES, which imports authguard.drf, which imports DRF's views.
DOCUMENTED_DEFAULTS = """
import django
from django.conf import settings
django.setup()
import rest_framework.views
from rest_framework.views import APIView
print([c.__module__ + "." + c.__name__ for c in APIView.authentication_classes])
print([c.__module__ + "." + c.__name__ for c in APIView.permission_classes])
"""


def test_the_documented_rest_framework_defaults_load(tmp_path: Path) -> None:
    (tmp_path / "portal2_drf_defaults.py").write_text(
        "from tests.portal2.settings import *  # noqa: F403\n"
        "REST_FRAMEWORK = {\n"
        "    'DEFAULT_AUTHENTICATION_CLASSES': [\n"
        "        'rest_framework.authentication.SessionAuthentication',\n"
        "        'authguard.drf.TokenAuthentication',\n"
        "    ],\n"
        "    'DEFAULT_PERMISSION_CLASSES': ['authguard.drf.NotPending'],\n"
        "}\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal2_drf_defaults",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", DOCUMENTED_DEFAULTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert (
        lines[-2]
        == "['rest_framework.authentication.SessionAuthentication', 'authguard.drf.TokenAuthentication']"
    )
    assert lines[-1] == "['authguard.drf.NotPending']"
