"""Unit and API tests of :mod:`authguard.actions.flow` (issue 11) and the demo's money pages and JSON API."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from authguard.actions import flow as actions
from authguard.factors import inventory
from authguard.models import (
    FactorRecord,
    FactorThrottle,
    HeldAction,
    HeldOrder,
    Notification,
    RegisteredPayee,
)
from demo_site.brokerage.models import BankAccount, BankAccountStatus, Withdrawal, WithdrawalStatus

from .actions_support import *  # noqa: F403
from .actions_support import (
    BANK,
    HANAKO_PASSWORD,
    OTHER_BROKER,
    cash_of,
    confirm_action,
    guard_in_session,
    old_bank_account,
)
from .conftest import OrderApi, totp_token

pytestmark = pytest.mark.django_db

WITHDRAWAL = {"account": "1", "payee": "7", "amount": "500000", "currency": "JPY"}


# -- params ----------------------------------------------------------------------------------------------


def test_params_are_checked_against_the_kind_and_canonicalised() -> None:
    clean = actions.clean_params(kind="withdrawal", params=WITHDRAWAL)
    assert clean == {"account": "1", "payee": "7", "amount": "500000.00", "currency": "JPY"}
    assert (
        actions.clean_params(kind="withdrawal", params={**WITHDRAWAL, "amount": 1500})["amount"] == "1500.00"
    )
    bank = actions.clean_params(kind="bank_account_add", params={"account": "1", "payee": "2", **BANK})
    assert bank["bank_code"] == "0001"  # leading zeros kept


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("withdrawal", {**WITHDRAWAL, "amount": 1.5}, "amount"),  # a float is not an exact amount
        ("withdrawal", {**WITHDRAWAL, "amount": True}, "amount"),
        ("withdrawal", {**WITHDRAWAL, "amount": "NaN"}, "amount"),
        ("withdrawal", {**WITHDRAWAL, "amount": "-5"}, "amount"),
        ("withdrawal", {**WITHDRAWAL, "amount": "0.001"}, "amount"),
        ("withdrawal", {**WITHDRAWAL, "amount": "1e30"}, "amount"),
        ("withdrawal", {**WITHDRAWAL, "currency": "yen"}, "currency"),
        ("withdrawal", {**WITHDRAWAL, "payee": "../1"}, "payee"),
        ("withdrawal", {**WITHDRAWAL, "note": "x"}, "note"),  # unknown fields are refused, never ignored
        ("withdrawal", {"account": "1", "payee": "7", "amount": "5"}, "currency"),
        ("bank_account_add", {"account": "1", "payee": "2", **BANK, "bank_code": 1}, "bank_code"),
        (
            "bank_account_add",
            {"account": "1", "payee": "2", **BANK, "holder_name": "EVIL\u202eKNAB"},
            "holder_name",
        ),
        ("bank_account_add", {"account": "1", "payee": "2", **BANK, "account_type": "gold"}, "account_type"),
        (
            "securities_transfer_out",
            {"account": "1", "symbol": "7203", "quantity": 0, **OTHER_BROKER},
            "quantity",
        ),
        ("contact_change", {"account": "1", "field": "password", "value": "x"}, "field"),
    ],
)
def test_malformed_params_are_refused_with_the_field(kind: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(actions.ActionInvalid) as raised:
        actions.clean_params(kind=kind, params=params)
    assert field in raised.value.errors and raised.value.http_status == 400


def test_an_unknown_kind_or_params_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(actions.ActionInvalid) as raised:
        actions.clean_params(kind="order", params={})
    assert raised.value.code == "unknown_kind"
    with pytest.raises(actions.ActionInvalid):
        actions.clean_params(kind="withdrawal", params=["x"])


def test_money_is_formatted_in_the_active_language() -> None:
    assert actions.format_money("500000.00", "JPY") == "¥500,000"
    with translation.override("ja"):
        assert actions.format_money("500000.00", "JPY") == "500,000円"
    assert actions.format_money("12.5", "USD") == "12.50 USD"


# -- holding and the binding ------------------------------------------------------------------------------


def test_a_held_action_commits_to_the_canonical_action_and_its_challenge_to_nonce_and_digest(
    customer: Any, hanako: Any
) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    body = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": 250000}).json()
    held = HeldAction.objects.get(pk=body["confirmation"]["id"])
    data = actions.stored_action(held)
    assert data["params"] == {"account": str(bank.account_id), "payee": str(bank.pk), "amount": "250000.00",
                              "currency": "JPY"}  # fmt: skip
    assert data["payee"]["label"] == "Mizuho Bank (0001) 123 ****567 YAMADA HANAKO"
    assert held.digest == hashlib.sha256(held.canonical.encode()).hexdigest()
    assert actions.challenge_for(held) == hashlib.sha256(bytes.fromhex(held.nonce + held.digest)).digest()
    assert body["confirmation"]["url"] == f"/authguard/actions/{held.pk}/"
    assert set(body["confirmation"]) >= {"id", "summary", "methods", "expires_at"}
    # Each options call signs a fresh nonce, still over the same action.
    first = client.post(f"/authguard/api/actions/{held.pk}/passkey/options").json()["challenge"]
    second = client.post(f"/authguard/api/actions/{held.pk}/passkey/options").json()["challenge"]
    assert first != second


def test_stored_action_refuses_a_row_moved_to_another_kind_or_customer(customer: Any, hanako: Any) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    action_id = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()[
        "confirmation"
    ]["id"]
    held = HeldAction.objects.get(pk=action_id)
    held.kind = "bank_account_add"
    with pytest.raises(actions.ConfirmationInvalid):
        actions.stored_action(held)


def test_a_held_action_expires_on_read_and_the_portal_copy_with_it(customer: Any, hanako: Any) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    action_id = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()[
        "confirmation"
    ]["id"]
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        response = client.post(f"/authguard/api/actions/{action_id}/passkey/options")
    assert response.status_code == 410 and response.json()["code"] == "expired"
    assert HeldAction.objects.get(pk=action_id).status == "expired"
    assert Withdrawal.objects.get().status == WithdrawalStatus.EXPIRED


def test_expire_due_and_staff_cancel_close_pending_actions(
    customer: Any, hanako: Any, admin_user: Any
) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    first = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()
    second = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "2000"}).json()
    assert actions.staff_cancel(
        HeldAction.objects.get(pk=first["confirmation"]["id"]), by=admin_user, reason="call"
    )
    cancelled = HeldAction.objects.get(pk=first["confirmation"]["id"])
    # Who and why go to the admin log, never to the customer's pages or mail.
    assert "admin" not in cancelled.failure and "call" not in cancelled.failure
    assert LogEntry.objects.get(object_id=str(cancelled.pk)).change_message == "cancelled: call"
    assert Notification.objects.filter(user=hanako, kind="staff_action").count() == 1
    assert actions.expire_due(now=timezone.now() + timedelta(hours=1)) == 1
    assert HeldAction.objects.get(pk=second["confirmation"]["id"]).status == "expired"
    assert sorted(Withdrawal.objects.values_list("status", flat=True)) == ["cancelled", "expired"]


def test_the_customer_cancels_from_any_session_and_nothing_moves(customer: Any, hanako: Any) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    cash = cash_of(hanako)
    action_id = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()[
        "confirmation"
    ]["id"]
    other = OrderApi()
    other.login("hanako", HANAKO_PASSWORD)
    assert other.post(f"/authguard/api/actions/{action_id}/cancel").json()["status"] == "cancelled"
    assert other.post(f"/authguard/api/actions/{action_id}/cancel").status_code == 410
    assert Withdrawal.objects.get().status == WithdrawalStatus.CANCELLED and cash_of(hanako) == cash


def test_too_many_waiting_actions_are_refused(customer: Any, hanako: Any) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    for amount in range(1, actions.MAX_PENDING + 1):
        assert (
            client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": amount}).status_code == 202
        )
    refused = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "99"})
    assert refused.status_code == 403 and refused.json()["code"] == "too_many_pending"
    assert Withdrawal.objects.count() == actions.MAX_PENDING  # the refused one left nothing behind


def test_without_an_executor_nothing_is_held(customer: Any, hanako: Any, settings: Any) -> None:
    client, _authenticator = customer
    settings.AUTHGUARD_ACTION_EXECUTOR = None
    with pytest.raises(actions.ActionsMisconfigured):
        guard_in_session(client, hanako, kind="contact_change",
                         params={"account": "1", "field": "phone", "value": "090-1234-5678"})  # fmt: skip
    assert not HeldAction.objects.exists()


# -- methods ----------------------------------------------------------------------------------------------


@pytest.fixture
def totp_customer(hanako: Any, actions_site: Any, totp_factory: Any) -> tuple[OrderApi, Any]:
    """Hanako with an authenticator app and no passkey, signed in."""
    device = totp_factory(hanako)
    device.created_at = timezone.now() - timedelta(days=30)
    client = OrderApi()
    client.login("hanako", HANAKO_PASSWORD)
    return client, device


def test_without_a_passkey_the_request_is_refused_with_a_clear_message(totp_customer: Any) -> None:
    client, _device = totp_customer
    refused = client.post("/api/bank-accounts", BANK)
    assert refused.status_code == 403 and refused.json()["code"] == "no_method"
    assert "passkey" in refused.json()["message"]
    assert not BankAccount.objects.exists()  # the pending copy was rolled back with the refusal


def test_totp_confirms_only_where_the_settings_allow_it_and_never_under_the_preset(
    totp_customer: Any, hanako: Any, actions_site: Any
) -> None:
    client, device = totp_customer
    actions_site.AUTHGUARD_ACTION_CONFIRMATION_METHODS = ["passkey", "totp"]
    body = client.post("/api/bank-accounts", BANK).json()
    assert body["confirmation"]["methods"] == ["totp"]
    action_id = body["confirmation"]["id"]
    assert client.post(f"/authguard/api/actions/{action_id}/passkey/options").json()["code"] == "method"
    bad = client.post(f"/authguard/api/actions/{action_id}/totp", {"code": "12ab"})
    assert bad.status_code == 400 and bad.json()["code"] == "malformed"
    done = client.post(f"/authguard/api/actions/{action_id}/totp", {"code": totp_token(device)})
    assert done.status_code == 200, done.content
    assert BankAccount.objects.get().status == BankAccountStatus.ACTIVE
    actions_site.AUTHGUARD_PRESET = "jsda-2025"
    refused = client.post("/api/bank-accounts", {**BANK, "account_number": "1111111"})
    assert refused.status_code == 403 and refused.json()["code"] == "no_method"


def test_wrong_codes_on_a_held_action_count_in_the_sessions_and_networks_back_off(
    totp_customer: Any, actions_site: Any
) -> None:
    """As on a held order: a held withdrawal or bank account is no cheaper place to guess authenticator
    codes. A wrong code from a session that proved no factor counts in that session's, its network's and the
    account's back-off (it counted in the account's only, before), and in the factor's record; it never
    disables the factor (a password alone must not be able to take the customer's factor away)."""
    client, device = totp_customer
    actions_site.AUTHGUARD_ACTION_CONFIRMATION_METHODS = ["passkey", "totp"]
    action_id = client.post("/api/bank-accounts", BANK).json()["confirmation"]["id"]
    right = totp_token(device)
    url = f"/authguard/api/actions/{action_id}/totp"
    wrong = client.post(url, {"code": "000000" if right != "000000" else "111111"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "wrong_code"
    scopes = {key.split(":", 1)[0] for key in FactorThrottle.objects.values_list("key", flat=True)}
    assert scopes == {"a", "s", "n"}
    record = FactorRecord.objects.get(device_id=device.persistent_id)
    assert (record.failures, record.limit_failures) == (1, 0)
    assert BankAccount.objects.get().status != BankAccountStatus.ACTIVE


def test_a_kind_the_settings_do_not_guard_is_carried_out_at_once_and_its_payee_still_waits(
    customer: Any, hanako: Any, actions_site: Any
) -> None:
    client, _authenticator = customer
    actions_site.AUTHGUARD_ACTION_GUARDED_KINDS = ["withdrawal"]
    added = client.post("/api/bank-accounts", BANK)
    assert added.status_code == 201 and added.json()["bank_account"]["status"] == "active"
    bank_id = added.json()["bank_account"]["bank_account_id"]
    assert RegisteredPayee.objects.get(ref=str(bank_id)).registered_at > timezone.now() - timedelta(minutes=1)
    refused = client.post("/api/withdrawals", {"bank_account_id": bank_id, "amount": "1000"})
    assert refused.status_code == 403 and refused.json()["code"] == "payee_on_hold"
    # The preset guards every kind, whatever the setting says.
    actions_site.AUTHGUARD_PRESET = "jsda-2025"
    assert client.post("/api/bank-accounts", {**BANK, "account_number": "2222222"}).status_code == 202


# -- payees ----------------------------------------------------------------------------------------------


def test_a_removed_or_changed_payee_receives_nothing(customer: Any, hanako: Any) -> None:
    client, authenticator = customer
    bank = old_bank_account(hanako)
    cash = cash_of(hanako)
    action_id = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()[
        "confirmation"
    ]["id"]
    # The account's details change under the held withdrawal (a new registration of the same row).
    actions.register_payee(user=hanako, ref=str(bank.pk), details={**BANK, "account_number": "9999999"},
                           registered_at=timezone.now() - timedelta(days=10))  # fmt: skip
    response = confirm_action(client, action_id, authenticator)
    assert response.status_code == 400 and response.json()["code"] == "payee_changed"
    assert Withdrawal.objects.get().status == WithdrawalStatus.FAILED and cash_of(hanako) == cash
    assert actions.remove_payee(user=hanako, ref=str(bank.pk))
    refused = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"})
    assert refused.status_code == 403 and refused.json()["code"] == "unknown_payee"


def test_a_contact_change_is_held_and_once_carried_out_starts_the_cooling_off(
    customer: Any, hanako: Any, settings: Any
) -> None:

    from .test_battery_actions import RecordingExecutor

    settings.AUTHGUARD_ACTION_EXECUTOR = "tests.test_battery_actions.recording_executor"
    RecordingExecutor.done = []
    client, authenticator = customer
    held = guard_in_session(client, hanako, kind="contact_change",
                            params={"account": "1", "field": "phone", "value": "090-1234-5678"})  # fmt: skip
    assert held.as_json()["summary"] == "Change your phone number to 090-1234-5678."
    assert not inventory.in_cooling_off(hanako)
    assert confirm_action(client, str(held.action.pk), authenticator).status_code == 200
    assert RecordingExecutor.done == [{"account": "1", "field": "phone", "value": "090-1234-5678"}]
    assert inventory.in_cooling_off(hanako)


def test_notices_also_go_to_the_previous_address_during_a_cooling_off(customer: Any, hanako: Any) -> None:
    from authguard.factors import lifecycle
    from authguard.models import PreviousEmail

    client, _authenticator = customer
    bank = old_bank_account(hanako)
    lifecycle.note_contact_changed(hanako, old_email="old@example.com")
    assert list(PreviousEmail.objects.filter(account_id=hanako.pk).values_list("email", flat=True)) == [
        "old@example.com"
    ]
    client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"})
    sent = set(Notification.objects.filter(kind="action_held").values_list("to_email", flat=True))
    assert sent == {"hanako@example.com", "old@example.com"}


def test_the_held_notice_renders_without_links(customer: Any, hanako: Any) -> None:
    from authguard.notifications.messages import render

    client, _authenticator = customer
    bank = old_bank_account(hanako)
    client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"})
    subject, body = render(Notification.objects.get(kind="action_held"))
    assert "waiting for your confirmation" in subject and "Withdraw ¥1,000 to Mizuho Bank" in body


# -- malformed input: 4xx, never 500 ----------------------------------------------------------------------


def test_the_action_api_answers_malformed_requests_with_4xx(customer: Any, hanako: Any) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    action_id = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()[
        "confirmation"
    ]["id"]
    assert client.post("/authguard/api/actions/not-a-uuid/passkey/options").status_code == 404
    assert (
        client.post("/authguard/api/actions/00000000-0000-0000-0000-000000000000/cancel").status_code == 404
    )
    assert client.get(f"/authguard/api/actions/{action_id}/passkey").status_code == 405
    raw = client.client.post(f"/authguard/api/actions/{action_id}/passkey", data="{nope",
                             content_type="application/json", HTTP_X_CSRFTOKEN=client.token)  # fmt: skip
    assert raw.status_code == 400
    for body in ({}, {"response": "x"}, {"id": "x", "rawId": "x", "type": "public-key", "response": {}}):
        assert client.post(f"/authguard/api/actions/{action_id}/passkey", body).status_code == 400
    assert client.post(f"/authguard/api/actions/{action_id}/totp", {"code": ["1"]}).status_code == 400
    anonymous = Client()
    assert anonymous.post(f"/authguard/api/actions/{action_id}/cancel").status_code in (401, 403)
    assert HeldAction.objects.get(pk=action_id).status == "pending"


@pytest.mark.parametrize(
    "body",
    [
        {"bank_account_id": 1, "amount": 1.5},
        {"bank_account_id": 1, "amount": True},
        {"bank_account_id": 1, "amount": "1e3"},
        {"bank_account_id": 1, "amount": "-1"},
        {"bank_account_id": "1" * 40, "amount": "1"},
        {"bank_account_id": None, "amount": "1"},
        {"bank_account_id": 1, "amount": "99999999999999"},
        {"bank_account_id": 1, "amount": "1", "to": "attacker"},
    ],
)
def test_the_withdrawal_api_refuses_malformed_bodies(
    customer: Any, hanako: Any, body: dict[str, Any]
) -> None:
    client, _authenticator = customer
    old_bank_account(hanako)
    response = client.post("/api/withdrawals", body)
    assert response.status_code == 400 and response.json()["status"] == "invalid"
    assert not Withdrawal.objects.exists() and not HeldAction.objects.exists()


def test_money_goes_only_to_the_customers_own_accounts_and_only_what_she_has(
    customer: Any, hanako: Any, user_factory: Any
) -> None:
    from demo_site.brokerage import services

    client, _authenticator = customer
    other = services.open_account(
        "taro", "pw-taro-2025", email="taro@example.com", cash=Decimal(10), holdings={}
    )
    theirs = old_bank_account(other)
    mine = old_bank_account(hanako)
    assert client.post("/api/withdrawals", {"bank_account_id": theirs.pk, "amount": "1"}).status_code == 400
    too_much = client.post(
        "/api/withdrawals", {"bank_account_id": mine.pk, "amount": str(cash_of(hanako) + 1)}
    )
    assert too_much.status_code == 400 and "amount" in too_much.json()["errors"]
    assert client.client.post("/api/withdrawals", data="x", content_type="text/plain",
                              HTTP_X_CSRFTOKEN=client.token).status_code == 415  # fmt: skip
    long_number = client.post("/api/bank-accounts", {**BANK, "account_number": "12345678"})
    assert long_number.status_code == 400 and "account_number" in long_number.json()["errors"]
    bad_bank = client.post("/api/bank-accounts", {**BANK, "bank_code": "12"})
    assert bad_bank.status_code == 400 and "bank_code" in bad_bank.json()["errors"]
    assert client.post("/api/bank-accounts", {**BANK, "iban": "x"}).status_code == 400
    listed = client.get("/api/bank-accounts").json()["bank_accounts"]
    assert [b["account_number"] for b in listed] == ["****567"]  # masked, and only hers
    assert Client().get("/api/withdrawals").status_code == 401


# -- HTML pages --------------------------------------------------------------------------------------------


@pytest.fixture
def page_client(customer: Any) -> Any:
    """The customer's signed-in session as a plain test client (CSRF not enforced, like a form post)."""
    client, _authenticator = customer
    client.client.handler.enforce_csrf_checks = False
    return client.client


def test_the_money_page_withdraws_through_the_confirmation_page(page_client: Any, hanako: Any) -> None:
    bank = old_bank_account(hanako)
    page = page_client.get("/money/")
    assert page.status_code == 200 and b"Mizuho Bank" in page.content
    response = page_client.post("/money/", {"bank_account": bank.pk, "amount": "20000"})
    held = HeldAction.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/authguard/actions/{held.pk}/"
    confirm = page_client.get(response["Location"])
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert 'id="confirm-passkey-button"' in text and "Withdraw ¥20,000 to Mizuho Bank" in text
    assert f'data-options-url="/authguard/api/actions/{held.pk}/passkey/options"' in text
    listing = page_client.get("/money/").content.decode()
    assert f'id="confirm-withdrawal-{Withdrawal.objects.get().pk}"' in listing
    cancelled = page_client.post(response["Location"], {"action": "cancel"})
    assert cancelled.status_code == 302 and HeldAction.objects.get().status == "cancelled"
    again = page_client.post(response["Location"], {"action": "cancel"})
    assert again.status_code == 410
    assert page_client.post(response["Location"], {"action": "nonsense"}).status_code in (400, 410)
    assert page_client.get("/authguard/actions/not-a-uuid/").status_code == 404


def test_the_money_pages_refuse_bad_forms_and_say_why(page_client: Any, hanako: Any) -> None:
    bank = old_bank_account(hanako)
    assert page_client.post("/money/", {"bank_account": bank.pk, "amount": "abc"}).status_code == 400
    assert page_client.post("/money/", {"bank_account": "999", "amount": "5"}).status_code == 400
    refused = page_client.post("/money/bank-accounts/add/", {**BANK, "account_number": "12"})
    assert refused.status_code == 400 and not BankAccount.objects.exclude(pk=bank.pk).exists()
    added = page_client.post("/money/bank-accounts/add/", {**BANK, "account_number": "7777777"})
    assert added.status_code == 302 and added["Location"].startswith("/authguard/actions/")
    new = BankAccount.objects.get(account_number="7777777")
    assert new.status == BankAccountStatus.PENDING
    # Not registered yet: it cannot be chosen for a withdrawal.
    assert page_client.post("/money/", {"bank_account": new.pk, "amount": "5"}).status_code == 400
    assert page_client.get("/money/bank-accounts/add/").status_code == 200


def test_another_session_sees_the_page_but_cannot_confirm(customer: Any, hanako: Any) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    url = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()[
        "confirmation"
    ]["url"]
    other = OrderApi()
    other.login("hanako", HANAKO_PASSWORD)
    page = other.get(url).content.decode()
    assert 'id="confirm-other-session"' in page and "confirm-passkey-button" not in page
    assert Client().get(url).status_code == 302  # anonymous: to the login page


# -- system checks (authguard.E130-E133) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("AUTHGUARD_ACTION_EXECUTOR", "demo_site.brokerage.money.nothing_here", "authguard.E130"),
        ("AUTHGUARD_ACTION_EXECUTOR", "demo_site.brokerage.money.money", "authguard.E130"),  # no execute()
        ("AUTHGUARD_ACTION_CONFIRMATION_METHODS", ["sms"], "authguard.E131"),
        ("AUTHGUARD_ACTION_CONFIRMATION_METHODS", [], "authguard.E131"),
        ("AUTHGUARD_ACTION_GUARDED_KINDS", ["withdrawal", "order"], "authguard.E132"),
        ("AUTHGUARD_ACTION_CONFIRMATION_SECONDS", 5, "authguard.E133"),
        ("AUTHGUARD_NEW_PAYEE_HOLD_HOURS", "72", "authguard.E133"),
    ],
)
def test_bad_action_settings_fail_their_check(settings: Any, name: str, value: Any, code: str) -> None:
    from django.core.checks import run_checks

    def ids() -> set[str]:
        return {m.id for m in run_checks(tags=["security"]) if m.id and m.id.startswith("authguard.E13")}

    settings.AUTHGUARD_ACTION_EXECUTOR = "demo_site.brokerage.money.action_executor"
    assert ids() == set()
    setattr(settings, name, value)
    assert code in ids()


def test_staff_review_held_actions_in_the_admin_and_cancel_with_a_reason(
    customer: Any, hanako: Any, admin_user: Any
) -> None:
    from authguard.actions import admin as actions_admin  # noqa: F401 (registers, until authguard.admin does)

    from .staff_fixtures import staff_client

    admin_client = staff_client(admin_user)
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    action_id = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()[
        "confirmation"
    ]["id"]
    listing = admin_client.get("/admin/authguard/heldaction/")
    assert listing.status_code == 200 and b"Withdraw" in listing.content
    page = admin_client.get(f"/admin/authguard/heldaction/{action_id}/change/")
    assert page.status_code == 200 and b"session_binding" not in page.content
    done = admin_client.post(
        "/admin/authguard/heldaction/",
        {"action": "cancel_held", "_selected_action": [action_id], "reason": "customer called", "apply": "1"},
    )
    assert done.status_code in (200, 302)
    assert HeldAction.objects.get(pk=action_id).status == "cancelled"
    assert Withdrawal.objects.get().status == WithdrawalStatus.CANCELLED
    assert admin_client.get("/admin/authguard/registeredpayee/").status_code == 200


JUNK: list[Any] = [
    None,
    [],
    {},
    "",
    " ",
    "\x00",
    "\ud800",
    "１２３４",
    1e308,
    -1,
    True,
    "a" * 5000,
    {"a": [1]},
]


def test_junk_in_any_field_of_the_money_api_answers_4xx_and_writes_nothing(
    customer: Any, hanako: Any
) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    for junk in JUNK:
        for field in [*BANK]:
            if junk == "１２３４" and field in ("bank_name", "holder_name"):
                continue  # full-width digits are a fine bank or holder name
            response = client.post("/api/bank-accounts", {**BANK, field: junk})
            assert 400 <= response.status_code < 500, (field, junk, response.content)
        for body in ({"bank_account_id": junk, "amount": "5"}, {"bank_account_id": bank.pk, "amount": junk}):
            response = client.post("/api/withdrawals", body)
            assert 400 <= response.status_code < 500, (body, response.content)
    assert not HeldAction.objects.exists() and not Withdrawal.objects.exists()
    assert BankAccount.objects.count() == 1


def test_asking_costs_a_constant_number_of_queries_whatever_the_history(customer: Any, hanako: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client, _authenticator = customer
    bank = old_bank_account(hanako)

    def ask() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "10"})
        assert response.status_code == 202
        HeldAction.objects.filter(status="pending").update(status="cancelled")
        return len(queries)

    ask()  # the first request of a session creates its rows once
    second = ask()
    for _ in range(30):
        ask()
    assert ask() == second, second


def test_the_money_and_confirmation_pages_render_in_japanese(
    page_client: Any, hanako: Any, settings: Any
) -> None:
    bank = old_bank_account(hanako)
    page_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    page = page_client.get("/money/").content.decode()
    assert '<html lang="ja">' in page and "Mizuho Bank" in page
    response = page_client.post("/money/", {"bank_account": bank.pk, "amount": "500000"})
    confirm = page_client.get(response["Location"]).content.decode()
    assert '<html lang="ja">' in confirm and "500,000円" in confirm


def test_the_portfolio_page_lists_what_waits_for_confirmation(customer: Any, hanako: Any) -> None:
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    withdrawal = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "1000"}).json()
    sold = client.order("sell", "9432", 2000)
    assert sold.status_code == 202, sold.content
    order_id = sold.json()["confirmation"]["id"]
    page = client.get(reverse("brokerage:portfolio"))
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="waiting"' in html
    assert f"/authguard/confirmations/{order_id}/" in html
    assert f"/authguard/actions/{withdrawal['confirmation']['id']}/" in html
    # What can no longer be confirmed is not offered: after the deadline the section is gone.
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=False):
        later = client.get(reverse("brokerage:portfolio"))
    assert later.status_code == 200 and 'data-testid="cash"' in later.content.decode()
    assert 'data-testid="waiting"' not in later.content.decode()
    assert HeldOrder.objects.get(pk=order_id).status == "expired"
    assert HeldAction.objects.get(pk=withdrawal["confirmation"]["id"]).status == "expired"
