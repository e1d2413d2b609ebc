"""bench/orders runs end to end on a small seeded population (the full figures are in docs/order-guard.md)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.orders import contention
from bench.orders.run import run

from .conftest import use_mail_backend


def test_the_order_benchmark_reports_holds_and_check_costs(db: Any, settings: Any) -> None:
    use_mail_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    result = run(customers=12, days=3, seed=3)
    assert result["orders"] > 0
    assert result["outcomes"].get("placed", 0) + result["outcomes"].get("held", 0) == result["orders"]
    assert 0 <= result["held_share_percent"] <= 100
    assert result["queries_per_check"]["median"] >= 1  # the ledger query at least: the count is real
    assert result["queries_per_check"]["max"] <= 6
    assert result["check_order"]["p50_ms"] > 0
    # Issue 11: a month of multi-day behaviour, the share of customers confirming, a long busy history.
    assert 0 <= result["customers_confirming_percent"] <= 100
    assert set(result["by_profile"]) <= {"saver", "rebalancer", "trader", "enthusiast", "seller"}
    heavy = result["heavy_history_account"]
    # As for an account without history (a thin buy adds the campaign and the count since her confirmation).
    assert heavy["ledger_rows"] == 22_000 and heavy["queries_max"] <= 4
    # The hourly roll-up task summed the finished days (the old 20,000 and most of the month): same queries.
    # Sells no passkey vouched for stay in the ledger for the sells' long count (round seventy-three).
    rolled = heavy["rolled_up"]
    assert rolled["rows_rolled"] > 15_000 and rolled["queries_max"] <= 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_contention_benchmark_queues_buys_of_one_stock_behind_the_slow_transaction(settings: Any) -> None:
    """bench.orders.contention end to end on PostgreSQL (several connections at once). With 20 ms of OMS
    latency inside ``place()``, the buys of one stock queue on the campaign rule's advisory lock: at most
    one per 20 ms, whatever the machine; buys of different stocks do not queue."""
    use_mail_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    result = contention.run(threads=3, seconds=1.0, oms_ms=20.0)
    for case in ("spread", "one_stock", "spread_with_oms", "one_stock_with_oms"):
        assert result[case]["orders"] > 0 and result[case]["p50_ms"] > 0, result
    assert result["one_stock_with_oms"]["orders_per_second"] <= 1000 / 20 * 1.05, result
