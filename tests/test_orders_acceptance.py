"""Order guard acceptance 1: the seed scenario end to end over the JSON API.

A session sells 27 of Tanaka's 30 holdings one order at a time: the first sells are placed up to the limit,
every further sell and the illiquid buy are held; nothing held executes without the customer's passkey; the
customer's own passkey confirmation executes exactly the held order it was made for.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from authguard.factors.passkey_ceremony import b64url_decode
from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from authguard.orders.guard import challenge_for, order_digest
from authguard.testing import SoftAuthenticator
from demo_site.brokerage import services
from demo_site.brokerage.models import Account, Order, OrderStatus


def holdings(user: Any) -> dict[str, int]:
    return dict(Account.objects.get(user=user).positions.values_list("instrument__symbol", "quantity"))


def test_seed_scenario_liquidation_held_and_only_the_customers_passkey_executes_it(
    tanaka: Any, order_api: Any, authenticator: SoftAuthenticator
) -> None:
    browser = order_api()
    browser.login_usual("tanaka", "tanaka-demo-2025")  # her own computer
    browser.register_passkey(authenticator)
    start = services.portfolio(tanaka)
    # Biggest positions first, as a thief would, leaving the three smallest.
    ranked = sorted(start.holdings, key=lambda h: -h.value_jpy)
    to_sell = [h for h in ranked if not h.is_small_cap][:27]
    assert len(start.holdings) == 30 and len(to_sell) == 27

    answers = [(h, browser.order("sell", h.symbol, h.quantity)) for h in to_sell]
    statuses = [r.json()["status"] for _h, r in answers]
    placed = [h for (h, r) in answers if r.status_code == 201]
    first_held = statuses.index("held")
    # The first sells are placed, then every further one is held: no placed sell after the first hold.
    assert first_held >= 1 and statuses[:first_held] == ["placed"] * first_held
    assert statuses[first_held:] == ["held"] * (27 - first_held)
    assert all(r.status_code == 202 for _h, r in answers[first_held:])
    # Placed up to the limit (a new-device session's 25 %), and the next sell would have crossed it.
    sold = sum(h.value_jpy for h in placed)
    limit = Decimal("0.25") * start.holdings_value
    assert sold <= limit < sold + to_sell[first_held].value_jpy

    # The held orders are held in the portal too, with nothing moved.
    after_sells = holdings(tanaka)
    for h in to_sell[first_held:]:
        assert after_sells[h.symbol] == h.quantity
    last = answers[-1][1].json()
    assert last["confirmation"]["methods"] == ["passkey"]
    assert "27 of your 30 holdings" in last["confirmation"]["summary"]
    assert Order.objects.get(pk=last["order_id"]).status == OrderStatus.HELD

    # The pivot: all the cash into the illiquid small cap.
    cash = Account.objects.get(user=tanaka).cash
    buy = browser.order("buy", "7Z2A", int(cash // Decimal(845)))
    assert buy.status_code == 202
    assert "liquidate_and_pivot" in buy.json()["confirmation"]["reasons"]
    listed = {o["order_id"]: o["status"] for o in browser.get("/api/orders").json()["orders"]}
    assert listed[buy.json()["order_id"]] == "held"

    # Without the customer's passkey nothing executes: another authenticator, TOTP, a forged signature.
    held_id = answers[first_held][1].json()["confirmation"]["id"]
    thief = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    thief.create({"rp": {"id": "localhost"}, "user": {"id": "dGhpZWY"}, "challenge": "AAAA"})
    options = browser.post(f"/authguard/api/confirmations/{held_id}/passkey/options").json()
    forged = thief.get({**options, "allowCredentials": []})
    assert browser.post(f"/authguard/api/confirmations/{held_id}/passkey", forged).status_code == 400
    assert browser.post(f"/authguard/api/confirmations/{held_id}/totp", {"code": "123456"}).status_code == 400
    bad_signature = browser.confirm_with_passkey(
        held_id, authenticator, signature=b"0\x06\x02\x01\x01\x02\x01\x01"
    )
    assert bad_signature.status_code == 400
    assert holdings(tanaka) == after_sells
    assert not HeldOrder.objects.filter(status=HeldOrder.Status.CONFIRMED).exists()

    # The customer's own passkey executes exactly that held order, once.
    held = HeldOrder.objects.get(pk=held_id)
    target = to_sell[first_held]
    confirmed = browser.confirm_with_passkey(held_id, authenticator)
    assert confirmed.status_code == 200, confirmed.content
    body = confirmed.json()
    assert body["status"] == "confirmed"
    assert (body["order"]["side"], body["order"]["symbol"], body["order"]["quantity"]) == (
        "sell",
        target.symbol,
        target.quantity,
    )
    now_holding = holdings(tanaka)
    assert target.symbol not in now_holding
    assert {s: q for s, q in now_holding.items()} == {
        s: q for s, q in after_sells.items() if s != target.symbol
    }
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.CONFIRMED and held.confirmed_method == "passkey"
    assert held.guarded.status == GuardStatus.PLACED
    # The signed assertion is kept, and it signed sha256(nonce || digest) of this very order.
    signed = b64url_decode(held.assertion["response"]["clientDataJSON"], max_chars=8192)
    assert b64url_decode(json.loads(signed)["challenge"], max_chars=256) == challenge_for(held)
    assert order_digest(held.canonical) == held.digest
    order = Order.objects.get(pk=answers[first_held][1].json()["order_id"])
    assert order.status == OrderStatus.PLACED and order.executed_at is not None
    # Every other held order is still held, in the portal and in the ledger.
    assert Order.objects.filter(status=OrderStatus.HELD).count() == 27 - first_held - 1 + 1
    assert GuardedOrder.objects.filter(status=GuardStatus.HELD).count() == 27 - first_held - 1 + 1
    # A second use of the same confirmation is refused.
    again = browser.post(f"/authguard/api/confirmations/{held_id}/passkey/options")
    assert again.status_code == 410
