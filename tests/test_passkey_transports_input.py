"""Red team round thirty-nine (a): a passkey registration whose ``response.transports`` holds a NUL byte or a
lone surrogate.

``passkey_ceremony.load_credential`` bounds ``transports`` to a list of at most ten items but never looks at
the items; ``passkeys.register`` keeps every ``str`` item (cut to 32 characters) and stores the list in
``PasskeyDevice.transports``, a ``JSONField``. On PostgreSQL a JSON string with ``\\u0000`` or an unpaired
``\\ud800`` is refused by ``jsonb`` (``DataError``), so the registration, already verified by py_webauthn,
answers 500 instead of 400 ``invalid``, and the customer's registration challenge is spent. On SQLite the
garbage is stored as is (a 201 that accepted garbage), and the staff admin's change page of that passkey then
answers 500 (``UnicodeEncodeError`` encoding the page with the lone surrogate in it).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from authguard.models import PasskeyDevice

from .conftest import HANAKO_PASSWORD, IP_TOKYO, UA_CHROME_WIN, api_post, totp_token
from .console_data import staff_client, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.mark.parametrize("transport", ["internal\x00", "usb\ud800"], ids=["nul", "lone-surrogate"])
def test_passkey_register_with_a_nul_or_surrogate_transport_answers_400_not_500(
    brokerage_customer: Any, authenticator: Any, transport: str
) -> None:
    """Secure: a registration answer whose transports list carries a NUL byte or a lone surrogate is either
    refused with 400 ``invalid`` (code ``malformed``) or stored without the unusable transport; never a 500.
    Had: a session verified with her TOTP code (hers, or one relayed by the thief), a real authenticator's
    answer with one edited field. (PostgreSQL: the registration is the 500; SQLite: the garbage is stored.)"""
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    browser = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN, raise_request_exception=False)
    browser.get("/login/")
    signed_in: Any = browser.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD})
    if signed_in.url.startswith("/authguard/step-up/"):
        browser.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)})
    fresh = api_post(browser, "api-step-up-totp", {"code": totp_token(hanako.totp, steps=1)})
    assert fresh.status_code == 200, fresh.content
    options = api_post(browser, "api-passkeys-options")
    assert options.status_code == 200, options.content
    answer = authenticator.create(options.json())
    answer["response"]["transports"] = [transport]
    response = api_post(browser, "api-passkeys", answer)
    assert response.status_code < 500, response.status_code
    if response.status_code == 201:
        stored = PasskeyDevice.objects.get(user=hanako).transports
        assert all("\x00" not in t and "\ud800" not in t for t in stored), stored
        desk = staff_client(staff_user("root", superuser=True), raise_request_exception=False)
        device = PasskeyDevice.objects.get(user=hanako)
        page = desk.get(f"/admin/authguard/passkeydevice/{device.pk}/change/")
        assert page.status_code < 500, page.status_code
