"""The login flow: score every password login, record it, and act on the decision.

Every login through Django's ``authenticate``/``login`` reaches :func:`after_password_login` (through the
``user_logged_in`` receiver) and every failure reaches :func:`after_failed_login`, whether it came from
an HTML form, a JSON API or the admin. :func:`password_login` gives API views the same decision as a
plain result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from . import stepup
from .conf import app_settings
from .context import Geo, LoginContext, build_context, client_ip, parse_user_agent
from .history import DatabaseHistory
from .models import LoginEvent, Outcome
from .policy import Action
from .risk import Assessment, score_login
from .velocity import read_counts

logger = logging.getLogger(__name__)

# The request attribute through which the login receiver hands its decision to views and middleware.
DECISION_ATTR = "_authguard_decision"
# Set by ThrottleBackend when it refused an attempt without checking the password.
THROTTLED_ATTR = "_authguard_throttled"


@dataclass(frozen=True)
class LoginDecision:
    """authguard's decision on the login that just happened in this request."""

    assessment: Assessment
    event_id: int | None
    #: What the login flow made of it: ``ok``, ``step_up_required`` or ``denied``.
    status: str = "denied"
    #: For ``step_up_required``: the methods the user can step up with.
    methods: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoginResult:
    """What happened to a password login.

    ``status`` is one of ``ok`` (fully signed in), ``step_up_required`` (signed in but unverified; see
    ``methods``), ``denied``, ``invalid`` (unknown user or wrong password, indistinguishable) and
    ``throttled``.
    """

    status: str
    methods: list[str] = field(default_factory=list)
    user: AbstractBaseUser | None = None


def is_throttled(request: HttpRequest, username: str) -> bool:
    """True when this IP or this account had too many failed logins in the last hour.

    A throttled attempt is refused before the password is checked, so guessing stops paying off.
    """
    limits = app_settings.LOGIN_THROTTLE
    # Only the counters' subjects matter here (who and from where); nothing is geolocated or parsed.
    ctx = LoginContext(
        time=timezone.now(),
        username=username or "",
        user_id=None,
        ip=client_ip(request),
        geo=Geo(),
        client=parse_user_agent(""),
        device_hash=None,
    )
    try:
        counts = read_counts(cache, ctx)
    except Exception:
        # SECURITY: with the counters unreachable we cannot tell a flood from a user; refuse (fail closed).
        logger.exception("authguard: velocity counters unavailable")
        return True
    return counts.ip_failures >= limits["ip_failures"] or counts.user_failures >= limits["user_failures"]


def password_login(request: HttpRequest, *, username: str, password: str) -> LoginResult:
    """Authenticate ``username``/``password``, sign the user in, and report authguard's decision.

    ``ok``: signed in and verified. ``step_up_required``: signed in as *pending* (the middleware lets the
    session reach only the step-up pages and API until a second factor passes); ``methods`` says which.
    ``denied``: nothing is signed in (risky beyond step-up, risky with no factor to step up with, or a locked
    account), and the answer says nothing more.
    """
    if is_throttled(request, username):
        _record_throttled(request, username)
        return LoginResult("throttled")
    user = authenticate(request, username=username, password=password)
    if user is None:
        return LoginResult("invalid")
    login(request, user)
    decision: LoginDecision | None = getattr(request, DECISION_ATTR, None)
    if decision is None:  # the receiver did not run (disconnected?): fail closed
        logout(request)
        return LoginResult("denied")
    if decision.status == "ok":
        return LoginResult("ok", user=user)
    if decision.status == "step_up_required":
        return LoginResult("step_up_required", methods=list(decision.methods), user=user)
    return LoginResult("denied")


def step_up_methods(user: Any) -> list[str]:
    """The second factors this user could step up with (see :func:`authguard.stepup.step_up_methods`)."""
    return stepup.step_up_methods(user)


def after_password_login(request: HttpRequest, user: Any) -> LoginDecision:
    """Score a login that just passed the password check, record it, and enforce the decision.

    Allowed: the session is verified. Step-up: the session stays signed in as pending, unless the user has
    no factor to step up with (refused). Deny or a locked account: signed out again at once.
    """
    ctx = build_context(request, username=user.get_username(), user=user)
    history = DatabaseHistory()
    assessment, evidence = score_login(ctx, history)
    try:
        history.record_attempt(ctx, failed=False)
    except Exception:
        logger.exception("authguard: could not count a login attempt")
    action = assessment.action
    methods: list[str] = stepup.step_up_methods(user) if action == Action.STEP_UP else []
    if _is_locked(user):
        status, outcome = "denied", Outcome.REFUSED
    elif action == Action.ALLOW:
        status, outcome = "ok", Outcome.SIGNED_IN
    elif action == Action.STEP_UP and methods:
        status, outcome = "step_up_required", Outcome.STEP_UP_PENDING
    else:
        # SECURITY: deny, or step-up for a user with no factor to step up with: fail closed.
        status, outcome = "denied", Outcome.REFUSED
    with transaction.atomic():
        event = record_event(ctx, user, assessment, password_ok=True, outcome=outcome)
        if status == "ok" and evidence is not None:
            history.learn(ctx, evidence)
        if status == "ok":
            # A new browser or country that was allowed still tells the customer (outbox, same transaction).
            stepup.notify_signed_in(event)
    decision = LoginDecision(assessment, event.pk, status=status, methods=tuple(methods))
    setattr(request, DECISION_ATTR, decision)
    new_device = evidence is None or not evidence.device.known
    if status == "ok":
        stepup.begin_verified(request, user=user, decision=decision, new_device=new_device)
        _lockout_success(user)
    elif status == "step_up_required":
        # SECURITY: signed in, but the middleware holds the session at step-up until a factor passes.
        stepup.begin_pending(request, user=user, decision=decision, new_device=new_device)
    else:
        # SECURITY: nothing stays signed in; the answer is the generic "denied".
        logout(request)
        setattr(request, DECISION_ATTR, decision)
    logger.info("authguard login user=%s ip=%s %s -> %s", user.pk, ctx.ip, assessment.explain(), status)
    return decision


def after_failed_login(request: HttpRequest | None, credentials: dict[str, Any]) -> None:
    """Record and count a failed password login (it feeds the velocity signals and the account lock).

    An attempt :class:`ThrottleBackend` refused is recorded as ``throttled`` and counted nowhere: its
    password was never checked.
    """
    if request is None:
        return
    username_field = get_user_model().USERNAME_FIELD
    username = str(credentials.get("username") or credentials.get(username_field) or "")[:150]
    if getattr(request, THROTTLED_ATTR, False):
        # SECURITY: not a wrong password. Counting it towards the lock would let a cache (Redis) outage,
        # where every attempt is refused, lock out each customer who retries (battery case 45).
        _record_throttled(request, username)
        return
    user = _user_by_name(username)
    ctx = build_context(request, username=username, user=user)
    history = DatabaseHistory()
    assessment, _ = score_login(ctx, history)
    try:
        history.record_attempt(ctx, failed=True)
    except Exception:
        logger.exception("authguard: could not count a failed login")
    record_event(ctx, user, assessment, password_ok=False, outcome=Outcome.BAD_PASSWORD)
    if user is not None:
        _lockout_failure(user)


def _record_throttled(request: HttpRequest, username: str) -> None:
    user = _user_by_name(username)
    ctx = build_context(request, username=username, user=user)
    assessment, _ = score_login(ctx, DatabaseHistory())
    record_event(ctx, user, assessment, password_ok=False, outcome=Outcome.THROTTLED)


def _user_by_name(username: str) -> Any:
    if not username:
        return None
    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        return None


def record_event(
    ctx: LoginContext, user: Any, assessment: Assessment, *, password_ok: bool, outcome: str
) -> LoginEvent:
    """Write the audit record of one login (or mid-session re-score) with its explained decision."""
    geo = ctx.geo
    return LoginEvent.objects.create(
        created_at=ctx.time,
        user=user,
        username=ctx.username,
        password_ok=password_ok,
        ip=ctx.ip,
        country=geo.country or "",
        city=(geo.city or "")[:100],
        asn=geo.asn,
        as_org=(geo.as_org or "")[:200],
        user_agent=ctx.client.raw,
        device_summary=ctx.client.summary[:200],
        device_hash=ctx.device_hash or "",
        score=assessment.score,
        action=assessment.action,
        reasons=assessment.reasons,
        findings=[f.as_dict() for f in assessment.findings],
        outcome=outcome,
    )


def _is_locked(user: Any) -> bool:
    """Whether ``authguard.lockout`` (when installed) has locked this account."""
    return stepup._is_locked(user)


def _lockout_success(user: Any) -> None:
    stepup._lockout_success(user)


def _lockout_failure(user: Any) -> None:
    from . import lockout

    try:
        lockout.record_failure(user, kind="password")
    except Exception:
        logger.exception("authguard: could not count a failure towards the lockout")


class ThrottleBackend:
    """Put first in ``AUTHENTICATION_BACKENDS``: refuses every login of a throttled IP or account.

    Raising ``PermissionDenied`` stops Django's backend chain, so no password is checked while throttled,
    whichever view (HTML, admin, API) called ``authenticate``.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **kwargs: Any) -> None:
        if request is not None and is_throttled(request, username or ""):
            setattr(request, THROTTLED_ATTR, True)  # the failed-login receiver records it as throttled
            raise PermissionDenied("throttled")
        return None

    # No get_user(): this backend never signs anyone in, so Django must not pick it to restore sessions.


__all__ = [
    "LoginDecision",
    "LoginResult",
    "ThrottleBackend",
    "after_failed_login",
    "after_password_login",
    "is_throttled",
    "password_login",
    "record_event",
    "step_up_methods",
]
