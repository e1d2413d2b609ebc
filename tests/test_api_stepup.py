"""The step-up JSON API of CONTRACTS section 4, as written, error answers included (acceptance 5).

``POST /authguard/api/step-up/totp {"code"}`` 200 ok / 400 invalid / 429 throttled;
``POST /authguard/api/step-up/passkey/options`` 200 request options; ``POST /authguard/api/step-up/passkey``
credential 200 ok / 400 invalid. Plus the recovery-code step-up and the passwordless login.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from authguard.conf import app_settings
from authguard.models import LoginEvent, Outcome
from authguard.testing import SoftAuthenticator

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, api_post, totp_token, wrong_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def alice(alice_with_totp_and_passkey: Any) -> Any:
    """alice with an authenticator app and a passkey bound earlier (``alice_with_totp_and_passkey``
    of tests/conftest.py)."""
    return alice_with_totp_and_passkey


@pytest.fixture
def pending(alice: Any, browser_at: Any) -> Client:
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    client.sign_in("alice")
    assert client.session["_authguard"]["s"] == "pending"
    return client


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def assert_error(response: Any, http_status: int, status: str) -> dict[str, Any]:
    assert response.status_code == http_status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == status and isinstance(body["message"], str) and body["message"]
    return body


# -- TOTP ---------------------------------------------------------------------------------------------------


def test_totp_200_ok_verifies_the_session_and_rotates_its_key(
    pending: Client, alice: Any, clock: Any
) -> None:
    before = session_key(pending)
    response = api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)})
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    state = pending.session["_authguard"]
    assert state["s"] == "verified" and state["sm"] == "totp" and state["u"] is True
    assert session_key(pending) != before
    assert pending.session[DEVICE_ID_SESSION_KEY] == alice.totp.persistent_id
    assert LoginEvent.objects.get(user=alice).outcome == Outcome.STEP_UP_PASSED
    assert pending.get("/api/portfolio").status_code == 200


def test_totp_400_invalid_for_a_wrong_code(pending: Client, alice: Any, clock: Any) -> None:
    body = assert_error(api_post(pending, "api-step-up-totp", {"code": "000000"}), 400, "invalid")
    assert body["code"] == "wrong_code"
    assert pending.session["_authguard"]["s"] == "pending"
    assert LoginEvent.objects.get(user=alice).outcome == Outcome.STEP_UP_FAILED


@pytest.mark.parametrize("body", [{}, {"code": None}, {"code": 123456}, {"code": ["123456"]}, {"code": ""}])
def test_totp_400_invalid_for_missing_or_mistyped_codes(
    pending: Client, clock: Any, body: dict[str, Any]
) -> None:
    assert_error(api_post(pending, "api-step-up-totp", body), 400, "invalid")


def test_totp_429_throttled_after_the_free_failures(pending: Client, alice: Any, clock: Any) -> None:
    # A browser the account does not know well: its session's free failures, then authguard's back-off.
    for _ in range(app_settings.FACTOR_THROTTLE["session"] + 1):
        api_post(pending, "api-step-up-totp", {"code": wrong_code(alice.totp)})
    body = assert_error(
        api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)}), 429, "throttled"
    )
    assert body["code"] == "throttled"
    clock.shift(2)
    assert api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)}).status_code == 200


@pytest.mark.parametrize(
    "raw",
    ['{"code": "12', "[1, 2]", '"123456"', "null", "\xff\xfe", "{" * 5000 + "}" * 5000],
)
def test_malformed_json_answers_400(pending: Client, raw: str) -> None:
    body = assert_error(api_post(pending, "api-step-up-totp", raw=raw), 400, "invalid")
    assert body["code"] in ("malformed", "too_large")


def test_a_huge_body_answers_400_without_being_parsed(pending: Client) -> None:
    raw = json.dumps({"code": "1" * (2 * 1024 * 1024)})
    body = assert_error(api_post(pending, "api-step-up-totp", raw=raw), 400, "invalid")
    assert body["code"] == "too_large"


def test_other_methods_answer_405_json(pending: Client) -> None:
    response = pending.get("/authguard/api/step-up/totp")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_anonymous_requests_answer_401_login_required(client: Client) -> None:
    for name in ("api-step-up-totp", "api-step-up-passkey-options", "api-step-up-passkey", "api-passkeys"):
        assert_error(api_post(client, name, {"code": "123456"}), 401, "login_required")


def test_csrf_protection_stays_on(alice: Any, clock: Any) -> None:
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    token = client.get("/api/csrf").json()["csrf_token"]
    login = client.post(
        "/api/login",
        json.dumps({"username": "alice", "password": "correct horse battery"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert login.json()["status"] == "step_up_required"
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    refused = api_post(client, "api-step-up-totp", {"code": totp_token(alice.totp)})
    assert refused.status_code == 403  # Django's CSRF check, before any authguard code runs
    assert refused.json()["status"] == "csrf_failed" and refused.json()["message"]  # JSON, as every answer
    assert api_post(client, "api-step-up-totp", {"code": "x"}, HTTP_X_CSRFTOKEN="forged").status_code == 403
    accepted = api_post(client, "api-step-up-totp", {"code": totp_token(alice.totp)}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200


def test_the_preset_accepts_passkeys_only(pending: Client, alice: Any, settings: Any, clock: Any) -> None:
    settings.AUTHGUARD_PRESET = "jsda-2025"
    body = assert_error(
        api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)}), 400, "invalid"
    )
    assert body["code"] == "method_unavailable"
    assert pending.session["_authguard"]["s"] == "pending"


def test_a_locked_account_is_denied(pending: Client, alice: Any, clock: Any) -> None:
    from authguard.conf import app_settings
    from authguard.login import lockout

    for _ in range(app_settings.LOCKOUT_FAILURES or 10):
        lockout.record_failure(alice, kind="totp")
    assert lockout.is_locked(alice)
    # Locking ends every session of the account (issue 10, case 59): the pending one verifies nothing more.
    assert_error(
        api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)}), 401, "login_required"
    )
    assert_error(api_post(pending, "api-step-up-passkey-options"), 401, "login_required")
    assert "_auth_user_id" not in pending.session


def test_totp_reverification_in_a_verified_session(alice: Any, browser_at: Any, clock: Any) -> None:
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.sign_in("alice")
    assert client.session["_authguard"]["s"] == "verified" and client.session["_authguard"]["st"] is None
    assert api_post(client, "api-step-up-totp", {"code": totp_token(alice.totp)}).status_code == 200
    state = client.session["_authguard"]
    assert state["sm"] == "totp" and state["st"] == pytest.approx(timezone.now().timestamp())
    assert state["u"] is False  # a re-verification, not a step-up of a pending login


# -- recovery codes -----------------------------------------------------------------------------------------


def test_recovery_code_step_up(pending: Client, alice: Any, clock: Any) -> None:
    from authguard.models import RecoveryCode, RecoveryCodeDevice
    from authguard.models.factors import recovery_digest

    # Codes issued earlier (as the security page would): generate them straight into the database.
    device = RecoveryCodeDevice.objects.create(user=alice, name="codes")
    code = "ABCDEFGHIJKLMNOP"
    RecoveryCode.objects.create(
        device=device, digest=recovery_digest(device.pk, code), hashed=make_password(code)
    )
    assert_error(
        api_post(pending, "api-step-up-recovery-code", {"code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}), 400, "invalid"
    )
    clock.shift(2)
    assert api_post(pending, "api-step-up-recovery-code", {"code": "abcd-efgh-ijkl-mnop"}).json() == {
        "status": "ok"
    }
    assert pending.session["_authguard"]["sm"] == "recovery_code"


# -- passkeys ---------------------------------------------------------------------------------------------


def test_passkey_options_200_are_request_options_for_the_users_passkeys(pending: Client, alice: Any) -> None:
    response = api_post(pending, "api-step-up-passkey-options")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["rpId"] == "localhost" and body["userVerification"] == "required"
    assert body["allowCredentials"] == [
        {"id": alice.passkey.credential_id, "type": "public-key", "transports": ["internal", "hybrid"]}
    ]
    assert body["timeout"] == 300_000


def test_passkey_200_ok_and_400_invalid(
    pending: Client, alice: Any, authenticator: SoftAuthenticator
) -> None:
    options = api_post(pending, "api-step-up-passkey-options").json()
    bad = authenticator.get(options, user_verified=False)
    body = assert_error(api_post(pending, "api-step-up-passkey", bad), 400, "invalid")
    assert body["code"] == "user_verification"
    assert pending.session["_authguard"]["s"] == "pending"
    options = api_post(pending, "api-step-up-passkey-options").json()
    response = api_post(pending, "api-step-up-passkey", authenticator.get(options))
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert pending.session["_authguard"]["sm"] == "passkey"
    assert pending.session[DEVICE_ID_SESSION_KEY] == alice.passkey.persistent_id


def test_passkey_400_without_options_first(pending: Client, authenticator: SoftAuthenticator) -> None:
    assertion = authenticator.get({"challenge": "AAAAAAAAAAAAAAAAAAAAAA", "rpId": "localhost"})
    body = assert_error(api_post(pending, "api-step-up-passkey", assertion), 400, "invalid")
    assert body["code"] == "no_challenge"


def test_passkey_options_for_a_user_without_a_passkey_answer_400(
    user_factory: Any, totp_factory: Any, browser_at: Any
) -> None:
    totp_factory(user_factory("bob"))
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    client.sign_in("bob")
    body = assert_error(api_post(client, "api-step-up-passkey-options"), 400, "invalid")
    assert body["code"] == "method_unavailable"


def test_passwordless_login_is_denied_for_a_locked_account(
    alice: Any, authenticator: SoftAuthenticator, client: Client
) -> None:
    from authguard.login import lockout

    for _ in range(10):
        lockout.record_failure(alice, kind="password")
    options = api_post(client, "api-login-passkey-options").json()
    assert_error(api_post(client, "api-login-passkey", authenticator.get(options)), 403, "denied")
    assert "_auth_user_id" not in client.session
