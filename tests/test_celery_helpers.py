"""Issue 14 item 6: ``authguard.celery``, the portal's Celery app in three lines.

The beat schedule names real registered tasks, :func:`configure` applies authguard's broker timeouts where
the portal set none, the deploy checks notice an app without a broker (W171), one that ignores
``CELERY_BROKER_URL`` (W172), a schedule without authguard's tasks (W174) and a silent beat (W173, through
the ``authguard.heartbeat`` task).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from celery import Celery
from django.core.cache import cache
from django.core.checks import run_checks
from django.utils import timezone

import authguard.celery as helpers
from authguard.celery import (
    BEAT_SCHEDULE,
    HEARTBEAT_KEY,
    beat_schedule,
    broker_options,
    configure,
    heartbeat_status,
    make_app,
    publishing_app,
    record_heartbeat,
)
from authguard.checks import Codes
from authguard.tasks import heartbeat
from demo_site.celery import app as demo_app

REDIS = "redis://127.0.0.1:6399/0"  # never connected to: the checks read configuration only
CELERY_IDS = {
    Codes.CELERY_NO_BROKER,
    Codes.CELERY_APP_IGNORES_SETTINGS,
    Codes.CELERY_NO_HEARTBEAT,
    Codes.CELERY_SCHEDULE_INCOMPLETE,
}


def deploy_ids() -> set[str]:
    messages = run_checks(include_deployment_checks=True, tags=["security"])
    return {m.id for m in messages if m.id in CELERY_IDS}


@pytest.fixture
def portal_app() -> Iterator[None]:
    """Tests below make other apps current, as a portal's process would; the demo's comes back after."""
    yield
    demo_app.set_current()


@pytest.fixture
def local_cache(settings: Any) -> None:
    """A per-process cache, whatever the test leg (on the Redis leg the cache is shared)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def shared_cache(settings: Any, tmp_path: Path) -> None:
    """A cache another process could share (the checks skip the heartbeat on a per-process cache)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }


# -- the schedule -----------------------------------------------------------------------------------------


def test_beat_schedule_names_real_registered_tasks() -> None:
    demo_app.loader.import_default_modules()
    tasks = {entry["task"] for entry in beat_schedule().values()}
    assert tasks == {
        "authguard.retry_pending_notifications",
        "authguard.expire_held_orders",
        "authguard.fold_population",
        "authguard.roll_up_orders",
        "authguard.prune_retention",
        "authguard.heartbeat",
    }
    assert tasks <= set(demo_app.tasks)
    # The demo's app (make_app) runs every one of them.
    assert {e["task"] for e in demo_app.conf.beat_schedule.values()} >= tasks
    assert demo_app.conf.beat_schedule["authguard-heartbeat"]["options"] == {"expires": 60.0}


def test_beat_schedule_is_a_copy() -> None:
    schedule = beat_schedule()
    schedule["authguard-heartbeat"]["options"]["expires"] = 1
    del schedule["authguard-prune-retention"]
    assert BEAT_SCHEDULE["authguard-heartbeat"]["options"] == {"expires": 60.0}
    assert "authguard-prune-retention" in beat_schedule()


# -- broker timeouts ---------------------------------------------------------------------------------------


def test_configure_applies_authguards_broker_timeouts_on_redis() -> None:
    app = Celery("portal", set_as_current=False)
    app.conf.broker_url = REDIS
    assert app.conf.broker_connection_timeout == 4  # Celery's own default
    configure(app, namespace=None)
    assert app.conf.broker_connection_timeout == 1
    assert app.conf.broker_transport_options == {"socket_connect_timeout": 1, "socket_timeout": 3}
    assert app.conf.task_publish_retry_policy["max_retries"] == 1
    assert app.conf.task_acks_late is True and app.conf.worker_prefetch_multiplier == 1
    assert set(app.conf.beat_schedule) == set(BEAT_SCHEDULE)


def test_rabbitmq_gets_a_heartbeat_not_redis_socket_options() -> None:
    options = broker_options("amqp://guest@rabbit:5672//")
    assert options["broker_heartbeat"] == 10 and "broker_transport_options" not in options
    assert "broker_heartbeat" not in broker_options("rediss://redis:6380/0")


def test_the_portals_own_settings_win(settings: Any) -> None:
    settings.CELERY_BROKER_URL = REDIS
    settings.CELERY_BROKER_CONNECTION_TIMEOUT = 7
    settings.CELERY_BEAT_SCHEDULE = {
        "authguard-expire-held-orders": {"task": "authguard.expire_held_orders", "schedule": 10.0},
        "portal-report": {"task": "portal.report", "schedule": 3600.0},
    }
    app = Celery("portal", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    configure(app)
    assert app.conf.broker_connection_timeout == 7
    assert app.conf.broker_transport_options == {"socket_connect_timeout": 1, "socket_timeout": 3}
    schedule = app.conf.beat_schedule
    assert schedule["authguard-expire-held-orders"]["schedule"] == 10.0
    assert {"portal-report", "authguard-heartbeat", "authguard-retry-notifications"} <= set(schedule)


def test_the_demo_uses_the_helper() -> None:
    from django.conf import settings

    assert not hasattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS")
    assert not hasattr(settings, "CELERY_BROKER_CONNECTION_TIMEOUT")
    assert demo_app.conf.broker_connection_timeout == 1
    assert demo_app.conf.task_acks_late is True


# -- the deploy checks ---------------------------------------------------------------------------------------


def test_the_test_settings_run_eagerly_and_pass() -> None:
    assert publishing_app().eager
    assert deploy_ids() == set()


def test_an_app_without_a_broker_is_w171(portal_app: None, local_cache: None) -> None:
    Celery("portal")  # a portal that made an app and configured nothing: it is the current app
    assert publishing_app().main == "portal" and not publishing_app().eager
    assert deploy_ids() == {Codes.CELERY_NO_BROKER, Codes.CELERY_SCHEDULE_INCOMPLETE}


def test_a_broker_setting_no_app_reads_is_w172(portal_app: None, settings: Any) -> None:
    settings.CELERY_BROKER_URL = REDIS
    Celery("default")  # Celery's default app: CELERY_BROKER_URL alone publishes to amqp://localhost
    ids = deploy_ids()
    assert Codes.CELERY_APP_IGNORES_SETTINGS in ids and Codes.CELERY_NO_BROKER not in ids
    [message] = [
        m for m in run_checks(include_deployment_checks=True) if m.id == Codes.CELERY_APP_IGNORES_SETTINGS
    ]
    assert "amqp://localhost" in message.msg and "make_app" in message.hint


def test_make_app_fixes_them(portal_app: None, settings: Any, local_cache: None) -> None:
    settings.CELERY_BROKER_URL = REDIS
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app = make_app("portal")
    described = publishing_app()
    assert (described.main, described.broker_url, described.eager) == ("portal", REDIS, False)
    assert described.schedule_complete
    assert app.conf.broker_connection_timeout == 1
    assert deploy_ids() == set()  # a per-process cache: the heartbeat cannot be seen from here


def test_w173_says_how_long_no_beat_has_run(portal_app: None, settings: Any, shared_cache: None) -> None:
    settings.CELERY_BROKER_URL = REDIS
    settings.CELERY_TASK_ALWAYS_EAGER = False
    make_app("portal")
    assert deploy_ids() == {Codes.CELERY_NO_HEARTBEAT}  # never ran
    record_heartbeat()
    assert deploy_ids() == set()
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        [message] = [
            m for m in run_checks(include_deployment_checks=True) if m.id == Codes.CELERY_NO_HEARTBEAT
        ]
    assert "for 11 minutes" in message.msg


def test_not_a_deploy_check() -> None:
    """Development ``check`` (no --deploy) stays quiet about Celery."""
    ids = {m.id for m in run_checks(tags=["security"])}
    assert not ids & CELERY_IDS


# -- the heartbeat ---------------------------------------------------------------------------------------


def test_the_heartbeat_task_records_its_run(settings: Any) -> None:
    assert heartbeat_status().stale and heartbeat_status().last_run is None
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        ran = heartbeat.apply().result  # run here; .get() refuses inside another eager task's context
        assert cache.get(HEARTBEAT_KEY) == ran == pytest.approx(start.timestamp())
        status = heartbeat_status()
    assert status.last_run is not None and abs(status.last_run - start) < timedelta(seconds=1)
    assert not status.stale and status.minutes == 0
    with time_machine.travel(start + timedelta(minutes=9, seconds=59), tick=False):
        assert not heartbeat_status().stale
    with time_machine.travel(start + timedelta(minutes=10, seconds=1), tick=False):
        assert heartbeat_status().stale and heartbeat_status().minutes == 10
    settings.AUTHGUARD_CELERY_HEARTBEAT_STALE_SECONDS = 3600
    with time_machine.travel(start + timedelta(minutes=11), tick=False):
        assert not heartbeat_status().stale


def test_an_unreadable_cache_is_unknown_not_stale_news(settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1},
        }
    }
    status = heartbeat_status()
    assert status.unknown and status.last_run is None


def test_the_module_does_not_shadow_celery() -> None:
    import celery

    assert celery.Celery is Celery and helpers.__name__ == "authguard.celery"
    assert Path(celery.__file__).parent.name == "celery"


def test_no_broker_yet_gets_the_redis_socket_options() -> None:
    """The eager demo may be given a broker at run time (tests/test_faults_broker.py): it has the timeouts."""
    assert broker_options(None)["broker_transport_options"] == {
        "socket_connect_timeout": 1,
        "socket_timeout": 3,
    }
    assert demo_app.conf.broker_transport_options == {"socket_connect_timeout": 1, "socket_timeout": 3}
    assert "broker_transport_options" not in broker_options("sqs://")
