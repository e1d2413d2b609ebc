"""Velocity counters: failed logins per user, per IP, per network and site-wide, in a rolling window.

Counters live in a cache (Django's cache in production, so several web processes share them; a dict in
the replay), keyed by the event's own time so that the live path and the replay count identically.

Each rolling window is a *sliding-window counter*: the count of the current fixed window plus the previous
window's count weighted by how much of it still overlaps the last hour (or day). Two keys per subject, so
reading every counter of a login is one ``get_many`` of a dozen keys, and the error against an exact
rolling count is bounded by the previous window's uneven spread.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

from django.utils.crypto import salted_hmac

from .context import LoginContext

WINDOW_SECONDS = 3600
#: The site-wide baseline (failures over the last day) against which a surge is judged.
BASELINE_SECONDS = 24 * 3600
_PREFIX = "ag:v:"


class CounterCache(Protocol):
    """The part of Django's cache API the counters use."""

    def get_many(self, keys: list[str]) -> dict[str, Any]: ...
    def add(self, key: str, value: Any, timeout: int | None = ...) -> bool: ...
    def incr(self, key: str, delta: int = 1) -> int: ...


@dataclass(frozen=True)
class VelocityCounts:
    """Counts over the last hour (and the site's last day), before the login being scored."""

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


@functools.lru_cache(maxsize=65536)
def _stems(username: str, ip: str | None, prefix: str | None) -> tuple[str, ...]:
    """The key stems of a login's counters (a window number completes each key), in
    :class:`VelocityCounts` order, then the stem of the seen (IP, username) pair.

    Cached: the same user signs in from the same address again and again.
    """
    ip = ip or "-"
    user = _user_key(username)
    return (
        f"{_PREFIX}uf:{user}:",
        f"{_PREFIX}if:{ip}:",
        f"{_PREFIX}nf:{prefix or '-'}:",
        f"{_PREFIX}sf:",
        f"{_PREFIX}iu:{ip}:",
        f"{_PREFIX}seen:{ip}:{user}:",
    )


_USER, _IP, _NETWORK, _SITE, _IP_USERS, _SEEN = range(6)
_SITE_DAY = f"{_PREFIX}sd:"


def read_counts(cache: CounterCache, ctx: LoginContext) -> VelocityCounts:
    """The counters of ``ctx`` over the last hour (and the site's last day), in one cache round trip."""
    now = ctx.timestamp
    window, elapsed = divmod(now, WINDOW_SECONDS)
    day, day_elapsed = divmod(now, BASELINE_SECONDS)
    current, previous = str(int(window)), str(int(window) - 1)
    keys = []
    for stem in _stems(ctx.username, ctx.ip, ctx.prefix)[:_SEEN]:
        keys.append(stem + current)
        keys.append(stem + previous)
    keys.append(f"{_SITE_DAY}{int(day)}")
    keys.append(f"{_SITE_DAY}{int(day) - 1}")
    found = cache.get_many(keys)
    get = found.get
    values = [int(get(key, 0)) for key in keys] if found else [0] * len(keys)
    overlap = 1 - elapsed / WINDOW_SECONDS
    day_overlap = 1 - day_elapsed / BASELINE_SECONDS
    return VelocityCounts(
        user_failures=round(values[0] + values[1] * overlap),
        ip_failures=round(values[2] + values[3] * overlap),
        network_failures=round(values[4] + values[5] * overlap),
        site_failures=round(values[6] + values[7] * overlap),
        ip_users=round(values[8] + values[9] * overlap),
        site_failures_day=round(values[10] + values[11] * day_overlap),
    )


def _increment(cache: CounterCache, key: str, timeout: int) -> None:
    if not cache.add(key, 1, timeout):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout)


def record_attempt(cache: CounterCache, ctx: LoginContext, *, failed: bool) -> None:
    """Count a login attempt: failures feed every counter, any attempt feeds distinct users per IP."""
    now = ctx.timestamp
    window = str(int(now // WINDOW_SECONDS))
    timeout = 2 * WINDOW_SECONDS + 60  # a window is read while it is current and while it is the previous
    stems = _stems(ctx.username, ctx.ip, ctx.prefix)
    # Distinct usernames per IP: count a pair once per window.
    if cache.add(stems[_SEEN] + window, 1, timeout):
        _increment(cache, stems[_IP_USERS] + window, timeout)
    if failed:
        for index in (_USER, _IP, _NETWORK, _SITE):
            _increment(cache, stems[index] + window, timeout)
        _increment(cache, f"{_SITE_DAY}{int(now // BASELINE_SECONDS)}", 2 * BASELINE_SECONDS + 60)


class DictCache:
    """A process-local stand-in for Django's cache with the counter API, for the replay.

    Entries never expire by clock: the replay's time is the events' time. :meth:`forget_before` drops
    windows no read can reach any more, which bounds the memory of a long replay.
    """

    def __init__(self) -> None:
        self.data: dict[str, int] = {}

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        get = self.data.get
        return {k: v for k in keys if (v := get(k)) is not None}

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        if key in self.data:
            return False
        self.data[key] = value
        return True

    def incr(self, key: str, delta: int = 1) -> int:
        self.data[key] += delta
        return self.data[key]

    def forget_before(self, when_timestamp: float) -> None:
        """Drop hourly windows older than the previous one, and daily ones older than yesterday."""
        oldest_window = int(when_timestamp // WINDOW_SECONDS) - 1
        oldest_day = int(when_timestamp // BASELINE_SECONDS) - 1
        for key in list(self.data):
            number = int(key.rsplit(":", 1)[1])
            if number < (oldest_day if key.startswith(f"{_PREFIX}sd:") else oldest_window):
                del self.data[key]
