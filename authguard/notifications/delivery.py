"""Sending the outbox: Celery tasks that claim a row, send it once, retry with back-off, and give up loudly.

:func:`enqueue` hands a committed row to Celery without ever blocking the request thread for long;
:func:`send_notification` (the worker) claims the row with a conditional ``UPDATE`` so two workers never
both send it; :func:`retry_pending_notifications` (beat) picks up what the broker missed. A row that
fails for good sends :data:`delivery_failed`, which the outbox turns into a staff alert.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.core.mail import EmailMessage
from django.db.models import F, Q
from django.dispatch import Signal

from authguard import clock
from authguard.conf import app_settings
from authguard.models import Notification, NotificationStatus
from authguard.notifications.messages import LinkInMessage, build_message
from authguard.resilience import CircuitOpen, broker_breaker

logger = logging.getLogger(__name__)

#: A claim older than this is presumed dead (its worker crashed mid-send) and may be taken again.
STALE_CLAIM = timedelta(minutes=10)


#: Backoff of the n-th failed attempt: 30 s, 1 min, 2 min, ... capped at one hour.
BACKOFF_BASE_SECONDS = 30


BACKOFF_MAX_SECONDS = 3600

#: Sent when a row was given up (``pk``): the outbox alerts staff that a customer was not warned.
delivery_failed = Signal()


class PublishTimeout(Exception):
    """The broker did not take the message within ``AUTHGUARD_BROKER_PUBLISH_SECONDS``."""


def enqueue(pk: int) -> bool:
    """Hand an outbox row to Celery. False when the broker is unreachable, hung or its breaker is open: the
    row stays ``pending`` and :func:`retry_pending_notifications` sends it later.

    Runs on the request thread (after commit), so it never waits longer than
    ``AUTHGUARD_BROKER_PUBLISH_SECONDS``: the publish runs in a short-lived daemon thread that the request
    stops waiting for, whatever the transport's own timeouts are. After repeated failures the broker's
    circuit breaker skips publishing at once (:mod:`authguard.resilience`).
    """
    task = send_notification._get_current_object()  # bound to this thread's Celery app
    if task.app.conf.task_always_eager:
        # No broker (the demo without servers, the tests): the task runs here, as it always did.
        try:
            task.delay(pk)
        except Exception:
            logger.warning("authguard: could not send notification %s; it stays pending", pk, exc_info=True)
            return False
        return True
    try:
        conf = task.app.conf
        breaker = broker_breaker(conf.broker_write_url or conf.broker_url)
        breaker.call(_publish, task, pk, app_settings.BROKER_PUBLISH_SECONDS)
    except CircuitOpen:
        logger.warning("authguard: broker circuit open; notification %s stays pending", pk)
        return False
    except Exception as error:
        # Broker down or hung: the row stays pending; retry_pending_notifications picks it up.
        logger.warning(
            "authguard: could not queue notification %s (%s: %s); it stays pending",
            pk,
            type(error).__name__,
            error,
        )
        return False
    return True


def _publish(task: Any, pk: int, seconds: float) -> None:
    """``task.apply_async((pk,))`` in a daemon thread, waited for at most ``seconds``.

    A daemon thread (not a pool's) so a publish stuck on a hung broker never delays a worker's shutdown;
    it ends when the transport's socket timeout fires (``docs/faults.md``), or with the process. One
    attempt, no retry loop: the outbox's retry task is the retry.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            task.apply_async((pk,), retry=False)
        except BaseException as error:  # handed to the waiting thread, which logs it
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, name=f"authguard-publish-{pk}", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise PublishTimeout(f"the broker did not take notification {pk} within {seconds} s")
    if outcome[0] is not None:
        raise outcome[0]


def backoff_seconds(attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th failed attempt (exponential, capped)."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


def claimable(now: datetime) -> Q:
    """Rows a worker may take now: due ``pending`` ones, and ``sending`` claims gone stale."""
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    stale = Q(status=NotificationStatus.SENDING, claimed_at__lt=now - STALE_CLAIM)
    return (Q(status=NotificationStatus.PENDING) & due) | stale


def claim(pk: int, *, now: datetime | None = None) -> bool:
    """Atomically move a due ``pending`` row (or a stale ``sending`` one) to ``sending``.

    SECURITY/integrity: a single conditional UPDATE, so of two workers racing for the same row exactly
    one sees ``1`` and sends; the other sees ``0`` and does nothing.
    """
    now = now or clock.now()
    updated = Notification.objects.filter(Q(pk=pk) & claimable(now)).update(
        status=NotificationStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    return updated == 1


def deliver(pk: int) -> str:
    """Claim and send one outbox row; returns what happened (``sent``, ``not_due``, ``retry``, ``failed``).

    The worker's part of :func:`send_notification`, callable without Celery. Every claim ends the row
    ``sent``, ``failed`` or ``pending`` with its attempt counted, whatever goes wrong in between.
    """
    now = clock.now()
    if not claim(pk, now=now):
        return "not_due"  # already sent, being sent, skipped, or not due yet
    notification = Notification.objects.select_related("user").get(pk=pk)
    if notification.attempts > app_settings.NOTIFICATION_MAX_ATTEMPTS:
        # SECURITY: claims that never ended (a worker killed while writing or sending it, each time) end here:
        # the row fails and staff are told, rather than being taken again every ten minutes for ever.
        return _retry_or_fail(notification, RuntimeError("no outcome of the earlier claims"))
    try:
        message, written = _message_for(notification)
    except LinkInMessage as exc:
        # SECURITY: never send a security mail that carries a link; this is a bug to fix, not to retry.
        logger.error("authguard: %s", exc)
        _finish(pk, NotificationStatus.FAILED, error=str(exc))
        return "failed"
    except Exception as exc:
        # SECURITY: not even the message without details could be written: counted as a failed attempt, so
        # the row fails at the attempt limit and staff hear that she was not warned (red team, round 75).
        return _retry_or_fail(notification, exc)
    try:
        message.send(fail_silently=False)
    except Exception as exc:
        return _retry_or_fail(notification, exc)
    _finish(pk, NotificationStatus.SENT, error=written)
    return "sent"


def _message_for(notification: Notification) -> tuple[EmailMessage, str]:
    """The e-mail for ``notification`` and ``""``; when it cannot be written, the same notice without the
    values someone else may have written (``build_message(fallback=True)``) and why.

    SECURITY: a security notice reaches its customer even when a value in it breaks the message: a passkey
    named ``0001-1-1T0:0+14:00`` made writing her "sign-in method added" notice raise ``OverflowError`` at
    every attempt, so the row stayed ``sending`` for the 14 days of his passkey's cooling-off, never failed
    and never alerted staff (red team, round seventy-five). What failed is logged and kept on the row.
    """
    try:
        return build_message(notification), ""
    except Exception as exc:
        logger.error(
            "authguard: notification %s (%s) could not be written (%s); sending it without its details",
            notification.pk,
            notification.kind,
            type(exc).__name__,
            exc_info=True,
        )
        return build_message(notification, fallback=True), f"sent without its details: {exc!r}"


def _retry_or_fail(notification: Notification, exc: BaseException) -> str:
    """Back to ``pending`` after a backoff, or ``failed`` (and the staff alert) at the attempt limit."""
    pk, attempts = notification.pk, notification.attempts
    if attempts >= app_settings.NOTIFICATION_MAX_ATTEMPTS:
        logger.error("authguard: giving up notification %s after %s attempts: %s", pk, attempts, exc)
        _finish(pk, NotificationStatus.FAILED, error=repr(exc))
        return "failed"
    logger.warning("authguard: notification %s not sent (attempt %s): %s", pk, attempts, exc)
    Notification.objects.filter(pk=pk, status=NotificationStatus.SENDING).update(
        status=NotificationStatus.PENDING,
        next_attempt_at=clock.now() + timedelta(seconds=backoff_seconds(attempts)),
        last_error=repr(exc)[:300],
    )
    return "retry"


def _finish(pk: int, status: str, *, error: str) -> None:
    fields: dict[str, Any] = {"status": status, "last_error": error[:300]}
    if status == NotificationStatus.SENT:
        fields["sent_at"] = clock.now()
    updated = Notification.objects.filter(pk=pk, status=NotificationStatus.SENDING).update(**fields)
    if updated and status == NotificationStatus.FAILED:
        delivery_failed.send(sender=Notification, pk=pk)


@shared_task(bind=True, name="authguard.send_notification", acks_late=True, max_retries=8)
def send_notification(self: Any, pk: int) -> str:
    """Send outbox row ``pk`` once. A failed send is retried with exponential backoff.

    Running it twice (a duplicate delivery from the broker, the retry task racing it) sends nothing more.
    """
    outcome = deliver(int(pk))
    if outcome == "retry" and not self.request.is_eager:
        row = Notification.objects.only("attempts").get(pk=pk)
        # The row is also picked up by retry_pending_notifications should this retry be lost.
        raise self.retry(countdown=backoff_seconds(row.attempts))
    return outcome


@shared_task(name="authguard.retry_pending_notifications")
def retry_pending_notifications(limit: int = 500) -> int:
    """Queue every due ``pending`` row (and stale ``sending`` claims); returns how many were queued.

    Periodic: this is what delivers notifications written while the broker was down.
    """
    rows = Notification.objects.filter(claimable(clock.now())).order_by("pk")
    pks = list(rows.values_list("pk", flat=True)[:limit])
    eager = send_notification._get_current_object().app.conf.task_always_eager
    queued = 0
    for pk in pks:
        if enqueue(pk):
            queued += 1
        # SECURITY: run eagerly (no broker), a failure is this row's own and the rows after it still go: the
        # oldest row failing each time stopped every run here, and no later notice was retried (round 75).
        elif not eager:
            break  # the broker is still down; the next run tries again
    return queued
