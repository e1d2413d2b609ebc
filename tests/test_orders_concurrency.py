"""Battery cases 36, 38 and 40 and the parallel-order acceptance items, with real threads and row locks.

Marked ``postgres``: on SQLite they skip (outside CI), since SQLite has no row locks to test. Run with
``AUTHGUARD_TEST_DB=postgres AUTHGUARD_TEST_DATABASE_URL=postgres://...``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from authguard.testing import SoftAuthenticator
from demo_site.brokerage import services
from demo_site.brokerage.models import Account, Order, OrderStatus

from .conftest import OrderApi, totp_token

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "kenji-test-2025"
PLAIN_RULES = [{"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {}}]


def in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together by a barrier; return results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # reported by the test's assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture
def kenji(settings: Any) -> Any:
    settings.AUTHGUARD_ORDER_RULES = PLAIN_RULES
    settings.AUTHGUARD_RISK_SIGNALS = []
    services.sync_instruments()
    return services.open_account(
        "kenji", PASSWORD, email="kenji@example.com", cash=Decimal(0), holdings={"9432": 2000, "7203": 100}
    )


def sessions(count: int) -> list[OrderApi]:
    clients = []
    for _ in range(count):
        client = OrderApi()
        client.login_usual("kenji", PASSWORD)  # one of his own browsers
        clients.append(client)
    return clients


def holdings(user: Any) -> dict[str, int]:
    return dict(Account.objects.get(user=user).positions.values_list("instrument__symbol", "quantity"))


def test_twenty_parallel_5_percent_sells_never_place_more_than_the_limit(kenji: Any) -> None:
    # Holdings ¥590,000: 2,000 NTT (¥305,000) and 100 Toyota (¥285,000). 100 NTT = ¥15,250 = 2.6 %.
    clients = sessions(20)
    answers = in_parallel([lambda c=c: c.order("sell", "9432", 200) for c in clients])  # 5.2 % each
    statuses = sorted(a.json()["status"] for a in answers)
    placed = GuardedOrder.objects.filter(user=kenji, status=GuardStatus.PLACED)
    sold = sum(o.amount for o in placed)
    assert sold <= Decimal("0.5") * Decimal(590_000)
    assert statuses == ["held"] * 11 + ["placed"] * 9  # 9 x 5.2 % = 46.5 %; a 10th would be 51.7 %
    assert holdings(kenji)["9432"] == 2000 - 9 * 200
    assert Order.objects.filter(status=OrderStatus.HELD).count() == 11


@pytest.mark.battery(38)
def test_battery_38_two_concurrent_49_percent_sells_the_second_needs_confirmation(kenji: Any) -> None:
    first, second = sessions(2)
    answers = in_parallel(
        [lambda: first.order("sell", "9432", 1900), lambda: second.order("sell", "7203", 100)]
    )
    assert sorted(a.status_code for a in answers) == [201, 202]  # 49 % and 48 %: one placed, one held
    assert GuardedOrder.objects.filter(status=GuardStatus.PLACED).count() == 1


@pytest.mark.battery(40)
def test_battery_40_a_duplicate_idempotency_key_in_parallel_makes_one_order(kenji: Any) -> None:
    clients = sessions(5)
    answers = in_parallel(
        [
            lambda c=c: c.order("sell", "7203", 10, HTTP_IDEMPOTENCY_KEY="order-2026-12-01-001")
            for c in clients
        ]
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert Order.objects.count() == 1 and holdings(kenji)["7203"] == 90


def test_a_parallel_double_confirmation_executes_once(kenji: Any, totp_factory: Any) -> None:
    device = totp_factory(kenji)
    (client,) = sessions(1)
    held = client.order("sell", "9432", 2000).json()  # 52 %: held
    path = f"/authguard/api/confirmations/{held['confirmation']['id']}/totp"
    # Two valid codes (this time step and the next), sent at once: django-otp accepts both in order.
    codes = [totp_token(device), totp_token(device, steps=1)]
    answers = in_parallel([lambda code=code: client.post(path, {"code": code}) for code in codes])
    assert sorted(a.status_code for a in answers)[0] == 200
    assert [a.status_code for a in answers].count(200) == 1
    assert Order.objects.get(pk=held["order_id"]).status == OrderStatus.PLACED
    assert "9432" not in holdings(kenji) and Account.objects.get(user=kenji).cash == Decimal("305000.00")


@pytest.mark.battery(36)
def test_battery_36_an_order_changed_while_confirming_is_rechecked_under_the_lock(
    kenji: Any, authenticator: SoftAuthenticator
) -> None:
    (client,) = sessions(1)
    client.register_passkey(authenticator)
    held = client.order("sell", "9432", 2000).json()
    confirmation_id = held["confirmation"]["id"]
    options = client.post(f"/authguard/api/confirmations/{confirmation_id}/passkey/options").json()
    assertion = authenticator.get(options)
    locked, changed = threading.Event(), threading.Event()

    def tamper() -> None:
        # Confirm A, PATCH to B: holds the row while changing it, then commits.
        with transaction.atomic():
            row = HeldOrder.objects.select_for_update().get(pk=confirmation_id)
            locked.set()
            time.sleep(0.5)
            row.canonical = row.canonical.replace('"quantity":2000', '"quantity":1')
            row.save(update_fields=["canonical"])
        changed.set()

    def confirm() -> Any:
        locked.wait(10)
        return client.post(f"/authguard/api/confirmations/{confirmation_id}/passkey", assertion)

    _tampered, answer = in_parallel([tamper, confirm])
    assert changed.is_set()
    assert answer.status_code == 400 and answer.json()["code"] == "order_changed", answer.content
    assert holdings(kenji)["9432"] == 2000
    assert Order.objects.get(pk=held["order_id"]).status != OrderStatus.PLACED


def test_parallel_roll_ups_and_a_confirmation_count_every_order_once(kenji: Any) -> None:
    """Issue 11, acceptance 3: four roll-ups of one account at once, while a held order of a finished day
    is confirmed: every placed order ends up counted exactly once, in the ledger or in its day's total."""
    from datetime import timedelta

    from django.utils import timezone

    from authguard.orders import exposure, rollup

    now = timezone.now()
    rows = [
        GuardedOrder(
            user=kenji, created_at=now - timedelta(hours=30 + 7 * n), side="sell" if n % 2 else "buy",
            symbol="7203" if n % 3 else "9432", quantity=1, amount=Decimal(1000 + n), currency="JPY",
            status=GuardStatus.PLACED, vouched=True,  # unvouched sells stay for the sells' long count
        )
        for n in range(300)
    ]  # fmt: skip
    GuardedOrder.objects.bulk_create(rows)
    held = GuardedOrder.objects.create(
        user=kenji, created_at=now - timedelta(days=3), side="sell", symbol="7203", quantity=1,
        amount=Decimal(50_000), currency="JPY", status=GuardStatus.HELD,
    )  # fmt: skip

    def totals() -> Any:
        return exposure.ledger_totals(
            kenji, now=now, hours=[24, 168, 720], symbol="7203", held_seconds=300, trust_days=14
        )[0]

    def confirm() -> int:
        with transaction.atomic():
            return GuardedOrder.objects.filter(pk=held.pk).update(status=GuardStatus.PLACED)

    expected = totals()
    before = rollup.rollable_before(now)
    results = in_parallel([*(lambda: rollup.roll_up(kenji.pk, before=before) for _ in range(4)), confirm])
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, rollup.RollupConflict)]
    assert sum(r for r in results[:4] if isinstance(r, int)) >= 290  # every finished day's row, once
    after = totals()
    for hours in (168, 720):
        assert after[hours].sells == expected[hours].sells  # held or placed, the sell counts once
        assert after[hours].buys_placed == expected[hours].buys_placed
        assert after[hours].symbol_buys == expected[hours].symbol_buys
    # Whatever was left (the confirmed order, a conflicting roll-up's rows) rolls up later, still exactly.
    rollup.roll_up(kenji.pk, before=before)
    assert totals() == after


def test_an_order_executing_while_a_consolidation_is_synced_fills_nothing_in_old_shares(kenji: Any) -> None:
    """Round seventy-one's in-flight variant under real row locks: the sync's consolidation of 7203 (ten
    into one) holds the instrument and his position while his sell of 5, validated at ¥2,850 before it,
    executes. The order waits for the sync (its shared lock on the instrument) and then executes nothing
    (``SharesChanged``). Read unlocked, it saw the old price and share basis, waited on the position, and
    sold 5 new shares (¥142,500) for ¥14,250."""
    from dataclasses import replace
    from fractions import Fraction

    from demo_site.brokerage.instruments import INSTRUMENTS

    row = next(r for r in INSTRUMENTS if r.symbol == "7203")
    draft = services.validate_order(kenji, side="sell", symbol="7203", quantity=5)
    synced = threading.Event()

    def consolidate() -> None:
        with transaction.atomic():
            services.sync_instruments([replace(row, price=row.price * 10, split=Fraction(1, 10))])
            synced.set()
            time.sleep(0.5)  # the order arrives while the sync's locks are held

    def execute() -> Any:
        synced.wait(10)
        return services.execute_order(kenji, draft)

    _synced, answer = in_parallel([consolidate, execute])
    assert isinstance(answer, services.SharesChanged), answer
    assert holdings(kenji)["7203"] == 10 and Account.objects.get(user=kenji).cash == 0
