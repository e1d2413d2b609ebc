"""Issue 4, acceptance 1 (TOTP part), in a real Chromium: enroll an authenticator app on the security page
(secret and QR code drawn locally), then sign in from a risky place and pass the step-up with a real code.

The first factor is enrolled from a session the risk engine allowed outright (Tokyo, the account's first
login); the risky sign-in comes from a hosting network in Singapore (anonymous hosting, new country).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import LoginEvent, Notification, Outcome

from .browser import Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_SG_VPS, IP_TOKYO, totp_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code_for_secret(secret: str, *, steps: int = 0) -> str:
    """What an authenticator app shows for a base32 ``secret`` read off the page (as a phone would)."""
    import base64
    import time

    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key, step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps
    return f"{totp.token():06d}"


def enroll_totp(browser: Browser, *, usual: bool = True) -> TOTPDevice:
    """From the security page: add an authenticator app with the secret shown, confirm with its first code.
    ``usual``: from the customer's usual browser (``Browser.settle``)."""
    if usual:
        browser.settle()
    browser.get("/authguard/security/")
    browser.link("/authguard/security/totp/")
    browser.wait_for_path("/authguard/security/totp/")
    # The QR code is an inline SVG drawn by the server (the secret never goes to a third party).
    qr = browser.visible(".authguard-qr svg")
    assert qr.size["width"] > 50 and qr.size["height"] > 50
    assert not [
        s for s in browser.find_all("img[src], script[src]") if "//" in (s.get_attribute("src") or "")
    ]
    secret = browser.visible_text(".authguard-secret")
    browser.fill("#id_code", code_for_secret(secret))
    browser.find("#id_code").submit()
    browser.wait_for_path("/authguard/security/")
    assert "Your authenticator app is set up." in browser.text()
    return TOTPDevice.objects.get(user_id=browser.signed_in_user_id(), confirmed=True)


def test_totp_enrollment_and_step_up_in_the_browser(chrome: Any, alice: Any) -> None:
    browser = chrome(ip=IP_TOKYO)
    browser.sign_in("alice")
    browser.wait_for_path("/")
    state = browser.authguard_state()
    assert state["s"] == "verified" and state["lr"] is True  # allowed outright: may add a first factor

    device = enroll_totp(browser)
    assert device.confirmed and device.name
    assert Notification.objects.filter(user=alice, kind="factor_added").exists()
    # Enrolling is not a verification of the session.
    assert browser.authguard_state()["st"] is None
    assert browser.console_errors() == []

    browser.sign_out()
    browser.come_from(IP_SG_VPS)
    browser.sign_in("alice")
    browser.wait_for_path_prefix("/authguard/step-up/")
    assert browser.authguard_state()["s"] == "pending"
    event = LoginEvent.objects.order_by("-id").first()
    assert event.outcome == Outcome.STEP_UP_PENDING and event.country == "SG"
    # Held at step-up: the portfolio is out of reach.
    browser.get("/")
    browser.wait_for_path_prefix("/authguard/step-up/")

    browser.link("/authguard/step-up/totp/")
    browser.wait_for_path_prefix("/authguard/step-up/totp/")
    # A wrong code: a visible message, and the session stays pending.
    right_now = totp_token(device)
    browser.fill("#id_code", "000000" if right_now != "000000" else "111111")
    browser.find("#id_code").submit()
    message = browser.visible_text(".form-errors")
    assert "not correct" in message
    assert browser.authguard_state()["s"] == "pending"
    browser.console()  # the 400 answer's console line is expected; start afresh
    # django-otp throttles the factor after a failure (1 s, doubling): wait it out as a person would.
    browser.wait(
        lambda _d: TOTPDevice.objects.get(pk=device.pk).verify_is_allowed()[0], "the throttle to end"
    )

    # The next time step's code (the enrollment used this one; codes are single use).
    device.refresh_from_db()
    browser.fill("#id_code", totp_token(device, steps=1))
    browser.find("#id_code").submit()
    browser.wait_for_path("/")
    state = browser.authguard_state()
    assert state["s"] == "verified" and state["u"] is True and state["sm"] == "totp"
    assert state["st"] and abs(state["st"] - timezone.now().timestamp()) < 60
    assert browser.visible_text("main h1") == "Portfolio"  # the portfolio page itself, not a redirect
    event.refresh_from_db()
    assert event.outcome == Outcome.STEP_UP_PASSED
    assert browser.console_errors() == []


def test_a_second_factor_needs_a_fresh_check_with_the_first(chrome: Any, alice: Any) -> None:
    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("alice")
    browser.wait_for_path("/")
    device = enroll_totp(browser)

    # With a factor on the account, adding a passkey first asks for a fresh check with it.
    browser.link("/authguard/security/passkeys/add/")
    browser.wait_for_path_prefix("/authguard/reverify/")
    browser.link("/authguard/step-up/totp/")
    browser.wait_for_path_prefix("/authguard/step-up/totp/")
    device.refresh_from_db()
    browser.fill("#id_code", totp_token(device, steps=1))
    browser.find("#id_code").submit()
    browser.wait_for_path("/authguard/security/")
    state = browser.authguard_state()
    assert state["s"] == "verified" and state["sm"] == "totp" and state["st"]

    passkey = browser.enroll_passkey("Laptop")
    assert passkey.user == alice and passkey.user_verified
    assert Notification.objects.filter(user=alice, kind="factor_added").count() == 2
    assert browser.console_errors() == []
