"""Retention (issue 15, item 5): session records, population counts, login events and notifications.

Each prune is tested on real rows: the state before and after, the batches, and that a dry run changes
nothing. Session records are tested with the db, cache and signed-cookie session engines.
"""

from __future__ import annotations

import io
from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authguard import retention
from authguard.conf import app_settings
from authguard.models import (
    LoginEvent,
    Notification,
    NotificationStatus,
    Outcome,
    PopulationCount,
    SessionRecord,
    TokenActivity,
)
from authguard.risk.context import build_context
from authguard.risk.history import DatabaseHistory
from authguard.tasks import prune_login_events as prune_login_events_task
from authguard.tasks import prune_retention

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN
from .factories import T0

pytestmark = pytest.mark.django_db


# -- session records -----------------------------------------------------------------------------------------


def new_session(settings: Any) -> str:
    """A session saved by the configured engine, as a sign-in leaves it; returns its key."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store["_auth_user_id"] = "1"
    store.create()
    return store.session_key


def record(user: Any, key: str, *, age: timedelta = timedelta(hours=1)) -> SessionRecord:
    row = SessionRecord.objects.create(user=user, session_key=key)
    SessionRecord.objects.filter(pk=row.pk).update(created_at=timezone.now() - age)
    return row


def keys() -> set[str]:
    return set(SessionRecord.objects.values_list("session_key", flat=True))


def test_records_of_gone_and_expired_db_sessions_are_pruned(settings: Any, user_factory: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    alice = user_factory("alice")
    live = new_session(settings)
    signed_out = new_session(settings)
    expired = new_session(settings)
    fresh_without_session = "f" * 32
    too_old = new_session(settings)
    for key in (live, signed_out, expired):
        record(alice, key)
    record(alice, fresh_without_session, age=timedelta(minutes=2))  # its session may be on its way
    record(alice, too_old, age=timedelta(days=2))  # past the absolute timeout (24 h) + 1 h
    Session.objects.filter(session_key=signed_out).delete()
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now() - timedelta(seconds=1))

    dry = retention.prune_session_records(dry_run=True)
    assert (dry.matched, dry.dry_run) == (3, True)
    assert len(keys()) == 5  # a dry run deletes nothing

    result = retention.prune_session_records()
    assert result.matched == 3 and result.batches == 1
    assert keys() == {live, fresh_without_session}
    assert retention.prune_session_records().matched == 0  # idempotent


def test_clearsessions_then_prune_leaves_no_orphan(
    settings: Any, user_factory: Any, totp_factory: Any, login_as: Any, geoip: Any
) -> None:
    """The issue's figure: after ``clearsessions`` every record was orphaned; now the prune takes them."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    totp_factory(user_factory("alice"))
    assert login_as("alice", ip=IP_SG_VPS).status_code == 302  # a real sign-in, held at step-up
    assert SessionRecord.objects.count() == 1
    key = SessionRecord.objects.get().session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(days=1))
    call_command("clearsessions")
    assert not Session.objects.filter(session_key=key).exists()
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert retention.prune_session_records().matched == 1
    assert SessionRecord.objects.count() == 0


def test_session_records_are_pruned_in_batches(settings: Any, user_factory: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    alice = user_factory("alice")
    live = [new_session(settings) for _ in range(3)]
    for key in live:
        record(alice, key)
    for n in range(7):
        record(alice, f"gone{n:02d}" + "x" * 26)
    with CaptureQueriesContext(connection) as queries:
        result = retention.prune_session_records(batch=3)
    assert result.matched == 7 and keys() == set(live)
    # Ten rows in pages of three: four pages read, each with one session query and at most one delete.
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == result.batches <= 4
    assert len(queries.captured_queries) <= 5 + 4 * 2


def test_records_of_cache_sessions_are_pruned_by_asking_the_cache(settings: Any, user_factory: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    alice = user_factory("alice")
    live, ended = new_session(settings), new_session(settings)
    record(alice, live)
    record(alice, ended)
    import_module(settings.SESSION_ENGINE).SessionStore(session_key=ended).delete()
    assert retention.prune_session_records(dry_run=True).matched == 1 and len(keys()) == 2
    assert retention.prune_session_records().matched == 1
    assert keys() == {live}


def test_unreachable_session_cache_deletes_nothing(settings: Any, user_factory: Any) -> None:
    """SECURITY: a store that cannot answer is not "every session is gone"; the prune stops, fail closed."""
    settings.CACHES = {
        **settings.CACHES,
        "sessions-down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        },
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.SESSION_CACHE_ALIAS = "sessions-down"
    alice = user_factory("alice")
    for n in range(3):
        record(alice, f"key{n:02d}" + "y" * 27)
    with pytest.raises(Exception, match="(?i)connect"):
        retention.prune_session_records()
    assert SessionRecord.objects.count() == 3


def test_cookie_sessions_use_the_absolute_timeout_only(settings: Any, user_factory: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.AUTHGUARD_SESSION_ABSOLUTE_SECONDS = 3600
    alice = user_factory("alice")
    record(alice, "a" * 32, age=timedelta(minutes=90))  # past 1 h + 1 h grace? no: kept
    record(alice, "b" * 32, age=timedelta(hours=3))
    result = retention.prune_session_records()
    assert result.matched == 1 and keys() == {"a" * 32}
    assert "cookie sessions" in result.note


# -- population counts ---------------------------------------------------------------------------------------


def test_population_prune_keeps_what_scoring_reads_and_drops_the_rest(rf: Any, user_factory: Any) -> None:
    alice = user_factory("alice")
    request = rf.get("/", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    ctx = build_context(request, username="alice", user=alice)
    history = DatabaseHistory()
    history.learn(ctx, history.evidence(ctx))  # real rows, as a sign-in writes them
    scored = dict(PopulationCount.objects.values_list("key", "count"))
    assert scored["#users"] == 1 and all(count >= 1 for count in scored.values())
    dead = {"retired:x": 5, "#retired": 5, "~retired": 1, "ua:never-counted": 0}
    PopulationCount.objects.bulk_create(PopulationCount(key=k, count=c) for k, c in dead.items())
    before = history.evidence(ctx).population

    dry = retention.prune_population(batch=3, dry_run=True)
    assert dry.matched == 4 and PopulationCount.objects.count() == len(scored) + 4
    result = retention.prune_population(batch=3)
    assert result.matched == 4 and result.batches >= 2
    assert dict(PopulationCount.objects.values_list("key", "count")) == scored
    assert history.evidence(ctx).population == before  # scoring reads exactly what it read before


def test_population_age_rule_is_reported_not_guessed(db: Any) -> None:
    PopulationCount.objects.create(key="ip:203.0.113.10", count=1)
    result = retention.prune_population(older_than_days=90)
    assert result.matched == 0 and PopulationCount.objects.count() == 1
    assert "no last-seen time" in result.note


# -- login events and notifications --------------------------------------------------------------------------


def event(when: Any) -> LoginEvent:
    return LoginEvent.objects.create(
        created_at=when, username="alice", password_ok=True, action="allow", outcome=Outcome.SIGNED_IN
    )


def test_login_events_are_pruned_by_primary_key_ranges(settings: Any) -> None:
    settings.AUTHGUARD_EVENT_RETENTION_DAYS = 30
    old = [event(T0 - timedelta(days=40 - i)) for i in range(6)]
    kept = [event(T0 - timedelta(days=10 - i)) for i in range(4)]
    late_old = event(T0 - timedelta(days=45))  # written out of time order, a whole range after the others
    after = event(T0 - timedelta(days=5))
    with time_machine.travel(T0, tick=False):
        dry = retention.prune_login_events(batch=3, dry_run=True)
        assert LoginEvent.objects.count() == 12
        with CaptureQueriesContext(connection) as queries:
            result = retention.prune_login_events(batch=3)
    # Ranges of three: two of old rows, then one of newer rows that ends the walk.
    assert dry.matched == result.matched == 6 and dry.batches == result.batches == 3
    # One statement per range and one probe to the next: no rescan of what was deleted.
    assert len(queries.captured_queries) == 2 + 2 * result.batches
    remaining = set(LoginEvent.objects.values_list("pk", flat=True))
    assert remaining == {*(e.pk for e in kept), late_old.pk, after.pk}
    assert not LoginEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    # The straggler stays until the cutoff passes a row written after it; nothing newer is ever deleted.
    with time_machine.travel(T0 + timedelta(days=21), tick=False):  # cutoff: 9 days before T0
        assert retention.prune_login_events(batch=1).matched == 1  # kept[0]; kept[1] is newer: the walk stops
    with time_machine.travel(T0 + timedelta(days=26), tick=False):  # cutoff: 4 days before T0
        # The other three kept rows (9 to 7 days before T0), the straggler, and ``after``.
        assert retention.prune_login_events(batch=1).matched == 5
    assert LoginEvent.objects.count() == 0


def test_login_event_prune_jumps_gaps_and_validates_its_input(settings: Any) -> None:
    rows = [event(T0 - timedelta(days=500 - i)) for i in range(6)]
    LoginEvent.objects.filter(pk__in=[r.pk for r in rows[1:5]]).delete()  # a gap in the keys
    with time_machine.travel(T0, tick=False):
        result = retention.prune_login_events(older_than_days=400, batch=1)
    assert result.matched == 2 and result.batches == 2
    with pytest.raises(ValueError):
        retention.prune_login_events(older_than_days=0)
    with pytest.raises(ValueError):
        retention.prune_login_events(batch=0)


def test_notifications_keep_what_staff_still_need(settings: Any, user_factory: Any) -> None:
    settings.AUTHGUARD_EVENT_RETENTION_DAYS = 30
    alice = user_factory("alice")
    rows = {}
    for status in NotificationStatus.values:
        rows[status] = Notification.objects.create(
            user=alice, kind="factor_added", status=status, dedupe_key=f"test:{status}"
        )
    Notification.objects.update(created_at=timezone.now() - timedelta(days=31))
    fresh = Notification.objects.create(
        user=alice, kind="factor_added", status=NotificationStatus.SENT, dedupe_key="test:fresh"
    )
    assert retention.prune_notifications(dry_run=True).matched == 2
    assert retention.prune_notifications().matched == 2
    left = set(Notification.objects.values_list("pk", flat=True))
    assert left == {rows["pending"].pk, rows["sending"].pk, rows["failed"].pk, fresh.pk}


def test_activity_rows_no_token_can_need_are_pruned(db: Any) -> None:
    """A token deleted behind authguard's back (its user deleted, a portal's own ``token.delete()``) leaves
    its activity row; once older than a session can live, nothing reads it, and the prune deletes it."""
    now = timezone.now()
    lifetime = timedelta(seconds=app_settings.SESSION_ABSOLUTE_SECONDS)
    gone = now - lifetime - timedelta(hours=2)
    old = [TokenActivity.objects.create(token_digest=f"{n:064x}", last_used_at=gone) for n in range(3)]
    live = TokenActivity.objects.create(token_digest="f" * 64, last_used_at=now - lifetime)
    assert retention.prune_token_activity(dry_run=True, batch=2).matched == 3
    assert TokenActivity.objects.count() == 4
    result = retention.prune_token_activity(batch=2)
    assert (result.matched, result.batches) == (3, 2)
    assert list(TokenActivity.objects.values_list("pk", flat=True)) == [live.pk]
    assert not TokenActivity.objects.filter(pk__in=[row.pk for row in old]).exists()


# -- the task and the command --------------------------------------------------------------------------------


def seed_everything(settings: Any, user_factory: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    settings.AUTHGUARD_EVENT_RETENTION_DAYS = 30
    alice = user_factory("alice")
    record(alice, "z" * 32)  # no such session
    PopulationCount.objects.create(key="retired:x", count=1)
    event(timezone.now() - timedelta(days=31))
    event(timezone.now())


def test_retention_task_runs_every_prune(settings: Any, user_factory: Any) -> None:
    seed_everything(settings, user_factory)
    outcome = prune_retention.delay().get()
    assert outcome == {
        "session records": 1,
        "population counts": 1,
        "login events": 1,
        "notifications": 0,
        "API token activity": 0,
    }
    assert (SessionRecord.objects.count(), PopulationCount.objects.count(), LoginEvent.objects.count()) == (
        0,
        0,
        1,
    )
    assert prune_login_events_task.delay().get() == 0  # the older task still works, nothing left for it


def test_prune_command_dry_run_changes_nothing(settings: Any, user_factory: Any) -> None:
    seed_everything(settings, user_factory)
    out = io.StringIO()
    call_command("authguard", "prune", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "session records: would delete 1 row(s)" in text
    assert "population counts: would delete 1 row(s)" in text
    assert "login events: would delete 1 row(s)" in text
    assert (SessionRecord.objects.count(), PopulationCount.objects.count(), LoginEvent.objects.count()) == (
        1,
        1,
        2,
    )


def test_prune_command_deletes_what_it_is_told(settings: Any, user_factory: Any) -> None:
    seed_everything(settings, user_factory)
    out = io.StringIO()
    call_command("authguard", "prune", "--only", "sessions", "--only", "events", "--batch", "10", stdout=out)
    assert "session records: deleted 1 row(s)" in out.getvalue()
    assert "population" not in out.getvalue()
    assert (SessionRecord.objects.count(), PopulationCount.objects.count(), LoginEvent.objects.count()) == (
        0,
        1,
        1,
    )
    out = io.StringIO()
    call_command("authguard", "prune", "--only", "population", "--population-days", "90", stdout=out)
    assert "no last-seen time" in out.getvalue() and PopulationCount.objects.count() == 0


@pytest.mark.parametrize("args", [["--batch", "0"], ["--population-days", "0"]])
def test_prune_command_refuses_bad_numbers(db: Any, args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("authguard", "prune", *args)
