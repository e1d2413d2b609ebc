"""Policy: how a 0..100 risk score becomes a decision.

The policy is data (thresholds) plus one pure function, so the live login path, ``authguard replay`` and
the admin's backtests all decide in exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    """What authguard decides for a login."""

    ALLOW = "allow", _("allow")
    STEP_UP = "step_up", _("step up")
    DENY = "deny", _("deny")


@dataclass(frozen=True)
class Thresholds:
    """Score at or above which a login is stepped up (``step_up``) or denied (``deny``)."""

    step_up: int
    deny: int

    @classmethod
    def from_mapping(cls, mapping: dict[str, int]) -> Thresholds:
        return cls(step_up=int(mapping["step_up"]), deny=int(mapping["deny"]))

    def decide(self, score: int) -> Action:
        """Map a score to an action. Fails closed: a score at a threshold takes the stricter action."""
        if score >= self.deny:
            return Action.DENY
        if score >= self.step_up:
            return Action.STEP_UP
        return Action.ALLOW


def current_thresholds() -> Thresholds:
    """The thresholds in force now (``AUTHGUARD_THRESHOLDS``)."""
    from .conf import app_settings

    return Thresholds.from_mapping(app_settings.THRESHOLDS)
