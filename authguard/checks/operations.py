"""Operations: the JSDA 2025 preset, the account lock and unlock, notification and retention numbers, and
the report-only rollout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from authguard.checks.base import conf_defaults, hook_import_error
from authguard.checks.codes import Codes
from authguard.conf import PRESET_ENFORCED_PARTS, PRESET_JSDA_2025, REPORT_ONLY_PARTS, app_settings

#: django-otp plugins whose codes the JSDA 2025 preset refuses (mailed and SMS codes, static lists).
PRESET_REFUSED_OTP_APPS = (
    "django_otp.plugins.otp_email",
    "django_otp.plugins.otp_hotp",
    "django_otp.plugins.otp_static",
)


@register(Tags.security)
def check_preset(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The JSDA 2025 preset: a mistyped name, and settings it overrides or that work against it."""
    preset = getattr(settings, "AUTHGUARD_PRESET", None)
    if preset is None:
        return []
    if preset != PRESET_JSDA_2025:
        # SECURITY: a typo must not silently leave the regulatory preset off.
        return [
            Error(
                f"AUTHGUARD_PRESET is {preset!r}, which is not a preset.",
                hint=f'Use None or "{PRESET_JSDA_2025}".',
                id=Codes.PRESET_UNKNOWN,
            )
        ]
    messages: list[CheckMessage] = []
    for name in ("STEP_UP_METHODS", "CONFIRMATION_METHODS", "UNLOCK_METHODS"):
        value = getattr(settings, "AUTHGUARD_" + name, None)
        if value is not None and list(value) != ["passkey"]:
            messages.append(
                Warning(
                    f"AUTHGUARD_{name} is {list(value)!r}, but the {PRESET_JSDA_2025} preset accepts "
                    "passkeys only.",
                    hint=f"The preset uses ['passkey']; remove AUTHGUARD_{name} to silence this.",
                    id=Codes.PRESET_METHODS_OVERRIDDEN,
                )
            )
    if getattr(settings, "AUTHGUARD_LOCKOUT_FAILURES", conf_defaults.LOCKOUT_FAILURES) is None:
        messages.append(
            Warning(
                f"AUTHGUARD_LOCKOUT_FAILURES is None, but the {PRESET_JSDA_2025} preset requires "
                "automatic lock.",
                hint="The preset locks after 10 consecutive failures; set a number to choose another limit.",
                id=Codes.PRESET_LOCKOUT_OVERRIDDEN,
            )
        )
    installed = [app for app in PRESET_REFUSED_OTP_APPS if app in settings.INSTALLED_APPS]
    if installed:
        messages.append(
            Warning(
                f"{', '.join(installed)} installed with the {PRESET_JSDA_2025} preset.",
                hint="authguard refuses their codes for step-up and confirmations, but other django-otp "
                "views (an OTP admin login, say) would accept them: remove them unless something needs them.",
                id=Codes.PRESET_OTP_PLUGINS,
            )
        )
    return messages


@register(Tags.security)
def check_operations(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The account lock, the unlock methods, the notification and retention numbers, the language hook."""
    messages: list[CheckMessage] = []
    lockout = getattr(settings, "AUTHGUARD_LOCKOUT_FAILURES", conf_defaults.LOCKOUT_FAILURES)
    if lockout is not None and (isinstance(lockout, bool) or not isinstance(lockout, int) or lockout < 1):
        # SECURITY: a lock limit that cannot be read would leave accounts open to unlimited guessing.
        messages.append(
            Error(
                f"AUTHGUARD_LOCKOUT_FAILURES is {lockout!r}.",
                hint="Use a positive integer (consecutive failures that lock an account), or None: no lock.",
                id=Codes.LOCKOUT_INVALID,
            )
        )
    methods = getattr(settings, "AUTHGUARD_UNLOCK_METHODS", conf_defaults.UNLOCK_METHODS)
    if not isinstance(methods, list | tuple) or not set(methods) <= {"passkey", "totp"}:
        messages.append(
            Error(
                f"AUTHGUARD_UNLOCK_METHODS is {methods!r}.",
                hint='Use a list of "passkey" and/or "totp" (default ["passkey"]).',
                id=Codes.UNLOCK_METHODS_INVALID,
            )
        )
    for name in ("EVENT_RETENTION_DAYS", "NOTIFICATION_MAX_ATTEMPTS", "STEP_UP_FAILURE_BURST"):
        value = getattr(settings, "AUTHGUARD_" + name, getattr(conf_defaults, name))
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            messages.append(
                Error(
                    f"AUTHGUARD_{name} is {value!r}.",
                    hint="Use a positive integer.",
                    id=Codes.OPERATIONS_NUMBER_INVALID,
                )
            )
    hook = getattr(settings, "AUTHGUARD_NOTIFICATION_LANGUAGE", None)
    if hook:
        exc = hook_import_error(hook)
        if exc is not None:
            messages.append(
                Error(
                    f"AUTHGUARD_NOTIFICATION_LANGUAGE cannot be imported: {hook!r} ({exc}).",
                    hint="A dotted path to a function user -> language code or None.",
                    id=Codes.NOTIFICATION_LANGUAGE_INVALID,
                )
            )
    return messages


@register(Tags.security)
def check_report_only(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """``AUTHGUARD_REPORT_ONLY``: invalid (E170), refused under the JSDA preset (E171), and, loudly, in force
    (W170) on every ``check``, deploy or not, for as long as any part acts on nothing."""
    raw = getattr(settings, "AUTHGUARD_REPORT_ONLY", ())
    messages: list[CheckMessage] = []
    if not isinstance(raw, list | tuple | set | frozenset) or not all(isinstance(p, str) for p in raw):
        return [
            Error(
                f"AUTHGUARD_REPORT_ONLY is {raw!r}; every part is enforced.",
                hint=f"A list of part names, some of {sorted(REPORT_ONLY_PARTS)} (default []).",
                id=Codes.REPORT_ONLY_INVALID,
            )
        ]
    unknown = sorted(set(raw) - REPORT_ONLY_PARTS)
    if unknown:
        messages.append(
            Error(
                f"AUTHGUARD_REPORT_ONLY names unknown parts {unknown}; they are enforced.",
                hint=f"Parts: {sorted(REPORT_ONLY_PARTS)}. Sensitive actions (withdrawals, bank accounts) "
                "have no report-only mode.",
                id=Codes.REPORT_ONLY_INVALID,
            )
        )
    refused = sorted(set(raw) & PRESET_ENFORCED_PARTS) if app_settings.JSDA else []
    if refused:
        messages.append(
            Error(
                f"AUTHGUARD_REPORT_ONLY lists {refused} under the jsda-2025 preset; they are enforced "
                "anyway.",
                hint="The JSDA 2025 guidelines make multi-factor authentication at sign-in mandatory: roll "
                "out in report-only mode before turning the preset on, or remove these parts.",
                id=Codes.REPORT_ONLY_UNDER_PRESET,
            )
        )
    parts = sorted(app_settings.REPORT_ONLY)
    if parts:
        # SECURITY: a trial mode that is forgotten is an open door; it is named on every check.
        messages.append(
            Warning(
                f"authguard runs REPORT-ONLY for {parts}: their decisions are recorded and logged, and "
                "nothing is enforced (no step-up, no refusal, no hold).",
                hint="For the first weeks of a rollout only (docs/integration.md). Remove the parts from "
                "AUTHGUARD_REPORT_ONLY to enforce them.",
                id=Codes.REPORT_ONLY_ON,
            )
        )
    return messages
