"""Portal two's ``async def`` views, through Django's ``AsyncClient`` (ASGI) and the sync ``Client``:
``@step_up_required`` refuses a pending session and a password-only one, a verified session passes; the
undecorated async view is guarded by the middleware alone (the demo's twin: tests/test_async_views.py)."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from ..conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, totp_token
from .support import browser

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


class PlacedAsyncClient(AsyncClient):
    """An ``AsyncClient`` whose requests come from ``ip`` (the ASGI scope's ``client``)."""

    def __init__(self, ip: str) -> None:
        super().__init__()
        self.ip = ip

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._base_scope(**request)
        scope["client"] = [self.ip, 0]
        return scope


def get(kind: str, cookies: SimpleCookie, path: str, ip: str) -> Any:
    headers = {"user-agent": UA_CHROME_WIN}
    if kind == "sync":
        client = Client(REMOTE_ADDR=ip)
        client.cookies = cookies
        return client.get(path, headers=headers)

    async def fetch() -> Any:
        client = PlacedAsyncClient(ip)
        client.cookies = cookies
        return await client.get(path, headers=headers)

    return async_to_sync(fetch)()


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """alice with an authenticator app (the recipe ``alice_with_totp`` of tests/conftest.py)."""
    return alice_with_totp


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_pending_session_is_refused_and_a_verified_one_allowed(alice: Any, kind: str) -> None:
    client = browser(IP_SG_VPS, UA_CHROME_WIN)
    assert client.sign_in("alice@example.jp").url.startswith("/authguard/step-up/")
    for path in ("/api/v1/statements", "/api/v1/balance"):
        refused = get(kind, client.cookies, path, IP_SG_VPS)
        assert refused.status_code == 401, (path, refused.content)
        assert refused.json()["status"] == "step_up_required" and refused.json()["methods"] == ["totp"]
    assert client.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)}).status_code == 302
    statements = get(kind, client.cookies, "/api/v1/statements", IP_SG_VPS)
    assert statements.status_code == 200, statements.content
    assert statements.json() == {"status": "ok", "email": "alice@example.jp", "cash": "1000000.00"}
    assert get(kind, client.cookies, "/api/v1/balance", IP_SG_VPS).json()["status"] == "ok"


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_password_only_session_must_prove_a_factor_for_the_decorated_async_view(
    alice: Any, kind: str
) -> None:
    client = browser(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice@example.jp").url == "/"  # allowed: no factor asked
    assert get(kind, client.cookies, "/api/v1/balance", IP_TOKYO).status_code == 200
    refused = get(kind, client.cookies, "/api/v1/statements", IP_TOKYO)
    assert refused.status_code == 403 and refused.json()["status"] == "step_up_required"
    assert client.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)}).status_code == 302
    assert get(kind, client.cookies, "/api/v1/statements", IP_TOKYO).status_code == 200


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_anonymous_requests_are_asked_to_sign_in(db: Any, kind: str) -> None:
    for path in ("/api/v1/statements", "/api/v1/balance"):
        answer = get(kind, SimpleCookie(), path, IP_TOKYO)
        assert answer.status_code == 401 and answer.json()["status"] == "login_required", path
