"""Red team round thirty-nine (a): a hostile client against every URL of portal two, attacks that held.

Signed out, pending (password only from a Singapore VPS), verified, and with a DRF token: every URL with
garbage query strings and forms, NUL and latin-1 headers (User-Agent, X-Forwarded-For, Sec-Secure-Session-Id,
a NUL in the Authorization token), text/plain and utf-16 JSON, broken multipart, repeated keys, 1e309 and
2**64 numbers, NUL and lone surrogates in the token login's and step-up exchange's fields, nesting past the
recursion limit, and every method. No answer is a 500; a crash is reported at the last frame of authguard
(or of portal two's own code) it passed through.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

import authguard

from ..conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, totp_token
from ..test_url_walk import ENDS_SESSION, all_urls
from ..test_url_walk_malformed import BODIES, GARBAGE_FORM, QUERY
from .support import api, browser, with_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: The repository's own code: authguard, and portal two (this file aside).
PACKAGE = Path(authguard.__file__).resolve().parent
PORTAL_TWO = Path(__file__).resolve().parent
THIS_FILE = Path(__file__).resolve()
ROOT = PACKAGE.parent


def _own(filename: str) -> bool:
    path = Path(filename).resolve()
    return path.is_relative_to(PACKAGE) or (path.is_relative_to(PORTAL_TWO) and path != THIS_FILE)


def where(exc: BaseException) -> str:
    """Where a crash happened: the last frame in the repository's own code (else the last frame)."""
    tb = traceback.extract_tb(exc.__traceback__)
    own = [frame for frame in tb if _own(frame.filename)]
    frame = own[-1] if own else tb[-1]
    path = Path(frame.filename).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}:{frame.lineno} {frame.name}"


CTYPES = [
    ("text/plain", b'{"code": "123456"}'),
    (
        "multipart/form-data; boundary=XX",
        b'--XX\r\nContent-Disposition: form-data; name="code"\r\n\r\n123456',
    ),
    ("multipart/form-data", b"garbage"),
    (
        "application/x-www-form-urlencoded",
        b"code=1&code=2&username=a&username=b&email=x&email=y&password=p&password=q",
    ),
    ("application/json; charset=utf-16", '{"code": "123456"}'.encode("utf-16")),
    (
        "application/json",
        b'{"code": 1e309, "quantity": -0, "amount": 1e309, "id": 18446744073709551616, '
        b'"step_up_token": 1e309, "username": 1e309}',
    ),
    (
        "application/json",
        b'{"step_up_token": "a\\u0000b", "code": "\\ud800", "username": "\\ud800", '
        b'"email":"a\\u0000@x", "password": "\\ud800"}',
    ),
    ("application/json", b'{"step_up_token": [], "credential": "{", "code": {}}'),
    ("application/json", b"[" * 5000),
]
for ct, b in BODIES:
    CTYPES.append((ct, b))

HDRS = {
    "HTTP_USER_AGENT": UA_CHROME_WIN + "\x00\xff",
    "HTTP_X_FORWARDED_FOR": "1.2.3.4\x00",
    "HTTP_SEC_SECURE_SESSION_ID": '"\x00"',
    "HTTP_AUTHORIZATION": "Token a\x00b",
}


def test_held_every_portal_two_url_answers_hostile_input_below_500(
    user_factory: Any, totp_factory: Any, settings: Any
) -> None:
    alice = user_factory("alice")
    alice.totp = totp_factory(alice)
    bob = user_factory("bob")
    bob.totp = totp_factory(bob)
    carol = user_factory("carol")
    totp_factory(carol)
    pend = browser(IP_SG_VPS)
    pend.sign_in("alice@example.jp")
    assert pend.session["_authguard"]["s"] == "pending"
    ver = browser(IP_TOKYO)
    r = ver.sign_in("bob@example.jp")
    if r.url.startswith("/authguard/step-up"):
        ver.post("/authguard/step-up/totp/", {"code": totp_token(bob.totp)})
    assert ver.session["_authguard"]["s"] == "verified"
    tok = api(IP_TOKYO)
    t = tok.post(
        "/api/v1/auth/token",
        {"username": "carol@example.jp", "password": "correct horse battery"},
        format="json",
    )
    assert t.status_code == 200, t.content
    with_token(tok, t.json()["token"])
    out = Client()
    urls = [(p, n) for p, n in all_urls() if n not in ENDS_SESSION and not n.startswith("admin:")]
    crashes: set[str] = set()
    for label, c in (("pending", pend), ("verified", ver), ("token", tok), ("out", out)):
        for path, name in urls:
            atts: list[tuple[str, dict[str, Any]]] = [
                ("get", {"path": path + QUERY}),
                ("post", {"path": path, "data": GARBAGE_FORM}),
                ("get", {"path": path, **HDRS}),
                ("post", {"path": path, "data": b"{}", "content_type": "application/json", **HDRS}),
            ]
            atts += [
                ("generic", {"method": "POST", "path": path, "data": b, "content_type": ct})
                for ct, b in CTYPES
            ]
            atts += [
                (
                    "generic",
                    {"method": m, "path": path, "data": b'{"a":1}', "content_type": "application/json"},
                )
                for m in ("PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "PROPFIND")
            ]
            for method, kw in atts:
                try:
                    r = getattr(c, method)(**kw)
                except Exception as exc:
                    what = f"{method} {kw.get('method', '')} {name} {kw.get('content_type', '')[:30]}"
                    crashes.add(f"[{label}] {what}: {type(exc).__name__}: {str(exc)[:120]} @ {where(exc)}")
                    continue
                if r.status_code >= 500:
                    crashes.add(f"[{label}] {method} {name}: {r.status_code}")
    assert not crashes, "\n".join(sorted(crashes))
