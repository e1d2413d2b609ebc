"""What PostgreSQL's backends were doing during ``python -m bench.load logins``: lock waits, and CPU.

:class:`LockSampler` reads ``pg_stat_activity`` about every 10 ms from its own connection, on a thread of
the benchmark's process, for the backends of the benchmark's database only (the sampler's own excluded). A
*sample* is one active backend seen in one reading; it *waits on a lock* when its ``wait_event_type`` is
``Lock`` (a row, tuple, transaction id or relation lock; not LWLocks or I/O). For each such sample the
relation is the one of the lock it waits for in ``pg_locks`` (``tuple`` and ``relation`` locks name it), else
the table its statement writes (``transactionid`` waits name no relation: a row lock held by another
transaction), read from the statement text by :func:`statement_table`.

:func:`backend_cpu_seconds` adds up the CPU time of the database's backends from ``/proc`` (the server runs
on the same machine), so database CPU per login can be set next to the web workers'.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .servers import _stat

SAMPLE_SQL = """
SELECT a.pid, a.wait_event_type, a.wait_event,
       COALESCE((SELECT string_agg(DISTINCT c.relname, ',') FROM pg_locks l
                 JOIN pg_class c ON c.oid = l.relation
                 WHERE l.pid = a.pid AND NOT l.granted), ''),
       left(a.query, 300)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend' AND a.state = 'active'
"""

BACKENDS_SQL = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""

_WRITTEN = re.compile(r'^\s*(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM|SELECT\b.*?\bFROM)\s+"(\w+)"', re.I | re.S)

#: One active backend in one reading: (wait_event_type, wait_event, relations of its ungranted locks, SQL).
Row = tuple[str | None, str | None, str, str]


def statement_table(sql: str) -> str:
    """The table a statement writes or reads first (``UPDATE "t"``, ``INSERT INTO "t"``, ``... FROM "t"``)."""
    match = _WRITTEN.match(sql or "")
    return match.group(1) if match else "?"


@dataclass
class LockSummary:
    """The readings of one run, summed."""

    readings: int = 0
    active: int = 0
    lock_waits: int = 0
    readings_with_wait: int = 0
    by_relation: Counter[str] = field(default_factory=Counter)
    by_event: Counter[str] = field(default_factory=Counter)

    def add(self, rows: list[Row]) -> None:
        self.readings += 1
        self.active += len(rows)
        waiting = [row for row in rows if row[0] == "Lock"]
        self.lock_waits += len(waiting)
        self.readings_with_wait += bool(waiting)
        for _type, event, relations, sql in waiting:
            self.by_event[event or "?"] += 1
            for relation in relations.split(",") if relations else [statement_table(sql)]:
                self.by_relation[relation] += 1

    @property
    def share(self) -> float:
        """Share of active-backend samples that waited on a lock."""
        return self.lock_waits / self.active if self.active else 0.0

    def authguard_share(self) -> float:
        """Share of active-backend samples waiting on a lock of one of authguard's tables."""
        waits = sum(n for rel, n in self.by_relation.items() if rel.startswith("authguard_"))
        return min(waits, self.lock_waits) / self.active if self.active else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "readings": self.readings,
            "active_samples": self.active,
            "lock_wait_samples": self.lock_waits,
            "lock_wait_share": round(self.share, 4),
            "authguard_lock_wait_share": round(self.authguard_share(), 4),
            "readings_with_a_wait": self.readings_with_wait,
            "by_relation": dict(self.by_relation.most_common()),
            "by_wait_event": dict(self.by_event.most_common()),
        }


class LockSampler:
    """Reads :data:`SAMPLE_SQL` every ``interval`` seconds until stopped; ``summary`` holds the sum."""

    def __init__(self, url: str, *, interval: float = 0.01) -> None:
        self.url = url
        self.interval = interval
        self.summary = LockSummary()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LockSampler:
        import psycopg

        self._conn = psycopg.connect(self.url, autocommit=True)
        self._thread = threading.Thread(target=self._run, name="lock-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            rows = self._conn.execute(SAMPLE_SQL).fetchall()
            self.summary.add([(r[1], r[2], r[3], r[4]) for r in rows])
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._conn.close()


def backend_cpu_seconds(url: str) -> float | None:
    """CPU seconds used so far by the client backends of ``url``'s database (None without ``/proc``)."""
    import psycopg

    if not Path("/proc").is_dir():
        return None
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(BACKENDS_SQL).fetchall()]
    ticks = os.sysconf("SC_CLK_TCK")
    stats = [fields for fields in map(_stat, map(str, pids)) if fields is not None]
    return sum(int(fields[11]) + int(fields[12]) for fields in stats) / ticks
