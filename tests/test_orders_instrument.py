"""A portal that has just validated an order hands the guard its instrument: same decision, one query less."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from authguard.orders import guard as orders
from demo_site.brokerage import services


@pytest.fixture
def sell_7203(tanaka: Any) -> tuple[Any, Any, Any]:
    draft = services.validate_order(tanaka, side="sell", symbol="7203", quantity=100)
    request = RequestFactory().post("/api/orders")
    request.user = tanaka
    request.session = {}
    return request, services.order_intent(tanaka, draft), draft


def test_the_given_instrument_decides_like_the_hook_and_saves_its_query(sell_7203: Any) -> None:
    request, intent, draft = sell_7203
    with CaptureQueriesContext(connection) as by_hook:
        hooked = orders.check_order(request, intent, user=request.user)
    with CaptureQueriesContext(connection) as given:
        passed = orders.check_order(
            request, intent, user=request.user, instrument=services.instrument_info(draft)
        )
    assert (passed.action, passed.reasons) == (hooked.action, hooked.reasons)
    assert passed.facts.instrument == hooked.facts.instrument  # the draft's view equals the hook's
    assert len(given) == len(by_hook) - 1
    assert not any('FROM "brokerage_instrument"' in q["sql"] for q in given.captured_queries)
    assert any('FROM "brokerage_instrument"' in q["sql"] for q in by_hook.captured_queries)


def test_an_instrument_for_another_symbol_is_refused(sell_7203: Any) -> None:
    request, intent, _draft = sell_7203
    other = services.guard_instrument("AAPL")
    with pytest.raises(ValueError, match="does not match"):
        orders.check_order(request, intent, user=request.user, instrument=other)
