"""One clock for expiries, windows and elapsed times: this node's, corrected to the database server's.

Every web node writes times that other nodes compare (a session's last activity, a held order's deadline,
the last sign-in a phishing-relay signal measures from, the windows of the login throttle). A node whose
clock is off would stretch or shrink all of them, so authguard reads those times from :func:`now`:

* ``now()`` is Django's ``timezone.now()`` plus a **correction**: the offset between the database server's
  clock (PostgreSQL ``clock_timestamp()``) and this node's operating-system clock, measured when a process
  opens a database connection, at most every ``AUTHGUARD_CLOCK["measure_seconds"]``;
* an offset within ``tolerance_seconds`` (default 2 s) is no correction at all: ``now()`` is exactly
  ``timezone.now()``, so tests that move time with time-machine keep moving it (time-machine patches Python's
  clock functions; the operating-system clock is read here through libc, which it does not reach, so in
  tests both clocks agree and the offset is about 0);
* a larger offset is applied in full, logged (``WARNING``) when it appears or changes, and reported by the
  system check ``authguard.W180`` (``manage.py check --database default``).

On SQLite the database's clock *is* the node's (the same process), so nothing is measured. Elsewhere
(MySQL, Oracle) nothing is measured either: no correction, as before.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core import signing
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from authguard.conf import app_settings

__all__ = [
    "Skew",
    "TimestampSigner",
    "is_from_the_future",
    "measure",
    "measure_on_connect",
    "now",
    "os_time",
    "skew",
    "timestamp",
]

logger = logging.getLogger(__name__)

#: ``CLOCK_REALTIME`` on Linux and macOS.
_CLOCK_REALTIME = 0


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc_clock_gettime() -> Any:
    try:
        function = ctypes.CDLL(None).clock_gettime  # this process's symbols: libfaketime's when preloaded
    except (OSError, AttributeError, TypeError):  # Windows, or a libc without it
        return None
    function.argtypes = [ctypes.c_int, ctypes.POINTER(_Timespec)]
    function.restype = ctypes.c_int
    return function


_clock_gettime = _libc_clock_gettime()


def os_time() -> float | None:
    """The operating system's wall clock (seconds since the epoch) as libc reads it, or None where libc
    cannot be asked. Unlike ``time.time()`` it is out of reach of Python-level patches (time-machine)."""
    if _clock_gettime is None:
        return None
    spec = _Timespec()
    if _clock_gettime(_CLOCK_REALTIME, ctypes.byref(spec)) != 0:
        return None
    return spec.tv_sec + spec.tv_nsec / 1e9


@dataclass(frozen=True)
class Skew:
    """One measurement: ``offset`` = the database's clock minus this node's, in seconds."""

    offset: float
    round_trip: float
    database: str
    measured_at: float  # time.monotonic()

    @property
    def correction(self) -> float:
        """What :func:`now` adds: the offset when it exceeds the tolerance, else 0."""
        return self.offset if abs(self.offset) > app_settings.CLOCK["tolerance_seconds"] else 0.0


_lock = threading.Lock()
_last: Skew | None = None
_logged_correction = 0.0
_attempted_at: float | None = None  # time.monotonic() of the last measurement tried on a new connection


def skew() -> Skew | None:
    """This process's last measurement, or None (not measured yet, or a database without a clock to ask)."""
    return _last


def now() -> datetime:
    """The time for expiries, windows and elapsed times: ``timezone.now()`` corrected to the database's
    clock when this node's is off by more than the tolerance."""
    measured = _last
    correction = measured.correction if measured is not None else 0.0
    current = timezone.now()
    return current + timedelta(seconds=correction) if correction else current


def timestamp() -> float:
    """:func:`now` as seconds since the epoch."""
    return now().timestamp()


class TimestampSigner(signing.TimestampSigner):
    """Django's ``TimestampSigner`` on :func:`timestamp`: a value signed on one node and checked for age on
    another (a bound cookie, a step-up token) keeps its lifetime whatever the nodes' own clocks say. Django's
    reads ``time.time()`` on both sides. Also ``sign_object`` / ``unsign_object`` (``signing.dumps`` /
    ``loads``)."""

    def timestamp(self) -> str:
        return signing.b62_encode(int(timestamp()))

    def unsign(self, value: str, max_age: float | timedelta | None = None) -> str:
        result = signing.Signer.unsign(self, value)
        value, stamp = result.rsplit(self.sep, 1)
        if max_age is not None:
            limit = max_age.total_seconds() if isinstance(max_age, timedelta) else max_age
            age = timestamp() - signing.b62_decode(stamp)
            if age > limit:
                raise signing.SignatureExpired(f"Signature age {age} > {limit} seconds")
        return value


def is_from_the_future(elapsed_seconds: float) -> bool:
    """Whether an elapsed time is negative beyond what two healthy nodes can disagree by: the earlier time
    was written by a clock ahead of this one by more than the tolerance allows. SECURITY: callers treat it
    as suspicious (fail closed), never as "just now".

    Twice the tolerance: a node within ``tolerance_seconds`` of the database is not corrected, so a time
    written on a node ahead by almost the tolerance and read on one behind by almost as much is that far in
    the reader's future: a customer's fresh sign-in or token is not from the future (red team, round
    eleven: a healthy pair of nodes ended her new token on its first call)."""
    return elapsed_seconds < -2 * float(app_settings.CLOCK["tolerance_seconds"])


def measure(using: str = DEFAULT_DB_ALIAS) -> Skew | None:
    """Measure the offset of the database ``using`` now (one query); None where there is nothing to
    measure (SQLite, other vendors, no libc clock) or the measurement failed or took too long."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    before = os_time()
    if before is None:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
            (database_time,) = cursor.fetchone()
    except Exception:
        logger.exception("authguard: could not read the database's clock")
        return None
    after = os_time() or before
    round_trip = after - before
    if round_trip > app_settings.CLOCK["max_round_trip_seconds"]:
        return None  # too slow to say which instant the database's answer belongs to
    measured = Skew(float(database_time) - (before + after) / 2, round_trip, using, time.monotonic())
    _remember(measured)
    return measured


def _remember(measured: Skew) -> None:
    global _last, _logged_correction
    with _lock:
        _last = measured
        correction, logged = measured.correction, _logged_correction
        if abs(correction - logged) <= app_settings.CLOCK["tolerance_seconds"]:
            return
        _logged_correction = correction
    if correction:
        logger.warning(
            "authguard: this node's clock is %+.1f s off the database's (%s); expiries, windows and elapsed "
            "times use the database's time",
            -correction,
            measured.database,
        )
    else:
        logger.warning("authguard: this node's clock agrees with the database's again")


def measure_on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: measure on the default database's new connection when due (at most
    every ``measure_seconds`` per process; the query runs before any request's own)."""
    global _attempted_at
    if connection.alias != DEFAULT_DB_ALIAS or connection.vendor != "postgresql":
        return
    started = time.monotonic()
    # A failed or discarded measurement waits its turn too: no query (or log line) on every connection.
    if _attempted_at is not None and started - _attempted_at < app_settings.CLOCK["measure_seconds"]:
        return
    _attempted_at = started
    measure(connection.alias)
