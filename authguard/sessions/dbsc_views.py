"""The two DBSC endpoints (docs/dbsc.md): registration and refresh, called by the browser itself.

Mount with ``*dbsc_views.urlpatterns`` inside ``authguard.urls`` (namespace ``authguard``): the registration
header and the session instructions name them by URL name. The views are thin: read the headers, call
:mod:`authguard.sessions.dbsc`, answer. Success answers are the draft's JSON session instructions (nothing
else at
their root) with the bound cookie; failures are ``{"status", "code", "message"}`` with a 4xx, never cached,
and write nothing. Both endpoints are CSRF-exempt (the browser sends no token; a proof answers a challenge
no other site can read) and reachable by a session waiting for step-up (registration then refuses with a
message; a refresh proves the key, not the session).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from authguard.conf import app_settings
from authguard.factors import changes
from authguard.models import DbscSession
from authguard.risk.context import device_cookie_generation
from authguard.sessions import dbsc, dbsc_moves, device_binding
from authguard.sessions import state as sessions_state
from authguard.sessions.decorators import step_up_exempt


def _answer(data: dict[str, object], status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status)
    add_never_cache_headers(response)
    # The refresh endpoint leaks login state by timing if other sites can embed or read it (draft 5).
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def _error(error: dbsc.DbscError) -> JsonResponse:
    return _answer({"status": "invalid", "code": error.code, "message": error.message}, error.http_status)


def _method_not_allowed() -> JsonResponse:
    response = _answer({"status": "method_not_allowed", "message": _("Use POST.")}, 405)
    response["Allow"] = "POST"
    return response


@csrf_exempt
def register(request: HttpRequest) -> HttpResponse:
    """POST with ``Secure-Session-Response: <registration proof>``: bind this browser's device cookie."""
    if request.method != "POST":
        return _method_not_allowed()
    try:
        if not dbsc.enabled():
            raise dbsc.DbscDisabled()
        dbsc.check_can_register(request)
        raw = request.headers.get(dbsc.RESPONSE_HEADER)
        if raw is None:
            raise dbsc.MalformedDbscRequest("no_proof")
        proof = dbsc.parse_sf_string_item(raw, max_chars=dbsc.MAX_PROOF_CHARS)
        session = dbsc.verify_registration(
            proof=proof,
            user=request.user,  # type: ignore[arg-type]
            device_cookie_hash=dbsc.request_device_hash(request),
            session_nonce=request.session.get(dbsc.SESSION_NONCE_KEY),
            passkey_verified=changes.fresh_trusted_passkey(request, user=request.user),
        )
    except dbsc.DbscError as error:
        return _error(error)
    request.session.pop(dbsc.SESSION_NONCE_KEY, None)
    sessions_state.note_device_bound(request, session.session_id)
    secure = request.is_secure()
    response = _answer(dbsc.session_instructions(session=session, secure=secure))
    dbsc.set_bound_cookie(response, session=session, secure=secure)
    return response


@csrf_exempt
@step_up_exempt  # a proof of the device key signs nothing in; a session waiting for step-up may refresh
def refresh(request: HttpRequest) -> HttpResponse:
    """POST with ``Sec-Secure-Session-Id``: 403 with a ``Secure-Session-Challenge`` until the request also
    carries ``Secure-Session-Response`` signed by the registered key; then a new bound cookie."""
    if request.method != "POST":
        return _method_not_allowed()
    try:
        if not dbsc.enabled():
            raise dbsc.DbscDisabled()
        raw_id = request.headers.get(dbsc.SESSION_ID_HEADER)
        if raw_id is None:
            raise dbsc.MalformedDbscRequest("no_session_id")
        session_id = dbsc.parse_sf_string_item(raw_id, max_chars=dbsc.MAX_SESSION_ID_CHARS)
        session = dbsc.active_session(
            session_id=session_id, device_cookie_hash=dbsc.request_device_hash(request)
        )
        raw_proof = request.headers.get(dbsc.RESPONSE_HEADER)
        if raw_proof is None:
            return _challenge(session, message=_("Sign the challenge to refresh the device-bound session."))
        proof = dbsc.parse_sf_string_item(raw_proof, max_chars=dbsc.MAX_PROOF_CHARS)
        device = dbsc.request_device_hash(request)
        try:
            session = dbsc.verify_refresh(
                session=session,
                proof=proof,
                device_cookie_hash=device,
                device_cookie_generation=device_cookie_generation(
                    request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME)
                ),
                # SECURITY: the new id the binding's own browser was given, as its session recorded it: the
                # one cookie besides a new one the binding may move onto (red team, round thirty-seven).
                issued_to=dbsc_moves.issued_to_binding(request, session),
            )
        except dbsc.ChallengeRejected as error:
            # The draft's answer to a stale challenge: 403 with a new one, which the browser signs.
            return _challenge(session, message=error.message, code=error.code)
    except dbsc.DbscError as error:
        return _error(error)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and str(session.user_id) == str(user.pk):
        # SECURITY: only the binding's own account's session, and only this browser's own binding (below).
        if _binds_session(request, session, device):
            sessions_state.note_device_bound(request, session.session_id)
        if session.device_hash == device:
            dbsc_moves.forget_issued(request)  # moved (or never needed): the record is spent
    secure = request.is_secure()
    response = _answer(dbsc.session_instructions(session=session, secure=secure))
    dbsc.set_bound_cookie(response, session=session, secure=secure)
    return response


def _binds_session(request: HttpRequest, session: DbscSession, device: str | None) -> bool:
    """Whether the refresh of ``session`` binds the request's signed-in session to it: the binding is this
    browser's (its device cookie is the request's, after any move), the session is not bound to another
    active binding, and a session not bound yet signed in with this browser's device cookie (or recorded
    none: a session signed in without a device cookie).

    SECURITY: a thief's key registered on his own browser, refreshed with her copied session, device and
    bound cookies (its move onto her id refused), had re-bound her session to his key: her copy lived on with
    his bound cookie and her own browser was held (red team, round thirty-eight)."""
    state = sessions_state.raw_state(request)
    if state is None or not device or session.device_hash != device:
        return False
    current = state.get("db")
    if current == session.session_id:
        return True
    if isinstance(current, str) and current and not device_binding.binding_released(current):
        return False
    # Unbound, or its binding ended: only a binding of the device cookie the session itself holds.
    own = sessions_state.bound_context(state).get("dev")
    return not own or own == device


def _challenge(session: DbscSession, *, message: str, code: str = "challenge_required") -> JsonResponse:
    response = _answer({"status": "challenge", "code": code, "message": message}, 403)
    response[dbsc.CHALLENGE_HEADER] = dbsc.issue_refresh_challenge(session=session)
    return response


#: Include inside ``authguard.urls`` (namespace ``authguard``), beside the JSON API.
urlpatterns: list[URLPattern] = [
    path("api/dbsc/register/", register, name="dbsc_register"),
    path("api/dbsc/refresh/", refresh, name="dbsc_refresh"),
]
