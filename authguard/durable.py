"""Security records that must outlive the caller's rollback.

Some writes record what authguard refused: a denied order that uncovered a pump-and-dump campaign leaves a
campaign flag (and its staff alert) behind. The refusal is an exception, and an exception rolls back every
transaction it leaves, the portal's own included (a view under ``ATOMIC_REQUESTS``, a service that wraps
``submit_order`` in ``transaction.atomic()``): a record written there would vanish with the order it refused.

:func:`record_refusal` writes the record at once (committed at once when no transaction encloses the call),
and, when a transaction does enclose it, writes it *again* after the view, from
:class:`~authguard.sessions.middleware.AuthguardMiddleware`, outside every transaction the view opened.
Writes must therefore be idempotent (``get_or_create``, a notice deduplicated by key). Outside a request
(a batch job, a shell) there is no second write: such a caller commits or rolls back the record itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

logger = logging.getLogger(__name__)

Write = Callable[[], object]

#: The refusals recorded during the request the middleware is running (None: no middleware around us).
_PENDING: ContextVar[list[Write] | None] = ContextVar("authguard_pending_refusals", default=None)


def record_refusal(write: Write) -> None:
    """Run ``write`` (idempotent) in a transaction of its own now, and again after the view when the caller's
    transaction may still roll it back.

    A failing ``write`` is logged, never raised: the refusal it records stands either way.
    """
    _run(write)
    pending = _PENDING.get()
    if pending is not None and transaction.get_connection().in_atomic_block:
        pending.append(write)


def keep_through_rollback(write: Write, *, kept: Callable[[], bool], using: str | None = None) -> None:
    """``write`` has just run in the caller's transaction (on ``using``). When a view's transaction encloses
    it, run it once more after the view unless ``kept()`` then finds what it wrote: a view that raised, or
    DRF answering an ``APIException`` under ``ATOMIC_REQUESTS`` (``set_rollback``), undoes it.

    Unlike :func:`record_refusal`, ``write`` need not be idempotent: it runs again only when the first
    write is gone."""
    pending = _PENDING.get()
    if pending is not None and transaction.get_connection(using).in_atomic_block:
        pending.append(lambda: None if kept() else write())


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


def write_again(writes: list[Write]) -> None:
    """Run every collected write once more, now that the view's transactions have ended."""
    for write in writes:
        _run(write)


def _run(write: Write) -> None:
    try:
        with transaction.atomic():
            write()
    except Exception:
        # SECURITY: the refusal itself was already decided; losing its record must not turn it into a 500.
        logger.exception("authguard: a refusal's record could not be written")
