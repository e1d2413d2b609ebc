"""Issue 16, acceptance 2 (the way back), in a real Chromium, in English and in Japanese: a customer whose
sign-in is refused finds the way back on the refused page.

The story: the customer browses through a VPN app whose exit is a VPS in Singapore (``X-Forwarded-For`` from
the trusted loopback proxy, see ``tests/browser.py``), on a browser the portal has not seen. The password
sign-in is refused. The page offers the customer's passkey, the support desk and the sign-in page, and tells
a customer without a passkey what to do; nothing on it reads like an outage. With the VPN still on, even the
passkey is refused (authguard refuses a ``deny`` score whatever the factor) and the page says what to do
instead; with the VPN off (the home line in Tokyo) the same button signs the customer in and the portfolio
opens. The customer without a passkey follows the page's advice (the sign-in page, from home) and gets in.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from authguard.models import LoginEvent, Outcome

from .browser import PASSWORD, Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_SG_VPS, IP_TOKYO
from .test_browser_japanese import choose_japanese

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: What the refused page and the passkey's refusal must never say: it reads like an outage (issue 16).
OUTAGE_WORDING = ("not possible right now", "Signing in is not possible")


def translated(text: str, language: str) -> str:
    """``text`` as the page shows it in ``language`` (the catalogue's translation, or the English until the
    Japanese catalogue has the string)."""
    with translation.override(language):
        return str(translation.gettext(text))


def in_language(browser: Browser, language: str) -> None:
    """Choose the page language with the header's switcher, before signing in, as a customer would."""
    if language == "ja":
        browser.get("/login/")
        choose_japanese(browser)


def assert_no_outage_wording(browser: Browser, language: str) -> None:
    page = browser.text()
    for wording in OUTAGE_WORDING:
        assert translated(wording, language) not in page
        assert wording not in page


def assert_the_way_back_is_offered(browser: Browser, language: str) -> None:
    """The refused page: the passkey button, the advice without a passkey, the desk, the sign-in link."""
    assert browser.path == "/authguard/denied/"
    assert browser.find("html").get_attribute("lang") == language
    assert browser.visible_text("#denied-heading") == translated(
        "We could not sign you in from here", language
    )
    button = browser.visible("#denied-passkey-button")
    assert button.text.strip() == translated("Sign in with a passkey", language) and button.is_enabled()
    advice = browser.visible_text("#denied-no-passkey")
    assert advice == translated(
        "Sign in with your password from a device and connection you have used with us before, for example "
        "your own computer at home with any VPN switched off. Then add a passkey in your security settings: "
        "next time it lets you in from anywhere you can use it.",
        language,
    )
    support = browser.visible_text("#denied-support")
    assert "0120-000-000" in support and "support@example.com" in support
    assert browser.find('#denied-support a[href="tel:0120000000"]').is_displayed()
    back = browser.visible("#denied-back")
    assert back.get_attribute("href") == browser.url("/login/")
    assert back.text.strip() == translated("Back to the sign-in page", language)
    assert_no_outage_wording(browser, language)
    assert not browser.find("[data-authguard-error]").is_displayed()  # nothing in red before any action


def refused(browser: Browser, username: str) -> LoginEvent:
    browser.sign_in(username)
    browser.wait_for_path("/authguard/denied/")
    assert browser.signed_in_user_id() is None
    event = LoginEvent.objects.order_by("-id").first()
    assert event.user.username == username and event.outcome == Outcome.REFUSED and event.country == "SG"
    return event


def synced_passkey(chrome: Any) -> Browser:
    """alice adds a passkey at home on her laptop; a new browser (her tablet) holds the same, synced,
    passkey (the credential copied into its authenticator, as a passkey provider syncs it)."""
    laptop = chrome(ip=IP_TOKYO)
    laptop.add_authenticator()
    laptop.sign_in("alice")
    laptop.wait_for_path("/")
    laptop.enroll_passkey("Laptop")
    [credential] = laptop.credentials()
    laptop.sign_out()

    tablet = chrome(ip=IP_SG_VPS)  # the VPN app is on
    tablet.add_authenticator()
    tablet.driver.add_credential(credential)
    return tablet


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_refused_customer_signs_in_with_the_passkey_from_the_refused_page(
    chrome: Any, alice: Any, language: str
) -> None:
    browser = synced_passkey(chrome)
    with browser.authenticator_idle():
        in_language(browser, language)
        refused(browser, "alice")
    assert_the_way_back_is_offered(browser, language)

    # With the VPN still on, the passkey is refused too: the page says what to do, not "an outage".
    browser.click("#denied-passkey-button")
    expected = translated(
        "We could not sign you in from this network, even with your passkey. Switch off any VPN or proxy and "
        "try again from your usual connection, or call us.",
        language,
    )
    assert browser.wait_for_text("#denied-passkey [data-authguard-error]", expected) == expected
    assert browser.signed_in_user_id() is None and browser.path == "/authguard/denied/"
    assert_no_outage_wording(browser, language)
    assert browser.visible("#denied-passkey-button").is_enabled()

    # The VPN off (her home line in Tokyo), the same button: signed in with the passkey, on the portfolio.
    browser.come_from(IP_TOKYO)
    browser.click("#denied-passkey-button")
    browser.wait_for_path("/")
    assert browser.visible_text("main h1") == translated("Portfolio", language)
    assert browser.signed_in_user_id() == str(alice.pk)
    state = browser.authguard_state()
    assert state["s"] == "verified" and state["sm"] == "passkey"
    latest = LoginEvent.objects.order_by("-id").first()
    assert latest.user == alice and latest.outcome == Outcome.PASSKEY_LOGIN and latest.country == "JP"
    # The only console errors: the 403 status of the refused page and of the passkey refused with the VPN on.
    errors = browser.console_errors()
    expected_403 = ("/authguard/denied/ ", "/authguard/api/login/passkey ")
    assert all("403" in e and any(url in e for url in expected_403) for e in errors), errors


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_refused_customer_without_a_passkey_follows_the_pages_advice(
    chrome: Any, bob: Any, language: str
) -> None:
    browser = chrome(ip=IP_TOKYO)
    browser.sign_in("bob")  # bob's usual computer and line, long before
    browser.wait_for_path("/")
    browser.sign_out()

    browser.come_from(IP_SG_VPS)  # the VPN app on: refused (nothing to step up with)
    in_language(browser, language)
    refused(browser, "bob")
    assert_the_way_back_is_offered(browser, language)

    # The advice: the sign-in page, from a device and connection used before (the VPN off). It works.
    browser.come_from(IP_TOKYO)
    browser.click("#denied-back")
    browser.wait_for_path("/login/")
    browser.sign_in("bob")
    browser.wait_for_path("/")
    assert browser.visible_text("main h1") == translated("Portfolio", language)
    assert browser.signed_in_user_id() == str(bob.pk)
    assert LoginEvent.objects.order_by("-id").first().outcome == Outcome.SIGNED_IN
    # ... and the security settings, where the advice says to add a passkey, are one click away.
    browser.get("/authguard/security/")
    assert browser.visible("a[href='/authguard/security/passkeys/add/']").is_displayed()


def test_the_login_pages_autofill_request_fails_silently(chrome: Any, bob: Any) -> None:
    """Issue 16: an authenticator with no passkey for the site answers the autofill (conditional) request at
    once with an error; the login page must not show "cancelled or timed out" before the person did anything.
    The explicit button still reports what happens when the person asks for a passkey."""
    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()  # a platform authenticator with no passkey for this site
    browser.get("/login/")
    error = '[data-authguard-passkey="login"] [data-authguard-error]'
    # Let the autofill request run its course (it fails at once); then nothing is shown.
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete", "the page to load")
    browser.driver.execute_async_script("setTimeout(arguments[arguments.length - 1], 1500);")
    assert not browser.find(error).is_displayed()
    assert browser.find(error).text == ""

    browser.click('[data-authguard-passkey="login"] [data-authguard-start]')
    message = browser.visible_text(error)
    assert message == "The passkey request was cancelled or timed out. Please try again."
    assert browser.signed_in_user_id() is None


def test_a_failed_fingerprint_at_the_autofill_is_silent_and_the_button_reports_it(
    chrome: Any, alice: Any
) -> None:
    """The same with the person's own passkey whose fingerprint fails: the autofill says nothing (the
    authenticator showed its own failure), the explicit button reports it, a tampered page's assertion without
    user verification is refused by the server and reported; nobody is signed in."""
    from .test_browser_passkeys import DOWNGRADE_USER_VERIFICATION

    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("alice")
    browser.wait_for_path("/")
    browser.enroll_passkey("Laptop")
    browser.sign_out()
    browser.set_user_verified(False)  # from now on the fingerprint does not match

    error = '[data-authguard-passkey="login"] [data-authguard-error]'
    button = '[data-authguard-passkey="login"] [data-authguard-start]'
    browser.get("/login/")
    browser.driver.execute_async_script("setTimeout(arguments[arguments.length - 1], 1500);")
    assert not browser.find(error).is_displayed()
    browser.click(button)
    assert browser.visible_text(error) == "The passkey request was cancelled or timed out. Please try again."
    assert browser.path.startswith("/login/") and browser.signed_in_user_id() is None

    browser.get("/login/")
    browser.driver.execute_script(DOWNGRADE_USER_VERIFICATION)
    browser.click(button)  # aborts the page's own autofill request, asks with the tampered options
    browser.wait_for_text(error, "did not verify you")
    assert browser.signed_in_user_id() is None
    assert not LoginEvent.objects.filter(outcome=Outcome.PASSKEY_LOGIN).exists()
