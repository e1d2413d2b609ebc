"""Issue 16, acceptance 2 (phones): at a 390 px wide viewport (an iPhone 12 to 16 in portrait) the customer in
the news, with his 30 holdings and two orders held for confirmation, reads the portfolio, orders and security
pages without sideways scrolling, and the Confirm action of each held order is on the screen, in English and
in Japanese. The viewport is Chromium's own device emulation (CDP ``Emulation.setDeviceMetricsOverride``,
``mobile``: the page's ``<meta name="viewport">`` applies as on a phone).
"""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import HeldOrder
from demo_site.brokerage import services
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from .browser import PASSWORD, Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_TOKYO
from .test_browser_japanese import choose_japanese, japanese
from .test_browser_orders import place_on_trade_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: CSS pixels of an iPhone 12-16 screen in portrait.
PHONE_WIDTH, PHONE_HEIGHT = 390, 844


@pytest.fixture
def tanaka() -> Any:
    """The demo's Tanaka: ¥1,200,000 cash and the 30 holdings of the news story (``seed_demo``'s data)."""
    services.sync_instruments()
    return services.open_account(
        "tanaka", PASSWORD, email=TANAKA.email, cash=TANAKA.cash, holdings=dict(TANAKA.holdings)
    )


def on_a_phone(browser: Browser) -> None:
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH, "height": PHONE_HEIGHT, "deviceScaleFactor": 3, "mobile": True},
    )


def widths(browser: Browser) -> tuple[int, int]:
    """(the document's scroll width, the viewport's width) in CSS pixels."""
    scroll, inner = browser.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth];"
    )
    return int(scroll), int(inner)


def assert_no_sideways_scroll(browser: Browser, path: str) -> None:
    browser.get(path)
    browser.visible("main h1")
    scroll, inner = widths(browser)
    # A phone widens its layout viewport to fit a page wider than the screen (and zooms out): that is the
    # sideways scrolling, measured as a wider window.innerWidth.
    assert inner == PHONE_WIDTH, f"{path} is laid out {inner} px wide on a {PHONE_WIDTH} px phone"
    assert scroll <= inner, f"{path} scrolls sideways: {scroll} px of content in a {inner} px viewport"


def on_screen(browser: Browser, element: Any) -> bool:
    """Whether ``element`` is displayed and lies within the viewport's width (no sideways scroll needed)."""
    if not element.is_displayed():
        return False
    left, right = browser.driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right];", element
    )
    return left >= 0 and right <= PHONE_WIDTH


def held_orders_of_tanaka(browser: Browser) -> list[HeldOrder]:
    """Two orders of the kind a thief places (pumped small caps), entered on the trade page: held for
    Tanaka's confirmation."""
    for symbol, quantity in (("3Z3A", 8000), ("4Z1A", 2000)):  # two pumped small caps, ¥1.6 million
        place_on_trade_page(browser, side="buy", symbol=symbol, quantity=quantity)
        browser.wait_for_path_prefix("/authguard/confirmations/")
    held = list(HeldOrder.objects.filter(status=HeldOrder.Status.PENDING))
    assert len(held) == 2, "both orders should be held for confirmation"
    return held


@pytest.mark.parametrize("language", ["en", "ja"])
def test_portfolio_orders_and_security_fit_a_390_px_phone(chrome: Any, tanaka: Any, language: str) -> None:
    browser = chrome(ip=IP_TOKYO)
    on_a_phone(browser)
    browser.sign_in("tanaka")
    browser.wait_for_path("/")
    if language == "ja":
        choose_japanese(browser)
    held = held_orders_of_tanaka(browser)
    confirm = japanese("Confirm") if language == "ja" else "Confirm"

    # The portfolio: all 30 holdings listed, nothing wider than the screen, the held orders' links on it.
    assert_no_sideways_scroll(browser, "/")
    assert len(browser.find_all("table.holdings tbody tr")) == len(TANAKA.holdings) == 30
    for row in held:
        link = browser.find(f'[data-testid="waiting-order"] a[href="/authguard/confirmations/{row.pk}/"]')
        assert on_screen(browser, link)
    sell = browser.find('table.holdings a[href*="side=sell"]')
    assert on_screen(browser, sell)

    # The order history: each held order's Confirm button is on the screen, not in a column off to the right.
    assert_no_sideways_scroll(browser, "/orders/")
    buttons = [browser.find(f"#confirm-order-{row.portal_ref}") for row in held]
    for button in buttons:
        browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
        assert on_screen(browser, button) and button.text.strip() == confirm
    widths_after_scroll = widths(browser)
    assert widths_after_scroll[0] <= widths_after_scroll[1]

    # The security settings (sign-in methods, remembered devices, recent sign-ins: three tables).
    assert_no_sideways_scroll(browser, "/authguard/security/")
    assert browser.find_all("main table")  # the recent sign-ins at least

    # And the Confirm link from the order history leads to a confirmation page that fits too.
    browser.get("/orders/")
    button = browser.find(f"#confirm-order-{held[0].portal_ref}")
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    browser.wait_for_path(f"/authguard/confirmations/{held[0].pk}/")
    scroll, inner = widths(browser)
    assert scroll <= inner
    assert browser.console_errors() == []
