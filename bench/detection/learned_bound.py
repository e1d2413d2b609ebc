"""``python -m bench.detection.learned_bound``: how far a learned combination of the findings could go.

A check on the hand-set weights, not a product feature: for each seed, a gradient-boosted classifier is
trained on the *other* seeds' test-window logins (each login's finding points, from
``python -m bench.detection.findings``; with ``--facts`` also its history size, GeoIP accuracy and
known-device facts; with ``--raw`` also facts of the replay input the engine does not weigh today,
:func:`raw_facts`) and scored on this seed. It reports, next to the shipped score,

- the catch rates at 1.0 % legitimate friction (issue 13's goal), and
- the lowest legitimate friction at which every class meets its target.

If a flexible model of the same evidence cannot meet every target at 1.0 %, no re-weighting of the
findings can: the friction left needs evidence the login line does not carry. It ignores what a changed
decision would have taught the profiles (like the what-if re-scoring in docs/benchmarks-detection.md).

    python -m bench.detection.findings bench/out/detection-2 --out bench/out/findings-2.jsonl   # and 3, 4
    python -m bench.detection.learned_bound bench/out/findings-2.jsonl bench/out/findings-3.jsonl \\
        bench/out/findings-4.jsonl [--facts]
    python -m bench.detection.learned_bound bench/out/detection-{2,3,4}/findings.jsonl --facts --raw

``--raw`` reads the seed's ``events.jsonl`` beside its findings file (``findings.py``'s default output).

Needs numpy and scikit-learn, which are not authguard's dependencies (``pip install scikit-learn``).
Tuning seeds only: training on the reported seed is looking at its answers.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

#: Issue 13's catch targets per class (percent); friction's goal is 1.0 %.
TARGETS = {"A1": 99.5, "A2": 99.5, "A3": 99.0, "A4": 95.0, "A5": 99.5, "A6": 95.0, "A7": 60.0, "A8": 95.0}
STEP_UP = 40  # the shipped threshold


#: What ``--raw`` adds (:func:`raw_facts`).
RAW = (
    "gap_h",
    "same_ua_last",
    "same_net_last",
    "ua_count",
    "n_ua",
    "n_dev",
    "net_site",
    "recent_fail",
    "hour_share",
)


def _net(ip: str) -> str:
    return str(ipaddress.ip_network(ip + ("/48" if ":" in ip else "/24"), strict=False))


def raw_facts(folder: Path) -> dict[int, dict[str, float]]:
    """Per test-window line with a correct password: the facts of :data:`RAW`, from earlier lines only."""
    last: dict[str, tuple[float, str, str]] = {}
    agents: defaultdict[str, Counter[str]] = defaultdict(Counter)
    devices: defaultdict[str, set[str]] = defaultdict(set)
    hours: defaultdict[str, Counter[int]] = defaultdict(Counter)
    failures: defaultdict[str, list[float]] = defaultdict(list)
    site: Counter[str] = Counter()
    facts: dict[int, dict[str, float]] = {}
    with open(folder / "events.jsonl", encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            event = json.loads(text)
            user, agent = event["user"], event["user_agent"]
            when = datetime.fromisoformat(event["ts"])
            t, net = when.timestamp(), _net(event["ip"])
            if event["password_ok"] and event["phase"] == "test":
                before = last.get(user)
                facts[number] = {
                    "gap_h": (t - before[0]) / 3600 if before else -1.0,
                    "same_ua_last": float(before is not None and before[1] == agent),
                    "same_net_last": float(before is not None and before[2] == net),
                    "ua_count": agents[user][agent],
                    "n_ua": len(agents[user]),
                    "n_dev": len(devices[user]),
                    "net_site": site[net],
                    "recent_fail": sum(1 for f in failures[user] if t - f < 120),
                    "hour_share": hours[user][when.hour] / max(1, sum(hours[user].values())),
                }
            if event["password_ok"] and event["second_factor_ok"] is not False:
                last[user] = (t, agent, net)
                agents[user][agent] += 1
                devices[user].add(event["device_id"] or "")
                hours[user][when.hour] += 1
                site[net] += 1
            elif not event["password_ok"]:
                failures[user].append(t)
    return facts


def _facts(row: dict[str, Any]) -> list[float]:
    return [
        row["history_size"],
        row["logins"],
        row["acc"] if row["acc"] is not None else 2000,
        float(row["known"]),
        float(row["dtype"] == "mobile"),
        row.get("prior", 0.0),
        row.get("dev_hours", -1),
        row.get("dev_km_eff", -9999),
        row.get("dcity_n", -1),
        row.get("dasn_n", -1),
    ]


def _lowest_friction(scores: Any, labels: Any) -> float:
    """The lowest legitimate friction (percent) of a cut ``score >= c`` at which every class meets its
    target."""
    import numpy as np

    legit = scores[labels == "legit"]
    best = None
    for cut in np.unique(scores[labels != "legit"]):
        if all(
            (scores[labels == cls] >= cut).mean() * 100 >= target
            for cls, target in TARGETS.items()
            if (labels == cls).any()
        ):
            best = cut
    return float("nan") if best is None else float((legit >= best).mean() * 100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detection.learned_bound", description=__doc__.splitlines()[0]
    )
    parser.add_argument("findings", type=Path, nargs="+", help="findings files of two or more tuning seeds")
    parser.add_argument("--facts", action="store_true", help="also give the model the login's facts")
    parser.add_argument(
        "--raw", action="store_true", help="also facts of the replay input the engine does not weigh today"
    )
    args = parser.parse_args(argv)
    try:
        import numpy as np
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:
        parser.error("needs numpy and scikit-learn (pip install scikit-learn)")

    seeds = {
        str(path): [r for r in map(json.loads, path.read_text().splitlines()) if r["label"] != "control"]
        for path in args.findings
    }
    if args.raw:
        folders = [path.parent for path in args.findings]
        if len(set(folders)) < len(folders) or not all((f / "events.jsonl").exists() for f in folders):
            parser.error("--raw reads each seed's events.jsonl beside its findings: FOLDER/findings.jsonl")
    raw = {str(path): raw_facts(path.parent) for path in args.findings} if args.raw else {}
    codes = sorted({code for rows in seeds.values() for row in rows for code, _ in row["findings"]})

    def matrix(rows: list[dict], seed: str) -> tuple[Any, Any]:
        x = []
        for row in rows:
            points = dict(row["findings"])
            extra = [raw[seed][row["line"]].get(name, 0) for name in RAW] if raw else []
            x.append([points.get(code, 0) for code in codes] + (_facts(row) if args.facts else []) + extra)
        return np.array(x, dtype=float), np.array([row["label"] for row in rows])

    print(
        "| held-out seed | model | A4 / A5 / A7 / A8 at 1.0 % friction | lowest friction, all targets met |"
    )
    print("| --- | --- | --- | --- |")
    for name, rows in seeds.items():
        parts = [matrix(others, other) for other, others in seeds.items() if other != name]
        x, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        weights = np.ones(len(labels))
        for cls in set(labels):
            weights[labels == cls] = 1.0 / (labels == cls).sum()  # every class counts alike
        model = HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.05, early_stopping=False, random_state=0
        )
        model.fit(x, labels != "legit", sample_weight=weights)
        x_test, labels_test = matrix(rows, name)
        learned = model.predict_proba(x_test)[:, 1]
        shipped = np.array([row["score"] for row in rows], dtype=float)
        for label, scores in (("shipped score", shipped), ("learned", learned)):
            legit = np.sort(scores[labels_test == "legit"])
            if label == "shipped score":
                cut = STEP_UP
                at_goal = f"(at 40: {(legit >= cut).mean() * 100:.2f} %) "
            else:
                cut = legit[int(len(legit) * 0.99)]
                at_goal = ""
            caught = " / ".join(
                f"{(scores[labels_test == cls] >= cut).mean() * 100:.1f}" for cls in ("A4", "A5", "A7", "A8")
            )
            print(f"| {name} | {label} | {at_goal}{caught} | {_lowest_friction(scores, labels_test):.2f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
