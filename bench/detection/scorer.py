"""Metrics of a scored replay over the benchmark's test window.

A login is *caught* (attacks) or causes *friction* (legitimate logins) when its action is ``step_up`` or
``deny``. Only logins with a correct password count: a wrong password is refused whatever the score says.
Legitimate friction is reported per login and as the median over users of each user's rate (Wiefling et
al. report the latter), and split by the user's history size at the time of the login. Attack classes
are reported at the shipped thresholds (the replay's own actions), by ROC-AUC of the score against
legitimate logins, and at thresholds set on the legitimate score distribution for 1, 2 and 5 % friction.
Confidence intervals are 95 % percentile bootstraps that resample users (each user's logins together).
"""

from __future__ import annotations

import bisect
import json
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

#: History-size buckets (successful logins of the user before this one).
HISTORY_BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("0", 0, 0),
    ("1-3", 1, 3),
    ("4-10", 4, 10),
    ("11-40", 11, 40),
    (">40", 41, float("inf")),
)
FRICTION_BUDGETS = (0.01, 0.02, 0.05)
FLAGGED = ("step_up", "deny")

#: The acceptance targets: legitimate friction and deny rate at most, catch rate per class at least
#: (issue 13: at most 1 % friction, at least 60 % of infostealer logins and 95 % of low-and-slow ones).
TARGETS: dict[str, float] = {
    "legit_friction": 0.01,
    "legit_deny": 0.001,
    "A1": 0.995,
    "A2": 0.995,
    "A5": 0.995,
    "A3": 0.99,
    "A4": 0.95,
    "A6": 0.95,
    "A7": 0.60,
    "A8": 0.95,
}


def load_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file into a list of objects."""
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def history_bucket(size: int) -> str:
    """The name of the history-size bucket ``size`` falls in."""
    return next(name for name, lo, hi in HISTORY_BUCKETS if lo <= size <= hi)


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(a positive scores above a negative), ties counting one half (the Mann-Whitney statistic)."""
    if not positives or not negatives:
        return None
    ordered = sorted(negatives)
    total = 0.0
    for score in positives:
        below = bisect.bisect_left(ordered, score)
        ties = bisect.bisect_right(ordered, score) - below
        total += below + ties / 2
    return total / (len(positives) * len(negatives))


def threshold_for_friction(legit: Sequence[float], budget: float) -> float:
    """The lowest cut ``c`` such that flagging ``score > c`` flags at most ``budget`` of ``legit``.

    ``c`` is always one of the legitimate scores (the highest one flags none), so ties at the cut are
    never flagged: catching an attack that scores exactly like a legitimate login would cost that login.
    """
    if not legit:
        raise ValueError("no legitimate scores")
    ordered = sorted(legit)
    allowed = budget * len(ordered)
    for cut in sorted(set(ordered)):
        if len(ordered) - bisect.bisect_right(ordered, cut) <= allowed:
            return cut
    return ordered[-1]


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def bootstrap_ratio(
    clusters: Sequence[tuple[int, int]], rng: random.Random, iterations: int
) -> list[float] | None:
    """95 % percentile interval of sum(hits)/sum(total) over clusters resampled with replacement."""
    if not clusters or iterations <= 0:
        return None
    n = len(clusters)
    ratios = []
    for _ in range(iterations):
        hits = total = 0
        for i in rng.choices(range(n), k=n):
            hits += clusters[i][0]
            total += clusters[i][1]
        ratios.append(hits / total if total else 0.0)
    ratios.sort()
    return [ratios[int(0.025 * (iterations - 1))], ratios[int(round(0.975 * (iterations - 1)))]]


def _clusters(rows: Iterable[tuple[str, bool]]) -> list[tuple[int, int]]:
    per_user: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for user, hit in rows:
        per_user[user][0] += hit
        per_user[user][1] += 1
    return [(h, t) for h, t in per_user.values()]


def join(events: Sequence[dict], scored: Sequence[dict]) -> list[tuple[dict, dict]]:
    """Pair each input line with its output line, checking that they line up."""
    if len(events) != len(scored):
        raise ValueError(f"{len(events)} input lines but {len(scored)} scored lines")
    for n, (event, out) in enumerate(zip(events, scored, strict=True), start=1):
        if out.get("user") != event["user"]:
            raise ValueError(f"line {n}: scored user {out.get('user')!r} is not {event['user']!r}")
        if out.get("action") not in ("allow", "step_up", "deny"):
            raise ValueError(f"line {n}: unknown action {out.get('action')!r}")
    return list(zip(events, scored, strict=True))


def score_run(events: Sequence[dict], scored: Sequence[dict], *, seed: int = 0, bootstrap: int = 200) -> dict:
    """All metrics of one system's scored replay of ``events`` (the generator's labelled lines)."""
    rng = random.Random(f"bootstrap:{seed}")
    rows = [(e, o) for e, o in join(events, scored) if e["phase"] == "test" and e["password_ok"]]
    legit = [(e, o) for e, o in rows if e["label"] == "legit"]
    legit_scores = [float(o["score"]) for _, o in legit]

    per_user: dict[str, list[bool]] = defaultdict(list)
    for e, o in legit:
        per_user[e["user"]].append(o["action"] in FLAGGED)
    user_rates = [sum(flags) / len(flags) for flags in per_user.values()]
    friction_rows = [(e["user"], o["action"] in FLAGGED) for e, o in legit]
    deny_rows = [(e["user"], o["action"] == "deny") for e, o in legit]
    report: dict = {
        "legit": {
            "logins": len(legit),
            "users": len(per_user),
            "friction": _rate(sum(f for _, f in friction_rows), len(legit)),
            "friction_ci": bootstrap_ratio(_clusters(friction_rows), rng, bootstrap),
            "denies": sum(d for _, d in deny_rows),
            "deny": _rate(sum(d for _, d in deny_rows), len(legit)),
            "deny_ci": bootstrap_ratio(_clusters(deny_rows), rng, bootstrap),
            "median_user_friction": statistics.median(user_rates) if user_rates else None,
            "users_with_friction": sum(1 for r in user_rates if r > 0),
            "by_history": _by_history(legit),
            "by_network": _by_tag(legit, lambda s: s.split("+")[0]),
            "by_device": _by_tag(legit, lambda s: "unknown" if "+unknown_device" in s else "known"),
            "friction_reasons": _reasons(o for _, o in legit if o["action"] in FLAGGED),
        }
    }
    control = [o for e, o in rows if e["label"] == "control"]
    report["control"] = {
        "logins": len(control),
        "friction": _rate(sum(o["action"] in FLAGGED for o in control), len(control)),
        "deny": _rate(sum(o["action"] == "deny" for o in control), len(control)),
    }
    cuts = (
        {budget: threshold_for_friction(legit_scores, budget) for budget in FRICTION_BUDGETS} if legit else {}
    )
    attacks: dict[str, dict] = {}
    for label in sorted({e["label"] for e, _ in rows} - {"legit", "control"}):
        members = [(e, o) for e, o in rows if e["label"] == label]
        caught_rows = [(e["user"], o["action"] in FLAGGED) for e, o in members]
        scores = [float(o["score"]) for _, o in members]
        victims: dict[str, bool] = {}
        for e, o in members:
            victims[e["user"]] = victims.get(e["user"], False) or o["action"] == "allow"
        attacks[label] = {
            "logins": len(members),
            "caught": sum(c for _, c in caught_rows),
            "denied": sum(o["action"] == "deny" for _, o in members),
            "catch": _rate(sum(c for _, c in caught_rows), len(members)),
            "catch_ci": bootstrap_ratio(_clusters(caught_rows), rng, bootstrap),
            "victims": len(victims),
            "victims_compromised": sum(victims.values()),
            "auc": roc_auc(scores, legit_scores),
            "at_friction": {
                f"{budget:.0%}": {
                    "cut": cut,
                    "friction": _rate(sum(s > cut for s in legit_scores), len(legit_scores)),
                    "catch": _rate(sum(s > cut for s in scores), len(scores)),
                }
                for budget, cut in cuts.items()
            },
            "by_scenario": _by_tag(members, lambda s: s, key="catch"),
            "missed_reasons": _reasons(o for _, o in members if o["action"] == "allow"),
        }
    report["attacks"] = attacks
    report["targets"] = _targets(report)
    return report


def _by_history(legit: Sequence[tuple[dict, dict]]) -> list[dict]:
    result = []
    for name, lo, hi in HISTORY_BUCKETS:
        members = [(e, o) for e, o in legit if lo <= e["history_size"] <= hi]
        per_user: dict[str, list[bool]] = defaultdict(list)
        for e, o in members:
            per_user[e["user"]].append(o["action"] in FLAGGED)
        rates = [sum(f) / len(f) for f in per_user.values()]
        result.append(
            {
                "bucket": name,
                "logins": len(members),
                "users": len(per_user),
                "friction": _rate(sum(o["action"] in FLAGGED for _, o in members), len(members)),
                "deny": _rate(sum(o["action"] == "deny" for _, o in members), len(members)),
                "median_user_friction": statistics.median(rates) if rates else None,
            }
        )
    return result


def _by_tag(rows: Sequence[tuple[dict, dict]], tag_of, *, key: str = "friction") -> dict[str, dict]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for e, o in rows:
        groups[tag_of(e["scenario"])].append(o["action"] in FLAGGED)
    return {
        tag: {"logins": len(flags), key: sum(flags) / len(flags)}
        for tag, flags in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    }


def _reasons(outputs: Iterable[dict], top: int = 8) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for out in outputs:
        counts.update(out.get("reasons") or ["(none)"])
    return dict(counts.most_common(top))


def _targets(report: dict) -> dict[str, dict]:
    """Each acceptance target with the measured value and whether it is met."""
    result = {}
    for name, target in TARGETS.items():
        if name.startswith("legit_"):
            value = report["legit"][name.removeprefix("legit_")]
            met = value is not None and value <= target
        else:
            value = report["attacks"].get(name, {}).get("catch")
            met = value is not None and value >= target
        result[name] = {"target": target, "value": value, "met": met}
    return result


def _pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f" ({100 * ci[0]:.2f}–{100 * ci[1]:.2f})"


def render_markdown(systems: dict[str, dict], dataset: dict) -> str:
    """A Markdown report of several systems' metrics on one dataset."""
    names = list(systems)
    out = [
        "# Detection benchmark report",
        "",
        f"{dataset['users']} users, {dataset['events']} events; test window: "
        f"{dataset['legit_test_logins']} legitimate logins "
        f"({_pct(dataset['legit_test_unknown_device_share'])} without a known device cookie, "
        f"{_pct(dataset['legit_test_ipv6_share'])} over IPv6).",
        "",
        "## At the shipped thresholds (test window)",
        "",
        "| metric | target | " + " | ".join(names) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]

    def row(metric: str, target: str, cells: Iterable[str]) -> None:
        out.append(f"| {metric} | {target} | " + " | ".join(cells) + " |")

    row(
        "legit friction per login",
        f"≤ {100 * TARGETS['legit_friction']:g} %",
        (_pct(s["legit"]["friction"]) + _ci(s["legit"]["friction_ci"]) for s in systems.values()),
    )
    row(
        "legit deny per login",
        "≤ 0.1 %",
        (_pct(s["legit"]["deny"], 3) + _ci(s["legit"]["deny_ci"]) for s in systems.values()),
    )
    row("median per-user friction", "", (_pct(s["legit"]["median_user_friction"]) for s in systems.values()))
    row("control (household) friction", "", (_pct(s["control"]["friction"]) for s in systems.values()))
    for label in sorted({a for s in systems.values() for a in s["attacks"]}):
        target = TARGETS.get(label)
        cells = []
        for s in systems.values():
            a = s["attacks"].get(label)
            cells.append(
                "n/a"
                if a is None
                else f"{_pct(a['catch'])}{_ci(a['catch_ci'])} ({a['caught']}/{a['logins']})"
            )
        row(f"{label} caught", f"≥ {100 * target:g} %" if target else "", cells)
    out += [
        "",
        "## Ranking quality",
        "",
        "| class | " + " | ".join(f"{n} AUC | {n} @1 % | {n} @2 % | {n} @5 %" for n in names) + " |",
    ]
    out.append("| --- | " + " | ".join("--- | --- | --- | ---" for _ in names) + " |")
    for label in sorted({a for s in systems.values() for a in s["attacks"]}):
        cells = []
        for s in systems.values():
            a = s["attacks"].get(label)
            if a is None:
                cells.append("n/a | n/a | n/a | n/a")
                continue
            auc = "n/a" if a["auc"] is None else f"{a['auc']:.4f}"
            cells.append(
                " | ".join([auc] + [_pct(a["at_friction"][k]["catch"], 1) for k in ("1%", "2%", "5%")])
            )
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    for name, s in systems.items():
        out += [
            "",
            f"## {name}: legitimate friction by history size",
            "",
            "| history | logins | users | friction | deny | median per user |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for b in s["legit"]["by_history"]:
            out.append(
                f"| {b['bucket']} | {b['logins']} | {b['users']} | {_pct(b['friction'])} | "
                f"{_pct(b['deny'], 3)} | {_pct(b['median_user_friction'])} |"
            )
        out += [
            "",
            f"## {name}: legitimate friction by situation",
            "",
            "| network | logins | friction |",
            "| --- | --- | --- |",
        ]
        for tag, v in s["legit"]["by_network"].items():
            out.append(f"| {tag} | {v['logins']} | {_pct(v['friction'])} |")
        for tag, v in s["legit"]["by_device"].items():
            out.append(f"| device {tag} | {v['logins']} | {_pct(v['friction'])} |")
        reasons = ", ".join(f"{k} {v}" for k, v in s["legit"]["friction_reasons"].items()) or "none"
        out += ["", f"Reasons on legitimate friction: {reasons}."]
        missed = [
            f"{label}: " + ", ".join(f"{k} {v}" for k, v in a["missed_reasons"].items())
            for label, a in s["attacks"].items()
            if a["missed_reasons"]
        ]
        if missed:
            out += ["", "Reasons on missed attacks: " + "; ".join(missed) + "."]
    return "\n".join(out) + "\n"
