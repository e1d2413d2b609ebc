"""Bench-only middleware of ``python -m bench.load logins``: the SQL each request sent to the database.

It sits first in ``MIDDLEWARE`` (:mod:`bench.load.settings_logins`), so everything the request does inside
Django (authguard's middleware, the login view, the session save, ``on_commit`` callbacks) runs inside its
:meth:`~django.db.backends.base.base.BaseDatabaseWrapper.execute_wrapper`. The counts go back to the load
generator in response headers, so queries per login are counted in the gunicorn worker that served the
login, for every login of the run:

* ``X-Bench-Queries``: statements sent through Django's cursors (``SAVEPOINT`` / ``RELEASE`` included);
* ``X-Bench-Transactions``: transactions committed or rolled back (each adds a ``BEGIN`` and a ``COMMIT``
  round trip that no cursor sees).

A bench server is never a deployment.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse

HEADER = "X-Bench-Queries"
TRANSACTIONS_HEADER = "X-Bench-Transactions"


class _Counter:
    def __init__(self) -> None:
        self.statements = 0
        self.transactions = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements += 1
        return execute(sql, params, many, context)


_current: contextvars.ContextVar[_Counter | None] = contextvars.ContextVar("bench_counter", default=None)


def _count_ends(connection: Any) -> None:
    """Count the connection's commits and rollbacks of a real transaction (once per connection object)."""
    if getattr(connection, "_bench_counted", False):
        return
    for name in ("_commit", "_rollback"):
        original = getattr(connection, name)

        def counted(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            counter = _current.get()
            inner = connection.connection
            if counter is not None and inner is not None and not connection.get_autocommit():
                counter.transactions += 1
            return _original(*args, **kwargs)

        setattr(connection, name, counted)
    connection._bench_counted = True


class QueryCountMiddleware:
    """Counts the statements and transactions the request sends to every configured database."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        counter = _Counter()
        token = _current.set(counter)
        wrappers = []
        for alias in connections:
            _count_ends(connections[alias])
            wrappers.append(connections[alias].execute_wrapper(counter))
        for wrapper in wrappers:
            wrapper.__enter__()
        try:
            response = self.get_response(request)
        finally:
            for wrapper in reversed(wrappers):
                wrapper.__exit__(None, None, None)
            _current.reset(token)
        response[HEADER] = str(counter.statements)
        response[TRANSACTIONS_HEADER] = str(counter.transactions)
        return response
