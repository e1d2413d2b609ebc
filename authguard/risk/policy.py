"""Policy: how a 0..100 risk score becomes a decision, and the run-time policy admins edit.

The policy is data (thresholds, signal options, shadow signals) plus one pure function, so the live
login path, ``authguard replay`` and the admin's backtests all decide in exactly the same way.

Run-time policy: each save is a new :class:`~authguard.models.PolicyVersion` row (who, when, why, what),
the newest one is in force, and :func:`current_policy` serves it from an in-process memo keyed by the
version number kept in Django's cache. A login therefore costs one cache read and no query; a saved
change is seen by every process at its next login (no restart), as long as the processes share the
cache (Redis in production; the demo's single process uses its local memory cache).

This module is imported by ``models`` (for :class:`Action`), so it imports models and the risk engine
lazily, inside functions.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from authguard.models import PolicyVersion
    from authguard.risk.engine import RiskSignal

logger = logging.getLogger(__name__)

#: The cache key holding the number of the policy version in force (0: none saved, settings only).
VERSION_CACHE_KEY = "authguard:policy:version"
VERSION_CACHE_SECONDS = 3600


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


class InvalidPolicy(ValueError):
    """A proposed policy that would not work; the message says what is wrong (shown to the admin)."""


@dataclass(frozen=True)
class Policy:
    """A complete policy, ready to score with: what :func:`authguard.risk.engine.score_login` uses by default.

    ``version`` is the :class:`~authguard.models.PolicyVersion` number, ``0`` for the settings alone and
    ``None`` for a proposed (unsaved) policy. ``signal_config`` and ``shadow_config`` are the effective
    ``[{"NAME", "OPTIONS"}]`` lists, e.g. for a backtest or a display.
    """

    version: int | None
    thresholds: Thresholds
    signals: tuple[RiskSignal, ...]
    shadow_signals: tuple[RiskSignal, ...] = ()
    signal_config: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    shadow_config: tuple[dict[str, Any], ...] = field(default=(), compare=False)


# -- the signals in words (the policy editor, and the messages of policy_problem) ----------------------

#: Kinds of signal options, as the policy editor types its fields.
INT, FLOAT, BOOL, INT_LIST, FLOAT_LIST, TEXT_LIST = (
    "int",
    "float",
    "bool",
    "int_list",
    "float_list",
    "text_list",
)

#: Bounds of the usual kinds of options: points on the 0..100 score, a share, a count, a distance.
_POINTS = (-100, 100)
_SHARE = (0, 1)
_COUNT = (0, None)


@dataclass(frozen=True)
class OptionInfo:
    """One option of a risk signal, in words: its key (``OPTIONS``), label, kind, default and bounds."""

    key: str
    label: str
    kind: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class SignalInfo:
    """A risk signal in words: its dotted path (the internal key only), name, one-sentence description and
    options (in the order of its ``defaults``)."""

    name: str
    label: str
    description: str
    options: tuple[OptionInfo, ...]


# (name, description, {option: (label, bounds)}); labels are translated when described.
_SIGNALS: dict[str, tuple[Any, Any, dict[str, tuple[Any, tuple[float | None, float | None] | None]]]] = {
    "authguard.risk_signals.NetworkLists": (
        _("Allow and deny lists"),
        _("Networks, providers and countries your team put on the allow list or the deny list."),
        {
            "deny_score": (_("Points for a network on the deny list"), _POINTS),
            "allow_score": (_("Points for a network on the allow list"), _POINTS),
        },
    ),
    "authguard.risk_signals.StatisticalModel": (
        _("Familiar network and browser"),
        _("Compares the network and browser of a sign-in with the account's history and with everyone's."),
        {
            "ip_weights": (_("Weights of address, /24 network, provider and country"), _SHARE),
            "ua_weights": (_("Weights of browser signature, browser, system and device type"), _SHARE),
            "points_per_doubling": (_("Points each time a sign-in is twice as unlikely"), (0, 100)),
            "min_points": (_("Fewest points (a very familiar sign-in)"), _POINTS),
            "max_points": (_("Most points (a very unusual sign-in)"), _POINTS),
            "user_agent_can_lower": (_("A familiar browser signature may lower the score"), None),
            "browser_update_neutral": (_("A browser update on a known device is not unusual"), None),
            "rare_country_share": (_("Share of sign-ins below which a country is rare"), _SHARE),
            "rare_country_min_population": (
                _("Sign-ins site-wide before any country counts as rare"),
                _COUNT,
            ),
            "rare_country_without_history": (
                _("Points for a rare country on an account with no history"),
                _POINTS,
            ),
        },
    ),
    "authguard.risk_signals.DeviceCookie": (
        _("Known browser"),
        _("Knows the browsers an account used before by their device cookie; checks they fit their past."),
        {
            "new_device": (_("Points for a browser never seen on the account"), _POINTS),
            "new_device_new_network": (_("More points when that browser is on a new network"), _POINTS),
            "copied_user_agent": (_("Points for a copied browser signature without the cookie"), _POINTS),
            "known_device": (_("Points for a known browser"), _POINTS),
            "remembered_device": (_("Points for a remembered browser"), _POINTS),
            "remembered_device_elsewhere": (_("Points for a remembered browser in a new place"), _POINTS),
            "account_min_logins": (_("Sign-ins before new networks count against a browser"), _COUNT),
            "device_new_network": (_("Points for a known browser on a network it never used"), _POINTS),
            "device_new_network_known_to_account": (_("Points when the account used that network"), _POINTS),
            "device_new_city": (_("Points for a known browser in a new city"), _POINTS),
            "portable_factor": (_("Share of the new-city points for a phone or tablet"), _SHARE),
            "device_city_min_km": (_("Distance before a city counts as new (km)"), _COUNT),
            "device_user_agent_backwards": (
                _("Points when a known browser reports an older version"),
                _POINTS,
            ),
            "device_user_agent_sideways": (
                _("Points when a known browser reports another browser or system"),
                _POINTS,
            ),
            "stale_device_days": (_("Days unused before a known browser is stale"), _COUNT),
            "stale_device": (_("Points for a stale known browser"), _POINTS),
            "device_max_kmh": (_("Fastest believable speed of a known browser (km/h)"), _COUNT),
            "device_min_km": (_("Shortest move checked for a known browser (km)"), _COUNT),
            "device_moved": (_("Points for a known browser that moved too fast"), _POINTS),
            "device_binding_missing": (
                _("Points for a device-bound cookie without its key's proof"),
                _POINTS,
            ),
        },
    ),
    "authguard.risk_signals.ImpossibleTravel": (
        _("Impossible travel"),
        _("Flags a sign-in too far from the previous one to have travelled in the time between."),
        {
            "max_kmh": (_("Fastest believable travel (km/h)"), _COUNT),
            "min_km": (_("Shortest jump checked (km)"), _COUNT),
            "score": (_("Points for impossible travel"), _POINTS),
            "unknown_hours": (_("Hours in which an address nobody can place counts"), _COUNT),
            "unknown_score": (_("Points for a move that cannot be checked"), _POINTS),
        },
    ),
    "authguard.risk_signals.NetworkHop": (
        _("Network hop"),
        _("Flags a new browser on another network minutes after the last sign-in, as a phishing relay does."),
        {
            "minutes": (_("Minutes after the last sign-in"), _COUNT),
            "score": (_("Points for a network hop"), _POINTS),
        },
    ),
    "authguard.risk_signals.AnonymousNetwork": (
        _("Anonymous and hosting networks"),
        _("Adds risk for Tor, proxies, VPNs, cloud hosting and addresses no database knows."),
        {
            "tor": (_("Points for Tor"), _POINTS),
            "public_proxy": (_("Points for a public proxy"), _POINTS),
            "hosting": (_("Points for a hosting or cloud network"), _POINTS),
            "vpn": (_("Points for a VPN"), _POINTS),
            "residential_proxy": (_("Points for a residential proxy"), _POINTS),
            "unknown": (_("Points for an address no database knows"), _POINTS),
            "habitual_share": (_("Share of the account's sign-ins that makes a network habitual"), _SHARE),
            "habitual_factor": (_("Share of the points kept on a habitual network"), _SHARE),
            "extra_hosting_asns": (_("More hosting networks (AS numbers)"), _COUNT),
        },
    ),
    "authguard.risk_signals.Velocity": (
        _("Failed sign-ins"),
        _("Counts the last hour's failed sign-ins on the account, from the address or network, site-wide."),
        {
            "user_failures": (_("Failures on one account before they count"), _COUNT),
            "user_failures_score": (_("Points for failures on one account"), _POINTS),
            "ip_failures": (_("Failures from one address before they count"), _COUNT),
            "ip_failures_score": (_("Points for failures from one address"), _POINTS),
            "ip_users": (_("Accounts tried from one address before they count"), _COUNT),
            "ip_users_score": (_("Points for many accounts from one address"), _POINTS),
            "network_failures": (_("Failures from one network before they count"), _COUNT),
            "network_failures_score": (_("Points for failures from one network"), _POINTS),
            "site_failures": (_("Failures across the site before a wave counts"), _COUNT),
            "site_surge": (_("Times the usual hourly failures that make a wave"), _COUNT),
            "site_failures_score": (_("Points during a wave"), _POINTS),
        },
    ),
    "authguard.risk_signals.UnusualHour": (
        _("Unusual hour"),
        _("Flags a sign-in at an hour the account almost never signs in."),
        {
            "min_history": (_("Sign-ins before hours are compared"), _COUNT),
            "max_share": (_("Share of sign-ins below which an hour is unusual"), _SHARE),
            "score": (_("Points for an unusual hour"), _POINTS),
        },
    ),
    "authguard.risk_signals.AutomationClient": (
        _("Automated clients"),
        _("Flags headless browsers, command-line tools, scripts and sign-ins without a browser signature."),
        {"score": (_("Points for an automated client"), _POINTS)},
    ),
    "authguard.risk_signals.AccountContext": (
        _("Account state"),
        _("The account itself: no history yet, unused for months, a new password or a changed factor."),
        {
            "no_history": (_("Points for an account with no history"), _POINTS),
            "first_login_elsewhere": (
                _("Points for a first sign-in from abroad or a hosting network"),
                _POINTS,
            ),
            "home_countries": (_("Home countries (two-letter codes)"), None),
            "dormant_days": (_("Days unused before an account is dormant"), _COUNT),
            "dormant": (_("Points for a dormant account"), _POINTS),
            "password_changed": (_("Points for a password changed since the last sign-in"), _POINTS),
            "factor_change_days": (_("Days a changed sign-in factor counts as recent"), _COUNT),
            "factor_changed": (_("Points for a recently changed sign-in factor"), _POINTS),
        },
    ),
    "authguard.feedback.ConfirmedFraudNetworks": (
        _("Networks with confirmed fraud"),
        _("Adds risk for a network where analysts confirmed fraud on other accounts."),
        {
            "days": (_("Days of confirmed fraud to look back on"), _COUNT),
            "embargo_hours": (_("Hours before a confirmation counts"), _COUNT),
            "min_accounts": (_("Accounts with fraud before a network counts"), _COUNT),
            "prefix_score": (_("Points for such a network"), _POINTS),
            "min_asn_accounts": (_("Accounts with fraud before a provider counts"), _COUNT),
            "min_asn_fraud_share": (_("Share of fraud before a provider counts"), _SHARE),
            "asn_score": (_("Points for such a provider"), _POINTS),
            "max_score": (_("Most points in all"), _POINTS),
        },
    ),
}

#: Options whose default is an empty list: what their items are.
_EMPTY_LIST_KINDS = {"extra_hosting_asns": INT_LIST}


def _kind(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, list | tuple):
        if not value:
            return _EMPTY_LIST_KINDS.get(key, TEXT_LIST)
        if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            return INT_LIST
        if all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
            return FLOAT_LIST
        return TEXT_LIST
    return TEXT_LIST


def _plain(text: str) -> str:
    """A docstring's first sentence without reStructuredText markup (signals this module does not know)."""
    import re

    text = re.sub(r":[a-z]+:`~?([^`]*)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = text.replace("``", "").replace("`", "")
    first = " ".join(text.strip().split("\n\n", 1)[0].split())
    return first.split(". ", 1)[0].rstrip(".") + "." if first else ""


def describe_signal(name: str) -> SignalInfo:
    """A configured (or shadow) signal in words, from its dotted path (which it never shows).

    Signals of other packages are named after their class ("UnusualHour" -> "Unusual hour") and described
    by the first sentence of their docstring, markup removed.
    """
    import re

    from django.utils.module_loading import import_string

    try:
        klass: Any = import_string(name)
    except ImportError:
        klass = None
    defaults: dict[str, Any] = dict(getattr(klass, "defaults", {}) or {})
    known = _SIGNALS.get(name)
    class_name = name.rsplit(".", 1)[-1]
    if known is not None:
        label, description, option_words = str(known[0]), str(known[1]), known[2]
    else:
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", class_name)
        label = str(getattr(klass, "verbose_name", "") or words[:1].upper() + words[1:].lower())
        description = _plain(getattr(klass, "__doc__", "") or "")
        option_words = {}
    options = []
    for key, default in defaults.items():
        words_bounds = option_words.get(key)
        option_label = str(words_bounds[0]) if words_bounds else key.replace("_", " ").capitalize()
        bounds = words_bounds[1] if words_bounds and words_bounds[1] else (None, None)
        options.append(OptionInfo(key, option_label, _kind(default, key), default, bounds[0], bounds[1]))
    return SignalInfo(name=name, label=label, description=description, options=tuple(options))


# -- validation and building ------------------------------------------------------------------------


def effective_signal_config(signal_options: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``AUTHGUARD_RISK_SIGNALS`` with ``signal_options`` (``{dotted name: {option: value}}``) merged in."""
    from authguard.conf import app_settings

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
    from authguard.checks import thresholds_problem
    from authguard.conf import app_settings

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

    The same rules as :class:`authguard.risk.engine.RiskSignal` (known options; a number where the default is
    one), then the signal's own checks (it is built once, as the system check does).
    """
    from django.utils.module_loading import import_string

    from authguard.risk.engine import RiskSignal

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
    try:
        klass(**options)
    except (TypeError, ValueError) as exc:
        return gettext("%(signal)s: the options are refused (%(error)s)") % {"signal": signal, "error": exc}
    return None


def build_policy(
    *,
    thresholds: dict[str, int] | None = None,
    signal_options: dict[str, Any] | None = None,
    shadow_signals: Sequence[dict[str, Any]] | None = None,
    version: int | None = None,
) -> Policy:
    """Build a policy from its parts (the settings fill what is not given). Raises :class:`InvalidPolicy`.

    Use it for a proposed policy (a backtest before saving); :func:`current_policy` for the one in force.
    """
    from authguard.conf import app_settings
    from authguard.risk.engine import build_signals, configured_signals

    problem = policy_problem(
        thresholds=thresholds, signal_options=signal_options, shadow_signals=shadow_signals
    )
    if problem:
        raise InvalidPolicy(problem)
    config = effective_signal_config(signal_options)
    # Without overrides the configured (already built) signals are reused: nothing to rebuild.
    signals = build_signals(config) if signal_options else configured_signals()
    shadow = list(shadow_signals or [])
    built_shadow = build_signals(shadow) if shadow else ()
    if built_shadow:
        # A report-only entry naming a configured signal is a trial of new values for it: what it would
        # decide is the score with the trial's points *in place of* the points of the values in force.
        enforced = {entry["NAME"]: signal for entry, signal in zip(config, signals, strict=True)}
        trial = _trial_class()
        built_shadow = tuple(
            trial(built, enforced[entry["NAME"]]) if entry["NAME"] in enforced else built
            for entry, built in zip(shadow, built_shadow, strict=True)
        )
    return Policy(
        version=version,
        thresholds=Thresholds.from_mapping({**app_settings.THRESHOLDS, **(thresholds or {})}),
        signals=tuple(signals),
        shadow_signals=built_shadow,
        signal_config=tuple(config),
        shadow_config=tuple(shadow),
    )


#: Code of the report-only finding that takes back the points of the values in force during a trial.
TRIAL_REPLACES = "trial_replaces"


@functools.cache
def _trial_class() -> Callable[[RiskSignal, RiskSignal], RiskSignal]:
    """The shadow trial of new values for a configured signal (a class made once: ``risk`` imports
    this module, so its base class is imported here)."""
    from authguard.risk.engine import Finding, RiskSignal

    class Trial(RiskSignal):
        """The trial's findings, and one taking back the points the values in force gave (if any), so the
        ``shadow_decision`` is the score with the trial's values in their place, not on top of them."""

        def __init__(self, trial: RiskSignal, enforced: RiskSignal) -> None:
            self.trial, self.enforced, self.options = trial, enforced, trial.options

        def evaluate(self, evidence: Any) -> list[Finding]:
            found = list(self.trial.evaluate(evidence))
            replaced = sum(f.score for f in self.enforced.evaluate(evidence))
            if replaced:
                found.append(
                    Finding(
                        TRIAL_REPLACES,
                        -replaced,
                        _("The points of the values in force, which the trial replaces"),
                        {"signal": type(self.enforced).__name__},
                    )
                )
            return found

    return Trial


def policy_of(version: PolicyVersion | None) -> Policy:
    """The policy a saved version describes (``None``: the settings alone, version 0)."""
    if version is None:
        return build_policy(version=0)
    return build_policy(
        thresholds=version.thresholds,
        signal_options=version.signal_options,
        shadow_signals=version.shadow_signals,
        version=version.pk,
    )


# -- the policy in force ----------------------------------------------------------------------------

_lock = threading.Lock()
_memo: dict[int, Policy] = {}


def _clear_memo(**kwargs: Any) -> None:
    with _lock:
        _memo.clear()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("AUTHGUARD_THRESHOLDS", "AUTHGUARD_RISK_SIGNALS", "AUTHGUARD_PRESET"):
        _clear_memo()


setting_changed.connect(_settings_changed)


def _version_in_force() -> int:
    from django.core.cache import cache

    from authguard.models import PolicyVersion

    try:
        cached = cache.get(VERSION_CACHE_KEY)
    except Exception:
        logger.warning("authguard: cache unavailable; reading the policy version from the database")
        cached = None
    if isinstance(cached, int):
        return cached
    latest = PolicyVersion.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    try:
        cache.set(VERSION_CACHE_KEY, latest, VERSION_CACHE_SECONDS)
    except Exception:
        logger.warning("authguard: could not cache the policy version")
    return latest


def current_policy() -> Policy:
    """The policy in force: the newest saved version, or the settings alone.

    One cache read per call; the database only when the cache has no version number (after a restart
    or an eviction), and the policy is rebuilt only when the version changed. If the saved policy cannot
    be read at all, the settings' policy is used (and the failure logged): the configured baseline.
    """
    from authguard.models import PolicyVersion

    try:
        version = _version_in_force()
        policy = _memo.get(version)
        if policy is not None:
            return policy
        row = PolicyVersion.objects.filter(pk=version).first() if version else None
    except Exception:
        # The database is unreachable: fall back to the deployment's configured baseline. The login's own
        # evidence cannot be read either then, so score_login steps it up (fails closed) regardless.
        logger.exception("authguard: could not read the run-time policy; using the settings")
        version, row = 0, None
        policy = _memo.get(0)
        if policy is not None:
            return policy
    try:
        policy = policy_of(row)
    except InvalidPolicy:
        # A version that settings changes made invalid (a signal removed, say): keep scoring safely.
        logger.exception("authguard: policy version %s is no longer valid; using the settings", version)
        policy = policy_of(None)
    with _lock:
        _memo[version] = policy
    return policy


def current_thresholds() -> Thresholds:
    """The thresholds of the settings (``AUTHGUARD_THRESHOLDS``), without reading the run-time policy.

    ``authguard replay`` defaults to these (it never touches the database); live scoring uses
    :func:`current_policy`.
    """
    from authguard.conf import app_settings

    return Thresholds.from_mapping(app_settings.THRESHOLDS)


def save_policy(
    *,
    by: Any,
    comment: str,
    thresholds: dict[str, int] | None = None,
    signal_options: dict[str, Any] | None = None,
    shadow_signals: list[dict[str, Any]] | None = None,
) -> PolicyVersion:
    """Validate and save a new policy version, in force from the next login (in every process).

    Raises :class:`InvalidPolicy` with a message for invalid values; nothing is saved then. The
    version records ``by`` (the admin), the time and ``comment``: the policy's audit trail.
    """
    from authguard.models import PolicyVersion

    problem = policy_problem(
        thresholds=thresholds, signal_options=signal_options, shadow_signals=shadow_signals
    )
    if problem:
        raise InvalidPolicy(problem)
    version = PolicyVersion.objects.create(
        created_by=by,
        comment=str(comment or "")[:500],
        thresholds=dict(thresholds or {}),
        signal_options=dict(signal_options or {}),
        shadow_signals=list(shadow_signals or []),
    )
    logger.warning(
        "authguard: policy v%s saved by %s: thresholds=%s signal_options=%s shadow=%s (%s)",
        version.pk,
        getattr(by, "pk", None),
        version.thresholds,
        version.signal_options,
        [entry.get("NAME") for entry in version.shadow_signals],
        version.comment,
    )
    return version


def version_saved(version: PolicyVersion) -> None:
    """Publish a newly saved version (called by ``PolicyVersion.save``): after commit, it is in force."""
    from django.core.cache import cache
    from django.db import transaction

    def publish() -> None:
        _clear_memo()
        try:
            cache.set(VERSION_CACHE_KEY, version.pk, VERSION_CACHE_SECONDS)
        except Exception:
            # Other processes see it when their cached number expires (VERSION_CACHE_SECONDS).
            logger.exception("authguard: could not publish policy version %s", version.pk)

    # Forget this process's memo at once too: a test database may reuse a rolled-back version's number.
    _clear_memo()
    transaction.on_commit(publish)
