"""The same pages in Japanese, in a real Chromium: a customer who picks 日本語 in the header gets the passkey,
order-confirmation and step-up pages in Japanese, the held order's summary included, and the messages that
``passkeys.js`` shows come translated from the page (the script itself carries only English fallbacks).

Expected texts are Django's own translations of the templates' strings, so the test checks that the pages
use the catalogue, not any particular wording.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from authguard.models import HeldOrder
from authguard.orders import guard as orders
from demo_site.brokerage.models import Order, OrderStatus

from .browser import PASSWORD, Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_SG_VPS, IP_TOKYO
from .test_browser_orders import place_on_trade_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def japanese(text: str) -> str:
    """The Japanese catalogue's translation of ``text``; fails if there is none."""
    with translation.override("ja"):
        translated = translation.gettext(text)
    assert translated != text, f"no Japanese translation of {text!r}"
    return translated


def choose_japanese(browser: Browser) -> None:
    """Pick 日本語 in the header's language form, as a customer would."""
    from selenium.webdriver.support.ui import Select

    Select(browser.visible("#language-select")).select_by_value("ja")
    browser.click('form[action="/i18n/setlang/"] button[type="submit"]')
    browser.wait(lambda _d: _lang(browser) == "ja", "the page in Japanese")


def _lang(browser: Browser) -> str | None:
    """The page's language, or None while the old page is being replaced (Chromium then reports the found
    node as not belonging to the document, an 'unknown error' rather than a stale element)."""
    from selenium.common.exceptions import WebDriverException

    try:
        return browser.find("html").get_attribute("lang")
    except WebDriverException:
        return None


#: A page script that answers one authguard URL as a reverse proxy might, with an HTML page instead of
#: authguard's JSON: ``arguments[0]`` the path, ``arguments[1]`` the HTTP status.
PROXY_ANSWERS = """
const [path, status] = arguments;
const original = window.fetch.bind(window);
window.fetch = (url, init) => {
  if (new URL(url, location.href).pathname === path) {
    const page = "<html><body><h1>" + status + " Bad Gateway</h1><p>nginx</p></body></html>";
    return Promise.resolve(new Response(page, { status, headers: { "Content-Type": "text/html" } }));
  }
  return original(url, init);
};
"""


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    """¥1,000,000 cash; 100 Toyota, 2,000 NTT and 10 Apple; the browser tests' password."""
    return brokerage_customer(password=PASSWORD, holdings={"7203": 100, "9432": 2000, "AAPL": 10})


def test_a_japanese_customer_gets_the_passkey_confirmation_and_step_up_pages_in_japanese(
    chrome: Any, hanako: Any
) -> None:
    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("hanako")
    browser.wait_for_path("/")
    choose_japanese(browser)

    browser.settle()  # her own computer: the passkey she adds here may confirm orders
    browser.open_passkey_page()
    assert browser.visible_text("h1") == japanese("Add a passkey")
    browser.click("[data-authguard-start]")
    browser.wait_for_path("/authguard/security/")

    # The held order's summary, in Japanese, on its confirmation page.
    place_on_trade_page(browser, side="sell", symbol="AAPL", quantity=10)
    browser.wait_for_path_prefix("/authguard/confirmations/")
    held = HeldOrder.objects.get()
    with translation.override("ja"):
        summary_ja = orders.confirmation_json(held)["summary"]
    with translation.override("en"):
        summary_en = orders.confirmation_json(held)["summary"]
    assert summary_ja != summary_en
    assert browser.visible_text("#confirm-summary") == summary_ja
    assert browser.visible_text("#confirm-heading") == japanese("Confirm your order")
    browser.click("#confirm-passkey-button")
    browser.wait(
        lambda _d: browser.find("#confirm-status").get_attribute("data-status") == "confirmed",
        "the confirmation to be shown",
    )
    assert Order.objects.get().status == OrderStatus.PLACED

    # A risky sign-in: the step-up pages, and the script's message when the fingerprint fails.
    browser.sign_out()
    browser.come_from(IP_SG_VPS)
    browser.sign_in("hanako")
    browser.wait_for_path_prefix("/authguard/step-up/")
    assert browser.visible_text("#step-up-heading") == japanese("One more step to sign in")
    browser.link("/authguard/step-up/passkey/")
    browser.wait_for_path_prefix("/authguard/step-up/passkey/")
    browser.set_user_verified(False)
    browser.click("[data-authguard-start]")
    message = browser.visible_text("[data-authguard-error]")
    assert message == japanese("The passkey request was cancelled or timed out. Please try again.")
    assert browser.authguard_state()["s"] == "pending"


def test_passkeys_js_shows_the_pages_japanese_message_when_a_proxy_answers_instead_of_authguard(
    chrome: Any, hanako: Any
) -> None:
    from authguard.models import PasskeyDevice

    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("hanako")
    browser.wait_for_path("/")
    choose_japanese(browser)
    expected = japanese("The service is not answering right now. Please try again in a moment.")
    error = "[data-authguard-error]"

    # A proxy's 502 page instead of the creation options: the page's own Japanese message, nothing created.
    browser.open_passkey_page()
    browser.driver.execute_script(PROXY_ANSWERS, "/authguard/api/passkeys/options", 502)
    browser.click("[data-authguard-start]")
    assert browser.wait_for_text(error, expected) == expected
    assert browser.path == "/authguard/security/passkeys/add/"
    assert browser.visible("[data-authguard-start]").is_enabled()  # the customer can try again
    assert browser.credentials() == [] and not PasskeyDevice.objects.exists()

    # An HTML page with status 200 in place of the verification's answer is no success either: the page
    # stays, with the same message, and the server stored nothing (it never saw the credential).
    browser.get("/authguard/security/passkeys/add/")
    browser.driver.execute_script(PROXY_ANSWERS, "/authguard/api/passkeys", 200)
    browser.click("[data-authguard-start]")
    assert browser.wait_for_text(error, expected) == expected
    assert browser.path == "/authguard/security/passkeys/add/"
    assert not PasskeyDevice.objects.exists()

    # The demo's login page (the demo's catalog) does the same for a passwordless sign-in.
    browser.sign_out()
    with browser.authenticator_idle():
        browser.get("/login/")
        assert browser.find("html").get_attribute("lang") == "ja"
        browser.driver.execute_script(PROXY_ANSWERS, "/authguard/api/login/passkey/options", 502)
        browser.click('[data-authguard-passkey="login"] [data-authguard-start]')
        login_error = f'[data-authguard-passkey="login"] {error}'
        assert browser.wait_for_text(login_error, expected) == expected
    assert browser.signed_in_user_id() is None
