"""Policy: how a 0..100 risk score becomes a decision, and the run-time policy admins edit.

The policy is data (thresholds, signal options, shadow signals) plus one pure function, so the live
login path, ``authguard replay`` and the admin's backtests all decide in exactly the same way.

Run-time policy: each save is a new :class:`~authguard.models.PolicyVersion` row (who, when, why, what),
the newest one is in force, and :func:`current_policy` serves it from an in-process memo keyed by the
version number kept in Django's cache. A login therefore costs one cache read and no query; a saved
change is seen by every process at its next login (no restart), as long as the processes share the
cache (Redis in production; the demo's single process uses its local memory cache).

The signals themselves (their base class and loading) are in :mod:`authguard.risk.findings`, their
descriptions in :mod:`authguard.risk.signal_info`; :mod:`authguard.risk.engine` imports this module, never
the reverse. A new version is published by a ``post_save`` receiver of ``PolicyVersion`` connected here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models.signals import post_save
from django.utils.translation import gettext_lazy as _

from authguard.choices import Action as Action
from authguard.conf import app_settings
from authguard.models import PolicyVersion
from authguard.resilience import NO_ANSWER, guarded_cache_call
from authguard.risk.findings import Finding, RiskSignal, build_signals, configured_signals
from authguard.risk.policy_validation import effective_signal_config as effective_signal_config
from authguard.risk.policy_validation import policy_problem as policy_problem
from authguard.risk.policy_validation import signal_problem as signal_problem

# The signals in words moved to risk.signal_info; re-exported for the policy editor, which imports them here.
from authguard.risk.signal_info import BOOL as BOOL
from authguard.risk.signal_info import FLOAT as FLOAT
from authguard.risk.signal_info import FLOAT_LIST as FLOAT_LIST
from authguard.risk.signal_info import INT as INT
from authguard.risk.signal_info import INT_LIST as INT_LIST
from authguard.risk.signal_info import TEXT_LIST as TEXT_LIST
from authguard.risk.signal_info import OptionInfo as OptionInfo
from authguard.risk.signal_info import SignalInfo as SignalInfo
from authguard.risk.signal_info import describe_signal as describe_signal

logger = logging.getLogger(__name__)

#: The cache key holding the number of the policy version in force (0: none saved, settings only).
VERSION_CACHE_KEY = "authguard:policy:version"
VERSION_CACHE_SECONDS = 3600


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


# -- validation and building ------------------------------------------------------------------------


#: Code of the report-only finding that takes back the points of the values in force during a trial.
TRIAL_REPLACES = "trial_replaces"


class Trial(RiskSignal):
    """The shadow trial of new values for a configured signal: the trial's findings, and one taking back the
    points the values in force gave (if any), so the ``shadow_decision`` is the score with the trial's
    values in their place, not on top of them."""

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
        built_shadow = tuple(
            Trial(built, enforced[entry["NAME"]]) if entry["NAME"] in enforced else built
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


def _policy_versions() -> type[PolicyVersion]:
    """The PolicyVersion model."""
    return PolicyVersion


#: The version this process last found in force: used while neither the cache nor the database answers.
_last_version: int | None = None


def _version_in_force() -> int:
    global _last_version
    cached = guarded_cache_call(cache.get, VERSION_CACHE_KEY, what="the policy version", default=NO_ANSWER)
    if isinstance(cached, int):
        _last_version = cached
        return cached
    # SECURITY: a cache that cannot answer never means "no policy": the database says which version is in
    # force.
    latest = _policy_versions().objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    if cached is not NO_ANSWER:
        # Only a cache that answered is written to: a write into a failing cache waits out its timeout too.
        guarded_cache_call(
            cache.set,
            VERSION_CACHE_KEY,
            latest,
            VERSION_CACHE_SECONDS,
            what="the policy version",
            default=None,
        )
    _last_version = latest
    return latest


def current_policy() -> Policy:
    """The policy in force: the newest saved version, or the settings alone.

    One cache read per call; the database only when the cache has no version number (after a restart
    or an eviction) or cannot answer (down, hung, its circuit breaker open), and the policy is rebuilt
    only when the version changed. If the saved policy cannot be read at all, this process's last known
    policy is used, else the settings' policy (and the failure logged): the configured baseline.
    """
    try:
        version = _version_in_force()
        policy = _memo.get(version)
        if policy is not None:
            return policy
        row = _policy_versions().objects.filter(pk=version).first() if version else None
    except Exception:
        # The database is unreachable: keep the policy last in force here, else fall back to the deployment's
        # configured baseline. The login's own evidence cannot be read either then, so score_login steps it up
        # (fails closed) regardless.
        logger.exception(
            "authguard: could not read the run-time policy; using the last known or the settings"
        )
        known = _memo.get(_last_version) if _last_version is not None else None
        if known is not None:
            return known
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
    problem = policy_problem(
        thresholds=thresholds, signal_options=signal_options, shadow_signals=shadow_signals
    )
    if problem:
        raise InvalidPolicy(problem)
    version = _policy_versions().objects.create(
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
    """Publish a newly saved version: after commit, it is in force (in every process sharing the cache)."""

    def publish() -> None:
        _clear_memo()
        # SECURITY: not through the cache's breaker: a breaker this process opened may skip a cache that
        # answers again, and every other process would keep the old version until its cached number expires.
        # An admin's save may wait out one socket timeout instead.
        try:
            cache.set(VERSION_CACHE_KEY, version.pk, VERSION_CACHE_SECONDS)
        except Exception:
            # Processes whose cache fails read the database; the others see it when their cached number
            # expires (VERSION_CACHE_SECONDS).
            logger.exception("authguard: could not publish policy version %s", version.pk)

    # Forget this process's memo at once too: a test database may reuse a rolled-back version's number.
    _clear_memo()
    transaction.on_commit(publish)


def _publish_saved_version(
    sender: Any, instance: PolicyVersion, created: bool, raw: bool, **kwargs: Any
) -> None:
    # A fixture load (raw) is not a policy change; versions are only ever created, never edited.
    if created and not raw:
        version_saved(instance)


# The lazy "app_label.Model" sender needs no models import; the receiver is live once this module is imported
# (authguard's AppConfig.ready must import it).
post_save.connect(
    _publish_saved_version,
    sender="authguard.PolicyVersion",
    dispatch_uid="authguard.risk.policy.version_saved",
)
