"""Backtest before enforcing: replay recorded logins through a proposed policy, beside the current one.

This module has no scoring of its own. It turns recorded :class:`~authguard.models.LoginEvent` rows into
the JSONL lines of CONTRACTS section 5 (:func:`event_line`) and runs them through
:func:`authguard.risk.replay.replay`, the engine behind ``python manage.py authguard replay``, once with the
run-time policy in force (:func:`authguard.risk.policy.current_policy`) and once with the proposed one. So the
admin's backtest and the command give the same answer on the same events: ``export_jsonl`` writes exactly
the lines the page replays, and :func:`policy_json` the ``--policy`` file of either policy
(tests/test_risk_backtest.py runs the command on them and compares). Shadow (report-only) signals never
change a decision, so they play no part in a backtest.

Which events are replayed (one taxonomy, :func:`authguard.risk.event_categories.categorize`, shared with the
dashboard
and the incident report): every recorded attempt of the window scored on a verified first factor, and
every wrong password (failed passwords feed the velocity signals), in time order:

* password sign-ins, whatever happened next (signed in, stepped up, refused);
* **passkey sign-ins**: there is no password to score, so the line says ``password_ok`` true (the first
  factor, a passkey, was verified) and ``second_factor_ok`` true (the passkey is phishing-resistant: it is
  also the step-up). A policy that steps a passkey sign-in up therefore lets it in, as the live passkey
  sign-in does; only a deny refuses it (and only a deny counts as friction or as a catch for it);
* **re-scored sessions** (a signed-in session used from another network or browser): ``password_ok`` true
  (the session had been verified), ``second_factor_ok`` as its step-up ended;
* refusals without a password (a passkey sign-in or a moved session the risk engine refused).

Left out, and counted in ``BacktestResult.left_out``: throttled attempts and attempts refused because the
account was locked (no password was checked), and events without an IP or a username.

How an event becomes a replay line:

* ``user``: the account's username (the name as typed for unknown accounts),
* ``device_id``: the stored device-cookie hash (the replay hashes it again, which keeps devices distinct),
* ``second_factor_ok``: what a step-up did or would have done. ``True`` when the event passed step-up or
  was a passkey sign-in, ``False`` when it failed one; otherwise ``False`` for events marked fraud (an
  attacker does not hold the customer's passkey), ``True`` for known-good ones (the customer, asked, passes)
  and ``null`` for the rest. The replay reads it only after deciding, to know whether to learn from it.

Labels (what friction and catches count; only attempts with a verified first factor are labelled):

* **fraud**: an analyst marked the event confirmed fraud.
* **known good**: not marked fraud, and an analyst marked it legitimate, or it passed step-up (a password
  sign-in or a re-scored session), or it was allowed and signed in, or it was a passkey sign-in.
* **unknown**: the rest (refused, pending or failed step-ups nobody has reviewed).

**Friction** is the number of known-good attempts a policy steps up or denies; **catches** is the number of
fraud-marked attempts it steps up or denies (for passkey sign-ins: denies). Both are reported split by
step-up and deny. Three columns are compared: **what happened** (the decisions recorded at the time, under
the policy then in force and the history the live system had then), the **current policy replayed** and
the **proposed policy replayed** (both from empty history, so the difference between those two is the
policy's alone; the difference between the first two is what starting from empty history costs).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from authguard.choices import Action
from authguard.conf import app_settings
from authguard.models import Feedback, LoginEvent
from authguard.risk import event_categories
from authguard.risk import policy as runtime
from authguard.risk.replay import Policy, replay

#: Longest window an admin may backtest, in days.
MAX_DAYS = 365
#: Most events one backtest replays (the most recent ones of the window); above it the page says so.
MAX_EVENTS = 200_000

GOOD = "good"
FRAUD = "fraud"
UNKNOWN = "unknown"


class BacktestError(ValueError):
    """The backtest cannot run as asked (a bad window, a bad policy); the message says why."""


@dataclass(frozen=True)
class Tally:
    """What one policy did to the replayed events."""

    actions: Mapping[str, int]
    known_good: int
    fraud: int
    friction_step_up: int
    friction_deny: int
    caught_step_up: int
    caught_deny: int
    top_reasons: tuple[tuple[str, int], ...] = ()
    #: Passkey sign-ins among the events, and how many of them the policy stepped up (let in by the passkey).
    passkey_sign_ins: int = 0
    passkey_stepped_up: int = 0

    @property
    def friction(self) -> int:
        """Known-good logins stepped up or denied."""
        return self.friction_step_up + self.friction_deny

    @property
    def catches(self) -> int:
        """Fraud-marked logins stepped up or denied."""
        return self.caught_step_up + self.caught_deny

    @property
    def friction_rate(self) -> float | None:
        return self.friction / self.known_good if self.known_good else None

    @property
    def catch_rate(self) -> float | None:
        return self.catches / self.fraud if self.fraud else None


@dataclass(frozen=True)
class Change:
    """One event whose decision differs between the current and the proposed policy."""

    event_id: int
    user: str
    created_at: datetime
    label: str
    current: str
    proposed: str
    recorded: str = ""
    category: str = ""


@dataclass(frozen=True)
class BacktestResult:
    """The current and the proposed policy, side by side, on the same events."""

    days: int
    start: datetime
    end: datetime
    events: int
    truncated: bool
    current: Tally
    proposed: Tally
    changes: tuple[Change, ...] = field(default_factory=tuple)
    changed_total: int = 0
    #: What was decided at the time (the recorded decisions of the same events).
    recorded: Tally | None = None
    #: Every event of the window by category (:data:`authguard.risk.event_categories.CATEGORIES`), replayed
    #: or not.
    coverage: Mapping[str, int] = field(default_factory=dict)
    #: Events of the window the backtest leaves out, by category (no password was checked).
    left_out: Mapping[str, int] = field(default_factory=dict)

    @property
    def coverage_rows(self) -> list[tuple[str, str, int, bool]]:
        """``(code, label, count, replayed)`` of every category with events in the window."""
        return [
            (c.code, str(c.label), self.coverage[c.code], c.replayed)
            for c in event_categories.CATEGORIES.values()
            if self.coverage.get(c.code)
        ]


def window(days: int, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The ``[start, end)`` of the last ``days`` days; refuses out-of-range values."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise BacktestError(f"the window must be 1 to {MAX_DAYS} days")
    end = now or timezone.now()
    return end - timedelta(days=days), end


def _window_events(start: datetime, end: datetime) -> QuerySet[LoginEvent]:
    return LoginEvent.objects.filter(created_at__gte=start, created_at__lt=end)


def replayable_events(start: datetime, end: datetime) -> QuerySet[LoginEvent]:
    """The events a backtest of ``[start, end)`` replays, oldest first (see the module docstring)."""
    return (
        _window_events(start, end)
        .filter(event_categories.category_q(event_categories.codes_where(replayed=True)), ip__isnull=False)
        .exclude(Q(username="") & Q(user__isnull=True))
        .select_related("user")
        .order_by("created_at", "pk")
    )


def coverage(start: datetime, end: datetime) -> tuple[dict[str, int], dict[str, int]]:
    """Every event of ``[start, end)`` by category, and those the backtest leaves out (one query)."""
    counts: Counter[str] = Counter()
    left_out: Counter[str] = Counter()
    rows = (
        _window_events(start, end)
        .annotate(
            unusable=Q(ip__isnull=True) | (Q(username="") & Q(user__isnull=True)),
        )
        .values_list("password_ok", "outcome", "action", "unusable")
        .annotate(n=Count("id"))
        .order_by()
    )
    for password_ok, outcome, action, unusable, n in rows:
        code = event_categories.categorize(password_ok, outcome, action)
        counts[code] += n
        if unusable or not event_categories.CATEGORIES[code].replayed:
            left_out[code] += n
    return dict(counts), dict(left_out)


def label(event: LoginEvent) -> str:
    """``"fraud"``, ``"good"`` or ``"unknown"`` (see the module docstring)."""
    category = event_categories.category_of(event)
    if not category.verified:
        return UNKNOWN
    if event.feedback == Feedback.FRAUD:
        return FRAUD
    if event.feedback == Feedback.LEGITIMATE:
        return GOOD
    if category.code in (
        event_categories.STEPPED_UP,
        event_categories.RESCORED_STEPPED_UP,
        event_categories.PASSKEY_SIGN_IN,
    ):
        return GOOD
    if category.code == event_categories.SIGNED_IN and event.action == Action.ALLOW:
        return GOOD
    return UNKNOWN


def _second_factor(event: LoginEvent, event_label: str) -> bool | None:
    category = event_categories.category_of(event)
    if category.code == event_categories.PASSKEY_SIGN_IN:
        return True  # the passkey is the strong factor: a step-up asked of it is already met
    if category.step_up == "step_up_passed":
        return True
    if category.step_up == "step_up_failed":
        return False
    if event_label == FRAUD:
        return False
    if event_label == GOOD:
        return True
    return None


def event_line(event: LoginEvent) -> dict[str, Any]:
    """The replay line (CONTRACTS section 5) of one recorded event, plus ``event`` (its id; ignored)."""
    event_label = label(event)
    user = event.user.get_username() if event.user is not None else event.username
    return {
        "ts": event.created_at.isoformat(),
        "user": user,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "device_id": event.device_hash or None,
        # A passkey or a verified session is the first factor of a passkey sign-in or a re-score.
        "password_ok": event_categories.category_of(event).verified,
        "second_factor_ok": _second_factor(event, event_label),
        "event": event.pk,
    }


def export_jsonl(events: Iterable[LoginEvent], output: IO[str]) -> int:
    """Write the replay lines of ``events`` to ``output``; returns how many. ``authguard replay`` reads it."""
    count = 0
    for event in events:
        output.write(json.dumps(event_line(event), ensure_ascii=True) + "\n")
        count += 1
    return count


def decisions(lines: list[str], policy: Policy) -> list[dict[str, Any]]:
    """Run replay lines through :func:`authguard.risk.replay.replay` with ``policy``; one result per line."""
    output = io.StringIO()
    replay(lines, output, geoip_path=app_settings.GEOIP_PATH, policy=policy)
    return [json.loads(text) for text in output.getvalue().splitlines()]


def _effective(action: str, category: str) -> str:
    """What ``action`` does to an attempt of ``category``: a passkey sign-in asked to step up is let in
    (its passkey is the step-up, as in the live passkey sign-in); everything else as decided."""
    if category == event_categories.PASSKEY_SIGN_IN and action == Action.STEP_UP:
        return Action.ALLOW
    return action


def tally(
    results: Iterable[Mapping[str, Any]], labels: Iterable[str], categories: Iterable[str] | None = None
) -> Tally:
    """Count actions, friction and catches of replay ``results`` against the events' ``labels``
    (``categories``: the events' category codes, for the passkey rule; default all password sign-ins)."""
    actions: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    good = fraud = friction_step_up = friction_deny = caught_step_up = caught_deny = 0
    passkeys = passkeys_stepped_up = 0
    results = list(results)
    codes = list(categories) if categories is not None else [event_categories.SIGNED_IN] * len(results)
    for result, event_label, code in zip(results, labels, codes, strict=True):
        action = result["action"]
        actions[action] += 1
        if action != Action.ALLOW:
            reasons.update(result["reasons"])
        if code == event_categories.PASSKEY_SIGN_IN:
            passkeys += 1
            passkeys_stepped_up += action == Action.STEP_UP
        action = _effective(action, code)
        if event_label == GOOD:
            good += 1
            friction_step_up += action == Action.STEP_UP
            friction_deny += action == Action.DENY
        elif event_label == FRAUD:
            fraud += 1
            caught_step_up += action == Action.STEP_UP
            caught_deny += action == Action.DENY
    return Tally(
        actions={a: actions.get(a, 0) for a in Action.values},
        known_good=good,
        fraud=fraud,
        friction_step_up=friction_step_up,
        friction_deny=friction_deny,
        caught_step_up=caught_step_up,
        caught_deny=caught_deny,
        top_reasons=tuple(reasons.most_common(8)),
        passkey_sign_ins=passkeys,
        passkey_stepped_up=passkeys_stepped_up,
    )


def recorded_tally(events: Iterable[LoginEvent], labels: Iterable[str]) -> Tally:
    """The same figures for the decisions recorded at the time (what happened)."""
    events = list(events)
    return tally(
        ({"action": e.action, "reasons": list(e.reasons or ())} for e in events),
        labels,
        [event_categories.categorize(e.password_ok, e.outcome, e.action) for e in events],
    )


def proposed_policy(raw: Mapping[str, Any]) -> Policy:
    """A proposed policy from ``{"thresholds": {...}, "signals": [...]}`` (the replay's ``--policy``)."""
    try:
        return Policy.from_json(dict(raw))
    except ValueError as exc:
        raise BacktestError(str(exc)) from None


def from_runtime(policy: runtime.Policy) -> Policy:
    """The replay's form of a run-time policy (its signals and thresholds; shadow signals never decide)."""
    return Policy(list(policy.signals), policy.thresholds)


def policy_json(policy: runtime.Policy) -> dict[str, Any]:
    """A run-time policy as the ``--policy`` file of ``authguard replay`` (to rerun a backtest by hand)."""
    return {
        "thresholds": {"step_up": policy.thresholds.step_up, "deny": policy.thresholds.deny},
        "signals": [dict(entry) for entry in policy.signal_config],
    }


def proposed_runtime_policy(
    *, thresholds: Mapping[str, int] | None, signal_options: Mapping[str, Any] | None
) -> runtime.Policy:
    """A proposed run-time policy (the policy editor's fields), validated like a saved one."""
    try:
        return runtime.build_policy(
            thresholds=dict(thresholds or {}), signal_options=dict(signal_options or {})
        )
    except runtime.InvalidPolicy as exc:
        raise BacktestError(str(exc)) from None


def run_backtest(
    proposed: Policy | runtime.Policy | Mapping[str, Any],
    *,
    days: int = 30,
    now: datetime | None = None,
    current: Policy | None = None,
    max_events: int = MAX_EVENTS,
    max_changes: int = 50,
) -> BacktestResult:
    """Replay the last ``days`` days through ``current`` (default: the run-time policy in force) and
    ``proposed`` (a replay policy, a run-time policy, or a ``--policy`` mapping)."""
    start, end = window(days, now=now)
    if isinstance(proposed, runtime.Policy):
        proposed = from_runtime(proposed)
    elif not isinstance(proposed, Policy):
        proposed = proposed_policy(proposed)
    current = current or from_runtime(runtime.current_policy())
    events = _latest(replayable_events(start, end), max_events)
    truncated = len(events) == max_events and replayable_events(start, events[0].created_at).exists()
    lines, labels = _lines_and_labels(events)
    categories = [event_categories.categorize(e.password_ok, e.outcome, e.action) for e in events]
    now_results = decisions(lines, current)
    new_results = decisions(lines, proposed)
    changes = [
        Change(
            event.pk,
            line["user"],
            event.created_at,
            event_label,
            a["action"],
            b["action"],
            event.action,
            code,
        )
        for event, line, event_label, code, a, b in zip(
            events, map(json.loads, lines), labels, categories, now_results, new_results, strict=True
        )
        if _effective(a["action"], code) != _effective(b["action"], code)
    ]
    counts, left_out = coverage(start, end)
    return BacktestResult(
        days=days,
        start=start,
        end=end,
        events=len(events),
        truncated=truncated,
        current=tally(now_results, labels, categories),
        proposed=tally(new_results, labels, categories),
        changes=tuple(changes[:max_changes]),
        changed_total=len(changes),
        recorded=recorded_tally(events, labels),
        coverage=counts,
        left_out=left_out,
    )


def _latest(queryset: QuerySet[LoginEvent], limit: int) -> list[LoginEvent]:
    if limit < 1:
        raise BacktestError("max_events must be positive")
    newest = list(queryset.order_by("-created_at", "-pk")[:limit])
    newest.reverse()
    return newest


def _lines_and_labels(events: list[LoginEvent]) -> tuple[list[str], list[str]]:
    lines = [json.dumps(event_line(event), ensure_ascii=True) for event in events]
    return lines, [label(event) for event in events]


def iter_export(start: datetime, end: datetime) -> Iterator[str]:
    """The replay lines of a window, one string each (for a streamed download)."""
    for event in replayable_events(start, end).iterator(chunk_size=2000):
        yield json.dumps(event_line(event), ensure_ascii=True) + "\n"
