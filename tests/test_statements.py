"""authguard.statements: the order guard's hot statements are prepared on PostgreSQL where the portal's
database options allow it, answer exactly as unprepared ones, and stay visible to Django's query logging."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authguard import statements
from authguard.models import GuardedOrder, GuardStatus
from authguard.orders import exposure
from demo_site.brokerage import services

HOURS = [24, 168, 720]


def _ledger(user: Any, now: Any) -> Any:
    return exposure.ledger_totals(user, now=now, hours=HOURS, symbol="7Z2A", held_seconds=3600, trust_days=7)


def _trader(user_factory: Any) -> Any:
    """An account with placed and held buys and sells over the month, some of the order's instrument."""
    user = user_factory("trader")
    now = timezone.now()
    GuardedOrder.objects.bulk_create(
        GuardedOrder(
            user=user, created_at=now - timedelta(hours=7 * n), side="sell" if n % 3 == 0 else "buy",
            symbol="7Z2A" if n % 4 == 0 else "7203", quantity=n + 1, amount=Decimal(1000 * (n + 1)),
            currency="JPY", status=GuardStatus.HELD if n % 5 == 0 else GuardStatus.PLACED,
            illiquid=n % 4 == 0, illiquid_amount=Decimal(500 * (n + 1)) if n % 4 == 0 else Decimal(0),
        )
        for n in range(60)
    )  # fmt: skip
    return user


def _prepared_ledger_statements() -> list[tuple[int, int]]:
    table = GuardedOrder._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"%{table}%UNION ALL%"],
        )
        return cursor.fetchall()


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_ledger_statement_is_prepared_where_allowed_and_answers_as_unprepared(user_factory: Any) -> None:
    user = _trader(user_factory)
    now = timezone.now()
    raw = connection.connection
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # psycopg forgets its own prepared statements too
    threshold = raw.prepare_threshold
    assert threshold is not None, "the demo's PostgreSQL settings allow prepared statements"
    try:
        raw.prepare_threshold = None  # what Django does unless OPTIONS["prepare_threshold"] is set
        assert not statements.prepares(connection)
        unprepared = [_ledger(user, now) for _ in range(3)]
        assert _prepared_ledger_statements() == []
    finally:
        raw.prepare_threshold = threshold
    assert statements.prepares(connection)
    calls = threshold + 8
    with CaptureQueriesContext(connection) as queries:
        prepared = [_ledger(user, now) for _ in range(calls)]
    # Every call is still one query in Django's log, with its text (Django 5.2 would log None once prepared),
    # and the same answer as without preparing.
    assert len(queries) == calls
    table = GuardedOrder._meta.db_table
    assert all(isinstance(q["sql"], str) and table in q["sql"] and "$1" not in q["sql"] for q in queries)
    assert all(answer == unprepared[0] for answer in prepared + unprepared)
    totals, held_due, trust, _flagged, _peak = prepared[-1]
    assert totals[720].sells_held > 0 and totals[720].illiquid_buys > 0 and totals[24].buys_placed > 0
    # psycopg prepared it after ``threshold`` executions and the server ran it from then on (whether it keeps
    # a generic plan is the planner's choice, by its cost estimates).
    ((generic, custom),) = _prepared_ledger_statements()
    assert generic + custom == calls - threshold


@pytest.mark.django_db
def test_a_failing_statement_raises_djangos_error_and_leaves_the_connection_usable(user_factory: Any) -> None:
    user = _trader(user_factory)
    table = connection.ops.quote_name(GuardedOrder._meta.db_table)
    with pytest.raises(DatabaseError), transaction.atomic():
        statements.fetch_all(f"SELECT no_such_column FROM {table} WHERE user_id = %s", [user.pk])  # noqa: S608
    expected = [(GuardedOrder.objects.filter(user=user).count(),)]
    for _ in range(8):  # past the prepare threshold on PostgreSQL
        assert statements.fetch_all(f"SELECT COUNT(*) FROM {table} WHERE user_id = %s", [user.pk]) == expected  # noqa: S608


@pytest.mark.django_db
def test_the_portfolio_hook_reads_through_the_same_path(user_factory: Any) -> None:
    services.sync_instruments()
    user = services.open_account(
        "holder", "pw-holder-2025", email="holder@example.jp", cash=Decimal(250_000), holdings={"7203": 100}
    )
    snapshots = [services.guard_portfolio(user) for _ in range(8)]
    assert all(snapshot == snapshots[0] for snapshot in snapshots)
    assert snapshots[0].cash == Decimal(250_000)
    assert [holding.symbol for holding in snapshots[0].holdings] == ["7203"]
    assert statements.prepares(connection) is (connection.vendor == "postgresql")
