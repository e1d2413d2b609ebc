"""``python -m bench.detection.findings``: every finding of every test-window login, for tuning.

Replays a generated seed (``events.jsonl`` and ``geoip/`` of ``python -m bench.detection --no-replay``) in
process, exactly as ``authguard replay`` does (same two passes, same learning rule), and writes one JSON line
per test-window login with a correct password: its label, scenario, history size, score, action, and each
finding with its points, plus the login's network facts (ASN, GeoIP accuracy radius, the account's sign-ins).
Then prints which findings the legitimate step-ups and the missed and caught attacks carry, per class.

    python -m bench.detection.findings bench/out/detection-2 [--policy policy.json] [--out findings.jsonl]

Only for tuning seeds: looking at the reported seed's findings is looking at its answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import django


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
    root = Path(__file__).resolve().parents[2]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    django.setup()


class _Recorder:
    """Wraps a risk signal: the same findings, also kept in ``sink`` with the evidence they were made from."""

    def __init__(self, signal: Any, sink: list, facts: dict) -> None:
        self.signal, self.sink, self.facts = signal, sink, facts

    def evaluate(self, evidence: Any) -> list:
        if not self.sink:
            # Read before the login is learned: learning updates the device's memory in place.
            self.facts.clear()
            self.facts.update(_device_facts(evidence))
        found = list(self.signal.evaluate(evidence))
        self.sink.append((evidence, found))
        return found


def _device_facts(evidence: Any) -> dict:
    """For a known device: hours since its last successful use, and its distance from that use's place
    after both accuracy radii (what ``device_new_city`` and ``device_moved`` read), plus the device's own
    networks and cities so far."""
    from authguard.risk.profile import device_memory
    from authguard.risk.signals_network import haversine_km

    ctx = evidence.ctx
    memory = device_memory(evidence.profile, ctx.features.get("dev"))
    if memory is None:
        return {}
    facts: dict[str, Any] = {"dev_hours": round((ctx.timestamp - memory.t) / 3600, 1)}
    geo = ctx.geo
    if None not in (memory.lat, memory.lon, geo.latitude, geo.longitude):
        km = haversine_km(memory.lat, memory.lon, geo.latitude, geo.longitude)
        facts["dev_km"] = round(km)
        facts["dev_km_eff"] = round(km - (memory.acc or 0) - (geo.accuracy_km or 0))
    dev = ctx.features["dev"]
    features = evidence.profile._features
    for feature in ("dasn", "dcity"):
        counts = [c for key, c in features.get(feature, {}).items() if key.startswith(dev + "|")]
        facts[f"{feature}_n"] = len(counts)
        facts[f"{feature}_uses"] = sum(sum(c[:2]) for c in counts)
    return facts


def run(folder: Path, policy_path: Path | None, out: Path) -> list[dict]:
    """Replay ``folder/events.jsonl`` and write the findings of its test-window logins to ``out``."""
    # Imported here, not at the top: these modules need Django set up first (_setup), as in firstday.py.
    from authguard.risk.findings import STEP_UP_FLOOR
    from authguard.risk.history import MemoryHistory
    from authguard.risk.replay import (
        CrossUserPass,
        Policy,
        UserScorer,
        context_from_record,
        counts_in_population,
        parse_line,
    )

    policy = Policy.from_json(json.loads(policy_path.read_text())) if policy_path else Policy.current()
    sink: list = []
    facts: dict = {}
    recording = Policy([_Recorder(signal, sink, facts) for signal in policy.signals], policy.thresholds)
    history = MemoryHistory()
    cross = CrossUserPass(history)
    # The replay's own scorer: the same decision and learning rule as ``authguard replay``.
    scorer = UserScorer(recording, history)
    rows = []
    with open(folder / "events.jsonl", encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            labels = json.loads(text)
            record = parse_line(number, text)
            ctx = context_from_record(record, geoip_path=str(folder / "geoip"))
            sink.clear()
            result, action, _ = scorer.score(record, ctx, cross.before(number, ctx), history.population)
            cross.after(
                ctx,
                failed=not record.password_ok,
                counted=counts_in_population(record),
                keys=ctx.population_value_keys.values(),
            )
            if labels["phase"] != "test" or not record.password_ok or not sink:
                continue
            evidence = sink[0][0]
            geo = ctx.geo
            rows.append(
                {
                    "line": number,
                    "user": record.user,
                    "label": labels["label"],
                    "scenario": labels["scenario"],
                    "history_size": labels["history_size"],
                    "score": json.loads(result)["score"],
                    "action": action,
                    "findings": [[f.code, f.score] for _, found in sink for f in found if f.score],
                    # A finding that asks for a step-up whatever the points (the score is then at least
                    # the step-up threshold): re-scoring must keep it.
                    "floor": any(f.evidence.get(STEP_UP_FLOOR) for _, found in sink for f in found),
                    "asn": geo.asn,
                    "acc": geo.accuracy_km,
                    "logins": evidence.profile.logins,
                    "known": evidence.device.known,
                    "dtype": ctx.client.device_type,
                    **facts,
                    # Freeman's account prior p(u|A)/p(u|L) = N / (|U| n_u), before the feature ratios.
                    "prior": round(
                        history.population.get("#dtype", 0)
                        / max(1, history.population.get("#users", 0) * evidence.profile.total("dtype")),
                        3,
                    ),
                }
            )
    with open(out, "w", encoding="utf-8") as target:
        for row in rows:
            target.write(json.dumps(row) + "\n")
    return rows


def summarize(rows: list[dict]) -> str:
    """Finding combinations of legitimate friction and of missed/caught A7 and A8, and catch rates."""
    flagged = ("step_up", "deny")
    out = []
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    for label in sorted(by_label):
        group = by_label[label]
        caught = sum(r["action"] in flagged for r in group)
        out.append(f"{label}: {caught}/{len(group)} = {100 * caught / len(group):.2f} % stepped up or denied")
    for label, want in (("legit", True), ("A7", False), ("A8", False), ("A8", True)):
        combos: Counter[str] = Counter()
        for row in by_label.get(label, []):
            if (row["action"] in flagged) == want:
                combos[" ".join(sorted(code for code, _ in row["findings"]))] += 1
        out.append(f"\n{label} {'flagged' if want else 'missed'}: top finding sets")
        out += [f"  {n:5d}  {combo}" for combo, n in combos.most_common(15)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detection.findings", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "folder", type=Path, help="a seed's folder from python -m bench.detection --no-replay"
    )
    parser.add_argument("--policy", type=Path)
    parser.add_argument("--out", type=Path, help="default FOLDER/findings.jsonl")
    args = parser.parse_args(argv)
    _setup()
    rows = run(args.folder, args.policy, args.out or args.folder / "findings.jsonl")
    print(summarize(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
