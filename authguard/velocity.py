"""Velocity counters: failed logins per user, per IP, per network and site-wide, in a rolling window.

Counters live in a cache (Django's cache in production, so several web processes share them; a dict in
the replay), bucketed by the event's own time so that the live path and the replay count identically.
Reading every counter of a login is one ``get_many``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

from django.utils.crypto import salted_hmac

from .context import LoginContext

BUCKET_SECONDS = 600
WINDOW_BUCKETS = 6  # one hour, in six 10-minute buckets
_PREFIX = "ag:v:"
HOUR_BUCKETS = 3600 // BUCKET_SECONDS
DAY_BUCKETS = 24 * HOUR_BUCKETS


class CounterCache(Protocol):
    """The part of Django's cache API the counters use."""

    def get_many(self, keys: list[str]) -> dict[str, Any]: ...
    def add(self, key: str, value: Any, timeout: int | None = ...) -> bool: ...
    def incr(self, key: str, delta: int = 1) -> int: ...


@dataclass(frozen=True)
class VelocityCounts:
    """Counts over the last hour, before the login being scored."""

    user_failures: int = 0
    ip_failures: int = 0
    network_failures: int = 0
    site_failures: int = 0
    ip_users: int = 0  # distinct usernames tried from this IP
    site_failures_day: int = 0  # site-wide failures over the last 24 hours: the baseline of a surge


@functools.lru_cache(maxsize=65536)
def _user_key(username: str) -> str:
    # Usernames are hashed so cache keys carry no personal data and no odd characters.
    return salted_hmac("authguard.velocity", username.lower(), algorithm="sha256").hexdigest()[:20]


def _bucket(ctx: LoginContext) -> int:
    return int(ctx.time.timestamp()) // BUCKET_SECONDS


def _subjects(ctx: LoginContext) -> dict[str, str]:
    return {
        "user_failures": f"uf:{_user_key(ctx.username)}",
        "ip_failures": f"if:{ctx.ip or '-'}",
        "network_failures": f"nf:{ctx.prefix or '-'}",
        "site_failures": "sf",
        "ip_users": f"iu:{ctx.ip or '-'}",
    }


def read_counts(cache: CounterCache, ctx: LoginContext) -> VelocityCounts:
    """The counters of ``ctx`` over the last :data:`WINDOW_BUCKETS` buckets, in one cache round trip."""
    now = _bucket(ctx)
    buckets = range(now - WINDOW_BUCKETS + 1, now + 1)
    subjects = _subjects(ctx)
    keys = {name: [f"{_PREFIX}{subject}:{b}" for b in buckets] for name, subject in subjects.items()}
    hour = now - now % HOUR_BUCKETS
    keys["site_failures_day"] = [
        f"{_PREFIX}sd:{b}" for b in range(hour - DAY_BUCKETS + HOUR_BUCKETS, hour + 1, HOUR_BUCKETS)
    ]
    found = cache.get_many([k for ks in keys.values() for k in ks])
    return VelocityCounts(**{name: sum(int(found.get(k, 0)) for k in ks) for name, ks in keys.items()})


def _increment(cache: CounterCache, key: str, timeout: int = BUCKET_SECONDS * (WINDOW_BUCKETS + 1)) -> None:
    if not cache.add(key, 1, timeout):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout)


def record_attempt(cache: CounterCache, ctx: LoginContext, *, failed: bool) -> None:
    """Count a login attempt: failures feed every counter, any attempt feeds distinct users per IP."""
    bucket = _bucket(ctx)
    subjects = _subjects(ctx)
    timeout = BUCKET_SECONDS * (WINDOW_BUCKETS + 1)
    # Distinct usernames per IP: count a pair once per bucket (approximate over the window, by design).
    if cache.add(f"{_PREFIX}seen:{ctx.ip or '-'}:{_user_key(ctx.username)}:{bucket}", 1, timeout):
        _increment(cache, f"{_PREFIX}{subjects['ip_users']}:{bucket}")
    if failed:
        for name in ("user_failures", "ip_failures", "network_failures", "site_failures"):
            _increment(cache, f"{_PREFIX}{subjects[name]}:{bucket}")
        _increment(cache, f"{_PREFIX}sd:{bucket - bucket % HOUR_BUCKETS}", BUCKET_SECONDS * (DAY_BUCKETS + 1))


class DictCache:
    """A process-local stand-in for Django's cache with the counter API, for the replay.

    Entries never expire by clock: the replay's time is the events' time, and the keys already carry it.
    """

    def __init__(self) -> None:
        self.data: dict[str, int] = {}
        self._by_bucket: dict[int, list[str]] = {}

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        data = self.data
        return {k: data[k] for k in keys if k in data}

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        if key in self.data:
            return False
        self.data[key] = value
        self._by_bucket.setdefault(int(key.rsplit(":", 1)[1]), []).append(key)
        return True

    def forget_before(self, when_timestamp: float) -> None:
        """Drop buckets that fell out of every window before ``when_timestamp`` (bounds the memory)."""
        oldest = int(when_timestamp) // BUCKET_SECONDS - DAY_BUCKETS - HOUR_BUCKETS
        for bucket in [b for b in self._by_bucket if b < oldest]:
            for key in self._by_bucket.pop(bucket):
                self.data.pop(key, None)

    def incr(self, key: str, delta: int = 1) -> int:
        self.data[key] += delta
        return self.data[key]
