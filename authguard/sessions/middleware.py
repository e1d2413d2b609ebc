"""authguard's middleware: holds pending sessions at step-up, binds sessions to their context, enforces
session timeouts, keeps the device cookie, turns refused logins into the right answer, and forbids framing
authguard's own pages.

The common path (a verified session whose request comes from the context it is bound to) costs a few
dictionary reads and one small hash, and no database query; the session is written at most once a minute
(last activity).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext as _

from authguard import clock, durable
from authguard.conf import app_settings
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.risk.geoip import geolocate
from authguard.risk.velocity import release_in_flight
from authguard.sessions import dbsc, device_activity, device_binding, device_cookie
from authguard.sessions import state as sessions_state
from authguard.sessions.logout import logout_url
from authguard.sessions.state import DECISION_ATTR, TOKEN_ATTR, note_renewed_key

logger = logging.getLogger(__name__)

#: Request attribute: this request's session is pending (set before the view is resolved).
PENDING_ATTR = "_authguard_pending"
#: Request attribute: this request's session was ended before the view (a re-score a fresh login would
#: refuse); the view is answered with :func:`session_ended_answer`.
ENDED_ATTR = "_authguard_session_ended"
#: Query parameter the login page reads to say why the customer was signed out.
SESSION_ENDED_PARAM = "session_ended"
#: View attribute set by :func:`authguard.decorators.step_up_exempt`.
EXEMPT_ATTR = "step_up_exempt"
#: authguard's own routes that a pending session may reach: the step-up pages and the step-up JSON API.
STEP_UP_ROUTES = frozenset(
    {
        "step-up",
        "step-up-totp",
        "step-up-passkey",
        "step-up-recovery",
        "denied",
    }
)
#: Route suffixes of the step-up JSON API (CONTRACTS section 4), whatever their URL names.
STEP_UP_API_SUFFIXES = (
    "api/step-up/totp",
    "api/step-up/recovery-code",
    "api/step-up/passkey/options",
    "api/step-up/passkey",
)
#: The framing policy of authguard's pages: no site, this one included, may show them in a frame.
FRAME_ANCESTORS = "frame-ancestors 'none'"


def wants_json(request: HttpRequest) -> bool:
    """Whether to answer ``request`` in JSON: API paths, JSON bodies, and clients that accept JSON only."""
    if "/api/" in request.path:
        return True
    if (request.content_type or "").lower() == "application/json":
        return True
    accept = request.META.get("HTTP_ACCEPT", "")
    return "application/json" in accept and "text/html" not in accept


def safe_next(request: HttpRequest, target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None.

    SECURITY: rejects absolute and scheme-relative URLs (``//evil``, ``/\\evil``), schemes
    (``javascript:``), control characters, and anything that does not start with a single ``/``.
    """
    from django.utils.http import url_has_allowed_host_and_scheme

    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(c) < 32 or c == "\\" for c in target):
        return None
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None, require_https=False):
        return None
    return target


def step_up_url(request: HttpRequest, next_url: str | None = None, *, name: str = "authguard:step-up") -> str:
    """The URL of an authguard step-up page with ``next`` (when it is a same-site path)."""
    url = reverse(name)
    target = safe_next(request, next_url)
    return f"{url}?next={quote(target, safe='/')}" if target else url


def step_up_answer(request: HttpRequest, *, http_status: int = 401, reverify: bool = False) -> HttpResponse:
    """The answer to a request that needs a second factor first: 401/403 JSON or a redirect (HTML)."""
    if wants_json(request):
        user = getattr(request, "user", None)
        message = (
            _("Confirm it is you with a second factor first.")
            if not reverify
            else _("Confirm it is you again with a second factor: your last check is too old.")
        )
        response = JsonResponse(
            {
                "status": "step_up_required",
                "methods": _step_up_methods(user),
                "message": message,
                "step_up_url": reverse("authguard:reverify" if reverify else "authguard:step-up"),
            },
            status=http_status,
        )
        add_never_cache_headers(response)
        return response
    next_url = request.get_full_path() if request.method in ("GET", "HEAD") else None
    name = "authguard:reverify" if reverify else "authguard:step-up"
    return HttpResponseRedirect(step_up_url(request, next_url, name=name))


def session_ended_answer(request: HttpRequest) -> HttpResponse:
    """The answer to a request whose session was just ended: 401 ``login_required`` (JSON, with the code
    ``session_ended``) or a redirect to the login page, which says why (HTML)."""
    from django.conf import settings as django_settings
    from django.shortcuts import resolve_url

    if wants_json(request):
        response = JsonResponse(
            {
                "status": "login_required",
                "code": "session_ended",
                "message": _(
                    "For your security we signed this session out: it was used from a place we could not "
                    "trust. Please sign in again."
                ),
            },
            status=401,
        )
        add_never_cache_headers(response)
        return response
    login_url = resolve_url(django_settings.LOGIN_URL)
    separator = "&" if "?" in login_url else "?"
    return HttpResponseRedirect(f"{login_url}{separator}{SESSION_ENDED_PARAM}=1")


def deny_framing(response: HttpResponse) -> HttpResponse:
    """Forbid framing ``response``: ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``.

    A Content-Security-Policy already on the response keeps its other directives; only its
    ``frame-ancestors`` (if any) is replaced.
    """
    # SECURITY: a step-up, security or order-confirmation page inside another site's frame can be
    # clickjacked (a decoy over its "confirm" button). Set here, not left to the portal's
    # XFrameOptionsMiddleware, which may be missing or allow SAMEORIGIN (battery case 43).
    response["X-Frame-Options"] = "DENY"
    directives = [
        part.strip()
        for part in response.get("Content-Security-Policy", "").split(";")
        if part.strip() and not part.strip().lower().startswith("frame-ancestors")
    ]
    response["Content-Security-Policy"] = "; ".join([*directives, FRAME_ANCESTORS])
    return response


def _allowed_while_pending(request: HttpRequest, view_func: Any) -> bool:
    if getattr(view_func, EXEMPT_ATTR, False):
        return True
    match = request.resolver_match
    if match is None:
        return False
    if match.view_name in app_settings.PENDING_ALLOWED_VIEWS or _is_logout_request(request):
        return True
    if "authguard" in match.namespaces:
        if match.url_name in STEP_UP_ROUTES:
            return True
        route = match.route or ""
        return route.endswith(STEP_UP_API_SUFFIXES)
    return False


def _is_logout_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for the URL ``AUTHGUARD_LOGOUT_URL`` names (a pending session may sign out)."""
    target = app_settings.LOGOUT_URL
    match = request.resolver_match
    if not target:
        return False
    if match is not None and match.view_name == target:
        return True
    url = logout_url()
    return url is not None and urlsplit(url).path == request.path


def _is_login_page(request: HttpRequest) -> bool:
    """Whether ``request`` is for the portal's login page (``settings.LOGIN_URL``, a name or a path)."""
    try:
        login_path = urlsplit(str(resolve_url(settings.LOGIN_URL))).path
    except NoReverseMatch:
        login_path = ""
    if login_path and request.path == login_path:
        return True
    match = getattr(request, "resolver_match", None)
    return match is not None and match.view_name == "login"


def _drop_dead_session_cookie(request: HttpRequest) -> None:
    """Take a session cookie that names no live session (signed out, ended, timed out here) out of the
    ``Cookie`` header the view and the caches read. SECURITY: ``cache_page`` with ``Vary: Cookie`` outside
    the login check served her cached statement to a copy of her jar once she had signed out (round 46), or
    when the copy's own request found her session timed out (round 47)."""
    name = settings.SESSION_COOKIE_NAME
    session = getattr(request, "session", None)
    if name in request.COOKIES and (session is None or session.session_key != request.COOKIES[name]):
        parts = request.META.get("HTTP_COOKIE", "").split(";")
        request.META["HTTP_COOKIE"] = ";".join(p for p in parts if p.split("=", 1)[0].strip() != name)
        request.__dict__.pop("headers", None)  # HttpRequest.headers is cached from META


def _is_static(request: HttpRequest) -> bool:
    """Whether ``request`` is for a static file (below ``STATIC_URL``)."""
    static_prefix = "/" + (settings.STATIC_URL or "").lstrip("/")
    # SECURITY: static files skip the session checks, but only below a real prefix: a STATIC_URL of "/" (or
    # empty) must not exempt every path.
    return static_prefix != "/" and request.path.startswith(static_prefix)


def _end_bound_cookie_older_than_step_up(request: HttpRequest, response: HttpResponse) -> None:
    """On a step-up's answer, end a bound cookie issued before the session's latest verification: it proves
    nothing of it (``device_binding.key_proved_since``), and without one DBSC makes her browser refresh with
    its key before its next request, so the doors that ask for a proof since the step-up (forgetting this
    browser, vouching for a factor change) find one at once, not when the cookie runs out. A copy cannot
    refresh (round fifty-seven: the first passkey she added right after her code cooled off for two weeks
    on her bound browser, a day on an unbound one)."""
    name = device_binding.bound_cookie_name()
    if not dbsc.enabled() or response.status_code >= 400 or not request.COOKIES.get(name):
        return
    match = getattr(request, "resolver_match", None)
    if match is None or "authguard" not in match.namespaces:
        return
    if match.url_name not in STEP_UP_ROUTES and not request.path.endswith(STEP_UP_API_SUFFIXES):
        return
    state = sessions_state.session_state(request) if SESSION_KEY in request.session else None
    if state is None or state.strong_at is None or device_binding.key_proved_since(request, state.strong_at):
        return
    response.delete_cookie(name, path="/", samesite="Lax")


def _offer_device_binding(request: HttpRequest, response: HttpResponse) -> None:
    """After a sign-in or a step-up in this request, offer the browser to bind the device cookie to a key it
    holds (DBSC, :mod:`authguard.sessions.dbsc`; off unless ``AUTHGUARD_DBSC`` turns it on). Only then: an
    offer costs a challenge row, so ordinary page views never make one."""
    if not dbsc.enabled() or response.status_code >= 400:
        return
    match = getattr(request, "resolver_match", None)
    stepped_up = (
        match is not None
        and "authguard" in match.namespaces
        and (match.url_name in STEP_UP_ROUTES or request.path.endswith(STEP_UP_API_SUFFIXES))
    )
    if getattr(request, DECISION_ATTR, None) is None and not stepped_up:
        return
    # SECURITY: only a sign-in or a step-up that verified the session *in this request* earns the offer; a
    # copied session viewing a step-up page must not bind the customer's device cookie to the thief's key
    # (red team, 2026-12-05).
    if not device_cookie.verified_in_this_request(request):
        return
    value = dbsc.registration_header(request)
    if value is not None:
        response[dbsc.REGISTRATION_HEADER] = value


def note_device_activity(request: HttpRequest, state: dict[str, Any], now: float) -> bool:
    """Record that the verified session's device cookie is in use here (:mod:`~.device_activity`), at most
    once per ``ACTIVITY_RESOLUTION_SECONDS`` unless the session key or the address changed. True when the
    state changed (the caller saves the session).

    Called by the middleware after the binding check, so the bound context is this request's.
    """
    binding = sessions_state.bound_context(state)
    device, ip = binding.get("dev"), binding.get("ip")
    key, user_id = request.session.session_key, request.session.get(SESSION_KEY)
    if not device or not key or not user_id:
        return False
    digest = device_activity.session_digest(key)
    last = state.get("da")
    if (
        isinstance(last, list)
        and len(last) == 3
        and last[1:] == [digest, ip]
        and isinstance(last[0], (int, float))
        # abs(): a time from the future (another node's clock) must not stop the updates either.
        and abs(now - last[0]) < sessions_state.ACTIVITY_RESOLUTION_SECONDS
    ):
        return False
    geo = geolocate(ip)
    device_activity.note(
        device,
        user_id,
        device_activity.DeviceActivity(
            session=digest,
            at=now,
            ip=ip,
            asn=geo.asn,
            latitude=geo.latitude,
            longitude=geo.longitude,
            accuracy_km=geo.accuracy_km,
        ),
    )
    state["da"] = [now, digest, ip]
    return True


def forget_device_activity(request: HttpRequest, *, user_id: str, session_key: str) -> None:
    """The verified session ``session_key`` of the account ``user_id`` (as Django's session stores it)
    signed out: its browser's device cookie is no longer in use there."""
    device = device_hash(device_id_from_cookie(request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME)))
    if device:
        device_activity.forget(device, user_id, session_key)


def _needs_device_cookie(request: HttpRequest, signed_in_key: str | None) -> bool:
    """Whether the answer to ``request`` carries the device cookie when the browser has none.

    Only where a sign-in is near: the login page, authguard's own pages (passkey sign-in, step-up, unlock),
    requests of signed-in sessions (a login in this very request included, so a JSON login binds its
    session to the cookie issued with it), and answers that hand out a CSRF token (a form or a JSON client's
    token call, which may sign in next; such an answer sets the CSRF cookie and varies on cookies, so it was
    never cacheable). Other anonymous requests never get it, so a CDN can cache public pages (a
    ``Set-Cookie`` makes an answer uncacheable).
    """
    if signed_in_key is not None or getattr(request, DECISION_ATTR, None) is not None:
        return True
    if getattr(request, TOKEN_ATTR, None) is not None:  # a token sign-in or step-up exchange
        return True
    session = getattr(request, "session", None)
    if session is not None and SESSION_KEY in session:
        return True
    match = getattr(request, "resolver_match", None)
    if match is not None and "authguard" in match.namespaces:
        return True
    # Django's get_token() marks a request whose answer (re)sets the CSRF cookie.
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return True
    return _is_login_page(request)


class AuthguardMiddleware:
    """Place after ``AuthenticationMiddleware`` (system check ``authguard.E006``).

    * Signs out sessions idle for ``AUTHGUARD_SESSION_IDLE_SECONDS`` or older than
      ``AUTHGUARD_SESSION_ABSOLUTE_SECONDS``.
    * Re-scores a verified session whose request comes from a materially different context (another ASN or
      country, another device cookie or none, another browser); a risky one must step up again, and one a
      fresh login would refuse is signed out (:func:`session_ended_answer`).
    * Drops the request's own session at the end of a request that ended it (a lock, a password reset).
    * Lets a pending session reach only the step-up pages and API, logout, static files, the language
      switch and views marked :func:`~authguard.decorators.step_up_exempt`; everything else answers a
      redirect to the step-up chooser (HTML) or 401 ``step_up_required`` (JSON).
    * Issues the long-lived device cookie to browsers that have none (or a forged one), where a sign-in is
      near (:func:`_needs_device_cookie`), never on other anonymous pages; re-issues it (its next generation,
      or a new id for a copy) at each verified sign-in or step-up
      (:mod:`~authguard.sessions.device_generations`).
    * Runs in a sync or an async stack (Django's ``sync_capable`` / ``async_capable``), the same way.
    * After a login in this request: a pending one goes to the step-up chooser, a refused one to the
      generic "refused" page, instead of the login view's success redirect.
    * Writes again, after the view, the refusals' records the view's transaction may have rolled back
      (:mod:`authguard.durable`).
    * Forbids framing every answer of authguard's own URLs (:func:`deny_framing`).
    """

    #: Django's "Asynchronous support" for middleware: one class serves a sync (WSGI) and an async (ASGI)
    #: stack; Django picks the mode from the middleware below it and adapts nothing.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Django awaits this instance only when it says it is a coroutine function.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        ended = sessions_state.ENDED_SESSIONS.set(frozenset())
        try:
            signed_in_key = self._before_view(request)
            with durable.collecting() as refusals:
                response = self.get_response(request)
            durable.write_again(refusals, response)
            self._drop_ended_session(request)
            return self._after_view(request, response, signed_in_key)  # type: ignore[arg-type]
        finally:
            sessions_state.ENDED_SESSIONS.reset(ended)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """The same steps as :meth:`__call__` for an async stack: the session and database work runs in
        Django's thread for sync code (``sync_to_async``); the context variable that collects sessions
        ended during the request is set here, around the awaited view, so the view's changes come back."""
        ended = sessions_state.ENDED_SESSIONS.set(frozenset())
        try:
            signed_in_key = await sync_to_async(self._before_view)(request)
            with durable.collecting() as refusals:
                response = await self.get_response(request)  # type: ignore[misc]
            if refusals:
                await sync_to_async(durable.write_again)(refusals, response)
            await sync_to_async(self._drop_ended_session)(request)
            return await sync_to_async(self._after_view)(request, response, signed_in_key)
        finally:
            sessions_state.ENDED_SESSIONS.reset(ended)

    def _before_view(self, request: HttpRequest) -> str | None:
        """The session checks before the view; returns the signed-in session's key (None: anonymous)."""
        if _is_static(request):
            return None
        signed_in_key = self._check_session(request)
        if signed_in_key is None:  # anonymous, signed out here, timed out or ended
            _drop_dead_session_cookie(request)
        return signed_in_key

    def _after_view(
        self, request: HttpRequest, response: HttpResponse, signed_in_key: str | None
    ) -> HttpResponse:
        static = _is_static(request)  # its session is never loaded: not for this either (no query)
        if signed_in_key is not None and SESSION_KEY not in request.session:
            # Signed out in this request: drop the session's record, and its device is no longer in use here.
            sessions_state.forget_session(signed_in_key)
            # Only a session still verified after its binding check forgets (a held one, perhaps a thief's,
            # must not wipe the customer's record by signing out).
            own = getattr(request, device_activity.OWN_SESSION_ATTR, None)
            if own is not None and not getattr(request, PENDING_ATTR, False):
                forget_device_activity(request, user_id=own[0], session_key=signed_in_key)
        elif not static and SESSION_KEY in request.session and not note_renewed_key(request):
            response = session_ended_answer(request)
        signed_in = not static and (signed_in_key is not None or SESSION_KEY in request.session)
        if signed_in or (not static and "HTTP_AUTHORIZATION" in request.META):
            # SECURITY: an answer to a signed-in session (or an API token's) is hers alone: Django's per-site
            # cache served her cached statement to a copy of her jar authguard had held (round forty-three).
            patch_cache_control(response, private=True)
        response = self._after_login(request, response)
        # A password check whose attempt was never counted (a portal that authenticates and signs nobody in)
        # gives its place back with the request (authguard.risk.velocity.take_in_flight).
        release_in_flight(cache, request)
        if not static and _needs_device_cookie(request, signed_in_key):
            device_cookie.keep(request, response)
        _offer_device_binding(request, response)
        _end_bound_cookie_older_than_step_up(request, response)
        match = getattr(request, "resolver_match", None)
        if match is not None and "authguard" in match.namespaces:
            deny_framing(response)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if getattr(request, ENDED_ATTR, False):
            return session_ended_answer(request)
        if not getattr(request, PENDING_ATTR, False):
            return None
        if _allowed_while_pending(request, view_func):
            return None
        # SECURITY: a password-only session reaches nothing else (battery case 8).
        return step_up_answer(request)

    # -- before the view -------------------------------------------------------------------------------

    @staticmethod
    def _check_session(request: HttpRequest) -> str | None:
        """Timeouts, the pending flag and the context binding; returns the signed-in session's key."""
        session = getattr(request, "session", None)
        if session is None or SESSION_KEY not in session:
            return None
        state = session.get(sessions_state.STATE_KEY)
        if not isinstance(state, dict):
            if state is not None:  # unreadable state: fail closed
                setattr(request, PENDING_ATTR, True)
                return session.session_key
            state = sessions_state.adopt(request)
        now = sessions_state._now()
        try:
            login_at, seen = sessions_state.activity(state)
        except (KeyError, TypeError, ValueError):
            setattr(request, PENDING_ATTR, True)
            return session.session_key
        if (
            now - login_at > app_settings.SESSION_ABSOLUTE_SECONDS
            or now - seen > app_settings.SESSION_IDLE_SECONDS
            # SECURITY: a sign-in time from the future (written by a node whose clock ran ahead) would stretch
            # the absolute timeout by the skew: timed out too, never "just now" (docs/faults.md).
            or clock.is_from_the_future(now - login_at)
        ):
            # SECURITY: timed out; from here on this request is anonymous (the view asks for a login).
            sessions_state.forget_session(session.session_key)
            logout(request)
            return None
        # An activity time from the future is reset to this request's: it cannot stretch the idle timeout.
        if now - seen > sessions_state.ACTIVITY_RESOLUTION_SECONDS or clock.is_from_the_future(now - seen):
            sessions_state.touch(state, now)
            session.modified = True
        if sessions_state.saved_under(state) != session.session_key and not note_renewed_key(request):
            setattr(request, ENDED_ATTR, True)
            return None
        # A pending session is already held at step-up: only verified ones are compared with their binding.
        if not sessions_state.is_verified(state):
            setattr(request, PENDING_ATTR, True)
            return session.session_key
        # What the risk engine may call this request's own session, also while the binding re-scores it.
        setattr(
            request,
            device_activity.OWN_SESSION_ATTR,
            (session[SESSION_KEY], device_activity.session_digest(session.session_key)),
        )
        binding = _check_binding(request, state, last_seen=seen)
        if binding == "ended":
            # SECURITY: what a fresh login from here would refuse ends the session; no step-up (case 61).
            # The device's recorded activity stays: the request that ended it may be a thief's, whose next
            # sign-in with the copied device cookie must still meet it.
            sessions_state.forget_session(session.session_key)
            logout(request)
            setattr(request, ENDED_ATTR, True)
            return None
        if binding == "pending":
            setattr(request, PENDING_ATTR, True)
        elif note_device_activity(request, state, now):
            session.modified = True
        return session.session_key

    @staticmethod
    def _drop_ended_session(request: HttpRequest) -> None:
        """The request's session was ended while it ran (a lock, a password reset): never save it again."""
        session = getattr(request, "session", None)
        if session is None or session.session_key is None:
            return
        if session.session_key in sessions_state.ENDED_SESSIONS.get():
            # SECURITY: flush() gives the browser a new, empty session; the old key stays deleted.
            session.flush()
            if hasattr(request, "user"):
                request.user = AnonymousUser()

    # -- after the view --------------------------------------------------------------------------------

    @staticmethod
    def _after_login(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        decision = getattr(request, DECISION_ATTR, None)
        if decision is None or decision.status == "ok" or not isinstance(response, HttpResponseRedirect):
            return response
        if decision.status == "step_up_required":
            return HttpResponseRedirect(step_up_url(request, response.url))
        return HttpResponseRedirect(reverse("authguard:denied"))


# Django's own checks import this class before anything else of authguard (``check_middleware``), also in a
# portal that forgot django-otp, where the factor modules cannot load: they are imported at first use, so
# `manage.py check` can still report authguard.E007.
def _step_up_methods(user: Any) -> list[str]:
    from authguard.factors.methods import step_up_methods  # see above: django-otp may be missing at check

    return step_up_methods(user)


def _check_binding(request: HttpRequest, state: dict[str, Any], *, last_seen: float) -> str:
    from authguard.sessions.rescoring import check_binding  # see above: django-otp may be missing at check

    return check_binding(request, state, last_seen=last_seen)
