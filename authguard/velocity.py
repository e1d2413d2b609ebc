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


def _subjects(ctx: LoginContext) -> dict[str, str]:
    ip = ctx.ip or "-"
    return {
        "user_failures": f"uf:{_user_key(ctx.username)}",
        "ip_failures": f"if:{ip}",
        "network_failures": f"nf:{ctx.prefix or '-'}",
        "site_failures": "sf",
        "ip_users": f"iu:{ip}",
    }


def read_counts(cache: CounterCache, ctx: LoginContext) -> VelocityCounts:
    """The counters of ``ctx`` over the last hour (and the site's last day), in one cache round trip."""
    now = ctx.timestamp
    window, elapsed = divmod(now, WINDOW_SECONDS)
    day, day_elapsed = divmod(now, BASELINE_SECONDS)
    current, previous = f":{int(window)}", f":{int(window) - 1}"
    keys = []
    for subject in _subjects(ctx).values():
        stem = _PREFIX + subject
        keys.append(stem + current)
        keys.append(stem + previous)
    keys.append(f"{_PREFIX}sd:{int(day)}")
    keys.append(f"{_PREFIX}sd:{int(day) - 1}")
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
    window = int(now // WINDOW_SECONDS)
    timeout = 2 * WINDOW_SECONDS + 60  # a window is read while it is current and while it is the previous
    subjects = _subjects(ctx)
    # Distinct usernames per IP: count a pair once per window.
    if cache.add(f"{_PREFIX}seen:{ctx.ip or '-'}:{_user_key(ctx.username)}:{window}", 1, timeout):
        _increment(cache, f"{_PREFIX}{subjects['ip_users']}:{window}", timeout)
    if failed:
        for name in ("user_failures", "ip_failures", "network_failures", "site_failures"):
            _increment(cache, f"{_PREFIX}{subjects[name]}:{window}", timeout)
        _increment(cache, f"{_PREFIX}sd:{int(now // BASELINE_SECONDS)}", 2 * BASELINE_SECONDS + 60)


class DictCache:
    """A process-local stand-in for Django's cache with the counter API, for the replay.

    Entries never expire by clock: the replay's time is the events' time. :meth:`forget_before` drops
    windows no read can reach any more, which bounds the memory of a long replay.
    """

    def __init__(self) -> None:
        self.data: dict[str, int] = {}

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        data = self.data
        return {k: data[k] for k in keys if k in data}

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
