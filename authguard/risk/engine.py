"""The risk engine's core: findings, assessments, pluggable signals, and the one scoring function.

Signals are small classes configured like ``AUTH_PASSWORD_VALIDATORS``::

    AUTHGUARD_RISK_SIGNALS = [
        {"NAME": "authguard.risk_signals.ImpossibleTravel", "OPTIONS": {"max_kmh": 900}},
    ]

Each reads an :class:`~authguard.risk.history.Evidence` (no I/O of its own) and returns findings with a stable
code, a score contribution, a translatable reason and evidence. The score is the sum of the contributions,
clamped to 0..100; :mod:`authguard.risk.policy` turns it into allow, step-up or deny.

:func:`score_login` is the only scoring path: live logins and ``authguard replay`` both call it. Live
logins score with the run-time policy in force (:func:`authguard.risk.policy.current_policy`: thresholds,
signal options, and shadow signals that report without deciding); the replay passes its own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.signals import setting_changed
from django.utils.functional import Promise
from django.utils.module_loading import import_string

from authguard.risk.context import LoginContext
from authguard.risk.history import Evidence, History
from authguard.risk.policy import Action, Thresholds, current_policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, init=False)
class Finding:
    """One reason contributing to a login's risk score."""

    code: str
    score: int
    reason: str | Promise
    evidence: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self, code: str, score: int, reason: str | Promise, evidence: dict[str, Any] | None = None
    ) -> None:
        # Every login makes several findings: fill the frozen instance's dict directly, at a third of
        # the cost of the generated __init__ (one object.__setattr__ per field). Assignment stays refused.
        fields = self.__dict__
        fields["code"] = code
        fields["score"] = score
        fields["reason"] = reason
        fields["evidence"] = {} if evidence is None else evidence

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form for :class:`~authguard.models.LoginEvent` (the reason rendered in English)."""
        from django.utils import translation

        with translation.override("en"):
            reason = str(self.reason)
        return {"code": self.code, "score": self.score, "reason": reason, "evidence": self.evidence}


@dataclass(frozen=True)
class Assessment:
    """A scored login: the 0..100 score, the action it maps to, and every finding that explains it."""

    score: int
    action: Action
    findings: tuple[Finding, ...]

    @property
    def reasons(self) -> list[str]:
        """Codes of the findings that raised the score, strongest first."""
        raising = sorted((f for f in self.findings if f.score > 0), key=lambda f: -f.score)
        return [f.code for f in raising]

    def explain(self) -> str:
        """A one-line human explanation, e.g. ``"62 -> step_up: new_device (+25), ..."``."""
        parts = ", ".join(f"{f.code} ({f.score:+d})" for f in self.findings if f.score)
        return f"{self.score} -> {self.action}: {parts or 'nothing unusual'}"


class RiskSignal:
    """Base class of risk signals. Subclasses accept their ``OPTIONS`` as keyword arguments.

    Keep :meth:`evaluate` pure: everything it may read is in the :class:`Evidence`.
    """

    #: Default options; unknown options are refused so a typo in settings is caught by ``authguard.E002``.
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}")
        merged = {**self.defaults, **options}
        for key, value in merged.items():
            default = self.defaults[key]
            numeric = isinstance(default, int | float) and not isinstance(default, bool)
            if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"option {key!r} must be a number")
        self.options = merged

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        raise NotImplementedError


def build_signals(config: Sequence[dict[str, Any]]) -> tuple[RiskSignal, ...]:
    """Instantiate a ``[{"NAME", "OPTIONS"}]`` list."""
    return tuple(import_string(entry["NAME"])(**entry.get("OPTIONS", {})) for entry in config)


@functools.lru_cache(maxsize=1)
def configured_signals() -> tuple[RiskSignal, ...]:
    """The signals of ``AUTHGUARD_RISK_SIGNALS``, built once per process (rebuilt when settings change)."""
    from authguard.conf import app_settings

    return build_signals(app_settings.RISK_SIGNALS)


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "AUTHGUARD_RISK_SIGNALS":
        configured_signals.cache_clear()


setting_changed.connect(_settings_changed)


#: Evidence key of a finding that lifts the login's score to the step-up threshold at least (its own points
#: stay small, so it never pushes a login to a denial on its own).
STEP_UP_FLOOR = "step_up_floor"


def assess(evidence: Evidence, *, signals: Sequence[RiskSignal], thresholds: Thresholds) -> Assessment:
    """Run every signal over the evidence and decide. A signal that crashes fails closed (step-up)."""
    findings: list[Finding] = []
    for signal in signals:
        try:
            findings.extend(signal.evaluate(evidence))
        except Exception:
            # SECURITY: a broken signal must never let a login through unchecked.
            logger.exception("authguard: risk signal %s failed", type(signal).__name__)
            findings.append(
                Finding(
                    "signal_error",
                    thresholds.step_up,
                    "A risk check failed",
                    {"signal": type(signal).__name__},
                )
            )
    total = 0
    floor = False
    for finding in findings:
        total += finding.score
        if finding.code == "signal_error" or finding.evidence.get(STEP_UP_FLOOR):
            floor = True
    score = max(0, min(100, total))
    if floor:
        # SECURITY: a failed signal, or a finding that is a policy rather than a degree of risk (a first
        # sign-in from abroad, say), asks for a second factor at least, whatever the other points.
        score = max(score, thresholds.step_up)
    return Assessment(score=score, action=thresholds.decide(score), findings=tuple(findings))


def score_login(
    ctx: LoginContext,
    history: History,
    *,
    signals: Sequence[RiskSignal] | None = None,
    thresholds: Thresholds | None = None,
    shadow_signals: Sequence[RiskSignal] | None = None,
) -> tuple[Assessment, Evidence | None]:
    """Score one login with the given store: the single path shared by live logins and the replay.

    Without explicit ``signals``/``thresholds`` the run-time policy in force is used
    (:func:`authguard.risk.policy.current_policy`: one cache read, no query), including its shadow signals;
    with explicit ``signals`` (as the replay passes) only the given ``shadow_signals`` run.

    Returns the assessment and the evidence it was based on (needed to learn from the login afterwards).
    If the evidence cannot be gathered (database or cache down), the login is stepped up: fail closed.
    """
    if signals is None or thresholds is None:
        policy = current_policy()
        thresholds = thresholds or policy.thresholds
        if signals is None:
            signals = policy.signals
            if shadow_signals is None:
                shadow_signals = policy.shadow_signals
    try:
        evidence = history.evidence(ctx)
    except Exception:
        # SECURITY: no history means no basis to allow; ask for a second factor instead.
        logger.exception("authguard: could not gather login evidence")
        finding = Finding("history_unavailable", thresholds.step_up, "The login history could not be read")
        return Assessment(thresholds.step_up, thresholds.decide(thresholds.step_up), (finding,)), None
    assessment = assess(evidence, signals=signals, thresholds=thresholds)
    if shadow_signals:
        assessment = with_shadow(assessment, evidence, shadow_signals=shadow_signals, thresholds=thresholds)
    return assessment, evidence


#: Code of the summary finding of a login's shadow (report-only) signals.
SHADOW_DECISION = "shadow_decision"


def with_shadow(
    assessment: Assessment,
    evidence: Evidence,
    *,
    shadow_signals: Sequence[RiskSignal],
    thresholds: Thresholds,
) -> Assessment:
    """Add the findings of report-only signals to ``assessment`` without changing its score or action.

    Each shadow finding is recorded with score 0 and evidence ``{"shadow": True, "would_score": n}``;
    one ``shadow_decision`` finding says what the login's score and action would have been. A shadow
    signal that fails is logged and ignored: report-only means it can never change a decision.
    """
    extra: list[Finding] = []
    would_add = 0
    for signal in shadow_signals:
        try:
            found = list(signal.evaluate(evidence))
        except Exception:
            logger.exception("authguard: shadow signal %s failed", type(signal).__name__)
            continue
        for f in found:
            would_add += f.score
            extra.append(Finding(f.code, 0, f.reason, {**f.evidence, "shadow": True, "would_score": f.score}))
    if not extra:
        return assessment
    would_score = max(0, min(100, assessment.score + would_add))
    summary = Finding(
        SHADOW_DECISION,
        0,
        "What the report-only signals would have decided",
        {"shadow": True, "would_score": would_score, "would_action": str(thresholds.decide(would_score))},
    )
    findings = (*assessment.findings, *extra, summary)
    return Assessment(score=assessment.score, action=assessment.action, findings=findings)
