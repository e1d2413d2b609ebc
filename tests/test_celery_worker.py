"""Acceptance: a real ``celery worker`` on Redis sends a new-device notification exactly once, and one
written while the broker was down goes out once after it returns. None lost, none doubled.

The worker is a separate process, so it must open the very database the test writes: PostgreSQL's test
database as it is, and on SQLite (whose pytest database lives in this process's memory) a file database
that this module switches to for its own tests and then switches back from.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from authguard.models import LoginEvent, Notification, NotificationStatus, Outcome
from authguard.notifications import messages as notifications_messages
from authguard.notifications import outbox as notifications
from authguard.notifications.delivery import retry_pending_notifications, send_notification
from authguard.testing import mail_settings
from demo_site.celery import app as celery_app

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 45


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Overrides conftest's ``cache.clear()``: on Redis that is FLUSHDB, which would also wipe the broker's
    queues and bindings (they share the database). Only the cache's own keys are deleted here."""

    def clear() -> None:
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        for key in client.scan_iter(match=cache.make_key("*")):
            client.delete(key)

    clear()
    yield
    clear()


# -- a database the worker can share --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_database(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The connection settings of a database both this process and the worker open.

    SQLite's pytest database is in memory; for this module it is swapped for a file database (created
    the way pytest-django creates its own), while a reference keeps the in-memory one alive for the
    modules that follow.
    """
    with django_db_blocker.unblock():
        if connection.vendor != "sqlite" or not connection.is_in_memory_db():
            yield dict(connection.settings_dict)
            return
        connection.ensure_connection()
        memory = connection.connection  # holding it keeps the in-memory test database alive
        memory_name = connection.settings_dict["NAME"]
        test_settings = dict(connection.settings_dict.get("TEST") or {})
        path = tmp_path_factory.mktemp("worker-db") / "authguard-worker.sqlite3"
        connection.connection = None
        connection.settings_dict["TEST"] = {**test_settings, "NAME": str(path)}
        try:
            connection.creation.create_test_db(verbosity=0, autoclobber=True)
            yield dict(connection.settings_dict)
        finally:
            connection.creation.destroy_test_db(memory_name, verbosity=0)
            connection.settings_dict["TEST"] = test_settings
            connection.connection = memory


# -- the worker -------------------------------------------------------------------------------------------


@dataclass
class Worker:
    """A running ``celery -A demo_site worker`` and the folder its mail backend writes to."""

    process: subprocess.Popen[bytes]
    mail_dir: Path
    log: Path
    queue: str

    def messages(self) -> list[str]:
        """Every message the worker's file-based mail backend wrote, one string each."""
        out: list[str] = []
        for file in sorted(self.mail_dir.glob("*.log")):
            chunks = file.read_text(encoding="utf-8", errors="replace").split("\n" + "-" * 79 + "\n")
            out += [c for c in chunks if "Message-ID:" in c]
        return out

    def count(self, message_id: str) -> int:
        return sum(1 for m in self.messages() if f"Message-ID: {message_id}" in m)


def _worker_settings(tmp: Path, database: dict[str, Any], redis_url: str, queue: str, mail_dir: Path) -> str:
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    db = {k: (str(v) if k == "NAME" else v) for k, v in database.items() if k in keys}
    module = f"authguard_worker_settings_{uuid.uuid4().hex[:8]}"
    mail = mail_settings("django.core.mail.backends.filebased.EmailBackend", file_path=str(mail_dir))
    (tmp / f"{module}.py").write_text(
        "from tests.settings import *  # noqa\n"
        f"DATABASES = {{'default': {json.loads(json.dumps(db))!r}}}\n"
        f"CELERY_BROKER_URL = {redis_url!r}\n"
        "CELERY_TASK_ALWAYS_EAGER = False\n"
        f"CELERY_TASK_DEFAULT_QUEUE = {queue!r}\n"
        "CELERY_BEAT_SCHEDULE = {}\n" + "".join(f"{name} = {value!r}\n" for name, value in mail.items()),
        encoding="utf-8",
    )
    return module


@pytest.fixture(scope="module")
def redis_url() -> str:
    return os.environ["AUTHGUARD_TEST_REDIS_URL"]


@pytest.fixture(scope="module")
def worker(
    shared_database: dict[str, Any], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """A real worker process on Redis (its own queue, threads so it can race itself), always stopped."""
    tmp = tmp_path_factory.mktemp("worker")
    mail_dir = tmp / "mail"
    mail_dir.mkdir()
    queue = f"authguard-test-{uuid.uuid4().hex[:12]}"
    module = _worker_settings(tmp, shared_database, redis_url, queue, mail_dir)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": module,
        "PYTHONPATH": os.pathsep.join([str(tmp), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    log = tmp / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "demo_site", "worker", "--pool=threads"]
    command += ["--concurrency=4", "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel=INFO"]
    command += [f"--hostname=authguard-test-{uuid.uuid4().hex[:6]}@%h"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Worker(process, mail_dir, log, queue)
    try:
        _wait(lambda: "ready" in log.read_text(errors="replace"), what="the worker to start", worker=running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        _forget_queue(redis_url, queue)


def _forget_queue(redis_url: str, queue: str) -> None:
    """Delete the test queue's list and bindings, so runs leave nothing behind in the broker."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
    finally:
        client.close()


def _wait(condition: Callable[[], bool], *, what: str, worker: Worker, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            break
        time.sleep(0.2)
    tail = worker.log.read_text(errors="replace")[-3000:] if worker.log.exists() else ""
    pytest.fail(f"timed out waiting for {what}; worker log:\n{tail}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


@pytest.fixture
def producer(redis_url: str, worker: Worker) -> Iterator[Callable[[str], None]]:
    """Point this process's Celery producer at a broker URL (real Redis or a closed port)."""
    conf = celery_app.conf
    saved = {k: conf[k] for k in ("broker_url", "task_always_eager", "task_default_queue")}

    def use(url: str) -> None:
        conf.broker_url = url
        conf.task_always_eager = False
        conf.task_default_queue = worker.queue
        # Drop pooled connections so the next publish really uses ``url``.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    use(redis_url)
    try:
        yield use
    finally:
        for key, value in saved.items():
            conf[key] = value
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


def _login(user: Any, *, minutes_ago: int, device_new: bool) -> LoginEvent:
    findings = [{"code": "new_device", "score": 25, "reason": "", "evidence": {}}] if device_new else []
    return LoginEvent.objects.create(
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        user=user,
        username=user.get_username(),
        password_ok=True,
        ip="203.0.113.10",
        country="JP",
        city="Tokyo",
        device_summary="Chrome 131 on Windows",
        score=25 if device_new else 0,
        action="allow",
        outcome=Outcome.SIGNED_IN,
        findings=findings,
    )


def _message_id(row: Notification) -> str:
    return notifications_messages.build_message(row).extra_headers["Message-ID"]


def _status(pk: int) -> str:
    return Notification.objects.values_list("status", flat=True).get(pk=pk)


def test_worker_sends_a_new_device_notification_exactly_once(
    worker: Worker, producer: Callable[[str], None], user_factory: Any
) -> None:
    alice = user_factory("alice")
    _login(alice, minutes_ago=60 * 24, device_new=False)
    with transaction.atomic():  # the login's transaction: its event and its outbox row commit together
        event = _login(alice, minutes_ago=0, device_new=True)
        (row,) = notifications.notify_login(event)
    _wait(
        lambda: _status(row.pk) == NotificationStatus.SENT, what="the notification to be sent", worker=worker
    )
    message_id = _message_id(row)
    _wait(lambda: worker.count(message_id) == 1, what="the mail file", worker=worker)

    # Duplicate deliveries (the broker redelivering, the retry task racing) send nothing more...
    for _ in range(6):
        send_notification.delay(row.pk)
    retry_pending_notifications.delay()
    # ...and a sentinel queued after them shows they were all processed.
    sentinel = notifications.notify(
        alice, "factor_added", context={"factor": "passkey"}, dedupe_key="sentinel"
    )
    assert sentinel is not None
    _wait(lambda: _status(sentinel.pk) == NotificationStatus.SENT, what="the sentinel", worker=worker)
    _wait(lambda: worker.count(_message_id(sentinel)) == 1, what="the sentinel's mail", worker=worker)
    time.sleep(1.0)  # any straggler of the duplicates would have written by now
    assert worker.count(message_id) == 1
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and row.attempts == 1
    text = next(m for m in worker.messages() if message_id in m)
    assert "alice@example.jp" in text and "Tokyo" in text and "Chrome 131 on Windows" in text


def test_notification_written_while_the_broker_is_down_goes_out_once_after(
    worker: Worker, producer: Callable[[str], None], user_factory: Any
) -> None:
    bob = user_factory("bob")
    _login(bob, minutes_ago=60 * 24, device_new=False)
    producer(f"redis://127.0.0.1:{_closed_port()}/0")  # the broker is down when the event happens
    started = time.monotonic()
    with transaction.atomic():
        event = _login(bob, minutes_ago=0, device_new=True)
        (row,) = notifications.notify_login(event)
    assert time.monotonic() - started < 15, "a broker outage must not stall the login"
    assert LoginEvent.objects.filter(pk=event.pk).exists()  # the login itself went through
    message_id = _message_id(row)
    time.sleep(2.0)
    assert _status(row.pk) == NotificationStatus.PENDING and worker.count(message_id) == 0  # kept, not lost
    assert retry_pending_notifications() == 0  # still down: the periodic task queues nothing, loses nothing
    assert _status(row.pk) == NotificationStatus.PENDING

    producer(os.environ["AUTHGUARD_TEST_REDIS_URL"])  # the broker is back
    assert retry_pending_notifications() >= 1  # what beat runs every minute
    _wait(lambda: _status(row.pk) == NotificationStatus.SENT, what="the retried notification", worker=worker)
    _wait(lambda: worker.count(message_id) == 1, what="the retried mail", worker=worker)
    retry_pending_notifications()  # a second pass finds nothing to send
    send_notification.delay(row.pk)
    sentinel = notifications.notify(bob, "factor_added", context={"factor": "passkey"}, dedupe_key="sentinel")
    assert sentinel is not None
    _wait(lambda: _status(sentinel.pk) == NotificationStatus.SENT, what="the sentinel", worker=worker)
    time.sleep(1.0)
    assert worker.count(message_id) == 1
    assert Notification.objects.get(pk=row.pk).attempts == 1
