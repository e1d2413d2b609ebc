"""Risk findings and signals: what every signal returns, the signal base class, and loading the signals.

Signals are small classes configured like ``AUTH_PASSWORD_VALIDATORS``::

    AUTHGUARD_RISK_SIGNALS = [
        {"NAME": "authguard.risk_signals.ImpossibleTravel", "OPTIONS": {"max_kmh": 900}},
    ]

Each reads an :class:`~authguard.risk.history.Evidence` (no I/O of its own) and returns :class:`Finding`
objects with a stable code, a score contribution, a translatable reason and evidence. This module is the
common ground of :mod:`authguard.risk.policy` (which builds and validates signals) and
:mod:`authguard.risk.engine` (which runs them), so neither imports the other for it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.signals import setting_changed
from django.utils import translation
from django.utils.functional import Promise
from django.utils.module_loading import import_string

from authguard.conf import app_settings

if TYPE_CHECKING:
    from authguard.risk.history import Evidence


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
        with translation.override("en"):
            reason = str(self.reason)
        return {"code": self.code, "score": self.score, "reason": reason, "evidence": self.evidence}


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
            # SECURITY: a switch given as a string ("false", "0") would read as true or be compared wrongly;
            # several switches guard the score (user_agent_can_lower, new_device_can_lower).
            if isinstance(default, bool) and not isinstance(value, bool):
                raise ValueError(f"option {key!r} must be true or false")
        self.options = merged

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        raise NotImplementedError


def build_signals(config: Sequence[dict[str, Any]]) -> tuple[RiskSignal, ...]:
    """Instantiate a ``[{"NAME", "OPTIONS"}]`` list."""
    return tuple(import_string(entry["NAME"])(**entry.get("OPTIONS", {})) for entry in config)


@functools.lru_cache(maxsize=1)
def configured_signals() -> tuple[RiskSignal, ...]:
    """The signals of ``AUTHGUARD_RISK_SIGNALS``, built once per process (rebuilt when settings change)."""
    return build_signals(app_settings.RISK_SIGNALS)


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "AUTHGUARD_RISK_SIGNALS":
        configured_signals.cache_clear()


setting_changed.connect(_settings_changed)


#: Evidence key of a finding that lifts the login's score to the step-up threshold at least (its own points
#: stay small, so it never pushes a login to a denial on its own).
STEP_UP_FLOOR = "step_up_floor"
