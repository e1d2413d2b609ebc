"""Where the risk engine's memory lives: profiles, population counts, remembered devices, velocity.

Two stores implement the same small interface:

* :class:`DatabaseHistory` for live logins: the database (:mod:`authguard.models`) and Django's cache.
* :class:`MemoryHistory` for ``authguard replay``: plain dicts, so a backtest never touches the
  configured database and runs at tens of thousands of events per second.

Both hand the signals the same :class:`Evidence` and learn through the same :func:`authguard.profile.learn`,
so the replay scores exactly as live logins do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.core.cache import cache as default_cache
from django.db import transaction
from django.db.models import F

from .conf import app_settings
from .context import LoginContext
from .profile import POPULATION_FEATURES, Profile, learn, population_keys
from .velocity import (
    WINDOW_SECONDS,
    CounterCache,
    DictCache,
    VelocityCounts,
    read_counts,
    record_attempt,
)


@dataclass(frozen=True)
class DeviceState:
    """What is known about the device cookie a login presented."""

    presented: bool
    known: bool
    trusted: bool


@dataclass(frozen=True)
class Evidence:
    """Everything the signals may read about one login. Signals do no I/O of their own."""

    ctx: LoginContext
    profile: Profile
    population: dict[str, int]
    device: DeviceState
    velocity: VelocityCounts

    def population_count(self, key: str) -> int:
        return self.population.get(key, 0)


class History(Protocol):
    """The store interface shared by live logins and the replay."""

    def evidence(self, ctx: LoginContext) -> Evidence: ...
    def learn(self, ctx: LoginContext, evidence: Evidence) -> None: ...
    def record_attempt(self, ctx: LoginContext, *, failed: bool) -> None: ...
    def trust_device(self, ctx: LoginContext, until: datetime) -> None: ...


def _device_state(profile: Profile, ctx: LoginContext, trusted: bool) -> DeviceState:
    presented = ctx.device_hash is not None
    known = ctx.device_hash is not None and profile.count("dev", ctx.device_hash[:20]) > 0
    return DeviceState(presented=presented, known=known, trusted=presented and trusted)


_TOTAL_KEYS = {feature: f"#{feature}" for feature in POPULATION_FEATURES}
_DISTINCT_KEYS = {feature: f"~{feature}" for feature in POPULATION_FEATURES}


def _population_increments(evidence: Evidence) -> list[str]:
    """Keys to increment after learning a login: each value, each total, and distinct counts of new values."""
    count = evidence.population.get
    keys = []
    for feature, key in evidence.ctx.population_value_keys.items():
        keys.append(key)
        keys.append(_TOTAL_KEYS[feature])
        if not count(key):
            keys.append(_DISTINCT_KEYS[feature])
    if not evidence.profile.data:
        keys.append("#users")
    return keys


#: How many hourly windows of event time pass between two sweeps of the replay's counters.
_SWEEP_WINDOWS = 6


class MemoryHistory:
    """In-memory store for the replay. Starts empty; nothing is written anywhere else."""

    def __init__(self, *, horizon_days: int | None = None) -> None:
        self.horizon_days = horizon_days or app_settings.PROFILE_HORIZON_DAYS
        self.profiles: dict[Any, dict[str, Any]] = {}
        self.population: dict[str, int] = {}
        self.trusted: dict[tuple[Any, str], datetime] = {}
        self.counters = DictCache()
        self._swept_window = -_SWEEP_WINDOWS

    def evidence(self, ctx: LoginContext) -> Evidence:
        profile = Profile.at(self.profiles.get(ctx.user_id), ctx.timestamp, self.horizon_days)
        until = self.trusted.get((ctx.user_id, ctx.device_hash or ""))
        return Evidence(
            ctx=ctx,
            profile=profile,
            population=self.population,
            device=_device_state(profile, ctx, until is not None and until > ctx.time),
            velocity=read_counts(self.counters, ctx),
        )

    def learn(self, ctx: LoginContext, evidence: Evidence) -> None:
        population = self.population
        for key in _population_increments(evidence):
            population[key] = population.get(key, 0) + 1
        self.profiles[ctx.user_id] = learn(
            self.profiles.get(ctx.user_id), ctx, horizon_days=self.horizon_days
        )

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


class DatabaseHistory:
    """The live store: profiles, population counts and devices in the database, counters in the cache.

    Gathering the evidence of a login costs three queries (profile, population counts, remembered
    device) and one cache round trip, whatever the length of the user's history.
    """

    def __init__(self, cache: CounterCache | None = None) -> None:
        self.cache = cache or default_cache
        self.horizon_days = app_settings.PROFILE_HORIZON_DAYS

    def evidence(self, ctx: LoginContext) -> Evidence:
        from .models import KnownDevice, PopulationCount, RiskProfile

        data = None
        trusted = False
        if ctx.user_id is not None:
            data = RiskProfile.objects.filter(user_id=ctx.user_id).values_list("data", flat=True).first()
            if ctx.device_hash:
                trusted = KnownDevice.objects.filter(
                    user_id=ctx.user_id,
                    cookie_hash=ctx.device_hash,
                    revoked_at__isnull=True,
                    trusted_until__gt=ctx.time,
                ).exists()
        profile = Profile.at(data, ctx.timestamp, self.horizon_days)
        population = dict(
            PopulationCount.objects.filter(key__in=population_keys(ctx)).values_list("key", "count")
        )
        return Evidence(
            ctx=ctx,
            profile=profile,
            population=population,
            device=_device_state(profile, ctx, trusted),
            velocity=read_counts(self.cache, ctx),
        )

    def learn(self, ctx: LoginContext, evidence: Evidence) -> None:
        from .models import KnownDevice, PopulationCount, RiskProfile

        if ctx.user_id is None:
            return
        increments = _population_increments(evidence)
        with transaction.atomic():
            profile, _ = RiskProfile.objects.select_for_update().get_or_create(user_id=ctx.user_id)
            profile.data = learn(profile.data, ctx, horizon_days=self.horizon_days)
            profile.save(update_fields=["data", "updated_at"])
            PopulationCount.objects.bulk_create(
                [PopulationCount(key=key, count=0) for key in dict.fromkeys(increments)],
                ignore_conflicts=True,
            )
            PopulationCount.objects.filter(key__in=increments).update(count=F("count") + 1)
            if ctx.device_hash:
                updated = KnownDevice.objects.filter(user_id=ctx.user_id, cookie_hash=ctx.device_hash).update(
                    last_seen_at=ctx.time,
                    last_ip=ctx.ip,
                    last_place=ctx.geo.place,
                    label=ctx.client.summary[:200],
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

    def record_attempt(self, ctx: LoginContext, *, failed: bool) -> None:
        record_attempt(self.cache, ctx, failed=failed)

    def note_device(self, ctx: LoginContext) -> None:
        """List the login's browser among the user's devices (the security page shows it, the customer can
        revoke it) without learning anything: the risk profile, the population counts and the device's
        trust are untouched, so the browser still counts as new at its next sign-in.

        For a login verified by a factor that must not teach the risk engine (a TOTP or recovery code,
        which a phishing page can relay; issue 10, battery case 56).
        """
        from .models import KnownDevice

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
        from .models import KnownDevice

        if ctx.user_id is not None and ctx.device_hash:
            KnownDevice.objects.filter(user_id=ctx.user_id, cookie_hash=ctx.device_hash).update(
                trusted_until=until
            )


def note_factor_change(user_id: Any, when: datetime) -> None:
    """Record that a second factor was added or removed, for :class:`~authguard.risk_signals.AccountContext`.

    The step-up layer calls this whenever a passkey, TOTP device or recovery codes change.
    """
    from .models import RiskProfile

    with transaction.atomic():
        profile, _ = RiskProfile.objects.select_for_update().get_or_create(user_id=user_id)
        profile.data["sec"] = when.timestamp()
        profile.save(update_fields=["data", "updated_at"])


def trusted_until(ctx: LoginContext) -> datetime:
    """When a device remembered now stops counting as trusted."""
    return ctx.time + timedelta(days=app_settings.TRUSTED_DEVICE_DAYS)
