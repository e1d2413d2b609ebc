"""Fixtures and helpers of the sensitive-action tests (``test_actions.py``, ``test_battery_actions.py``).

``actions_site`` mounts authguard's action URLs (``tests.actions_urlconf``), names the demo's executor and
sets the WebAuthn RP of the software authenticator. Import the fixtures with
``from .actions_support import *  # noqa: F403``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory
from django.utils import timezone

from authguard.actions import flow as actions
from authguard.models import HeldAction
from authguard.testing import SoftAuthenticator
from demo_site.brokerage.models import Account, BankAccount, BankAccountStatus

from .conftest import HANAKO_PASSWORD, OrderApi

__all__ = [
    "BANK",
    "HANAKO_PASSWORD",
    "actions_site",
    "cash_of",
    "confirm_action",
    "customer",
    "guard_in_session",
    "old_bank_account",
]

#: A Japanese bank account as the demo's form sends it.
BANK = {
    "bank_code": "0001",
    "bank_name": "Mizuho Bank",
    "branch_code": "123",
    "account_type": "ordinary",
    "account_number": "1234567",
    "holder_name": "YAMADA HANAKO",
}
#: The receiving account of a securities transfer out (its fields, as a bank account's).
OTHER_BROKER = {
    "broker_code": "0001",
    "broker_name": "Other Securities",
    "branch_code": "123",
    "account_number": "9876543",
}


@pytest.fixture
def actions_site(settings: Any) -> Any:
    """authguard's action URLs mounted, the demo's executor named, the software authenticator's RP set, and
    logins allowed outright (no risk signal scores them)."""
    settings.ROOT_URLCONF = "tests.actions_urlconf"
    settings.AUTHGUARD_ACTION_EXECUTOR = "demo_site.brokerage.money.action_executor"
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    settings.AUTHGUARD_RISK_SIGNALS = []
    return settings


@pytest.fixture
def customer(hanako: Any, actions_site: Any) -> tuple[OrderApi, SoftAuthenticator]:
    """Hanako signed in through the demo's JSON API from her usual browser, with her passkey registered."""
    authenticator = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    client = OrderApi()
    client.login_usual("hanako", HANAKO_PASSWORD)
    client.register_passkey(authenticator)
    return client, authenticator


def cash_of(user: Any) -> Decimal:
    return Account.objects.get(user=user).cash


def old_bank_account(user: Any, *, days: int = 30, **details: Any) -> BankAccount:
    """A bank account the customer registered ``days`` ago (active, known to authguard since then)."""
    fields = {**BANK, **details}
    bank = BankAccount.objects.create(
        account=Account.objects.get(user=user),
        status=BankAccountStatus.ACTIVE,
        activated_at=timezone.now() - timedelta(days=days),
        **fields,
    )
    actions.register_payee(
        user=user, ref=str(bank.pk), details=fields, registered_at=timezone.now() - timedelta(days=days)
    )
    return bank


def confirm_action(
    client: OrderApi, action_id: str, authenticator: SoftAuthenticator, **overrides: Any
) -> Any:
    """Ask for passkey options bound to the action, sign them, send the assertion; the response."""
    options = client.post(f"/authguard/api/actions/{action_id}/passkey/options")
    assert options.status_code == 200, options.content
    return client.post(
        f"/authguard/api/actions/{action_id}/passkey", authenticator.get(options.json(), **overrides)
    )


def guard_in_session(
    client: OrderApi, user: Any, *, kind: str, params: dict[str, Any], now: datetime | None = None
) -> actions.Allowed[Any] | actions.Held:
    """Call :func:`authguard.actions.flow.guard` as a view of ``client``'s session would (the session is
    saved, so
    the binding token is there for the client's next request)."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    request = RequestFactory().post("/")
    request.user = user
    request.session = store(session_key=client.client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    outcome = actions.guard(request, kind=kind, params=params, now=now)
    request.session.save()
    return outcome


def pending_ids(user: Any) -> list[str]:
    return [
        str(pk) for pk in HeldAction.objects.filter(user=user, status="pending").values_list("pk", flat=True)
    ]
