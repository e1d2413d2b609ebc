"""Red team, round twenty-five (d): a passkey answer whose ``clientDataJSON`` is deeply nested JSON.

``authguard.factors.passkey_ceremony.client_data`` decodes the browser's ``clientDataJSON`` with
``json.loads`` and catches ``ValueError`` only. ``load_credential`` bounds it to 8 KB of base64, which holds
6,000 bytes: 3,000 opening brackets are enough for the decoder to raise ``RecursionError``. The ceremony
pops the challenge first, so the request is a 500 that has already spent the customer's challenge and
recorded no failure. Every endpoint must answer 400 ``invalid`` (code ``malformed``), as it does for any other
unreadable ``clientDataJSON``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from authguard.sessions import state as sessions_state

from .conftest import HANAKO_PASSWORD, IP_SG_VPS, UA_CHROME_WIN, api_post, bind_passkey

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _deep_assertion(credential_id: str = "AAAAAAAAAAAAAAAAAAAAAA") -> dict[str, Any]:
    """A PublicKeyCredential.toJSON() of the right shape whose clientDataJSON is 3,000 nested arrays (4 KB of
    base64, under the 8 KB bound)."""
    return {
        "id": credential_id,
        "rawId": credential_id,
        "type": "public-key",
        "response": {
            "clientDataJSON": _b64(b"[" * 3000),
            "authenticatorData": _b64(b"\x00" * 37),
            "signature": _b64(b"\x30\x06\x02\x01\x01\x02\x01\x01"),
        },
    }


def _answer(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, (response.status_code, response.content[:200])
    body = response.json()
    assert body["status"] == "invalid" and body.get("code") == "malformed", body
    return body


@pytest.mark.battery(32)
def test_a_thief_with_her_password_gets_a_400_not_a_500_for_a_nested_client_data(
    brokerage_customer: Any, authenticator: Any
) -> None:
    """The thief signs in with Hanako's password from a Singapore VPS (held for step-up), asks for passkey
    options like her browser would, and answers with a hand-made assertion whose clientDataJSON is nested
    brackets. The step-up API must refuse it (400 malformed); the session stays pending."""
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    bind_passkey(hanako, authenticator)
    thief = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/login/")
    held: Any = thief.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert held.status_code == 302 and held.url.startswith("/authguard/step-up/")
    options = api_post(thief, "api-step-up-passkey-options")
    assert options.status_code == 200
    _answer(api_post(thief, "api-step-up-passkey", _deep_assertion()))
    session = thief.session
    assert SESSION_KEY in session
    assert session.get(sessions_state.STATE_KEY, {}).get("s") != "verified"


@pytest.mark.battery(32)
@pytest.mark.parametrize("endpoint", ["api-unlock", "api-login-passkey"])
def test_anyone_on_the_internet_gets_a_400_not_a_500_from_the_passwordless_passkey_apis(
    brokerage_customer: Any, authenticator: Any, endpoint: str
) -> None:
    """The passkey unlock (``api/unlock``) and the passwordless passkey login (``api/login/passkey``) need no
    sign-in at all: any visitor can ask for options and post an answer. A nested clientDataJSON must be a
    400 there, not a 500 on demand for anyone."""
    brokerage_customer(holdings={"7203": 100}, totp=True)
    visitor = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    assert api_post(visitor, endpoint + "-options").status_code == 200
    _answer(api_post(visitor, endpoint, _deep_assertion()))


@pytest.mark.battery(32)
def test_the_token_step_up_answers_a_nested_client_data_with_a_400(
    brokerage_customer: Any, authenticator: Any, settings: Any
) -> None:
    """The same answer through the DRF token login's passkey step-up (``api/auth/step-up/passkey``): the
    thief's token login is parked (401 with a ``step_up_token``); his nested assertion must be a 400, and the
    parked login must not turn into a token."""
    settings.ROOT_URLCONF = "tests.drf_urlconf"
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    bind_passkey(hanako, authenticator)
    thief = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    parked = thief.post(
        "/api/auth/token",
        data=json.dumps({"username": "hanako", "password": HANAKO_PASSWORD}),
        content_type="application/json",
    )
    assert parked.status_code == 401, parked.content
    token = parked.json()["step_up_token"]
    options = thief.post(
        "/api/auth/step-up/passkey/options",
        data=json.dumps({"step_up_token": token}),
        content_type="application/json",
    )
    assert options.status_code == 200, options.content
    response = thief.post(
        "/api/auth/step-up/passkey",
        data=json.dumps({"step_up_token": token, "credential": _deep_assertion()}),
        content_type="application/json",
    )
    assert response.status_code == 400, (response.status_code, response.content[:200])
    assert "token" not in response.json()


@pytest.mark.battery(32)
def test_registering_a_passkey_answers_a_nested_client_data_with_a_400_and_adds_nothing(
    brokerage_customer: Any, authenticator: Any
) -> None:
    """The same clientDataJSON in a passkey registration (``api/passkeys``), by a session verified with a
    TOTP code (the thief's relayed one, or her own): a 400 and no passkey added, not a 500."""
    from authguard.models import PasskeyDevice

    from .conftest import IP_TOKYO, totp_token

    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    browser = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    browser.get("/login/")
    signed_in: Any = browser.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD})
    if signed_in.url.startswith("/authguard/step-up/"):
        browser.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)})
    assert (
        api_post(browser, "api-step-up-totp", {"code": totp_token(hanako.totp, steps=1)}).status_code == 200
    )
    options = api_post(browser, "api-passkeys-options")
    assert options.status_code == 200, options.content
    answer = authenticator.create(options.json())
    answer["response"]["clientDataJSON"] = _b64(b"[" * 3000)
    _answer(api_post(browser, "api-passkeys", answer))
    assert not PasskeyDevice.objects.filter(user=hanako).exists()
