"""Report-only decisions (``AUTHGUARD_REPORT_ONLY``): what a part would have done, recorded as a score-0
finding on the decision it did not enforce. Used by the login flow, the step-up and mid-session re-scoring
(re-exported by :mod:`authguard.login.flow`)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy

from authguard.risk.engine import Assessment
from authguard.risk.findings import Finding

#: The finding that marks a decision taken in report-only mode (``AUTHGUARD_REPORT_ONLY``): score 0, evidence
#: ``{"part": "login" | "step_up", "would_have": "step_up" | "deny" | "end_session", ...}``.
REPORT_ONLY = "report_only"


def report_only_finding(part: str, would_have: str, **evidence: Any) -> Finding:
    """The score-0 finding recording what ``part`` would have done had it not been report-only."""
    return Finding(
        REPORT_ONLY,
        0,
        gettext_lazy("Report-only mode: this decision was recorded, not enforced"),
        {"part": part, "would_have": would_have, **evidence},
    )


def with_report_only(assessment: Assessment, part: str, would_have: str, **evidence: Any) -> Assessment:
    """``assessment`` with its score and action unchanged (the login event says what was decided) and a
    :data:`REPORT_ONLY` finding saying what would have happened."""
    finding = report_only_finding(part, would_have, **evidence)
    return Assessment(assessment.score, assessment.action, (*assessment.findings, finding))
