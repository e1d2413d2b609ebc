"""The audit trail: one line of Django's admin log per staff decision (who, when, what, about which record).

Low in the layering (it needs only Django's admin log), so the flows that act for the security desk (held
orders, held actions, the console's four-eyes engine) write their lines here without importing the console;
the incident report reads them back.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry


def audit(user: Any, obj: Any, message: str, *, flag: int = CHANGE) -> None:
    """One line of Django's admin log (who, when, what) about ``obj``: the console's audit trail, which the
    incident report reads."""
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=flag,
        change_message=message[:1000],
        single_object=True,
    )


__all__ = ["audit"]
