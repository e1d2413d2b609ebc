"""Issue 11, holds a customer can handle: one passkey confirmation for a batch of held orders, bound to the
exact set (dynamic linking over the set)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from authguard.models import HeldOrder
from demo_site.brokerage import services
from demo_site.brokerage.models import Order, OrderStatus

from .conftest import OrderApi, bind_passkey

PASSWORD = "batch-seller-2025"
HOLDINGS = {"7203": 1000, "6758": 500, "8306": 1000, "9432": 8000, "AAPL": 20}
OPTIONS = "/authguard/api/confirmations/batch/passkey/options"
CONFIRM = "/authguard/api/confirmations/batch/passkey"


def seller(order_api: Any, authenticator: Any) -> tuple[Any, OrderApi, list[str]]:
    """A customer selling everything: the sells past the limit are held; their confirmation ids."""
    services.sync_instruments()
    user = services.open_account(
        "kimura", PASSWORD, email="kimura@example.jp", cash=Decimal(0), holdings=HOLDINGS
    )
    bind_passkey(user, authenticator)
    client = order_api()
    client.login("kimura", PASSWORD)
    answers = [client.order("sell", symbol, quantity).json() for symbol, quantity in HOLDINGS.items()]
    ids = [a["confirmation"]["id"] for a in answers if a["status"] == "held"]
    assert len(ids) >= 2
    return user, client, ids


def test_one_passkey_confirmation_executes_the_whole_batch(order_api: Any, authenticator: Any) -> None:
    user, client, ids = seller(order_api, authenticator)
    options = client.post(OPTIONS, {"ids": ids})
    assert options.status_code == 200, options.content
    response = client.post(CONFIRM, {"ids": ids, "credential": authenticator.get(options.json())})
    assert response.status_code == 200, response.content
    body = response.json()
    assert sorted(c["id"] for c in body["confirmed"]) == sorted(ids) and body["failed"] == []
    assert services.portfolio(user).holdings == []
    assert set(HeldOrder.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"confirmed"}
    assert not Order.objects.filter(account__user=user, status=OrderStatus.HELD).exists()
    # Single use: the same assertion again confirms nothing.
    again = client.post(CONFIRM, {"ids": ids, "credential": authenticator.get(options.json())})
    assert again.status_code == 410


def test_a_signature_over_one_set_confirms_no_other_set(order_api: Any, authenticator: Any) -> None:
    user, client, ids = seller(order_api, authenticator)
    before = services.portfolio(user).holdings
    options = client.post(OPTIONS, {"ids": ids[:2]}).json()
    signed = authenticator.get(options)
    for other in (ids, ids[:1]):  # one order more, one less
        response = client.post(CONFIRM, {"ids": other, "credential": signed})
        assert response.status_code == 400 and response.json()["code"] == "challenge"
    assert services.portfolio(user).holdings == before
    assert set(HeldOrder.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"pending"}


def test_a_batch_answers_malformed_or_foreign_ids_without_a_500(order_api: Any, authenticator: Any) -> None:
    _user, client, ids = seller(order_api, authenticator)
    for body in ({}, {"ids": "all"}, {"ids": []}, {"ids": [1, 2]}, {"ids": [ids[0], ids[0]]}):
        assert client.post(OPTIONS, body).status_code == 400, body
    assert client.post(OPTIONS, {"ids": [ids[0], "not-a-uuid"]}).status_code == 404
    other = order_api()  # another session of nobody: not signed in
    assert other.post(OPTIONS, {"ids": ids}).status_code in (401, 403, 404)
    assert client.post(CONFIRM, {"ids": ids, "credential": "junk"}).status_code == 400
