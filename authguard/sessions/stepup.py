"""The session's verification state: pending or verified, how and when it was last strongly verified, and
the context (network, device cookie, browser) it was verified in.

Everything lives in one small dict under the session key ``"_authguard"``; nothing else stores step-up
state, so it is server-side, dies with the session, and cannot be steered by anything the client sends.

* A login the risk engine allowed starts a *verified* session (:func:`begin_verified`).
* A login scored ``step_up`` starts a *pending* one (:func:`begin_pending`): signed in with the password
  only, it reaches nothing but the step-up pages until :func:`complete_step_up`.
* :func:`note_strong_verification` records a re-verification (before a factor change, say) in a verified
  session; :func:`has_fresh_verification` asks whether there was one recently enough.
* :func:`check_binding` (called by the middleware) re-scores a session whose request context changed
  materially and puts it back to pending when the result is risky; a session a fresh login from there
  would be refused is ended, never stepped up (battery case 61).
* Only a phishing-resistant verification (a passkey that is not cooling off, outside an account
  cooling-off) remembers the browser and teaches the risk profile; a TOTP or recovery code buys the one
  session it was typed into, nothing that lasts (battery case 56).
* :func:`end_all_sessions` ends every session of a user (a lock, a password change or reset).

The compact dict keys: ``s`` status, ``e`` login event id, ``a`` login action, ``u`` stepped up, ``r``
re-scored, ``n`` new device, ``t`` login time, ``st``/``sm`` strong verification time and method, ``lr``
low risk, ``w`` last activity, ``k`` fingerprint of the last request context seen, ``b`` the bound context
(``ip``, ``asn``, ``cc``, ``dev``, ``br``), ``sk`` the session key the state was last written under.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth import login as auth_login
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string

from authguard.conf import app_settings
from authguard.risk.context import (
    LoginContext,
    build_context,
    client_info,
    client_ip,
    device_hash,
    device_id_from_cookie,
    geolocate,
)
from authguard.risk.policy import Action

if TYPE_CHECKING:
    from authguard.login.flow import LoginDecision, LoginResult

logger = logging.getLogger(__name__)

#: The session key holding authguard's state.
STATE_KEY = "_authguard"
#: Request attribute set when the session was (re)bound in this request; the middleware then binds the
#: device cookie it issues in the same response.
BOUND_ATTR = "_authguard_bound"
#: Strong verification methods, as named in settings and in session state.
METHODS = ("passkey", "totp", "recovery_code")
#: The only method whose verification remembers the browser and resets the account's failure run: a
#: thief who relays one code through a phishing page cannot relay a passkey (it is bound to the origin).
PHISHING_RESISTANT_METHODS = frozenset({"passkey"})
#: Session keys ended (deleted from the store) while this request ran: the middleware then also drops the
#: request's own session instead of writing it back.
ENDED_SESSIONS: ContextVar[frozenset[str]] = ContextVar("authguard_ended_sessions", default=frozenset())
#: Last-activity time is written at most this often, so an active session is saved once a minute, not on
#: every request.
ACTIVITY_RESOLUTION_SECONDS = 60

Status = Literal["verified", "pending"]


@dataclass(frozen=True)
class SessionState:
    """A read-only view of the session's verification state."""

    status: Status
    login_event_id: int | None
    login_action: str
    stepped_up: bool
    rescored: bool
    new_device: bool
    login_at: datetime
    strong_at: datetime | None
    strong_method: str | None
    low_risk: bool


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=dt_timezone.utc)


def _now() -> float:
    return timezone.now().timestamp()


def raw_state(request: HttpRequest) -> dict[str, Any] | None:
    """The state dict of a signed-in session, or None."""
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return None
    state = session.get(STATE_KEY)
    return state if isinstance(state, dict) else None


def session_state(request: HttpRequest) -> SessionState | None:
    """The session's verification state; None when anonymous or not an authguard session."""
    state = raw_state(request)
    if state is None:
        return None
    try:
        return SessionState(
            status="pending" if state.get("s") == "pending" else "verified",
            login_event_id=state.get("e"),
            login_action=str(state.get("a", "")),
            stepped_up=bool(state.get("u")),
            rescored=bool(state.get("r")),
            new_device=bool(state.get("n")),
            login_at=_dt(float(state["t"])),  # type: ignore[arg-type]
            strong_at=_dt(state.get("st")),
            strong_method=state.get("sm"),
            low_risk=bool(state.get("lr")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def is_pending(request: HttpRequest) -> bool:
    """True when the session is signed in with the password only and must pass step-up first.

    SECURITY: a signed-in session whose state cannot be read counts as pending (fail closed); a signed-in
    session without any state (``force_login`` in tests, sessions older than authguard) is adopted by the
    middleware as verified but not low-risk.
    """
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return False
    state = session.get(STATE_KEY)
    if state is None:
        return False
    return not isinstance(state, dict) or state.get("s") != "verified"


# -- the bound context ----------------------------------------------------------------------------------


def _fingerprint(ip: str | None, user_agent: str, cookie: str | None) -> str:
    """A short digest of the raw request context: equal digests mean nothing needs to be looked at."""
    raw = f"{ip}\x00{user_agent}\x00{cookie or ''}".encode("utf-8", "replace")
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def _request_parts(request: HttpRequest) -> tuple[str | None, str, str | None]:
    ua = request.META.get("HTTP_USER_AGENT", "")
    cookie = request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME)
    return client_ip(request), ua, cookie


def current_binding(request: HttpRequest) -> dict[str, Any]:
    """The context of this request as the session binding stores it."""
    ip, ua, cookie = _request_parts(request)
    geo = geolocate(ip)
    return {
        "ip": ip,
        "asn": geo.asn,
        "cc": geo.country,
        "dev": device_hash(device_id_from_cookie(cookie)),
        "br": client_info(ua).browser,
    }


def is_material_change(bound: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether ``now`` differs from ``bound`` in what matters: network (ASN), country, device cookie (or
    its absence) or browser family. Another IP inside the same ASN and country is not material."""
    return any(bound.get(key) != now.get(key) for key in ("asn", "cc", "dev", "br"))


def _bind(request: HttpRequest, state: dict[str, Any]) -> None:
    ip, ua, cookie = _request_parts(request)
    state["b"] = current_binding(request)
    state["k"] = _fingerprint(ip, ua, cookie)
    setattr(request, BOUND_ATTR, True)


def bind_issued_device_cookie(request: HttpRequest, cookie_value: str) -> None:
    """The middleware issued ``cookie_value`` in the response of the request that bound the session, whose
    request had no valid device cookie: bind the session to the new cookie, so its next request matches."""
    state = raw_state(request)
    if state is None or not getattr(request, BOUND_ATTR, False):
        return
    binding = dict(state.get("b") or {})
    binding["dev"] = device_hash(device_id_from_cookie(cookie_value))
    state["b"] = binding
    ip, ua, _ = _request_parts(request)
    state["k"] = _fingerprint(ip, ua, cookie_value)
    _save(request, state)


def _save(request: HttpRequest, state: dict[str, Any]) -> None:
    state["sk"] = request.session.session_key
    request.session[STATE_KEY] = state
    request.session.modified = True


# -- starting a session ---------------------------------------------------------------------------------


def _new_state(*, status: Status, decision: LoginDecision | None, new_device: bool) -> dict[str, Any]:
    now = _now()
    action = str(decision.assessment.action) if decision is not None else ""
    return {
        "s": status,
        "e": decision.event_id if decision is not None else None,
        "a": action,
        "u": False,
        "r": False,
        "n": new_device,
        "t": now,
        "w": now,
        "st": None,
        "sm": None,
        "lr": status == "verified" and action == Action.ALLOW and not _relay_suspected(decision),
    }


#: Findings that keep even an allowed login from counting as low-risk. A login through an anonymising
#: network, with a copied browser or hopping networks may be a phishing proxy relaying the customer's own
#: cookies (real-time phishing): factors it enrolls start their cooling-off, whatever the score.
RELAY_FINDINGS = frozenset({"copied_user_agent", "network_hop", "impossible_travel"})


def _relay_suspected(decision: LoginDecision | None) -> bool:
    if decision is None:
        return True
    codes = decision.assessment.reasons
    return any(code.startswith("anonymous_") or code in RELAY_FINDINGS for code in codes)


def begin_verified(request: HttpRequest, *, user: Any, decision: LoginDecision, new_device: bool) -> None:
    """Login flow: the risk engine allowed this login. Django's ``login`` has rotated the session key."""
    state = _new_state(status="verified", decision=decision, new_device=new_device)
    _bind(request, state)
    _save(request, state)
    _record_session(request, user)


def begin_pending(
    request: HttpRequest, *, user: Any, decision: LoginDecision, new_device: bool = True
) -> None:
    """Login flow: a risky login. The user is signed in, but only as *pending* until they step up."""
    state = _new_state(status="pending", decision=decision, new_device=new_device)
    _bind(request, state)
    _save(request, state)
    _record_session(request, user)


def adopt(request: HttpRequest) -> dict[str, Any]:
    """Give a signed-in session without authguard state (``force_login``, a session from before authguard
    was installed) a verified, not low-risk state bound to this request's context."""
    state = _new_state(status="verified", decision=None, new_device=False)
    _bind(request, state)
    _save(request, state)
    _record_session(request, request.user)
    return state


# -- strong verification ----------------------------------------------------------------------------------


def method_of(device: Any) -> str | None:
    """The step-up method name of a django-otp device: ``passkey``, ``totp`` or ``recovery_code``."""
    name = type(device)._meta.model_name
    if name == "totpdevice":
        return "totp"
    if "passkey" in name or "webauthn" in name:
        return "passkey"
    if "recovery" in name or name == "staticdevice":
        return "recovery_code"
    return None


def _user_devices(user: Any) -> list[Any]:
    from authguard.factors.base import user_factors

    return list(user_factors(user))


def usable_factors(user: Any) -> list[Any]:
    """The user's usable factors (:func:`authguard.factors.base.user_factors`)."""
    return _user_devices(user)


def account_cooling_off(user: Any) -> bool:
    """Whether ``user``'s account is in its cooling-off (:mod:`authguard.factors.lifecycle`)."""
    try:
        from authguard.factors import lifecycle
    except ImportError:  # the account-level cooling-off has not landed in this checkout
        return False
    try:
        return bool(lifecycle.in_cooling_off(user))
    except Exception:
        # SECURITY: if the cooling-off cannot be read, treat the account as cooling off (fail closed).
        logger.exception("authguard: cooling-off state unavailable")
        return True


def factor_cooling_off(device: Any) -> bool:
    """Whether ``device`` is still cooling off (added during, or too recently for, a sensitive use)."""
    if device is None:
        return True
    try:
        try:
            from authguard.factors import lifecycle

            return bool(lifecycle.factor_is_cooling_off(device))
        except ImportError:
            from authguard.factors.base import in_cooling_off

            return bool(in_cooling_off(device))
    except Exception:
        # SECURITY: fail closed: a factor whose age cannot be read is treated as new.
        logger.exception("authguard: factor cooling-off state unavailable")
        return True


def remembers_device(user: Any, *, device: Any, method: str) -> bool:
    """Whether a verification with ``device`` (``method``) may remember the browser, teach the risk
    profile the login and reset the account's failure run.

    SECURITY: only a passkey, and neither a passkey still cooling off nor during an account cooling-off: a
    relayed TOTP or recovery code, or the thief's own new passkey, buys one session and nothing that
    lasts (battery case 56). The customer's next sign-in from such a browser is scored as new again.
    """
    if method not in PHISHING_RESISTANT_METHODS or device is None:
        return False
    return not factor_cooling_off(device) and not account_cooling_off(user)


def step_up_methods(user: Any) -> list[str]:
    """What this user can step up with, in the order of ``AUTHGUARD_STEP_UP_METHODS`` (the JSDA preset keeps
    only passkeys). Empty: the user has no usable factor and a risky login must be refused."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    present = {method_of(device) for device in _user_devices(user)}
    return [method for method in app_settings.STEP_UP_METHODS if method in present]


def _strong(request: HttpRequest, state: dict[str, Any], *, device: Any, method: str) -> None:
    import django_otp

    if method not in METHODS:
        raise ValueError(f"unknown step-up method {method!r}")
    previous = request.session.session_key
    # SECURITY: a new session key on every (re-)authentication (ASVS 7.2.4); the old key dies here.
    request.session.cycle_key()
    if device is not None:
        django_otp.login(request, device)
    state["st"] = _now()
    state["sm"] = method
    _save(request, state)
    _record_session(request, request.user, previous=previous)


def complete_step_up(request: HttpRequest, *, user: Any, device: Any, method: str) -> None:
    """The pending session's user passed a second factor: verify the session.

    Rotates the session key, records the device with django-otp, marks the login event ``step_up_passed``
    and rebinds the session to this request's context. Only when :func:`remembers_device` (a passkey,
    nothing cooling off) does it also learn the login into the user's profile, trust the device cookie
    for ``AUTHGUARD_TRUSTED_DEVICE_DAYS`` and reset the account's failure run: a TOTP or recovery code is
    good for this session only.
    """
    from authguard.models import LoginEvent, Outcome
    from authguard.risk.history import DatabaseHistory, trusted_until

    # SECURITY: only the session's own user; the caller's ``user`` must be request.user (no id from input).
    if user is None or getattr(request.user, "pk", None) != user.pk:
        raise PermissionError("step-up for another user than the session's")
    state = raw_state(request) or _new_state(status="pending", decision=None, new_device=True)
    ctx = build_context(request, username=user.get_username(), user=user)
    history = DatabaseHistory()
    remember = remembers_device(user, device=device, method=method)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: a failure here must not break the step-up itself
                if remember:
                    history.learn(ctx, history.evidence(ctx))
                    history.trust_device(ctx, trusted_until(ctx))
                else:
                    history.note_device(ctx)  # listed for the customer to see; nothing learned or trusted
        except Exception:
            logger.exception("authguard: could not learn a stepped-up login")
        event = LoginEvent.objects.filter(pk=state["e"], user=user).first() if state.get("e") else None
        if event is not None:
            event.outcome = Outcome.STEP_UP_PASSED
            event.save(update_fields=["outcome"])
            notify_signed_in(event)
    state.update(s="verified", u=True)
    _bind(request, state)
    _strong(request, state, device=device, method=method)
    if remember:
        # SECURITY: only a verification a thief cannot relay ends the account's failure run.
        _lockout_success(user)
    logger.info("authguard step-up passed user=%s method=%s remembered=%s", user.pk, method, remember)


def notify_signed_in(event: Any) -> None:
    """Tell the customer about a sign-in from a new device or country, now that it is signed in.

    The outbox row joins the caller's transaction through a savepoint, so a failure to queue the message
    never undoes the login event it is about.
    """
    from authguard.notifications.outbox import notify_login

    try:
        with transaction.atomic():
            notify_login(event)  # idempotent per event
    except Exception:
        logger.exception("authguard: could not queue the sign-in notification")


def note_step_up_failure(request: HttpRequest) -> None:
    """A second factor failed in a pending session: mark its login event ``step_up_failed``."""
    from authguard.models import LoginEvent, Outcome

    state = raw_state(request)
    # An anonymous request matches no event (every login event of a pending session has its user).
    if state and state.get("s") == "pending" and state.get("e") and request.user.is_authenticated:
        LoginEvent.objects.filter(pk=state["e"], user_id=request.user.pk).update(
            outcome=Outcome.STEP_UP_FAILED
        )


def note_strong_verification(request: HttpRequest, *, device: Any, method: str) -> None:
    """A verified session's user proved a factor again (before a factor change or a sensitive action)."""
    state = raw_state(request)
    if state is None or state.get("s") != "verified":
        raise PermissionError("re-verification outside a verified session")
    _strong(request, state, device=device, method=method)
    if remembers_device(request.user, device=device, method=method):
        _lockout_success(request.user)


def has_fresh_verification(
    request: HttpRequest, *, max_age: int | None = None, methods: Collection[str] | None = None
) -> bool:
    """A passkey/TOTP/recovery-code verification (or one of ``methods``) in this verified session within
    ``max_age`` seconds (default ``AUTHGUARD_STEP_UP_FRESH_SECONDS``)."""
    state = raw_state(request)
    if state is None or state.get("s") != "verified" or state.get("st") is None:
        return False
    if methods is not None and state.get("sm") not in methods:
        return False
    age = app_settings.STEP_UP_FRESH_SECONDS if max_age is None else max_age
    elapsed = _now() - float(state["st"])
    return 0 <= elapsed <= age


# -- passwordless login -----------------------------------------------------------------------------------


def _session_backend() -> str:
    """The first authentication backend that can restore users from a session."""
    for path in settings.AUTHENTICATION_BACKENDS:
        if hasattr(import_string(path), "get_user"):
            return path
    raise RuntimeError("no authentication backend can restore sessions")


def complete_passwordless_login(request: HttpRequest, *, user: Any, device: Any) -> LoginResult:
    """Sign ``user`` in after a verified discoverable passkey assertion (``device`` is their passkey).

    The login is scored and recorded like a password login (as ``passkey_login``, ``password_ok`` false)
    and learned; the passkey is the strong verification, so the session is verified with ``strong_at`` now
    and the device cookie is remembered, unless the passkey or the account is cooling off
    (:func:`remembers_device`). A locked account or a ``deny`` score signs nothing in.
    """
    from authguard.login import flow as login_flow
    from authguard.models import Outcome
    from authguard.risk.engine import score_login
    from authguard.risk.history import DatabaseHistory, trusted_until

    if device is None or device.user_id != user.pk or not user.is_active:
        return login_flow.LoginResult("denied")
    if _is_locked(user):
        return login_flow.LoginResult("denied")
    ctx = build_context(request, username=user.get_username(), user=user)
    history = DatabaseHistory()
    assessment, evidence = score_login(ctx, history)
    reported = assessment.action == Action.DENY and app_settings.report_only("login")
    if assessment.action == Action.DENY and not reported:
        login_flow.record_event(ctx, user, assessment, password_ok=False, outcome="refused")
        return login_flow.LoginResult("denied")
    if reported:
        # Rollout: the refusal is recorded, not enforced; the login teaches nothing (below).
        assessment = login_flow.with_report_only(assessment, "login", "deny", passkey=True)
        logger.warning("authguard REPORT-ONLY passkey login user=%s would have been refused", user.pk)
    new_device = evidence is None or not evidence.device.known
    # SECURITY: a sign-in the policy would have refused (report-only) is neither learned nor remembered.
    remember = not reported and remembers_device(user, device=device, method="passkey")
    with transaction.atomic():
        event = login_flow.record_event(
            ctx, user, assessment, password_ok=False, outcome=Outcome.PASSKEY_LOGIN
        )
        if remember and evidence is not None:
            history.learn(ctx, evidence)
        if remember:
            history.trust_device(ctx, trusted_until(ctx))
    decision = login_flow.LoginDecision(assessment, event.pk)
    # SECURITY: the decision is set before login(), so the user_logged_in receiver does not score it as a
    # password login; Django's login() rotates the session key.
    setattr(request, login_flow.DECISION_ATTR, decision)
    auth_login(request, user, backend=_session_backend())
    state = _new_state(status="verified", decision=decision, new_device=new_device)
    state["u"] = assessment.action != Action.ALLOW
    _bind(request, state)
    _strong(request, state, device=device, method="passkey")
    if remember:
        _lockout_success(user)
    return login_flow.LoginResult("ok", user=user)


# -- the session binding, checked by the middleware --------------------------------------------------------


def check_binding(request: HttpRequest, state: dict[str, Any]) -> str:
    """Compare this request's context with the one the verified session is bound to.

    Returns ``"same"`` (nothing to do), ``"moved"`` (another IP in the same network: rebound), ``"allowed"``
    (a material change the risk engine allowed: rebound), ``"reported"`` (``"step_up"`` is report-only: a
    risky re-score recorded with a ``report_only`` finding, the session rebound and carried on, no longer
    low-risk), ``"pending"`` (scored ``step_up``: the session must step up again; logged as a ``rescored``
    login event) or ``"ended"`` (scored ``deny``, or
    ``step_up`` for a user with no factor to step up with: what a fresh login from there would be refused;
    logged as ``refused``). The caller signs an ended session out.

    SECURITY: a re-scored session is never treated more gently than a fresh sign-in (battery case 61): a
    context a fresh login would be refused from must not be one relayed code away from the account.
    """
    ip, ua, cookie = _request_parts(request)
    fingerprint = _fingerprint(ip, ua, cookie)
    if state.get("k") == fingerprint:
        return "same"
    now = current_binding(request)
    bound = state.get("b") or {}
    if not is_material_change(bound, now):
        state["b"], state["k"] = now, fingerprint
        _save(request, state)
        return "moved"
    assessment, ctx = _rescore(request)
    state["r"] = True
    if assessment.action == Action.ALLOW:
        state["b"], state["k"] = now, fingerprint
        _save(request, state)
        return "allowed"
    from authguard.login import flow as login_flow
    from authguard.models import Outcome

    no_factor = not step_up_methods(request.user)
    if app_settings.report_only("step_up"):
        # Rollout: record what would have happened, carry the session on (rebound, no longer low-risk).
        would_have = "end_session" if assessment.action == Action.DENY or no_factor else "step_up"
        reported = login_flow.with_report_only(assessment, "step_up", would_have, rescored=True)
        login_flow.record_event(ctx, request.user, reported, password_ok=False, outcome=Outcome.SIGNED_IN)
        state["b"], state["k"], state["lr"] = now, fingerprint, False
        _save(request, state)
        logger.warning(
            "authguard REPORT-ONLY step_up user=%s ip=%s re-scored session would have %s: %s",
            request.user.pk,
            ctx.ip,
            would_have,
            assessment.explain(),
        )
        return "reported"
    if assessment.action == Action.DENY or no_factor:
        login_flow.record_event(ctx, request.user, assessment, password_ok=False, outcome=Outcome.REFUSED)
        logger.warning(
            "authguard session ended on re-score user=%s ip=%s %s",
            request.user.pk,
            ctx.ip,
            assessment.explain(),
        )
        return "ended"
    event = login_flow.record_event(
        ctx, request.user, assessment, password_ok=False, outcome=Outcome.RESCORED
    )
    # SECURITY: a session carried to another network, device or browser proves nothing by itself. The
    # re-score's event is the one a later step-up marks passed.
    state.update(s="pending", st=None, sm=None, lr=False, e=event.pk)
    _save(request, state)
    logger.warning(
        "authguard session re-scored user=%s ip=%s event=%s %s",
        request.user.pk,
        ctx.ip,
        event.pk,
        assessment.explain(),
    )
    return "pending"


def _rescore(request: HttpRequest) -> tuple[Any, LoginContext]:
    from authguard.risk.engine import score_login
    from authguard.risk.history import DatabaseHistory

    user = request.user
    ctx = build_context(request, username=user.get_username(), user=user)
    # Scored, never learned: the session's new context has not proved anything.
    assessment, _ = score_login(ctx, DatabaseHistory())
    return assessment, ctx


# -- sessions of a user, so the others can be ended ----------------------------------------------------------


def _record_session(request: HttpRequest, user: Any, *, previous: str | None = None) -> None:
    """Remember which session keys belong to ``user`` (for "sign out other sessions"); ``previous`` is the
    key the session had before a rotation, whose record is dropped."""
    from authguard.models import SessionRecord

    if request.session.session_key is None:
        request.session.save()
    key = request.session.session_key
    try:
        if previous and previous != key:
            SessionRecord.objects.filter(session_key=previous).delete()
        SessionRecord.objects.update_or_create(
            session_key=key,
            defaults={
                "user_id": user.pk,
                "place": geolocate(client_ip(request)).place[:120],
                "device_summary": client_info(request.META.get("HTTP_USER_AGENT")).summary[:200],
            },
        )
    except Exception:
        logger.exception("authguard: could not record a session")


def note_session_key(request: HttpRequest, state: dict[str, Any]) -> None:
    """The middleware saw the session key change under the state (another library rotated it)."""
    previous = state.get("sk")
    _save(request, state)
    _record_session(request, request.user, previous=previous)


def end_other_sessions(request: HttpRequest, *, user: Any) -> int:
    """End every other session of ``user`` (the caller checks for a fresh strong verification first)."""
    return end_all_sessions(user=user, keep=request.session.session_key)


def end_all_sessions(*, user: Any, keep: str | None = None) -> int:
    """End every session of ``user`` but ``keep`` (a session key), wherever it is; the number ended.

    Deletes each recorded session from the session store (so its cookie signs nothing in any more) and
    its record. A session ended while it is serving this very request is also dropped by the middleware
    at the end of the request instead of being written back.
    """
    from importlib import import_module

    from authguard.models import SessionRecord

    if user is None or user.pk is None:
        return 0
    store = import_module(settings.SESSION_ENGINE).SessionStore
    records = SessionRecord.objects.filter(user_id=user.pk)
    if keep:
        records = records.exclude(session_key=keep)
    keys = list(records.values_list("session_key", flat=True))
    for key in keys:
        store(session_key=key).delete()
    SessionRecord.objects.filter(session_key__in=keys).delete()
    if keys:
        ENDED_SESSIONS.set(ENDED_SESSIONS.get() | frozenset(keys))
        logger.info("authguard: ended %s session(s) of user %s", len(keys), user.pk)
    return len(keys)


def forget_session(session_key: str | None) -> None:
    """Drop the record of a session that was signed out."""
    from authguard.models import SessionRecord

    if session_key:
        SessionRecord.objects.filter(session_key=session_key).delete()


# -- lockout ---------------------------------------------------------------------------------------------


def _is_locked(user: Any) -> bool:
    """The one fail-closed lock check (:func:`authguard.login.lockout.is_locked_fail_closed`)."""
    from authguard.login import lockout

    return lockout.is_locked_fail_closed(user)


def _lockout_success(user: Any) -> None:
    from authguard.login import lockout

    try:
        lockout.record_success(user)
    except Exception:
        logger.exception("authguard: could not reset the lockout counter")


__all__ = [
    "STATE_KEY",
    "SessionState",
    "adopt",
    "begin_pending",
    "begin_verified",
    "check_binding",
    "complete_passwordless_login",
    "complete_step_up",
    "account_cooling_off",
    "end_all_sessions",
    "end_other_sessions",
    "factor_cooling_off",
    "has_fresh_verification",
    "is_pending",
    "method_of",
    "note_step_up_failure",
    "note_strong_verification",
    "remembers_device",
    "session_state",
    "step_up_methods",
    "usable_factors",
]
