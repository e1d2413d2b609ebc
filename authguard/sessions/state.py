"""The session's verification state: pending or verified, how and when it was last strongly verified, and
the context (network, device cookie, browser) it was verified in.

Everything lives in one small dict under the session key ``"_authguard"``; nothing else stores step-up
state, so it is server-side, dies with the session, and cannot be steered by anything the client sends.

* A login the risk engine allowed starts a *verified* session (:func:`begin_verified`).
* A login scored ``step_up`` starts a *pending* one (:func:`begin_pending`): signed in with the password
  only, it reaches nothing but the step-up pages until the step-up flow
  (:func:`authguard.login.stepup.complete_step_up`) verifies it.
* :func:`mark_strong` records a strong verification (step-up, or a re-verification before a factor change);
  :func:`has_fresh_verification` asks whether there was one recently enough.
* The binding (network, device cookie, browser) is kept here; :mod:`authguard.sessions.rescoring` re-scores
  a session whose context changed materially.
* :func:`end_all_sessions` ends every session and DBSC binding of a user (a lock, a password change or reset).

This module is low in the layering (it reads settings, the models and the request context): the flows
that verify, re-score or lock build on it, never the other way round.

The compact dict keys: ``s`` status, ``e`` login event id, ``a`` login action, ``u`` stepped up, ``r``
re-scored, ``n`` new device, ``t`` login time, ``st``/``sm`` strong verification time and method, ``lr``
low risk, ``w`` last activity, ``k`` fingerprint of the last request context seen, ``b`` the bound context
(``ip``, ``asn``, ``cc``, ``dev``, ``br``, ``pl`` its last precise place, ``x`` an anonymous network),
``an`` the anchor, ``h`` the last places, ``vp`` the places the customer vouched for
(:mod:`authguard.sessions.places`), ``sc`` the context a pending re-score was scored in, ``sk`` the
session key the state was last written under, ``da`` when, under which session key digest and from which
address the device's activity was last recorded
(:func:`authguard.sessions.middleware.note_device_activity`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

import django_otp
from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.db import transaction
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject, empty

from authguard import clock
from authguard.choices import Action, FactorKind, Outcome
from authguard.conf import app_settings
from authguard.exceptions import SessionEnded
from authguard.factors.verifier import remember_verifier
from authguard.models import AccountSecurity, LoginEvent, SessionRecord
from authguard.risk.addresses import client_ip
from authguard.risk.context import device_cookie_generation, device_hash, device_id_from_cookie
from authguard.risk.geoip import geolocate
from authguard.risk.useragent import client_info
from authguard.sessions import dbsc_moves, device_activity, device_binding, device_generations
from authguard.sessions.places import (  # noqa: F401 (MATERIAL_MOVE_KM, anchor, places: this module's API)
    MATERIAL_MOVE_KM,
    anchor,
    anonymous,
    is_material_change,
    place_binding,
    place_of,
    places,
)
from authguard.sessions.records import (  # noqa: F401 (what the flows read here: this module's API)
    ENDED_SESSIONS,
    api_access_revoked,
    forget_session,
    lock_account,
    note_ended,
    record_session,
    record_sign_in,
    renew_record,
    revoke_api_tokens,
)

if TYPE_CHECKING:
    from authguard.login.flow import LoginDecision

logger = logging.getLogger(__name__)
Json = dict[str, Any]  # a session state, or a binding in it

#: The request attribute through which the login flow hands its decision to views and middleware.
DECISION_ATTR = "_authguard_decision"
#: The session key holding authguard's state.
STATE_KEY = "_authguard"
#: Request attribute set when the session was (re)bound in this request; the middleware then binds the
#: device cookie it issues in the same response.
BOUND_ATTR = "_authguard_bound"
#: Request attribute ``(token key, user pk)`` set when an API token was issued in this request; the
#: middleware then re-issues the client's device cookie for it (:mod:`~authguard.sessions.token_devices`).
TOKEN_ATTR = "_authguard_token"
#: Strong verification methods, as named in settings and in session state.
METHODS = tuple(FactorKind.values)
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
    return clock.timestamp()


def raw_state(request: HttpRequest) -> dict[str, Any] | None:
    """The state dict of a signed-in session of the request's user, or None."""
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return None
    if not _session_of_the_user(request, session[SESSION_KEY]):
        return None
    state = session.get(STATE_KEY)
    return state if isinstance(state, dict) else None


def _session_of_the_user(request: HttpRequest, session_user: Any) -> bool:
    """Whether the session belongs to the user the request is authenticated as.

    SECURITY: a request authenticated otherwise (an API token) still carries whatever session cookie the
    client sends. A copied token sent with the thief's own low-risk session must not be judged by his
    session (red team, round twenty-five): it is then a request without a session, as a token's is.
    """
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, SimpleLazyObject) and getattr(user, "_wrapped", None) is empty):
        return True  # not resolved yet: it will resolve from this very session
    return not user.is_authenticated or str(user.pk) == str(session_user)


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


# -- reading and changing the raw state (its keys are known here only) --------------------------------------


def event_id(state: dict[str, Any]) -> int | None:
    """The login event the session's state points at (the login, or the re-score that put it back)."""
    value = state.get("e")
    return value if isinstance(value, int) else None


def is_verified(state: dict[str, Any]) -> bool:
    return state.get("s") == "verified"


def mark_verified(state: dict[str, Any]) -> None:
    """A step-up passed: the session is verified (and was stepped up)."""
    state.update(s="verified", u=True)
    state.pop("sc", None)


def set_stepped_up(state: dict[str, Any], stepped_up: bool) -> None:
    state["u"] = stepped_up


def bound_context(state: dict[str, Any]) -> dict[str, Any]:
    """The context (``ip``, ``asn``, ``cc``, ``dev``, ``br``) the session is bound to ({} when unreadable)."""
    bound = state.get("b")
    return dict(bound) if isinstance(bound, dict) else {}


def same_fingerprint(state: dict[str, Any], fingerprint: str) -> bool:
    return state.get("k") == fingerprint


def rebind(state: Json, binding: Json, fingerprint: str, *, rescored: str = "", left_at: Any = None) -> bool:
    """Bind the session to ``binding`` (its request ``fingerprint``). ``rescored`` there (``"allowed"``, or
    ``"reported"``, which ends its low risk): its anchor moves there too (:func:`place_binding`, with
    ``left_at``, when it was last seen before). True: its step-up is gone (re-scored, or another address)."""
    before: Json = state["b"] if isinstance(state.get("b"), dict) else {}
    moved = before.get("ip") != binding.get("ip")
    place_binding(state, binding, verified=bool(rescored), left_at=left_at)
    state["k"] = fingerprint
    if rescored or moved:
        # SECURITY: a step-up holds where it was made, not for a copy elsewhere, re-scored or nearby on her
        # own network (red team, rounds twenty-three and twenty-four); she confirms again from a new address.
        state.update(st=None, sm=None, fv=None, **({"lr": False} if rescored == "reported" else {}))
    return bool(rescored) or moved


def activity(state: dict[str, Any]) -> tuple[float, float]:
    """When the session signed in and when it was last seen (epoch seconds)."""
    login_at = float(state["t"])
    return login_at, float(state.get("w", login_at))


def touch(state: dict[str, Any], now: float) -> None:
    state["w"] = now


def _rekey_device_activity(request: HttpRequest, state: dict[str, Any], previous: str | None) -> None:
    """The session's key changed from ``previous``: its recorded device activity follows it."""
    device = bound_context(state).get("dev")
    key, user_id = request.session.session_key, request.session.get(SESSION_KEY)
    if device and previous and key and user_id and previous != key:
        device_activity.rekey(device, user_id, old_key=previous, new_key=key)


def saved_under(state: dict[str, Any]) -> str | None:
    """The session key the state was last written under (another library may have rotated it since)."""
    value = state.get("sk")
    return value if isinstance(value, str) else None


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
    """The context of this request as the session binding stores it (``pl``: its GeoIP place)."""
    ip, ua, cookie = _request_parts(request)
    geo, client = geolocate(ip), client_info(ua)
    return {
        "ip": ip,
        "asn": geo.asn,
        "cc": geo.country,
        "dev": device_hash(device_id_from_cookie(cookie)),
        # SECURITY: the browser *and* its OS and device type: a browser's cookies never move to another OS,
        # and her live session copied into the thief's Chrome on a Mac was "the same Chrome" (round 27).
        "br": f"{client.browser}|{client.os}|{client.device_type}",
        "rel": client.browser_release,
        "pl": place_of(geo),
        **({"x": True} if anonymous(geo) else {}),
    }


def note_device_bound(request: HttpRequest, session_id: str) -> None:
    """DBSC bound this session's browser to a key it holds (a registration, or a refresh): from now on each
    request of the session must carry a fresh bound cookie of ``session_id`` (:func:`bound_proof_missing`)."""
    state = raw_state(request)
    if state is not None and state.get("db") != session_id:
        state["db"] = session_id
        _save(request, state)


def bound_proof_missing(request: HttpRequest, state: dict[str, Any]) -> bool:
    """Whether this session's browser is DBSC-bound and the request lacks a fresh bound cookie of that
    binding. Checked statelessly (the cookie is signed and dated): no query on any request."""
    bound = state.get("db")
    if not isinstance(bound, str) or not device_binding.enabled():
        return False
    presented = device_binding.presented_session_id(request)
    if presented is not None and constant_time_compare(presented, bound):
        return False
    # SECURITY: a DBSC browser refreshes the short-lived bound cookie before it sends a request; a session
    # cookie copied with the jar outlives the copied bound cookie by its lifetime. (URL lookup only here.)
    return not _dbsc_endpoint(request)


def _dbsc_endpoint(request: HttpRequest) -> bool:
    """The DBSC refresh endpoint: a refresh comes exactly when the bound cookie expired, and proves the
    device key itself. (Registration is no exception: it would re-point the session's binding.)"""
    try:
        return request.path == reverse("authguard:dbsc_refresh")
    except NoReverseMatch:
        return False


def _bind(request: HttpRequest, state: dict[str, Any]) -> None:
    ip, ua, cookie = _request_parts(request)
    if device_binding.enabled():
        presented = device_binding.presented_session_id(request)
        if presented is not None:
            state["db"] = presented
    # An allowed sign-in or a passed step-up (verified) vouches for the place; a pending sign-in does not.
    place_binding(state, current_binding(request), verified=True, vouched=state.get("s") == "verified")
    state["k"] = _fingerprint(ip, ua, cookie)
    setattr(request, BOUND_ATTR, True)


def bind_issued_device_cookie(request: HttpRequest, cookie_value: str) -> None:
    """The middleware issued ``cookie_value`` in the response of the request that bound the session (a new
    cookie, or the next generation of the one presented): bind the session to it, so its next request
    matches, and that request confirms its generation (:mod:`~authguard.sessions.device_generations`)."""
    state = raw_state(request)
    if state is None or not getattr(request, BOUND_ATTR, False):
        return
    binding = dict(state.get("b") or {})
    binding["dev"] = device_hash(device_id_from_cookie(cookie_value))
    state["b"] = binding
    ip, ua, _ = _request_parts(request)
    state["k"] = _fingerprint(ip, ua, cookie_value)
    device_generations.note_issued(state, device_cookie_generation(cookie_value), _now())
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
        "se": decision.event_id if decision is not None else None,
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
RELAY_FINDINGS = frozenset(
    {"copied_user_agent", "copied_user_agent_shedding", "network_hop", "impossible_travel"}
)


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
    record_sign_in(request, user, started_at=state["t"])


def begin_pending(
    request: HttpRequest, *, user: Any, decision: LoginDecision, new_device: bool = True
) -> None:
    """Login flow: a risky login. The user is signed in, but only as *pending* until they step up."""
    state = _new_state(status="pending", decision=decision, new_device=new_device)
    _bind(request, state)
    _save(request, state)
    record_sign_in(request, user, started_at=state["t"])


def adopt(request: HttpRequest) -> dict[str, Any]:
    """Give a signed-in session without authguard state (``force_login``, a session from before authguard
    was installed) a verified, not low-risk state bound to this request's context; a pending one if the
    account was ever signed in without a request (:mod:`authguard.login.requestless`)."""
    # SECURITY: a websocket login or a script's was never scored: its session must not pass as verified,
    # however long it was kept unused before it came (red team, rounds five and six: a time window on the
    # account was outwaited, the session's own lifetime starting only here). One query, only for sessions
    # authguard has never seen; each is held once, then it has its state.
    user_pk = getattr(request.user, "pk", None)
    unscored = (
        user_pk is not None
        and AccountSecurity.objects.filter(user_id=user_pk, unscored_login_at__isnull=False).exists()
    )
    state = _new_state(status="pending" if unscored else "verified", decision=None, new_device=False)
    _bind(request, state)
    _save(request, state)
    record_session(request, request.user)
    return state


# -- strong verification ----------------------------------------------------------------------------------


def mark_strong(
    request: HttpRequest, state: dict[str, Any], *, device: Any, method: str, signed_in_now: bool = False
) -> None:
    """Record a strong verification with ``device`` (``method``) in this session under a new key
    (``signed_in_now``: the session's sign-in was in this request, its key has no record yet).

    Raises :class:`~authguard.exceptions.SessionEnded` when the session was ended while the key was renewed.
    """
    if method not in METHODS:
        raise ValueError(f"unknown step-up method {method!r}")
    previous = request.session.session_key
    times = _ending_times(state)
    with transaction.atomic():
        # SECURITY: the account's row before the session's, as an ending takes them: under ATOMIC_REQUESTS a
        # renewal held its session's row and waited for the account's while an ending did the reverse.
        lock_account(getattr(request.user, "pk", None))
        # SECURITY: a new session key on every (re-)authentication (ASVS 7.2.4); the old key dies here.
        request.session.cycle_key()
        renewed = renew_record(request, request.user, previous=None if signed_in_now else previous, **times)
    if not renewed:
        # SECURITY: ended while this request verified it: the verification counts for nothing.
        request.session.flush()
        raise SessionEnded()
    _rekey_device_activity(request, state, previous)
    if device is not None:
        django_otp.login(request, device)
    remember_verifier(request, device)
    state["st"] = _now()
    state["sm"] = method
    # SECURITY: one factor change per verification, counted from the account's changes (factors.changes).
    counted = AccountSecurity.objects.filter(user_id=getattr(request.user, "pk", 0))
    state["fc"] = counted.values_list("factors_changes", flat=True).first() or 0
    state["fv"] = secrets.token_hex(8)
    _save(request, state)


def note_step_up_failure(request: HttpRequest) -> None:
    """A second factor failed in a pending session: mark its login event ``step_up_failed``."""
    state = raw_state(request)
    # An anonymous request matches no event (every login event of a pending session has its user).
    if state and state.get("s") == "pending" and state.get("e") and request.user.is_authenticated:
        LoginEvent.objects.filter(pk=state["e"], user_id=request.user.pk).update(
            outcome=Outcome.STEP_UP_FAILED
        )


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
    # Written a moment ago on a node ahead (within healthy skew) is fresh; further ahead is not (round 12).
    return not clock.is_from_the_future(elapsed) and elapsed <= age


# -- sessions of a user, so the others can be ended ----------------------------------------------------------


def note_kept_through_ending(request: HttpRequest) -> None:
    """The request's session was the one an ending of the account's sessions kept ("sign out everywhere
    else", her password change): that ending is not hers (:func:`~authguard.sessions.records.renew_record`).
    SECURITY: else a renewal of it that found its old record pruned read her ending as its own (round 48)."""
    state = raw_state(request)
    if state is not None:
        state["ek"] = _now()
        _save(request, state)


def _ending_times(state: dict[str, Any]) -> dict[str, Any]:
    """What :func:`renew_record` asks to tell an ending of this session from one it outlived."""
    return {"signed_in_at": state.get("t"), "kept_at": state.get("ek")}


def note_session_key(request: HttpRequest, state: dict[str, Any]) -> bool:
    """The middleware saw the session key change under the state (the portal's view or another library
    renewed it); False when the session had been ended meanwhile (:func:`renew_record`): the caller ends
    it."""
    previous = state.get("sk") if isinstance(state.get("sk"), str) else None
    times = _ending_times(state)
    if not renew_record(request, request.user, previous=previous, **times):
        return False
    if previous in ENDED_SESSIONS.get():
        # SECURITY: its own request ended every session, then renewed it (Django's password change): the one
        # the ending kept; else a renewal that found its record pruned read that ending as its end (rd 49).
        state["ek"] = _now()
    _save(request, state)
    _rekey_device_activity(request, state, previous)
    return True


def note_renewed_key(request: HttpRequest) -> bool:
    """Record the signed-in session's key if it was renewed since the state was saved (a portal's
    ``cycle_key()`` after its step-up or its ``login()``, as ASVS 3.2.1 asks); False when the session was
    ended meanwhile: it is signed out here (the middleware answers that it ended).

    SECURITY: recorded at the session's next request only, it was a key "sign out everywhere", the lock and
    the desk did not know of while its holder waited (rounds 43 and 46)."""
    state = request.session.get(STATE_KEY)
    if not isinstance(state, dict) or saved_under(state) == request.session.session_key:
        return True
    if note_session_key(request, state):
        return True
    logout(request)
    return False


def end_all_sessions(
    *,
    user: Any,
    keep: str | None = None,
    kept_browser: Collection[Any] | None = None,
    binding_reason: str | None = dbsc_moves.SESSIONS_ENDED,
    bound_since: datetime | None = None,
) -> int:
    """End every session of ``user`` but ``keep`` (a session key), wherever it is, and the account's DBSC
    bindings but the kept browser's (``kept_browser``: its device cookie hash and binding ids; None: read from
    the kept session) with ``binding_reason`` (None: no binding ends; ``bound_since``: only those
    registered since then); the number of sessions ended.

    Deletes each recorded session from the session store (so its cookie signs nothing in any more) and
    its record. A session ended while it is serving this very request is also dropped by the middleware
    at the end of the request instead of being written back. One transaction (on the default database).
    """
    if user is None or user.pk is None:
        return 0
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if keep and kept_browser is None:
        # What the kept session last saved; nothing readable, nothing kept (fail closed).
        saved = store(session_key=keep).load().get(STATE_KEY)
        kept_browser = (bound_context(saved).get("dev"), saved.get("db")) if isinstance(saved, dict) else ()
    kept = [value for value in kept_browser or () if isinstance(value, str)]  # device hashes, binding ids
    with transaction.atomic():
        lock_account(user.pk)  # SECURITY: a key renewed meanwhile is moved before or ends itself (records.py)
        note_ended(user.pk)
        # SECURITY: an intrusion's key must not outlive its access (its refresh went on; round thirty-seven).
        if binding_reason is not None:
            dbsc_moves.end_bindings(
                user_id=user.pk, reason=binding_reason, keep=kept, registered_since=bound_since
            )
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
