"""The order guard: its rules, the portal's hooks, the confirmation settings, the price tolerance of a fill,
and exposure over days."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from authguard.checks.base import conf_defaults
from authguard.checks.codes import Codes
from authguard.conf import MAX_ORDER_PRICE_TOLERANCE, order_price_tolerance
from authguard.orders.rules import Exposure, build_rules, rules_problem

ORDER_HOOKS = ("ORDER_PORTFOLIO", "ORDER_INSTRUMENT", "ORDER_EXECUTOR")


@register(Tags.security)
def check_order_guard(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The order rules import and accept their OPTIONS; the portal hooks are set and import; the
    confirmation settings make sense. Hooks are only required once the guard is configured at all."""
    errors: list[CheckMessage] = []
    raw = getattr(settings, "AUTHGUARD_ORDER_RULES", None)
    if raw is not None:
        problem = rules_problem(raw)
        if problem:
            errors.append(
                Error(
                    f"AUTHGUARD_ORDER_RULES is invalid: {problem}.",
                    hint='Use a list of {"NAME": "dotted.path.OrderRule", "OPTIONS": {...}}.',
                    id=Codes.ORDER_RULES_INVALID,
                )
            )
    configured = [name for name in ORDER_HOOKS if getattr(settings, "AUTHGUARD_" + name, None)]
    if configured:
        for name in ORDER_HOOKS:
            path = getattr(settings, "AUTHGUARD_" + name, None)
            if not path:
                errors.append(
                    Error(
                        f"AUTHGUARD_{name} is not set, but other order-guard hooks are.",
                        hint="The order guard needs all three hooks: portfolio, instrument and executor.",
                        id=Codes.ORDER_HOOK_MISSING,
                    )
                )
                continue
            try:
                target = import_string(path) if isinstance(path, str) else None
            except ImportError as exc:
                target, reason = None, str(exc)
            else:
                reason = "it must be a dotted path"
            if target is None or not _hook_shape_ok(name, target):
                why = reason if target is None else "wrong shape"
                errors.append(
                    Error(
                        f"AUTHGUARD_{name} {path!r} is not usable: {why}.",
                        hint="Portfolio and instrument hooks are callables; an executor has execute() and "
                        "release().",
                        id=Codes.ORDER_HOOK_INVALID,
                    )
                )
    methods = getattr(settings, "AUTHGUARD_CONFIRMATION_METHODS", conf_defaults.CONFIRMATION_METHODS)
    if not isinstance(methods, list | tuple) or not methods or not set(methods) <= {"passkey", "totp"}:
        errors.append(
            Error(
                f"AUTHGUARD_CONFIRMATION_METHODS is invalid: {methods!r}.",
                hint='Use a non-empty list of "passkey" and "totp".',
                id=Codes.CONFIRMATION_METHODS_INVALID,
            )
        )
    seconds = getattr(settings, "AUTHGUARD_CONFIRMATION_SECONDS", conf_defaults.CONFIRMATION_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 30 <= seconds <= 3600:
        errors.append(
            Error(
                f"AUTHGUARD_CONFIRMATION_SECONDS is invalid: {seconds!r}.",
                hint="Use a whole number of seconds from 30 to 3600 "
                f"(default {conf_defaults.CONFIRMATION_SECONDS}).",
                id=Codes.CONFIRMATION_SECONDS_INVALID,
            )
        )
    tolerance = getattr(settings, "AUTHGUARD_ORDER_PRICE_TOLERANCE", conf_defaults.ORDER_PRICE_TOLERANCE)
    if order_price_tolerance(tolerance) is None:
        errors.append(
            Error(
                f"AUTHGUARD_ORDER_PRICE_TOLERANCE is invalid: {tolerance!r}.",
                hint=f"Use a number from 0 to {MAX_ORDER_PRICE_TOLERANCE} (a share of the checked price; "
                f"default {conf_defaults.ORDER_PRICE_TOLERANCE}). Until it is fixed orders fill only at "
                "the exact checked price.",
                id=Codes.ORDER_PRICE_TOLERANCE_INVALID,
            )
        )
    return errors


def _hook_shape_ok(name: str, target: Any) -> bool:
    if name != "ORDER_EXECUTOR":
        return callable(target)
    return callable(getattr(target, "execute", None)) and callable(getattr(target, "release", None))


@register(Tags.security)
def check_order_exposure(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """W120: a custom ``AUTHGUARD_ORDER_RULES`` without :class:`authguard.order_rules.Exposure` judges orders
    in 24-hour windows only, which a patient attacker walks around over days (issue 11)."""
    raw = getattr(settings, "AUTHGUARD_ORDER_RULES", None)
    if raw is None or not raw or rules_problem(raw) is not None:
        return []  # the default list has it; an empty list turns the guard off; E020 reports a broken one
    if any(isinstance(rule, Exposure) for rule in build_rules(raw)):
        return []
    return [
        Warning(
            "AUTHGUARD_ORDER_RULES has no authguard.order_rules.Exposure rule.",
            hint="Without it the order guard sums orders over 24 hours only: selling up to the limit every "
            "day, buying a thin stock first in chunks, or waiting for the window to roll all go through. Add "
            '{"NAME": "authguard.order_rules.Exposure", "OPTIONS": {}}.',
            id=Codes.ORDER_EXPOSURE_MISSING,
        )
    ]
