"""The load generator of ``python -m bench.load logins``: customers signing in, from separate processes.

Each process keeps one login in flight: ``POST /api/login`` with the customer's JSON credentials, CSRF
cookie and header, device cookie, browser and address (:func:`bench.load.login_seed.login_request`), on a
new connection each time (gunicorn's sync workers close every connection after its answer). The processes
share out the customers so that no two send the same customer at once, and go round them in order.

Every answer is kept: the time it took, its HTTP status, the ``status`` of its JSON body, and the number of
SQL statements and transactions the server counted for it (:mod:`bench.load.querycount`).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

#: One answer: (kind, seconds, HTTP status, JSON status, statements, transactions).
Answer = tuple[str, float, int, str, int, int]


@dataclass(frozen=True)
class Prepared:
    """One login ready to send: ``kind`` is ``safe`` or ``risky``."""

    kind: str
    body: bytes
    headers: dict[str, str]


def _status_of(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return "not-json"
    return str(answer.get("status", "-")) if isinstance(answer, dict) else "not-json"


def _client_loop(
    url: str, logins: list[Prepared], start_at: float, seconds: float, queue: multiprocessing.Queue
) -> None:
    parts = urlsplit(url)
    answers: list[Answer] = []
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu_before = time.process_time()
    end = start_at + seconds
    i = 0
    while (start := time.monotonic()) < end:
        login = logins[i % len(logins)]
        i += 1
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.request("POST", "/api/login", body=login.body, headers=login.headers)
            response = conn.getresponse()
            body = response.read()
            answers.append(
                (
                    login.kind,
                    time.monotonic() - start,
                    response.status,
                    _status_of(body),
                    int(response.getheader("X-Bench-Queries") or -1),
                    int(response.getheader("X-Bench-Transactions") or -1),
                )
            )
        except (OSError, http.client.HTTPException):
            answers.append((login.kind, time.monotonic() - start, 0, "error", -1, -1))
        finally:
            conn.close()
    queue.put((answers, time.monotonic(), time.process_time() - cpu_before))


def run_logins(
    url: str, shares: list[list[Prepared]], *, duration: float
) -> tuple[list[Answer], float, float]:
    """Run one process per share for ``duration`` seconds; returns every answer, the seconds the
    run took (first start to last finish) and the CPU seconds the clients used."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = context.Queue()
    start_at = time.monotonic() + 2.0  # spawning Python processes takes a while; none of it is timed
    processes = [
        context.Process(target=_client_loop, args=(url, share, start_at, duration, queue)) for share in shares
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=duration + 120) for _ in processes]
    for process in processes:
        process.join()
    answers = [a for r in results for a in r[0]]
    return answers, max(r[1] for r in results) - start_at, sum(r[2] for r in results)
