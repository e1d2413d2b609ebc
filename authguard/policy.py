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

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from .models import PolicyVersion
    from .risk import RiskSignal

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
    """A complete policy, ready to score with: what :func:`authguard.risk.score_login` uses by default.

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


# -- validation and building ------------------------------------------------------------------------


def effective_signal_config(signal_options: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``AUTHGUARD_RISK_SIGNALS`` with ``signal_options`` (``{dotted name: {option: value}}``) merged in."""
    from .conf import app_settings

    overrides = signal_options or {}
    return [
        {"NAME": entry["NAME"], "OPTIONS": {**entry.get("OPTIONS", {}), **overrides.get(entry["NAME"], {})}}
        for entry in app_settings.RISK_SIGNALS
    ]


def policy_problem(
    *, thresholds: Any = None, signal_options: Any = None, shadow_signals: Any = None
) -> str | None:
    """Say what is wrong with a proposed policy, or None when it is valid.

    Uses the same checks as the system checks (``authguard.E001``/``E002``), so a value the settings
    would refuse is refused here too, with the same message.
    """
    from .checks import risk_signals_problem, thresholds_problem
    from .conf import app_settings

    if thresholds:
        if not isinstance(thresholds, dict):
            return "thresholds: it must be a dict"
        problem = thresholds_problem({**app_settings.THRESHOLDS, **thresholds})
        if problem:
            return f"thresholds: {problem}"
    if signal_options:
        if not isinstance(signal_options, dict):
            return "signal options: they must be a dict of {signal name: {option: value}}"
        configured = {entry["NAME"] for entry in app_settings.RISK_SIGNALS}
        for name, options in signal_options.items():
            if name not in configured:
                return f"signal options: {name!r} is not a configured signal"
            if not isinstance(options, dict):
                return f"signal options: the options of {name!r} must be a dict"
        problem = risk_signals_problem(effective_signal_config(signal_options))
        if problem:
            return f"signal options: {problem}"
    if shadow_signals:
        problem = risk_signals_problem(shadow_signals)
        if problem:
            return f"shadow signals: {problem}"
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
    from .conf import app_settings
    from .risk import build_signals, configured_signals

    problem = policy_problem(
        thresholds=thresholds, signal_options=signal_options, shadow_signals=shadow_signals
    )
    if problem:
        raise InvalidPolicy(problem)
    config = effective_signal_config(signal_options)
    # Without overrides the configured (already built) signals are reused: nothing to rebuild.
    signals = build_signals(config) if signal_options else configured_signals()
    shadow = list(shadow_signals or [])
    return Policy(
        version=version,
        thresholds=Thresholds.from_mapping({**app_settings.THRESHOLDS, **(thresholds or {})}),
        signals=tuple(signals),
        shadow_signals=build_signals(shadow) if shadow else (),
        signal_config=tuple(config),
        shadow_config=tuple(shadow),
    )


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

    from .models import PolicyVersion

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
    from .models import PolicyVersion

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
    from .conf import app_settings

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
    from .models import PolicyVersion

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
