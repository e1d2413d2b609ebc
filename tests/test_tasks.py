"""authguard's Celery tasks, run eagerly: retries with backoff while the mail server is down, claims that
never send twice, retention pruning, held-order expiry, and the beat schedule."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail

from authguard.models import LoginEvent, Notification, NotificationStatus, Outcome
from authguard.notifications.delivery import (
    STALE_CLAIM,
    backoff_seconds,
    claim,
    deliver,
    retry_pending_notifications,
    send_notification,
)
from authguard.notifications.outbox import notify
from authguard.tasks import expire_held_orders, prune_login_events
from demo_site.celery import app as celery_app

from .conftest import use_mail_backend

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks


@pytest.fixture
def mail_server_down(settings: Any) -> None:
    """A real SMTP backend pointed at a port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    smtp = "django.core.mail.backends.smtp.EmailBackend"
    use_mail_backend(settings, smtp, host="127.0.0.1", port=port, timeout=2)


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_seconds(30) == 3600


def test_mail_server_down_then_back_sends_once(
    user_factory: Any, on_commit: Any, mail_server_down: None, settings: Any
) -> None:
    alice = user_factory("alice")
    with time_machine.travel(T0, tick=False) as clock:
        with on_commit(execute=True):
            row = notify(alice, "factor_added", context={"factor": "passkey"})
        assert row is not None
        row.refresh_from_db()
        assert row.status == NotificationStatus.PENDING and row.attempts == 1
        assert row.next_attempt_at == T0 + timedelta(seconds=30) and "Connection" in row.last_error
        assert retry_pending_notifications() == 0  # not due yet: nothing queued
        clock.shift(timedelta(seconds=31))
        retry_pending_notifications()  # due, but the server is still down: backs off further
        row.refresh_from_db()
        assert row.attempts == 2 and row.next_attempt_at == T0 + timedelta(seconds=31 + 60)
        use_mail_backend(settings, "django.core.mail.backends.locmem.EmailBackend")  # the server is back
        clock.shift(timedelta(seconds=61))
        assert retry_pending_notifications() == 1
        assert retry_pending_notifications() == 0
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and row.attempts == 3
    assert len(mail.outbox) == 1


def test_gives_up_after_the_attempt_limit(user_factory: Any, mail_server_down: None, settings: Any) -> None:
    settings.AUTHGUARD_NOTIFICATION_MAX_ATTEMPTS = 2
    settings.ADMINS = [("Security desk", "desk@example.jp")]
    row = notify(user_factory("alice"), "factor_added", context={"factor": "passkey"})
    assert row is not None
    with time_machine.travel(T0, tick=False) as clock:
        assert deliver(row.pk) == "retry"
        clock.shift(timedelta(hours=2))
        assert deliver(row.pk) == "failed"
        clock.shift(timedelta(hours=2))
        assert retry_pending_notifications() == 1  # the staff alert below; the given-up row stays given up
    row.refresh_from_db()
    assert row.status == NotificationStatus.FAILED and row.attempts == 2
    # Staff hear that the customer was not warned (once, however often the task runs).
    alert = Notification.objects.get(kind="notification_failed")
    assert alert.staff and alert.to_email == "desk@example.jp"
    assert alert.context["failed_kind"] == "factor_added" and alert.context["account"] == "alice"


def test_only_one_claim_wins(user_factory: Any, on_commit: Any) -> None:
    with on_commit(execute=False):
        row = notify(user_factory("alice"), "factor_added", context={"factor": "passkey"})
    assert row is not None
    assert claim(row.pk) is True
    assert claim(row.pk) is False  # a second worker racing for it gets nothing
    assert deliver(row.pk) == "not_due"
    assert mail.outbox == []


def test_a_stale_claim_is_taken_again(user_factory: Any, on_commit: Any) -> None:
    """A worker that died mid-send leaves the row 'sending'; after STALE_CLAIM the retry task resends."""
    with time_machine.travel(T0, tick=False) as clock:
        with on_commit(execute=False):
            row = notify(user_factory("alice"), "factor_added", context={"factor": "passkey"})
        assert row is not None and claim(row.pk)
        assert retry_pending_notifications() == 0
        clock.shift(STALE_CLAIM + timedelta(seconds=1))
        assert retry_pending_notifications() == 1
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and len(mail.outbox) == 1


def test_send_notification_task_is_idempotent(user_factory: Any, on_commit: Any) -> None:
    with on_commit(execute=False):
        row = notify(user_factory("alice"), "factor_added", context={"factor": "passkey"})
    assert row is not None
    assert send_notification.delay(row.pk).get() == "sent"
    assert send_notification.delay(row.pk).get() == "not_due"
    assert send_notification.delay(10**9).get() == "not_due"  # a row that does not exist
    assert len(mail.outbox) == 1


def _event(user: Any, when: datetime) -> LoginEvent:
    return LoginEvent.objects.create(
        created_at=when,
        user=user,
        username="alice",
        password_ok=True,
        action="allow",
        outcome=Outcome.SIGNED_IN,
    )


def test_prune_deletes_events_past_retention(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_EVENT_RETENTION_DAYS = 30
    alice = user_factory("alice")
    with time_machine.travel(T0, tick=False):
        old = [_event(alice, T0 - timedelta(days=31 + i)) for i in range(5)]
        kept = _event(alice, T0 - timedelta(days=29))
        assert prune_login_events(batch=2) == 5
        assert prune_login_events() == 0
    assert list(LoginEvent.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not LoginEvent.objects.filter(pk__in=[e.pk for e in old]).exists()


def test_prune_keeps_unsent_notifications(user_factory: Any, settings: Any, on_commit: Any) -> None:
    settings.AUTHGUARD_EVENT_RETENTION_DAYS = 30
    alice = user_factory("alice")
    with time_machine.travel(T0 - timedelta(days=40), tick=False), on_commit(execute=True):
        sent = notify(alice, "factor_added", context={"factor": "passkey"})
    with time_machine.travel(T0 - timedelta(days=40), tick=False), on_commit(execute=False):
        waiting = notify(alice, "factor_removed", context={"factor": "totp"})
    assert sent is not None and waiting is not None
    with time_machine.travel(T0, tick=False):
        prune_login_events()
    assert list(Notification.objects.values_list("pk", flat=True)) == [waiting.pk]


def test_default_retention_is_400_days() -> None:
    from authguard.conf import app_settings

    assert app_settings.EVENT_RETENTION_DAYS == 400


def test_expire_held_orders_runs_the_order_guard(db: Any) -> None:
    assert expire_held_orders.delay().get() == 0  # nothing held: nothing expired, no error


def test_beat_schedule_names_registered_tasks() -> None:
    # The demo's app takes authguard's schedule from authguard.celery (issue 14, item 6).
    schedule = celery_app.conf.beat_schedule
    tasks = {entry["task"] for entry in schedule.values()}
    assert tasks == {
        "authguard.retry_pending_notifications",
        "authguard.expire_held_orders",
        "authguard.fold_population",
        "authguard.roll_up_orders",
        "authguard.prune_retention",
        "authguard.heartbeat",
    }
    celery_app.loader.import_default_modules()
    assert tasks <= set(celery_app.tasks)
