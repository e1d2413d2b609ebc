"""Helpers of portal two's tests: browsers and API clients at places of the tests' GeoIP networks, real
passkeys (py_webauthn-verified registrations, software authenticator), and staff console sessions.

``tests/conftest.py``'s ``bind_passkey`` (and so ``tests/staff_fixtures.py``) reads ``user.username``, which
an e-mail-login user model has not: the passkey helpers here use ``get_username()``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from authguard.models import LoginEvent, Notification, PasskeyDevice
from authguard.testing import SoftAuthenticator

from ..conftest import IP_TOKYO, UA_CHROME_WIN, api_post

PASSWORD = "correct horse battery"
#: The agent of the issue's attack script.
UA_REQUESTS = "python-requests/2.32.3"
ORIGIN = "http://localhost:8000"


def browser(ip: str = IP_TOKYO, ua: str = UA_CHROME_WIN, **kwargs: Any) -> Client:
    """A browser at ``ip``; ``sign_in(email)`` posts Django's LoginView form as a person would."""
    client = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua, **kwargs)

    def sign_in(email: str, password: str = PASSWORD, **extra: Any) -> Any:
        client.get("/login/")  # the login page issues the device cookie
        return client.post("/login/", {"username": email, "password": password, **extra})

    client.sign_in = sign_in  # type: ignore[attr-defined]
    return client


def json_login(client: Client, email: str, password: str = PASSWORD) -> Any:
    """The portal's single-page app signing in (``POST /api/v1/login``)."""
    return client.post(
        "/api/v1/login", json.dumps({"email": email, "password": password}), content_type="application/json"
    )


def post_json(client: Client, path: str, body: Any = None) -> Any:
    return client.post(path, json.dumps(body if body is not None else {}), content_type="application/json")


def api(ip: str = IP_TOKYO, ua: str = UA_CHROME_WIN) -> APIClient:
    return APIClient(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)


def with_token(client: APIClient, token: str) -> APIClient:
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def home_customer(user_factory: Any, name: str = "alice", **kwargs: Any) -> Any:
    """A customer who signed in twice from home (Tokyo, Chrome) three days ago: the history a phished login
    meets (far enough back that a trip abroad is no impossible travel)."""
    import time_machine

    user = user_factory(name, **kwargs)
    with time_machine.travel(timezone.now() - timedelta(days=3), tick=False):
        for _ in range(2):
            response = browser().sign_in(user.email)
            assert response.status_code == 302 and response.url == "/", response
    return user


def latest_event(user: Any) -> LoginEvent:
    return LoginEvent.objects.filter(user=user).latest("pk")


def kinds(user: Any) -> list[str]:
    return sorted(Notification.objects.filter(user=user).values_list("kind", flat=True))


def give_passkey(user: Any, *, age: timedelta = timedelta(days=30)) -> SoftAuthenticator:
    """Give ``user`` a passkey registered ``age`` ago: a real registration verified by py_webauthn, stored as
    authguard stores it; returns the software authenticator holding it."""
    from webauthn import generate_registration_options, verify_registration_response
    from webauthn.helpers import options_to_json_dict
    from webauthn.helpers.structs import CredentialDeviceType

    from authguard.factors.passkey_ceremony import b64url_decode, b64url_encode
    from authguard.factors.passkeys import user_handle_for

    authenticator = SoftAuthenticator(origin=ORIGIN, rp_id="localhost")
    handle = user_handle_for(user)
    options = options_to_json_dict(
        generate_registration_options(
            rp_id="localhost", rp_name="Portal Two", user_name=user.get_username(), user_id=handle
        )
    )
    credential = authenticator.create(options)
    verified = verify_registration_response(
        credential=credential,
        expected_challenge=b64url_decode(options["challenge"]),
        expected_rp_id="localhost",
        expected_origin=ORIGIN,
        require_user_verification=True,
    )
    device = PasskeyDevice.objects.create(
        user=user,
        name="laptop",
        credential_id=credential["id"],
        public_key=verified.credential_public_key,
        user_handle=b64url_encode(handle),
        sign_count=verified.sign_count,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
        user_verified=verified.user_verified,
        transports=credential["response"]["transports"],
    )
    PasskeyDevice.objects.filter(pk=device.pk).update(created_at=timezone.now() - age)
    return authenticator


def passkey_step_up(client: Client, authenticator: SoftAuthenticator) -> Any:
    """Step up (or re-verify) this session with a passkey through authguard's JSON API."""
    options = api_post(client, "api-step-up-passkey-options")
    assert options.status_code == 200, options.content
    return api_post(client, "api-step-up-passkey", authenticator.get(options.json()))


def staff_console(user: Any, **client_kwargs: Any) -> Client:
    """A staff session verified with the staff member's own (month-old) passkey, as the console demands."""
    authenticator = give_passkey(user)
    client = Client(**client_kwargs)
    client.force_login(user)
    answer = passkey_step_up(client, authenticator)
    assert answer.status_code == 200, answer.content
    return client
