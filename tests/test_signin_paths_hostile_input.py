"""Red team, round twenty-five (d): attacks tried that held, kept for their coverage.

* The same thief (her password, her user agent, a garbled or forged copy of the device cookie, unicode and
  latin-1 bytes in the headers) through the three sign-in paths a portal exposes: the HTML form, the JSON
  API and the DRF token endpoint. Each answers without a server error, and each scores the attempt the
  same (action, score, reasons).
* Hostile bodies on the DRF token step-up exchange (wrong types, undecodable bytes, a huge or nested
  body, a garbage step-up token): 4xx, and the parked login never turns into a token.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from authguard.models import LoginEvent

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: What an infostealer's replay or a broken client sends as the device cookie.
GARBLED_COOKIES = ["", "abc:def", "\u00e9" * 10, "x" * 199 + ":", ":" * 50, "a:b:c:d", "=" * 3]
#: Header values as a WSGI server hands them over (latin-1 decoded bytes), and an oversized one.
HOSTILE_HEADERS = [
    {"HTTP_USER_AGENT": UA_CHROME_WIN + " \u00e3\u0081\u0082\u00ff"},
    {"HTTP_USER_AGENT": UA_CHROME_WIN, "HTTP_ACCEPT_LANGUAGE": "ja-JP;q=" + "9" * 400 + ",\u00ff"},
    {"HTTP_USER_AGENT": "A" * 20_000},
]


def _usual_customer(brokerage_customer: Any) -> Any:
    """Hanako, a customer of long standing, signing in every day for 40 days from home (OCN Tokyo, her PC)."""
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    hanako.date_joined -= timedelta(days=400)
    hanako.save(update_fields=["date_joined"])
    now = timezone.now()
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    for day in range(40, 0, -1):
        with time_machine.travel(now - timedelta(days=day), tick=False):
            her.get("/login/")
            signed_in: Any = her.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD})
            if signed_in.url.startswith("/authguard/step-up/"):
                her.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)})
            her.post("/logout/")
    return hanako


def _sign_in(path: str, client: Client) -> int:
    if path == "form":
        client.get("/login/")
        return client.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD}).status_code
    body = json.dumps({"username": "hanako", "password": HANAKO_PASSWORD})
    if path == "api":
        client.get("/api/csrf")
        return client.post("/api/login", data=body, content_type="application/json").status_code
    return client.post("/api/auth/token", data=body, content_type="application/json").status_code


def test_held_a_garbled_device_cookie_or_hostile_headers_score_the_same_on_every_sign_in_path(
    brokerage_customer: Any, settings: Any
) -> None:
    settings.ROOT_URLCONF = "tests.drf_urlconf"
    _usual_customer(brokerage_customer)
    attempts: list[tuple[dict[str, str], str | None]] = [
        ({"HTTP_USER_AGENT": UA_CHROME_WIN}, c) for c in GARBLED_COOKIES
    ]
    attempts += [(headers, None) for headers in HOSTILE_HEADERS]
    for headers, cookie in attempts:
        seen = {}
        for path in ("form", "api", "drf"):
            meta: dict[str, Any] = {"REMOTE_ADDR": IP_OSAKA, **headers}
            thief = Client(**meta)
            if cookie is not None:
                thief.cookies["authguard_device"] = cookie
            status = _sign_in(path, thief)
            assert status < 500, (path, headers, cookie, status)
            event = LoginEvent.objects.latest("pk")
            assert event.password_ok and event.user is not None
            seen[path] = (event.action, event.score, sorted(event.reasons))
        assert seen["form"] == seen["api"] == seen["drf"], (headers, cookie, seen)
        # A new browser on a network she never used: never allowed outright, whatever the cookie says.
        assert seen["form"][0] != "allow", seen
    assert not Token.objects.exists()


def test_held_hostile_bodies_on_the_token_step_up_exchange_get_4xx_and_no_token(
    brokerage_customer: Any, settings: Any
) -> None:
    settings.ROOT_URLCONF = "tests.drf_urlconf"
    brokerage_customer(holdings={"7203": 100}, totp=True)
    thief = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    parked = thief.post(
        "/api/auth/token",
        data=json.dumps({"username": "hanako", "password": HANAKO_PASSWORD}),
        content_type="application/json",
    )
    assert parked.status_code == 401
    token = parked.json()["step_up_token"]
    garbage: list[Any] = ["\ud800", "\x00", "a" * 70_000, 1, None, [], {}, True, 1e308, "x.y.z", "a:b:c"]
    bodies: list[tuple[str, bytes | str]] = []
    for value in garbage:
        for body in (
            {"step_up_token": value, "code": "123456"},
            {"step_up_token": token, "code": value},
            {"step_up_token": token, "credential": value},
        ):
            bodies.append(("application/json", json.dumps(body)))
    bodies += [
        ("application/json", b"[" * 100_000),
        ("application/json", b"\xff\xfe"),
        ("multipart/form-data; boundary=x", b"--x\r\n"),
        ("application/x-www-form-urlencoded", f"step_up_token={token}&code=%FF%00".encode()),
        ("text/xml", b"{}"),
    ]
    for path in ("step-up/totp", "step-up/recovery-code", "step-up/passkey/options", "step-up/passkey"):
        for content_type, data in bodies:
            response = thief.post("/api/auth/" + path, data=data, content_type=content_type)
            assert 400 <= response.status_code < 500, (path, str(data)[:60], response.status_code)
    assert not Token.objects.exists()
