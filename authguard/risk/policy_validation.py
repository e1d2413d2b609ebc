"""Whether a proposed risk policy is valid: thresholds, signal options and shadow signals, in words.

Pure: it reads the settings and the signal classes, never the database, so the ``PolicyVersion`` model
validates itself with it (``full_clean``) and the policy editor, the system checks and replay share it.
"""

from __future__ import annotations

import math
from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext

from authguard.conf import app_settings
from authguard.plugins import plugin_list_problem
from authguard.risk.findings import RiskSignal
from authguard.risk.signal_info import (
    BOOL,
    FLOAT,
    FLOAT_LIST,
    INT,
    INT_LIST,
    TEXT_LIST,
    OptionInfo,
    describe_signal,
)
from authguard.validators import thresholds_problem

#: The largest magnitude of a number option (or list item) on a side without a bound of its own: a sane
#: number, exact as a float and storable as a bigint.
NUMBER_LIMIT = 2**53


def effective_signal_config(signal_options: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``AUTHGUARD_RISK_SIGNALS`` with ``signal_options`` (``{dotted name: {option: value}}``) merged in."""
    overrides = signal_options or {}
    return [
        {"NAME": entry["NAME"], "OPTIONS": {**entry.get("OPTIONS", {}), **overrides.get(entry["NAME"], {})}}
        for entry in app_settings.RISK_SIGNALS
    ]


def policy_problem(
    *, thresholds: Any = None, signal_options: Any = None, shadow_signals: Any = None
) -> str | None:
    """Say what is wrong with a proposed policy, or None when it is valid.

    The checks are those of the system checks (``authguard.E001``/``E002``), so a value the settings
    would refuse is refused here too; the message names the signal and the option in words (the signal's
    name from :func:`describe_signal`, the option's key after its label) rather than a position in a list.
    """
    if thresholds:
        if not isinstance(thresholds, dict):
            return gettext("Thresholds: they must be a dict of {'step_up': int, 'deny': int}")
        problem = thresholds_problem({**app_settings.THRESHOLDS, **thresholds})
        if problem:
            return gettext("Thresholds: %(problem)s") % {"problem": problem}
    if signal_options:
        if not isinstance(signal_options, dict):
            return gettext("Signal options: they must be a dict of {signal name: {option: value}}")
        configured = {entry["NAME"] for entry in app_settings.RISK_SIGNALS}
        for name, options in signal_options.items():
            if name not in configured:
                return gettext("Signal options: %(name)r is not a configured signal") % {"name": name}
            if not isinstance(options, dict):
                return gettext("%(signal)s: the options must be a dict of {option: value}") % {
                    "signal": describe_signal(name).label
                }
        for entry in effective_signal_config(signal_options):
            if entry["NAME"] in signal_options:
                problem = signal_problem(entry["NAME"], entry["OPTIONS"])
                if problem:
                    return problem
    if shadow_signals:
        if not isinstance(shadow_signals, list | tuple):
            return gettext("Shadow signals: they must be a list of {'NAME': ..., 'OPTIONS': {...}}")
        for entry in shadow_signals:
            if not isinstance(entry, dict) or not isinstance(entry.get("NAME"), str):
                return gettext("Shadow signals: each one must be a dict with a 'NAME' (a dotted path)")
            unknown = set(entry) - {"NAME", "OPTIONS"}
            if unknown:
                return gettext("Shadow signal %(name)r has unknown keys %(keys)s") % {
                    "name": entry["NAME"],
                    "keys": sorted(unknown),
                }
            options = entry.get("OPTIONS", {})
            if not isinstance(options, dict):
                return gettext("Shadow signal %(name)r: 'OPTIONS' must be a dict") % {"name": entry["NAME"]}
            problem = signal_problem(entry["NAME"], options, report_only=True)
            if problem:
                return problem
    return None


def signal_problem(name: str, options: dict[str, Any], *, report_only: bool = False) -> str | None:
    """Say what is wrong with one signal's options (all of them, merged), naming signal and option in words.

    The same rules as :class:`authguard.risk.findings.RiskSignal` (known options; a number where the default
    is one), then the signal's own checks (it is built once, as the system check does).
    """
    try:
        klass = import_string(name)
    except ImportError as exc:
        return gettext("Signal %(name)r: cannot import it (%(error)s)") % {
            "name": name,
            "error": exc,
        }
    if not (isinstance(klass, type) and issubclass(klass, RiskSignal)):
        return gettext("%(name)r is not a risk signal (a subclass of RiskSignal)") % {"name": name}
    info = describe_signal(name)
    signal = info.label
    if report_only:
        signal = gettext("%(signal)s (shadow)") % {"signal": signal}
    unknown = set(options) - set(klass.defaults)
    if unknown:
        return gettext("%(signal)s: unknown options %(keys)s") % {"signal": signal, "keys": sorted(unknown)}
    for option in info.options:
        if option.key not in options:
            continue
        value = options[option.key]
        if option.kind in (INT, FLOAT) and (isinstance(value, bool) or not isinstance(value, int | float)):
            return gettext("%(signal)s: %(option)s (%(key)s) must be a number") % {
                "signal": signal,
                "option": option.label,
                "key": option.key,
            }
        # (An int is finite, and too large a one for a float: math.isfinite(10**400) raises OverflowError.)
        if option.kind in (INT, FLOAT) and isinstance(value, float) and not math.isfinite(value):
            return gettext("%(signal)s: %(option)s (%(key)s) must be a finite number") % {
                "signal": signal,
                "option": option.label,
                "key": option.key,
            }
        # SECURITY: the editor's typed field refused -1e9 points, but its JSON box (or a plain POST) took
        # them: one approval made a new browser on a proxy score nothing (red team, round thirty-three).
        # An unbounded side is bounded by a sane magnitude all the same (red team, round thirty-nine).
        low = -NUMBER_LIMIT if option.minimum is None else option.minimum
        high = NUMBER_LIMIT if option.maximum is None else option.maximum
        if option.kind in (INT, FLOAT) and not low <= value <= high:
            return gettext("%(signal)s: %(option)s (%(key)s) must be from %(low)s to %(high)s") % {
                "signal": signal,
                "option": option.label,
                "key": option.key,
                "low": _figure(low),
                "high": _figure(high),
            }
        if option.kind in (INT_LIST, FLOAT_LIST):
            problem = _list_problem(signal, option, value)
            if problem:
                return problem
        # SECURITY (availability): ``5`` made the signal raise at every sign-in (a step-up for everyone, a
        # refusal for customers without a factor), ``"JP"`` read as {"J", "P"} (review, round forty).
        listed = isinstance(klass.defaults.get(option.key), list | tuple)  # (not a plug-in's text option)
        if option.kind == TEXT_LIST and listed and not _texts(value):
            return gettext("%(signal)s: %(option)s (%(key)s) must be a list of texts") % {
                "signal": signal,
                "option": option.label,
                "key": option.key,
            }
        if option.kind == BOOL and not isinstance(value, bool):
            return gettext("%(signal)s: %(option)s (%(key)s) must be true or false") % {
                "signal": signal,
                "option": option.label,
                "key": option.key,
            }
    try:
        klass(**options)
    except (TypeError, ValueError) as exc:
        return gettext("%(signal)s: the options are refused (%(error)s)") % {"signal": signal, "error": exc}
    return None


def _texts(value: Any) -> bool:
    """A list of non-empty texts of 200 characters at most, with no NUL and no lone surrogate."""
    return isinstance(value, list | tuple) and all(
        isinstance(item, str)
        and 0 < len(item) <= 200
        and "\x00" not in item
        and item.encode("utf-8", "replace").decode("utf-8") == item
        for item in value
    )


def _figure(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _list_problem(signal: str, option: OptionInfo, value: Any) -> str | None:
    """Say what is wrong with a number-list option's value: a list of whole (or any) numbers within bounds.

    SECURITY: the editor's typed field parsed each item, but its JSON box (or a plain POST) took any list:
    ``["13335"]``, ``[null]``, ``[1.5]`` or ``[-1]`` as AS numbers were reviewed and, once approved, named
    no network at all (red team, round thirty-nine).
    """
    whole = option.kind == INT_LIST
    low = -NUMBER_LIMIT if option.minimum is None else option.minimum
    high = NUMBER_LIMIT if option.maximum is None else option.maximum
    for item in value if isinstance(value, list | tuple) else [None]:
        number = not isinstance(item, bool) and isinstance(item, int if whole else int | float)
        # (NaN compares false: out of bounds; so are the infinities.)
        if not (number and low <= item <= high):
            if whole:
                message = gettext(
                    "%(signal)s: %(option)s (%(key)s) must be whole numbers from %(low)s to %(high)s"
                )
            else:
                message = gettext("%(signal)s: %(option)s (%(key)s) must be numbers from %(low)s to %(high)s")
            return message % {
                "signal": signal,
                "option": option.label,
                "key": option.key,
                "low": _figure(low),
                "high": _figure(high),
            }
    return None


def risk_signals_problem(raw: Any) -> str | None:
    """Say what is wrong with a risk-signal list (import and construct each), or None when valid."""
    return plugin_list_problem(raw, base=RiskSignal)
