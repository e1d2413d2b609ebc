"""Sensitive actions under real parallelism (row locks): a confirmation is carried out exactly once, and two
withdrawals confirmed at the same moment never pay out more than the account holds.

Marked ``postgres``: SQLite has no row locks to test. Run with ``AUTHGUARD_TEST_DB=postgres
AUTHGUARD_TEST_DATABASE_URL=postgres://...``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from authguard.models import HeldAction
from authguard.testing import SoftAuthenticator
from demo_site.brokerage.models import Withdrawal, WithdrawalStatus

from .actions_support import *  # noqa: F403
from .actions_support import cash_of, old_bank_account
from .conftest import OrderApi
from .test_orders_concurrency import in_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def twin(api: OrderApi) -> Client:
    """Another connection of the same browser session (same cookies), for a parallel request."""
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=api.client.defaults.get("HTTP_USER_AGENT", ""))
    client.cookies = api.client.cookies
    return client


def post(client: Client, token: str, path: str, body: Any) -> int:
    import json

    response = client.post(
        path, data=json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    return int(response.status_code)


def test_the_same_confirmation_sent_twice_at_once_pays_once(
    customer: tuple[OrderApi, SoftAuthenticator], hanako: Any
) -> None:
    client, authenticator = customer
    bank = old_bank_account(hanako)
    cash = cash_of(hanako)
    action_id = client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "400000"}).json()[
        "confirmation"
    ]["id"]
    options = client.post(f"/authguard/api/actions/{action_id}/passkey/options").json()
    assertion = authenticator.get(options)
    path = f"/authguard/api/actions/{action_id}/passkey"
    twins = [twin(client) for _ in range(4)]
    statuses = in_parallel([lambda c=c: post(c, client.token, path, assertion) for c in twins])
    assert sorted(statuses).count(200) == 1, statuses
    assert all(s in (200, 400, 410) for s in statuses), statuses
    assert cash_of(hanako) == cash - Decimal("400000")
    assert Withdrawal.objects.get().status == WithdrawalStatus.COMPLETED
    assert HeldAction.objects.get().status == "confirmed"


def test_two_withdrawals_confirmed_at_once_never_overdraw(
    customer: tuple[OrderApi, SoftAuthenticator], hanako: Any
) -> None:
    client, authenticator = customer
    bank = old_bank_account(hanako)
    cash = cash_of(hanako)  # ¥1,000,000
    ids = [
        client.post("/api/withdrawals", {"bank_account_id": bank.pk, "amount": "700000"}).json()[
            "confirmation"
        ]["id"]
        for _ in range(2)
    ]
    assertions = []
    for action_id in ids:
        options = client.post(f"/authguard/api/actions/{action_id}/passkey/options").json()
        assertions.append(authenticator.get(options))
    jobs = [
        (twin(client), f"/authguard/api/actions/{i}/passkey", a) for i, a in zip(ids, assertions, strict=True)
    ]
    calls = [lambda c=c, p=p, a=a: post(c, client.token, p, a) for c, p, a in jobs]
    statuses = in_parallel(calls)
    assert sorted(statuses) == [200, 400], statuses
    assert cash_of(hanako) == cash - Decimal("700000")
    assert sorted(Withdrawal.objects.values_list("status", flat=True)) == ["completed", "failed"]
