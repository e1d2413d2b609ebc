"""Red team round forty-six: answers to a signed-in customer cached where authguard's ``Cache-Control:
private`` (round forty-three, ``AuthguardMiddleware._after_view``) comes too late or not at all.

Thief: a byte-for-byte copy of her cookie jar (an infostealer), replayed from a VPS abroad, which authguard
ends at its first request (a fresh sign-in from there would be refused).

Fixed: a session cookie that names no live session is taken out of the ``Cookie`` header before the view
(``AuthguardMiddleware._drop_dead_session_cookie``), so her dead cookie no longer picks her cached pages.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path
from django.utils.decorators import method_decorator
from django.views.decorators.cache import cache_control, cache_page
from django.views.decorators.vary import vary_on_cookie
from django.views.generic import View

from demo_site.brokerage.models import Account

from .conftest import (
    HANAKO_PASSWORD,
    IP_SG_VPS,
    IP_TOKYO,
    UA_CHROME_WIN,
    OrderApi,
    of_long_standing,
    totp_token,
)
from .factor_scenarios import old_totp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _statement_body(request: HttpRequest) -> HttpResponse:
    cash = Account.objects.get(user=request.user).cash
    return HttpResponse(f"<h1>Statement of {request.user.get_username()}</h1><p>cash {cash}</p>")


@method_decorator(cache_page(600), name="dispatch")
@method_decorator(vary_on_cookie, name="dispatch")
class CachedStatement(View):
    """The portal's statement page, cached per user as Django's docs suggest (``cache_page`` with ``Vary:
    Cookie``), a class view whose login check is the ``dispatch`` it decorates (LoginRequiredMixin-style)."""

    @method_decorator(login_required)
    def get(self, request: HttpRequest) -> HttpResponse:
        return _statement_body(request)


@cache_control(public=True, max_age=300)
@login_required
def public_statement(request: HttpRequest) -> HttpResponse:
    """A page whose view marks itself public (a CDN-friendly template default)."""
    return _statement_body(request)


urlpatterns = [
    path("portal/statement", CachedStatement.as_view()),
    path("portal/public-statement", public_statement),
    path("", include("demo_site.urls")),
]


@pytest.fixture
def portal(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.AUTHGUARD_LOCKOUT_FAILURES = None


def _her_session(hanako: Any, totp_factory: Any) -> OrderApi:
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    return her


def _copy(jar: Any) -> dict[str, str]:
    return {name: morsel.value for name, morsel in jar.items()}


def _thief_with(cookies: dict[str, str]) -> Client:
    thief = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    for name, value in cookies.items():
        thief.cookies[name] = value
    return thief


def test_a_copied_jar_reads_her_cache_page_statement_after_she_signs_out(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: a copy of her cookie jar reads nothing of her account: held at step-up while her session
    lives, and nothing once she signed out.

    hanako reads her statement (``cache_page`` + ``Vary: Cookie``, the per-user cache of Django's docs: the
    decorator stores it, keyed on the URL and her Cookie header, *before* authguard's middleware marks the
    answer private), then signs out as her bank tells her to. The thief replays her jar, byte for byte, from
    a VPS in Singapore. While her session lived authguard held the copy at step-up (process_view answers
    before the view). After her sign-out the same bytes are an anonymous request: it reaches the view, and
    ``cache_page`` answers from its cache before the login check: her statement, for ten minutes."""
    her = _her_session(hanako, totp_factory)
    page = her.client.get("/portal/statement")
    assert page.status_code == 200 and b"cash" in page.content
    assert "private" in page.get("Cache-Control", "")  # what authguard did: too late for cache_page
    jar = _copy(her.client.cookies)

    clock.shift(30)
    held = _thief_with(jar).get("/portal/statement")
    assert held.status_code == 302 and "step-up" in held["Location"]  # authguard holds the copy
    her.client.post("/logout/", HTTP_X_CSRFTOKEN=her.token)  # she signs out
    clock.shift(30)
    stolen = _thief_with(jar).get("/portal/statement")
    assert b"Statement of hanako" not in stolen.content, (stolen.status_code, stolen.content)


def test_a_copied_jar_held_at_step_up_signs_out_and_reads_her_cache_page_statement(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: a copy of her cookie jar that authguard holds at step-up reads nothing of her account.

    As above, but the thief does not wait for her: held at step-up, he signs out (a pending session may) with
    one copy, which deletes the shared session, and replays the original bytes: an anonymous request that
    ``cache_page`` answers with her statement (she is signed out as a side effect)."""
    her = _her_session(hanako, totp_factory)
    assert her.client.get("/portal/statement").status_code == 200
    jar = _copy(her.client.cookies)
    clock.shift(30)
    thief = _thief_with(jar)
    assert thief.get("/portal/statement").status_code == 302
    thief.post("/logout/", HTTP_X_CSRFTOKEN=jar["csrftoken"])
    stolen = _thief_with(jar).get("/portal/statement")
    assert b"Statement of hanako" not in stolen.content, (stolen.status_code, stolen.content)


def test_held_a_view_marked_public_is_made_private_for_her(
    portal: None, hanako: Any, totp_factory: Any
) -> None:
    """Secure: a view that marks its answer ``Cache-Control: public`` still answers a signed-in customer
    ``private`` (Django's ``patch_cache_control`` drops ``public`` for ``private``), and with ``Vary: Cookie``
    the HEAD of the same page too."""
    her = _her_session(hanako, totp_factory)
    for method in ("get", "head"):
        answer = getattr(her.client, method)("/portal/public-statement")
        control = answer.get("Cache-Control", "")
        assert answer.status_code == 200 and "private" in control and "public" not in control, (
            method,
            control,
        )
