"""Sensitive actions (withdrawals, bank accounts, transfers out): the executor, methods, kinds and numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.utils.module_loading import import_string

from authguard.checks.base import conf_defaults
from authguard.checks.codes import Codes
from authguard.models import ActionKind


@register(Tags.security)
def check_actions(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The action executor imports and has ``execute`` and ``release``; the methods, kinds and numbers make
    sense. No executor at all is fine for a portal that guards no sensitive action (``guard()`` then refuses
    with ``ActionsMisconfigured``)."""
    messages: list[CheckMessage] = []
    path = getattr(settings, "AUTHGUARD_ACTION_EXECUTOR", None)
    if path:
        try:
            target = import_string(path) if isinstance(path, str) else None
        except ImportError:
            target = None
        if target is None or not all(
            callable(getattr(target, name, None)) for name in ("execute", "release")
        ):
            messages.append(
                Error(
                    f"AUTHGUARD_ACTION_EXECUTOR {path!r} is not usable.",
                    hint="A dotted path to an object (or class) with execute(action) and "
                    "release(action, *, status).",
                    id=Codes.ACTION_EXECUTOR_INVALID,
                )
            )
    methods = getattr(
        settings, "AUTHGUARD_ACTION_CONFIRMATION_METHODS", conf_defaults.ACTION_CONFIRMATION_METHODS
    )
    if not isinstance(methods, list | tuple) or not methods or not set(methods) <= {"passkey", "totp"}:
        messages.append(
            Error(
                f"AUTHGUARD_ACTION_CONFIRMATION_METHODS is invalid: {methods!r}.",
                hint='Use a non-empty list of "passkey" and "totp" (default ["passkey"]).',
                id=Codes.ACTION_METHODS_INVALID,
            )
        )
    kinds = getattr(settings, "AUTHGUARD_ACTION_GUARDED_KINDS", conf_defaults.ACTION_GUARDED_KINDS)
    if not isinstance(kinds, list | tuple) or not set(kinds) <= set(ActionKind.values):
        messages.append(
            Error(
                f"AUTHGUARD_ACTION_GUARDED_KINDS is invalid: {kinds!r}.",
                hint=f"Use a list of {sorted(ActionKind.values)}.",
                id=Codes.ACTION_KINDS_INVALID,
            )
        )
    for name, low, high in (("ACTION_CONFIRMATION_SECONDS", 30, 3600), ("NEW_PAYEE_HOLD_HOURS", 0, 24 * 90)):
        value = getattr(settings, "AUTHGUARD_" + name, None)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            messages.append(
                Error(
                    f"AUTHGUARD_{name} is invalid: {value!r}.",
                    hint=f"Use a whole number from {low} to {high}.",
                    id=Codes.ACTION_NUMBER_INVALID,
                )
            )
    return messages
