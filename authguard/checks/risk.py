"""The login risk engine: thresholds, risk signals, trusted proxies and the network allow/deny lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from authguard.checks.codes import Codes
from authguard.risk.policy_validation import risk_signals_problem as risk_signals_problem
from authguard.validators import invalid_networks, network_list_entry_ok, thresholds_problem


@register(Tags.security)
def check_thresholds(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "AUTHGUARD_THRESHOLDS", {})
    problem = thresholds_problem(raw)
    if problem:
        return [
            Error(
                f"AUTHGUARD_THRESHOLDS is invalid: {problem}.",
                hint='Use {"step_up": int, "deny": int} with 0 <= step_up <= deny <= 100.',
                id=Codes.THRESHOLDS_INVALID,
            )
        ]
    return []


@register(Tags.security)
def check_risk_signals(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "AUTHGUARD_RISK_SIGNALS", None)
    if raw is None:
        return []
    problem = risk_signals_problem(raw)
    if problem:
        return [
            Error(
                f"AUTHGUARD_RISK_SIGNALS is invalid: {problem}.",
                hint='Use a list of {"NAME": "dotted.path.Signal", "OPTIONS": {...}}.',
                id=Codes.RISK_SIGNALS_INVALID,
            )
        ]
    return []


@register(Tags.security)
def check_trusted_proxies(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "AUTHGUARD_TRUSTED_PROXIES", [])
    bad = invalid_networks(raw) if isinstance(raw, list | tuple) else [repr(raw)]
    if bad:
        return [
            Error(
                f"AUTHGUARD_TRUSTED_PROXIES holds entries that are not IP networks: {', '.join(bad)}.",
                hint='Use a list of CIDRs such as ["10.0.0.0/8", "2001:db8::/32"].',
                id=Codes.TRUSTED_PROXIES_INVALID,
            )
        ]
    return []


@register(Tags.security)
def check_network_lists(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in ("NETWORK_ALLOWLIST", "NETWORK_DENYLIST"):
        raw = getattr(settings, "AUTHGUARD_" + name, [])
        bad = (
            [repr(raw)]
            if not isinstance(raw, list | tuple)
            else [repr(e) for e in raw if not network_list_entry_ok(e)]
        )
        if bad:
            errors.append(
                Error(
                    f"AUTHGUARD_{name} holds invalid entries: {', '.join(bad)}.",
                    hint='Entries are CIDRs ("203.0.113.0/24"), ASNs ("AS64500") or country codes ("JP").',
                    id=Codes.NETWORK_LIST_INVALID,
                )
            )
    return errors
