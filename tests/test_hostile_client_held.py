"""Red team round thirty-nine (a): a hostile client against every URL of the demo, attacks that held.

Signed out, signed in (verified) and signed in with the password only (pending step-up), the client sends:
NUL bytes and latin-1 bytes in the headers authguard reads (User-Agent, X-Forwarded-For behind a trusted
proxy, Sec-Secure-Session-Id, Secure-Session-Response, Accept-Language) and in the device, session, CSRF and
DBSC bound cookies; odd path parameters (-1, 0, 2**63, 2**64, "abc", %00, %ED%A0%80, 5,000 characters);
odd content types (text/plain JSON, utf-16 JSON, an unknown charset, broken multipart, repeated form keys);
odd methods (HEAD, OPTIONS, TRACE, PROPFIND); NUL, lone-surrogate and 100 KB strings under every field name
the views read, flat and nested; typed garbage (1e309, -0.0, 2**64, booleans, lists, objects, full-width
digits) in the order, withdrawal and bank-account APIs; TOTP codes of the wrong shape on the step-up API.
Every answer is below 500, nothing garbage is accepted, and a wrong-shaped code never verifies.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.sessions import state as sessions_state

from .conftest import HANAKO_PASSWORD, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, api_post, totp_token
from .test_url_walk import ENDS_SESSION, all_urls

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

States = dict[str, Callable[[], Client]]


def _crash(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {str(exc)[:100]} @ {frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}"


def _send(client: Client, method: str, kwargs: dict[str, Any], crashes: set[str], label: str) -> Any:
    try:
        response = getattr(client, method)(**kwargs)
    except Exception as exc:  # the test client re-raises a view's exception
        crashes.add(f"[{label}] {method} {kwargs.get('path', '')[:60]}: {_crash(exc)}")
        return None
    if response.status_code >= 500:
        crashes.add(f"[{label}] {method} {kwargs.get('path', '')[:60]}: {response.status_code}")
    return response


@pytest.fixture
def states(brokerage_customer: Any, browser_at: Any) -> States:
    """Client factories: pending (alice, password only, from a Singapore VPS), signed out, and verified
    (hanako, her TOTP code, from Tokyo)."""
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    alice = get_user_model().objects.create_user("alice", "alice@example.jp", "correct horse battery")
    TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)

    def pending() -> Client:
        client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
        client.sign_in("alice")
        assert client.session[sessions_state.STATE_KEY]["s"] == "pending"
        return client

    def signed_out() -> Client:
        return browser_at(IP_TOKYO, UA_CHROME_WIN)

    def verified() -> Client:
        client = browser_at(IP_TOKYO, UA_CHROME_WIN)
        answer = client.sign_in("hanako", HANAKO_PASSWORD)
        if answer.status_code == 302 and answer.url.startswith("/authguard/step-up/"):
            client.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)})
        assert client.session[sessions_state.STATE_KEY]["s"] == "verified"
        return client

    factories: States = {"pending": pending, "signed-out": signed_out, "verified": verified}
    factories["hanako"] = lambda: hanako  # type: ignore[assignment,return-value]
    return factories


def _urls() -> list[tuple[str, str]]:
    return [(p, n) for p, n in all_urls() if n not in ENDS_SESSION and not n.startswith("admin:")]


HOSTILE_HEADERS: dict[str, str] = {
    "HTTP_USER_AGENT": UA_CHROME_WIN + "\x00\u00ff",
    "HTTP_X_FORWARDED_FOR": "1.2.3.4\x00, ::ffff:999.1.1.1, [::1]:80, 1.2.3.4%eth0, " + "9" * 300,
    "HTTP_SEC_SECURE_SESSION_ID": '"a\x00b"',
    "HTTP_SECURE_SESSION_RESPONSE": "eyJhbGciOiJFUzI1NiJ9.eyJ4Ijoi\x00.AAAA",
    "HTTP_ACCEPT_LANGUAGE": "ja\x00,\u00ff;q=" + "9" * 300,
    "HTTP_REFERER": "http://testserver/\x00",
    "HTTP_ORIGIN": "http://\x00",
    "HTTP_IDEMPOTENCY_KEY": "k\x00" * 100,
}
HOSTILE_COOKIES = {
    "authguard_device": ["a\x00b", "x:y:z\x00", "\u00ff" * 5],
    "sessionid": ["a\x00b", "\u00ff" * 3],
    "csrftoken": ["\x00" * 32],
}


@pytest.mark.parametrize("state", ["pending", "signed-out", "verified"])
def test_held_nul_and_latin1_headers_and_cookies_on_every_url(
    states: States, state: str, settings: Any
) -> None:
    """Held: NUL and latin-1 bytes in every header and cookie authguard reads (DBSC on, the proxy trusted)."""
    settings.AUTHGUARD_TRUSTED_PROXIES = ["203.0.113.0/24", "198.51.100.0/24"]
    settings.AUTHGUARD_DBSC = {"ENABLED": True}
    crashes: set[str] = set()
    client = states[state]()
    for path, _name in _urls():
        _send(client, "get", {"path": path, **HOSTILE_HEADERS}, crashes, state)
        body = {"data": b"{}", "content_type": "application/json"}
        _send(client, "post", {"path": path, **body, **HOSTILE_HEADERS}, crashes, state)
    for cookie, values in HOSTILE_COOKIES.items():
        for value in values:
            client = states[state]()
            client.cookies[cookie] = value
            for path, _name in _urls():
                _send(client, "get", {"path": path}, crashes, f"{state} {cookie}")
                _send(client, "post", {"path": path, "data": {"code": "1"}}, crashes, f"{state} {cookie}")
    assert not crashes, "\n".join(sorted(crashes))


IDS = [
    "-1",
    "0",
    str(2**63),
    str(2**64),
    "9" * 40,
    "abc",
    "%00",
    "a%00b",
    "%ED%A0%80",
    "%FF",
    "x" * 5000,
    "%C2%B2",
]
PARAM_PATHS = [
    "/authguard/security/devices/{i}/revoke/",
    "/authguard/security/factors/totp/{i}/remove/",
    "/authguard/security/factors/{i}/1/remove/",
    "/authguard/confirmations/{i}/",
    "/authguard/api/confirmations/{i}/passkey/options",
    "/authguard/api/confirmations/{i}/passkey",
    "/authguard/api/confirmations/{i}/totp",
    "/authguard/api/confirmations/{i}/cancel",
    "/authguard/actions/{i}/",
    "/authguard/api/actions/{i}/passkey/options",
    "/authguard/api/actions/{i}/passkey",
    "/authguard/api/actions/{i}/totp",
    "/authguard/api/actions/{i}/cancel",
    "/password/reset/{i}/{i}/",
]


def test_held_hostile_path_parameters(states: States) -> None:
    """Held: ids of every odd shape in every URL with a path parameter, GET, JSON POST and form POST."""
    crashes: set[str] = set()
    for state in ("pending", "verified", "signed-out"):
        client = states[state]()
        for template in PARAM_PATHS:
            for value in IDS:
                path = template.format(i=value)
                _send(client, "get", {"path": path}, crashes, state)
                json_body = {"data": b'{"code": "123456"}', "content_type": "application/json"}
                _send(client, "post", {"path": path, **json_body}, crashes, state)
                _send(
                    client,
                    "post",
                    {"path": path, "data": {"code": "123456", "action": "cancel"}},
                    crashes,
                    state,
                )
    assert not crashes, "\n".join(sorted(crashes))


CONTENT = [
    ("application/json; charset=utf-16", '{"code": "123456"}'.encode("utf-16")),
    ("application/json; charset=bogus", b'{"code": "123456"}'),
    ("application/json; charset=latin-1", b'{"code": "\xff"}'),
    ("text/plain", b'{"code": "123456"}'),
    (
        "multipart/form-data; boundary=XX",
        b'--XX\r\nContent-Disposition: form-data; name="code"\r\n\r\n123456',
    ),
    ("multipart/form-data", b"garbage"),
    (
        "application/x-www-form-urlencoded",
        b"code=1&code=2&symbol=7203&symbol=6758&next=/&next=//evil.example",
    ),
    ("", b"{}"),
    ("application/json", b"\xef\xbb\xbf{}"),
    ("application/json", b'{"a": 1, "a": 2}'),
    ("application/json", b'{"code": 1e309, "quantity": -0.0, "amount": 1e309, "id": 18446744073709551616}'),
]


@pytest.mark.parametrize("state", ["pending", "signed-out", "verified"])
def test_held_odd_content_types_and_methods(states: States, state: str) -> None:
    """Held: every URL with odd content types, repeated keys and methods outside the usual five."""
    crashes: set[str] = set()
    client = states[state]()
    for path, _name in _urls():
        for content_type, body in CONTENT:
            kwargs = {"method": "POST", "path": path, "data": body, "content_type": content_type}
            _send(client, "generic", kwargs, crashes, state)
        for method in ("HEAD", "OPTIONS", "TRACE", "PROPFIND", "get"):
            _send(client, "generic", {"method": method, "path": path}, crashes, state)
    assert not crashes, "\n".join(sorted(crashes))


FIELDS = [
    "symbol",
    "side",
    "quantity",
    "amount",
    "code",
    "token",
    "id",
    "confirmation_id",
    "name",
    "label",
    "email",
    "username",
    "password",
    "next",
    "reason",
    "bank_account_id",
    "bank_code",
    "bank_name",
    "branch_code",
    "account_type",
    "account_number",
    "holder_name",
    "credential",
    "rawId",
    "response",
    "clientDataJSON",
    "attestationObject",
    "authenticatorData",
    "signature",
    "userHandle",
    "ids",
    "type",
    "step_up_token",
]


@pytest.mark.parametrize(
    "value", ["a\x00b", "a\ud800b", "x" * 100_000], ids=["nul", "lone-surrogate", "100KB"]
)
def test_held_hostile_strings_under_every_field_name(states: States, value: str) -> None:
    """Held: the same hostile string under every field name, flat and nested, JSON and form."""
    crashes: set[str] = set()
    flat = {field: value for field in FIELDS}
    nested = {**flat, "credential": dict(flat), "response": dict(flat)}
    for state in ("pending", "signed-out", "verified"):
        client = states[state]()
        for path, _name in _urls():
            for body in (flat, nested):
                kwargs = {"path": path, "data": json.dumps(body), "content_type": "application/json"}
                _send(client, "post", kwargs, crashes, state)
            if value != "a\ud800b":  # a browser's form and query cannot carry a lone surrogate
                _send(client, "post", {"path": path, "data": flat}, crashes, state)
                _send(client, "get", {"path": path, "data": {"next": value, "q": value}}, crashes, state)
    assert not crashes, "\n".join(sorted(crashes))


TYPED: list[Any] = [
    None,
    True,
    False,
    0,
    -0.0,
    -1,
    1.5,
    1e309,
    2**63,
    2**64,
    10**400,
    "1",
    " 1 ",
    "１",
    "1e3",
    "0x10",
    "1_000",
    [],
    {},
    [1],
    {"a": 1},
    "",
    "\x00",
    "7203\x00",
    "a" * 100_000,
]


def test_held_typed_garbage_in_the_money_and_order_apis(states: States) -> None:
    """Held: typed garbage in each field of the order, withdrawal and bank-account APIs: 4xx, and no order,
    withdrawal or bank account row is written."""
    from demo_site.brokerage.models import BankAccount, Order, Withdrawal

    client = states["verified"]()
    crashes: set[str] = set()
    before = (Order.objects.count(), Withdrawal.objects.count(), BankAccount.objects.count())
    bank = {
        "bank_code": "0001",
        "bank_name": "Mizuho",
        "branch_code": "001",
        "account_type": "ordinary",
        "account_number": "1234567",
        "holder_name": "YAMADA HANAKO",
    }
    cases = [
        ("/api/orders", {"side": "buy", "symbol": "7203", "quantity": 1}),
        ("/api/withdrawals", {"bank_account_id": 1, "amount": 1000}),
        ("/api/bank-accounts", bank),
    ]
    for path, valid in cases:
        for field in valid:
            for value in [*TYPED, "x\u202ey", "\u3000", "a\ud800"]:
                body = json.dumps({**valid, field: value})
                answer = _send(
                    client,
                    "post",
                    {"path": path, "data": body, "content_type": "application/json"},
                    crashes,
                    path,
                )
                if answer is not None and answer.status_code < 300:
                    crashes.add(f"{path} accepted {field}={str(value)[:20]!r}: {answer.status_code}")
    assert not crashes, "\n".join(sorted(crashes))
    assert (Order.objects.count(), Withdrawal.objects.count(), BankAccount.objects.count()) == before


def test_held_wrong_shaped_totp_codes_on_the_step_up_api(states: States) -> None:
    """Held: the thief's relayed code in the wrong shape (full-width digits, a seventh digit, as a number,
    inside an object) is refused with a 4xx and the session stays pending; "" and whitespace too."""
    client = states["pending"]()
    alice = get_user_model().objects.get(username="alice")
    code = totp_token(TOTPDevice.objects.get(user=alice))
    full_width = code.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    for shape in [
        "",
        " ",
        full_width,
        code + "0",
        "0" + code,
        int(code),
        [code],
        {"code": code},
        code + "\x00",
        None,
        True,
    ]:
        answer = api_post(client, "api-step-up-totp", {"code": shape})
        assert 400 <= answer.status_code < 500, (shape, answer.status_code)
        assert client.session[sessions_state.STATE_KEY]["s"] == "pending", shape
    assert SESSION_KEY in client.session
