"""``check --deploy``: authguard's Celery tasks have a broker, a schedule and a running worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, Tags, Warning, register

from authguard.celery import heartbeat_status, publishing_app
from authguard.checks.codes import Codes


def _shared_cache() -> bool:
    """Whether the default cache is shared between processes (a worker's heartbeat is visible here)."""
    try:
        backend = caches["default"]
    except Exception:
        return False
    return not isinstance(backend, LocMemCache | DummyCache)


@register(Tags.security, deploy=True)
def check_celery(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """``check --deploy``: authguard's tasks have a broker (W171), publish through an app that reads Django's
    ``CELERY_*`` settings (W172), have their periodic tasks scheduled (W174), and beat and a worker ran the
    heartbeat recently (W173). Nothing to say when the tasks run eagerly (no broker, in-process)."""
    try:
        app = publishing_app()
    except Exception as exc:  # a broken Celery configuration must not hide the other checks
        return [
            Warning(
                f"authguard could not read its Celery app: {exc!r}.",
                hint="See docs/integration.md, 'Celery'.",
                id=Codes.CELERY_APP_IGNORES_SETTINGS,
            )
        ]
    if app.eager:
        return []
    messages: list[CheckMessage] = []
    if app.settings_broker_url and app.broker_url != app.settings_broker_url:
        broker = app.broker_url or "Celery's default, amqp://localhost"
        messages.append(
            Warning(
                f"CELERY_BROKER_URL is set, but authguard's tasks publish through the Celery app "
                f"{app.main!r}, which does not read it (its broker: {broker}).",
                hint="Create the portal's app with authguard.celery.make_app('myportal') in "
                "myportal/celery.py and import it in myportal/__init__.py (docs/integration.md, 'Celery').",
                id=Codes.CELERY_APP_IGNORES_SETTINGS,
            )
        )
    elif not app.broker_url:
        messages.append(
            Warning(
                "authguard's Celery tasks are not run eagerly and no broker is set: notifications would be "
                "published to Celery's default amqp://localhost.",
                hint="Set CELERY_BROKER_URL (Redis: pip install 'authguard[redis]'), or "
                "CELERY_TASK_ALWAYS_EAGER = True on a single host without a broker.",
                id=Codes.CELERY_NO_BROKER,
            )
        )
    if not app.schedule_complete:
        messages.append(
            Warning(
                "The Celery app's beat_schedule lacks authguard's periodic tasks: notifications the broker "
                "missed are never retried, held orders and actions expire only when read, nothing is pruned.",
                hint="Use authguard.celery.make_app() or configure(app), or merge authguard.celery."
                "beat_schedule() into yours (a database scheduler: add its entries there and silence this).",
                id=Codes.CELERY_SCHEDULE_INCOMPLETE,
            )
        )
    if _shared_cache():
        status = heartbeat_status()
        if status.stale and not status.unknown:
            since = (
                f"for {status.minutes} minutes"
                if status.minutes is not None
                else "since the cache was last cleared (never, on a new install)"
            )
            messages.append(
                Warning(
                    f"No Celery worker has run authguard.heartbeat from beat {since}.",
                    hint="Run `celery -A myportal worker` and `celery -A myportal beat` "
                    "(docs/integration.md). Without them failed mails are never retried and nothing "
                    "expires or is pruned.",
                    id=Codes.CELERY_NO_HEARTBEAT,
                )
            )
    return messages
