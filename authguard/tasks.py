"""authguard's Celery tasks. Each takes primary keys (never model instances) and is idempotent.

* :func:`send_notification` sends one outbox row, at most once per claim (see
:mod:`authguard.notifications.outbox`).
* :func:`retry_pending_notifications` (periodic) re-queues rows the broker or the mail server missed.
* :func:`expire_held_orders` (periodic) cancels held orders past their expiry, and with them held sensitive
  actions (withdrawals, bank accounts) and staff approval requests past theirs.
* :func:`roll_up_orders` (periodic, hourly) sums busy accounts' placed orders of finished days into day
  totals, so an order check reads a constant number of rows (:mod:`authguard.orders.rollup`).
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

from celery import shared_task
from django.utils import timezone

from authguard import retention
from authguard.actions.flow import expire_due as expire_actions
from authguard.celery import record_heartbeat
from authguard.console.approvals import expire_due as expire_approvals
from authguard.orders import rollup
from authguard.orders.guard import expire_due
from authguard.risk.history import fold_population as fold

logger = logging.getLogger(__name__)


@shared_task(name="authguard.expire_held_orders")
def expire_held_orders() -> int:
    """Expire held orders past their deadline (the order guard's ``expire_due``); returns how many."""

    # Held actions and staff requests also expire when read; this keeps the console's lists true too.
    return int(expire_due()) + int(expire_actions()) + int(expire_approvals())


@shared_task(name="authguard.fold_population")
def fold_population() -> int:
    """Add the population values logins appended into the counts scoring reads; returns how many.

    Periodic (every few minutes): logins only append (:mod:`authguard.models.population`), so no login
    waits on the shared count rows (issue 15).
    """

    return fold()


@shared_task(name="authguard.roll_up_orders")
def roll_up_orders() -> int:
    """Roll busy accounts' placed orders of finished days up into day totals; returns how many rows.

    Only a speed-up: an account not rolled up is judged on the same exposure, from the ledger's rows.
    """

    return rollup.roll_up_accounts(now=timezone.now())


@shared_task(name="authguard.prune_login_events")
def prune_login_events(batch: int = 5000) -> int:
    """Delete login events (and sent or skipped notifications) past the retention period.

    Deletes by primary-key ranges (:mod:`authguard.retention`) so a large backlog never holds a long lock
    nor rescans what it deleted; returns how many events went.
    """

    now = timezone.now()  # one cutoff for both tables
    events = retention.prune_login_events(batch=batch, now=now)
    retention.prune_notifications(batch=batch, now=now)
    return events.matched


@shared_task(name="authguard.prune_retention")
def prune_retention(batch: int = 5000) -> dict[str, int]:
    """Run every prune of :mod:`authguard.retention` (daily); returns rows deleted per table.

    Includes what :func:`prune_login_events` does, so a schedule needs only one of the two.
    """

    return {result.what: result.matched for result in retention.prune_all(batch=batch)}


@shared_task(name="authguard.heartbeat", ignore_result=True)
def heartbeat() -> float:
    """Record in the shared cache that this task ran now (:func:`authguard.celery.heartbeat_status`)."""

    return record_heartbeat()
