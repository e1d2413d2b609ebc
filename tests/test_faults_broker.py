"""Faults of the Celery broker: one that accepts connections and never answers (a socket server of the test's
own), and one that is gone. The request that holds an order (and writes its outbox row) answers quickly, the
row stays ``pending`` for the retry task, a log line says so, and no publishing thread is left behind.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.db import transaction

from authguard import resilience
from authguard.models import HeldOrder, Notification, NotificationStatus
from authguard.notifications.delivery import enqueue, retry_pending_notifications
from authguard.notifications.outbox import notify
from demo_site.brokerage import services
from demo_site.celery import app as celery_app

from .conftest import IP_TOKYO, OrderApi

PASSWORD = "kenji-test-2025"
#: Only the mass-liquidation rule: selling all 2,000 NTT is held for confirmation (and notified).
PLAIN_RULES = [{"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {}}]
#: What a request may wait for the broker: AUTHGUARD_BROKER_PUBLISH_SECONDS (1 s) and the rest of the request.
QUICK_SECONDS = 2.0


class SilentBroker:
    """A TCP server that accepts every connection and never sends a byte: a hung broker."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = int(self.server.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self.server.accept()
            except OSError:  # shut down
                return
            if self.closed:
                conn.close()
                return
            self.accepted.append(conn)

    def close(self) -> None:
        """Stop listening and drop every connection: clients waiting for an answer see the end of stream."""
        self.closed = True
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.server.close()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_broker() -> Iterator[SilentBroker]:
    broker = SilentBroker()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def producer() -> Iterator[Any]:
    """Point this process's Celery producer at a broker URL (as the demo's settings configure it)."""
    conf = celery_app.conf
    saved = {k: conf[k] for k in ("broker_url", "task_always_eager", "broker_transport_options")}

    def drop_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    def use(url: str, **transport_options: Any) -> None:
        conf.broker_url = url
        conf.task_always_eager = False
        if transport_options:
            conf.broker_transport_options = transport_options
        drop_pools()

    def eager() -> None:
        conf.task_always_eager = True
        drop_pools()

    use.eager = eager  # type: ignore[attr-defined]
    resilience.reset_breakers()
    try:
        yield use
    finally:
        for key, value in saved.items():
            conf[key] = value
        drop_pools()
        resilience.reset_breakers()


def publishing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("authguard-publish-")]


def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def kenji(db: Any, settings: Any) -> Any:
    settings.AUTHGUARD_ORDER_RULES = PLAIN_RULES
    settings.AUTHGUARD_RISK_SIGNALS = []  # logins are allowed: the broker is under test
    services.sync_instruments()
    return services.open_account(
        "kenji", PASSWORD, email="kenji@example.jp", cash=Decimal(0), holdings={"9432": 2000}
    )


def pending_row(user: Any) -> Notification:
    with transaction.atomic():
        row = notify(user, "password_changed", context={"account": user.get_username()})
    assert row is not None
    return row


@pytest.mark.django_db(transaction=True)
def test_a_hung_broker_does_not_hold_up_an_order_hold_and_its_message_stays_pending(
    kenji: Any, producer: Any, silent_broker: SilentBroker, caplog: pytest.LogCaptureFixture
) -> None:
    assert celery_app.conf.broker_transport_options  # the demo's socket timeouts (demo_site/settings.py)
    client = OrderApi(REMOTE_ADDR=IP_TOKYO)
    client.login("kenji", PASSWORD)
    producer(silent_broker.url)
    started = time.monotonic()
    response = client.order("sell", "9432", 2000)
    seconds = time.monotonic() - started
    # Before: the request thread waited in the publish until gunicorn killed the worker.
    assert response.status_code == 202, response.content
    assert seconds < QUICK_SECONDS, seconds
    held = HeldOrder.objects.get(pk=response.json()["confirmation"]["id"])
    assert held.status == HeldOrder.Status.PENDING
    row = Notification.objects.get(user=kenji, kind="order_held")
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 0)
    assert silent_broker.accepted  # the broker really was reached, and never answered
    assert any(
        r.levelname == "WARNING" and f"could not queue notification {row.pk}" in r.getMessage()
        for r in caplog.records
    )
    # The publish given up on ends by the transport's own socket timeout: no thread is left stuck.
    assert wait_until(lambda: not publishing_threads(), 10), publishing_threads()

    producer.eager()  # the broker is back: the periodic retry task sends it, once
    assert retry_pending_notifications() == 1
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT
    assert len(mail.outbox) == 1 and "waiting for your confirmation" in mail.outbox[0].subject


@pytest.mark.django_db(transaction=True)
def test_without_transport_timeouts_the_request_still_waits_at_most_the_publish_bound(
    kenji: Any, producer: Any, silent_broker: SilentBroker, settings: Any
) -> None:
    settings.AUTHGUARD_BROKER_PUBLISH_SECONDS = 0.5
    # A portal that set no socket timeouts: kombu would wait for an answer forever.
    producer(silent_broker.url, socket_timeout=None, socket_connect_timeout=None)
    row = pending_row(kenji)
    row.refresh_from_db()
    assert row.status == NotificationStatus.PENDING
    started = time.monotonic()
    assert enqueue(row.pk) is False
    assert time.monotonic() - started < 1.0
    assert publishing_threads()  # still stuck in the socket, but not on the request thread
    silent_broker.close()  # the broker goes away: the stuck read fails and the thread ends
    assert wait_until(lambda: not publishing_threads(), 10), publishing_threads()
    row.refresh_from_db()
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 0)


@pytest.mark.django_db(transaction=True)
def test_after_repeated_failures_the_breaker_skips_the_broker_at_once_then_tries_again(
    kenji: Any, producer: Any, silent_broker: SilentBroker, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AUTHGUARD_BROKER_PUBLISH_SECONDS = 0.3
    settings.AUTHGUARD_CIRCUIT_BREAKER = {"failures": 2, "reset_seconds": 1}
    producer(silent_broker.url)
    rows = [pending_row(kenji) for _ in range(4)]  # each commit tried (and failed) to publish once
    assert Notification.objects.filter(status=NotificationStatus.PENDING).count() == 4
    assert any("circuit open" in r.getMessage() for r in caplog.records)
    started = time.monotonic()
    assert enqueue(rows[0].pk) is False
    assert time.monotonic() - started < 0.05  # skipped: the broker is not even tried
    assert any("broker circuit open" in r.getMessage() for r in caplog.records)
    assert retry_pending_notifications() == 0  # the periodic task does not grind through a dead broker

    # After reset_seconds one trial call goes to the broker (and fails: it is still hung), then skip again.
    breaker = resilience.broker_breaker(silent_broker.url)
    assert breaker.state == resilience.OPEN
    time.sleep(1.05)
    assert breaker.state == resilience.HALF_OPEN
    started = time.monotonic()
    assert enqueue(rows[0].pk) is False
    assert 0.25 < time.monotonic() - started < 1.0  # tried, for the publish bound
    assert breaker.state == resilience.OPEN

    # A working broker: published.
    producer("memory://")
    assert enqueue(rows[0].pk) is True
    with celery_app.connection_for_write("memory://") as memory:
        memory.default_channel.queue_purge(celery_app.conf.task_default_queue)


@pytest.mark.django_db(transaction=True)
def test_a_stopped_broker_fails_fast_and_the_row_waits_for_the_retry_task(kenji: Any, producer: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = int(s.getsockname()[1])
    producer(f"redis://127.0.0.1:{closed}/0")
    started = time.monotonic()
    row = pending_row(kenji)
    assert time.monotonic() - started < QUICK_SECONDS
    row.refresh_from_db()
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 0)
    producer.eager()
    assert retry_pending_notifications() == 1
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT
