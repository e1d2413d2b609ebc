"""``python -m bench.load logins``: authguard's login path under load (issue 15, acceptance 1).

gunicorn serves the demo portal with 1, 2 and 4 sync workers (``--workers``) on PostgreSQL and Redis, and
seeded customers sign in through the real ``POST /api/login`` from concurrent client processes. Per worker
count: logins per second at saturation, latency, CPU per login of the web workers and of the database
backends, SQL statements and transactions per login (counted in the workers, :mod:`bench.load.querycount`),
and the share of database backend samples waiting on locks, by relation (:mod:`bench.load.pg_sampler`).

Method, in one run:

1. A dedicated PostgreSQL database (``--database``, default ``bench_load``, dropped and created again on the
   server of ``--server``; never an existing database of another name) and a dedicated Redis database
   (``--redis``, default db 11, flushed) as the cache, the throttle's and velocity counters' store, and the
   Celery broker.
2. The schema (migrations, or the models when the migrations lag behind, as ``bench.load`` does), the demo
   GeoIP databases, and ``--customers`` customers with ``--history`` learned sign-ins each
   (:mod:`bench.load.login_seed`).
3. Two logins of a seeded customer in this process, the second's SQL captured: the report lists it
   statement by statement with the line that sent each, so a count above the goal says which queries make it.
4. Per worker count: a gunicorn server (:mod:`bench.load.settings_logins`: the demo's settings, MD5 password
   hasher, the query-counting middleware), an untimed warm-up, then ``--duration`` seconds of load with
   ``--clients`` (default 2 per worker + 1) logins in flight while ``pg_stat_activity`` is sampled every
   10 ms. The server is stopped before the next worker count starts.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .login_client import Answer, Prepared, run_logins
from .login_seed import csrf_secret, login_request, risky_request, seed_customers
from .pg_sampler import LockSampler, backend_cpu_seconds
from .servers import Server

SETTINGS = "bench.load.settings_logins"
QUERY_GOAL = 15
LOCK_GOAL = 0.05


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load logins",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts [1 2 4]")
    parser.add_argument("--clients", type=int, default=None, help="logins in flight [2 per worker + 1]")
    parser.add_argument("--customers", type=int, default=2000, help="seeded customers [2000]")
    parser.add_argument("--history", type=int, default=6, help="learned past sign-ins per customer [6]")
    parser.add_argument("--risky", type=float, default=0.0, help="share of risky logins (VPS, curl) [0]")
    parser.add_argument("--duration", type=float, default=20.0, help="timed seconds per worker count [20]")
    parser.add_argument("--warmup", type=float, default=4.0, help="untimed seconds per worker count [4]")
    parser.add_argument(
        "--server",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="a database URL on the PostgreSQL server, to connect to for CREATE DATABASE",
    )
    parser.add_argument("--database", default="bench_load", help="the dedicated database [bench_load]")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11", help="dedicated Redis db [11]")
    parser.add_argument(
        "--fold-seconds",
        type=int,
        default=None,
        help="AUTHGUARD_POPULATION_FOLD_SECONDS for the servers [the default]; 0 folds in every login's "
        "transaction as before issue 15 (a control run for the lock sampler)",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--keep", action="store_true", help="keep the database and the temporary folder")
    args = parser.parse_args(argv)
    if args.database in ("test", "postgres", "template0", "template1"):
        parser.error(f"--database {args.database}: the benchmark drops it; name a dedicated database")
    return args


def _database_url(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def _recreate_database(server: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def _range(values: list[int]) -> list[int]:
    return [min(values), max(values)] if values else []


def summarize_answers(answers: list[Answer], seconds: float) -> dict[str, Any]:
    """Throughput, latency, answers and SQL per login of one timed run (``answers`` from the clients)."""
    outcomes = Counter(f"{kind} {status} {http}" for kind, _s, http, status, _q, _t in answers)
    safe_ok = [a for a in answers if a[0] == "safe" and a[3] == "ok"]
    counted = [a for a in answers if a[4] >= 0]

    def per_login(rows: list[Answer], index: int) -> float | None:
        return round(statistics.mean(a[index] for a in rows), 2) if rows else None

    return {
        "logins": len(answers),
        "logins_per_s": round(len(answers) / seconds, 1) if seconds else 0.0,
        "safe_ok_per_s": round(len(safe_ok) / seconds, 1) if seconds else 0.0,
        "outcomes": dict(outcomes.most_common()),
        "p50_ms": round(_percentile([a[1] for a in safe_ok], 0.50) * 1000, 1),
        "p99_ms": round(_percentile([a[1] for a in safe_ok], 0.99) * 1000, 1),
        "statements_per_safe_login": per_login([a for a in safe_ok if a[4] >= 0], 4),
        "transactions_per_safe_login": per_login([a for a in safe_ok if a[5] >= 0], 5),
        "statements_safe_range": _range([a[4] for a in safe_ok]),
        "statements_per_login": per_login(counted, 4),
        "errors": sum(1 for a in answers if a[3] in ("error", "not-json") or a[2] >= 500),
    }


def _prepare(args: argparse.Namespace, var_dir: Path, url: str) -> tuple[dict[str, str], list, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": url,
        "REDIS_URL": args.redis,
        "CELERY_BROKER_URL": args.redis,
        "DEMO_VAR_DIR": str(var_dir),
        "AUTHGUARD_GEOIP_PATH": str(var_dir / "geoip"),
        "DJANGO_DEBUG": "0",
    }
    if args.fold_seconds is not None:
        env["BENCH_POPULATION_FOLD_SECONDS"] = str(args.fold_seconds)
    os.environ.update(env)
    import logging

    import django

    django.setup()
    logging.getLogger("authguard").setLevel(logging.WARNING)
    from django.core.management import call_command

    from .database import BenchDatabase, build_schema

    call_command("build_demo_geoip", stdout=io.StringIO())
    schema = build_schema(BenchDatabase("postgresql", url, None, name=args.database))
    customers = seed_customers(args.customers, history=args.history)
    return {**os.environ}, customers, schema


def _origin(repo: str) -> str:
    """The innermost frame of authguard or the demo (else of Django outside ``django/db``) that sent the
    statement being executed, as ``path:line function``."""
    import traceback

    frames = traceback.extract_stack()[:-2]
    for wanted in (f"{repo}/authguard/", f"{repo}/demo_site/", "/django/"):
        inside = [f for f in frames if wanted in f.filename and "/django/db/" not in f.filename]
        if inside:
            frame = inside[-1]
            path = frame.filename.removeprefix(f"{repo}/")
            path = "django/" + path.split("/django/", 1)[1] if "/django/" in path else path
            return f"{path}:{frame.lineno} {frame.name}"
    return "?"


def one_login_sql(customer: Any) -> list[list[str]]:
    """The SQL of a safe login of ``customer`` (their second), run in this process through the same stack, as
    ``[statement, origin]`` pairs (origin: file:line of authguard, the demo or Django that sent it)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from .servers import REPO

    origins: list[str] = []

    def note(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        origins.append(_origin(str(REPO)))
        return execute(sql, params, many, context)

    body, headers = login_request(customer, csrf_secret())
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k != "Content-Type"}

    def sign_in() -> Any:
        return Client(enforce_csrf_checks=True).post(
            "/api/login", body, content_type="application/json", **meta
        )

    sign_in()  # the customer's first login event: the one captured is a returning customer's, as in the run
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(note):
        response = sign_in()
    if json.loads(response.content).get("status") != "ok":
        raise RuntimeError(f"a seeded customer's login was not allowed: {response.content[:200]!r}")
    pending = iter(origins)
    return [
        [q["sql"], "" if q["sql"] in ("BEGIN", "COMMIT", "ROLLBACK") else next(pending, "?")]
        for q in captured.captured_queries
    ]


def _shares(customers: list, clients: int, risky: float) -> list[list[Prepared]]:
    csrf = csrf_secret()
    every = round(1 / risky) if risky > 0 else 0
    prepared = []
    for n, customer in enumerate(customers):
        kind = "risky" if every and n % every == every - 1 else "safe"
        body, headers = login_request(risky_request(customer, n) if kind == "risky" else customer, csrf)
        prepared.append(Prepared(kind, body, headers))
    return [prepared[i::clients] for i in range(clients)]


def measure(
    args: argparse.Namespace, env: dict[str, str], customers: list, url: str, var_dir: Path, workers: int
) -> dict[str, Any]:
    clients = args.clients or 2 * workers + 1
    shares = _shares(customers, clients, args.risky)
    server = Server(f"{workers} workers", SETTINGS, workers, env, var_dir / f"gunicorn-{workers}.log")
    load_before = os.getloadavg()
    try:
        server.start()
        server.wait_ready(headers={})
        run_logins(server.url, shares, duration=args.warmup)
        cpu_before, db_before = server.cpu_seconds(), backend_cpu_seconds(url)
        with LockSampler(url) as sampler:
            answers, seconds, client_cpu = run_logins(server.url, shares, duration=args.duration)
        cpu_after, db_after = server.cpu_seconds(), backend_cpu_seconds(url)
    finally:
        server.stop()
    result = {"workers": workers, "clients": clients, "seconds": round(seconds, 2)}
    result |= summarize_answers(answers, seconds)
    n = result["logins"] or 1
    if cpu_before is not None and cpu_after is not None:
        result["web_cpu_ms_per_login"] = round((cpu_after - cpu_before) * 1000 / n, 2)
    if db_before is not None and db_after is not None:
        result["db_cpu_ms_per_login"] = round((db_after - db_before) * 1000 / n, 2)
    result["client_cpu_ms_per_login"] = round(client_cpu * 1000 / n, 2)
    result["cpu_bound_logins_per_s"] = cpu_bound(result, os.cpu_count() or 1)
    result["locks"] = sampler.summary.as_dict()
    result["load_average"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    return result


def cpu_bound(result: dict[str, Any], cpus: int) -> float | None:
    """The logins per second this machine's CPUs would serve if they did nothing but the web workers' and
    the database's share of logins: what a saturated run shows when no other work competes for them."""
    web, database = result.get("web_cpu_ms_per_login"), result.get("db_cpu_ms_per_login")
    if not web or database is None:
        return None
    return round(cpus * 1000 / (web + database), 1)


def print_row(r: dict[str, Any]) -> None:
    locks = r["locks"]
    print(
        f"{r['workers']:>7} {r['clients']:>7} {r['logins_per_s']:>8.1f}"
        f" {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}"
        f" {r.get('web_cpu_ms_per_login', '-'):>8} {r.get('db_cpu_ms_per_login', '-'):>7}"
        f" {r['statements_per_safe_login']!s:>6}+{r['transactions_per_safe_login']!s:<5}"
        f" {locks['lock_wait_share'] * 100:>6.2f}% {locks['active_samples']:>7}"
        f" {r['cpu_bound_logins_per_s']!s:>7}  {r['load_average'][0]:.2f}->{r['load_average'][1]:.2f}",
        flush=True,
    )


def sql_digest(statements: list[str]) -> list[str]:
    """Each statement cut to its verb and tables (literals differ from login to login)."""
    out = []
    for sql in statements:
        cut = sql.split(" WHERE ")[0].split(" VALUES ")[0].split(" SET ")[0]
        out.append(cut if len(cut) <= 110 else cut[:60] + " ... " + cut[-45:])
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = _database_url(args.server, args.database)
    var_dir = Path(tempfile.mkdtemp(prefix="authguard-bench-logins-"))
    _recreate_database(args.server, args.database)
    _flush_redis(args.redis)
    report: dict[str, Any] = {"command": " ".join(["python -m bench.load logins", *(argv or sys.argv[2:])])}
    try:
        env, customers, schema = _prepare(args, var_dir, url)
        sql = one_login_sql(customers[0])
        from django.db import connections

        connections.close_all()
        from .run import _git_commit

        report |= {
            "commit": _git_commit(),
            "schema": schema,
            "customers": args.customers,
            "history": args.history,
            "risky": args.risky,
            "fold_seconds": args.fold_seconds,
            "cpus": os.cpu_count(),
            "one_safe_login_sql": sql,
        }
        print(
            f"bench.load logins at {report['commit']}: PostgreSQL {args.database}, Redis {args.redis}, "
            f"{args.customers} customers x {args.history} learned sign-ins, risky share {args.risky}; "
            f"population fold: {'default' if args.fold_seconds is None else f'{args.fold_seconds} s'}; "
            f"schema from {schema}; {os.cpu_count()} CPUs",
            flush=True,
        )
        print(f"one safe login, in process: {len(sql)} SQL lines (BEGIN/COMMIT included):")
        for line, (_sql, origin) in zip(sql_digest([q[0] for q in sql]), sql, strict=True):
            print(f"    {line:<112} {origin}")
        print(
            f"{'workers':>7} {'clients':>7} {'login/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'web CPU':>8}"
            f" {'db CPU':>7} {'stmt+tx':>12} {'locks':>7} {'samples':>7} {'ceiling':>7}  load"
        )
        report["runs"] = []
        for workers in args.workers:
            report["runs"].append(measure(args, env, customers, url, var_dir, workers))
            print_row(report["runs"][-1])
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _recreate_database(args.server, args.database, drop_only=True)
            _flush_redis(args.redis)
            shutil.rmtree(var_dir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_verdict(report)
    return 3 if any(r["errors"] for r in report["runs"]) else 0


def print_verdict(report: dict[str, Any]) -> None:
    for r in report["runs"]:
        print(
            f"{r['workers']} workers: outcomes {r['outcomes']}; lock waits by relation "
            f"{r['locks']['by_relation'] or '-'}; "
            f"client CPU {r['client_cpu_ms_per_login']} ms/login"
        )
    worst_q = max((r["statements_per_safe_login"] or 0) for r in report["runs"])
    worst_l = max(r["locks"]["authguard_lock_wait_share"] for r in report["runs"])
    print(
        f"queries per safe login: {worst_q} statements (goal <= {QUERY_GOAL}): "
        f"{'met' if worst_q <= QUERY_GOAL else 'NOT met'}; lock waits on authguard tables: "
        f"{worst_l * 100:.2f}% of samples at most (goal < {LOCK_GOAL * 100:.0f}%): "
        f"{'met' if worst_l < LOCK_GOAL else 'NOT met'}"
    )
