"""The demo portal's JSON API (CONTRACTS section 3): statuses, CSRF, malformed input, no change on error."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from authguard.login.flow import LoginResult
from demo_site.brokerage import api, services
from demo_site.brokerage.models import Account, Order

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import UA_CHROME_WIN as BROWSER_UA


@pytest.fixture(autouse=True)
def _demo_settings(settings: Any) -> None:
    # The API's contract, not authguard's scoring, is under test here: no risk signal, so logins are allowed.
    settings.AUTHGUARD_RISK_SIGNALS = []
    # Nor the order guard's rules: tests/test_order_api.py tests the guarded order entry.
    settings.AUTHGUARD_ORDER_RULES = []
    settings.CSRF_FAILURE_VIEW = "demo_site.brokerage.api.csrf_failure"


class Api:
    """A browser-like API client: CSRF enforced, the token taken from ``/api/csrf`` and login answers."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA)
        self.token: str | None = None

    def fetch_token(self) -> str:
        response = self.client.get("/api/csrf")
        assert response.status_code == 200
        self.token = response.json()["csrf_token"]
        return self.token

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        token: bool = True,
        method: str = "post",
    ) -> Any:
        headers = {"HTTP_X_CSRFTOKEN": self.token} if token and self.token else {}
        data = raw if raw is not None else json.dumps(body)
        response = getattr(self.client, method)(path, data=data, content_type=content_type, **headers)
        if response.get("Content-Type") == "application/json":
            self.token = response.json().get("csrf_token", self.token)
        return response

    def login(self, username: str = "hanako", password: str = PASSWORD) -> Any:
        if self.token is None:
            self.fetch_token()
        return self.post("/api/login", {"username": username, "password": password})


@pytest.fixture
def customer(brokerage_customer: Any) -> Any:
    """hanako: ¥1,000,000 cash, 100 Toyota (¥2,850) and 10 Apple ($230)."""
    return brokerage_customer(holdings={"7203": 100, "AAPL": 10})


@pytest.fixture
def anon(db: Any) -> Api:
    client = Api()
    client.fetch_token()
    return client


@pytest.fixture
def signed_in(customer: Any) -> Api:
    client = Api()
    response = client.login()
    assert response.status_code == 200 and response.json()["status"] == "ok"
    return client


def state(user: Any) -> tuple[Decimal, dict[str, int], int]:
    account = Account.objects.get(user=user)
    return (
        account.cash,
        dict(account.positions.values_list("instrument__symbol", "quantity")),
        Order.objects.count(),
    )


def assert_json(response: Any, http_status: int, status: str) -> dict[str, Any]:
    assert response.status_code == http_status, response.content
    assert response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert data["status"] == status, data
    return data


# -- CSRF ------------------------------------------------------------------------------------------------


def test_csrf_endpoint_sets_the_cookie_and_returns_a_token(db: Any) -> None:
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA)
    data = assert_json(client.get("/api/csrf"), 200, "ok")
    assert len(data["csrf_token"]) == 64 and "csrftoken" in client.cookies


@pytest.mark.parametrize("token", [None, "", "x" * 64, "wrong"])
def test_a_post_without_a_valid_csrf_token_is_refused_in_json_and_changes_nothing(
    signed_in: Api, customer: Any, token: str | None
) -> None:
    before = state(customer)
    signed_in.token = token
    data = assert_json(
        signed_in.post("/api/orders", {"side": "sell", "symbol": "7203", "quantity": 100}), 403, "csrf_failed"
    )
    assert data["message"]
    assert state(customer) == before
    # The session is still there: with the real token the same order goes through.
    signed_in.fetch_token()
    assert_json(
        signed_in.post("/api/orders", {"side": "sell", "symbol": "7203", "quantity": 100}), 201, "placed"
    )


def test_login_itself_needs_the_csrf_token(customer: Any) -> None:
    client = Api()
    data = assert_json(
        client.post("/api/login", {"username": "hanako", "password": PASSWORD}), 403, "csrf_failed"
    )
    assert "csrf" in data["message"].lower()
    assert_json(client.get("/api/portfolio"), 401, "login_required")


def test_csrf_failures_outside_the_api_keep_djangos_page(customer: Any) -> None:
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA)
    response = client.post("/login/", {"username": "hanako", "password": PASSWORD})
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")


# -- login and logout ------------------------------------------------------------------------------------


def test_login_signs_in_and_rotates_the_csrf_token(customer: Any) -> None:
    client = Api()
    old_token = client.fetch_token()
    data = assert_json(client.login(), 200, "ok")
    assert data["username"] == "hanako" and data["csrf_token"] != old_token
    assert int(client.client.session["_auth_user_id"]) == customer.pk
    assert_json(client.get("/api/portfolio"), 200, "ok")


def test_unknown_user_and_wrong_password_get_the_same_answer(customer: Any, anon: Api) -> None:
    wrong_password = anon.post("/api/login", {"username": "hanako", "password": "not-the-password"})
    unknown_user = anon.post("/api/login", {"username": "nobody", "password": "not-the-password"})
    assert_json(wrong_password, 401, "invalid")
    assert wrong_password.content == unknown_user.content and unknown_user.status_code == 401
    assert "_auth_user_id" not in anon.client.session


@pytest.mark.parametrize(
    ("result", "http_status", "extra"),
    [
        (LoginResult("step_up_required", methods=["passkey", "totp"]), 200, {"methods": ["passkey", "totp"]}),
        (LoginResult("denied"), 403, {}),
        (LoginResult("throttled"), 429, {}),
        (LoginResult("something-new"), 403, {}),
    ],
)
def test_login_maps_every_authguard_decision(
    anon: Api, monkeypatch: Any, result: LoginResult, http_status: int, extra: dict[str, Any]
) -> None:
    calls: list[dict[str, str]] = []

    def fake_password_login(request: Any, *, username: str, password: str) -> LoginResult:
        calls.append({"username": username, "password": password})
        return result

    monkeypatch.setattr(api, "password_login", fake_password_login)
    status = result.status if result.status != "something-new" else "denied"
    data = assert_json(anon.post("/api/login", {"username": "hanako", "password": "pw"}), http_status, status)
    assert calls == [{"username": "hanako", "password": "pw"}]
    for key, value in extra.items():
        assert data[key] == value


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "hanako"},
        {"password": PASSWORD},
        {"username": "", "password": PASSWORD},
        {"username": "hanako", "password": ""},
        {"username": None, "password": PASSWORD},
        {"username": 1, "password": PASSWORD},
        {"username": ["hanako"], "password": PASSWORD},
        {"username": "hanako", "password": 12345678},
        {"username": "h" * 151, "password": PASSWORD},
        {"username": "hanako", "password": "p" * 4097},
        {"username": "hana\x00ko", "password": PASSWORD},
        {"username": "hanako", "password": "pass\x00word"},
    ],
)
def test_login_refuses_malformed_credentials_before_checking_them(
    anon: Api, customer: Any, monkeypatch: Any, body: dict[str, Any]
) -> None:
    monkeypatch.setattr(
        api, "password_login", lambda *a, **k: pytest.fail("password_login must not be called")
    )
    data = assert_json(anon.post("/api/login", body), 400, "invalid")
    assert set(data["errors"]) <= {"username", "password"} and data["errors"]


@pytest.mark.parametrize(
    "raw", ['{"username": "\\ud800", "password": "x"}', '{"username": "a", "password": "\\udfff"}']
)
def test_login_refuses_unencodable_strings(anon: Api, customer: Any, raw: str) -> None:
    assert_json(anon.post("/api/login", raw=raw), 400, "invalid")


def test_long_but_allowed_credentials_reach_authentication(anon: Api, customer: Any) -> None:
    assert_json(anon.post("/api/login", {"username": "h" * 150, "password": "p" * 4096}), 401, "invalid")


def test_logout_ends_the_session(signed_in: Api) -> None:
    assert_json(signed_in.post("/api/logout"), 200, "ok")
    assert_json(signed_in.get("/api/portfolio"), 401, "login_required")
    assert_json(signed_in.post("/api/logout"), 200, "ok")  # again, now anonymous: still fine


# -- reading ---------------------------------------------------------------------------------------------


def test_instruments_are_listed_with_the_contract_fields(customer: Any, anon: Api) -> None:
    data = assert_json(anon.get("/api/instruments"), 200, "ok")
    rows = {row["symbol"]: row for row in data["instruments"]}
    assert len(rows) >= 33
    assert rows["7203"] == {
        "symbol": "7203",
        "name": "Toyota Motor",
        "market": "TSE Prime",
        "currency": "JPY",
        "price": "2850.00",
        "avg_daily_volume": 25_000_000,
        "listing_country": "JP",
        "is_small_cap": False,
    }
    assert rows["AAPL"]["currency"] == "USD" and rows["AAPL"]["price"] == "230.00"
    assert sum(row["is_small_cap"] for row in rows.values()) >= 3


def test_portfolio_needs_a_login(anon: Api, customer: Any) -> None:
    data = assert_json(anon.get("/api/portfolio"), 401, "login_required")
    assert "cash" not in data and "holdings" not in data
    assert_json(anon.get("/api/orders"), 401, "login_required")


def test_portfolio_reports_cash_holdings_and_totals_in_yen(signed_in: Api) -> None:
    data = assert_json(signed_in.get("/api/portfolio"), 200, "ok")
    assert data["cash"] == "1000000.00"
    assert data["holdings"] == [
        {
            "symbol": "7203",
            "name": "Toyota Motor",
            "quantity": 100,
            "price": "2850.00",
            "currency": "JPY",
            "value": "285000.00",
        },
        {
            "symbol": "AAPL",
            "name": "Apple",
            "quantity": 10,
            "price": "230.00",
            "currency": "USD",
            "value": "345000.00",
        },
    ]
    assert Decimal(data["total_value"]) == Decimal("1630000") and Decimal(data["holdings_value"]) == Decimal(
        "630000"
    )
    assert data["fx_usd_jpy"] == "150"
    assert "no-store" in signed_in.get("/api/portfolio")["Cache-Control"]


# -- orders ----------------------------------------------------------------------------------------------


def test_placing_an_order_answers_201_and_moves_cash_and_shares(signed_in: Api, customer: Any) -> None:
    data = assert_json(
        signed_in.post("/api/orders", {"side": "buy", "symbol": "7974", "quantity": 10}), 201, "placed"
    )
    order = Order.objects.get(pk=data["order_id"])
    assert (order.account.user, order.side, order.instrument.symbol, order.quantity) == (
        customer,
        "buy",
        "7974",
        10,
    )
    assert data["order"]["amount_jpy"] == "125000.00" and data["order"]["status"] == "placed"
    assert state(customer) == (Decimal("875000"), {"7203": 100, "7974": 10, "AAPL": 10}, 1)
    listed = assert_json(signed_in.get("/api/orders"), 200, "ok")["orders"]
    assert [(o["order_id"], o["side"], o["symbol"], o["quantity"], o["status"]) for o in listed] == [
        (order.pk, "buy", "7974", 10, "placed")
    ]


def test_order_list_shows_only_ones_own_orders_newest_first(signed_in: Api, customer: Any) -> None:
    other = services.open_account("jiro", PASSWORD, email="j@example.com", cash=1000000, holdings={})
    services.place_order(other, side="buy", symbol="7203", quantity=1)
    first = signed_in.post("/api/orders", {"side": "sell", "symbol": "AAPL", "quantity": 1}).json()[
        "order_id"
    ]
    second = signed_in.post("/api/orders", {"side": "sell", "symbol": "AAPL", "quantity": 2}).json()[
        "order_id"
    ]
    listed = assert_json(signed_in.get("/api/orders"), 200, "ok")["orders"]
    assert [o["order_id"] for o in listed] == [second, first]


INVALID_ORDERS: list[tuple[str, Any, set[str]]] = [
    ("quantity as string", {"side": "buy", "symbol": "7203", "quantity": "5"}, {"quantity"}),
    ("quantity as float", {"side": "buy", "symbol": "7203", "quantity": 5.0}, {"quantity"}),
    ("quantity as bool", {"side": "buy", "symbol": "7203", "quantity": True}, {"quantity"}),
    ("quantity null", {"side": "buy", "symbol": "7203", "quantity": None}, {"quantity"}),
    ("quantity missing", {"side": "buy", "symbol": "7203"}, {"quantity"}),
    ("quantity zero", {"side": "buy", "symbol": "7203", "quantity": 0}, {"quantity"}),
    ("quantity negative", {"side": "sell", "symbol": "7203", "quantity": -100}, {"quantity"}),
    ("quantity huge", {"side": "buy", "symbol": "7203", "quantity": 10**18}, {"quantity"}),
    ("quantity array", {"side": "buy", "symbol": "7203", "quantity": [1]}, {"quantity"}),
    ("unknown symbol", {"side": "buy", "symbol": "ZZZZ", "quantity": 1}, {"symbol"}),
    ("symbol number", {"side": "buy", "symbol": 7203, "quantity": 1}, {"symbol"}),
    ("symbol with NUL", {"side": "buy", "symbol": "72\x0003", "quantity": 1}, {"symbol"}),
    ("symbol object", {"side": "buy", "symbol": {"$ne": ""}, "quantity": 1}, {"symbol"}),
    ("bad side", {"side": "short", "symbol": "7203", "quantity": 1}, {"side"}),
    ("side upper case", {"side": "SELL", "symbol": "7203", "quantity": 1}, {"side"}),
    ("side missing", {"symbol": "7203", "quantity": 1}, {"side"}),
    ("oversell", {"side": "sell", "symbol": "7203", "quantity": 101}, {"quantity"}),
    ("sell not held", {"side": "sell", "symbol": "6758", "quantity": 1}, {"quantity"}),
    ("overspend", {"side": "buy", "symbol": "9983", "quantity": 21}, {"cash"}),
    ("extra field", {"side": "buy", "symbol": "7203", "quantity": 1, "price": 1}, {"price"}),
    ("account field", {"side": "buy", "symbol": "7203", "quantity": 1, "account": 2}, {"account"}),
    ("everything wrong", {"side": 1, "symbol": None, "quantity": "x"}, {"side", "symbol", "quantity"}),
]


@pytest.mark.parametrize(
    ("body", "fields"), [case[1:] for case in INVALID_ORDERS], ids=[c[0] for c in INVALID_ORDERS]
)
def test_invalid_orders_answer_400_with_errors_and_change_nothing(
    signed_in: Api, customer: Any, body: Any, fields: set[str]
) -> None:
    before = state(customer)
    data = assert_json(signed_in.post("/api/orders", body), 400, "invalid")
    assert set(data["errors"]) == fields
    assert all(isinstance(m, str) and m for messages in data["errors"].values() for m in messages)
    assert data["message"]
    assert state(customer) == before


MALFORMED_BODIES: list[tuple[str, bytes | str, str, int]] = [
    ("empty", b"", "application/json", 415),  # the test client sends no Content-Type without a body
    ("whitespace", b"  ", "application/json", 400),
    ("not json", b"side=buy&symbol=7203&quantity=1", "application/json", 400),
    ("truncated", b'{"side": "buy", "symbol": "7203", "quantity": 1', "application/json", 400),
    ("array", b'[{"side": "buy", "symbol": "7203", "quantity": 1}]', "application/json", 400),
    ("string", b'"buy"', "application/json", 400),
    ("number", b"1", "application/json", 400),
    ("null", b"null", "application/json", 400),
    ("NaN quantity", b'{"side": "buy", "symbol": "7203", "quantity": NaN}', "application/json", 400),
    (
        "Infinity quantity",
        b'{"side": "buy", "symbol": "7203", "quantity": Infinity}',
        "application/json",
        400,
    ),
    (
        "5000-digit quantity",
        b'{"side": "buy", "symbol": "7203", "quantity": ' + b"9" * 5000 + b"}",
        "application/json",
        400,
    ),
    ("deep and too large", b"[" * 50_000 + b"]" * 50_000, "application/json", 413),
    ("deep nesting", b"[" * 30_000 + b"]" * 30_000, "application/json", 400),
    ("invalid utf-8", b'{"side": "buy", "symbol": "\xff\xfe", "quantity": 1}', "application/json", 400),
    (
        "utf-8 BOM",
        "\ufeff".encode() + b'{"side": "buy", "symbol": "7203", "quantity": 1}',
        "application/json",
        400,
    ),
    ("form encoded", b"side=buy&symbol=7203&quantity=1", "application/x-www-form-urlencoded", 415),
    ("text/plain", b'{"side": "buy", "symbol": "7203", "quantity": 1}', "text/plain", 415),
    ("no content type", b'{"side": "buy", "symbol": "7203", "quantity": 1}', "", 415),
    (
        "too large",
        b'{"side": "buy", "symbol": "7203", "quantity": 1, "pad": "' + b"x" * 70_000 + b'"}',
        "application/json",
        413,
    ),
]


@pytest.mark.parametrize(
    ("raw", "content_type", "http_status"),
    [c[1:] for c in MALFORMED_BODIES],
    ids=[c[0] for c in MALFORMED_BODIES],
)
def test_malformed_bodies_get_a_json_4xx_and_change_nothing(
    signed_in: Api, customer: Any, raw: bytes, content_type: str, http_status: int
) -> None:
    before = state(customer)
    data = assert_json(
        signed_in.post("/api/orders", raw=raw, content_type=content_type), http_status, "invalid"
    )
    assert list(data["errors"]) == ["body"]
    assert state(customer) == before


@pytest.mark.parametrize("symbol", ["\\ud800", "7203\\udfff", "\\u0000"])
def test_unencodable_symbols_are_refused_before_any_query(signed_in: Api, customer: Any, symbol: str) -> None:
    before = state(customer)
    raw = '{"side": "buy", "symbol": "' + symbol + '", "quantity": 1}'
    data = assert_json(signed_in.post("/api/orders", raw=raw), 400, "invalid")
    assert list(data["errors"]) == ["symbol"]
    assert state(customer) == before


def test_malformed_login_bodies_get_a_json_4xx(anon: Api, customer: Any) -> None:
    assert_json(anon.post("/api/login", raw=b"[]"), 400, "invalid")
    assert_json(anon.post("/api/login", raw=b"{", content_type="application/json"), 400, "invalid")
    assert_json(
        anon.post("/api/login", raw="username=hanako", content_type="application/x-www-form-urlencoded"),
        415,
        "invalid",
    )
    assert "_auth_user_id" not in anon.client.session


def test_anonymous_orders_are_refused_before_the_body_is_read(anon: Api, customer: Any) -> None:
    before = state(customer)
    assert_json(
        anon.post("/api/orders", {"side": "sell", "symbol": "7203", "quantity": 100}), 401, "login_required"
    )
    assert_json(anon.post("/api/orders", raw=b"{"), 401, "login_required")
    assert state(customer) == before


# -- methods and paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("get", "/api/login", "POST"),
        ("get", "/api/logout", "POST"),
        ("post", "/api/csrf", "GET"),
        ("post", "/api/instruments", "GET"),
        ("post", "/api/portfolio", "GET"),
        ("put", "/api/orders", "GET, POST"),
        ("delete", "/api/orders", "GET, POST"),
        ("patch", "/api/orders", "GET, POST"),
    ],
)
def test_wrong_methods_get_405_json(
    signed_in: Api, customer: Any, method: str, path: str, allow: str
) -> None:
    before = state(customer)
    if method == "get":
        response = signed_in.get(path)
    else:
        response = signed_in.post(path, {"side": "sell", "symbol": "7203", "quantity": 1}, method=method)
    assert_json(response, 405, "method_not_allowed")
    assert response["Allow"] == allow
    assert state(customer) == before


@pytest.mark.parametrize(
    "path", ["/api/", "/api/nope", "/api/orders/", "/api/orders/1", "/api/portfolio/x", "/api/%00"]
)
def test_unknown_api_paths_get_404_json(anon: Api, path: str) -> None:
    assert_json(anon.get(path), 404, "not_found")
    assert_json(anon.post(path, {}), 404, "not_found")


def test_error_handlers_answer_json_under_the_api_and_html_elsewhere(db: Any) -> None:
    factory = RequestFactory()
    api_request, page_request = factory.get("/api/anything"), factory.get("/trade/")
    error = Exception("boom")
    for handler, args, code, status in [
        (api.bad_request, (error,), 400, "invalid"),
        (api.permission_denied, (error,), 403, "denied"),
        (api.page_not_found, (error,), 404, "not_found"),
        (api.server_error, (), 500, "error"),
    ]:
        assert_json(handler(api_request, *args), code, status)
        html = handler(page_request, *args)
        assert html.status_code == code and not html["Content-Type"].startswith("application/json")
    assert api.is_api_request(api_request) and not api.is_api_request(page_request)


def test_demo_settings_send_csrf_failures_and_error_pages_to_the_json_handlers() -> None:
    """The wiring in demo_site (not this module's fixture) that makes CSRF and parse errors JSON."""
    import demo_site.settings as demo_settings
    import demo_site.urls as demo_urls

    assert getattr(demo_settings, "CSRF_FAILURE_VIEW", None) == "demo_site.brokerage.api.csrf_failure"
    for code, name in [
        (400, "bad_request"),
        (403, "permission_denied"),
        (404, "page_not_found"),
        (500, "server_error"),
    ]:
        assert getattr(demo_urls, f"handler{code}", None) == f"demo_site.brokerage.api.{name}"


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=\x00"])
def test_unparsable_multipart_bodies_get_json_too(signed_in: Api, customer: Any, content_type: str) -> None:
    # Django's CSRF middleware parses form bodies before any view runs; its 400 comes from handler400.
    before = state(customer)
    assert_json(
        signed_in.post("/api/orders", raw=b"--x\r\ngarbage", content_type=content_type), 400, "invalid"
    )
    assert state(customer) == before


# -- fuzzing ---------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
order_bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "side": st.sampled_from(["buy", "sell", "BUY", ""]) | json_values,
            "symbol": st.sampled_from(["7203", "AAPL", "6758", " aapl", "3Z3A", "ZZZZ"]) | json_values,
            "quantity": st.integers(min_value=-5, max_value=200) | st.integers() | json_values,
            "price": json_values,
        },
    ),
    json_values,
)


def _check_fuzzed(client: Api, user: Any, response: Any, before: tuple[Decimal, dict[str, int], int]) -> None:
    assert response.status_code < 500
    assert response["Content-Type"] == "application/json"
    data = response.json()
    if response.status_code == 201:
        assert data["status"] == "placed"
        order = Order.objects.get(pk=data["order_id"])
        cash, positions, count = state(user)
        assert count == before[2] + 1 and order.account.user == user
        signed = order.amount_jpy if order.side == "sell" else -order.amount_jpy
        assert cash == before[0] + signed and cash >= 0
        held = positions.get(order.instrument.symbol, 0) - before[1].get(order.instrument.symbol, 0)
        assert held == (order.quantity if order.side == "buy" else -order.quantity)
    else:
        assert response.status_code in (400, 413, 415) and data["status"] == "invalid" and data["errors"]
        assert state(user) == before


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=order_bodies)
def test_fuzzed_order_bodies_never_500_and_change_state_only_when_placed(
    signed_in: Api, customer: Any, body: Any
) -> None:
    before = state(customer)
    try:
        raw = json.dumps(body)
    except ValueError:
        return
    _check_fuzzed(signed_in, customer, signed_in.post("/api/orders", raw=raw), before)


@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_fuzzed_raw_order_bodies_never_500(signed_in: Api, customer: Any, raw: bytes) -> None:
    before = state(customer)
    _check_fuzzed(signed_in, customer, signed_in.post("/api/orders", raw=raw), before)


@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.fixed_dictionaries({}, optional={"username": json_values, "password": json_values}) | json_values
)
def test_fuzzed_login_bodies_never_500_and_never_sign_in(anon: Api, customer: Any, body: Any) -> None:
    try:
        raw = json.dumps(body)
    except ValueError:
        return
    response = anon.post("/api/login", raw=raw)
    assert response.status_code in (400, 401, 429), response.content
    assert response.json()["status"] in ("invalid", "throttled")
    assert "_auth_user_id" not in anon.client.session
