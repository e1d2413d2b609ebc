"""Retention: what authguard deletes so its tables stay the size of the present, not of its history.

* :func:`prune_session_records`: ``SessionRecord`` rows whose session is gone (signed out, expired, swept by
  ``clearsessions``) or older than the absolute session timeout, whatever the session engine.
* :func:`prune_population`: ``PopulationCount`` rows nothing reads any more (see its docstring for what
  cannot be aged out yet, and why).
* :func:`prune_login_events` / :func:`prune_notifications`: audit rows past
  ``AUTHGUARD_EVENT_RETENTION_DAYS``, deleted by primary-key ranges so a billion-row table never sees a long
  scan or a long lock (docs/operations-scale.md compares this with partitions).

Every function works in batches (each batch its own short statement, so a failure half-way leaves the
batches done deleted and the rest untouched: nothing half-written), returns a :class:`PruneResult`, and with
``dry_run=True`` counts what it would delete without deleting anything. They run from the periodic task
``authguard.prune_retention`` and from ``manage.py authguard prune``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db.models import Min, Model, Q
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import (
    LoginEvent,
    Notification,
    NotificationStatus,
    PopulationCount,
    SessionRecord,
    TokenActivity,
)
from authguard.risk.profile import POPULATION_FEATURES

logger = logging.getLogger(__name__)

#: A session record younger than this is never pruned: its session may still be on its way to the store.
RECENT_RECORD = timedelta(minutes=10)
#: Slack past the absolute session timeout before a record is presumed dead whatever the store says.
ABSOLUTE_TIMEOUT_GRACE = timedelta(hours=1)
#: Default rows per batch: small enough for a short lock, large enough to keep up with a busy site.
DEFAULT_BATCH = 5000

#: Session engines whose store has no server-side record to look up (the session lives in the cookie).
_COOKIE_ENGINES = ("django.contrib.sessions.backends.signed_cookies",)


@dataclass(frozen=True)
class PruneResult:
    """What one prune did: ``matched`` rows deleted (or, in a dry run, that would be), in ``batches``."""

    what: str
    matched: int
    batches: int
    dry_run: bool
    note: str = ""

    def render(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        line = f"{self.what}: {verb} {self.matched} row(s) in {self.batches} batch(es)"
        return f"{line}; {self.note}" if self.note else line


def _batch_size(batch: int) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    return batch


# -- session records ----------------------------------------------------------------------------------------


def _session_model() -> type[Model] | None:
    """The session model of a database-backed engine (``db``, ``cached_db``, custom subclasses), else None."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    get_model_class = getattr(store, "get_model_class", None)
    return get_model_class() if get_model_class is not None else None


def _alive_keys(keys: list[str], now: datetime) -> set[str]:
    """Which of ``keys`` the session store still holds. Raises if the store cannot be asked.

    SECURITY: a store that cannot answer must not read as "every session is gone", or "sign out my other
    sessions" would lose track of live ones; errors propagate and the prune stops.
    """
    model = _session_model()
    if model is not None:  # one indexed query per batch; the database is the source of truth for cached_db
        return set(
            model._default_manager.filter(session_key__in=keys, expire_date__gt=now).values_list(
                "session_key", flat=True
            )
        )
    engine = import_module(settings.SESSION_ENGINE)
    store = engine.SessionStore
    prefix = getattr(store, "cache_key_prefix", None)
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.cache" and prefix is not None:
        # One round trip per batch instead of one per key.
        found = caches[settings.SESSION_CACHE_ALIAS].get_many([prefix + key for key in keys])
        return {key for key in keys if prefix + key in found}
    return {key for key in keys if store().exists(key)}  # file sessions and custom engines


def prune_session_records(
    *, batch: int = DEFAULT_BATCH, dry_run: bool = False, now: datetime | None = None
) -> PruneResult:
    """Delete ``SessionRecord`` rows whose session no longer exists.

    A record is stale when its session is not in the session store (signed out, expired, swept by
    ``clearsessions``), or when it is older than ``AUTHGUARD_SESSION_ABSOLUTE_SECONDS`` plus an hour (the
    middleware signs such a session out at its next request, whatever the store still holds; for cookie
    sessions this is the only rule). Records younger than :data:`RECENT_RECORD` are left alone.
    """

    batch = _batch_size(batch)
    now = now or timezone.now()
    dead_before = now - timedelta(seconds=app_settings.SESSION_ABSOLUTE_SECONDS) - ABSOLUTE_TIMEOUT_GRACE
    recent = now - RECENT_RECORD
    check_store = settings.SESSION_ENGINE not in _COOKIE_ENGINES
    matched = batches = 0
    last_pk: Any = None
    while True:
        rows = SessionRecord.objects.order_by("pk")
        if last_pk is not None:
            rows = rows.filter(pk__gt=last_pk)
        page = list(rows.values_list("pk", "session_key", "created_at")[:batch])
        if not page:
            break
        last_pk = page[-1][0]
        candidates = [(pk, key, created) for pk, key, created in page if created < recent]
        if not candidates:
            continue
        alive = _alive_keys([key for _, key, _ in candidates], now) if check_store else None
        stale = [
            pk
            for pk, key, created in candidates
            if created < dead_before or (alive is not None and key not in alive)
        ]
        if not stale:
            continue
        batches += 1
        if dry_run:
            matched += len(stale)
        else:
            matched += SessionRecord.objects.filter(pk__in=stale).delete()[0]
    note = "" if check_store else "cookie sessions: only records past the absolute timeout"
    return PruneResult("session records", matched, batches, dry_run, note)


# -- population counts --------------------------------------------------------------------------------------


def _scored_features() -> frozenset[str]:

    return frozenset(POPULATION_FEATURES)


def _population_row_is_dead(key: str, count: int, features: frozenset[str]) -> bool:
    """True for a row no login reads or needs: a zero count, or a feature the risk engine no longer scores.

    Keys are ``feature:value`` (a value's count), ``#feature`` (the feature's total), ``~feature`` (its
    distinct values) and ``#users``.
    """
    if key == "#users":
        return False
    if count <= 0:
        return True  # reads as "never seen" whether the row exists or not
    feature = key[1:] if key[:1] in ("#", "~") else key.split(":", 1)[0]
    return feature not in features


def prune_population(
    older_than_days: int | None = None, *, batch: int = DEFAULT_BATCH, dry_run: bool = False
) -> PruneResult:
    """Delete ``PopulationCount`` rows that no login reads: zero counts and features no longer scored.

    ``older_than_days`` (rows not seen for N days) cannot be honoured yet: the model records no time a
    value was last seen, so an age rule would have to guess. Deleting rare values blindly would also skew
    the per-feature totals and distinct counts the statistical model divides by. The result's ``note`` says
    so when it is asked for; docs/operations-scale.md describes the field that would make it possible.
    """

    batch = _batch_size(batch)
    features = _scored_features()
    matched = batches = 0
    last_key: str | None = None
    while True:
        rows = PopulationCount.objects.order_by("key")
        if last_key is not None:
            rows = rows.filter(key__gt=last_key)
        page = list(rows.values_list("key", "count")[:batch])
        if not page:
            break
        last_key = page[-1][0]
        dead = [key for key, count in page if _population_row_is_dead(key, count, features)]
        if not dead:
            continue
        batches += 1
        if dry_run:
            matched += len(dead)
        else:
            # Re-checked in the statement: a login may have counted the value since the page was read.
            matched += (
                PopulationCount.objects.filter(key__in=dead)
                .filter(Q(count__lte=0) | ~_scored_keys_q(features))
                .delete()[0]
            )
    note = ""
    if older_than_days is not None:
        note = (
            f"not aged out by {older_than_days} days: PopulationCount records no last-seen time "
            "(see docs/operations-scale.md)"
        )
    return PruneResult("population counts", matched, batches, dry_run, note)


def _scored_keys_q(features: Iterable[str]) -> Q:
    """Rows of the scored features (and ``#users``), as a filter."""
    q = Q(key="#users")
    for feature in features:
        q |= Q(key__startswith=f"{feature}:") | Q(key=f"#{feature}") | Q(key=f"~{feature}")
    return q


# -- login events and notifications: by primary-key ranges ---------------------------------------------------


def _retention_cutoff(older_than_days: int | None, now: datetime | None) -> datetime:
    days = app_settings.EVENT_RETENTION_DAYS if older_than_days is None else older_than_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"older_than_days must be a positive integer, not {days!r}")
    return (now or timezone.now()) - timedelta(days=days)


def _prune_by_pk_ranges(
    what: str,
    model: type[Model],
    *,
    only: Q,
    time_field: str,
    cutoff: datetime,
    batch: int,
    dry_run: bool,
) -> PruneResult:
    """Delete ``rows`` older than ``cutoff`` one primary-key range at a time.

    Rows are written in time order, so the old ones sit at the low end of the primary key. The walk goes
    from the lowest key, ``batch`` keys per statement, each statement also filtered on time (so nothing
    newer is ever deleted, whatever the order of the keys), up to the key of the newest old row (one index
    probe) and on while ranges still hold old rows. Unlike "select the oldest N, delete them" repeated, no
    statement rescans what the previous ones deleted (on PostgreSQL: dead index entries until vacuum), so
    the cost is linear in the backlog. A row written out of time order beyond a whole range of newer rows
    (a node with a slow clock) is taken by a later run, once the cutoff passes the rows around it.
    """
    batch = _batch_size(batch)
    rows = model._default_manager.all()
    old = rows.filter(only, **{f"{time_field}__lt": cutoff})
    boundary = old.order_by(f"-{time_field}", "-pk").values_list("pk", flat=True).first()
    if boundary is None:
        return PruneResult(what, 0, 0, dry_run)
    low = rows.aggregate(low=Min("pk"))["low"]
    matched = batches = 0
    found = 0
    while low is not None and (low <= boundary or found):
        high = low + batch
        in_range = old.filter(pk__gte=low, pk__lt=high)
        batches += 1
        found = in_range.count() if dry_run else in_range.delete()[0]
        matched += found
        # Jump over gaps in the keys (earlier prunes, sequence caches) with one index probe.
        low = rows.filter(pk__gte=high).aggregate(low=Min("pk"))["low"]
    return PruneResult(what, matched, batches, dry_run)


def prune_login_events(
    *,
    older_than_days: int | None = None,
    batch: int = DEFAULT_BATCH,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Delete login events older than ``older_than_days`` (default ``AUTHGUARD_EVENT_RETENTION_DAYS``)."""

    cutoff = _retention_cutoff(older_than_days, now)
    return _prune_by_pk_ranges(
        "login events",
        LoginEvent,
        only=Q(),
        time_field="created_at",
        cutoff=cutoff,
        batch=batch,
        dry_run=dry_run,
    )


def prune_notifications(
    *,
    older_than_days: int | None = None,
    batch: int = DEFAULT_BATCH,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Delete sent or skipped outbox rows as old as the events; waiting and failed ones stay for staff."""

    cutoff = _retention_cutoff(older_than_days, now)
    return _prune_by_pk_ranges(
        "notifications",
        Notification,
        only=Q(status__in=[NotificationStatus.SENT, NotificationStatus.SKIPPED]),
        time_field="created_at",
        cutoff=cutoff,
        batch=batch,
        dry_run=dry_run,
    )


def prune_token_activity(
    *, batch: int = DEFAULT_BATCH, dry_run: bool = False, now: datetime | None = None
) -> PruneResult:
    """Delete ``TokenActivity`` rows no token can still need: last used longer ago than a session can live
    (plus an hour). authguard deletes a token's row with the token; this sweeps those of tokens deleted
    behind its back (a user deleted, a portal's own ``token.delete()``). A live token whose row went is
    idle since it was issued, so it has ended anyway."""
    batch = _batch_size(batch)
    now = now or timezone.now()
    stale = TokenActivity.objects.filter(
        last_used_at__lt=now
        - timedelta(seconds=app_settings.SESSION_ABSOLUTE_SECONDS)
        - ABSOLUTE_TIMEOUT_GRACE
    )
    if dry_run:
        count = stale.count()
        return PruneResult("API token activity", count, -(-count // batch), True)
    matched = batches = 0
    while page := list(stale.order_by("pk").values_list("pk", flat=True)[:batch]):
        batches += 1
        matched += TokenActivity.objects.filter(pk__in=page).delete()[0]
    return PruneResult("API token activity", matched, batches, False)


def prune_all(
    *, batch: int = DEFAULT_BATCH, dry_run: bool = False, population_days: int | None = None
) -> list[PruneResult]:
    """Run every prune, in order; what the periodic task and ``manage.py authguard prune`` run."""
    results = [
        prune_session_records(batch=batch, dry_run=dry_run),
        prune_population(population_days, batch=batch, dry_run=dry_run),
        prune_login_events(batch=batch, dry_run=dry_run),
        prune_notifications(batch=batch, dry_run=dry_run),
        prune_token_activity(batch=batch, dry_run=dry_run),
    ]
    for result in results:
        logger.info("authguard: retention: %s", result.render())
    return results


__all__ = [
    "PruneResult",
    "prune_all",
    "prune_login_events",
    "prune_notifications",
    "prune_population",
    "prune_session_records",
    "prune_token_activity",
]
