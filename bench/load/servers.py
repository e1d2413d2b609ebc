"""The two gunicorn servers of the load benchmark: the demo as shipped, and the demo without authguard's
middleware. Same code, same database, same worker count and worker class; only the settings module differs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """One gunicorn master (and its sync workers) serving the demo with ``settings_module``."""

    label: str
    settings_module: str
    workers: int
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        return [
            str(gunicorn) if gunicorn.exists() else "gunicorn",
            "demo_site.wsgi:application",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "60",
            "--no-control-socket",
            "--error-logfile",
            str(self.log_path),
            "--log-level",
            "warning",
        ]

    def start(self) -> None:
        env = {**self.env, "DJANGO_SETTINGS_MODULE": self.settings_module}
        self.process = subprocess.Popen(  # noqa: S603 - our own fixed argument list
            self.command(),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, *, headers: dict[str, str], timeout: float = 60.0) -> tuple[int, bytes]:
        """Poll ``/`` until the server answers; returns the first answer's status and body."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.label}: gunicorn exited ({self.log_tail()})")
            try:
                return fetch(self.url, headers=headers)
            except OSError as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.label}: no answer within {timeout:.0f}s ({self.log_tail()})"
                    ) from error
                time.sleep(0.2)

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the master and its workers; None without ``/proc``.

        Per request, this is much less disturbed by other load on the machine than requests per second.
        """
        if self.process is None:
            return None
        return process_tree_cpu(self.process.pid)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "no log"

    def stop(self) -> None:
        """Stop the master we started (it stops its workers); kill it if it does not go within 10s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # our own session: the master and its workers
            self.process.wait(timeout=10)


def _stat(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields after "pid (comm)": state, ppid, ...


def children(parent: int) -> set[int]:
    """The processes whose parent is ``parent`` now (a gunicorn master's workers); none without ``/proc``."""
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    found = set()
    for entry in proc.iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) is not None and int(fields[1]) == parent:
            found.add(int(entry.name))
    return found


def process_tree_cpu(root: int) -> float | None:
    """User + system CPU seconds of ``root`` and its direct children (a gunicorn master's workers)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields is None:
            continue
        if int(entry.name) == root or int(fields[1]) == root:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(url: str, *, headers: dict[str, str]) -> tuple[int, bytes]:
    """GET ``url`` without following redirects; ``(status, body)``."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback URL we built
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx, 5xx
        return error.code, error.read()
