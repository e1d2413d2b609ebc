"""authguard's Celery tasks. Each takes primary keys (never model instances) and is idempotent.

* :func:`send_notification` sends one outbox row, at most once per claim (see
:mod:`authguard.notifications.outbox`).
* :func:`retry_pending_notifications` (periodic) re-queues rows the broker or the mail server missed.
* :func:`expire_held_orders` (periodic) cancels held orders past their expiry, and with them held sensitive
  actions (withdrawals, bank accounts) and staff approval requests past theirs.
* :func:`prune_login_events` (periodic) deletes login events past ``AUTHGUARD_EVENT_RETENTION_DAYS``.
* :func:`prune_retention` (periodic, daily) runs every prune of :mod:`authguard.retention`: stale session
  records, dead population rows, old login events and notifications.
* :func:`heartbeat` (periodic, every minute) records that beat, the broker and a worker are running, so
  ``manage.py check --deploy`` (``authguard.W173``) can say when they are not.

:func:`authguard.celery.beat_schedule` is the schedule of the periodic ones. All of them also run eagerly
(``CELERY_TASK_ALWAYS_EAGER``), as in the demo and the tests.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.db.models import F, Q
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import Notification, NotificationStatus

logger = logging.getLogger(__name__)

#: A claim older than this is presumed dead (its worker crashed mid-send) and may be taken again.
STALE_CLAIM = timedelta(minutes=10)
#: Backoff of the n-th failed attempt: 30 s, 1 min, 2 min, ... capped at one hour.
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


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
    now = now or timezone.now()
    updated = Notification.objects.filter(Q(pk=pk) & claimable(now)).update(
        status=NotificationStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    return updated == 1


def deliver(pk: int) -> str:
    """Claim and send one outbox row; returns what happened (``sent``, ``not_due``, ``retry``, ``failed``).

    The worker's part of :func:`send_notification`, callable without Celery.
    """
    from authguard.notifications.outbox import LinkInMessage, build_message

    now = timezone.now()
    if not claim(pk, now=now):
        return "not_due"  # already sent, being sent, skipped, or not due yet
    notification = Notification.objects.select_related("user").get(pk=pk)
    try:
        message = build_message(notification)
    except LinkInMessage as exc:
        # SECURITY: never send a security mail that carries a link; this is a bug to fix, not to retry.
        logger.error("authguard: %s", exc)
        _finish(pk, NotificationStatus.FAILED, error=str(exc))
        return "failed"
    try:
        message.send(fail_silently=False)
    except Exception as exc:
        attempts = notification.attempts
        if attempts >= app_settings.NOTIFICATION_MAX_ATTEMPTS:
            logger.error("authguard: giving up notification %s after %s attempts: %s", pk, attempts, exc)
            _finish(pk, NotificationStatus.FAILED, error=repr(exc))
            return "failed"
        logger.warning("authguard: notification %s not sent (attempt %s): %s", pk, attempts, exc)
        Notification.objects.filter(pk=pk, status=NotificationStatus.SENDING).update(
            status=NotificationStatus.PENDING,
            next_attempt_at=timezone.now() + timedelta(seconds=backoff_seconds(attempts)),
            last_error=repr(exc)[:300],
        )
        return "retry"
    _finish(pk, NotificationStatus.SENT, error="")
    return "sent"


def _finish(pk: int, status: str, *, error: str) -> None:
    fields: dict[str, Any] = {"status": status, "last_error": error[:300]}
    if status == NotificationStatus.SENT:
        fields["sent_at"] = timezone.now()
    updated = Notification.objects.filter(pk=pk, status=NotificationStatus.SENDING).update(**fields)
    if updated and status == NotificationStatus.FAILED:
        _alert_staff(pk)


def _alert_staff(pk: int) -> None:
    """Tell staff that a customer was not warned (never for staff messages: no alert loops)."""
    from authguard.notifications.outbox import notify_staff

    row = Notification.objects.select_related("user").get(pk=pk)
    if row.staff:
        return
    context: dict[str, Any] = {"failed_kind": row.kind, "time": row.created_at, "attempts": row.attempts}
    if row.user is not None:
        context.update(account=row.user.get_username(), account_id=row.user.pk)
    notify_staff("notification_failed", context=context, dedupe_key=f"failed:{pk}")


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
    from authguard.notifications.outbox import enqueue

    rows = Notification.objects.filter(claimable(timezone.now())).order_by("pk")
    pks = list(rows.values_list("pk", flat=True)[:limit])
    queued = 0
    for pk in pks:
        if enqueue(pk):
            queued += 1
        else:
            break  # the broker is still down; the next run tries again
    return queued


@shared_task(name="authguard.expire_held_orders")
def expire_held_orders() -> int:
    """Expire held orders past their deadline (the order guard's ``expire_due``); returns how many."""
    from authguard.actions.flow import expire_due as expire_actions
    from authguard.console.approvals import expire_due as expire_approvals
    from authguard.orders.guard import expire_due

    # Held actions and staff requests also expire when read; this keeps the console's lists true too.
    return int(expire_due()) + int(expire_actions()) + int(expire_approvals())


@shared_task(name="authguard.fold_population")
def fold_population() -> int:
    """Add the population values logins appended into the counts scoring reads; returns how many.

    Periodic (every few minutes): logins only append (:mod:`authguard.models.population`), so no login
    waits on the shared count rows (issue 15).
    """
    from authguard.risk.history import fold_population as fold

    return fold()


@shared_task(name="authguard.prune_login_events")
def prune_login_events(batch: int = 5000) -> int:
    """Delete login events (and sent or skipped notifications) past the retention period.

    Deletes by primary-key ranges (:mod:`authguard.retention`) so a large backlog never holds a long lock
    nor rescans what it deleted; returns how many events went.
    """
    from authguard import retention

    now = timezone.now()  # one cutoff for both tables
    events = retention.prune_login_events(batch=batch, now=now)
    retention.prune_notifications(batch=batch, now=now)
    return events.matched


@shared_task(name="authguard.prune_retention")
def prune_retention(batch: int = 5000) -> dict[str, int]:
    """Run every prune of :mod:`authguard.retention` (daily); returns rows deleted per table.

    Includes what :func:`prune_login_events` does, so a schedule needs only one of the two.
    """
    from authguard import retention

    return {result.what: result.matched for result in retention.prune_all(batch=batch)}


@shared_task(name="authguard.heartbeat", ignore_result=True)
def heartbeat() -> float:
    """Record in the shared cache that this task ran now (:func:`authguard.celery.heartbeat_status`)."""
    from authguard.celery import record_heartbeat

    return record_heartbeat()
