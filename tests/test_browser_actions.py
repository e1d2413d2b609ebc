"""Issue 11, acceptance 5, in a real Chromium with a virtual authenticator, in Japanese: a withdrawal from the
money page is held, its confirmation page shows exactly the amount and the bank account, and the customer's
passkey confirms it; the cash leaves once, and the browser signed the challenge derived from that withdrawal.
A bank account registered in the same session is confirmed with the passkey, and still receives nothing.

Expected texts are the catalogue's translations of the templates' strings (``catalogue``), so the test checks
that the pages use it, whatever the wording.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.utils import translation

from authguard.actions import flow as actions
from authguard.factors.passkey_ceremony import b64url_decode
from authguard.models import HeldAction, RegisteredPayee
from demo_site.brokerage.models import Account, BankAccount, BankAccountStatus, Withdrawal, WithdrawalStatus

from .actions_support import BANK, old_bank_account
from .browser import PASSWORD, Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_TOKYO
from .test_browser_japanese import choose_japanese

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def catalogue(text: str) -> str:
    """What the Japanese catalogue makes of ``text`` (the text itself until its translation is merged)."""
    with translation.override("ja"):
        return translation.gettext(text)


@pytest.fixture
def hanako(settings: Any, brokerage_customer: Any) -> Any:
    """¥1,000,000 cash and three holdings; authguard's action URLs and the demo's executor configured."""
    settings.ROOT_URLCONF = "tests.actions_urlconf"
    settings.AUTHGUARD_ACTION_EXECUTOR = "demo_site.brokerage.money.action_executor"
    return brokerage_customer(password=PASSWORD, holdings={"7203": 100, "9432": 2000, "AAPL": 10})


def cash(user: Any) -> Decimal:
    return Account.objects.get(user=user).cash


def withdraw_on_money_page(browser: Browser, *, bank: BankAccount, amount: int) -> None:
    from selenium.webdriver.support.ui import Select

    browser.get("/money/")
    Select(browser.visible("#id_bank_account")).select_by_value(str(bank.pk))
    browser.fill("#id_amount", str(amount))
    browser.click("#withdraw-submit")


def confirm_with_passkey(browser: Browser) -> None:
    browser.click("#confirm-passkey-button")
    browser.wait(
        lambda _d: browser.find("#confirm-status").get_attribute("data-status") == "confirmed",
        "the confirmation to be shown",
    )


def test_a_guarded_withdrawal_in_japanese_is_confirmed_with_the_passkey_bound_to_it(
    chrome: Any, hanako: Any
) -> None:
    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("hanako")
    browser.wait_for_path("/")
    browser.enroll_passkey("Laptop")
    bank = old_bank_account(hanako)
    choose_japanese(browser)
    before = cash(hanako)

    withdraw_on_money_page(browser, bank=bank, amount=500000)
    browser.wait_for_path_prefix("/authguard/actions/")
    held = HeldAction.objects.get()
    assert browser.path == f"/authguard/actions/{held.pk}/"
    assert held.kind == "withdrawal" and held.methods == ["passkey"]
    assert Withdrawal.objects.get().status == WithdrawalStatus.HELD and cash(hanako) == before

    # The page, in Japanese, shows exactly what the passkey will confirm: 500,000円 to that account.
    assert browser.find("html").get_attribute("lang") == "ja"
    summary = browser.visible_text("#confirm-summary")
    with translation.override("ja"):
        assert summary == actions.action_json(held)["summary"]
    assert "500,000円" in summary and "Mizuho Bank (0001) 123 ****567 YAMADA HANAKO" in summary
    assert browser.visible_text("#confirm-heading") == catalogue("Confirm your request")
    assert browser.visible_text("#confirm-passkey-button") == catalogue("Confirm with passkey")
    assert browser.console_errors() == []

    # A failed fingerprint moves nothing.
    browser.set_user_verified(False)
    browser.click("#confirm-passkey-button")
    assert browser.visible_text("#confirm-passkey [data-authguard-error]")
    assert HeldAction.objects.get().status == "pending" and cash(hanako) == before
    browser.set_user_verified(True)

    confirm_with_passkey(browser)
    held.refresh_from_db()
    assert held.status == "confirmed" and held.confirmed_method == "passkey"
    assert cash(hanako) == before - Decimal("500000")
    assert Withdrawal.objects.get().status == WithdrawalStatus.COMPLETED
    # The browser signed sha256(nonce || digest) of this very withdrawal (dynamic linking).
    client_data = json.loads(b64url_decode(held.assertion["response"]["clientDataJSON"], max_chars=8192))
    assert client_data["origin"] == browser.base_url and client_data["type"] == "webauthn.get"
    assert b64url_decode(client_data["challenge"], max_chars=256) == actions.challenge_for(held)
    assert not browser.find_all("#confirm-passkey-button")
    assert browser.console_errors() == []

    # The money page lists it as paid.
    browser.get("/money/")
    row = browser.visible(f"#withdrawal-{Withdrawal.objects.get().pk}")
    assert row.get_attribute("data-status") == WithdrawalStatus.COMPLETED


def test_a_bank_account_registered_in_this_session_is_confirmed_but_receives_nothing(
    chrome: Any, hanako: Any
) -> None:
    browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("hanako")
    browser.wait_for_path("/")
    browser.enroll_passkey("Laptop")
    choose_japanese(browser)
    before = cash(hanako)

    browser.get("/money/")
    browser.click("#add-bank-account")
    browser.wait_for_path("/money/bank-accounts/add/")
    for name, value in BANK.items():
        if name == "account_type":
            continue  # "ordinary" is preselected
        browser.fill(f"#id_{name}", value)
    browser.click("#bank-submit")
    browser.wait_for_path_prefix("/authguard/actions/")
    assert "123 1234567 YAMADA HANAKO" in browser.visible_text("#confirm-summary")  # the new number in full
    confirm_with_passkey(browser)
    bank = BankAccount.objects.get()
    assert bank.status == BankAccountStatus.ACTIVE
    assert RegisteredPayee.objects.filter(user=hanako, ref=str(bank.pk)).exists()

    # Straight to a withdrawal to it: refused on the page, nothing held, nothing moved.
    withdraw_on_money_page(browser, bank=bank, amount=900000)
    browser.wait(lambda _d: browser.find_all("#withdraw-errors"), "the refusal")
    assert browser.path == "/money/"
    assert not Withdrawal.objects.exists() and not HeldAction.objects.filter(kind="withdrawal").exists()
    assert cash(hanako) == before
