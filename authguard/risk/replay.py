"""Replay (backtest): score a JSONL stream of past logins exactly as live logins are scored.

The contract is CONTRACTS section 5. The run starts from empty state in memory (:class:`MemoryHistory`),
never touches the configured database, scores each line with :func:`authguard.risk.engine.score_login` (the
live
path), and learns from a line only if its password was right and it was allowed, or stepped up and
passed the second factor. A line's own ``second_factor_ok`` is read only *after* its decision.
"""

from __future__ import annotations

import functools
import json
import sys
import time as _time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

from authguard.choices import Action
from authguard.risk.addresses import normalize_ip
from authguard.risk.context import LoginContext, device_hash
from authguard.risk.engine import score_login
from authguard.risk.findings import RiskSignal, build_signals, configured_signals
from authguard.risk.geoip import geolocate
from authguard.risk.history import MemoryHistory, trusted_until
from authguard.risk.policy import Thresholds, current_thresholds
from authguard.risk.policy_validation import risk_signals_problem
from authguard.risk.useragent import client_info
from authguard.validators import thresholds_problem

_dumps = json.JSONEncoder(ensure_ascii=True).encode
_json_string = functools.lru_cache(maxsize=65536)(_dumps)  # usernames repeat: encode each once

REQUIRED_KEYS = ("ts", "user", "ip", "user_agent", "device_id", "password_ok", "second_factor_ok")


class ReplayError(ValueError):
    """A line that stops the run: malformed, or out of time order. ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class LoginRecord(NamedTuple):
    """One validated input line (a named tuple: built once per line, so it must be cheap)."""

    line: int
    ts: datetime
    user: str
    ip: str
    user_agent: str
    device_id: str | None
    password_ok: bool
    second_factor_ok: bool | None


@dataclass
class Policy:
    """The signals and thresholds a replay scores with (default: those of the live settings)."""

    signals: Sequence[RiskSignal]
    thresholds: Thresholds

    @classmethod
    def current(cls) -> Policy:
        return cls(configured_signals(), current_thresholds())

    @classmethod
    def from_json(cls, raw: Any) -> Policy:
        """``{"thresholds": {"step_up", "deny"}, "signals": [{"NAME", "OPTIONS"}]}``; both keys optional."""
        if not isinstance(raw, dict):
            raise ValueError("the policy must be a JSON object")
        unknown = set(raw) - {"thresholds", "signals"}
        if unknown:
            raise ValueError(f"unknown policy keys {sorted(unknown)}")
        thresholds = current_thresholds()
        if "thresholds" in raw:
            problem = thresholds_problem(raw["thresholds"])
            if problem:
                raise ValueError(f"thresholds: {problem}")
            thresholds = Thresholds.from_mapping({**thresholds.__dict__, **raw["thresholds"]})
        signals: Sequence[RiskSignal] = configured_signals()
        if "signals" in raw:
            problem = risk_signals_problem(raw["signals"])
            if problem:
                raise ValueError(f"signals: {problem}")
            signals = build_signals(raw["signals"])
        return cls(signals, thresholds)


@dataclass
class Summary:
    """What a replay did: counts of actions and of reasons."""

    lines: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def render(self) -> str:
        rate = self.lines / self.seconds if self.seconds else 0.0
        out = [f"{self.lines} logins scored in {self.seconds:.1f} s ({rate:,.0f}/s)"]
        for action in Action.values:
            count = self.actions.get(action, 0)
            share = 100 * count / self.lines if self.lines else 0.0
            out.append(f"  {action:8} {count:>9}  {share:5.1f} %")
        if self.reasons:
            out.append("  top reasons:")
            out += [f"    {code:28} {count:>9}" for code, count in self.reasons.most_common(12)]
        return "\n".join(out)


def parse_line(number: int, text: str) -> LoginRecord:
    """Validate one input line against CONTRACTS section 5."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ReplayError(number, f"not valid JSON ({exc.args[0]})") from None
    if not isinstance(obj, dict):
        raise ReplayError(number, "not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in obj]
    if missing:
        raise ReplayError(number, f"missing keys {missing}")
    ts = obj["ts"]
    if not isinstance(ts, str):
        raise ReplayError(number, "'ts' must be an ISO-8601 string")
    try:
        when = datetime.fromisoformat(ts)
    except ValueError:
        raise ReplayError(number, f"'ts' is not ISO-8601: {ts[:40]!r}") from None
    if when.tzinfo is None:
        raise ReplayError(number, "'ts' needs a UTC offset")
    for key in ("user", "ip", "user_agent"):
        if not isinstance(obj[key], str):
            raise ReplayError(number, f"{key!r} must be a string")
    if not obj["user"]:
        raise ReplayError(number, "'user' must not be empty")
    ip = normalize_ip(obj["ip"])
    if ip is None:
        raise ReplayError(number, f"'ip' is not an IP address: {obj['ip'][:60]!r}")
    if obj["device_id"] is not None and not isinstance(obj["device_id"], str):
        raise ReplayError(number, "'device_id' must be a string or null")
    if not isinstance(obj["password_ok"], bool):
        raise ReplayError(number, "'password_ok' must be true or false")
    if obj["second_factor_ok"] is not None and not isinstance(obj["second_factor_ok"], bool):
        raise ReplayError(number, "'second_factor_ok' must be true, false or null")
    return LoginRecord(
        number,
        when,
        obj["user"],
        ip,
        obj["user_agent"],
        obj["device_id"] or None,
        obj["password_ok"],
        obj["second_factor_ok"],
    )


def context_from_record(record: LoginRecord, *, geoip_path: str | None) -> LoginContext:
    """The :class:`LoginContext` of a replayed login, built with the live context's own helpers."""
    return LoginContext(
        time=record.ts,
        username=record.user,
        user_id=record.user,
        ip=record.ip,
        geo=geolocate(record.ip, path=geoip_path),
        client=client_info(record.user_agent),
        device_hash=device_hash(record.device_id),
    )


def replay(
    lines: Iterable[str],
    output: SupportsWrite[str],
    *,
    geoip_path: str | None = None,
    policy: Policy | None = None,
    progress: IO[str] | None = None,
    progress_every: float = 2.0,
    history: MemoryHistory | None = None,
) -> Summary:
    """Score every line of ``lines`` and write one result line per input line to ``output``.

    Raises :class:`ReplayError` at the first malformed or out-of-order line (lines before it are written).
    ``history``: the in-memory store to start from and leave the learned state in (``authguard
    import-history`` reads it afterwards); a new, empty one by default.
    """
    policy = policy or Policy.current()
    history = history if history is not None else MemoryHistory()
    summary = Summary()
    started = last_report = _time.monotonic()
    previous: datetime | None = None
    number = 0
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            raise ReplayError(number, "empty line")
        record = parse_line(number, text)
        if previous is not None and record.ts < previous:
            raise ReplayError(
                number, f"out of order: {record.ts.isoformat()} is before {previous.isoformat()}"
            )
        previous = record.ts
        ctx = context_from_record(record, geoip_path=geoip_path)
        assessment, evidence = score_login(ctx, history, signals=policy.signals, thresholds=policy.thresholds)
        # The decision is made; only now may the line's own second factor result be read.
        history.record_attempt(ctx, failed=not record.password_ok)
        if record.password_ok and evidence is not None:
            passed = assessment.action == Action.ALLOW or (
                assessment.action == Action.STEP_UP and record.second_factor_ok is True
            )
            if passed:
                history.learn(ctx, evidence)
                if assessment.action == Action.STEP_UP:
                    history.trust_device(ctx, trusted_until(ctx))
        reasons = assessment.reasons
        action = assessment.action.value
        # Written by hand: the same JSON as json.dumps of the dict, at a third of the cost per line.
        output.write(
            f'{{"line": {number}, "user": {_json_string(record.user)}, "score": {assessment.score}, '
            f'"action": "{action}", "reasons": {_dumps(reasons) if reasons else "[]"}}}\n'
        )
        summary.actions[action] += 1
        summary.reasons.update(reasons)
        if progress is not None and number % 1000 == 0:
            now = _time.monotonic()
            if now - last_report >= progress_every:
                last_report = now
                progress.write(f"\r{number:,} logins scored ({number / (now - started):,.0f}/s)")
                progress.flush()
    summary.lines = number
    summary.seconds = _time.monotonic() - started
    if progress is not None and summary.seconds >= progress_every:
        progress.write("\n")
    return summary


def replay_file(input_path: str, output_path: str, **kwargs: Any) -> Summary:
    """:func:`replay` between two files (``-`` reads stdin or writes stdout)."""
    source = sys.stdin if input_path == "-" else open(input_path, encoding="utf-8")  # noqa: SIM115
    target = sys.stdout if output_path == "-" else open(output_path, "w", encoding="utf-8")  # noqa: SIM115
    try:
        return replay(source, target, **kwargs)
    finally:
        if source is not sys.stdin:
            source.close()
        if target is not sys.stdout:
            target.close()
