"""Circuit breakers around the shared services a login or a notification touches (the cache, the broker).

A service that is down answers fast (connection refused), but a *hung* one answers only when a timeout fires;
at hundreds of logins a second, even a short timeout on every call fills the web workers. A
:class:`CircuitBreaker` counts consecutive failures of one service: after ``failures`` of them it *opens* and
every call is skipped at once (:class:`CircuitOpen`) for ``reset_seconds``; then one trial call goes through
(*half open*): a success closes the breaker, a failure opens it for another ``reset_seconds``.

Breakers are per process (each web worker learns about an outage from its own calls), thread-safe, and need
nothing but the standard library. Callers decide what a skipped call means: authguard's velocity and throttle
counters report themselves unavailable, and the login flow then fails *safe*; the policy version and the
network blocks are read from the database instead; a one-time spend (a step-up token, a WebAuthn challenge)
that cannot be recorded is refused (``docs/faults.md``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

from django.core.signals import setting_changed
from django.dispatch import receiver

from authguard.conf import app_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
D = TypeVar("D")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """The call was skipped: its service failed repeatedly and the breaker is open."""

    def __init__(self, name: str) -> None:
        super().__init__(f"circuit {name!r} is open")
        self.name = name


class CircuitBreaker:
    """Skip calls to a failing service for a while, then try it again with one call.

    ``ignore`` lists exception types that are *answers* of the service rather than faults (Django's cache
    raises ``ValueError`` from ``incr`` of a missing key): they count as successes and are re-raised.
    ``clock`` is a monotonic clock (seconds); tests may pass their own.
    """

    def __init__(
        self,
        name: str,
        *,
        failures: int = 3,
        reset_seconds: float = 30.0,
        ignore: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or reset_seconds <= 0:
            raise ValueError("a circuit breaker needs failures >= 1 and reset_seconds > 0")
        self.name = name
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.ignore = ignore
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_running = False
        #: Calls skipped while open, since the process started (for the log line that closes the breaker).
        self.skipped = 0

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (the trial call may go now, or is under way)."""
        with self._lock:
            if self._opened_at is None:
                return CLOSED
            if self._trial_running or self._clock() - self._opened_at >= self.reset_seconds:
                return HALF_OPEN
            return OPEN

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` through the breaker. Raises :class:`CircuitOpen` without calling while
        the breaker is open (or while another thread runs the half-open trial)."""
        trial = self._admit()
        try:
            result = fn(*args, **kwargs)
        except self.ignore:
            self._succeeded(trial)
            raise
        except Exception:
            self._failed(trial)
            raise
        except BaseException:  # KeyboardInterrupt, a worker's SystemExit: says nothing about the service
            self._abandon(trial)
            raise
        self._succeeded(trial)
        return result

    def reset(self) -> None:
        """Close the breaker and forget its failures."""
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._trial_running = False

    # -- state transitions (under the lock) ---------------------------------------------------------------

    def _admit(self) -> bool:
        """Whether the call may go, and whether it is the half-open trial; raises CircuitOpen otherwise."""
        with self._lock:
            if self._opened_at is None:
                return False
            if not self._trial_running and self._clock() - self._opened_at >= self.reset_seconds:
                self._trial_running = True  # exactly one caller probes the service
                return True
            self.skipped += 1
        raise CircuitOpen(self.name)

    def _succeeded(self, trial: bool) -> None:
        with self._lock:
            was_open = self._opened_at is not None
            if was_open and not trial:
                return  # a call admitted before the breaker opened: the trial decides, not this one
            self._consecutive = 0
            self._opened_at = None
            self._trial_running = False
            skipped, self.skipped = self.skipped, 0
        if was_open:
            logger.warning(
                "authguard: %s is answering again; circuit closed (%s calls skipped)", self.name, skipped
            )

    def _failed(self, trial: bool) -> None:
        with self._lock:
            self._consecutive += 1
            if trial or (self._opened_at is None and self._consecutive >= self.failures):
                opened_now = self._opened_at is None
                self._opened_at = self._clock()
                self._trial_running = False
            else:
                return
        if opened_now:
            logger.error(
                "authguard: %s failed %s times in a row; circuit open, skipping it for %ss",
                self.name,
                self.failures,
                self.reset_seconds,
            )

    def _abandon(self, trial: bool) -> None:
        if trial:
            with self._lock:
                self._trial_running = False


_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker(name: str, *, ignore: tuple[type[BaseException], ...] = ()) -> CircuitBreaker:
    """This process's breaker called ``name`` (created on first use from ``AUTHGUARD_CIRCUIT_BREAKER``)."""
    found = _registry.get(name)
    if found is not None:
        return found
    with _registry_lock:
        found = _registry.get(name)
        if found is None:
            options = app_settings.CIRCUIT_BREAKER
            found = CircuitBreaker(
                name,
                failures=int(options["failures"]),
                reset_seconds=float(options["reset_seconds"]),
                ignore=ignore,
            )
            _registry[name] = found
        return found


def cache_breaker() -> CircuitBreaker:
    """The breaker of Django's default cache: every cache call of a request (velocity and throttle
    counters, the policy version, network blocks, one-time spends, token strength) goes through it, most
    via :func:`guarded_cache_call`.

    A cache's ``ValueError`` (``incr`` of a missing key) is an answer, not a fault.
    """
    return breaker("the cache", ignore=(ValueError,))


class CacheUnavailable(Exception):
    """A call to Django's default cache failed, hung past its socket timeout, or was skipped because the
    cache's breaker is open."""


_RAISE: Any = object()
#: A ``default`` for :func:`guarded_cache_call` that tells "the cache could not be asked" apart from any
#: answer (``None`` included): callers then read their source of truth and do not write to the cache.
NO_ANSWER: Any = object()


@overload
def guarded_cache_call(fn: Callable[..., T], *args: Any, what: str) -> T: ...


@overload
def guarded_cache_call(fn: Callable[..., T], *args: Any, what: str, default: D) -> T | D: ...


def guarded_cache_call(fn: Callable[..., T], *args: Any, what: str, default: Any = _RAISE) -> Any:
    """``fn(*args)`` (a method of Django's cache) through :func:`cache_breaker`.

    Any fault (an error, a socket timeout, the breaker open) answers ``default`` when one is given, and
    raises :class:`CacheUnavailable` otherwise; the caller decides what a missing answer means (a security
    decision fails closed, anything else fails safe). A fault is logged once per call as a ``WARNING``
    naming ``what``; a call skipped by the open breaker is not (the breaker logged when it opened).
    ``ValueError`` (``incr`` of a missing key) is the cache's answer and is re-raised.
    """
    try:
        return cache_breaker().call(fn, *args)
    except ValueError:
        raise
    except CircuitOpen as error:
        if default is _RAISE:
            raise CacheUnavailable(str(error)) from error
        return default
    except Exception as error:
        logger.warning("authguard: cache call for %s failed (%s: %s)", what, type(error).__name__, error)
        if default is _RAISE:
            raise CacheUnavailable(str(error)) from error
        return default


def broker_breaker(url: str | None = None) -> CircuitBreaker:
    """The breaker of the Celery broker at ``url`` (publishing outbox rows); one per broker address, named
    without its credentials."""
    if not url:
        return breaker("the Celery broker")
    from kombu.utils.url import maybe_sanitize_url

    return breaker(f"the Celery broker {maybe_sanitize_url(url)}")


def reset_breakers() -> None:
    """Forget every breaker (their state and options): the next call creates them afresh."""
    with _registry_lock:
        _registry.clear()


@receiver(setting_changed)
def _services_changed(*, setting: str, **kwargs: Any) -> None:
    # Another cache, broker or breaker setting (override_settings in tests): what was learnt is stale.
    if setting in ("CACHES", "CELERY_BROKER_URL", "AUTHGUARD_CIRCUIT_BREAKER"):
        reset_breakers()


__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "NO_ANSWER",
    "OPEN",
    "CacheUnavailable",
    "CircuitBreaker",
    "CircuitOpen",
    "breaker",
    "broker_breaker",
    "cache_breaker",
    "guarded_cache_call",
    "reset_breakers",
]
