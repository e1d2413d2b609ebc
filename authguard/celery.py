"""Celery for a portal that installs authguard: the app, the periodic tasks and the broker timeouts.

A portal's ``celery.py`` can be three lines::

    # myportal/celery.py
    import os
    from authguard.celery import make_app
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myportal.settings")
    app = make_app("myportal")

    # myportal/__init__.py: so the web processes publish through this app, not Celery's default one
    from .celery import app as celery_app

:func:`make_app` reads every ``CELERY_*`` Django setting, applies authguard's broker timeouts where the
portal set none (:func:`broker_options`), adds authguard's periodic tasks to ``beat_schedule``
(:func:`beat_schedule`) and discovers the installed apps' tasks. A portal with its own app calls
:func:`configure` on it instead. Run ``celery -A myportal worker`` and ``celery -A myportal beat`` (or one
``worker --beat`` on a single host).

Without an app that reads the Django settings, ``CELERY_BROKER_URL`` alone does nothing: authguard's tasks
would publish through Celery's default app to ``amqp://localhost``. Without a worker and beat, mails the
broker missed are never retried. The checks ``authguard.W171``-``W173`` (``manage.py check --deploy``) say
so, and the ``authguard.heartbeat`` task lets them tell a running beat from a silent one
(:func:`heartbeat_status`).
"""

# This module is ``authguard.celery``: with absolute imports (the default in Python 3), ``import celery``
# here and everywhere else still finds the Celery package, never this module.
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from authguard.conf import app_settings

if TYPE_CHECKING:
    from celery import Celery

#: Cache key of the last run of the ``authguard.heartbeat`` task (a Unix timestamp).
HEARTBEAT_KEY = "authguard:celery:heartbeat"
#: How long the heartbeat stays in the cache: long enough to say "none for days", not forever.
HEARTBEAT_TTL_SECONDS = 7 * 24 * 3600
#: How often beat sends the heartbeat (seconds).
HEARTBEAT_SECONDS = 60.0

#: authguard's periodic tasks, as ``beat_schedule`` entries (names are stable: a portal may override one by
#: giving its own entry the same name).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # The outbox's safety net: sends what the broker or the mail server missed (and stale claims).
    "authguard-retry-notifications": {"task": "authguard.retry_pending_notifications", "schedule": 60.0},
    # Held orders, held sensitive actions and staff approval requests past their expiry.
    "authguard-expire-held-orders": {"task": "authguard.expire_held_orders", "schedule": 30.0},
    # Population counts off the login path: add what logins appended into the counts scoring reads (issue 15;
    # without a beat the first login of each AUTHGUARD_POPULATION_FOLD_SECONDS period does it).
    "authguard-fold-population": {"task": "authguard.fold_population", "schedule": 300.0},
    # Busy accounts' finished days of orders summed into day totals: order checks read constant rows
    # (issue 11).
    "authguard-roll-up-orders": {"task": "authguard.roll_up_orders", "schedule": 3600.0},
    # Retention: ended sessions' records, unused population rows, old login events and notifications.
    "authguard-prune-retention": {"task": "authguard.prune_retention", "schedule": 24 * 3600.0},
    # Proof of life of beat, broker and worker together. A heartbeat older than a minute is dropped by the
    # worker (expires), so a backlog replayed after an outage does not pretend beat was running all along.
    "authguard-heartbeat": {
        "task": "authguard.heartbeat",
        "schedule": HEARTBEAT_SECONDS,
        "options": {"expires": HEARTBEAT_SECONDS},
    },
}

#: authguard's defaults for any broker (Celery setting names, lower case). A broker outage must not stall a
#: request: authguard also stops waiting after ``AUTHGUARD_BROKER_PUBLISH_SECONDS`` and the outbox row
#: waits for the retry task (docs/faults.md).
BROKER_DEFAULTS: dict[str, Any] = {
    "broker_connection_timeout": 1,
    # One quick retry of a publish; the outbox's periodic retry is the real retry policy.
    "task_publish_retry_policy": {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    },
    # authguard's tasks are idempotent: a task lost with its worker is run again, never lost.
    "task_acks_late": True,
    "worker_prefetch_multiplier": 1,
}
#: Redis transport: a broker that accepts connections and never answers makes the sockets give up. The read
#: timeout stays above the worker's 1-second BRPOP poll.
REDIS_TRANSPORT_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 3}
#: RabbitMQ (py-amqp): heartbeats notice a hung broker on established connections.
AMQP_HEARTBEAT_SECONDS = 10


def beat_schedule() -> dict[str, dict[str, Any]]:
    """authguard's periodic tasks as ``beat_schedule`` entries (a fresh copy: callers may change it)."""
    return copy.deepcopy(BEAT_SCHEDULE)


def _scheme(url: str | None) -> str:
    first = (url or "").split(";")[0].strip()  # Celery accepts "url1;url2" fail-over lists
    return urlsplit(first).scheme.lower()


def broker_options(broker_url: str | None = None) -> dict[str, Any]:
    """authguard's default Celery settings for ``broker_url``: the connection timeout, a one-retry publish,
    late acknowledgement, and the transport's socket timeouts (Redis, or no URL yet) or heartbeat
    (RabbitMQ)."""
    options = copy.deepcopy(BROKER_DEFAULTS)
    scheme = _scheme(broker_url)
    # No URL yet (eager, or set on the app at run time): the Redis options, the broker authguard[redis] uses.
    if scheme in ("", "redis", "rediss", "sentinel"):
        options["broker_transport_options"] = dict(REDIS_TRANSPORT_OPTIONS)
    elif scheme in ("amqp", "amqps", "pyamqp"):
        options["broker_heartbeat"] = AMQP_HEARTBEAT_SECONDS
    return options


def _set_by_portal(app: Celery, key: str, namespace: str | None) -> bool:
    """Whether the portal set ``key`` itself: in Django's settings (``CELERY_<KEY>``) or on the app."""
    from django.conf import settings

    if key in app.conf.changes:
        return True
    if namespace and settings.configured:
        return hasattr(settings, f"{namespace}_{key.upper()}")
    return False


def configure(app: Celery, *, namespace: str | None = "CELERY", schedule: bool = True) -> Celery:
    """Apply :func:`broker_options` to ``app`` where the portal set nothing itself, and add authguard's
    periodic tasks to its ``beat_schedule`` (the portal's entries of the same name win). Returns ``app``.

    Call it after ``app.config_from_object("django.conf:settings", namespace=namespace)``.
    """
    for key, value in broker_options(app.conf.broker_url).items():
        if not _set_by_portal(app, key, namespace):
            app.conf[key] = value
    if schedule:
        app.conf.beat_schedule = {**beat_schedule(), **(app.conf.beat_schedule or {})}
    return app


def make_app(main: str, *, namespace: str = "CELERY") -> Celery:
    """A Celery app for the portal: Django's ``CELERY_*`` settings, authguard's defaults (:func:`configure`),
    the installed apps' tasks. It becomes the current app, the one authguard's tasks publish through."""
    from celery import Celery

    app = Celery(main)
    app.config_from_object("django.conf:settings", namespace=namespace)
    configure(app, namespace=namespace)
    app.autodiscover_tasks()
    return app


# -- is anything running the tasks? -----------------------------------------------------------------------


def record_heartbeat(*, now: float | None = None) -> float:
    """The ``authguard.heartbeat`` task's work: store the time it ran in the shared cache; returns it."""
    from django.core.cache import cache

    at = time.time() if now is None else now
    cache.set(HEARTBEAT_KEY, at, HEARTBEAT_TTL_SECONDS)
    return at


@dataclass(frozen=True)
class HeartbeatStatus:
    """What the cache says about the last ``authguard.heartbeat`` (None: none recorded, or unreadable)."""

    last_run: datetime | None
    age_seconds: float | None
    #: True when no heartbeat is recorded or the last one is older than
    #: ``AUTHGUARD_CELERY_HEARTBEAT_STALE_SECONDS``.
    stale: bool
    #: The cache could not be read: nothing is known.
    unknown: bool = False

    @property
    def minutes(self) -> int | None:
        """Whole minutes since the last heartbeat (None: none recorded)."""
        return None if self.age_seconds is None else int(self.age_seconds // 60)


def heartbeat_status(*, now: float | None = None) -> HeartbeatStatus:
    """How long ago beat, the broker and a worker last ran ``authguard.heartbeat`` together."""
    from django.core.cache import cache

    try:
        raw = cache.get(HEARTBEAT_KEY)
    except Exception:
        return HeartbeatStatus(None, None, stale=True, unknown=True)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return HeartbeatStatus(None, None, stale=True)
    current = time.time() if now is None else now
    age = max(0.0, current - float(raw))
    return HeartbeatStatus(
        datetime.fromtimestamp(float(raw), tz=dt_timezone.utc),
        age,
        stale=age > app_settings.CELERY_HEARTBEAT_STALE_SECONDS,
    )


@dataclass(frozen=True)
class PublishingApp:
    """The Celery app authguard's tasks publish through in this process, as the checks see it."""

    main: str | None
    broker_url: str
    eager: bool
    #: ``CELERY_BROKER_URL`` from Django's settings ("" when unset).
    settings_broker_url: str
    #: Whether the app's schedule holds every task of :data:`BEAT_SCHEDULE`.
    schedule_complete: bool


def publishing_app() -> PublishingApp:
    """Describe the app ``authguard.tasks`` are bound to (the current Celery app of this process)."""
    from django.conf import settings

    # In the function: a portal's celery.py imports this module before Django is set up (no models yet).
    from authguard.notifications.delivery import send_notification

    app = send_notification._get_current_object().app
    conf = app.conf
    entries = (conf.beat_schedule or {}).values()
    scheduled = {entry.get("task") for entry in entries if isinstance(entry, dict)}
    return PublishingApp(
        main=app.main,
        broker_url=str(conf.broker_url or ""),
        eager=bool(conf.task_always_eager),
        settings_broker_url=str(getattr(settings, "CELERY_BROKER_URL", "") or ""),
        schedule_complete={e["task"] for e in BEAT_SCHEDULE.values()} <= scheduled,
    )


__all__ = [
    "BEAT_SCHEDULE",
    "BROKER_DEFAULTS",
    "HEARTBEAT_KEY",
    "HeartbeatStatus",
    "PublishingApp",
    "beat_schedule",
    "broker_options",
    "configure",
    "heartbeat_status",
    "make_app",
    "publishing_app",
    "record_heartbeat",
]
