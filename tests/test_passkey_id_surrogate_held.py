"""Fuzz, round seventy-one: a lone surrogate in a passkey answer's ``id`` was a 500 on every passkey endpoint.

Held since ``load_credential`` refuses an ``id`` that is not ASCII as ``malformed`` before comparing it.

``authguard.factors.passkey_ceremony.load_credential`` checks ``rawId`` as canonical base64url, but ``id``
only as ``isinstance(str)`` before ``constant_time_compare(cred_id, raw_id)``; Django's ``force_bytes``
encodes ``id`` as UTF-8, and a JSON ``"\\ud800"`` (a lone surrogate) raises ``UnicodeEncodeError``. The
challenge was popped (and the session saved) just before, so the answer is a 500 after the challenge is
spent, and no failure is recorded (the step-up's ``note_step_up_failure`` and the account's
``note_account_failure`` are skipped), on the anonymous passwordless login and unlock endpoints too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from authguard.choices import Outcome
from authguard.models import HeldAction, HeldOrder, LoginEvent, PasskeyDevice
from authguard.sessions import state as sessions_state
from authguard.testing import SoftAuthenticator

from .conftest import HANAKO_PASSWORD, IP_SG_VPS, UA_CHROME_WIN, OrderApi

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

SURROGATE_IDS = ["\ud800", "a\udfffb", "\udbff\udbff"]


@pytest.fixture
def site(settings: Any) -> Any:
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    return settings


def _post(client: Client, path: str, body: Any, **extra: Any) -> Any:
    client.raise_request_exception = False
    return client.post(path, data=json.dumps(body), content_type="application/json", **extra)


def _with_id(assertion: dict[str, Any], value: str) -> dict[str, Any]:
    return {**assertion, "id": value}


@pytest.mark.parametrize("bad_id", SURROGATE_IDS, ids=["lone-high", "lone-low", "two-highs"])
@pytest.mark.parametrize("endpoint", ["login/passkey", "unlock"])
def test_held_anonymous_passkey_endpoints_answer_400_for_a_surrogate_id(
    site: Any, brokerage_customer: Any, endpoint: str, bad_id: str
) -> None:
    """Secure: anyone on the internet sending a passkey answer whose ``id`` is not text that can be encoded
    gets 400 ``invalid`` (code ``malformed``), like any other malformed answer.
    Attack: an anonymous caller asks for options of the passwordless login (or the unlock) and posts
    ``{"id": "\\ud800", "rawId": <valid base64url>, "type": "public-key", "response": {...}}``: 500.
    Root cause: (authguard/factors/passkey_ceremony.py:load_credential) ``id`` is checked with
    ``isinstance(cred_id, str)`` only, then ``constant_time_compare(cred_id, raw_id)`` UTF-8-encodes it.
    Fix: compare only after ``b64url_decode(cred_id)`` (the same canonical base64url check as ``rawId``:
    its alphabet is ASCII), or check ``cred_id.isascii()`` before the comparison."""
    auth = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    brokerage_customer(holdings={"7203": 100}, passkey=auth)
    client = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    options = _post(client, f"/authguard/api/{endpoint}/options", {})
    assert options.status_code == 200, options.content
    assertion = auth.get(options.json())
    response = _post(client, f"/authguard/api/{endpoint}", _with_id(assertion, bad_id))
    assert 400 <= response.status_code < 500, response.status_code
    assert response.json()["status"] == "invalid"


@pytest.mark.parametrize("bad_id", ["\ud800", "!!!"], ids=["lone-surrogate", "control-ascii-garbage"])
def test_held_the_thiefs_step_up_with_a_surrogate_id_is_a_400_and_counts_as_a_failure(
    site: Any, brokerage_customer: Any, bad_id: str
) -> None:
    """Secure: the thief, signed in with Hanako's password and held at step-up, sends a malformed passkey
    answer: 400, and the attempt counts as a failed step-up (``note_step_up_failure``).
    Attack: the same answer with ``"id": "\\ud800"``: 500, and the session's failure count does not move, so
    these attempts are free of the step-up's failure limit.
    Root cause: (authguard/factors/passkey_ceremony.py:load_credential) as above; the view's
    ``except InvalidCredential`` that calls ``_failed`` never runs.
    Fix: as above (refuse a non-ASCII ``id`` as ``malformed`` before ``constant_time_compare``)."""
    auth = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    brokerage_customer(holdings={"7203": 100}, totp=True, passkey=auth)
    thief = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    held = thief.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert held.status_code == 302 and held.url.startswith("/authguard/step-up/")
    options = _post(thief, "/authguard/api/step-up/passkey/options", {})
    assert options.status_code == 200, options.content
    response = _post(thief, "/authguard/api/step-up/passkey", _with_id(auth.get(options.json()), bad_id))
    assert thief.session[sessions_state.STATE_KEY]["s"] == "pending"
    event = LoginEvent.objects.get(pk=thief.session[sessions_state.STATE_KEY]["e"])
    assert (response.status_code, event.outcome) == (400, Outcome.STEP_UP_FAILED)


@pytest.fixture
def customer(site: Any, hanako: Any) -> tuple[OrderApi, SoftAuthenticator, Any]:
    site.AUTHGUARD_RISK_SIGNALS = []
    auth = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    api = OrderApi()
    api.login_usual("hanako", HANAKO_PASSWORD)
    api.register_passkey(auth)
    api.client.raise_request_exception = False
    return api, auth, hanako


def test_held_registration_held_order_and_held_action_answer_400_for_a_surrogate_id(
    customer: tuple[OrderApi, SoftAuthenticator, Any],
) -> None:
    """Secure: Hanako's own browser (or a script in her verified session) sending a malformed answer to the
    passkey registration, a held order's or a held action's confirmation gets a 400.
    Attack: ``"id": "\\ud800"`` in each: 500 each time; the confirmation's challenge is spent, no failure
    counted, the item stays pending.
    Root cause: (authguard/factors/passkey_ceremony.py:load_credential) as above.
    Fix: as above."""
    api, auth, _hanako = customer
    statuses: dict[str, int] = {}
    # A second passkey needs a fresh passkey verification first.
    step = api.post("/authguard/api/step-up/passkey/options").json()
    assert api.post("/authguard/api/step-up/passkey", auth.get(step)).status_code == 200
    new = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    options = api.post("/authguard/api/passkeys/options").json()
    statuses["register"] = api.post(
        "/authguard/api/passkeys", _with_id(new.create(options), "\ud800")
    ).status_code
    held = api.order("sell", "AAPL", 10).json()["confirmation"]["id"]
    options = api.post(f"/authguard/api/confirmations/{held}/passkey/options").json()
    statuses["held order"] = api.post(
        f"/authguard/api/confirmations/{held}/passkey", _with_id(auth.get(options), "\ud800")
    ).status_code
    action = api.post(
        "/api/bank-accounts",
        {
            "bank_code": "0001",
            "bank_name": "Mizuho Bank",
            "branch_code": "123",
            "account_type": "ordinary",
            "account_number": "1234567",
            "holder_name": "YAMADA HANAKO",
        },
    ).json()["confirmation"]["id"]
    options = api.post(f"/authguard/api/actions/{action}/passkey/options").json()
    statuses["held action"] = api.post(
        f"/authguard/api/actions/{action}/passkey", _with_id(auth.get(options), "\ud800")
    ).status_code
    assert HeldOrder.objects.get(pk=held).status == HeldOrder.Status.PENDING
    assert HeldAction.objects.get(pk=action).status == "pending"
    assert PasskeyDevice.objects.count() == 1
    assert all(400 <= s < 500 for s in statuses.values()), statuses


def test_held_a_surrogate_in_raw_id_or_the_response_fields_is_a_400(
    customer: tuple[OrderApi, SoftAuthenticator, Any],
) -> None:
    """Held: the same lone surrogate in ``rawId``, ``clientDataJSON``, ``authenticatorData``, ``signature``,
    ``userHandle`` or ``transports`` is refused as malformed (they go through ``b64url_decode``)."""
    api, auth, _hanako = customer
    for field in ("rawId", "clientDataJSON", "authenticatorData", "signature", "userHandle"):
        options = api.post("/authguard/api/step-up/passkey/options").json()
        assertion = auth.get(options)
        if field == "rawId":
            assertion["rawId"] = "\ud800"
        else:
            assertion["response"][field] = "\ud800"
        response = api.post("/authguard/api/step-up/passkey", assertion)
        assert response.status_code == 400, (field, response.status_code)
