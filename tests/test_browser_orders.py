"""Issue 5, acceptance 5, in a real Chromium with a virtual authenticator: a mass liquidation entered on the
trade page is held, its confirmation page shows the plain summary, and the customer's passkey confirms it.
The stored order is placed exactly once, and the browser signed the challenge derived from that order.
A customer without a passkey confirms with a code from the authenticator app instead (the default policy).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors.passkey_ceremony import b64url_decode
from authguard.models import GuardStatus, HeldOrder
from authguard.orders import guard as orders
from demo_site.brokerage.models import Account, Order, OrderStatus

from .browser import PASSWORD, Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_TOKYO, totp_token
from .test_browser_totp import enroll_totp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    """¥1,000,000 cash; 100 Toyota (¥285,000), 2,000 NTT (¥305,000) and 10 Apple (¥345,000)."""
    return brokerage_customer(password=PASSWORD, holdings={"7203": 100, "9432": 2000, "AAPL": 10})


def account(user: Any) -> tuple[Decimal, dict[str, int]]:
    held = Account.objects.get(user=user)
    return held.cash, dict(held.positions.values_list("instrument__symbol", "quantity"))


def place_on_trade_page(browser: Browser, *, side: str, symbol: str, quantity: int) -> None:
    """Fill in the trade page as a person would and press "Place order"."""
    from selenium.webdriver.support.ui import Select

    browser.get("/trade/")
    browser.click(f'input[name="side"][value="{side}"]')
    Select(browser.visible("#id_symbol")).select_by_value(symbol)
    browser.fill("#id_quantity", str(quantity))
    browser.find("#id_quantity").submit()


@pytest.mark.battery(33)
def test_battery_33_a_held_order_is_confirmed_with_a_passkey_and_placed_once(
    chrome: Any, hanako: Any
) -> None:
    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("hanako")
    browser.wait_for_path("/")
    browser.enroll_passkey("Laptop")
    cash_before, holdings_before = account(hanako)

    # Selling all Apple is 37 % of the holdings, over a new-device session's limit: held, not placed.
    place_on_trade_page(browser, side="sell", symbol="AAPL", quantity=10)
    browser.wait_for_path_prefix("/authguard/confirmations/")
    held = HeldOrder.objects.get()
    assert browser.path == f"/authguard/confirmations/{held.pk}/"
    assert held.status == HeldOrder.Status.PENDING and held.methods == ["passkey"]
    order = Order.objects.get()
    assert order.status == OrderStatus.HELD
    assert account(hanako) == (cash_before, holdings_before)  # nothing moved yet

    # The page shows the plain summary of exactly this order, and why it was held.
    summary = browser.visible_text("#confirm-summary")
    assert summary == orders.confirmation_json(held)["summary"]
    assert summary.startswith("Sell 10 of AAPL")
    assert browser.find("#confirm-status").get_attribute("data-status") == "pending"
    assert browser.find_all("#confirm-reasons li")
    assert browser.console_errors() == []

    # A failed fingerprint confirms nothing: a message on the page, the order still held.
    browser.set_user_verified(False)
    browser.click("#confirm-passkey-button")
    error = browser.visible("#confirm-passkey [data-authguard-error]")
    assert error.text.strip() and error.get_attribute("role") == "alert"
    held.refresh_from_db()
    order.refresh_from_db()
    assert held.status == HeldOrder.Status.PENDING and order.status == OrderStatus.HELD
    assert account(hanako) == (cash_before, holdings_before)
    browser.set_user_verified(True)

    # The customer confirms with the passkey; the page then shows the order as confirmed.
    browser.click("#confirm-passkey-button")
    browser.wait(
        lambda _d: browser.find("#confirm-status").get_attribute("data-status") == "confirmed",
        "the confirmation to be shown",
    )
    assert browser.path == f"/authguard/confirmations/{held.pk}/"
    assert browser.visible_text("#confirm-summary") == summary  # still there, for the record
    assert not browser.find_all("#confirm-passkey-button")  # nothing left to confirm
    assert browser.console_errors() == []

    # Placed exactly once: the stored order, at the stored quantity, and nothing else.
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.CONFIRMED and held.confirmed_method == "passkey"
    assert held.guarded.status == GuardStatus.PLACED
    order.refresh_from_db()
    assert order.status == OrderStatus.PLACED and order.executed_at is not None
    assert Order.objects.count() == 1
    cash_after, holdings_after = account(hanako)
    assert "AAPL" not in holdings_after
    assert holdings_after == {s: q for s, q in holdings_before.items() if s != "AAPL"}
    assert cash_after == cash_before + order.amount_jpy
    # The browser signed sha256(nonce || digest) of this very order (dynamic linking).
    client_data = json.loads(b64url_decode(held.assertion["response"]["clientDataJSON"], max_chars=8192))
    assert client_data["origin"] == browser.base_url and client_data["type"] == "webauthn.get"
    assert b64url_decode(client_data["challenge"], max_chars=256) == orders.challenge_for(held)

    # Asking to confirm again (another tab, the back button) is refused: the confirmation is used up.
    again = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const token = document.cookie.match(/(?:^|;\\s*)csrftoken=([^;]+)/)[1];
        fetch(arguments[0], {method: "POST", headers: {"X-CSRFToken": token}, body: "{}"})
          .then(async (response) => done([response.status, await response.json()]));
        """,
        f"/authguard/api/confirmations/{held.pk}/passkey/options",
    )
    assert again[0] == 410 and again[1]["status"] == "gone", again
    order.refresh_from_db()
    assert order.status == OrderStatus.PLACED and Order.objects.count() == 1
    assert account(hanako) == (cash_after, holdings_after)

    # The order history agrees, with no confirm button left.
    browser.get("/orders/")
    assert "Placed" in browser.visible_text(f"tbody tr:has(th) .status-{OrderStatus.PLACED}")
    assert not browser.find_all(f"#confirm-order-{order.pk}")


def test_a_customer_without_a_passkey_confirms_a_held_order_with_a_code(chrome: Any, hanako: Any) -> None:
    browser = chrome(ip=IP_TOKYO)
    browser.sign_in("hanako")
    browser.wait_for_path("/")
    device = enroll_totp(browser)
    cash_before, holdings_before = account(hanako)

    place_on_trade_page(browser, side="sell", symbol="AAPL", quantity=10)
    browser.wait_for_path_prefix("/authguard/confirmations/")
    held = HeldOrder.objects.get()
    assert held.methods == ["totp"]  # no passkey on the account: the code is allowed
    assert browser.visible_text("#confirm-summary") == orders.confirmation_json(held)["summary"]
    assert not browser.find_all("#confirm-passkey-button")

    # A wrong code: the page says so and nothing moves.
    right_now = totp_token(device)
    browser.fill("#confirm-totp-code", "000000" if right_now != "000000" else "111111")
    browser.click("#confirm-totp-submit")
    assert browser.visible_text("#confirm-error")
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.PENDING and account(hanako) == (cash_before, holdings_before)
    browser.wait(
        lambda _d: TOTPDevice.objects.get(pk=device.pk).verify_is_allowed()[0], "the throttle to end"
    )

    device.refresh_from_db()
    browser.fill("#confirm-totp-code", totp_token(device, steps=1))
    browser.click("#confirm-totp-submit")
    browser.wait(
        lambda _d: browser.find("#confirm-status").get_attribute("data-status") == "confirmed",
        "the confirmation to be shown",
    )
    assert "Confirmed: the order was placed." in browser.text()
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.CONFIRMED and held.confirmed_method == "totp"
    order = Order.objects.get()
    assert order.status == OrderStatus.PLACED and Order.objects.count() == 1
    assert "AAPL" not in account(hanako)[1]


def test_a_batch_of_held_orders_is_confirmed_with_one_passkey(chrome: Any, hanako: Any) -> None:
    """Issue 11: one confirmation for a batch, the challenge bound to the exact set, each order listed."""
    from authguard.orders.batch import batch_challenge

    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("hanako")
    browser.wait_for_path("/")
    browser.enroll_passkey("Laptop")
    cash_before, holdings_before = account(hanako)
    # Selling each holding is over a new-device session's 25 % limit: three held sells.
    for symbol, quantity in (("AAPL", 10), ("9432", 2000), ("7203", 100)):
        place_on_trade_page(browser, side="sell", symbol=symbol, quantity=quantity)
        browser.wait_for_path_prefix("/authguard/confirmations/")
    helds = list(HeldOrder.objects.order_by("created_at"))
    assert len(helds) == 3 and {h.status for h in helds} == {HeldOrder.Status.PENDING}
    assert account(hanako) == (cash_before, holdings_before)

    # From the last confirmation page to the batch page: every held order listed with its plain summary.
    browser.click("#confirm-all")
    browser.wait_for_path("/authguard/confirmations/batch/")
    listed = browser.find_all("#batch-orders > li")
    assert sorted(li.get_attribute("data-confirmation") for li in listed) == sorted(str(h.pk) for h in helds)
    for held in helds:
        assert orders.confirmation_json(held)["summary"] in browser.text()
    assert browser.find("#batch-status").get_attribute("data-status") == "pending"

    browser.click("#batch-passkey-button")
    browser.wait(
        lambda _d: browser.find("#batch-status").get_attribute("data-status") == "done",
        "the batch to be done",
    )
    assert browser.console_errors() == []
    for held in helds:
        held.refresh_from_db()
        assert held.status == HeldOrder.Status.CONFIRMED and held.confirmed_method == "passkey"
    assert account(hanako)[1] == {}
    assert Order.objects.filter(status=OrderStatus.PLACED).count() == 3
    # The browser signed sha256(nonce || digest of the set): the one challenge that names these three orders.
    client_data = json.loads(b64url_decode(helds[0].assertion["response"]["clientDataJSON"], max_chars=8192))
    assert b64url_decode(client_data["challenge"], max_chars=256) == batch_challenge(helds)
