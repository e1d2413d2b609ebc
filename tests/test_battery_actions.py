"""Security battery case 54 (issue 11): sensitive actions beyond orders, end to end through the demo's API.

A withdrawal, a bank-account registration or change, a transfer of securities out and a contact change are
held until the customer confirms them with a passkey bound to exactly that action; a newly registered bank
account receives nothing during the new-payee hold, whatever is confirmed.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from authguard.factors import inventory
from authguard.models import HeldAction, Notification, RegisteredPayee
from demo_site.brokerage.models import BankAccount, BankAccountStatus, Withdrawal, WithdrawalStatus

from .actions_support import *  # noqa: F403
from .actions_support import BANK, HANAKO_PASSWORD, OTHER_BROKER, cash_of, confirm_action, old_bank_account
from .conftest import OrderApi

pytestmark = pytest.mark.django_db


@pytest.mark.battery(54)
def test_battery_54_a_withdrawal_to_a_bank_account_registered_in_the_same_session_moves_no_money(
    customer: Any, hanako: Any
) -> None:
    client, authenticator = customer
    cash = cash_of(hanako)
    # The bank account is held until the passkey confirms exactly these details.
    added = client.post("/api/bank-accounts", BANK)
    assert added.status_code == 202, added.content
    body = added.json()
    assert body["status"] == "held" and body["confirmation"]["methods"] == ["passkey"]
    assert "Mizuho Bank (0001) 123 1234567 YAMADA HANAKO" in body["confirmation"]["summary"]
    bank_id = body["bank_account"]["bank_account_id"]
    # Before the confirmation it is not a bank account money can go to at all.
    early = client.post("/api/withdrawals", {"bank_account_id": bank_id, "amount": "500000"})
    assert early.status_code == 400 and "bank_account_id" in early.json()["errors"]
    confirmed = confirm_action(client, body["confirmation"]["id"], authenticator)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed", confirmed.content
    assert BankAccount.objects.get(pk=bank_id).status == BankAccountStatus.ACTIVE
    assert RegisteredPayee.objects.get(user=hanako, ref=str(bank_id)).source == "confirmed"
    # Registered in this very session: no money for 72 hours, whatever would be confirmed.
    refused = client.post("/api/withdrawals", {"bank_account_id": bank_id, "amount": "500000"})
    assert refused.status_code == 403, refused.content
    assert refused.json()["code"] == "payee_on_hold" and refused.json()["available_at"]
    assert not Withdrawal.objects.exists() and not HeldAction.objects.filter(kind="withdrawal").exists()
    assert cash_of(hanako) == cash
    with time_machine.travel(timezone.now() + timedelta(hours=71)):
        later = OrderApi()
        later.login("hanako", HANAKO_PASSWORD)
        again = later.post("/api/withdrawals", {"bank_account_id": bank_id, "amount": "500000"})
        assert again.status_code == 403 and again.json()["code"] == "payee_on_hold"
    with time_machine.travel(timezone.now() + timedelta(hours=73)):
        later = OrderApi()
        later.login("hanako", HANAKO_PASSWORD)
        held = later.post("/api/withdrawals", {"bank_account_id": bank_id, "amount": "500000"})
        assert held.status_code == 202, held.content
        assert held.json()["confirmation"]["summary"].startswith("Withdraw ¥500,000 to Mizuho Bank")
        assert cash_of(hanako) == cash  # held: nothing has moved
        done = confirm_action(later, held.json()["confirmation"]["id"], authenticator)
        assert done.status_code == 200, done.content
    assert cash_of(hanako) == cash - Decimal("500000")
    assert Withdrawal.objects.get().status == WithdrawalStatus.COMPLETED
    assert Notification.objects.filter(user=hanako, kind="action_held").count() == 2
    assert Notification.objects.filter(user=hanako, kind="action_done").count() == 2


class RecordingExecutor:
    """The demo's executor for withdrawals and registrations; records every other kind it carries out."""

    done: list[dict[str, Any]] = []
    released: list[tuple[str, str]] = []

    def execute(self, action: HeldAction) -> str:
        from authguard.actions import flow as actions
        from demo_site.brokerage.money import action_executor

        if action.kind in ("withdrawal", "bank_account_add"):
            return action_executor.execute(action)
        RecordingExecutor.done.append(actions.stored_action(action)["params"])
        return f"done-{len(RecordingExecutor.done)}"

    def release(self, action: HeldAction, *, status: str) -> None:
        from demo_site.brokerage.money import action_executor

        RecordingExecutor.released.append((action.kind, status))
        action_executor.release(action, status=status)


recording_executor = RecordingExecutor()

#: Creation options for a passkey the thief makes on his own authenticator (never registered anywhere).
CREATION = {
    "rp": {"id": "localhost", "name": "x"},
    "user": {"id": "AQ", "name": "x", "displayName": "x"},
    "challenge": "AAAAAAAAAAAAAAAAAAAAAA",
    "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
}


@pytest.fixture
def recording(actions_site: Any) -> type[RecordingExecutor]:
    actions_site.AUTHGUARD_ACTION_EXECUTOR = "tests.test_battery_actions.recording_executor"
    RecordingExecutor.done = []
    RecordingExecutor.released = []
    return RecordingExecutor


@pytest.mark.battery(54)
def test_battery_54_an_attacker_with_the_password_alone_registers_no_bank_account_and_withdraws_nothing(
    customer: Any, hanako: Any
) -> None:
    _client, _authenticator = customer
    bank = old_bank_account(hanako)
    cash = cash_of(hanako)
    from authguard.testing import SoftAuthenticator

    thief = OrderApi()
    thief.login("hanako", HANAKO_PASSWORD)
    own = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    # Adding his own passkey needs a fresh verification with the customer's: refused.
    assert thief.post("/authguard/api/passkeys/options").status_code in (401, 403)
    added = thief.post("/api/bank-accounts", {**BANK, "account_number": "7654321", "holder_name": "SUZUKI"})
    assert added.status_code == 202
    out = thief.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "900000"})
    assert out.status_code == 202
    for answer in (added.json(), out.json()):
        options = thief.post(f"/authguard/api/actions/{answer['confirmation']['id']}/passkey/options").json()
        # Any assertion but one of the customer's own passkeys is refused.
        own.create(CREATION)
        forged = own.get({**options, "allowCredentials": []})
        signed = thief.post(f"/authguard/api/actions/{answer['confirmation']['id']}/passkey", forged)
        assert signed.status_code == 400, signed.content
    assert cash_of(hanako) == cash
    assert not BankAccount.objects.filter(status=BankAccountStatus.ACTIVE, account_number="7654321").exists()
    assert Withdrawal.objects.get().status == WithdrawalStatus.HELD
    assert not RegisteredPayee.objects.filter(
        ref__in=[str(b.pk) for b in BankAccount.objects.exclude(pk=bank.pk)]
    )
    # The customer was told of both, out of band.
    assert Notification.objects.filter(user=hanako, kind="action_held").count() == 2


@pytest.mark.battery(54)
def test_battery_54_a_bank_account_change_is_held_bound_to_the_new_details_and_restarts_the_hold(
    customer: Any, hanako: Any, recording: Any
) -> None:
    from .actions_support import guard_in_session

    client, authenticator = customer
    bank = old_bank_account(hanako)
    new = {**BANK, "account_number": "7654321", "holder_name": "SUZUKI ICHIRO"}
    held = guard_in_session(
        client, hanako, kind="bank_account_change", params={"account": "1", "payee": str(bank.pk), **new}
    )
    summary = held.as_json()["summary"]
    assert summary == (
        "Change the bank account Mizuho Bank (0001) 123 ****567 YAMADA HANAKO to "
        "Mizuho Bank (0001) 123 7654321 SUZUKI ICHIRO."
    )
    before = RegisteredPayee.objects.get(ref=str(bank.pk))
    assert recording.done == []
    response = confirm_action(client, str(held.action.pk), authenticator)
    assert response.status_code == 200, response.content
    assert recording.done == [{"account": "1", "payee": str(bank.pk), **new}]
    after = RegisteredPayee.objects.get(ref=str(bank.pk))
    assert after.details_digest != before.details_digest and after.registered_at > before.registered_at
    # The changed account is a new payee: no withdrawal to it for 72 hours.
    refused = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"})
    assert refused.status_code == 403 and refused.json()["code"] == "payee_on_hold"


@pytest.mark.battery(54)
def test_battery_54_a_transfer_of_securities_out_is_held_until_the_passkey_confirms_it(
    customer: Any, hanako: Any, recording: Any
) -> None:
    from .actions_support import guard_in_session

    client, authenticator = customer
    params = {"account": "1", "symbol": "7203", "quantity": 100, **OTHER_BROKER}
    held = guard_in_session(client, hanako, kind="securities_transfer_out", params=params)
    assert held.as_json()["summary"] == (
        "Transfer 100 shares of 7203 out to Other Securities (broker code 0001), branch 123, account 9876543."
    )
    assert held.as_json()["methods"] == ["passkey"] and recording.done == []
    # Confirmed with the customer's passkey: carried out once, and the confirmation is used up.
    response = confirm_action(client, str(held.action.pk), authenticator)
    assert response.status_code == 200 and recording.done == [params]
    again = client.post(f"/authguard/api/actions/{held.action.pk}/passkey/options")
    assert again.status_code == 410 and again.json()["status"] == "gone"
    assert recording.done == [params]


@pytest.mark.battery(54)
def test_battery_54_a_passkey_in_its_cooling_off_cannot_confirm(
    customer: Any, hanako: Any, recording: Any
) -> None:
    from authguard.factors import lifecycle
    from authguard.models import FactorRecord, PasskeyDevice
    from authguard.testing import SoftAuthenticator

    from .actions_support import guard_in_session
    from .conftest import bind_passkey

    client, authenticator = customer
    params = {"account": "1", "symbol": "7203", "quantity": 100, **OTHER_BROKER}
    # A passkey confirmed during the account's cooling-off (the thief's, added with a relayed code) is not
    # counted: the customer's older passkey is the only way to confirm.
    day_ago = timezone.now() - timedelta(days=1)
    FactorRecord.objects.filter(user=hanako).update(enrolled_at=day_ago)
    PasskeyDevice.objects.filter(user=hanako).update(created_at=day_ago)
    lifecycle.start_cooling_off(hanako, reason="factor_added", at=timezone.now() - timedelta(minutes=5))
    thief_key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    bind_passkey(hanako, thief_key, name="thief")
    assert inventory.factor_is_cooling_off(PasskeyDevice.objects.get(name="thief"))
    held = guard_in_session(client, hanako, kind="securities_transfer_out", params=params)
    assert held.as_json()["methods"] == ["passkey"]
    options = client.post(f"/authguard/api/actions/{held.action.pk}/passkey/options").json()
    response = client.post(f"/authguard/api/actions/{held.action.pk}/passkey", thief_key.get(options))
    assert response.status_code == 400 and response.json()["code"] == "cooling_off"
    assert recording.done == []
    # The customer's own passkey, once it is itself cooling off (e.g. re-bound from a risky session), cannot
    # confirm either: a held action is refused at the confirmation, and nothing new can be asked for.
    own = PasskeyDevice.objects.exclude(name="thief").get()
    FactorRecord.objects.filter(device_id=own.persistent_id).update(
        cooling_off_until=timezone.now() + timedelta(hours=1)
    )
    response = confirm_action(client, str(held.action.pk), authenticator)
    assert response.status_code == 400 and response.json()["code"] == "cooling_off"
    assert recording.done == []
    refused = client.post("/api/bank-accounts", BANK)
    assert refused.status_code == 403 and refused.json()["code"] == "no_method"
    assert "passkey" in refused.json()["message"]


@pytest.mark.battery(54)
def test_battery_54_a_replayed_confirmation_or_one_from_another_session_is_refused(
    customer: Any, hanako: Any
) -> None:
    client, authenticator = customer
    bank = old_bank_account(hanako)
    cash = cash_of(hanako)
    held = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "300000"}).json()
    action_id = held["confirmation"]["id"]
    # Another session of the same customer (the thief's, with the password) cannot even see it.
    other = OrderApi()
    other.login("hanako", HANAKO_PASSWORD)
    assert other.post(f"/authguard/api/actions/{action_id}/passkey/options").status_code == 404
    options = client.post(f"/authguard/api/actions/{action_id}/passkey/options").json()
    assertion = authenticator.get(options)
    # An assertion relayed to the other session is refused there (not its action, not its challenge).
    assert other.post(f"/authguard/api/actions/{action_id}/passkey", assertion).status_code == 404
    assert client.post(f"/authguard/api/actions/{action_id}/passkey", assertion).status_code == 200
    # Replayed: the confirmation is used up, and the money moved exactly once.
    replay = client.post(f"/authguard/api/actions/{action_id}/passkey", assertion)
    assert replay.status_code == 410 and replay.json()["status"] == "gone"
    assert cash_of(hanako) == cash - Decimal("300000")
    assert Withdrawal.objects.get().status == WithdrawalStatus.COMPLETED
    held_row = HeldAction.objects.get(pk=action_id)
    assert held_row.status == "confirmed" and held_row.confirmed_method == "passkey" and held_row.assertion


@pytest.mark.battery(54)
def test_battery_54_a_tampered_amount_voids_the_confirmation(customer: Any, hanako: Any) -> None:
    client, authenticator = customer
    bank = old_bank_account(hanako)
    cash = cash_of(hanako)
    action_id = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()[
        "confirmation"
    ]["id"]
    options = client.post(f"/authguard/api/actions/{action_id}/passkey/options").json()
    # Someone raises the stored amount after the customer saw ¥1,000 and before she signs.
    held = HeldAction.objects.get(pk=action_id)
    held.canonical = held.canonical.replace('"amount":"1000.00"', '"amount":"900000.00"')
    held.save(update_fields=["canonical"])
    response = client.post(f"/authguard/api/actions/{action_id}/passkey", authenticator.get(options))
    assert response.status_code == 400 and response.json()["code"] == "action_changed"
    # ...and with the digest recomputed too, the customer's signature over the old challenge does not fit.
    from authguard.actions import flow as actions

    held.digest = actions.action_digest(held.canonical)
    held.save(update_fields=["digest"])
    response = client.post(f"/authguard/api/actions/{action_id}/passkey", authenticator.get(options))
    assert response.status_code == 400 and response.json()["code"] in ("challenge", "action_changed")
    assert cash_of(hanako) == cash
    assert Withdrawal.objects.get().status == WithdrawalStatus.HELD
