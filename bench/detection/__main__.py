"""``python -m bench.detection``: generate a seeded dataset, replay it through authguard, report the metrics.

Writes into ``--out`` (default ``bench/out/detection-SEED``): ``events.jsonl`` (replay input plus labels),
``geoip/`` (the benchmark's City, ASN and Anonymous-IP databases), ``scored-b0.jsonl`` (baseline B0),
``scored.jsonl`` (authguard's replay output), ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .baseline import run_b0
from .generator import VARIANT_CLASSES, Config, Generator, summarize, write_events
from .scorer import load_jsonl, render_markdown, score_run

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPLAY = "{python} manage.py authguard replay {events} --output {output} --geoip-path {geoip}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--history-days", type=int, default=180)
    parser.add_argument("--test-days", type=int, default=60)
    parser.add_argument(
        "--start", type=dt.date.fromisoformat, default=Config.start, help="first day (YYYY-MM-DD)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default bench/out/detection-SEED)")
    parser.add_argument("--no-anonymous-db", action="store_true", help="omit the Anonymous-IP database")
    parser.add_argument(
        "--replay-cmd",
        default=DEFAULT_REPLAY,
        help="command run from the repository root; {python}, {events}, {output}, {geoip} are filled in",
    )
    parser.add_argument(
        "--settings", default="demo_site.settings", help="DJANGO_SETTINGS_MODULE of the replay"
    )
    parser.add_argument("--policy", type=Path, help="passed to the replay as --policy")
    parser.add_argument("--scored", type=Path, help="score this existing replay output instead of replaying")
    parser.add_argument("--no-replay", action="store_true", help="report baseline B0 only")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap iterations (0: no intervals)")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="add the red team's opt-in attack variants V1-V4 (docs/benchmarks-variants.md)",
    )
    return parser


def _replay(args: argparse.Namespace, events: Path, output: Path, geoip: Path) -> float:
    """Run the replay command; returns its wall time in seconds."""
    command = [
        part.format(python=sys.executable, events=events, output=output, geoip=geoip)
        for part in shlex.split(args.replay_cmd)
    ]
    if args.policy:
        command += ["--policy", str(args.policy.resolve())]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": args.settings}
    print("$ " + shlex.join(command), file=sys.stderr)
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Generate, replay, score and report; returns the exit status (1 when the replay failed)."""
    args = _parser().parse_args(argv)
    config = Config(
        seed=args.seed,
        users=args.users,
        history_days=args.history_days,
        test_days=args.test_days,
        start=args.start,
    )
    out = (args.out or REPO_ROOT / "bench" / "out" / f"detection-{args.seed}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    events_path, geoip = out / "events.jsonl", out / "geoip"

    started = time.perf_counter()
    generator = Generator(config, variants=args.variants)
    lines = generator.generate()
    write_events(lines, events_path)
    generator.world.write_databases(geoip, anonymous=not args.no_anonymous_db)
    generation = time.perf_counter() - started
    dataset = summarize(lines)
    print(f"generated {dataset['events']} events, {dataset['users']} users, in {generation:.1f} s: {out}")

    b0 = run_b0(lines, geoip)
    write_events(b0, out / "scored-b0.jsonl")
    systems = {}
    status, replay_seconds = 0, None
    scored_path = args.scored or out / "scored.jsonl"
    if not args.no_replay:
        if args.scored is None:
            try:
                replay_seconds = _replay(args, events_path, scored_path, geoip)
            except (subprocess.CalledProcessError, OSError) as error:
                print(f"replay failed ({error}); reporting baseline B0 only", file=sys.stderr)
                status = 1
        if status == 0:
            systems["authguard"] = score_run(
                lines, load_jsonl(scored_path), seed=args.seed, bootstrap=args.bootstrap
            )
    systems["B0"] = score_run(lines, b0, seed=args.seed, bootstrap=args.bootstrap)

    report = {
        "command": "python -m bench.detection " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "config": {
            **vars(config),
            "start": config.start.isoformat(),
            "anonymous_db": not args.no_anonymous_db,
            **({"variants": list(VARIANT_CLASSES)} if args.variants else {}),
        },
        "generation_seconds": round(generation, 2),
        "replay_seconds": None if replay_seconds is None else round(replay_seconds, 2),
        "dataset": dataset,
        "systems": systems,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(systems, dataset)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return status


if __name__ == "__main__":
    sys.exit(main())
