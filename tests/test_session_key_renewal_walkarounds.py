"""Red team round forty-three (a): a portal that rotates the session key itself (ASVS 3.2.1 / OWASP "renew
the session id after any privilege level change"), with authguard installed as documented.

authguard ends a user's sessions (sign out everywhere, the lock, the desk) through ``SessionRecord``: the keys
it has recorded. A key the portal rotated was recorded again only at that session's *next* request
(``AuthguardMiddleware._check_session`` -> ``note_session_key``), so the thief holding it waited and outlived
her "sign out everywhere". Fixed: the middleware records a key the view renewed before it answers
(``_note_renewed_key``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from authguard.sessions.decorators import step_up_required

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, OrderApi, of_long_standing, totp_token
from .factor_scenarios import old_totp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@login_required
@step_up_required(max_age=300)
def enter_trading_mode(request: HttpRequest) -> JsonResponse:
    """The portal's own privileged page: after the step-up it renews the session id, as OWASP and ASVS
    3.2.1 ask after a privilege change."""
    request.session.cycle_key()
    request.session["trading_mode"] = True
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("portal/trading-mode", enter_trading_mode),
    path("", include("demo_site.urls")),
]


@pytest.fixture
def portal(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.AUTHGUARD_LOCKOUT_FAILURES = None


@pytest.mark.battery(21)
def test_a_session_whose_key_the_portal_renewed_outlives_her_sign_out_everywhere(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: "sign out everywhere else" (and the lock, and the desk's end-sessions) ends every session of
    the account, also one whose key the portal's own code renewed after a step-up.

    The thief has hanako's password and one relayed code. From Osaka he signs in, is stepped up, passes her
    relayed TOTP code and opens the portal's trading page, which renews his session key. He then sends
    nothing. hanako gets the new-device notice, signs in at home, confirms with her authenticator app and
    presses "sign out everywhere else". Her sign-out deletes the *old* key's record; his renewed key was never
    recorded, so it lives on, and his next request is a verified session of her account."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)

    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    assert thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}).json()["status"] in (
        "ok",
        "step_up_required",
    )
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert relayed.status_code == 200, relayed.content
    assert thief.get("/api/portfolio").status_code == 200
    assert thief.client.get("/portal/trading-mode").status_code == 200  # the portal renews his key

    clock.shift(10 * 60)  # hanako reads the notice
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    ended = her.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=her.token)
    assert ended.status_code == 302 and ended["Location"].endswith("/authguard/security/"), ended

    clock.shift(10 * 60)
    after = thief.get("/api/portfolio")
    assert after.status_code == 401, after.content


def test_held_without_the_portals_renewal_her_sign_out_everywhere_ends_his_session(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The control: the same thief who does not pass through the portal's renewal is signed out by her."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert thief.get("/api/portfolio").status_code == 200
    clock.shift(10 * 60)
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    her.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=her.token)
    clock.shift(10 * 60)
    assert thief.get("/api/portfolio").status_code == 401
