"""Replay (backtest): score a JSONL stream of past logins exactly as live logins are scored.

The contract is CONTRACTS section 5. The run starts from empty state in memory (:class:`MemoryHistory`),
never touches the configured database, scores each line with :func:`authguard.risk.engine.score_login` (the
live path), and learns from a line only if its password was right and it was allowed, or stepped up and
passed the second factor. A line's own ``second_factor_ok`` is read only *after* its decision.

The computation is split in two passes so that it can be sharded by user (issue 15,
:mod:`authguard.risk.replay_shards`) and give the same lines whatever the split:

1. :class:`CrossUserPass`, over the whole stream in time order: what a login reads about *other* users,
   namely the velocity counters (failures per IP, network and site, users per IP) and the population counts
   (a snapshot folded once per period). Both depend only on the log, never on a decision: failed passwords
   feed velocity, and a login's values are counted in the population when the log says it got in
   (:func:`counts_in_population`).
2. :class:`UserScorer`, one user's logins in order: profile, remembered devices, the decision, learning.

:func:`replay` runs both passes interleaved line by line (one process, streaming); the sharded replay runs
pass 1 first and then pass 2 for each shard of users on a Dask cluster.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
import time as _time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from django.utils.timezone import get_default_timezone

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

from authguard.choices import Action
from authguard.conf import app_settings
from authguard.risk.addresses import normalize_ip
from authguard.risk.context import LoginContext, device_hash, legacy_device_hash
from authguard.risk.engine import score_login
from authguard.risk.findings import RiskSignal, build_signals, configured_signals
from authguard.risk.geoip import geolocate
from authguard.risk.history import (
    _SWEEP_WINDOWS,
    Evidence,
    MemoryHistory,
    PasskeyVerified,
    _fold_increments,
    trusted_until,
)
from authguard.risk.legacy_device import fork_seen
from authguard.risk.policy import Thresholds, current_thresholds
from authguard.risk.policy_validation import risk_signals_problem
from authguard.risk.useragent import client_info
from authguard.risk.velocity import WINDOW_SECONDS, VelocityCounts, read_counts, record_attempt
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
    #: Optional: the portal's own device cookie the browser presented (read with
    #: ``AUTHGUARD_LEGACY_DEVICE_COOKIE`` set; :mod:`authguard.risk.legacy_device`).
    legacy_device_id: str | None = None
    #: Optional: which second factor the line's ``second_factor_ok`` is about (``"passkey"``, ``"totp"``...);
    #: None when the log does not say or is not read for it (:func:`strong_factor`, :func:`parse_line`).
    second_factor: str | None = None


#: ``second_factor`` values a phishing page cannot relay: a step-up passed with one of them is learned and
#: remembers the browser, as live (``authguard.login.stepup.remembers_device``).
PHISHING_RESISTANT = frozenset({"passkey", "webauthn", "security_key"})


def strong_factor(record: LoginRecord) -> bool:
    """Whether a passed step-up on this line may teach the profile and remember the browser.

    As live, only a factor a phishing page cannot relay does (a TOTP or recovery code is good for its session
    only). A log that does not say which factor (no ``second_factor``) is read as before this key existed:
    the step-up the replay models is authguard's passkey step-up.
    """
    return record.second_factor is None or record.second_factor in PHISHING_RESISTANT


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


def parse_line(number: int, text: str, *, factors: bool = False) -> LoginRecord:
    """Validate one input line against CONTRACTS section 5.

    ``factors``: also read the optional ``second_factor`` key (``authguard import-history`` does; the replay
    contract ignores keys beyond its seven, so ``authguard replay`` does not).
    """
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ReplayError(number, f"not valid JSON ({exc.args[0]})") from None
    if not isinstance(obj, dict):
        raise ReplayError(number, "not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in obj]
    if missing:
        raise ReplayError(number, f"missing keys {missing}")
    ts = obj["ts"]
    if not isinstance(ts, str):
        raise ReplayError(number, "'ts' must be an ISO-8601 string")
    when = _timestamp(ts)
    if when is None:
        raise ReplayError(number, f"'ts' is not ISO-8601: {_text(ts)[:40]!r}")
    if when.tzinfo is None:
        raise ReplayError(number, "'ts' needs a UTC offset")
    for key in ("user", "ip", "user_agent"):
        if not isinstance(obj[key], str):
            raise ReplayError(number, f"{key!r} must be a string")
    if not obj["user"]:
        raise ReplayError(number, "'user' must not be empty")
    # An IPv6 zone ("%eth0") names the sender's interface, not the address.
    ip = normalize_ip(obj["ip"].split("%", 1)[0])
    if ip is None:
        raise ReplayError(number, f"'ip' is not an IP address: {_text(obj['ip'])[:60]!r}")
    if obj["device_id"] is not None and not isinstance(obj["device_id"], str):
        raise ReplayError(number, "'device_id' must be a string or null")
    legacy = obj.get("legacy_device_id")
    if not isinstance(obj["password_ok"], bool):
        raise ReplayError(number, "'password_ok' must be true or false")
    if obj["second_factor_ok"] is not None and not isinstance(obj["second_factor_ok"], bool):
        raise ReplayError(number, "'second_factor_ok' must be true, false or null")
    factor = obj.get("second_factor") if factors else None
    if factor is not None and (not isinstance(factor, str) or not factor or len(factor) > 40):
        raise ReplayError(number, "'second_factor' must be a factor's name (passkey, totp...) or null")
    return LoginRecord(
        number,
        when,
        _text(obj["user"]),
        ip,
        _text(obj["user_agent"]),
        _text(obj["device_id"] or "") or None,
        obj["password_ok"],
        obj["second_factor_ok"],
        _text(legacy) if isinstance(legacy, str) else None,
        factor.lower() if factor else None,
    )


def _text(value: str) -> str:
    """``value`` with any lone UTF-16 surrogate (valid JSON, ``"\\ud800"``, but no character) replaced, so
    hashing and writing it cannot fail half-way through a run."""
    if value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def _timestamp(ts: str) -> datetime | None:
    """An ISO-8601 / RFC 3339 time: also lower-case ``t``/``z``, a leap second (``:60``, read as the next
    second) and ``24:00`` (the next day's midnight), which Python's parser refuses."""
    text = ts.strip().upper()
    extra = timedelta(0)
    if len(text) >= 19 and text[10] in "T " and text[17:19] == "60":
        text, extra = text[:17] + "59" + text[19:], timedelta(seconds=1)
    if len(text) >= 16 and text[10] in "T " and text[11:13] == "24" and text[14:16] == "00":
        text, extra = text[:11] + "00" + text[13:], timedelta(days=1)
    try:
        when = datetime.fromisoformat(text) + extra
        when.astimezone(timezone.utc)  # year 1 or 9999 with an offset has no UTC time
        when.astimezone(get_default_timezone())  # nor, on the site's clock, in the profile's hour of day
    except (ValueError, OverflowError):
        return None
    return when


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
        # Only where the live setting reads the portal's cookie too: without it no other key decides.
        legacy_device_hash=legacy_device_hash(record.legacy_device_id)
        if record.legacy_device_id and app_settings.LEGACY_DEVICE_COOKIE
        else None,
    )


def counts_in_population(record: LoginRecord) -> bool:
    """Whether a login's values join the population counts: the log says it got in (a right password, and a
    second factor that did not fail).

    Live, the values of a *learned* login are counted; the replay reads the log instead of its own decision
    so that the counts, which every user's score reads, do not depend on how users are split into shards.
    The two differ only for a login with a right password that the decision refused without a failed second
    factor (counted here) or allowed although its second factor failed (not counted here).
    """
    return record.password_ok and record.second_factor_ok is not False


class CrossUserPass:
    """Pass 1: the inputs a login reads about other users, over the whole stream in time order.

    State lives in ``history`` (its counters, population counts and pending values), so that
    ``authguard import-history`` reads the population from it afterwards. Call :meth:`before` and then
    :meth:`after` for each login, in time order. ``schedule``, when a list, receives each fold as
    ``(line, increments)``: the increments are visible from that line on (what a shard replays).
    """

    def __init__(self, history: MemoryHistory, *, schedule: list[tuple[int, Counter[str]]] | None = None):
        self.history = history
        self.schedule = schedule
        self._fold_period: int | None = None
        self._swept_window = -_SWEEP_WINDOWS

    def before(self, line: int, ctx: LoginContext) -> VelocityCounts:
        """Fold the population counts if a period ended, and read the login's velocity counters."""
        history = self.history
        if history.fold_every:
            # The live rule in event time: scoring reads the counts as of the last fold, once per period.
            period = int(ctx.timestamp // history.fold_every)
            if period != self._fold_period:
                self._fold_period = period
                if history.pending:
                    self._fold(line)
        elif history.pending:
            self._fold(line)  # AUTHGUARD_POPULATION_FOLD_SECONDS = 0: each login sees every one before it
        return read_counts(history.counters, ctx)

    def after(self, ctx: LoginContext, *, failed: bool, counted: bool, keys: Iterable[str]) -> None:
        """Count the attempt (velocity) and, if ``counted``, append its population values ``keys``."""
        history = self.history
        record_attempt(history.counters, ctx, failed=failed)
        window = int(ctx.timestamp // WINDOW_SECONDS)
        if window >= self._swept_window + _SWEEP_WINDOWS:
            # Drop the counter windows no read can reach any more: memory stays that of the last hours.
            self._swept_window = window
            history.counters.forget_before(ctx.timestamp)
        if counted:
            history.pending.extend(keys)
            # The store's set, not this pass's: a replay continued on it (after an import, say) knows who was
            # counted.
            if ctx.username not in history.counted_users:
                history.counted_users.add(ctx.username)
                history.pending.append("#users")

    def _fold(self, line: int) -> None:
        population = self.history.population
        increments = _fold_increments(self.history.pending, lambda key: population.get(key, 0) > 0)
        for key, times in increments.items():
            population[key] = population.get(key, 0) + times
        self.history.pending.clear()
        if self.schedule is not None:
            self.schedule.append((line, increments))


class UserScorer:
    """Pass 2: scores logins with the cross-user inputs of pass 1; everything else is the user's own.

    Implements the :class:`~authguard.risk.history.History` interface for
    :func:`~authguard.risk.engine.score_login` over ``history``'s profiles and remembered devices. Users are
    independent here: any split of the users into shards gives each login the same decision.
    """

    def __init__(self, policy: Policy, history: MemoryHistory) -> None:
        self.policy = policy
        self.history = history
        self._velocity = VelocityCounts()
        self._population: dict[str, int] = {}

    def score(
        self, record: LoginRecord, ctx: LoginContext, velocity: VelocityCounts, population: dict[str, int]
    ) -> tuple[str, str, list[str]]:
        """Decide one login and learn from it; returns its output line, action and reasons."""
        self._velocity, self._population = velocity, population
        policy = self.policy
        assessment, evidence = score_login(ctx, self, signals=policy.signals, thresholds=policy.thresholds)
        # The decision is made; only now may the line's own second factor result be read.
        if record.password_ok and evidence is not None:
            if evidence.fork:  # a second holder of the portal's cookie: once (no retirement here)
                fork_seen(self.history.profiles.get(ctx.user_id), ctx)
            # SECURITY: as live, a step-up passed with a relayable factor teaches nothing (issue 13).
            passed = assessment.action == Action.ALLOW or (
                assessment.action == Action.STEP_UP
                and record.second_factor_ok is True
                and strong_factor(record)
            )
            if passed:
                self.learn(ctx, evidence)
                if assessment.action == Action.STEP_UP:
                    until = trusted_until(ctx)
                    self.trust_device(ctx, until)
                    if record.second_factor is not None and ctx.device_hash:
                        # The log says so: the import may remember the portal's device id (import_history).
                        self.history.passkey_devices[(ctx.user_id, ctx.device_hash)] = PasskeyVerified(
                            ctx.client.summary, ctx.time, ctx.ip, ctx.geo.place, until
                        )
        reasons = assessment.reasons
        action = assessment.action.value
        # Written by hand: the same JSON as json.dumps of the dict, at a third of the cost per line.
        text = (
            f'{{"line": {record.line}, "user": {_json_string(record.user)}, "score": {assessment.score}, '
            f'"action": "{action}", "reasons": {_dumps(reasons) if reasons else "[]"}}}\n'
        )
        return text, action, reasons

    def evidence(self, ctx: LoginContext) -> Evidence:
        return self.history.evidence_with(ctx, population=self._population, velocity=self._velocity)

    def learn(self, ctx: LoginContext, evidence: Evidence) -> None:
        """The profile only: population counts are pass 1's (:func:`counts_in_population`)."""
        self.history.learn_profile(ctx, evidence)

    def record_attempt(self, ctx: LoginContext, *, failed: bool) -> None:
        """Nothing: pass 1 counts every attempt."""

    def trust_device(self, ctx: LoginContext, until: datetime) -> None:
        self.history.trust_device(ctx, until)


def replay(
    lines: Iterable[str],
    output: SupportsWrite[str],
    *,
    geoip_path: str | None = None,
    policy: Policy | None = None,
    progress: IO[str] | None = None,
    progress_every: float = 2.0,
    history: MemoryHistory | None = None,
    factors: bool = False,
) -> Summary:
    """Score every line of ``lines`` and write one result line per input line to ``output``.

    Raises :class:`ReplayError` at the first malformed or out-of-order line (lines before it are written).
    ``history``: the in-memory store to start from and leave the learned state in (``authguard
    import-history`` reads it afterwards); a new, empty one by default. Both passes run line by line, so
    the output equals the sharded replay's (:mod:`authguard.risk.replay_shards`). ``factors``: read each
    line's optional ``second_factor`` (:func:`parse_line`): a step-up passed with a factor a phishing page can
    relay then teaches nothing, as live, and a passkey's device is kept for an import to remember.
    """
    policy = policy or Policy.current()
    history = history if history is not None else MemoryHistory()
    cross = CrossUserPass(history)
    scorer = UserScorer(policy, history)
    population = history.population
    summary = Summary()
    started = last_report = _time.monotonic()
    previous: datetime | None = None
    number = 0
    for number, text in enumerate(lines, start=1):
        record = parse_line(number, text, factors=factors) if text.strip() else None
        if record is None:
            raise ReplayError(number, "empty line")
        if previous is not None and record.ts < previous:
            raise ReplayError(
                number, f"out of order: {record.ts.isoformat()} is before {previous.isoformat()}"
            )
        previous = record.ts
        ctx = context_from_record(record, geoip_path=geoip_path)
        velocity = cross.before(number, ctx)
        result, action, reasons = scorer.score(record, ctx, velocity, population)
        cross.after(
            ctx,
            failed=not record.password_ok,
            counted=counts_in_population(record),
            keys=ctx.population_value_keys.values(),
        )
        output.write(result)
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


@contextlib.contextmanager
def open_text(path: str, mode: str = "r") -> Iterator[IO[str]]:
    """``path`` as UTF-8 text, closed after; ``-`` is stdin (``"r"``) or stdout (``"w"``), left open."""
    if path == "-":
        yield sys.stdin if mode == "r" else sys.stdout
        return
    with open(path, mode, encoding="utf-8") as stream:
        yield stream


@contextlib.contextmanager
def open_lines(path: str) -> Iterator[Iterator[str]]:
    """The lines of the log ``path`` (``-``: stdin), read as UTF-8 the way exports come: a leading byte-order
    mark is dropped, a byte that is not UTF-8 reads as U+FFFD (the line is scored, not the run stopped), and
    blank lines at the very end are no lines (a blank line before another line is still an error)."""
    if path == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        stream = io.TextIOWrapper(buffer, encoding="utf-8-sig", errors="replace") if buffer else sys.stdin
        yield _without_trailing_blanks(stream)
        return
    with open(path, encoding="utf-8-sig", errors="replace") as stream:
        yield _without_trailing_blanks(stream)


def _without_trailing_blanks(lines: Iterable[str]) -> Iterator[str]:
    blanks: list[str] = []
    for text in lines:
        if text.strip():
            yield from blanks
            blanks.clear()
            yield text
        else:
            blanks.append(text)


def replay_file(input_path: str, output_path: str, **kwargs: Any) -> Summary:
    """:func:`replay` between two files (``-`` reads stdin or writes stdout)."""
    with open_lines(input_path) as source, open_text(output_path, "w") as target:
        return replay(source, target, **kwargs)
