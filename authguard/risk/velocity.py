"""Velocity counters: failed logins per user, per IP, per network and site-wide, in a rolling window.

Counters live in a cache (Django's cache in production, so several web processes share them; a dict in
the replay), keyed by the event's own time so that the live path and the replay count identically.

Each rolling window is a *sliding-window counter*: the count of the current fixed window plus the previous
window's count weighted by how much of it still overlaps the last hour (or day). Two keys per subject, so
reading every counter of a login is one ``get_many`` of a dozen keys, and the error against an exact
rolling count is bounded by the previous window's uneven spread.

The same module holds the login throttle's counters (:func:`reserve_password_check`): an attempt takes its
slot with one atomic increment *before* the password is checked, so N parallel guesses let at most the limit
through, and gives it back when the password was right or the attempt was refused.

A cache that fails or hangs never fails a login here: every call to Django's cache goes through the cache's
circuit breaker (:mod:`authguard.resilience`), and counters that cannot be read come back *unavailable*
(``VelocityCounts.available``, ``Reservation.available``) for the login flow to decide on
(``docs/faults.md``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from django.db import DEFAULT_DB_ALIAS, router, transaction
from django.utils.crypto import salted_hmac

from authguard import durable
from authguard.models import AccountLock
from authguard.resilience import CacheUnavailable, guarded_cache_call
from authguard.risk.context import LoginContext

T = TypeVar("T")

WINDOW_SECONDS = 3600
#: The site-wide baseline (failures over the last day) against which a surge is judged.
BASELINE_SECONDS = 24 * 3600
_PREFIX = "ag:v:"


class CounterCache(Protocol):
    """The part of Django's cache API the counters use."""

    def get_many(self, keys: list[str]) -> dict[str, Any]: ...
    def add(self, key: str, value: Any, timeout: int | None = ...) -> bool: ...
    def incr(self, key: str, delta: int = 1) -> int: ...
    def decr(self, key: str, delta: int = 1) -> int: ...
    def delete(self, key: str) -> Any: ...


class CountersUnavailable(Exception):
    """The cache holding the counters failed, hung past its timeout, or its circuit breaker is open."""


def _call(cache: CounterCache, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on ``cache``: straight for the replay's dict, through the cache's breaker otherwise.

    Raises :class:`CountersUnavailable` for any fault (a ``ValueError`` of ``incr`` is an answer, re-raised).
    """
    if isinstance(cache, DictCache):
        return fn(*args)
    try:
        return guarded_cache_call(fn, *args, what="the velocity counters")
    except CacheUnavailable as error:
        raise CountersUnavailable(str(error)) from error


@dataclass(frozen=True)
class VelocityCounts:
    """Counts over the last hour (and the site's last day), before the login being scored.

    ``available`` is False when the counters could not be read (the cache is down or hung): the counts
    are then zeros that mean *unknown*, never *none*.
    """

    user_failures: int = 0
    ip_failures: int = 0
    network_failures: int = 0
    site_failures: int = 0
    ip_users: int = 0  # distinct usernames tried from this IP
    site_failures_day: int = 0  # site-wide failures over the last 24 hours: the baseline of a surge
    available: bool = True


#: What :func:`read_counts` answers when the cache cannot be read.
UNAVAILABLE = VelocityCounts(available=False)


@functools.lru_cache(maxsize=65536)
def _user_key(username: str) -> str:
    # Usernames are hashed so cache keys carry no personal data and no odd characters.
    return salted_hmac("authguard.velocity", username.lower(), algorithm="sha256").hexdigest()[:20]


@functools.lru_cache(maxsize=65536)
def _stems(subject: str, ip: str | None, prefix: str | None) -> tuple[str, ...]:
    """The key stems of a login's counters (a window number completes each key), in :class:`VelocityCounts`
    order, then the stem of the seen (IP, subject) pair; ``subject`` is :func:`_subject`'s.

    Cached: the same user signs in from the same address again and again.
    """
    ip = ip or "-"
    user = _user_key(subject)
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


def _subject(ctx: LoginContext) -> str:
    """Whose failures a login's per-user counter holds: the account (``user_id``), or the name typed for
    none. Two namespaces, like the throttle's (:func:`authguard.login.attempt.account_key`).

    SECURITY: keyed on the typed name lower-cased, a name that reaches no account but lower-cases to hers
    (a Kelvin sign for the k, ``HANAKO`` where names are case-sensitive) raised *her* score to a denial with
    nothing on her account to say why (red team, round thirty-six). The replay's ``user_id`` is its line's
    user, so it counts exactly as before.
    """
    return f"account:{ctx.user_id}" if ctx.user_id is not None else f"name:{ctx.username}"


def read_counts(cache: CounterCache, ctx: LoginContext) -> VelocityCounts:
    """The counters of ``ctx`` over the last hour (and the site's last day), in one cache round trip.

    Never raises for a cache fault: the answer is then :data:`UNAVAILABLE`.
    """
    now = ctx.timestamp
    window, elapsed = divmod(now, WINDOW_SECONDS)
    day, day_elapsed = divmod(now, BASELINE_SECONDS)
    current, previous = str(int(window)), str(int(window) - 1)
    keys = []
    for stem in _stems(_subject(ctx), ctx.ip, ctx.prefix)[:_SEEN]:
        keys.append(stem + current)
        keys.append(stem + previous)
    keys.append(f"{_SITE_DAY}{int(day)}")
    keys.append(f"{_SITE_DAY}{int(day) - 1}")
    if isinstance(cache, DictCache):
        found = cache.get_many(keys)  # the replay's hot path: no breaker, no fault to expect
    else:
        try:
            found = _call(cache, cache.get_many, keys)
        except CountersUnavailable:
            return UNAVAILABLE
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
    if not _call(cache, cache.add, key, 1, timeout):
        try:
            _call(cache, cache.incr, key)
        except ValueError:  # expired between add and incr
            _call(cache, cache.add, key, 1, timeout)


def record_attempt(cache: CounterCache, ctx: LoginContext, *, failed: bool) -> None:
    """Count a login attempt: failures feed every counter, any attempt feeds distinct users per IP.

    Raises :class:`CountersUnavailable` (after its first failed call: the rest are not tried) when the cache
    cannot be written; the login flow logs it and goes on.
    """
    now = ctx.timestamp
    window = str(int(now // WINDOW_SECONDS))
    timeout = 2 * WINDOW_SECONDS + 60  # a window is read while it is current and while it is the previous
    stems = _stems(_subject(ctx), ctx.ip, ctx.prefix)
    # Distinct usernames per IP: count a pair once per window.
    if _call(cache, cache.add, stems[_SEEN] + window, 1, timeout):
        _increment(cache, stems[_IP_USERS] + window, timeout)
    if failed:
        for index in (_USER, _IP, _NETWORK, _SITE):
            _increment(cache, stems[index] + window, timeout)
        _increment(cache, f"{_SITE_DAY}{int(now // BASELINE_SECONDS)}", 2 * BASELINE_SECONDS + 60)


# -- the login throttle -----------------------------------------------------------------------------------

_THROTTLE_USER = f"{_PREFIX}tu:"
_THROTTLE_IP = f"{_PREFIX}ti:"


@dataclass(frozen=True)
class Reservation:
    """What :func:`reserve_password_check` decided for one attempt.

    ``allowed``: the attempt may have its password checked; it holds a slot in each counter of ``keys``
    until :func:`release_password_check` gives them back (a right password, or a refusal after all). A
    wrong password keeps them: the slot *is* the failure count. ``available`` False: the counters could not
    be used at all (nothing is held; ``allowed`` is True and the login flow fails safe, see docs/faults.md).
    """

    allowed: bool
    available: bool = True
    keys: tuple[str, ...] = ()


def _take(cache: CounterCache, key: str, timeout: int) -> int:
    """Increment ``key`` by one, creating it with ``timeout``; the new value. One atomic step (Redis INCR)."""
    try:
        return int(_call(cache, cache.incr, key))
    except ValueError:  # no such key yet
        pass
    if _call(cache, cache.add, key, 1, timeout):
        return 1
    return int(_call(cache, cache.incr, key))  # created by a parallel attempt in between


def reserve_password_check(
    cache: CounterCache,
    *,
    username: str,
    ip: str | None,
    timestamp: float,
    user_limit: int,
    ip_limit: int,
) -> Reservation:
    """Take this attempt's slot in the account's and the IP's throttle counters, before any password check.

    SECURITY: check and increment are one atomic operation per counter (the increment returns the count
    including this attempt), so N parallel wrong passwords let at most the limit through, where a read
    followed by a later write let every attempt that read before the first write through. As before, the
    counts are rolling hours (the previous window weighted by its overlap) and an attempt is refused when
    the failures before it reach a limit. A refused attempt gives its slots back: it checked no password.
    """
    window, elapsed = divmod(timestamp, WINDOW_SECONDS)
    current, previous = str(int(window)), str(int(window) - 1)
    user_stem = f"{_THROTTLE_USER}{_user_key(username)}:"
    ip_stem = f"{_THROTTLE_IP}{ip or '-'}:"
    timeout = 2 * WINDOW_SECONDS + 60
    taken: list[str] = []
    try:
        before = _call(cache, cache.get_many, [user_stem + previous, ip_stem + previous])
        counts = []
        for key in (user_stem + current, ip_stem + current):
            counts.append(_take(cache, key, timeout))
            taken.append(key)
    except CountersUnavailable:
        release_password_check(cache, Reservation(allowed=True, keys=tuple(taken)))
        return Reservation(allowed=True, available=False)
    overlap = 1 - elapsed / WINDOW_SECONDS
    user_before = counts[0] - 1 + int(before.get(user_stem + previous, 0)) * overlap
    ip_before = counts[1] - 1 + int(before.get(ip_stem + previous, 0)) * overlap
    reservation = Reservation(allowed=True, keys=tuple(taken))
    if round(user_before) >= user_limit or round(ip_before) >= ip_limit:
        release_password_check(cache, reservation)
        return Reservation(allowed=False)
    return reservation


def release_password_check(cache: CounterCache, reservation: Reservation) -> None:
    """Give back the slots of ``reservation`` (its password was right, or it was refused unchecked).

    Best effort: a slot that cannot be given back (the cache failed meanwhile) stays counted, which errs
    on the side of throttling one attempt early.
    """
    for key in reservation.keys:
        # Expired (a window later) or the cache is gone: nothing more to do.
        with contextlib.suppress(ValueError, CountersUnavailable):
            _call(cache, cache.decr, key)


_IN_FLIGHT = f"{_PREFIX}tf:"
#: How long one password check of an account holds its place: a check takes a fraction of a second; the
#: place of a request that died (or never signed anyone in) is free again after this.
IN_FLIGHT_SECONDS = 15
#: How often a waiting attempt asks for the place again.
IN_FLIGHT_POLL_SECONDS = 0.05
#: The request attribute holding the in-flight key this request took (:func:`take_in_flight`).
IN_FLIGHT_ATTR = "_authguard_check_in_flight"


def take_in_flight(cache: CounterCache, request: Any, *, username: str, wait_seconds: float = 2.0) -> str:
    """Take the account's one password check in flight for ``request``, waiting up to ``wait_seconds`` while
    another check of it runs. ``"taken"``; ``"waited"`` (taken after another check ended: its failure may
    have locked the account, ask again); ``"busy"`` (still in flight: refuse this one unchecked). The place
    is given back by :func:`release_in_flight` once the attempt is counted (or after
    :data:`IN_FLIGHT_SECONDS`). When the cache cannot be used the check goes on (``"taken"``; the throttle's
    fail-safe steps the login up: docs/faults.md). ``username`` is the attempt's account key
    (:func:`authguard.login.attempt.account_key`).

    SECURITY: the account lock is read before a password check and counted after it: a burst of parallel
    guesses all read "not locked" and were all checked, seventeen against a lock of ten, and a right password
    among them was answered apart from the wrong ones (red team, round thirty-five). One check at a time per
    account: no burst outruns the lock. A customer's double-submitted form waits its turn (a fraction of a
    second) instead of being refused (round thirty-six).
    """
    key = f"{_IN_FLIGHT}{_user_key(username)}"
    if getattr(request, IN_FLIGHT_ATTR, None) == key:
        # This request's own earlier check of the account, its place kept until its transaction commits
        # (:func:`release_in_flight`): the lock it wrote is visible here, in the same transaction; ask again.
        return "waited"
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    waited = False
    while True:
        try:
            if _call(cache, cache.add, key, 1, IN_FLIGHT_SECONDS):
                break
        except CountersUnavailable:
            return "taken"
        if time.monotonic() >= deadline:
            return "busy"
        waited = True
        time.sleep(IN_FLIGHT_POLL_SECONDS)
    setattr(request, IN_FLIGHT_ATTR, key)
    return "waited" if waited else "taken"


def release_in_flight(cache: CounterCache, request: Any, *, when_committed: bool = False) -> None:
    """Give back the place :func:`take_in_flight` took for ``request`` (once; best effort).

    ``when_committed``: the attempt wrote what the next check must read (a failure, perhaps the account's
    lock); inside a view's transaction the place is given back when it commits, or, rolled back, by the
    middleware after the view. (Outside a view, e.g. ``authenticate()`` in a shell or a test's transaction,
    at once: nothing would give it back otherwise.)

    SECURITY: under ``ATOMIC_REQUESTS`` the view's transaction commits the lock when the view returns; the
    place given back before that let the next check read "not locked" and a right password sign in on the
    account the tenth failure had just locked (red team, round thirty-seven).
    """
    key = getattr(request, IN_FLIGHT_ATTR, None)
    if not key:
        return
    # The lock's own database (a portal may route authguard's rows away from ``default``).
    alias = router.db_for_write(AccountLock) or DEFAULT_DB_ALIAS
    if when_committed and transaction.get_connection(alias).in_atomic_block and durable.in_view():
        transaction.on_commit(functools.partial(_release_key, cache, request, key), using=alias)
        return
    _release_key(cache, request, key)


def _release_key(cache: CounterCache, request: Any, key: str) -> None:
    if getattr(request, IN_FLIGHT_ATTR, None) == key:
        setattr(request, IN_FLIGHT_ATTR, None)
    with contextlib.suppress(CountersUnavailable):
        _call(cache, cache.delete, key)


def peek_throttle(cache: CounterCache, *, username: str, ip: str | None, timestamp: float) -> tuple[int, int]:
    """The account's and the IP's rolling throttle counts (failures in the last hour), without taking a slot.

    Raises :class:`CountersUnavailable` when the cache cannot be read.
    """
    window, elapsed = divmod(timestamp, WINDOW_SECONDS)
    current, previous = str(int(window)), str(int(window) - 1)
    user_stem = f"{_THROTTLE_USER}{_user_key(username)}:"
    ip_stem = f"{_THROTTLE_IP}{ip or '-'}:"
    keys = [user_stem + current, user_stem + previous, ip_stem + current, ip_stem + previous]
    found = _call(cache, cache.get_many, keys)
    values = [int(found.get(key, 0)) for key in keys]
    overlap = 1 - elapsed / WINDOW_SECONDS
    return round(values[0] + values[1] * overlap), round(values[2] + values[3] * overlap)


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
        if key not in self.data:
            raise ValueError(f"Key {key!r} not found")  # as Django's caches answer
        self.data[key] += delta
        return self.data[key]

    def decr(self, key: str, delta: int = 1) -> int:
        return self.incr(key, -delta)

    def delete(self, key: str) -> Any:
        return self.data.pop(key, None)

    def forget_before(self, when_timestamp: float) -> None:
        """Drop hourly windows older than the previous one, and daily ones older than yesterday."""
        oldest_window = int(when_timestamp // WINDOW_SECONDS) - 1
        oldest_day = int(when_timestamp // BASELINE_SECONDS) - 1
        for key in list(self.data):
            number = int(key.rsplit(":", 1)[1])
            if number < (oldest_day if key.startswith(f"{_PREFIX}sd:") else oldest_window):
                del self.data[key]
