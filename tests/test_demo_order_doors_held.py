"""Red team, round seventy-four (held since): odd input to the demo's order doors never answers 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from . import test_battery_exposure as battery

start = battery.start
clock = battery.clock

ODD_JSON: list[Any] = [
    {"side": "sell", "symbol": "7203", "quantity": 10**40},
    {"side": "sell", "symbol": "7203", "quantity": -(10**40)},
    {"side": "sell", "symbol": "7203", "quantity": 1e308},
    {"side": "sell", "symbol": "7203", "quantity": "1e3"},
    {"side": "sell", "symbol": "7\u0000203", "quantity": 1},
    {"side": "sell", "symbol": "\u0661\u0662", "quantity": 1},
    {"side": "sell", "symbol": "\uff17\uff12\uff10\uff13", "quantity": 1},
    {"side": "sell", "symbol": "7203~1", "quantity": 1},
    {"side": "sell", "symbol": "A" * 5000, "quantity": 1},
    {"side": "sell", "symbol": ["7203"], "quantity": 1},
    {"side": {"x": 1}, "symbol": "7203", "quantity": 1},
    {"side": "SELL", "symbol": "7203", "quantity": 1},
    {"side": "sell", "symbol": "7203", "quantity": True},
    {"side": "sell", "symbol": "7203", "quantity": None},
    {"side": "sell", "symbol": "7203"},
    {},
    [],
    "x",
    None,
    {"side": "sell", "symbol": "7203", "quantity": 1, "price": "1"},
    {"side": "buy", "symbol": "6861", "quantity": 10_000_000},
    {"\u0000": 1},
]


@pytest.mark.django_db
def test_held_odd_json_to_the_order_api_never_answers_500(order_api: Any, clock: Any) -> None:
    victim = battery.customer("rt74doors", cash=2_000_000, holdings={"7203": 1000, "6758": 500})
    clock(0)
    browser = order_api()
    browser.client.raise_request_exception = False
    browser.login_known(victim.username, battery.PASSWORD)
    for body in ODD_JSON:
        answer = browser.client.post(
            "/api/orders", data=json.dumps(body), content_type="application/json",
            HTTP_X_CSRFTOKEN=browser.token,
        )  # fmt: skip
        assert answer.status_code < 500, (body, answer.status_code, answer.content[:300])
    for key in ("a" * 65, "ké", "a b", "\u00e9", "x" * 64, "../..", "1:2.3-4_5"):
        answer = browser.client.post(
            "/api/orders", data=json.dumps({"side": "sell", "symbol": "7203", "quantity": 1}),
            content_type="application/json", HTTP_X_CSRFTOKEN=browser.token, HTTP_IDEMPOTENCY_KEY=key,
        )  # fmt: skip
        assert answer.status_code < 500, (key, answer.status_code, answer.content[:300])
    for raw in (
        b"\xff\xfe",
        b'{"side": "sell", "symbol": "7203", "quantity": 1e999}',
        b"[" * 5000,
        b'{"quantity": NaN}',
        b'{"side": "sell", "side": "buy", "symbol": "7203", "quantity": 1}',
    ):
        answer = browser.client.post(
            "/api/orders", data=raw, content_type="application/json", HTTP_X_CSRFTOKEN=browser.token
        )
        assert answer.status_code < 500, (raw[:40], answer.status_code, answer.content[:300])


@pytest.mark.django_db
def test_held_odd_posts_to_the_html_order_form_never_answer_500(order_api: Any, clock: Any) -> None:
    victim = battery.customer("rt74html", cash=2_000_000, holdings={"7203": 1000})
    clock(0)
    browser = order_api()
    browser.client.raise_request_exception = False
    browser.login_known(victim.username, battery.PASSWORD)
    token = browser.client.cookies["csrftoken"].value
    forms = [
        {"side": "sell", "symbol": "7203", "quantity": "99999999999999999999999999"},
        {"side": "sell", "symbol": "7203", "quantity": "\u0661\u0660"},
        {"side": "sell", "symbol": "7203", "quantity": "1.0"},
        {"side": "sell", "symbol": "7203\u0000", "quantity": "1"},
        {"side": "x", "symbol": "7203", "quantity": "1"},
        {"side": ["sell", "buy"], "symbol": ["7203", "6758"], "quantity": ["1", "2"]},
        {"side": "sell", "symbol": "7203", "quantity": "1e5"},
        {"side": "sell", "symbol": "7203", "quantity": "\uff11"},
        {"side": "sell", "symbol": "7203", "quantity": "1" * 5000},
    ]
    for form in forms:
        answer = browser.client.post("/trade/", {**form, "csrfmiddlewaretoken": token})
        assert answer.status_code < 500, (form, answer.status_code)
    for query in ("?side=%00&symbol=%00", "?symbol=" + "A" * 3000, "?side[]=1", "?side=sell&symbol=7Z2A~1"):
        answer = browser.client.get("/trade/" + query)
        assert answer.status_code < 500, (query, answer.status_code)
    for path in ("/orders/", "/", "/instruments/", "/api/orders", "/api/portfolio"):
        assert browser.client.get(path).status_code < 500, path
