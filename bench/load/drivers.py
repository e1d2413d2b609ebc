"""Loopback load generators: ``wrk`` when it is installed, else a small Python client in processes.

Both keep ``connections`` requests in flight against one URL for ``duration`` seconds, send the bench
session's headers with every request, and count every answer that is not a 200 (a redirect to the login or
step-up page would be a cheaper page, so it must never pass for a served portfolio).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RoundResult:
    """One timed round against one server."""

    label: str
    requests: int
    seconds: float
    non_200: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    #: CPU seconds the server (gunicorn master and workers) used during the round, where /proc tells.
    server_cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s * 1000 / self.requests


# wrk calls response() for every answer (in each thread's Lua state); done() gathers the threads' counts.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body) if status ~= 200 then non200 = non200 + 1 end end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non_200": %d, "errors": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


class WrkDriver:
    """``wrk -t1 -c<connections> -d<duration>s`` with the session headers and :data:`WRK_SCRIPT`."""

    name = "wrk"

    def __init__(self, *, connections: int, script_dir: Path, threads: int = 1) -> None:
        self.connections = connections
        self.threads = threads
        self._script = script_dir / "count.lua"
        self._script.write_text(WRK_SCRIPT)

    def describe(self) -> str:
        return f"wrk -t{self.threads} -c{self.connections}"

    def run(self, label: str, url: str, *, headers: dict[str, str], duration: float) -> RoundResult:
        command = [
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "30s",
            "-s",
            str(self._script),
        ]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        done = subprocess.run(  # noqa: S603 - fixed program, our own arguments
            [*command, url], capture_output=True, text=True, check=True, timeout=duration + 60
        )
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no summary: {done.stdout} {done.stderr}")
        data = json.loads(line.removeprefix("WRK_JSON "))
        return RoundResult(
            label,
            requests=data["requests"],
            seconds=data["duration_us"] / 1e6,
            non_200=data["non_200"],
            errors=data["errors"],
            p50_ms=data["p50_us"] / 1000,
            p90_ms=data["p90_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
        )


def _client_loop(
    url: str, headers: dict[str, str], start_at: float, seconds: float, queue: multiprocessing.Queue
) -> None:
    """One connection's worth of load: request, read, repeat; reconnect when the server closes.

    Every process starts at the same ``start_at`` (``time.monotonic``, system-wide on Linux), after all
    of them have been spawned, so process start-up is not counted as serving time.
    """
    parts = urlsplit(url)
    latencies: list[float] = []
    non_200 = errors = 0
    conn: http.client.HTTPConnection | None = None
    time.sleep(max(0.0, start_at - time.monotonic()))
    end = start_at + seconds
    while (start := time.monotonic()) < end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            conn.request("GET", parts.path or "/", headers=headers)
            response = conn.getresponse()
            response.read()
            latencies.append(time.monotonic() - start)
            non_200 += response.status != 200
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            errors += 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()
    queue.put((latencies, non_200, errors, time.monotonic()))


class PythonDriver:
    """A keep-alive (where the server allows it) HTTP client in ``connections`` separate processes."""

    name = "python"

    def __init__(self, *, connections: int) -> None:
        self.connections = connections

    def describe(self) -> str:
        return f"Python client, {self.connections} processes"

    def run(self, label: str, url: str, *, headers: dict[str, str], duration: float) -> RoundResult:
        context = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue = context.Queue()
        start_at = time.monotonic() + 2.0  # spawning a Python process takes a while
        processes = [
            context.Process(target=_client_loop, args=(url, headers, start_at, duration, queue))
            for _ in range(self.connections)
        ]
        for process in processes:
            process.start()
        results = [queue.get(timeout=duration + 120) for _ in processes]
        seconds = max(r[3] for r in results) - start_at
        for process in processes:
            process.join()
        latencies = sorted(x for r in results for x in r[0])

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

        return RoundResult(
            label,
            requests=len(latencies),
            seconds=seconds,
            non_200=sum(r[1] for r in results),
            errors=sum(r[2] for r in results),
            p50_ms=pct(0.50),
            p90_ms=pct(0.90),
            p99_ms=pct(0.99),
        )
