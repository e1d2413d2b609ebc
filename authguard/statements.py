"""Plain SQL on the hot paths, run as a prepared statement where the portal's database connection allows it.

The order guard reads an account's exposure with one statement built once per process
(:mod:`authguard.orders.exposure`), and a portal's hooks on every order may do the same. PostgreSQL spends
longer *planning* the ledger statement (four ``UNION ALL`` arms, four ``EXISTS``, about 0.7 ms) than running
it (about 0.25 ms). Prepared on the server, it is planned a few times and then kept as a generic plan for
the connection's life: one call fell from about 1.0 ms to 0.34 ms on the machine of 2026-12-03.

Django turns psycopg 3's prepared statements off unless the database's ``OPTIONS`` set
``prepare_threshold``: a connection pooler in transaction mode that does not track them would send the next
execution to a server connection that never prepared it (PgBouncer tracks them from 1.22, with
``max_prepared_statements`` set). :func:`fetch_all` follows the portal's switch: with ``prepare_threshold``
set it binds the parameters on the server and psycopg prepares the statement after that many executions;
without it the statement runs as every other query of the portal does. Either way it goes through Django's
cursor wrapper, so ``execute_wrapper`` hooks, health checks, error translation and ``connection.queries``
apply as to any query (the ``django.db.backends`` debug log line of a prepared statement shows no text on
Django 5.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper


def prepares(connection: BaseDatabaseWrapper) -> bool:
    """Whether statements on ``connection`` may be prepared on the server: PostgreSQL through psycopg 3 with
    the database's ``OPTIONS["prepare_threshold"]`` set (Django's own switch for it)."""
    if connection.vendor != "postgresql":
        return False
    connection.ensure_connection()
    return getattr(connection.connection, "prepare_threshold", None) is not None


def user_id(pk: Any, *, using: str = DEFAULT_DB_ALIAS) -> Any:
    """A user's primary key as a parameter of plain SQL: what the ORM would send for it (a portal's user model
    may have a UUID key, which SQLite stores as 32 hex digits)."""
    return get_user_model()._meta.pk.get_db_prep_value(pk, connections[using])


def fetch_all(sql: str, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` (``%s`` placeholders) run with ``params`` on the database ``using``.

    ``sql`` must be the same text on every call for the same shape of parameters (build it once, e.g. in an
    ``lru_cache``): a prepared statement is looked up by its text and parameter types.
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        on_server = prepares(connection)
        if on_server:
            _bind_on_server(cursor, connection)
        cursor.execute(sql, params)
        if on_server and connection.queries_logged and connection.queries_log:
            # Django reads the logged text back from psycopg's last query, which a server-bound statement
            # holds with $1 placeholders and a prepared one not at all (Django 5.2 logs None): log the
            # statement as composed, as for every other query (connection.queries, CaptureQueriesContext).
            # (compose_sql is PostgreSQL's, which on_server implies.)
            composed = connection.ops.compose_sql(sql, params)  # type: ignore[attr-defined]
            connection.queries_log[-1]["sql"] = composed
        return cursor.fetchall()


def _bind_on_server(cursor: Any, connection: BaseDatabaseWrapper) -> None:
    """Swap the client-side binding cursor Django made for a server-side binding one on the same connection
    (psycopg prepares only those); the wrapper around it, and so Django's bookkeeping, stays."""
    # (defined only where psycopg 3 is installed, which is where prepare_threshold exists)
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    if isinstance(cursor.cursor, ServerBindingCursor):
        return  # the portal binds on the server already (OPTIONS["server_side_binding"])
    cursor.cursor.close()
    cursor.cursor = ServerBindingCursor(connection.connection)


__all__ = ["fetch_all", "prepares", "user_id"]
