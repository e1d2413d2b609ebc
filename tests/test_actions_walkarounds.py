"""Money and contacts leaving the account: three findings of the red team of 2026-12-05, each failing on the
code before it. With TOTP allowed for sensitive actions, one relayed code confirmed a bank account for a
customer whose only passkey was still cooling off (the rule of held orders now holds here too: a customer
with a passkey confirms with it, or waits); a Unicode digit in a withdrawal's bank account id answered 500;
a holder name with two spaces was refused after the customer had confirmed it (the portal now keeps the
canonical values).
"""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import HeldAction
from demo_site.brokerage.models import BankAccount, Withdrawal

from .actions_support import *  # noqa: F403
from .actions_support import BANK, cash_of, old_bank_account

pytestmark = pytest.mark.django_db


def test_withdrawal_api_superscript_digit_bank_account_id_is_a_400_not_a_500(
    customer: Any, hanako: Any
) -> None:
    client, _authenticator = customer
    old_bank_account(hanako)
    cash = cash_of(hanako)
    client.client.raise_request_exception = False
    response = client.post("/api/withdrawals", {"bank_account_id": "\u00b2", "amount": "1000"})
    assert response.status_code == 400, response.status_code
    assert response.json()["status"] == "invalid"
    assert not Withdrawal.objects.exists() and not HeldAction.objects.exists()
    assert cash_of(hanako) == cash


def test_a_bank_account_the_customer_confirmed_with_her_passkey_is_registered_as_confirmed(
    customer: Any, hanako: Any
) -> None:
    """The demo stores the holder name as typed (stripped only) while authguard's canonical params collapse
    inner whitespace and NFC-normalise it: the executor's field-by-field comparison then refuses the very
    registration the customer confirmed, after her passkey was spent on it."""
    from .actions_support import confirm_action

    client, authenticator = customer
    added = client.post("/api/bank-accounts", {**BANK, "holder_name": "YAMADA  HANAKO"})
    assert added.status_code == 202, added.content
    bank_id = added.json()["bank_account"]["bank_account_id"]
    confirmed = confirm_action(client, added.json()["confirmation"]["id"], authenticator)
    assert confirmed.status_code == 200, confirmed.content
    assert BankAccount.objects.get(pk=bank_id).status == "active"


def test_a_relayed_totp_code_registers_a_bank_account_while_the_customers_passkey_cools_off(
    hanako: Any, actions_site: Any, totp_factory: Any
) -> None:
    """Where ``AUTHGUARD_ACTION_CONFIRMATION_METHODS`` adds ``totp`` (for customers *without* a passkey), a
    customer whose only passkey is new (cooling off) is offered the relayable code for sensitive actions:
    a thief with her password and ONE relayed code registers his bank account. Held orders refuse exactly
    this (``orders.held.confirmation_methods``: a passkey owner must wait, not fall back to a code)."""
    from datetime import timedelta

    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from authguard.factors import inventory, lifecycle
    from authguard.models import PasskeyDevice
    from authguard.testing import SoftAuthenticator
    from demo_site.brokerage.models import BankAccountStatus

    from .conftest import HANAKO_PASSWORD, OrderApi, bind_passkey, totp_token

    actions_site.AUTHGUARD_ACTION_CONFIRMATION_METHODS = ["passkey", "totp"]
    device = totp_factory(hanako)
    TOTPDevice.objects.filter(pk=device.pk).update(created_at=timezone.now() - timedelta(days=30))
    device.refresh_from_db()
    # Hanako has just added her first passkey on a new phone: it cools off (she has a passkey).
    lifecycle.start_cooling_off(hanako, reason="factor_added", at=timezone.now() - timedelta(minutes=5))
    phone = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    bind_passkey(hanako, phone, name="new phone")
    assert inventory.factor_is_cooling_off(PasskeyDevice.objects.get(user=hanako))
    assert not inventory.factor_is_cooling_off(device)
    # The thief: her password, and one code relayed by his phishing page.
    thief = OrderApi()
    thief.login("hanako", HANAKO_PASSWORD)
    his = {**BANK, "holder_name": "TANAKA TARO", "account_number": "7654321"}
    added = thief.post("/api/bank-accounts", his)
    # Nothing may confirm it while her passkey cools off: refused at once, never offered the relayable code.
    assert added.status_code == 403, added.content
    assert not BankAccount.objects.filter(status=BankAccountStatus.ACTIVE).exists()
    assert totp_token(device)  # her code would have been at hand: it is not asked for
