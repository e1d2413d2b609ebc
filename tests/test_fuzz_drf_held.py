"""Fuzz, round seventy-one: authguard's DRF token login and its step-up exchange (tests.drf_urlconf), field
by field.

A real pending token login (a step_up_token from a Singapore VPS), then each field of the token, TOTP,
recovery-code and passkey step-up bodies replaced by each hostile value, JSON and form-encoded. < 500, no
token issued by garbage.
"""

from __future__ import annotations

import json
import traceback
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from authguard.choices import Outcome
from authguard.models import LoginEvent
from authguard.testing import SoftAuthenticator

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, bind_passkey
from .test_fuzz_stateful_held import VALUES, mutated, paths_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _no_throttles(settings: Any) -> None:
    settings.AUTHGUARD_LOGIN_THROTTLE = {"ip_failures": 10**6, "user_failures": 10**6}
    settings.AUTHGUARD_FACTOR_THROTTLE = {"session": 10**6, "network": 10**6, "account": 10**6}
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]


def _pending(settings: Any) -> tuple[APIClient, str]:
    client = APIClient(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    client.raise_request_exception = False
    r = client.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    assert r.status_code == 401, r.content
    return client, r.json()["step_up_token"]


def _raw(client: APIClient, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def _crash(response: Any) -> str | None:
    if response.status_code < 500:
        return None
    exc = getattr(response, "exc_info", None)
    if exc:
        frame = traceback.extract_tb(exc[2])[-1]
        return f"{exc[0].__name__}: {str(exc[1])[:100]} @ {frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}"
    return str(response.status_code)


def test_held_token_and_code_step_up_bodies_field_by_field(alice_with_totp: Any, settings: Any) -> None:
    crashes: set[str] = set()
    for url in (
        "/api/auth/step-up/totp",
        "/api/auth/step-up/recovery-code",
        "/api/auth/step-up/passkey/options",
    ):
        pending, token = _pending(settings)
        for field in ("step_up_token", "code"):
            for value in VALUES:
                c = _crash(_raw(pending, url, {"step_up_token": token, "code": "123456", field: value}))
                if c:
                    crashes.add(f"{url} {field}={value!r:.20}: {c}")
    client = APIClient(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    client.raise_request_exception = False
    for field in ("username", "password"):
        for value in VALUES:
            body = {"username": "alice", "password": PASSWORD, field: value}
            c = _crash(_raw(client, "/api/auth/token", body))
            if c:
                crashes.add(f"token {field}={value!r:.20}: {c}")
    assert not crashes, "\n".join(sorted(crashes))
    assert not Token.objects.exists()


def test_held_drf_passkey_step_up_with_a_surrogate_credential_id_is_a_400(
    alice_with_totp: Any, settings: Any
) -> None:
    """Secure: a malformed assertion on the DRF passkey step-up is a 400 and counts as a failed step-up.
    Attack: the thief with Alice's password obtains a step_up_token, asks for passkey options and posts a
    credential whose ``id`` is ``"\\ud800"``: 500, the login event stays ``step_up_pending``.
    Root cause: (authguard/factors/passkey_ceremony.py:load_credential) ``constant_time_compare`` on an
    ``id`` checked only for ``str`` (the same as test_passkey_id_surrogate_held.py).
    Fix: refuse a non-ASCII (or non-base64url) ``id`` as ``malformed`` before comparing."""
    auth = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    bind_passkey(alice_with_totp, auth)
    client, token = _pending(settings)
    options = _raw(client, "/api/auth/step-up/passkey/options", {"step_up_token": token})
    assert options.status_code == 200, options.content
    credential = {**auth.get(options.json()), "id": "\ud800"}
    response = _raw(client, "/api/auth/step-up/passkey", {"step_up_token": token, "credential": credential})
    event = LoginEvent.objects.filter(user=alice_with_totp).latest("pk")
    assert (response.status_code, event.outcome) == (400, Outcome.STEP_UP_FAILED)


def test_held_drf_passkey_step_up_credential_fields_one_at_a_time(
    alice_with_totp: Any, settings: Any
) -> None:
    """Held apart from the reported ``id``: each field of a real assertion replaced, a new pending token
    login for each so no throttle hides a later value."""
    auth = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    bind_passkey(alice_with_totp, auth)
    client, token = _pending(settings)
    template = auth.get(_raw(client, "/api/auth/step-up/passkey/options", {"step_up_token": token}).json())
    crashes: set[str] = set()
    for path in paths_of(template):
        for value in VALUES:
            client, token = _pending(settings)
            _raw(client, "/api/auth/step-up/passkey/options", {"step_up_token": token})
            body = {"step_up_token": token, "credential": mutated(template, path, value)}
            c = _crash(_raw(client, "/api/auth/step-up/passkey", body))
            surrogate = isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value)
            if c and not (path == ("id",) and surrogate):
                crashes.add(f"{path}={value!r:.20}: {c}")
    assert not crashes, "\n".join(sorted(crashes))
    assert not Token.objects.exists()
