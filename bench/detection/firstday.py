"""``python -m bench.detection.firstday``: the first day after ``import-history`` against day 180 (issue 13).

On one seed's detection world (the generator of ``python -m bench.detection``), four runs score the same test
window (the last ``--test-days`` days) with the same replay, :func:`authguard.risk.replay.replay`:

``day180``
    the benchmark as it is: the whole stream from an empty state (the history part, then the test window
    on the state it left: a replay is a fold over the lines, so this is the full replay's output).
``import``
    the portal installs authguard on the test window's first day. The history part is its old sign-in log:
    it is imported with the semantics of ``manage.py authguard import-history`` (replay-learn it into a
    :class:`~authguard.risk.history.MemoryHistory`, keep each profile marked as imported
    (:func:`authguard.risk.import_history.mark_imported`, stored as the JSON a database would hold) and the
    population counts, the devices a passkey verified in the old log as remembered ones (by the portal's id),
    no velocity counters); then only the test window is replayed
    from that state, every device presenting a new id (authguard's cookie) and, as the portal's own device
    cookie (``legacy_device_id``, read with ``AUTHGUARD_LEGACY_DEVICE_COOKIE`` set), the id the world gave
    it, which is the one the old log has (:func:`_new_cookie`; a stolen-cookie login carries both).
``import_own_cookie``
    the same, with the portal's cookie not read (the setting off): every returning browser's first
    authguard cookie is a new device.
``empty``
    the install without an import: the test window replayed from an empty state (the worst case, which the
    first-login policy guards).

Legitimate friction is the scorer's (``step_up`` or ``deny`` on a legitimate login with the right password),
reported on the whole window and, for *returning users* (a successful legitimate sign-in in the old log), on
the install day, the first week and each user's first sign-in after the install, and before and after the
account's first sign-in with a device cookie after the install (until then an imported profile knows no
device); catch rates of A1-A8 are the scorer's, split the same ways. ``--check-full`` also replays the whole
stream from empty and stops unless its test window equals ``day180``'s. Nothing is written to a database.

The old log names the second factor of each passed step-up (``second_factor``, ``--old-log-factor``): by
default ``passkey``, the factor the day-180 run's step-ups are (a replay line that does not name its factor is
read as authguard's passkey step-up), so an import remembers the browsers day 180 remembers; ``none`` leaves
the key out, as a portal whose log cannot say which factor passed (the import then remembers no browser).
Writes ``report.json`` and ``report.md`` into ``--out`` (default ``bench/out/firstday``) and the worlds'
GeoIP databases into ``--out/geoip-SEED``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import random
import shlex
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .generator import Config, Generator
from .scorer import FLAGGED, _pct, bootstrap_ratio, score_run

if TYPE_CHECKING:  # authguard needs Django set up first (main does it)
    from authguard.risk.history import MemoryHistory

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNS = ("day180", "import", "import_own_cookie", "empty")
RUN_TITLES = {
    "day180": "day 180 (reference)",
    "import": "first day after import, portal's device cookie read",
    "import_own_cookie": "first day after import, authguard's cookie only",
    "empty": "first day, no import",
}
#: The portal's own device cookie in the ``import`` run (``AUTHGUARD_LEGACY_DEVICE_COOKIE``).
PORTAL_COOKIE = "portal_device"
ATTACKS = ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8")


class _Discard:
    """Output sink for the replay of the old log (an import keeps no per-line results)."""

    def write(self, text: str) -> int:
        return len(text)


class _Collect(list):
    """Output sink that keeps each replay result line as a dict (what the scorer reads)."""

    def write(self, text: str) -> int:
        self.append(json.loads(text))
        return len(text)


def _setup_django(settings: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()


def imported_state(learned: MemoryHistory, *, at: float) -> MemoryHistory:
    """What ``import-history`` leaves for enforcing, as an in-memory store: ``learned``'s profiles marked as
    imported at ``at``, round-tripped through JSON as the database stores them, its population counts, and
    the devices the old log says a passkey verified, still remembered at ``at`` (keyed by the portal's id);
    no velocity counters (a fresh install has none)."""
    from authguard.risk.history import MemoryHistory
    from authguard.risk.import_history import mark_imported

    state = MemoryHistory(horizon_days=learned.horizon_days)
    state.profiles = {
        user: json.loads(json.dumps(mark_imported(data, at=at))) for user, data in learned.profiles.items()
    }
    # What import-history writes: every value, the last period's included. Folded on a copy: the day-180
    # run continues on ``learned`` itself, whose last period's values a live portal folds only at the next
    # period boundary (folding them here made that run differ from the full replay, seen on seed 12).
    folded = copy.copy(learned)
    folded.population, folded.pending = dict(learned.population), list(learned.pending)
    folded.fold()
    state.population = folded.population
    state.counted_users = set(learned.counted_users)  # in ``#users`` already, as their profiles say live
    state.trusted = {
        key: verified.until
        for key, verified in learned.passkey_devices.items()
        if verified.until.timestamp() > at
    }
    return state


def _subset(
    rows: Sequence[tuple[dict, dict]], keep: Callable[[dict], bool], rng: random.Random, bootstrap: int
) -> dict:
    """Friction and deny of the legitimate rows ``keep`` selects, with a bootstrap interval over users."""
    chosen = [(e, o) for e, o in rows if keep(e)]
    per_user: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    denies = flagged = 0
    for e, o in chosen:
        hit = o["action"] in FLAGGED
        flagged += hit
        denies += o["action"] == "deny"
        per_user[e["user"]][0] += hit
        per_user[e["user"]][1] += 1
    return {
        "logins": len(chosen),
        "users": len(per_user),
        "flagged": flagged,
        "friction": flagged / len(chosen) if chosen else None,
        "friction_ci": bootstrap_ratio([(h, t) for h, t in per_user.values()], rng, bootstrap),
        "denies": denies,
        "deny": denies / len(chosen) if chosen else None,
    }


def _reasons(rows: Iterable[tuple[dict, dict]], top: int = 8) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for _, o in rows:
        if o["action"] in FLAGGED:
            counts.update(o.get("reasons") or ["(none)"])
    return dict(counts.most_common(top))


def before_first_cookie(events: Sequence[dict], scored: Sequence[dict]) -> list[bool]:
    """For each line, whether its account had not yet learned a sign-in carrying a device cookie in this
    run (by the replay's learning rule). After an import, that is while the profile knows no device at
    all, so :class:`~authguard.risk_signals.DeviceCookie` has nothing to compare a browser with."""
    cookied: set[str] = set()
    result = []
    for e, o in zip(events, scored, strict=True):
        result.append(e["user"] not in cookied)
        learned = e["password_ok"] and (
            o["action"] == "allow" or (o["action"] == "step_up" and e["second_factor_ok"] is True)
        )
        if learned and e["device_id"]:
            cookied.add(e["user"])
    return result


def measure(
    events: Sequence[dict],
    scored: Sequence[dict],
    *,
    pre: Sequence[bool],
    test_start: dt.date,
    seed: int,
    bootstrap: int,
) -> dict:
    """The scorer's report of one run over the test window, plus friction of returning users by time since
    the install (``test_start``, the first day of the test window) and, with ``pre`` (the import run's
    :func:`before_first_cookie`), before and after each account's first device cookie after the install."""
    report = score_run(events, scored, seed=seed, bootstrap=bootstrap)
    rng = random.Random(f"firstday:{seed}")
    events = [{**e, "_pre": p} for e, p in zip(events, pre, strict=True)]
    rows = [
        (e, o)
        for e, o in zip(events, scored, strict=True)
        if e["phase"] == "test" and e["password_ok"] and e["label"] == "legit"
    ]
    first_seen: set[str] = set()
    first_login: set[int] = set()
    for index, (e, _) in enumerate(rows):
        if e["user"] not in first_seen:
            first_seen.add(e["user"])
            first_login.add(index)
    # history_size counts successful sign-ins before the line, so > 0 on a user's first test line means
    # the old log has one: "returning" is exactly "a successful legitimate sign-in in the history part".
    returning = {e["user"] for i, (e, _) in enumerate(rows) if i in first_login and e["history_size"] > 0}
    marked = [({**e, "_first": i in first_login}, o) for i, (e, o) in enumerate(rows)]

    def day(e: dict) -> int:
        return (dt.date.fromisoformat(e["ts"][:10]) - test_start).days

    back = [(e, o) for e, o in marked if e["user"] in returning]
    report["returning"] = {
        "users": len(returning),
        "window": _subset(back, lambda e: True, rng, bootstrap),
        "install_day": _subset(back, lambda e: day(e) == 0, rng, bootstrap),
        "first_week": _subset(back, lambda e: day(e) < 7, rng, bootstrap),
        "first_login": _subset(back, lambda e: e["_first"], rng, bootstrap),
        "after_first_week": _subset(back, lambda e: day(e) >= 7, rng, bootstrap),
        "before_cookie": _subset(back, lambda e: e["_pre"], rng, bootstrap),
        "after_cookie": _subset(back, lambda e: not e["_pre"], rng, bootstrap),
        "first_week_reasons": _reasons((e, o) for e, o in back if day(e) < 7),
    }
    # Attacks by time since the install, and before / after the victim's first cookie after it.
    periods: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {k: [0, 0] for k in ("days_1_7", "days_8_on", "before_cookie", "after_cookie")}
    )
    for e, o in zip(events, scored, strict=True):
        if e["phase"] == "test" and e["password_ok"] and e["label"] in ATTACKS:
            for key in (
                "days_1_7" if day(e) < 7 else "days_8_on",
                "before_cookie" if e["_pre"] else "after_cookie",
            ):
                periods[e["label"]][key][0] += o["action"] in FLAGGED
                periods[e["label"]][key][1] += 1
    report["attack_periods"] = {label: dict(v) for label, v in sorted(periods.items())}
    report["new_users"] = _subset(
        [(e, o) for e, o in marked if e["user"] not in returning], lambda e: True, rng, bootstrap
    )
    return report


def _new_cookie(event: dict, *, portal_cookie: bool = False) -> dict:
    """``event`` with its device id replaced by the one authguard's cookie would give that device; with
    ``portal_cookie``, the old id is presented too, as the portal's own device cookie (``legacy_device_id``).

    Every browser carries both cookies: the portal keeps setting its own, on a thief's browser as on the
    customer's (a thief's own browser presents an id no profile knows). A stolen-cookie login (A7) presents
    the victim's authguard cookie *and* the victim's portal cookie: the infostealer copies every cookie of
    the browser. It gets both even when the theft was before the install (the thief could then only have the
    portal's): the stronger thief, who is judged as the victim's known device by one or the other.
    """
    device = event.get("device_id")
    if not device:
        return event
    event = {**event, "device_id": f"authguard-{device}"}
    if portal_cookie:
        event["legacy_device_id"] = device
    return event


def named_factor(text: str, factor: str | None) -> str:
    """An old-log line with its passed second factor named ``factor`` (unchanged for None or no factor)."""
    if factor is None or '"second_factor_ok": true' not in text:
        return text
    return text[:-1] + f', "second_factor": "{factor}"}}'


def run_seed(
    seed: int,
    *,
    users: int,
    history_days: int,
    test_days: int,
    out: Path,
    bootstrap: int,
    check_full: bool,
    old_log_factor: str | None = "passkey",
) -> dict:
    """Generate one world, run the three replays one after the other, and measure them."""
    from django.test import override_settings

    from authguard.risk.history import MemoryHistory
    from authguard.risk.replay import Policy, replay

    config = Config(seed=seed, users=users, history_days=history_days, test_days=test_days)
    started = time.perf_counter()
    generator = Generator(config)
    events = generator.generate()
    geoip = generator.world.write_databases(out / f"geoip-{seed}")
    generation = time.perf_counter() - started
    texts = [json.dumps(e, ensure_ascii=False) for e in events]
    split = next((i for i, e in enumerate(events) if e["phase"] == "test"), len(events))
    test_texts, test_events = texts[split:], events[split:]
    history_texts = [named_factor(text, old_log_factor) for text in texts[:split]]
    policy = Policy.current()
    test_start = config.start + dt.timedelta(days=history_days)
    log = sys.stderr

    print(f"seed {seed}: importing {split:,} lines of old log", file=log)
    started = time.perf_counter()
    learned = MemoryHistory()
    replay(history_texts, _Discard(), geoip_path=str(geoip), policy=policy, history=learned, factors=True)
    # Imported just before the test window's first login (the install).
    first_test = dt.datetime.fromisoformat(test_events[0]["ts"]).timestamp() if test_events else 0.0
    state = imported_state(learned, at=first_test - 1)
    import_seconds = time.perf_counter() - started

    scored: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    # After an install every browser gets a new authguard device cookie: the portal's device ids of the old
    # log never come back. The import run's test window presents each device under a new id (a thief who
    # steals a device's cookie steals the new one).
    inputs = {
        "import": [json.dumps(_new_cookie(e, portal_cookie=True), ensure_ascii=False) for e in test_events],
        "import_own_cookie": [json.dumps(_new_cookie(e), ensure_ascii=False) for e in test_events],
        "empty": test_texts,
        "day180": test_texts,
    }
    starts = {
        "import": state,
        "import_own_cookie": copy.deepcopy(state),
        "empty": MemoryHistory(),
        "day180": learned,
    }
    for name in ("import", "import_own_cookie", "empty", "day180"):
        # day180 last: it continues on ``learned`` itself (the import copied what it needed first).
        print(f"seed {seed}: replaying the test window ({len(test_texts):,} lines), {name}", file=log)
        started = time.perf_counter()
        sink = _Collect()
        # The portal's cookie is read only in the "import" run (the setting off, the key is ignored).
        legacy = PORTAL_COOKIE if name == "import" else None
        with override_settings(AUTHGUARD_LEGACY_DEVICE_COOKIE=legacy):
            replay(inputs[name], sink, geoip_path=str(geoip), policy=policy, history=starts[name])
        seconds[name] = round(time.perf_counter() - started, 1)
        scored[name] = list(sink)

    full_matches = None
    if check_full:
        print(f"seed {seed}: full replay from empty (check)", file=log)
        sink = _Collect()
        replay(history_texts + test_texts, sink, geoip_path=str(geoip), policy=policy, factors=True)
        full = sink[split:]
        full_matches = all(
            (a["score"], a["action"], a["reasons"]) == (b["score"], b["action"], b["reasons"])
            for a, b in zip(full, scored["day180"], strict=True)
        )
        if not full_matches:
            raise SystemExit(f"seed {seed}: the continued replay differs from the full replay")

    pre = before_first_cookie(test_events, scored["import"])
    reports = {
        name: measure(
            test_events, scored[name], pre=pre, test_start=test_start, seed=seed, bootstrap=bootstrap
        )
        for name in RUNS
    }
    return {
        "seed": seed,
        "users": users,
        "events": len(events),
        "imported_lines": split,
        "imported_profiles": len(state.profiles),
        "population_keys": sum(1 for v in state.population.values() if v > 0),
        "test_lines": len(test_texts),
        "generation_seconds": round(generation, 1),
        "import_seconds": round(import_seconds, 1),
        "replay_seconds": seconds,
        "full_replay_check": full_matches,
        "old_log_factor": old_log_factor,
        "remembered_imported_devices": len(state.trusted),
        "runs": {name: _compact(r) for name, r in reports.items()},
    }


def _compact(report: dict) -> dict:
    """The figures this benchmark publishes from one run's report."""
    legit = report["legit"]
    return {
        "legit_logins": legit["logins"],
        "friction": legit["friction"],
        "friction_ci": legit["friction_ci"],
        "deny": legit["deny"],
        "denies": legit["denies"],
        "friction_reasons": legit["friction_reasons"],
        "by_history": legit["by_history"],
        "returning": report["returning"],
        "new_users": report["new_users"],
        "control_friction": report["control"]["friction"],
        "attacks": {
            label: {
                **{k: a[k] for k in ("logins", "caught", "denied", "catch", "auc", "missed_reasons")},
                "by_period": report["attack_periods"].get(label),
            }
            for label, a in report["attacks"].items()
        },
    }


def _cell(s: dict, digits: int = 2) -> str:
    ci = s.get("friction_ci")
    interval = f" ({100 * ci[0]:.{digits}f}–{100 * ci[1]:.{digits}f})" if ci else ""
    return f"{_pct(s['friction'], digits)}{interval} [{s['flagged']}/{s['logins']}]"


def _share(hits: int, total: int) -> str:
    return f"{_pct(hits / total, 1)} ({hits}/{total})" if total else "n/a"


def render(results: Sequence[dict]) -> str:
    """A Markdown table per seed: the three runs side by side."""
    out = ["# First day after import-history (issue 13)", ""]
    for r in results:
        runs = r["runs"]
        out += [
            f"## Seed {r['seed']}",
            "",
            f"{r['users']:,} users; old log imported: {r['imported_lines']:,} lines "
            f"in {r['import_seconds']} s "
            f"(in memory, no database writes), {r['imported_profiles']:,} profiles, "
            f"{r['population_keys']:,} population counts; test window {r['test_lines']:,} lines.",
            "",
            "| metric | " + " | ".join(RUN_TITLES[n] for n in RUNS) + " |",
            "| --- | " + " | ".join("---" for _ in RUNS) + " |",
        ]

        def row(metric: str, cells: Iterable[str], out: list[str] = out) -> None:
            out.append(f"| {metric} | " + " | ".join(cells) + " |")

        row(
            "legit friction, all users, test window",
            (f"{_pct(runs[n]['friction'])} ({runs[n]['legit_logins']})" for n in RUNS),
        )
        row("legit deny, all users", (f"{_pct(runs[n]['deny'], 3)} ({runs[n]['denies']})" for n in RUNS))
        for key, title in (
            ("window", "returning users, test window"),
            ("install_day", "returning users, install day"),
            ("first_week", "returning users, days 1-7"),
            ("first_login", "returning users, first sign-in after install"),
            ("after_first_week", "returning users, day 8 on"),
            ("before_cookie", "returning users, before their first cookie after install"),
            ("after_cookie", "returning users, after it"),
        ):
            row(f"friction, {title}", (_cell(runs[n]["returning"][key]) for n in RUNS))
        row(
            "deny, returning users, days 1-7",
            (_pct(runs[n]["returning"]["first_week"]["deny"], 3) for n in RUNS),
        )
        row("friction, new accounts (no old log)", (_cell(runs[n]["new_users"]) for n in RUNS))
        row("control (household) friction", (_pct(runs[n]["control_friction"]) for n in RUNS))
        for label in ATTACKS:
            cells = []
            for n in RUNS:
                a = runs[n]["attacks"].get(label)
                cells.append("n/a" if a is None else f"{_pct(a['catch'])} ({a['caught']}/{a['logins']})")
            row(f"{label} caught", cells)
        for label in ATTACKS:
            cells = []
            for n in RUNS:
                p = (runs[n]["attacks"].get(label) or {}).get("by_period") or {}
                cells.append(" / ".join(_share(*p.get(k, [0, 0])) for k in ("days_1_7", "days_8_on")))
            row(f"{label} caught, days 1-7 / day 8 on", cells)
        for label in ATTACKS:
            cells = []
            for n in RUNS:
                p = (runs[n]["attacks"].get(label) or {}).get("by_period") or {}
                cells.append(" / ".join(_share(*p.get(k, [0, 0])) for k in ("before_cookie", "after_cookie")))
            row(f"{label} caught, before / after the victim's first cookie after install", cells)
        out += [""]
        for n in RUNS:
            reasons = ", ".join(f"{k} {v}" for k, v in runs[n]["returning"]["first_week_reasons"].items())
            out.append(
                f"- {RUN_TITLES[n]}, reasons on returning users' friction, days 1-7: {reasons or 'none'}."
            )
        for n in RUNS:
            missed = "; ".join(
                f"{label}: " + ", ".join(f"{k} {v}" for k, v in list(a["missed_reasons"].items())[:4])
                for label, a in runs[n]["attacks"].items()
                if a["missed_reasons"]
            )
            out.append(f"- {RUN_TITLES[n]}, reasons on missed attacks: {missed or 'none'}.")
        out.append("")
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detection.firstday", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, nargs="+", default=[1], help="one or more seeds (run one by one)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--history-days", type=int, default=180)
    parser.add_argument("--test-days", type=int, default=60)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out" / "firstday")
    parser.add_argument("--settings", default="demo_site.settings", help="DJANGO_SETTINGS_MODULE")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap iterations (0: no intervals)")
    parser.add_argument(
        "--check-full",
        action="store_true",
        help="also replay the whole stream from empty and check it equals the day-180 run (one more replay)",
    )
    parser.add_argument(
        "--old-log-factor",
        choices=["passkey", "none"],
        default="passkey",
        help="the second factor the old log names on each passed step-up (none: the key is left out)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run every seed, write report.json and report.md, print the Markdown."""
    args = _parser().parse_args(argv)
    _setup_django(args.settings)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = [
        run_seed(
            seed,
            users=args.users,
            history_days=args.history_days,
            test_days=args.test_days,
            out=out,
            bootstrap=args.bootstrap,
            check_full=args.check_full,
            old_log_factor=None if args.old_log_factor == "none" else args.old_log_factor,
        )
        for seed in args.seed
    ]
    command = "python -m bench.detection.firstday " + shlex.join(argv if argv is not None else sys.argv[1:])
    (out / "report.json").write_text(
        json.dumps({"command": command, "results": results}, indent=2) + "\n", encoding="utf-8"
    )
    markdown = render(results)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
