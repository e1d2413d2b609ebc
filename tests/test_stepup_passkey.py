"""Passkeys in the session flow: step-up of a pending session and the passwordless login, with real WebAuthn
payloads (``authguard.testing.SoftAuthenticator``, real P-256 signatures verified by py_webauthn)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from authguard.factors import methods as factor_methods
from authguard.models import KnownDevice, LoginEvent, Outcome
from authguard.sessions import state as sessions_state

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, api_post, passkey_step_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def alice(alice_with_totp_and_passkey: Any) -> Any:
    """alice with an authenticator app and a passkey bound earlier (``alice_with_totp_and_passkey``
    of tests/conftest.py)."""
    return alice_with_totp_and_passkey


@pytest.fixture
def pending(alice: Any, browser_at: Any) -> Client:
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    assert client.sign_in("alice").url.startswith("/authguard/step-up/")
    return client


def test_the_chooser_offers_the_passkey_first(pending: Client, alice: Any) -> None:
    assert factor_methods.step_up_methods(alice) == ["passkey", "totp"]
    page = pending.get("/authguard/step-up/").content.decode()
    assert page.index("step-up/passkey/") < page.index("step-up/totp/")
    passkey_page = pending.get("/authguard/step-up/passkey/?next=/orders/")
    assert passkey_page.status_code == 200
    html = passkey_page.content.decode()
    assert 'data-options-url="/authguard/api/step-up/passkey/options"' in html
    assert 'data-done-url="/orders/"' in html and "authguard/passkeys.js" in html


def test_a_passkey_step_up_verifies_and_remembers_the_device(
    pending: Client, alice: Any, authenticator: Any
) -> None:
    before = pending.cookies[settings.SESSION_COOKIE_NAME].value
    response = passkey_step_up(pending, authenticator)
    assert response.status_code == 200 and response.json()["status"] == "ok"
    state = pending.session[sessions_state.STATE_KEY]
    assert state["s"] == "verified" and state["sm"] == "passkey" and state["u"] is True
    assert pending.cookies[settings.SESSION_COOKIE_NAME].value != before  # rotated
    assert KnownDevice.objects.get(user=alice).trusted_until > timezone.now()
    assert pending.get("/").status_code == 200


def test_a_passwordless_passkey_login_signs_in_verified(alice: Any, authenticator: Any) -> None:
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    client.get("/login/")
    options = api_post(client, "api-login-passkey-options")
    assert options.status_code == 200
    response = api_post(client, "api-login-passkey", authenticator.get(options.json()))
    assert response.status_code == 200 and response.json()["status"] == "ok", response.content
    assert client.session["_auth_user_id"] == str(alice.pk)
    state = client.session[sessions_state.STATE_KEY]
    assert state["s"] == "verified" and state["sm"] == "passkey" and state["st"]
    event = LoginEvent.objects.get()
    assert event.outcome == Outcome.PASSKEY_LOGIN and event.password_ok is False
    assert event.user == alice and state["e"] == event.pk
    assert client.get("/").status_code == 200
    # A fresh strong verification: the security page lets the user change factors right away.
    assert client.get("/authguard/security/passkeys/add/").status_code == 200


def test_a_locked_account_cannot_sign_in_with_a_passkey(alice: Any, authenticator: Any) -> None:
    lockout = pytest.importorskip("authguard.login.lockout")
    for _ in range(20):
        if lockout.is_locked(alice):
            break
        lockout.record_failure(alice, kind="password")
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    options = api_post(client, "api-login-passkey-options")
    response = api_post(client, "api-login-passkey", authenticator.get(options.json()))
    assert response.status_code == 403 and response.json()["status"] == "denied"
    assert "_auth_user_id" not in client.session


def test_the_passkey_page_never_sends_the_browser_off_site(pending: Client) -> None:
    page = pending.get("/authguard/step-up/passkey/?next=//evil.example/")
    assert page.status_code == 200
    done = re.search(r'data-done-url="([^"]*)"', page.content.decode()).group(1)
    assert done == "/"


def test_the_login_page_offers_passkeys_through_autofill(client: Client) -> None:
    html = client.get("/login/?next=/orders/").content.decode()
    assert 'autocomplete="username webauthn"' in html and 'data-authguard-passkey="login"' in html
    assert 'data-options-url="/authguard/api/login/passkey/options"' in html
    assert 'data-done-url="/orders/"' in html and "authguard/passkeys.js" in html
    unsafe = client.get("/login/?next=//evil.example/").content.decode()
    assert re.search(r'data-done-url="([^"]*)"', unsafe).group(1) == "/"


def test_the_add_passkey_page_wires_the_registration_api(
    alice: Any, authenticator: Any, browser_at: Any
) -> None:
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice").url == "/"
    passkey_step_up(client, authenticator)  # a fresh verification in the verified session
    html = client.get("/authguard/security/passkeys/add/").content.decode()
    assert 'data-authguard-passkey="register"' in html
    assert 'data-options-url="/authguard/api/passkeys/options"' in html
    assert 'data-verify-url="/authguard/api/passkeys"' in html and 'data-csrf-token="' in html


def test_a_passkey_is_listed_and_removed_on_the_security_page(
    alice: Any, authenticator: Any, browser_at: Any
) -> None:
    from authguard.models import PasskeyDevice

    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice").url == "/"
    page = client.get("/authguard/security/").content.decode()
    path = f"/authguard/security/factors/passkey/{alice.passkey.pk}/remove/"
    assert "Passkey" in page and "laptop" in page and path in page
    assert client.post(path).url.startswith("/authguard/reverify/")  # not without a fresh check
    assert PasskeyDevice.objects.filter(pk=alice.passkey.pk).exists()
    passkey_step_up(client, authenticator)
    assert client.post(path).url == "/authguard/security/"
    assert not PasskeyDevice.objects.filter(pk=alice.passkey.pk).exists()
