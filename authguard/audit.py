"""The audit trail: one line of Django's admin log per staff decision (who, when, what, about which record).

Low in the layering (it needs only Django's admin log), so the flows that act for the security desk (held
orders, held actions, the console's four-eyes engine) write their lines here without importing the console;
the incident report reads them back.

A portal without ``django.contrib.admin`` has no admin log (and no console): this module must still import
there, because the order guard imports it, so the log model is looked up when a line is written, never at
import (importing ``django.contrib.admin.models`` without the app stops Django).
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps

logger = logging.getLogger(__name__)

#: Django's admin-log action flags (those of ``django.contrib.admin.models``: the values it stores).
ADDITION = 1
CHANGE = 2


def audit(user: Any, obj: Any, message: str, *, flag: int = CHANGE) -> None:
    """One line of Django's admin log (who, when, what) about ``obj``: the console's audit trail, which the
    incident report reads. Without the admin app the line goes to the ``authguard.audit`` logger only."""
    if not apps.is_installed("django.contrib.admin"):
        logger.info(
            "authguard audit user=%s %s %s: %s",
            getattr(user, "pk", None),
            type(obj).__name__,
            obj.pk,
            message,
        )
        return
    apps.get_model("admin", "LogEntry").objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=flag,
        change_message=message[:1000],
        single_object=True,
    )


__all__ = ["ADDITION", "CHANGE", "audit"]
