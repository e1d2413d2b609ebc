"""The staff console: four eyes, the console's passkey settings and its middleware."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from authguard.checks.base import MIDDLEWARE_PATH, conf_defaults
from authguard.checks.codes import Codes
from authguard.models import StaffAction

STAFF_MIDDLEWARE_PATH = "authguard.console.guard.StaffPasskeyMiddleware"


#: The staff actions four eyes can cover: every :class:`authguard.models.StaffAction`.
FOUR_EYES_ACTIONS = frozenset(StaffAction.values)


def four_eyes_problem(raw: Any) -> str | None:
    """Say what is wrong with ``AUTHGUARD_FOUR_EYES``, or None when it is valid."""
    if not isinstance(raw, dict):
        return "it must be a dict"
    unknown = set(raw) - {"ACTIONS", "MIN_SEVERITY", "EXPIRY_HOURS"}
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    actions = raw.get("ACTIONS", list(FOUR_EYES_ACTIONS))
    if not isinstance(actions, list | tuple) or not set(actions) <= FOUR_EYES_ACTIONS:
        return f"ACTIONS must be a list of {sorted(FOUR_EYES_ACTIONS)}"
    severity = raw.get("MIN_SEVERITY", 0)
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 4:
        return "MIN_SEVERITY must be an integer from 0 to 4"
    hours = raw.get("EXPIRY_HOURS", 24)
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
        return "EXPIRY_HOURS must be a positive integer"
    return None


@register(Tags.security)
def check_staff_console(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    problem = four_eyes_problem(getattr(settings, "AUTHGUARD_FOUR_EYES", {}))
    if problem:
        messages.append(
            Error(
                f"AUTHGUARD_FOUR_EYES is invalid: {problem}.",
                hint='Use {"ACTIONS": [...], "MIN_SEVERITY": 0..4, "EXPIRY_HOURS": int}.',
                id=Codes.FOUR_EYES_INVALID,
            )
        )
    for name in ("CONSOLE_PASSKEY_SECONDS", "CONSOLE_NEW_PASSKEY_HOURS"):
        value = getattr(settings, "AUTHGUARD_" + name, getattr(conf_defaults, name))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            messages.append(
                Error(
                    f"AUTHGUARD_{name} is {value!r}.",
                    hint="Use a whole number (seconds or hours), 0 or more.",
                    id=Codes.CONSOLE_SETTINGS_INVALID,
                )
            )
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    if apps.is_installed("django.contrib.admin") and STAFF_MIDDLEWARE_PATH not in middleware:
        messages.append(
            Warning(
                "The security console (Django admin) opens without a passkey check of the staff session.",
                hint=f"Add {STAFF_MIDDLEWARE_PATH!r} to MIDDLEWARE after {MIDDLEWARE_PATH!r}.",
                id=Codes.STAFF_MIDDLEWARE_MISSING,
            )
        )
    elif (
        STAFF_MIDDLEWARE_PATH in middleware
        and MIDDLEWARE_PATH in middleware
        and middleware.index(STAFF_MIDDLEWARE_PATH) < middleware.index(MIDDLEWARE_PATH)
    ):
        messages.append(
            Warning(
                f"{STAFF_MIDDLEWARE_PATH} is placed before {MIDDLEWARE_PATH}.",
                hint="Place it after AuthguardMiddleware, which holds sessions waiting for step-up first.",
                id=Codes.STAFF_MIDDLEWARE_MISSING,
            )
        )
    return messages
