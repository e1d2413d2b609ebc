"""The passkey registration JSON API of CONTRACTS section 4 (acceptance 5), and malformed WebAuthn bodies
(battery case 32, with a Hypothesis fuzz that must never see a 500).

``POST /authguard/api/passkeys/options`` 200 creation options · 401/403 ``step_up_required`` unless the
session holds a fresh strong verification; ``POST /authguard/api/passkeys`` credential 201 ok · 400 invalid ·
401/403.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from authguard.models import AccountSecurity, FactorRecord, Notification, PasskeyDevice
from authguard.testing import SoftAuthenticator

from .conftest import (
    IP_SG_VPS,
    UA_CHROME_WIN,
    api_post,
    bind_passkey,
    passkey_step_up,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def creation_options(client: Client) -> dict[str, Any]:
    response = api_post(client, "api-passkeys-options")
    assert response.status_code == 200, response.content
    return response.json()


# -- contract --------------------------------------------------------------------------------------------


def test_options_200_and_register_201_for_a_first_passkey(
    alice: Any, low_risk: Client, authenticator: SoftAuthenticator
) -> None:
    options = creation_options(low_risk)
    assert options["status"] == "ok" and options["user"]["name"] == "alice"
    credential = authenticator.create(options)
    response = api_post(low_risk, "api-passkeys", {**credential, "name": "  My   phone  "})
    assert response.status_code == 201
    device = PasskeyDevice.objects.get()
    assert response.json() == {
        "status": "ok",
        "passkey": {"id": device.persistent_id, "name": "My phone", "cooling_off": False},
    }
    assert Notification.objects.filter(user=alice, kind="factor_added").get().context["factor"] == "passkey"
    assert FactorRecord.objects.get(device_id=device.persistent_id).enrolled_via == "low_risk_first_factor"


def test_options_and_register_answer_401_login_required_when_anonymous(client: Client) -> None:
    for name in ("api-passkeys-options", "api-passkeys"):
        response = api_post(client, name)
        assert response.status_code == 401 and response.json()["status"] == "login_required"


def test_options_and_register_answer_401_step_up_required_in_a_pending_session(
    alice: Any, authenticator: SoftAuthenticator, browser_at: Any
) -> None:
    bind_passkey(alice, authenticator)
    pending = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    pending.sign_in("alice")
    for name in ("api-passkeys-options", "api-passkeys"):
        response = api_post(pending, name, {"id": "x"})
        assert response.status_code == 401 and response.json()["status"] == "step_up_required"
        assert response.json()["methods"] == ["passkey"]


def test_options_and_register_answer_403_without_a_fresh_verification(
    alice: Any, low_risk: Client, authenticator: SoftAuthenticator
) -> None:
    bind_passkey(alice, authenticator)
    options = api_post(low_risk, "api-passkeys-options")
    assert options.status_code == 403
    assert options.json()["status"] == "step_up_required" and options.json()["methods"] == ["passkey"]
    # Options obtained while fresh do not outlive the freshness: registering re-checks it.
    assert passkey_step_up(low_risk, authenticator).status_code == 200
    creation = creation_options(low_risk)
    import time_machine
    from django.utils import timezone

    with time_machine.travel(timezone.now().timestamp() + 301):
        response = api_post(low_risk, "api-passkeys", SoftAuthenticator().create(creation))
    assert response.status_code == 403 and response.json()["status"] == "step_up_required"
    assert PasskeyDevice.objects.count() == 1


def test_register_400_invalid_for_a_bad_credential(
    low_risk: Client, authenticator: SoftAuthenticator
) -> None:
    credential = authenticator.create(creation_options(low_risk), origin="https://evil.example")
    response = api_post(low_risk, "api-passkeys", credential)
    assert response.status_code == 400
    assert response.json()["status"] == "invalid" and response.json()["code"] == "origin"
    assert not PasskeyDevice.objects.exists()


def test_register_400_for_a_name_that_is_not_text(low_risk: Client, authenticator: SoftAuthenticator) -> None:
    credential = authenticator.create(creation_options(low_risk))
    response = api_post(low_risk, "api-passkeys", {**credential, "name": {"x": 1}})
    assert response.status_code == 400 and response.json()["status"] == "invalid"


# -- battery 32: malformed bodies ---------------------------------------------------------------------------


def _no_trace(response: Any) -> None:
    text = response.content.decode()
    assert "Traceback" not in text and "webauthn" not in text.lower() and "cbor" not in text.lower()


@pytest.mark.battery(32)
def test_battery_32_bad_base64url_answers_400(low_risk: Client, authenticator: SoftAuthenticator) -> None:
    credential = authenticator.create(creation_options(low_risk))
    for field, value in [
        ("rawId", credential["rawId"] + "!"),
        ("rawId", credential["rawId"] + "==="),
        ("clientDataJSON", "$$$$"),
        ("attestationObject", "A"),  # one character cannot be base64url
        ("attestationObject", 12345),
    ]:
        creation = creation_options(low_risk)
        broken = authenticator.create(creation)
        if field == "rawId":
            broken["rawId"] = broken["id"] = value
        else:
            broken["response"][field] = value
        response = api_post(low_risk, "api-passkeys", broken)
        assert response.status_code == 400, (field, value)
        assert response.json()["status"] == "invalid"
        _no_trace(response)
    assert not PasskeyDevice.objects.exists()


@pytest.mark.battery(32)
def test_battery_32_truncated_cbor_answers_400(low_risk: Client, authenticator: SoftAuthenticator) -> None:
    for cut in (1, 10, 37, 60):
        credential = authenticator.create(creation_options(low_risk))
        attestation = unb64(credential["response"]["attestationObject"])
        credential["response"]["attestationObject"] = b64(attestation[:-cut])
        response = api_post(low_risk, "api-passkeys", credential)
        assert response.status_code == 400 and response.json()["code"] == "malformed", cut
        _no_trace(response)
    assert not PasskeyDevice.objects.exists()


@pytest.mark.battery(32)
def test_battery_32_truncated_authenticator_data_in_an_assertion_answers_400(
    alice: Any, authenticator: SoftAuthenticator, browser_at: Any
) -> None:
    bind_passkey(alice, authenticator)
    pending = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    pending.sign_in("alice")
    options = api_post(pending, "api-step-up-passkey-options").json()
    assertion = authenticator.get(options)
    assertion["response"]["authenticatorData"] = b64(unb64(assertion["response"]["authenticatorData"])[:20])
    response = api_post(pending, "api-step-up-passkey", assertion)
    assert response.status_code == 400 and response.json()["status"] == "invalid"
    assert pending.session["_authguard"]["s"] == "pending"


@pytest.mark.battery(32)
def test_battery_32_a_1_mb_json_body_answers_400(low_risk: Client, authenticator: SoftAuthenticator) -> None:
    credential = authenticator.create(creation_options(low_risk))
    credential["padding"] = "x" * (1024 * 1024)
    response = api_post(low_risk, "api-passkeys", credential)
    assert response.status_code == 400 and response.json()["code"] == "too_large"
    assert not PasskeyDevice.objects.exists()


@pytest.mark.battery(32)
def test_battery_32_an_id_different_from_raw_id_answers_400(
    low_risk: Client, authenticator: SoftAuthenticator
) -> None:
    credential = authenticator.create(creation_options(low_risk))
    credential["id"] = b64(b"another credential id")
    response = api_post(low_risk, "api-passkeys", credential)
    assert response.status_code == 400 and response.json()["code"] == "malformed"
    assert not PasskeyDevice.objects.exists()


# -- battery 32: fuzz ------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_fields = st.sampled_from(
    [
        "id",
        "rawId",
        "type",
        "response",
        "clientDataJSON",
        "attestationObject",
        "transports",
        "authenticatorAttachment",
    ]
)


def _mutate(credential: dict[str, Any], field: str, value: Any, cut: int) -> dict[str, Any]:
    mutated = json.loads(json.dumps(credential))
    if field in ("clientDataJSON", "attestationObject", "transports"):
        target = mutated["response"]
        if cut and isinstance(target.get(field), str):
            raw = unb64(target[field])
            target[field] = b64(raw[: max(0, len(raw) - cut)])
            return mutated
    else:
        target = mutated
    target[field] = value
    return mutated


@pytest.mark.battery(32)
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(field=_fields, value=_json, cut=st.integers(min_value=0, max_value=80))
def test_battery_32_fuzzed_registrations_never_answer_500(
    low_risk: Client, authenticator: SoftAuthenticator, field: str, value: Any, cut: int
) -> None:
    credential = authenticator.create(creation_options(low_risk))
    response = api_post(low_risk, "api-passkeys", _mutate(credential, field, value, cut))
    assert response.status_code in (201, 400), response.content
    assert response.json()["status"] in ("ok", "invalid")
    PasskeyDevice.objects.all().delete()
    # A new account for the next example: one that ever had a factor gets no first-factor path (case 55).
    AccountSecurity.objects.all().delete()
    FactorRecord.objects.all().delete()


@pytest.mark.battery(32)
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_json | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_battery_32_arbitrary_bodies_never_answer_500(low_risk: Client, body: Any) -> None:
    for name in ("api-passkeys", "api-step-up-passkey", "api-login-passkey", "api-step-up-totp"):
        raw = body if isinstance(body, str) else json.dumps(body)
        response = api_post(low_risk, name, raw=raw)
        assert 400 <= response.status_code < 500, (name, response.content)
        assert "status" in response.json()


_assertion_fields = st.sampled_from(
    ["id", "rawId", "type", "response", "clientDataJSON", "authenticatorData", "signature", "userHandle"]
)


@pytest.mark.battery(32)
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(field=_assertion_fields, value=_json, cut=st.integers(min_value=0, max_value=40))
def test_battery_32_fuzzed_assertions_never_answer_500(
    low_risk: Client,
    alice: Any,
    authenticator: SoftAuthenticator,
    settings: Any,
    field: str,
    value: Any,
    cut: int,
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = None  # hundreds of failures: the account lock is not under test
    settings.AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT = 10_000
    # Nor the back-off of sessions that are not the customer's (tested in test_battery_lifecycle.py).
    settings.AUTHGUARD_FACTOR_THROTTLE = {"session": 10**6, "network": 10**6, "account": 10**6}
    if not PasskeyDevice.objects.exists():
        bind_passkey(alice, authenticator)
    options = api_post(low_risk, "api-step-up-passkey-options").json()
    assert "challenge" in options, options
    assertion = json.loads(json.dumps(authenticator.get(options)))
    target = (
        assertion["response"]
        if field in ("clientDataJSON", "authenticatorData", "signature", "userHandle")
        else assertion
    )
    if cut and isinstance(target.get(field), str):
        raw = unb64(target[field])
        target[field] = b64(raw[: max(0, len(raw) - cut)])
    else:
        target[field] = value
    response = api_post(low_risk, "api-step-up-passkey", assertion)
    assert response.status_code in (200, 400), response.content
    assert response.json()["status"] in ("ok", "invalid")
