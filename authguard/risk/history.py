"""Where the risk engine's memory lives: profiles, population counts, remembered devices, velocity.

Two stores implement the same small interface:

* :class:`DatabaseHistory` for live logins: the database (:mod:`authguard.models`) and Django's cache.
* :class:`MemoryHistory` for ``authguard replay``: plain dicts, so a backtest never touches the
  configured database and runs at tens of thousands of events per second.

Both hand the signals the same :class:`Evidence` and learn through the same
:func:`authguard.risk.profile.learn`,
so the replay scores exactly as live logins do.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from django.core.cache import cache as default_cache
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from authguard import statements
from authguard.conf import app_settings
from authguard.models import AccountLock, KnownDevice, PopulationCount, RiskProfile
from authguard.models.population import PopulationDelta, PopulationFold
from authguard.resilience import guarded_cache_call
from authguard.risk.context import LoginContext
from authguard.risk.history_sql import as_time as _as_time
from authguard.risk.history_sql import population_sql, profile_sql
from authguard.risk.legacy_device import forked_from, judged_context, take_over
from authguard.risk.profile import POPULATION_FEATURES, Profile, learn, population_keys
from authguard.risk.velocity import (
    WINDOW_SECONDS,
    CounterCache,
    DictCache,
    VelocityCounts,
    read_counts,
    record_attempt,
)
from authguard.sessions.device_generations import given_generation, keep_given, left_behind_params

logger = logging.getLogger("authguard.risk.history")


@dataclass(frozen=True)
class DeviceState:
    """What is known about the device cookie a login presented."""

    presented: bool
    known: bool
    trusted: bool
    #: How far the presented cookie is behind the newest generation the account's browser confirmed
    #: (:mod:`authguard.sessions.device_generations`): 0 current, 1 one generation behind, 2 further.
    left_behind: int = 0


@dataclass(frozen=True)
class Evidence:
    """Everything the signals may read about one login. Signals do no I/O of their own."""

    ctx: LoginContext
    profile: Profile
    population: dict[str, int]
    device: DeviceState
    velocity: VelocityCounts
    #: The browser that took over the device this login's portal cookie names, when this is another one.
    fork: str | None = None
    #: The account's lock as read with the profile: (locked, its self-service unlock's due time); ``None``
    #: when not read (the replay, a first login of nobody, the lock rows routed to another database).
    account_lock: tuple[bool, datetime | None] | None = None

    def population_count(self, key: str) -> int:
        return self.population.get(key, 0)

    def country_known(self) -> bool:
        """Whether the account signed in from this login's country before (within the profile's horizon)."""
        country = self.ctx.geo.country
        return bool(country) and self.profile.count("cc", country) > 0


class History(Protocol):
    """The store interface shared by live logins and the replay."""

    def evidence(self, ctx: LoginContext) -> Evidence: ...
    def learn(self, ctx: LoginContext, evidence: Evidence) -> None: ...
    def record_attempt(self, ctx: LoginContext, *, failed: bool) -> None: ...
    def trust_device(self, ctx: LoginContext, until: datetime) -> None: ...


def _device_state(
    profile: Profile, ctx: LoginContext, trusted: bool, left_behind: int = 0, revoked: bool = False
) -> DeviceState:
    presented = ctx.device_hash is not None
    # SECURITY: a device the customer forgot (or staff revoked) is new again, whatever the profile counted,
    # until a login the engine learns brings it back (red team, 2026-12-05: a copy kept the discount).
    known = ctx.device_hash is not None and profile.count("dev", ctx.device_hash[:20]) > 0 and not revoked
    return DeviceState(
        presented=presented, known=known, trusted=presented and trusted, left_behind=left_behind
    )


_TOTAL_KEYS = {feature: f"#{feature}" for feature in POPULATION_FEATURES}
_DISTINCT_KEYS = {feature: f"~{feature}" for feature in POPULATION_FEATURES}


def _population_increments(evidence: Evidence) -> list[str]:
    """What a learned login appends for the population counts: each feature value it showed, and
    ``#users`` for a user's first login. Totals and distinct counts are derived when folding
    (:func:`_fold_increments`), so a login never touches a row that every other login touches too."""
    keys = list(evidence.ctx.population_value_keys.values())
    if not evidence.profile.data:
        keys.append("#users")
    return keys


def _fold_increments(keys: Iterable[str], seen: Callable[[str], bool]) -> Counter[str]:
    """The population-count increments of a batch of appended values: each value's own count, its
    feature's total, and the feature's distinct count once for each value ``seen`` says was not counted
    before this batch."""
    increments: Counter[str] = Counter(keys)
    for key, times in list(increments.items()):
        feature, separator, _value = key.partition(":")
        if not separator or feature not in _TOTAL_KEYS:
            continue  # "#users"
        increments[_TOTAL_KEYS[feature]] += times
        if not seen(key):
            increments[_DISTINCT_KEYS[feature]] += 1
    return increments


def fold_seconds() -> int:
    """``AUTHGUARD_POPULATION_FOLD_SECONDS``: how old the population snapshot that scoring reads may get
    (default 15 minutes; 0 folds after every login, as before issue 15)."""
    return app_settings.POPULATION_FOLD_SECONDS


#: How many hourly windows of event time pass between two sweeps of the replay's counters.
_SWEEP_WINDOWS = 6


class MemoryHistory:
    """In-memory store for the replay. Starts empty; nothing is written anywhere else."""

    def __init__(self, *, horizon_days: int | None = None, fold_every: int | None = None) -> None:
        self.horizon_days = horizon_days or app_settings.PROFILE_HORIZON_DAYS
        self.profiles: dict[Any, dict[str, Any]] = {}
        self.population: dict[str, int] = {}
        #: Appended population values not yet folded into ``population`` (what the live deltas table holds).
        self.pending: list[str] = []
        #: Users already counted in ``#users`` (once each, at their first learned login), kept with the
        #: counts so that a replay continued on this store does not count its returning users again.
        self.counted_users: set[Any] = set()
        self.fold_every = fold_seconds() if fold_every is None else fold_every
        self._fold_period: int | None = None
        self.trusted: dict[tuple[Any, str], datetime] = {}
        #: Of ``trusted``, the devices a replayed line said a passkey verified (``second_factor``), with that
        #: login's browser, time, address and place: what an import may remember
        #: (:mod:`authguard.risk.import_history`).
        self.passkey_devices: dict[tuple[Any, str], PasskeyVerified] = {}
        self.counters = DictCache()
        self._swept_window = -_SWEEP_WINDOWS

    def evidence(self, ctx: LoginContext) -> Evidence:
        if self.fold_every:
            # The live rule in event time: scoring reads the counts as of the last fold, and a fold happens
            # once per period of AUTHGUARD_POPULATION_FOLD_SECONDS.
            period = int(ctx.timestamp // self.fold_every)
            if period != self._fold_period:
                self._fold_period = period
                if self.pending:
                    self.fold()
        return self.evidence_with(ctx, population=self.population, velocity=read_counts(self.counters, ctx))

    def evidence_with(
        self, ctx: LoginContext, *, population: dict[str, int], velocity: VelocityCounts
    ) -> Evidence:
        """The evidence of ``ctx`` from this store's profiles and remembered devices, with the cross-user
        reads given: this store's own, or the sharded replay's first pass (:mod:`authguard.risk.replay`)."""
        profile = Profile.at(self.profiles.get(ctx.user_id), ctx.timestamp, self.horizon_days)
        until = self.trusted.get((ctx.user_id, ctx.device_hash or ""))
        legacy_until = self.trusted.get((ctx.user_id, ctx.legacy_device_hash or ""))
        fork = forked_from(profile, ctx)
        ctx, trusted = judged_context(
            ctx,
            profile,
            trusted=until is not None and until > ctx.time,
            legacy_trusted=legacy_until is not None and legacy_until > ctx.time,
        )
        return Evidence(
            ctx=ctx,
            profile=profile,
            population=population,
            device=_device_state(profile, ctx, trusted, 2 if fork else 0),
            velocity=velocity,
            fork=fork,
        )

    def learn(self, ctx: LoginContext, evidence: Evidence) -> None:
        self.pending.extend(_population_increments(evidence))
        if not self.fold_every:
            self.fold()
        self.learn_profile(ctx, evidence)

    def learn_profile(self, ctx: LoginContext, evidence: Evidence) -> None:
        """The user's own part of :meth:`learn` (the replay's second pass calls it alone): the profile, and
        the devices the portal's cookie named (:func:`take_over`, :meth:`_move_trust`)."""
        data = take_over(self.profiles.get(ctx.user_id), evidence.ctx, ctx, profile=evidence.profile)
        self.profiles[ctx.user_id] = learn(data, ctx, horizon_days=self.horizon_days)
        self._move_trust(ctx, evidence)

    def _move_trust(self, ctx: LoginContext, evidence: Evidence) -> None:
        """After :func:`take_over`: a remembered imported device's trust moves to authguard's cookie; the
        portal's entry ends (:func:`portal_device_ending`)."""
        old, moves = portal_device_ending(ctx, evidence)
        if old is None:
            return
        until = self.trusted.pop((ctx.user_id, old), None)
        if moves and ctx.device_hash and evidence.device.trusted and until is not None and until > ctx.time:
            have = self.trusted.get((ctx.user_id, ctx.device_hash))
            self.trusted[(ctx.user_id, ctx.device_hash)] = until if have is None else max(have, until)

    def record_attempt(self, ctx: LoginContext, *, failed: bool) -> None:
        record_attempt(self.counters, ctx, failed=failed)
        window = int(ctx.timestamp // WINDOW_SECONDS)
        if window >= self._swept_window + _SWEEP_WINDOWS:
            # Every few hours of event time, drop the counter windows no read can reach any more: memory
            # stays that of the last hours whatever the replay's length (and lookups stay in cache).
            self._swept_window = window
            self.counters.forget_before(ctx.timestamp)

    def trust_device(self, ctx: LoginContext, until: datetime) -> None:
        if ctx.device_hash:
            self.trusted[(ctx.user_id, ctx.device_hash)] = until

    def fold(self) -> None:
        """Add the pending values into the population counts (what :func:`fold_population` does live)."""
        population = self.population
        increments = _fold_increments(self.pending, lambda key: population.get(key, 0) > 0)
        for key, times in increments.items():
            population[key] = population.get(key, 0) + times
        self.pending.clear()


_PROFILE_DATA = RiskProfile._meta.get_field("data")


class PasskeyVerified(NamedTuple):
    """A device's last step-up a replayed line said a passkey passed (``MemoryHistory.passkey_devices``)."""

    label: str
    at: datetime
    ip: str | None
    place: str
    #: Remembered until, from that line alone: a later line that names no factor does not extend it.
    until: datetime


def _earliest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t), default=None)


def portal_device_ending(ctx: LoginContext, evidence: Evidence) -> tuple[str | None, bool]:
    """As ``ctx`` is learned: the portal's device id (its hash) whose remembered entry ends with it, and
    whether authguard's cookie of ``ctx`` takes that device over (:mod:`authguard.risk.legacy_device`).

    Judged as the imported device, the browser's authguard cookie becomes that device. Judged by its own
    authguard cookie while also presenting the portal's, the portal's id is the same browser's second name:
    SECURITY: its remembered entry ends, so a copy of the portal's cookie alone never counts for more than
    the browser's own cookie does (a DBSC-bound one included).
    """
    if evidence.ctx is not ctx:
        judged = evidence.ctx.device_hash
        if judged is None or judged == ctx.device_hash or not ctx.device_hash:
            return None, False
        return judged, True
    return ctx.legacy_device_hash, False


class DatabaseHistory:
    """The live store: profiles, population counts and devices in the database, counters in the cache.

    Gathering the evidence of a login costs two queries (the profile with whether the browser is a trusted
    device, the population counts) and one cache round trip, whatever the length of the user's history.
    Both are plain SQL built once (:mod:`authguard.statements`): compiling them through the ORM on every
    login cost more than the database's answer.
    """

    def __init__(self, cache: CounterCache | None = None) -> None:
        self.cache = cache or default_cache
        self.horizon_days = app_settings.PROFILE_HORIZON_DAYS

    def evidence(self, ctx: LoginContext) -> Evidence:
        data = None
        trusted = legacy_trusted = revoked = False
        left_behind = 0
        account_lock = None
        if ctx.user_id is not None:
            # The profile and whether this browser is trusted in one statement (issue 15), also on a first
            # login (no profile row yet); read where the portal's routers read the profiles.
            alias = router.db_for_read(RiskProfile) or DEFAULT_DB_ALIAS
            db = connections[alias]
            user = statements.user_id(ctx.user_id, using=alias)
            at = db.ops.adapt_datetimefield_value(ctx.time)
            generation = left_behind_params(ctx, db, user)
            # The account's lock rides along (issue 15's budget) where its rows are read from this database.
            with_lock = (router.db_for_read(AccountLock) or DEFAULT_DB_ALIAS) == alias
            ((stored, trusted_flag, legacy_flag, behind, revoked_flag, *lock),) = statements.fetch_all(
                profile_sql(alias, with_lock=with_lock),
                [user, user, ctx.device_hash or "", at, user, ctx.legacy_device_hash or "", at, *generation]
                + [user, ctx.device_hash or ""]
                + ([user, user] if with_lock else []),
                using=alias,
            )
            if lock:
                account_lock = (bool(lock[0]), _as_time(lock[1]))
            revoked = bool(ctx.device_hash) and bool(revoked_flag)
            left_behind = int(behind or 0)
            # (No column expression: the value is the whole document, not a key transform.)
            data = _PROFILE_DATA.from_db_value(stored, None, db)  # type: ignore[arg-type]
            # SECURITY: a login without a device cookie is never a trusted browser.
            trusted = bool(ctx.device_hash) and bool(trusted_flag)
            legacy_trusted = bool(ctx.legacy_device_hash) and bool(legacy_flag)
        keys = population_keys(ctx)
        profile = Profile.at(data, ctx.timestamp, self.horizon_days)
        counts = router.db_for_read(PopulationCount) or DEFAULT_DB_ALIAS
        population = dict(statements.fetch_all(population_sql(counts, len(keys)), keys, using=counts))
        presented = ctx.device_hash
        fork = forked_from(profile, ctx)
        left_behind = 2 if fork else left_behind
        ctx, trusted = judged_context(ctx, profile, trusted=trusted, legacy_trusted=legacy_trusted)
        return Evidence(
            ctx=ctx,
            profile=profile,
            population=population,
            device=_device_state(
                profile, ctx, trusted, left_behind, revoked=revoked and ctx.device_hash == presented
            ),
            velocity=read_counts(self.cache, ctx),
            fork=fork,
            account_lock=account_lock,
        )

    def learn(self, ctx: LoginContext, evidence: Evidence) -> None:
        if ctx.user_id is None:
            return
        appended = _population_increments(evidence)
        # No savepoint (issue 15): every caller runs this inside its own transaction with no ``try`` around
        # it (the login flow, the passkey sign-in) or inside a savepoint of its own (the step-up), so a
        # failure half-way already rolls back everything it wrote. Called alone, it is one transaction.
        with transaction.atomic(savepoint=False):
            profile, _ = RiskProfile.objects.select_for_update().get_or_create(user_id=ctx.user_id)
            profile.data = learn(
                take_over(profile.data, evidence.ctx, ctx, profile=evidence.profile),
                ctx,
                horizon_days=self.horizon_days,
            )
            profile.save(update_fields=["data", "updated_at"])
            # An append, never an update of a shared row: logins do not wait on each other (issue 15).
            PopulationDelta.objects.bulk_create([PopulationDelta(key=key) for key in appended])
            if fold_seconds():
                transaction.on_commit(fold_when_due)
            else:
                fold_population()  # AUTHGUARD_POPULATION_FOLD_SECONDS = 0: counted with the login, as before
            if ctx.device_hash:
                given = given_generation(ctx)
                # A login the engine learns brings a forgotten device back (listed, and known again).
                # SECURITY: ... as a browser first seen now: a stolen laptop she forgot must not get its
                # year of standing back with the thief's first allowed sign-in (it would vouch for his
                # factors and throttle him apart from strangers; red team, 2026-12-05).
                updated = KnownDevice.objects.filter(user_id=ctx.user_id, cookie_hash=ctx.device_hash).update(
                    last_seen_at=ctx.time,
                    last_ip=ctx.ip,
                    last_place=ctx.geo.place,
                    label=ctx.client.summary[:200],
                    first_seen_at=Case(
                        When(revoked_at__isnull=False, then=Value(ctx.time)), default=F("first_seen_at")
                    ),
                    # SECURITY: standing counts from the engine's first learning of the browser, not from
                    # a relayed code's listing of it (red team, round eleven: a thief who waited a month
                    # after one relayed code kept a browser of standing through every containment).
                    learned_at=Case(
                        When(Q(revoked_at__isnull=False) | Q(learned_at__isnull=True), then=Value(ctx.time)),
                        default=F("learned_at"),
                    ),
                    # SECURITY: nor the month her factor once gave it (round sixty-eight's review).
                    factor_verified_at=Case(
                        When(revoked_at__isnull=False, then=Value(None)), default=F("factor_verified_at")
                    ),
                    revoked_at=None,
                    # The cookie generation this sign-in's answer gives, in the same statement (issue 15).
                    **(keep_given(ctx, given) if given is not None else {}),
                )
                if not updated:
                    KnownDevice.objects.create(
                        user_id=ctx.user_id,
                        cookie_hash=ctx.device_hash,
                        label=ctx.client.summary[:200],
                        first_seen_at=ctx.time,
                        learned_at=ctx.time,
                        last_seen_at=ctx.time,
                        last_ip=ctx.ip,
                        last_place=ctx.geo.place,
                        issued_generation=given,
                    )
                self._move_trust(ctx, evidence)

    def _move_trust(self, ctx: LoginContext, evidence: Evidence) -> None:
        """After :func:`take_over`: the imported device listed under the portal's id becomes authguard's
        cookie (first seen then, and remembered until the same time if it still was); the portal's entry
        ends (:func:`portal_device_ending`)."""
        old, moves = portal_device_ending(ctx, evidence)
        if old is None or ctx.user_id is None:
            return
        imported = (
            KnownDevice.objects.select_for_update()
            .filter(user_id=ctx.user_id, cookie_hash=old, revoked_at__isnull=True)
            .first()
        )
        if imported is None:
            return  # none, or revoked between the evidence and now: nothing to carry over
        if moves:
            own = KnownDevice.objects.get(user_id=ctx.user_id, cookie_hash=ctx.device_hash)
            own.first_seen_at = min(own.first_seen_at, imported.first_seen_at)
            own.learned_at = _earliest(own.learned_at, imported.learned_at)
            own.factor_verified_at = _earliest(own.factor_verified_at, imported.factor_verified_at)
            until = imported.trusted_until
            # SECURITY: only trust the login was judged with, never onto a browser the customer revoked.
            if (
                evidence.device.trusted
                and until is not None
                and until > ctx.time
                and own.revoked_at is None
                and (own.trusted_until is None or own.trusted_until < until)
            ):
                own.trusted_until = until
            own.save(update_fields=["first_seen_at", "learned_at", "factor_verified_at", "trusted_until"])
        # SECURITY: ended, not deleted: importing the log again must not list (and remember) it again.
        KnownDevice.objects.filter(pk=imported.pk).update(revoked_at=ctx.time, trusted_until=None)

    def record_attempt(self, ctx: LoginContext, *, failed: bool) -> None:
        record_attempt(self.cache, ctx, failed=failed)

    def note_device(self, ctx: LoginContext) -> None:
        """List the login's browser among the user's devices (the security page shows it, the customer can
        revoke it) without learning anything: the risk profile, the population counts and the device's
        trust are untouched, so the browser still counts as new at its next sign-in.

        For a login verified by a factor that must not teach the risk engine (a TOTP or recovery code,
        which a phishing page can relay; issue 10, battery case 56).
        """
        if ctx.user_id is None or not ctx.device_hash:
            return
        updated = KnownDevice.objects.filter(user_id=ctx.user_id, cookie_hash=ctx.device_hash).update(
            last_seen_at=ctx.time, last_ip=ctx.ip, last_place=ctx.geo.place
        )
        if not updated:
            KnownDevice.objects.create(
                user_id=ctx.user_id,
                cookie_hash=ctx.device_hash,
                label=ctx.client.summary[:200],
                first_seen_at=ctx.time,
                last_seen_at=ctx.time,
                last_ip=ctx.ip,
                last_place=ctx.geo.place,
            )

    def trust_device(self, ctx: LoginContext, until: datetime) -> None:
        if ctx.user_id is not None and ctx.device_hash:
            KnownDevice.objects.filter(user_id=ctx.user_id, cookie_hash=ctx.device_hash).update(
                trusted_until=until
            )


#: Appended values folded per transaction; a fold takes at most ``FOLD_BATCHES`` of them per call.
FOLD_BATCH = 5000
FOLD_BATCHES = 20
_CHUNK = 500  # keys per IN (...) list: well under SQLite's variable limit


def fold_population(*, batch: int = FOLD_BATCH, batches: int = FOLD_BATCHES) -> int:
    """Add the appended population values into ``PopulationCount``; returns how many were folded.

    Run by the ``authguard.fold_population`` task (beat) and after a login once per period
    (:func:`fold_when_due`), so a portal without a beat still gets fresh counts. Each batch is one
    transaction: the values, their features' totals and distinct counts are added and the appended rows
    deleted together, so a crash half-way folds nothing twice.
    """
    folded = 0
    for _round in range(batches):
        with transaction.atomic():
            PopulationFold.objects.get_or_create(pk=1)
            # SECURITY: one fold at a time (this row's lock), or two would both count a new value as distinct.
            fold = PopulationFold.objects.select_for_update().get(pk=1)
            rows = list(PopulationDelta.objects.order_by("pk").values_list("pk", "key")[:batch])
            if not rows:
                break
            keys = [key for _pk, key in rows]
            distinct_keys = list(dict.fromkeys(keys))
            seen: set[str] = set()
            for start in range(0, len(distinct_keys), _CHUNK):
                chunk = distinct_keys[start : start + _CHUNK]
                seen.update(
                    PopulationCount.objects.filter(key__in=chunk, count__gt=0).values_list("key", flat=True)
                )
            increments = _fold_increments(keys, seen.__contains__)
            PopulationCount.objects.bulk_create(
                [PopulationCount(key=key, count=0) for key in increments],
                ignore_conflicts=True,
                batch_size=_CHUNK,
            )
            by_amount: dict[int, list[str]] = defaultdict(list)
            for key, times in increments.items():
                by_amount[times].append(key)
            for times, amount_keys in by_amount.items():
                for start in range(0, len(amount_keys), _CHUNK):
                    PopulationCount.objects.filter(key__in=amount_keys[start : start + _CHUNK]).update(
                        count=F("count") + times
                    )
            # By the exact keys read: a range could take a row another login committed meanwhile, unread.
            pks = [pk for pk, _key in rows]
            for start in range(0, len(pks), _CHUNK):
                PopulationDelta.objects.filter(pk__in=pks[start : start + _CHUNK]).delete()
            fold.folded_at = timezone.now()
            fold.folded += len(rows)
            fold.save(update_fields=["folded_at", "folded"])
            folded += len(rows)
        if len(rows) < batch:
            break
    return folded


#: The last fold period this process saw claimed (by itself or another node).
_claimed_period: int | None = None


def fold_when_due() -> None:
    """Fold once per period of ``AUTHGUARD_POPULATION_FOLD_SECONDS`` across every node (a cache key per
    period decides which login does it), after that login's commit. Never raises: a fold that cannot run
    now runs at the next period or from the beat task."""
    global _claimed_period
    seconds = fold_seconds()
    try:
        if seconds:
            period = int(time.time() // seconds)
            if period == _claimed_period:
                return  # this process already saw the period claimed: no cache round trip per login
            _claimed_period = period
            # A cache that cannot answer claims nothing (fail safe): the fold runs at the next period or from
            # the beat task, and no login waits on a hung cache here once its breaker is open.
            claimed = guarded_cache_call(
                default_cache.add,
                f"authguard:population:fold:{period}",
                1,
                2 * seconds,
                what="the population fold claim",
                default=False,
            )
            if not claimed:
                return
        fold_population()
    except Exception:  # the cache or the database failing must not fail the login that triggered it
        logger.warning("authguard: population fold failed; it runs again at the next period", exc_info=True)


def note_factor_change(user_id: Any, when: datetime) -> None:
    """Record that a second factor was added or removed, for :class:`~authguard.risk_signals.AccountContext`.

    The step-up layer calls this whenever a passkey, TOTP device or recovery codes change.
    """
    with transaction.atomic():
        profile, _ = RiskProfile.objects.select_for_update().get_or_create(user_id=user_id)
        profile.data["sec"] = when.timestamp()
        profile.save(update_fields=["data", "updated_at"])


def trusted_until(ctx: LoginContext) -> datetime:
    """When a device remembered now stops counting as trusted."""
    return ctx.time + timedelta(days=app_settings.TRUSTED_DEVICE_DAYS)
