"""Security records that must outlive the caller's rollback.

Some writes record what authguard refused: a denied order that uncovered a pump-and-dump campaign leaves a
campaign flag (and its staff alert) behind. The refusal is an exception, and an exception rolls back every
transaction it leaves, the portal's own included (a view under ``ATOMIC_REQUESTS``, a service that wraps
``submit_order`` in ``transaction.atomic()``): a record written there would vanish with the order it refused.

:func:`record_refusal` writes the record at once (committed at once when no transaction encloses the call),
and, when a transaction does enclose it, writes it *again* after the view, from
:class:`~authguard.sessions.middleware.AuthguardMiddleware`, outside every transaction the view opened (and
every one a middleware above it opened: then when the response is closed).
Writes must therefore be idempotent (``get_or_create``, a notice deduplicated by key). Outside a request
(a batch job, a shell) there is no second write: such a caller commits or rolls back the record itself.

:func:`outlive_rollback` is for counts, which are not idempotent: a failure's count on the account lock,
the factor throttle and the factor's record, a login's event. It writes again after the view only when the
view's transaction rolled the first write back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.signals import request_finished
from django.db import transaction

logger = logging.getLogger(__name__)

Write = Callable[[], object]

#: The refusals (and counts, :func:`outlive_rollback`) recorded during the request the middleware is running
#: (None: no middleware around us).
_PENDING: ContextVar[list[Write] | None] = ContextVar("authguard_pending_refusals", default=None)
#: Writes waiting for the end of this thread's request (:func:`write_again`): a thread serves one request
#: at a time, also Django's thread for sync code under ASGI.
_DEFERRED = threading.local()


def record_refusal(write: Write) -> None:
    """Run ``write`` (idempotent) in a transaction of its own now, and again after the view when the caller's
    transaction may still roll it back.

    A failing ``write`` is logged, never raised: the refusal it records stands either way.
    """
    _run(write)
    pending = _PENDING.get()
    if pending is not None and transaction.get_connection().in_atomic_block:
        pending.append(write)


def outlive_rollback(write: Write, *, using: str | None = None) -> None:
    """``write`` has just run in the caller's transaction (on ``using``). When a view's transaction encloses
    it and rolls it back (a view that raised; DRF answering an ``APIException`` under ``ATOMIC_REQUESTS``,
    which marks the request's transaction for rollback), run it once more after the view.

    Whether it was rolled back is read off Django's own commit hooks: a hook registered here has run (the
    transaction committed) or is still waiting (an enclosing transaction, a test's, has not ended) unless a
    rollback discarded it. Unlike :func:`record_refusal`, ``write`` need not be idempotent. (A portal's own
    commit hook that raises before this one runs leaves it unrun though the transaction committed: the write
    then counts twice, which fails closed.)
    """
    pending = _PENDING.get()
    connection = transaction.get_connection(using)
    if pending is None or not connection.in_atomic_block:
        return
    committed: list[bool] = []

    def mark() -> None:
        committed.append(True)

    transaction.on_commit(mark, using=using)

    def again() -> None:
        # Django keeps (savepoint ids, function, robust) per hook; ``in`` asks any layout that holds it.
        if committed or any(mark in hook for hook in connection.run_on_commit):
            return  # kept: committed, or still in a transaction that has not ended
        write()

    pending.append(again)


def in_view() -> bool:
    """Whether :class:`~authguard.sessions.middleware.AuthguardMiddleware` runs around the current view: what
    the view's transaction holds back, the middleware can still do after it."""
    return _PENDING.get() is not None


@contextmanager
def collecting() -> Iterator[list[Write]]:
    """Collect the refusals recorded inside the block (the middleware, around the view)."""
    writes: list[Write] = []
    token = _PENDING.set(writes)
    try:
        yield writes
    finally:
        _PENDING.reset(token)


def write_again(writes: list[Write], response: object = None) -> None:
    """Run every collected write once more, now that the view's transactions have ended; when a transaction
    above the middleware is still open, once it has ended too: when ``response`` is closed, or at
    ``request_finished`` when a middleware above answered with another response."""
    if not writes:
        return
    if response is not None and transaction.get_connection().in_atomic_block:
        # SECURITY: a portal middleware above authguard's running the whole request in one transaction rolled
        # back every count with its error answer, this second write included (red team, round forty-six);
        # one more portal middleware answering with its own error response left the closers of authguard's
        # unrun (round forty-seven). Django closes the final response after every middleware has returned.
        if not hasattr(_DEFERRED, "batches"):
            _DEFERRED.batches = []
        _DEFERRED.batches.append(list(writes))
        closers = getattr(response, "_resource_closers", None)
        if isinstance(closers, list):
            closers.append(run_deferred)
        return
    _run_all(writes)


def run_deferred(**kwargs: object) -> None:
    """Run the writes :func:`write_again` deferred in this thread (the response's closer; connected to
    ``request_finished`` too)."""
    batches = getattr(_DEFERRED, "batches", None)
    if not batches:
        return
    _DEFERRED.batches = []
    for batch in batches:
        _run_all(batch)


request_finished.connect(run_deferred, dispatch_uid="authguard.durable.run_deferred")


def _run_all(writes: list[Write]) -> None:
    for write in writes:
        _run(write)


def _run(write: Write) -> None:
    try:
        with transaction.atomic():
            write()
    except Exception:
        # SECURITY: the refusal itself was already decided; losing its record must not turn it into a 500.
        logger.exception("authguard: a refusal's record could not be written")
