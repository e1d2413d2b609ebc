"""``python -m bench.replay_shards EVENTS GEOIP``: the sharded replay's speed-up; its lines must be equal.

Runs ``manage.py authguard replay`` on the same input with ``--shards 1`` and each ``--shards N`` asked for,
alternately, ``--repeat`` times (so a neighbour's load hits every variant alike), checks that every output is
byte for byte the ``--shards 1`` output, and prints each run's wall time, the CPU seconds of the command and
its children (Dask's workers included), the load average before it, and the median speed-up.

The input is a detection benchmark's ``events.jsonl`` and ``geoip/`` (``python -m bench.detection --seed 1
--out DIR`` writes them).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def run(events: Path, geoip: Path, output: Path, shards: int) -> tuple[float, float]:
    """One replay; returns its wall time and the CPU seconds (user + system) of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "authguard",
            "replay",
            str(events),
            "--output",
            str(output),
            "--geoip-path",
            str(geoip),
            "--shards",
            str(shards),
            "--quiet",
        ],
        cwd=REPO_ROOT,
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay_shards", description=__doc__.splitlines()[0]
    )
    parser.add_argument("events", type=Path)
    parser.add_argument("geoip", type=Path)
    parser.add_argument("--shards", type=int, nargs="+", default=[2], help="shard counts besides 1")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    variants = [1, *args.shards]
    walls: dict[int, list[float]] = {n: [] for n in variants}
    with tempfile.TemporaryDirectory() as folder:
        outputs = {n: Path(folder) / f"out-{n}.jsonl" for n in variants}
        for attempt in range(1, args.repeat + 1):
            for n in variants:
                load = os.getloadavg()[0]
                wall, cpu = run(args.events, args.geoip, outputs[n], n)
                walls[n].append(wall)
                print(
                    f"run {attempt} --shards {n}: {wall:.1f} s wall, {cpu:.1f} s CPU, load before {load:.2f}"
                )
            reference = outputs[1].read_bytes()
            for n in args.shards:
                if outputs[n].read_bytes() != reference:
                    print(f"--shards {n} differs from --shards 1", file=sys.stderr)
                    return 1
    lines = len(args.events.read_text(encoding="utf-8").splitlines())
    one = statistics.median(walls[1])
    print(f"{lines:,} lines; every output equal to --shards 1, byte for byte")
    for n in variants:
        median = statistics.median(walls[n])
        print(
            f"--shards {n}: median {median:.1f} s, {lines / median:,.0f} lines/s, speed-up {one / median:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
