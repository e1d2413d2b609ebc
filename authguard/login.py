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


@dataclass(frozen=True)
class LoginDecision:
    """authguard's decision on the login that just happened in this request."""

    assessment: Assessment
    event_id: int | None


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
    """Authenticate ``username``/``password``, sign the user in, and report authguard's decision."""
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
    action = decision.assessment.action
    if action == Action.ALLOW:
        return LoginResult("ok", user=user)
    if action == Action.STEP_UP:
        return LoginResult("step_up_required", methods=step_up_methods(user), user=user)
    return LoginResult("denied")


def step_up_methods(user: Any) -> list[str]:
    """The second factors this user could use to step up (until step-up lands: none)."""
    return []


def after_password_login(request: HttpRequest, user: Any) -> LoginDecision:
    """Score a login that just passed the password check, record it, and enforce the decision."""
    ctx = build_context(request, username=user.get_username(), user=user)
    history = DatabaseHistory()
    assessment, evidence = score_login(ctx, history)
    try:
        history.record_attempt(ctx, failed=False)
    except Exception:
        logger.exception("authguard: could not count a login attempt")
    allowed = assessment.action == Action.ALLOW
    with transaction.atomic():
        event = _record_event(
            ctx, user, assessment, password_ok=True, outcome=Outcome.SIGNED_IN if allowed else Outcome.REFUSED
        )
        if allowed and evidence is not None:
            history.learn(ctx, evidence)
    decision = LoginDecision(assessment, event.pk)
    setattr(request, DECISION_ATTR, decision)
    if not allowed:
        # SECURITY: until the user passes a second factor, this session must not stay signed in.
        logout(request)
        setattr(request, DECISION_ATTR, decision)
    logger.info("authguard login user=%s ip=%s %s", user.pk, ctx.ip, assessment.explain())
    return decision


def after_failed_login(request: HttpRequest | None, credentials: dict[str, Any]) -> None:
    """Record and count a failed password login (it feeds the velocity signals)."""
    if request is None:
        return
    username_field = get_user_model().USERNAME_FIELD
    username = str(credentials.get("username") or credentials.get(username_field) or "")[:150]
    user = _user_by_name(username)
    ctx = build_context(request, username=username, user=user)
    history = DatabaseHistory()
    assessment, _ = score_login(ctx, history)
    try:
        history.record_attempt(ctx, failed=True)
    except Exception:
        logger.exception("authguard: could not count a failed login")
    _record_event(ctx, user, assessment, password_ok=False, outcome=Outcome.BAD_PASSWORD)


def _record_throttled(request: HttpRequest, username: str) -> None:
    user = _user_by_name(username)
    ctx = build_context(request, username=username, user=user)
    assessment, _ = score_login(ctx, DatabaseHistory())
    _record_event(ctx, user, assessment, password_ok=False, outcome=Outcome.THROTTLED)


def _user_by_name(username: str) -> Any:
    if not username:
        return None
    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        return None


def _record_event(
    ctx: LoginContext, user: Any, assessment: Assessment, *, password_ok: bool, outcome: str
) -> LoginEvent:
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


class ThrottleBackend:
    """Put first in ``AUTHENTICATION_BACKENDS``: refuses every login of a throttled IP or account.

    Raising ``PermissionDenied`` stops Django's backend chain, so no password is checked while throttled,
    whichever view (HTML, admin, API) called ``authenticate``.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **kwargs: Any) -> None:
        if request is not None and is_throttled(request, username or ""):
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
]
