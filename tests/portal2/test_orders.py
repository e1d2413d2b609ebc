"""The order guard on portal two: the portal's own order entry (DRF, session or token) submits through
``authguard.orders.guard.submit_order`` with its three hooks; a mass liquidation is held, only the customer's
passkey confirms it, and the portal's executor places the stored order once (the demo's twin:
tests/test_orders_acceptance.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.models import GuardedOrder, GuardStatus, HeldOrder, Notification
from authguard.orders import guard
from authguard.testing import SoftAuthenticator

from ..conftest import IP_TOKYO, UA_CHROME_WIN, totp_token
from .accounts import trading
from .accounts.models import Account, Order
from .support import ORIGIN, browser, give_passkey, post_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: ¥285,000 + ¥305,000 + ¥340,000 + ¥294,000 = ¥1,224,000 of holdings.
HOLDINGS = {"7203": 100, "9432": 2000, "6758": 100, "9984": 30}


@pytest.fixture
def customer(user_factory: Any, totp_factory: Any) -> Any:
    user = user_factory("hanako", cash=500_000, holdings=HOLDINGS)
    user.totp = totp_factory(user)
    user.authenticator = give_passkey(user)  # her laptop's passkey, registered a month ago
    return user


def signed_in_at_home(customer: Any) -> Client:
    """Hanako's own browser at home, signed in a second time (a known device: no risky-session limits)."""
    client = browser(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in(customer.email).url == "/"
    client.post("/logout/")
    assert client.sign_in(customer.email).url == "/"
    return client


def order(client: Client, side: str, symbol: str, quantity: Any) -> Any:
    return post_json(client, "/api/v1/orders", {"side": side, "symbol": symbol, "quantity": quantity})


def confirm_with_passkey(client: Client, confirmation: str, authenticator: SoftAuthenticator) -> Any:
    options = client.post(f"/authguard/api/confirmations/{confirmation}/passkey/options")
    assert options.status_code == 200, options.content
    return post_json(
        client, f"/authguard/api/confirmations/{confirmation}/passkey", authenticator.get(options.json())
    )


def test_a_mass_liquidation_is_held_and_only_the_customers_passkey_executes_it(customer: Any) -> None:
    client = signed_in_at_home(customer)
    answers = [(symbol, order(client, "sell", symbol, quantity)) for symbol, quantity in HOLDINGS.items()]
    statuses = [answer.json()["status"] for _symbol, answer in answers]
    # Toyota and NTT (48 % of the holdings) are placed; Sony would take the day's sells past half: held.
    assert statuses == ["placed", "placed", "held", "held"]
    first_held = 2
    symbol, held_answer = answers[first_held]
    body = held_answer.json()
    assert held_answer.status_code == 202
    assert body["confirmation"]["methods"] == ["passkey"]  # a customer with a passkey confirms with it
    assert body["confirmation"]["reasons"][:1] == ["mass_liquidation"]
    # The customer reads the instrument's name from the portal's hook and the amounts from its portfolio.
    assert body["confirmation"]["summary"].startswith(
        "Sell 100 of 6758 Sony Group (¥340,000). With it you would sell 3 of your 4 holdings within 24 hours"
    )
    assert Order.objects.get(pk=body["order_id"]).status == Order.Status.HELD
    assert trading.holdings_of(customer)[symbol] == HOLDINGS[symbol]  # nothing moved
    assert Notification.objects.filter(user=customer, kind="order_held").count() == len(HOLDINGS) - first_held

    confirmation = body["confirmation"]["id"]
    relayed = post_json(
        client, f"/authguard/api/confirmations/{confirmation}/totp", {"code": totp_token(customer.totp)}
    )
    assert relayed.status_code == 400  # a relayable code does not confirm for a passkey customer
    thief = SoftAuthenticator(origin=ORIGIN, rp_id="localhost")
    thief.create({"rp": {"id": "localhost"}, "user": {"id": "dGhpZWY"}, "challenge": "AAAA"})
    options = client.post(f"/authguard/api/confirmations/{confirmation}/passkey/options").json()
    forged = post_json(
        client,
        f"/authguard/api/confirmations/{confirmation}/passkey",
        thief.get({**options, "allowCredentials": []}),
    )
    assert forged.status_code == 400
    assert trading.holdings_of(customer)[symbol] == HOLDINGS[symbol]

    cash = Account.objects.get(user=customer).cash
    confirmed = confirm_with_passkey(client, confirmation, customer.authenticator)
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "confirmed"
    assert symbol not in trading.holdings_of(customer)
    price = trading.INSTRUMENTS[symbol][1]
    assert Account.objects.get(user=customer).cash == cash + price * HOLDINGS[symbol]
    placed = Order.objects.get(pk=body["order_id"])
    assert placed.status == Order.Status.PLACED and placed.executed_at is not None
    held = HeldOrder.objects.get(pk=confirmation)
    assert held.status == HeldOrder.Status.CONFIRMED and held.confirmed_method == "passkey"
    assert held.guarded.status == GuardStatus.PLACED
    # Once only: the confirmation is spent.
    assert client.post(f"/authguard/api/confirmations/{confirmation}/passkey/options").status_code == 410
    listed = client.get("/api/v1/orders").json()["orders"]
    assert [o["status"] for o in listed] == ["placed", "placed", "placed", "held"]


def test_an_illiquid_pivot_is_held(customer: Any) -> None:
    client = signed_in_at_home(customer)
    buy = order(client, "buy", "3xZ9", 1000)  # ¥410,000 of a stock trading ¥16 million a day
    assert buy.status_code == 202, buy.content
    assert any(
        code.startswith(("illiquid", "exposure_illiquid")) for code in buy.json()["confirmation"]["reasons"]
    )
    assert "3xZ9" not in trading.holdings_of(customer)
    assert GuardedOrder.objects.get().status == GuardStatus.HELD


def test_a_held_order_cancelled_or_expired_closes_the_portals_copy(customer: Any) -> None:
    client = signed_in_at_home(customer)
    first = order(client, "buy", "3xZ9", 1000).json()
    cancelled = client.post(f"/authguard/api/confirmations/{first['confirmation']['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.content
    assert Order.objects.get(pk=first["order_id"]).status == Order.Status.CANCELLED
    second = order(client, "buy", "3xZ9", 1000).json()
    assert second["status"] == "held"
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=6), tick=False):
        assert guard.expire_due() == 1
    assert Order.objects.get(pk=second["order_id"]).status == Order.Status.EXPIRED
    assert HeldOrder.objects.get(pk=second["confirmation"]["id"]).status == HeldOrder.Status.EXPIRED


def test_another_session_of_the_customer_cannot_confirm(customer: Any) -> None:
    client = signed_in_at_home(customer)
    held = order(client, "buy", "3xZ9", 1000).json()["confirmation"]["id"]
    other = signed_in_at_home(customer)
    assert other.post(f"/authguard/api/confirmations/{held}/passkey/options").status_code == 404


BAD_ORDERS = [
    {},
    {"side": "short", "symbol": "7203", "quantity": 1},
    {"side": "buy", "symbol": "NOPE", "quantity": 1},
    {"side": "buy", "symbol": "7203", "quantity": 0},
    {"side": "buy", "symbol": "7203", "quantity": "1"},
    {"side": "buy", "symbol": "7203", "quantity": True},
    {"side": "buy", "symbol": "7203", "quantity": 10**30},
    {"side": "buy", "symbol": ["7203"], "quantity": 1},
    {"side": "sell", "symbol": "8306", "quantity": 1},  # not held
    {"side": "buy", "symbol": "9984", "quantity": 1000},  # ¥9.8 million with ¥500,000 cash
]


@pytest.mark.parametrize("body", BAD_ORDERS)
def test_malformed_or_impossible_orders_are_a_400_and_change_nothing(customer: Any, body: Any) -> None:
    client = signed_in_at_home(customer)
    answer = post_json(client, "/api/v1/orders", body)
    assert answer.status_code == 400 and answer.json()["status"] == "invalid", answer.content
    assert trading.holdings_of(customer) == HOLDINGS
    assert Account.objects.get(user=customer).cash == Decimal(500_000)
    # An order the portal could not place leaves nothing half-written in the guard's ledger either.
    assert not Order.objects.exists() and not GuardedOrder.objects.exists()


@pytest.mark.parametrize("raw", [b"", b"[]", b"{", b"\xff\xfe", b'{"side": {"a": [1]}}'])
def test_malformed_bodies_are_a_4xx(customer: Any, raw: bytes) -> None:
    client = signed_in_at_home(customer)
    answer = client.post("/api/v1/orders", raw, content_type="application/json")
    assert 400 <= answer.status_code < 500, answer.content
    assert not Order.objects.exists() and not GuardedOrder.objects.exists()


def test_the_portal_hooks_value_the_account(customer: Any) -> None:
    snapshot = trading.guard_portfolio(customer)
    assert snapshot.cash == Decimal(500_000) and snapshot.holdings_value == Decimal(1_224_000)
    assert trading.guard_instrument("NOPE") is None
    assert json.dumps(guard.confirmation_methods(customer)) == '["passkey"]'
