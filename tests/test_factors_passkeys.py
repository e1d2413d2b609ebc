"""Passkeys: registration and assertions with real WebAuthn payloads (SoftAuthenticator, verified by
py_webauthn), and every relying-party check authguard adds (security-battery.md cases 19, 26-31).

Sessions come from the real login form: Tokyo with no history is allowed (low risk); a hosting network in
Singapore for an account with no history is stepped up (pending).
"""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import IntegrityError, transaction
from django.test import Client, RequestFactory
from django.utils import timezone

from authguard.exceptions import InvalidCredential
from authguard.factors import base, inventory, passkey_ceremony, passkeys
from authguard.models import FactorRecord, PasskeyDevice
from authguard.testing import SoftAuthenticator

from .browser import browser_site_fixture, chrome_fixture  # noqa: F401
from .conftest import (
    IP_SG_VPS,
    IP_TOKYO,
    UA_CHROME_WIN,
    api_post,
    bind_passkey,
    passkey_step_up,
    register_passkey,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore


@pytest.fixture
def low_risk(alice: Any, browser_at: Any) -> Client:
    """alice signed in from home (Tokyo, no history: allowed outright)."""
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice").status_code == 302
    assert client.session["_authguard"]["lr"] is True
    return client


@pytest.fixture
def with_passkey(low_risk: Client, authenticator: SoftAuthenticator) -> Client:
    """alice, low-risk session, with her first passkey registered through the API."""
    response = register_passkey(low_risk, authenticator)
    assert response.status_code == 201, response.content
    return low_risk


@pytest.fixture
def pending(alice: Any, authenticator: SoftAuthenticator, browser_at: Any) -> Client:
    """alice has a passkey and signed in with her password from a risky place: pending."""
    alice.passkey = bind_passkey(alice, authenticator)
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    response = client.sign_in("alice")
    assert response.url.startswith("/authguard/step-up/")
    return client


def request_for(client: Client, user: Any) -> Any:
    """A request that carries ``client``'s session, for calling the passkeys module directly."""
    request = RequestFactory().post("/")
    request.session = SessionStore(session_key=client.session.session_key)
    request.user = user
    return request


def options(client: Client) -> dict[str, Any]:
    response = api_post(client, "api-step-up-passkey-options")
    assert response.status_code == 200, response.content
    return response.json()


def step_up(client: Client, credential: dict[str, Any]) -> Any:
    return api_post(client, "api-step-up-passkey", credential)


# -- registration ------------------------------------------------------------------------------------


def test_registration_options_require_a_resident_key_and_user_verification(low_risk: Client) -> None:
    body = api_post(low_risk, "api-passkeys-options").json()
    assert body["status"] == "ok"
    assert body["authenticatorSelection"]["residentKey"] == "required"
    assert body["authenticatorSelection"]["userVerification"] == "required"
    assert body["attestation"] == "none"
    assert body["rp"] == {"name": settings.AUTHGUARD_WEBAUTHN_RP_NAME, "id": "localhost"}
    assert {p["alg"] for p in body["pubKeyCredParams"]} == {-7, -8, -257}
    assert body["excludeCredentials"] == []
    assert len(passkey_ceremony.b64url_decode(body["challenge"])) >= 16
    assert body["timeout"] == 300_000


def test_a_registered_passkey_is_stored_with_its_flags(
    with_passkey: Client, alice: Any, authenticator: SoftAuthenticator
) -> None:
    device = PasskeyDevice.objects.get()
    credential = authenticator.credentials[0]
    assert (device.user, device.credential_id, device.confirmed) == (alice, credential.id, True)
    assert device.backup_eligible and device.backup_state and device.user_verified
    assert device.transports == ["internal", "hybrid"]
    assert device.user_handle == passkey_ceremony.b64url_encode(passkeys.user_handle_for(alice))
    # The user handle is opaque: neither the username nor the primary key.
    assert b"alice" not in passkeys.user_handle_for(alice)
    # Registering is not a verification: the session is exactly as strong as before.
    assert with_passkey.session["_authguard"]["st"] is None


def test_existing_credentials_are_excluded_from_new_registrations(
    with_passkey: Client, authenticator: SoftAuthenticator
) -> None:
    assert passkey_step_up(with_passkey, authenticator).status_code == 200
    body = api_post(with_passkey, "api-passkeys-options").json()
    assert [c["id"] for c in body["excludeCredentials"]] == [authenticator.credentials[0].id]
    # Same user handle for every passkey of the account.
    assert body["user"]["id"] == PasskeyDevice.objects.get().user_handle


def test_step_up_with_a_hardware_key_stores_the_increasing_sign_count(
    pending: Client, alice: Any, settings: Any
) -> None:
    key = SoftAuthenticator(sign_count=10, backup_eligible=False, backup_state=False)
    PasskeyDevice.objects.all().delete()
    device = bind_passkey(alice, key)
    assert device.sign_count == 10
    response = passkey_step_up(pending, key)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    device.refresh_from_db()
    assert device.sign_count == 11 and device.last_used_at is not None
    assert pending.session["_authguard"]["s"] == "verified"


# -- battery 26: replay, stale, cross-session, registration and purpose challenges ------------------------


@pytest.mark.battery(26)
def test_battery_26_a_replayed_assertion_is_rejected(
    pending: Client, authenticator: SoftAuthenticator
) -> None:
    assertion = authenticator.get(options(pending))
    assert step_up(pending, assertion).status_code == 200
    again = step_up(pending, assertion)
    assert again.status_code == 400
    assert again.json()["code"] == "no_challenge"


@pytest.mark.battery(26)
def test_battery_26_a_stale_challenge_is_rejected(pending: Client, authenticator: SoftAuthenticator) -> None:
    request_options = options(pending)
    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        assertion = authenticator.get(request_options)
        response = step_up(pending, assertion)
    assert response.status_code == 400 and response.json()["code"] == "no_challenge"
    assert pending.session["_authguard"]["s"] == "pending"


@pytest.mark.battery(26)
def test_battery_26_a_challenge_from_another_session_is_rejected(
    pending: Client, alice: Any, authenticator: SoftAuthenticator, browser_at: Any
) -> None:
    other = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    other.sign_in("alice")
    assertion = authenticator.get(options(other))  # answers the other session's challenge
    options(pending)
    response = step_up(pending, assertion)
    assert response.status_code == 400 and response.json()["code"] == "challenge"
    assert pending.session["_authguard"]["s"] == "pending"


@pytest.mark.battery(26)
def test_battery_26_a_registration_challenge_cannot_authenticate(
    with_passkey: Client, alice: Any, authenticator: SoftAuthenticator
) -> None:
    assert passkey_step_up(with_passkey, authenticator).status_code == 200
    creation = api_post(with_passkey, "api-passkeys-options").json()
    # An assertion over the registration challenge, posted as a step-up without step-up options.
    assertion = authenticator.get({"challenge": creation["challenge"], "rpId": "localhost"})
    response = step_up(with_passkey, assertion)
    assert response.status_code == 400 and response.json()["code"] == "no_challenge"
    # And a "webauthn.get" answer is no registration either.
    creation = api_post(with_passkey, "api-passkeys-options").json()
    bad = authenticator.create(creation, client_data_type="webauthn.get")
    assert api_post(with_passkey, "api-passkeys", bad).json()["code"] == "type"


@pytest.mark.battery(26)
def test_battery_26_challenges_are_bound_to_their_purpose(
    pending: Client, alice: Any, authenticator: SoftAuthenticator
) -> None:
    request = request_for(pending, alice)
    step_up_options = passkeys.authentication_options(request, purpose="step_up", user=alice)
    assertion = authenticator.get(step_up_options)
    with pytest.raises(InvalidCredential) as error:
        passkeys.verify_authentication(request, purpose="confirm:1", credential=assertion, user=alice)
    assert error.value.code == "no_challenge"
    # The step-up challenge is still there and works once.
    assert passkeys.verify_authentication(request, purpose="step_up", credential=assertion, user=alice)


@pytest.mark.battery(26)
def test_battery_26_a_challenge_is_single_use_even_in_parallel_copies_of_one_session(
    pending: Client, alice: Any, authenticator: SoftAuthenticator
) -> None:
    request = request_for(pending, alice)
    assertion = authenticator.get(passkeys.authentication_options(request, purpose="step_up", user=alice))
    request.session.save()
    # Two requests that loaded the same session before either consumed the challenge.
    first, second = request_for(pending, alice), request_for(pending, alice)
    assert first.session.get(passkey_ceremony.SESSION_KEY) and second.session.get(
        passkey_ceremony.SESSION_KEY
    )
    assert passkeys.verify_authentication(first, purpose="step_up", credential=assertion, user=alice)
    with pytest.raises(InvalidCredential) as error:
        passkeys.verify_authentication(second, purpose="step_up", credential=assertion, user=alice)
    assert error.value.code == "replayed"


def test_a_caller_provided_challenge_is_used_as_is_for_order_confirmations(
    pending: Client, alice: Any, authenticator: SoftAuthenticator
) -> None:
    request = request_for(pending, alice)
    challenge = bytes(range(32))
    request_options = passkeys.authentication_options(
        request, purpose="confirm:42", user=alice, challenge=challenge
    )
    assert passkey_ceremony.b64url_decode(request_options["challenge"]) == challenge
    assert request_options["userVerification"] == "required"
    assert [c["id"] for c in request_options["allowCredentials"]] == [alice.passkey.credential_id]
    device = passkeys.verify_authentication(
        request, purpose="confirm:42", credential=authenticator.get(request_options), user=alice
    )
    assert device == alice.passkey
    with pytest.raises(ValueError):
        passkeys.authentication_options(request, purpose="confirm:43", user=alice, challenge=b"short")


# -- battery 27 and 19: type, origin, rpId, crossOrigin ---------------------------------------------------


@pytest.mark.battery(27)
def test_battery_27_a_credential_of_another_type_is_rejected(
    pending: Client, authenticator: SoftAuthenticator
) -> None:
    assertion = authenticator.get(options(pending))
    assertion["type"] = "password"
    assert step_up(pending, assertion).json()["code"] == "type"
    wrong_ceremony = authenticator.get(options(pending), client_data_type="webauthn.create")
    assert step_up(pending, wrong_ceremony).json()["code"] == "type"


@pytest.mark.battery(27)
@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:8001",  # another port
        "https://localhost:8000",  # another scheme
        "http://evil.localhost:8000",  # a sibling subdomain
        "http://localhost",
        "https://evil.example",
    ],
)
def test_battery_27_assertions_from_other_origins_are_rejected(
    pending: Client, authenticator: SoftAuthenticator, origin: str
) -> None:
    response = step_up(pending, authenticator.get(options(pending), origin=origin))
    assert response.status_code == 400 and response.json()["code"] == "origin"
    assert "evil" not in response.json()["message"]  # fixed messages, nothing echoed from the request
    assert pending.session["_authguard"]["s"] == "pending"


@pytest.mark.battery(27)
def test_battery_27_production_origins_must_be_https(
    pending: Client, authenticator: SoftAuthenticator, settings: Any
) -> None:
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["https://broker.example.jp"]
    response = step_up(pending, authenticator.get(options(pending), origin="http://broker.example.jp"))
    assert response.json()["code"] == "origin"


@pytest.mark.battery(27)
@pytest.mark.parametrize("extra", [{"crossOrigin": True}, {"topOrigin": "https://evil.example"}])
def test_battery_27_cross_origin_assertions_are_rejected(
    pending: Client, authenticator: SoftAuthenticator, extra: dict[str, Any]
) -> None:
    response = step_up(pending, authenticator.get(options(pending), client_data_extra=extra))
    assert response.status_code == 400 and response.json()["code"] == "cross_origin"


@pytest.mark.battery(27)
def test_battery_27_cross_origin_registration_is_rejected(
    low_risk: Client, authenticator: SoftAuthenticator
) -> None:
    response = register_passkey(low_risk, authenticator, cross_origin=True)
    assert response.status_code == 400 and response.json()["code"] == "cross_origin"
    assert not PasskeyDevice.objects.exists()


@pytest.mark.battery(19)
def test_battery_19_an_aitm_relay_with_the_wrong_origin_or_rp_id_is_rejected(
    pending: Client, authenticator: SoftAuthenticator
) -> None:
    # A phishing proxy on its own domain: the browser writes the proxy's origin, the authenticator signs
    # for the proxy's RP ID.
    relayed = authenticator.get(options(pending), origin="https://evil.example", rp_id="evil.example")
    assert step_up(pending, relayed).json()["code"] == "origin"
    wrong_rp = authenticator.get(options(pending), rp_id="evil.example")
    assert step_up(pending, wrong_rp).json()["code"] == "rp_id"
    assert pending.session["_authguard"]["s"] == "pending"


# -- battery 28: ownership, userHandle, allowCredentials -------------------------------------------------


@pytest.mark.battery(28)
def test_battery_28_another_users_credential_is_rejected(
    pending: Client, alice: Any, user_factory: Any
) -> None:
    bob = user_factory("bob")
    bobs_key = SoftAuthenticator()
    bind_passkey(bob, bobs_key)
    request_options = options(pending)
    # Bob's authenticator answers alice's challenge with Bob's credential.
    bobs_assertion = bobs_key.get({**request_options, "allowCredentials": []})
    response = step_up(pending, bobs_assertion)
    assert response.status_code == 400 and response.json()["code"] == "wrong_user"
    assert pending.session["_authguard"]["s"] == "pending"
    assert FactorRecord.objects.filter(user=bob, failures__gt=0).count() == 0  # never counted against Bob


@pytest.mark.battery(28)
def test_battery_28_a_user_handle_of_another_account_is_rejected(
    pending: Client, authenticator: SoftAuthenticator
) -> None:
    response = step_up(pending, authenticator.get(options(pending), user_handle=b"someone else"))
    assert response.status_code == 400 and response.json()["code"] == "user_handle"


@pytest.mark.battery(28)
def test_battery_28_a_credential_not_offered_in_allow_credentials_is_rejected(
    pending: Client, alice: Any
) -> None:
    request_options = options(pending)
    later_key = SoftAuthenticator()
    bind_passkey(alice, later_key)  # bound after the options were issued
    response = step_up(pending, later_key.get({**request_options, "allowCredentials": []}))
    assert response.status_code == 400 and response.json()["code"] == "not_allowed"


@pytest.mark.battery(28)
def test_battery_28_passwordless_login_needs_the_owners_user_handle(
    alice: Any, authenticator: SoftAuthenticator, client: Client
) -> None:
    bind_passkey(alice, authenticator)
    login_options = api_post(client, "api-login-passkey-options").json()
    assert login_options["allowCredentials"] == []
    response = api_post(client, "api-login-passkey", authenticator.get(login_options, user_handle=None))
    assert response.status_code == 400 and response.json()["code"] == "user_handle"
    login_options = api_post(client, "api-login-passkey-options").json()
    response = api_post(client, "api-login-passkey", authenticator.get(login_options, user_handle=b"x" * 32))
    assert response.status_code == 400 and response.json()["code"] == "user_handle"
    assert "_auth_user_id" not in client.session


# -- battery 29: sign count ---------------------------------------------------------------------------------


@pytest.mark.battery(29)
@pytest.mark.parametrize("reported", [10, 9, 0])
def test_battery_29_a_sign_count_that_does_not_increase_is_rejected_and_not_stored(
    pending: Client, alice: Any, reported: int
) -> None:
    PasskeyDevice.objects.all().delete()
    key = SoftAuthenticator(sign_count=10, backup_eligible=False, backup_state=False)
    device = bind_passkey(alice, key)
    response = step_up(pending, key.get(options(pending), sign_count=reported))
    assert response.status_code == 400 and response.json()["code"] == "sign_count"
    device.refresh_from_db()
    assert device.sign_count == 10 and device.last_used_at is None


@pytest.mark.battery(29)
def test_battery_29_synced_passkeys_keep_a_zero_counter(
    pending: Client, authenticator: SoftAuthenticator
) -> None:
    assert step_up(pending, authenticator.get(options(pending))).status_code == 200
    # Re-verify twice more with the counter still at 0: accepted every time.
    assert passkey_step_up(pending, authenticator).status_code == 200
    assert passkey_step_up(pending, authenticator).status_code == 200
    assert PasskeyDevice.objects.get().sign_count == 0


# -- battery 30: flags ---------------------------------------------------------------------------------


@pytest.mark.battery(30)
@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"user_verified": False}, "user_verification"),
        ({"user_present": False}, "user_presence"),
        ({"backup_eligible": False, "backup_state": True}, "backup_flags"),  # BS without BE
        ({"backup_eligible": False, "backup_state": False}, "backup_flags"),  # BE changed
    ],
)
def test_battery_30_bad_flags_in_an_assertion_answer_400(
    pending: Client, authenticator: SoftAuthenticator, overrides: dict[str, bool], code: str
) -> None:
    response = step_up(pending, authenticator.get(options(pending), **overrides))
    assert response.status_code == 400 and response.json()["code"] == code
    assert pending.session["_authguard"]["s"] == "pending"


@pytest.mark.battery(30)
@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"user_verified": False}, "user_verification"),
        ({"user_present": False}, "user_presence"),
        ({"backup_eligible": False, "backup_state": True}, "backup_flags"),
    ],
)
def test_battery_30_bad_flags_in_a_registration_answer_400(
    low_risk: Client, authenticator: SoftAuthenticator, overrides: dict[str, bool], code: str
) -> None:
    response = register_passkey(low_risk, authenticator, **overrides)
    assert response.status_code == 400 and response.json()["code"] == code
    assert not PasskeyDevice.objects.exists()


# -- battery 31: credential ids ---------------------------------------------------------------------------


@pytest.mark.battery(31)
def test_battery_31_a_credential_id_registered_to_another_user_is_rejected(
    low_risk: Client, authenticator: SoftAuthenticator, user_factory: Any
) -> None:
    bob = user_factory("bob")
    bobs_key = SoftAuthenticator()
    bobs = bind_passkey(bob, bobs_key)
    response = register_passkey(
        low_risk, authenticator, credential_id=passkey_ceremony.b64url_decode(bobs.credential_id)
    )
    assert response.status_code == 400 and response.json()["code"] == "already_registered"
    assert list(PasskeyDevice.objects.values_list("user__username", flat=True)) == ["bob"]


@pytest.mark.battery(31)
def test_battery_31_a_credential_id_over_1023_bytes_is_rejected(
    low_risk: Client, authenticator: SoftAuthenticator
) -> None:
    response = register_passkey(low_risk, authenticator, credential_id_length=1024)
    assert response.status_code == 400 and response.json()["code"] == "too_large"
    assert not PasskeyDevice.objects.exists()
    # 1023 bytes is the spec's maximum and still fine.
    response = register_passkey(low_risk, authenticator, credential_id_length=1023)
    assert response.status_code == 201


@pytest.mark.battery(31)
def test_battery_31_the_database_refuses_a_duplicate_credential_id(alice: Any, user_factory: Any) -> None:
    bob = user_factory("bob")
    PasskeyDevice.objects.create(user=alice, name="a", credential_id="AAAA", public_key=b"k", user_handle="h")
    with pytest.raises(IntegrityError), transaction.atomic():
        PasskeyDevice.objects.create(
            user=bob, name="b", credential_id="AAAA", public_key=b"k", user_handle="h"
        )


@pytest.mark.battery(31)
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_battery_31_postgres_unique_constraint_holds_under_parallel_registrations(
    alice: Any, user_factory: Any, on_postgres: bool
) -> None:
    import threading

    from django.db import connection

    assert on_postgres
    bob = user_factory("bob")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(user: Any) -> None:
        try:
            barrier.wait()
            PasskeyDevice.objects.create(
                user=user, name="x", credential_id="SAME", public_key=b"k", user_handle="h"
            )
            outcomes.append("created")
        except IntegrityError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(user,)) for user in (alice, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "refused"]
    assert PasskeyDevice.objects.filter(credential_id="SAME").count() == 1


# -- passwordless login and failure counting ----------------------------------------------------------------


def test_passwordless_usernameless_login_signs_in_verified(
    alice: Any, authenticator: SoftAuthenticator, browser_at: Any
) -> None:
    device = bind_passkey(alice, authenticator)
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.get("/login/")
    login_options = api_post(client, "api-login-passkey-options").json()
    assert login_options["status"] == "ok" and login_options["userVerification"] == "required"
    response = api_post(client, "api-login-passkey", authenticator.get(login_options))
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    state = client.session["_authguard"]
    assert client.session["_auth_user_id"] == str(alice.pk)
    assert state["s"] == "verified" and state["sm"] == "passkey" and state["st"] is not None
    device.refresh_from_db()
    assert device.last_used_at is not None
    assert client.get("/api/portfolio").status_code == 200


def test_anonymous_failures_never_count_against_a_passkey(
    alice: Any, authenticator: SoftAuthenticator, client: Client, settings: Any
) -> None:
    settings.AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT = 2
    device = bind_passkey(alice, authenticator)
    for _ in range(3):
        login_options = api_post(client, "api-login-passkey-options").json()
        bad = authenticator.get(login_options, signature=b"\x30\x06\x02\x01\x01\x02\x01\x01")
        assert api_post(client, "api-login-passkey", bad).json()["code"] == "signature"
    device.refresh_from_db()
    assert device.confirmed
    assert not FactorRecord.objects.filter(failures__gt=0).exists()


def test_failed_step_up_assertions_of_a_pending_session_count_but_never_disable_the_passkey(
    pending: Client, alice: Any, authenticator: SoftAuthenticator, settings: Any
) -> None:
    """Issue 10 item 3: a password-only session's bad assertions are no guesses; they are throttled (the
    session's back-off) and never disable the customer's passkey (case 55)."""
    settings.AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT = 3
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    codes = []
    for _ in range(7):
        response = step_up(
            pending, authenticator.get(options(pending), signature=b"\x30\x06\x02\x01\x01\x02\x01\x01")
        )
        codes.append(response.json().get("code"))
    assert codes[:5] == ["signature"] * 5 and codes[-1] == "throttled"
    alice.passkey.refresh_from_db()
    assert alice.passkey.confirmed
    record = FactorRecord.objects.get(device_id=alice.passkey.persistent_id)
    assert record.failures == 6 and record.limit_failures == 0 and record.disabled_at is None
    from authguard.models import Notification

    assert not Notification.objects.filter(user=alice, kind="factor_removed").exists()


def test_bad_signatures_never_disable_a_passkey_even_in_the_customers_own_session(
    low_risk: Client, alice: Any, authenticator: SoftAuthenticator, settings: Any
) -> None:
    """A signature cannot be guessed (the authenticator limits its own PIN or biometric): bad assertions are
    counted for staff but never disable the passkey, whoever's session sends them. Otherwise one relayed
    code would buy a session that disables the customer's passkey (issue 10 item 3)."""
    alice.passkey = bind_passkey(alice, authenticator)
    assert step_up(low_risk, authenticator.get(options(low_risk))).status_code == 200
    settings.AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT = 3
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    for _ in range(5):
        response = step_up(
            low_risk, authenticator.get(options(low_risk), signature=b"\x30\x06\x02\x01\x01\x02\x01\x01")
        )
        assert response.json()["code"] == "signature"
    alice.passkey.refresh_from_db()
    assert alice.passkey.confirmed
    record = FactorRecord.objects.get(device_id=alice.passkey.persistent_id)
    assert record.failures == 5 and record.limit_failures == 0 and record.disabled_at is None
    assert step_up(low_risk, authenticator.get(options(low_risk))).status_code == 200


def test_a_deterministic_caller_challenge_can_be_issued_again_after_a_failure(
    pending: Client, alice: Any, authenticator: SoftAuthenticator
) -> None:
    # A held order's challenge is sha256(nonce || digest): the same bytes every time it is asked for.
    request = request_for(pending, alice)
    challenge = b"held-order-challenge-0123456789ab"
    first = passkeys.authentication_options(request, purpose="confirm:9", user=alice, challenge=challenge)
    with pytest.raises(InvalidCredential):
        passkeys.verify_authentication(
            request, purpose="confirm:9", credential=authenticator.get(first, user_verified=False), user=alice
        )
    again = passkeys.authentication_options(request, purpose="confirm:9", user=alice, challenge=challenge)
    assert passkeys.verify_authentication(
        request, purpose="confirm:9", credential=authenticator.get(again), user=alice
    )


# -- passkeys.js in a real Chromium (CDP virtual authenticator) --------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_passkeys_js_registers_steps_up_and_signs_in_without_a_password(
    chrome: Any, django_user_model: Any, settings: Any
) -> None:
    from .conftest import IP_OSAKA

    alice = django_user_model.objects.create_user(
        "alice", password="correct horse battery", email="a@example.jp"
    )
    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator(user_verified=True)
    # 1. Register through the security page (data-authguard-passkey="register").
    browser.sign_in("alice")
    browser.wait_for_path("/")
    browser.get("/authguard/security/passkeys/add/")
    browser.fill("[data-authguard-name]", "Work laptop")
    browser.click("[data-authguard-start]")
    browser.wait_for_path("/authguard/security/")
    device = PasskeyDevice.objects.get(user=alice)
    assert device.name == "Work laptop" and device.user_verified
    assert browser.authguard_state()["st"] is None  # registering did not verify the session
    browser.sign_out()
    # 2. A risky login steps up with it (data-authguard-passkey="authenticate").
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 1, "deny": 100}
    browser.come_from(IP_OSAKA)
    browser.sign_in("alice")
    browser.wait_for_path_prefix("/authguard/step-up/")
    assert browser.authguard_state()["s"] == "pending"
    browser.get("/authguard/step-up/passkey/?next=/")
    browser.click("[data-authguard-start]")
    browser.wait_for_path("/")
    assert browser.authguard_state()["s"] == "verified" and browser.authguard_state()["sm"] == "passkey"
    browser.sign_out()
    # 3. Passwordless and usernameless, offered by the browser's autofill (conditional mediation).
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 90, "deny": 100}
    # The login page itself offers the passkey through autofill (passkeys.js, data-authguard-passkey="login").
    browser.get("/login/?next=/orders/")
    browser.wait_for_path("/orders/")
    assert browser.signed_in_user_id() == str(alice.pk)
    assert browser.authguard_state()["sm"] == "passkey"
    assert browser.console_errors() == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_passkeys_js_shows_a_clean_error_when_user_verification_fails(
    chrome: Any, django_user_model: Any, settings: Any
) -> None:
    from .conftest import IP_OSAKA

    django_user_model.objects.create_user("alice", password="correct horse battery", email="a@example.jp")
    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator(user_verified=True)
    browser.sign_in("alice")
    browser.get("/authguard/security/passkeys/add/")
    browser.click("[data-authguard-start]")
    browser.wait_for_path("/authguard/security/")
    browser.sign_out()
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 1, "deny": 100}
    browser.come_from(IP_OSAKA)
    browser.sign_in("alice")
    browser.set_user_verified(False)
    browser.get("/authguard/step-up/passkey/?next=/")
    browser.click("[data-authguard-start]")
    message = browser.visible_text("[data-authguard-error]")
    assert "cancelled" in message or "verify" in message
    assert browser.path.startswith("/authguard/step-up/passkey/")
    assert browser.authguard_state()["s"] == "pending"


def test_a_passkey_disabled_by_the_failure_limit_is_bound_again_only_with_another_passkey(
    alice: Any, low_risk: Client, authenticator: SoftAuthenticator, totp_factory: Any, settings: Any
) -> None:
    """Case 55: re-binding a disabled factor needs a strong path; a TOTP code (relayable) is not one."""

    from .conftest import totp_token

    old = bind_passkey(alice, authenticator)
    other_key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    bind_passkey(alice, other_key, name="phone")
    totp = totp_factory(alice)
    settings.AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT = 1
    base.record_factor_failure(old, kind="passkey", request=None)
    assert not inventory.is_disabled(old)  # no session that could be the customer's: it does not count
    FactorRecord.objects.filter(device_id=old.persistent_id).update(
        limit_failures=1, disabled_at=timezone.now()
    )
    PasskeyDevice.objects.filter(pk=old.pk).update(confirmed=False)
    assert inventory.is_disabled(old)
    credential_id = passkey_ceremony.b64url_decode(old.credential_id)
    assert api_post(low_risk, "api-step-up-totp", {"code": totp_token(totp)}).status_code == 200
    options_ = api_post(low_risk, "api-passkeys-options").json()
    refused = api_post(
        low_risk, "api-passkeys", SoftAuthenticator().create(options_, credential_id=credential_id)
    )
    assert refused.status_code == 403 and refused.json()["code"] == "rebind_required"
    assert inventory.is_disabled(PasskeyDevice.objects.get(credential_id=old.credential_id))
    # With her other passkey, she binds it again.
    assert step_up(low_risk, other_key.get(options(low_risk))).status_code == 200
    options_ = api_post(low_risk, "api-passkeys-options").json()
    assert [c["id"] for c in options_["excludeCredentials"]] == [
        PasskeyDevice.objects.get(name="phone").credential_id
    ]  # the disabled one may be bound again
    response = api_post(
        low_risk, "api-passkeys", SoftAuthenticator().create(options_, credential_id=credential_id)
    )
    assert response.status_code == 201, response.content
    new = PasskeyDevice.objects.get(credential_id=old.credential_id)
    assert new.pk != old.pk and new.confirmed and not inventory.is_disabled(new)
    assert response.json()["passkey"]["cooling_off"] is True  # a re-bound factor cools off like a new one


def test_without_the_cache_no_challenge_can_be_spent(
    pending: Client, alice: Any, authenticator: SoftAuthenticator, settings: Any
) -> None:
    request = request_for(pending, alice)
    assertion = authenticator.get(passkeys.authentication_options(request, purpose="step_up", user=alice))
    # A cache that cannot be reached (nothing listens on port 9 of loopback).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    with pytest.raises(InvalidCredential) as error:
        passkeys.verify_authentication(request, purpose="step_up", credential=assertion, user=alice)
    assert error.value.code == "unavailable"
