"""``@step_up_required`` and ``@step_up_exempt`` on ``async def`` views, and the middleware on an async
stack (issue 14, item 5).

Each case runs through Django's ``AsyncClient`` (the ASGI handler) and the sync ``Client`` (WSGI), on the
demo's stack and on an all-async stack (the demo's without its one sync-only middleware, so that
:class:`~authguard.middleware.AuthguardMiddleware` itself runs in its async mode), and compares the async
views' answers with their sync twins' (:mod:`tests.async_urlconf`).
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client

from authguard.sessions.decorators import step_up_exempt, step_up_required
from authguard.sessions.middleware import AuthguardMiddleware

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, totp_token

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("geoip"),
    pytest.mark.urls("tests.async_urlconf"),
]

#: The "async stack" variant leaves out the staff console's middleware (the demo's stack keeps it; both are
#: async-capable now, so either stack runs authguard's middleware in its async mode under ASGI).
SYNC_ONLY = "authguard.console.guard.StaffPasskeyMiddleware"


@pytest.fixture(params=["demo stack", "async stack"])
def stack(request: pytest.FixtureRequest, settings: Any) -> str:
    if request.param == "async stack":
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != SYNC_ONLY]
    return str(request.param)


class PlacedAsyncClient(AsyncClient):
    """An ``AsyncClient`` whose requests come from ``ip`` (the ASGI scope's ``client``)."""

    def __init__(self, ip: str) -> None:
        super().__init__()
        self.ip = ip

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._base_scope(**request)
        scope["client"] = [self.ip, 0]
        return scope


def get(kind: str, cookies: SimpleCookie, path: str, *, ip: str = IP_TOKYO, json: bool = False) -> Any:
    """GET ``path`` with ``cookies`` through the sync ``Client`` or the ``AsyncClient``, from ``ip``."""
    headers = {"user-agent": UA_CHROME_WIN}
    if json:
        headers["accept"] = "application/json"
    if kind == "sync":
        client = Client(REMOTE_ADDR=ip)
        client.cookies = cookies
        return client.get(path, headers=headers)

    async def fetch() -> Any:
        client = PlacedAsyncClient(ip)
        client.cookies = cookies
        return await client.get(path, headers=headers)

    return async_to_sync(fetch)()


def answer_of(response: Any) -> tuple[int, str, Any]:
    """What a customer sees: the status, where a redirect leads (the twins' paths made equal), the JSON
    status and methods (or the page)."""
    location = response.get("Location", "").replace("/async/", "/twin/").replace("/sync/", "/twin/")
    if response.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        return response.status_code, location, (body.get("status"), body.get("methods"), body.get("async"))
    return response.status_code, location, response.content.decode()


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """alice with an authenticator app (the recipe ``alice_with_totp`` of tests/conftest.py)."""
    return alice_with_totp


def signed_in(browser_at: Any, ip: str) -> Client:
    client = browser_at(ip, UA_CHROME_WIN)
    client.sign_in("alice")
    return client


def test_the_decorators_keep_async_views_async() -> None:
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    for decorated in (step_up_exempt(view), step_up_required(view), step_up_required(max_age=5)(view)):
        assert iscoroutinefunction(decorated) and decorated.__name__ == "view"
    for decorated in (step_up_exempt(sync_view), step_up_required(sync_view)):
        assert not iscoroutinefunction(decorated)
    assert step_up_exempt(view).step_up_exempt is True  # type: ignore[attr-defined]


class SyncOnlyMiddleware:
    """A portal's own sync-only middleware (Django's default: ``sync_capable`` only)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


def test_the_middleware_runs_in_the_mode_of_its_stack(settings: Any) -> None:
    async def async_next(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert iscoroutinefunction(AuthguardMiddleware(async_next))
    assert not iscoroutinefunction(AuthguardMiddleware(lambda request: HttpResponse()))
    assert AuthguardMiddleware.sync_capable and AuthguardMiddleware.async_capable
    from authguard.console.guard import StaffPasskeyMiddleware

    assert StaffPasskeyMiddleware.sync_capable and StaffPasskeyMiddleware.async_capable

    def authguard_in_chain() -> AuthguardMiddleware:
        handler = ASGIHandler()  # loads the middleware for an async server
        link: Any = handler._middleware_chain
        while not isinstance(link, AuthguardMiddleware):
            link = getattr(link, "__wrapped__", None) or link.get_response
        return link

    assert authguard_in_chain().async_mode is True  # the demo's stack: nothing sync below it
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != SYNC_ONLY]
    assert authguard_in_chain().async_mode is True  # nothing sync below it: it runs async, unadapted
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.test_async_views.SyncOnlyMiddleware"]
    assert authguard_in_chain().async_mode is False  # a sync-only middleware below it: Django adapts


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_anonymous_visitors_get_the_same_answers_from_async_and_sync_views(kind: str, stack: str) -> None:
    for name in ("withdraw", "help", "private"):
        async_answer = answer_of(get(kind, SimpleCookie(), f"/async/{name}/"))
        sync_answer = answer_of(get(kind, SimpleCookie(), f"/sync/{name}/"))
        assert async_answer[:2] == sync_answer[:2], name
    assert get(kind, SimpleCookie(), "/async/withdraw/")["Location"] == "/login/?next=/async/withdraw/"
    api = get(kind, SimpleCookie(), "/async/api/statements")
    assert api.status_code == 401 and api.json()["status"] == "login_required"
    assert get(kind, SimpleCookie(), "/async/help/").content == b"async help"


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_pending_session_is_refused_by_async_views_as_by_sync_ones(
    kind: str, stack: str, alice: Any, browser_at: Any
) -> None:
    client = signed_in(browser_at, IP_SG_VPS)
    assert client.session["_authguard"]["s"] == "pending"
    cookies = client.cookies
    private = get(kind, cookies, "/async/private/", ip=IP_SG_VPS)
    assert private.status_code == 302 and private["Location"] == "/authguard/step-up/?next=/async/private/"
    withdraw = get(kind, cookies, "/async/withdraw/", ip=IP_SG_VPS)
    assert withdraw.status_code == 302 and withdraw["Location"].startswith("/authguard/step-up/")
    api = get(kind, cookies, "/async/api/statements", ip=IP_SG_VPS, json=True)
    assert api.status_code == 401 and api.json()["status"] == "step_up_required"
    assert api.json()["methods"] == ["totp"]
    assert get(kind, cookies, "/async/help/", ip=IP_SG_VPS).content == b"async help"
    for name in ("withdraw", "help", "private", "api/statements"):
        json = name.startswith("api/")
        async_answer = answer_of(get(kind, cookies, f"/async/{name}", ip=IP_SG_VPS, json=json))
        sync_answer = answer_of(get(kind, cookies, f"/sync/{name}", ip=IP_SG_VPS, json=json))
        assert async_answer[:2] == sync_answer[:2], name
    assert client.session["_authguard"]["s"] == "pending"  # nothing above let it through


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_verified_session_needs_a_fresh_factor_and_then_reaches_async_views(
    kind: str, stack: str, alice: Any, browser_at: Any
) -> None:
    client = signed_in(browser_at, IP_TOKYO)
    assert client.session["_authguard"]["s"] == "verified"
    cookies = client.cookies
    assert get(kind, cookies, "/async/private/").content == b"async private"
    stale = get(kind, cookies, "/async/withdraw/")
    assert stale.status_code == 302 and stale["Location"] == "/authguard/reverify/?next=/async/withdraw/"
    api = get(kind, cookies, "/async/api/statements", json=True)
    assert api.status_code == 403 and api.json()["status"] == "step_up_required"
    assert answer_of(api)[:2] == answer_of(get(kind, cookies, "/sync/api/statements", json=True))[:2]
    assert client.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)}).status_code == 302
    fresh = get(kind, cookies, "/async/withdraw/")
    assert fresh.status_code == 200 and fresh.content == b"async withdrawal form for alice"
    statements = get(kind, cookies, "/async/api/statements", json=True)
    assert statements.status_code == 200 and statements.json() == {"status": "ok", "async": True}
