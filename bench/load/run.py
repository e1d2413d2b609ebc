"""``python -m bench.load``: what authguard's middleware costs on an authenticated portfolio page.

See the package docstring (``bench/load/__init__.py``) for the method; ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .customer import PORTFOLIO_MARKER, BenchSession, BenchSetupError, check_portfolio
from .database import BenchDatabase, build_schema, create_database, drop_database
from .drivers import PythonDriver, RoundResult, WrkDriver, have_wrk
from .servers import REPO, Server, fetch

WITH = "with authguard"
WITHOUT = "without"
SETTINGS = {WITH: "demo_site.settings", WITHOUT: "bench.load.settings_without"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server [2]")
    parser.add_argument("--connections", type=int, default=None, help="requests in flight [2 per worker]")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round [5]")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds per server [8]")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds per server first [3]")
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--simultaneous",
        action="store_true",
        help="load both servers at the same time in each round (they share the CPUs, and so does any "
        "other load) instead of one after the other",
    )
    parser.add_argument("--goal", type=float, default=0.95, help="ratio to meet [0.95]")
    parser.add_argument("--check", action="store_true", help="exit 1 when the ratio misses the goal")
    parser.add_argument("--json", type=Path, help="also write every round and the summary here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, logs)")
    args = parser.parse_args(argv)
    if args.connections is None:
        args.connections = 2 * args.workers
    if args.driver == "wrk" and not have_wrk():
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    return args


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


def _setup_django(var_dir: Path, db: BenchDatabase) -> dict[str, str]:
    """Point this process (and return the environment for both servers) at the throwaway data."""
    env = {
        "DEMO_VAR_DIR": str(var_dir),
        "AUTHGUARD_GEOIP_PATH": str(var_dir / "geoip"),
        # Production-like: DEBUG on would log every SQL query in both servers.
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "demo_site.settings",
    }
    if db.url:
        env["DATABASE_URL"] = db.url
    os.environ.update(env)
    import django

    django.setup()
    logging.getLogger("authguard").setLevel(logging.WARNING)
    return {**os.environ}


def prepare(var_dir: Path, db: BenchDatabase) -> tuple[dict[str, str], str, BenchSession]:
    """Django set up, GeoIP built, schema built, customer seeded and signed in."""
    env = _setup_django(var_dir, db)
    from django.core.management import call_command
    from django.db import connections

    from .customer import seed_customer, sign_in

    call_command("build_demo_geoip", stdout=io.StringIO())
    schema = build_schema(db)
    user, password = seed_customer()
    session = sign_in(user, password)
    connections.close_all()  # the servers get the database to themselves
    return env, schema, session


def _check_page(server: Server, session: BenchSession, when: str) -> int:
    status, body = fetch(server.url, headers=session.headers())
    if status != 200 or PORTFOLIO_MARKER.encode() not in body:
        raise BenchSetupError(f"{server.label} answered {status} {when}, not the portfolio page")
    return len(body)


def _order(rounds: int) -> list[str]:
    """A B B A A B B A ...: interleaved, and each server goes first as often as second."""
    pairs = [(WITH, WITHOUT) if i % 2 == 0 else (WITHOUT, WITH) for i in range(rounds)]
    return [label for pair in pairs for label in pair]


def _pairs(results: list[RoundResult]) -> list[tuple[RoundResult, RoundResult]]:
    """(with, without) of each pair of adjacent rounds."""
    by = {label: [r for r in results if r.label == label] for label in (WITH, WITHOUT)}
    return list(zip(by[WITH], by[WITHOUT], strict=True))


def summarize(results: list[RoundResult], goal: float) -> dict[str, object]:
    """Per server: median requests/s, latency and CPU per request over the rounds. The ratio is the median
    of the ratios of adjacent rounds (each pair ran within seconds of each other, so slow changes in the
    machine's other load cancel out); the ratio of the medians is reported next to it."""
    by = {label: [r for r in results if r.label == label] for label in (WITH, WITHOUT)}
    med = {label: statistics.median(r.rps for r in rounds) for label, rounds in by.items()}
    pair_ratios = [a.rps / b.rps for a, b in _pairs(results) if b.rps]
    ratio = statistics.median(pair_ratios) if pair_ratios else 0.0
    cpu = {
        label: [r.cpu_ms_per_request for r in rounds if r.cpu_ms_per_request is not None]
        for label, rounds in by.items()
    }
    cpu_pairs = [
        b.cpu_ms_per_request / a.cpu_ms_per_request
        for a, b in _pairs(results)
        if a.cpu_ms_per_request and b.cpu_ms_per_request is not None
    ]
    return {
        "rps_with": round(med[WITH], 1),
        "rps_without": round(med[WITHOUT], 1),
        "ratio": round(ratio, 3),
        "ratio_of_medians": round(med[WITH] / med[WITHOUT], 3) if med[WITHOUT] else 0.0,
        "pair_ratios": [round(r, 3) for r in pair_ratios],
        "goal": goal,
        "met": ratio >= goal,
        "latency_ms": {
            label: {
                p: round(statistics.median(getattr(r, f"{p}_ms") for r in rounds), 2)
                for p in ("p50", "p90", "p99")
            }
            for label, rounds in by.items()
        },
        "cpu_ms_per_request": {
            label: round(statistics.median(values), 3) if values else None for label, values in cpu.items()
        },
        # CPU per request without / with: the throughput ratio the CPU cost alone implies.
        "cpu_ratio": round(statistics.median(cpu_pairs), 3) if cpu_pairs else None,
        "non_200": sum(r.non_200 for r in results),
        "errors": sum(r.errors for r in results),
    }


def _print_round(n: int, r: RoundResult) -> None:
    cpu = f"{r.cpu_ms_per_request:>8.2f}" if r.cpu_ms_per_request is not None else f"{'-':>8}"
    print(
        f"{n:>5}  {r.label:<15} {r.rps:>8.1f} {r.p50_ms:>8.1f} {r.p90_ms:>8.1f} {r.p99_ms:>8.1f}"
        f" {cpu} {r.requests:>8} {r.non_200 + r.errors:>5}",
        flush=True,
    )


def measure(args: argparse.Namespace, env: dict[str, str], session: BenchSession, var_dir: Path) -> dict:
    servers = {
        label: Server(label, SETTINGS[label], args.workers, env, var_dir / f"gunicorn-{i}.log")
        for i, label in enumerate((WITH, WITHOUT))
    }
    driver = (
        WrkDriver(connections=args.connections, script_dir=var_dir)
        if args.driver == "wrk" or (args.driver == "auto" and have_wrk())
        else PythonDriver(connections=args.connections)
    )
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready(headers=session.headers())
        sizes = {label: _check_page(s, session, "before the run") for label, s in servers.items()}
        print(
            f"servers: {', '.join(f'{s.label} {s.url} ({SETTINGS[s.label]})' for s in servers.values())}\n"
            f"page: GET / {sizes[WITH]:,} bytes with authguard, {sizes[WITHOUT]:,} without; "
            f"{args.workers} sync workers per server; load: {driver.describe()}, "
            + (
                f"{args.rounds} rounds of {args.duration:g} s, both servers at once"
                if args.simultaneous
                else f"{args.rounds} rounds of {args.duration:g} s per server, interleaved"
            )
            + ("" if have_wrk() else " (install wrk for a lighter load generator)"),
            flush=True,
        )
        for label, server in servers.items():
            driver.run(label, server.url, headers=session.headers(), duration=args.warmup)
        print(
            f"{'round':>5}  {'server':<15} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
            f" {'CPU ms/r':>8} {'requests':>8} {'bad':>5}"
        )
        results = []

        def timed(label: str) -> RoundResult:
            server = servers[label]
            cpu_before = server.cpu_seconds()
            result = driver.run(label, server.url, headers=session.headers(), duration=args.duration)
            cpu_after = server.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                result = replace(result, server_cpu_s=cpu_after - cpu_before)
            return result

        if args.simultaneous:
            with ThreadPoolExecutor(max_workers=2) as pool:
                for n in range(1, args.rounds + 1):
                    for result in pool.map(timed, (WITH, WITHOUT)):
                        results.append(result)
                        _print_round(n, result)
        else:
            for i, label in enumerate(_order(args.rounds)):
                results.append(timed(label))
                _print_round(i // 2 + 1, results[-1])
        for server in servers.values():
            _check_page(server, session, "after the run")
    finally:
        for server in servers.values():
            server.stop()
    return {"driver": driver.name, "page_bytes": sizes, "results": results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    var_dir = Path(tempfile.mkdtemp(prefix="authguard-bench-load-"))
    db = create_database(var_dir, os.environ.get("DATABASE_URL") or None)
    load_before = os.getloadavg()
    try:
        env, schema, session = prepare(var_dir, db)
        state = check_portfolio(session)
        print(
            f"bench.load at {_git_commit()}: {db.describe()}; schema from {schema}\n"
            f"session: {session.how}; authguard: {state.status}, login {state.login_action or '-'}, "
            f"low risk {state.low_risk}; "
            f"{session.user_agent.split(') ')[0]}) from {session.client_ip}",
            flush=True,
        )
        run = measure(args, env, session, var_dir)
        from django.db import connections

        state_after = check_portfolio(session)
        connections.close_all()
    except (BenchSetupError, RuntimeError, subprocess.SubprocessError) as error:
        print(f"bench.load: {error}", file=sys.stderr)
        return 2
    finally:
        drop_database(db)
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    results: list[RoundResult] = run.pop("results")
    summary = summarize(results, args.goal)
    report = {
        "commit": _git_commit(),
        "database": db.vendor,
        "schema": schema,
        "workers": args.workers,
        "connections": args.connections,
        "duration": args.duration,
        "rounds_per_server": args.rounds,
        "mode": "simultaneous" if args.simultaneous else "interleaved",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "session": session.how,
        "authguard_state_after": asdict(state_after),
        **run,
        "rounds": [asdict(r) | {"rps": r.rps, "cpu_ms_per_request": r.cpu_ms_per_request} for r in results],
        "summary": summary,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_summary(report, summary)
    if summary["non_200"] or summary["errors"]:
        return 3
    return 1 if args.check and not summary["met"] else 0


def print_summary(report: dict[str, Any], summary: dict[str, Any]) -> None:
    """The closing lines; the last one is the result: ``with authguard: N req/s, without: M req/s, ...``."""
    lat, cpu = summary["latency_ms"], summary["cpu_ms_per_request"]
    pairs = summary["pair_ratios"] or [0.0]
    for name in (WITH, WITHOUT):
        print(
            f"{name:<15} p50/p90/p99 {lat[name]['p50']}/{lat[name]['p90']}/{lat[name]['p99']} ms"
            + (f", server CPU {cpu[name]} ms per request" if cpu[name] is not None else "")
            + " (medians of the rounds)"
        )
    print(
        f"ratios of paired rounds {min(pairs):.3f}-{max(pairs):.3f}, ratio of the medians "
        f"{summary['ratio_of_medians']:.3f}"
        + (
            f", CPU per request without/with {summary['cpu_ratio']:.3f}"
            if summary["cpu_ratio"] is not None
            else ""
        )
        + f"; load average {report['load_average_before'][0]} -> {report['load_average_after'][0]}"
    )
    bad = summary["non_200"] + summary["errors"]
    print(
        f"with authguard: {summary['rps_with']} req/s, without: {summary['rps_without']} req/s, "
        f"ratio {summary['ratio']:.3f} (goal >= {summary['goal']}): {'met' if summary['met'] else 'NOT met'}"
        + (f"; INVALID: {bad} answers were not 200" if bad else "")
    )
