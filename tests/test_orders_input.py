"""Malformed input to the guarded order entry and the confirmation API: 4xx with a message, never a 500."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from authguard.models import HeldOrder
from demo_site.brokerage import services
from demo_site.brokerage.models import Account

from .conftest import OrderApi

PASSWORD = "hanako-test-2025"


@pytest.fixture
def held(db: Any, order_api: Any, authenticator: Any) -> tuple[OrderApi, str]:
    services.sync_instruments()
    services.open_account(
        "hanako", PASSWORD, email="h@example.com", cash=Decimal(0), holdings={"AAPL": 10, "7203": 10}
    )
    client = order_api()
    client.login("hanako", PASSWORD)
    client.register_passkey(authenticator)
    answer = client.order("sell", "AAPL", 10)
    assert answer.status_code == 202
    return client, answer.json()["confirmation"]["id"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '{"id": 5}',
        '{"id": "x", "rawId": "x", "type": "public-key", "response": "nope"}',
        '{"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": "%%%"}}',
        '{"response": {"clientDataJSON": "e30"}}',
        "{" * 5000,
    ],
)
def test_malformed_passkey_confirmations_answer_400_and_change_nothing(
    held: tuple[OrderApi, str], body: str
) -> None:
    client, confirmation_id = held
    client.post(f"/authguard/api/confirmations/{confirmation_id}/passkey/options")
    response = client.client.post(
        f"/authguard/api/confirmations/{confirmation_id}/passkey",
        data=body,
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.token,
    )
    assert response.status_code == 400 and response.json()["message"]
    assert HeldOrder.objects.get(pk=confirmation_id).status == HeldOrder.Status.PENDING


@pytest.mark.parametrize("code", [None, 123456, "", "abc", "1" * 50, ["123456"], {"a": 1}])
def test_malformed_totp_confirmations_answer_400(held: tuple[OrderApi, str], code: Any) -> None:
    client, confirmation_id = held
    response = client.post(f"/authguard/api/confirmations/{confirmation_id}/totp", {"code": code})
    assert response.status_code == 400 and response.json()["message"]


@pytest.mark.parametrize(
    "confirmation_id", ["0", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "é" * 40]
)
def test_unknown_confirmations_answer_404(held: tuple[OrderApi, str], confirmation_id: str) -> None:
    client, _ = held
    response = client.post(f"/authguard/api/confirmations/{confirmation_id}/passkey/options")
    assert response.status_code == 404 and response.json()["status"] == "not_found"
    assert client.get(f"/authguard/confirmations/{confirmation_id}/").status_code == 404


def test_anonymous_callers_and_wrong_methods(held: tuple[OrderApi, str]) -> None:
    _client, confirmation_id = held
    anonymous = Client()
    assert anonymous.post(f"/authguard/api/confirmations/{confirmation_id}/cancel").status_code == 401
    page = anonymous.get(f"/authguard/confirmations/{confirmation_id}/")
    assert page.status_code == 302 and "/login/" in page["Location"]
    assert _client.get(f"/authguard/api/confirmations/{confirmation_id}/totp").status_code == 405


def test_a_deny_rule_answers_403_and_records_nothing(held: tuple[OrderApi, str], settings: Any) -> None:
    client, _ = held
    settings.AUTHGUARD_ORDER_RULES = [
        {"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {"action": "deny"}}
    ]
    before = Account.objects.get(user__username="hanako").positions.count()
    response = client.order("sell", "7203", 10)
    assert response.status_code == 403 and response.json()["status"] == "denied"
    assert response.json()["reasons"] == ["mass_liquidation"]
    assert Account.objects.get(user__username="hanako").positions.count() == before
    assert HeldOrder.objects.count() == 1  # only the fixture's


def test_cancel_twice_answers_410(held: tuple[OrderApi, str]) -> None:
    client, confirmation_id = held
    assert client.post(f"/authguard/api/confirmations/{confirmation_id}/cancel").status_code == 200
    assert client.post(f"/authguard/api/confirmations/{confirmation_id}/cancel").status_code == 410
