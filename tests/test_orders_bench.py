"""bench/orders runs end to end on a small seeded population (the full figures are in docs/order-guard.md)."""

from __future__ import annotations

from typing import Any

from bench.orders.run import run


def test_the_order_benchmark_reports_holds_and_check_costs(db: Any, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
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
    assert heavy["ledger_rows"] == 22_000 and heavy["queries_max"] <= 3  # as for an account without history
    # The hourly roll-up task summed the finished days (the old 20,000 and most of the month): same queries.
    rolled = heavy["rolled_up"]
    assert rolled["rows_rolled"] > 20_000 and rolled["queries_max"] <= 3
