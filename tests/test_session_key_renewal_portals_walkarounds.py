"""Red team round forty-six: session keys a portal renews in ways other than a view's ``cycle_key()``
(round forty-three's ``_note_renewed_key``). "Sign out everywhere", the lock and the desk end the sessions
authguard has *recorded*; a key renewed where authguard's middleware does not look is recorded only at
that session's next request, and the thief holding it simply waits.

Thief: her password and one relayed TOTP code (as in tests/test_session_key_renewal_walkarounds.py).
Fixed: a request that ends signed in under a renewed key records it before the answer (also one that began
anonymous: a login view's ``login()`` then ``cycle_key()``), and a renewal whose old key's record is gone (her
sign-out came first) ends the session (``authguard.sessions.records.renew_record``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import authenticate, login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, OrderApi, of_long_standing, totp_token
from .factor_scenarios import old_totp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

ROTATE_SECONDS = 5 * 60


class PeriodicSessionRotationMiddleware:
    """A portal's own middleware (OWASP: renew the session id periodically), listed right after Django's
    SessionMiddleware: after the view, a signed-in session older than five minutes under its key gets a
    new one (the answer carries the new cookie)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = request.session
        if "_auth_user_id" in session:
            rotated = session.get("_rotated_at")
            now = time.time()
            if rotated is None:
                session["_rotated_at"] = now
            elif now - rotated > ROTATE_SECONDS:
                session.cycle_key()
                session["_rotated_at"] = now
        return response


@login_required
def portfolio_page(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.user.get_username()})


@csrf_exempt
def portal_login(request: HttpRequest) -> JsonResponse:
    """The portal's own app login: authenticate, login(), then a belt-and-braces cycle_key() ("renew the
    session id after sign-in", copied from a security checklist)."""
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        return JsonResponse({"status": "error"}, status=401)
    login(request, user)
    request.session.cycle_key()
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("portal/portfolio", portfolio_page),
    path("portal/login", portal_login),
    path("", include("demo_site.urls")),
]


@pytest.fixture
def portal(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.AUTHGUARD_LOCKOUT_FAILURES = None


@pytest.fixture
def rotating_portal(portal: None, settings: Any) -> None:
    middleware = list(settings.MIDDLEWARE)
    at = middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1
    middleware.insert(at, f"{__name__}.PeriodicSessionRotationMiddleware")
    settings.MIDDLEWARE = middleware


def _her_sign_out_everywhere(hanako: Any) -> None:
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    ended = her.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=her.token)
    assert ended.status_code == 302 and ended["Location"].endswith("/authguard/security/"), ended


def test_a_key_renewed_by_a_middleware_above_authguard_outlives_her_sign_out_everywhere(
    rotating_portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: "sign out everywhere else" ends every session of the account, also one whose key a portal
    middleware listed above authguard's renewed after the view.

    The thief signs in from Osaka with her password and her relayed code, browses, and six minutes later one
    more page: the portal's rotation middleware (after SessionMiddleware, above authguard) renews his key in
    the answer, after authguard's middleware has already looked. He then sends nothing. hanako signs in at
    home and signs out everywhere else: the old key's record goes, the new key was never recorded."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert thief.get("/portal/portfolio").status_code == 200
    before = thief.client.cookies["sessionid"].value
    clock.shift(6 * 60)
    assert thief.get("/portal/portfolio").status_code == 200
    assert thief.client.cookies["sessionid"].value != before  # the portal renewed his key

    clock.shift(10 * 60)
    _her_sign_out_everywhere(hanako)
    clock.shift(60)
    after = thief.get("/portal/portfolio")
    assert after.status_code != 200, after.content


def test_held_a_key_renewed_by_a_middleware_below_authguard_is_recorded(
    portal: None, hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """The control: the same rotation middleware listed *below* authguard's renews before authguard's answer
    hook, which records the new key; her sign-out ends the thief's session."""
    middleware = list(settings.MIDDLEWARE)
    at = middleware.index("authguard.middleware.AuthguardMiddleware") + 1
    middleware.insert(at, f"{__name__}.PeriodicSessionRotationMiddleware")
    settings.MIDDLEWARE = middleware
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert thief.get("/portal/portfolio").status_code == 200
    before = thief.client.cookies["sessionid"].value
    clock.shift(6 * 60)
    assert thief.get("/portal/portfolio").status_code == 200
    assert thief.client.cookies["sessionid"].value != before
    clock.shift(10 * 60)
    _her_sign_out_everywhere(hanako)
    clock.shift(60)
    assert thief.get("/portal/portfolio").status_code != 200


def test_a_key_renewed_right_after_login_in_the_login_view_outlives_her_sign_out_everywhere(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: a session whose key the portal's login view renews right after ``login()`` is ended by her
    "sign out everywhere else".

    The portal's app login calls ``login()`` and then ``cycle_key()``. The request began anonymous, so
    authguard's answer hook (which looks for a renewed key only when the request began signed in) records
    nothing: the key ``login()`` made is recorded, the renewed one the thief holds is not."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    signed = thief.client.post("/portal/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert signed.status_code in (200, 302), signed.content
    state = thief.client.session.get("_authguard", {})
    # The scenario needs a sign-in allowed outright (a held one is recorded by its step-up request).
    assert state.get("s") == "verified", state
    clock.shift(10 * 60)
    _her_sign_out_everywhere(hanako)
    clock.shift(60)
    after = thief.get("/portal/portfolio")
    assert after.status_code != 200, after.content


@csrf_exempt
def portal_login_plain(request: HttpRequest) -> JsonResponse:
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        return JsonResponse({"status": "error"}, status=401)
    login(request, user)
    return JsonResponse({"status": "ok"})


urlpatterns.insert(0, path("portal/login-plain", portal_login_plain))


def test_held_without_the_renewal_after_login_her_sign_out_everywhere_ends_his_session(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The control: the same login view without its ``cycle_key()``; her sign-out ends the thief's session."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.client.post("/portal/login-plain", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.client.session.get("_authguard", {}).get("s") == "verified"
    clock.shift(10 * 60)
    _her_sign_out_everywhere(hanako)
    clock.shift(60)
    assert thief.get("/portal/portfolio").status_code != 200
