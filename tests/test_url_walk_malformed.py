"""Every URL of the demo answers malformed input with a client error, never a server error.

The rule of the product (README, "Bad input gets a clear error"): an endpoint may refuse input with a 4xx and
a message, or show its form again, but never answers 500. The endpoint-by-endpoint tests check the inputs
each view expects; this one is the attacker's sweep: a verified superuser who is also a brokerage customer
(so that nothing but the view's own parsing stands in the way) sends every pattern of the URLconf broken
JSON, JSON of the wrong shape, typed garbage under the field names the views read, undecodable bytes and
garbage query strings, with every method. The test client re-raises a view's exception, so a crash is
reported with its traceback; the walk collects them all before failing. The admin opens only to a staff
session verified with a passkey (authguard.console.guard), so it is swept by a second, passkey-verified
staff member.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY

from authguard.sessions import state as sessions_state

from .conftest import HANAKO_PASSWORD, IP_TOKYO, UA_CHROME_WIN, totp_token
from .console_data import staff_client, staff_user
from .test_url_walk import ENDS_SESSION, all_urls

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: Field names the portal's and authguard's views read, each given a value of the wrong kind.
GARBAGE_FIELDS: dict[str, Any] = {
    "symbol": {"$gt": ""},
    "side": ["sell", "buy"],
    "quantity": "1e400",
    "price": "NaN",
    "amount": -1e308,
    "limit_price": "Infinity",
    "code": 123456789012345678901234567890,
    "token": [],
    "id": "../../etc/passwd",
    "confirmation_id": "x" * 5000,
    "confirmation": {"id": None},
    "credential": {"id": 1, "response": "not an object"},
    "orders": [{"symbol": None, "quantity": {}}, "sell everything"],
    "email": ["thief@evil.example"],
    "name": "\u0000",
    "label": "\ud800",
    "next": "//evil.example/",
    "username": None,
    "password": True,
    "policy": "{",
    "rules": {"x": None},
    "reason": 12,
    "bank_account": {"number": []},
    "days": "-1",
    "since": "not a date",
    "page": "-1",
}
#: The same names as form fields with hostile strings.
GARBAGE_FORM: dict[str, str] = {
    "symbol": "7203\x00",
    "side": "both",
    "quantity": "１２３",
    "price": "inf",
    "amount": "-0",
    "code": "' OR 1=1 --",
    "id": "-1",
    "confirmation_id": "00000000-0000-0000-0000-00000000000g",
    "email": "not-an-email",
    "next": "https://evil.example/",
    "days": "9" * 40,
    "since": "2026-13-45",
    "page": "abc",
    "credential": "{",
}
#: Bodies sent with every non-GET method: (content type, raw body).
BODIES: list[tuple[str, bytes]] = [
    ("application/json", b"{"),
    ("application/json", b"[1, 2]"),
    ("application/json", b'"a string"'),
    ("application/json", b"null"),
    ("application/json", json.dumps(GARBAGE_FIELDS).encode()),
    ("application/json", b'{"quantity": 1' + b"0" * 5000 + b"}"),
    ("application/x-www-form-urlencoded", b"\xff\xfe\x00=%ZZ&quantity=%00"),
    ("text/plain", b"\x00\x01\x02"),
]
QUERY = "?page=-1&page=abc&o=999.x&q=%00&since=notadate&days=-5&id=x&next=//evil.example/&sort=__class__"


def _verified(client: Any) -> bool:
    session = client.session
    return SESSION_KEY in session and session.get(sessions_state.STATE_KEY, {}).get("s") == "verified"


def _attempts(path: str) -> list[tuple[str, dict[str, Any]]]:
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("get", {"path": path + QUERY}),
        ("get", {"path": path + QUERY, "HTTP_ACCEPT": "application/json"}),
        ("post", {"path": path, "data": GARBAGE_FORM}),
    ]
    for method in ("post", "put", "patch", "delete"):
        for content_type, body in BODIES if method == "post" else BODIES[:1] + BODIES[4:5]:
            attempts.append((method, {"path": path, "data": body, "content_type": content_type}))
    return attempts


def sweep(sign_in: Callable[[], Any], urls: list[tuple[str, str]]) -> tuple[list[str], Counter[int], int]:
    """Send every attempt to every URL; returns the crashes, the statuses seen and how often the session
    had to be signed in again."""
    client = sign_in()
    crashes: list[str] = []
    statuses: Counter[int] = Counter()
    lost = 0
    for path, name in urls:
        for method, kwargs in _attempts(path):
            try:
                response = getattr(client, method)(**kwargs)
            except Exception as exc:  # the test client re-raises the view's exception
                crashes.append(
                    f"{method.upper()} {kwargs['path'][:80]} ({name}): {type(exc).__name__}: {exc}"
                )
                continue
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                crashes.append(f"{method.upper()} {kwargs['path'][:80]} ({name}): {response.status_code}")
            if not _verified(client):
                # A garbage request that ended or held the session (a real outcome for some views, such as
                # "end this session") must not hide the rest of the walk: sign in again.
                lost += 1
                client = sign_in()
    return crashes, statuses, lost


def test_every_customer_url_answers_malformed_input_without_a_server_error(
    brokerage_customer: Any, browser_at: Any
) -> None:
    user = brokerage_customer(holdings={"7203": 100, "6758": 50}, totp=True)

    def sign_in() -> Any:
        client = browser_at(IP_TOKYO, UA_CHROME_WIN)
        response = client.sign_in("hanako", HANAKO_PASSWORD)
        if response.status_code == 302 and response.url.startswith("/authguard/step-up/"):
            client.post("/authguard/step-up/totp/", {"code": totp_token(user.totp)})
        assert _verified(client)
        return client

    urls = [
        (path, name)
        for path, name in all_urls()
        if name not in ENDS_SESSION and not name.startswith("admin:")
    ]
    crashes, statuses, lost = sweep(sign_in, urls)
    assert not crashes, "\n".join(crashes)
    assert sum(statuses.values()) > 1000
    # The walk reached the views' own parsing: their refusals, not a step-up hold or a login redirect.
    assert statuses[400] > 100 and statuses[200] > 20, statuses
    assert lost < 10, lost


def test_every_admin_url_answers_malformed_input_without_a_server_error(brokerage_customer: Any) -> None:
    brokerage_customer(holdings={"7203": 100}, totp=True)  # objects for the change pages to find
    root = staff_user("root", superuser=True)

    def sign_in() -> Any:
        client = staff_client(root)
        assert _verified(client)
        return client

    urls = [
        (path, name) for path, name in all_urls() if name.startswith("admin:") and name not in ENDS_SESSION
    ]
    crashes, statuses, lost = sweep(sign_in, urls)
    assert not crashes, "\n".join(crashes)
    assert sum(statuses.values()) > 1000
    # The admin answered with its pages and forms (a 403 is its answer to editing a read-only record).
    assert statuses[200] > 200, statuses
    assert lost < 10, lost
