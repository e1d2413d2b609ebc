"""The risk engine's core: assessments and the one scoring function.

The signals (:mod:`authguard.risk.signals`, configured in ``AUTHGUARD_RISK_SIGNALS``) return
:class:`~authguard.risk.findings.Finding` objects; the score is the sum of their contributions, clamped to
0..100; :mod:`authguard.risk.policy` turns it into allow, step-up or deny.

:func:`score_login` is the only scoring path: live logins and ``authguard replay`` both call it. Live
logins score with the run-time policy in force (:func:`authguard.risk.policy.current_policy`: thresholds,
signal options, and shadow signals that report without deciding); the replay passes its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from authguard.choices import Action
from authguard.risk.context import LoginContext

# Finding, RiskSignal, build_signals, configured_signals and STEP_UP_FLOOR live in risk.findings; they are
# re-exported here because callers (login flow, checks, tests) always imported them from the engine.
from authguard.risk.findings import STEP_UP_FLOOR as STEP_UP_FLOOR
from authguard.risk.findings import Finding as Finding
from authguard.risk.findings import RiskSignal as RiskSignal
from authguard.risk.findings import build_signals as build_signals
from authguard.risk.findings import configured_signals as configured_signals
from authguard.risk.history import Evidence, History
from authguard.risk.policy import Thresholds, current_policy

logger = logging.getLogger(__name__)


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
    score = combined_score(findings, thresholds)
    return Assessment(score=score, action=thresholds.decide(score), findings=tuple(findings))


def combined_score(findings: Iterable[Finding], thresholds: Thresholds) -> int:
    """The score of a login's findings: their sum clamped to 0..100, raised to ``thresholds.step_up`` where a
    finding asks for a step-up whatever the points. The one rule of live decisions and report-only trials."""
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
    return score


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
    found: list[Finding] = []
    for signal in shadow_signals:
        try:
            found.extend(list(signal.evaluate(evidence)))  # all of a signal's findings or none
        except Exception:
            logger.exception("authguard: shadow signal %s failed", type(signal).__name__)
    for f in found:
        recorded = {**f.evidence, "shadow": True, "would_score": f.score}
        if recorded.pop(STEP_UP_FLOOR, False):
            # Reported, not applied: a recorded shadow finding must never ask for a step-up itself.
            recorded["would_step_up"] = True
        extra.append(Finding(f.code, 0, f.reason, recorded))
    if not extra:
        return assessment
    # What the live rule would decide had these signals been live.
    would_score = combined_score([*assessment.findings, *found], thresholds)
    summary = Finding(
        SHADOW_DECISION,
        0,
        "What the report-only signals would have decided",
        {"shadow": True, "would_score": would_score, "would_action": str(thresholds.decide(would_score))},
    )
    findings = (*assessment.findings, *extra, summary)
    return Assessment(score=assessment.score, action=assessment.action, findings=findings)
