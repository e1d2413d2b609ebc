"""Red team, round fifty (A): confirmations applied to orders they were not made for.

The batch confirmation names a set by ids; a UUID has many spellings (upper case, no hyphens, ``urn:uuid:``)
that the duplicate check compared as strings: one held sell named twice was a "batch of two", her passkey
signed it, and the answer listed the order both confirmed and failed (it ran once). Fixed: the ids are
compared in their canonical form (``orders.batch._ids``). Held: a single order's assertion posted as a batch
of that order, and a batch's assertion posted for one order of the batch.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from authguard.models import HeldOrder
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Order, Position

from . import test_battery_exposure as battery
from .conftest import bind_passkey
from .test_battery_exposure import value

start = battery.start
clock = battery.clock

BATCH_OPTIONS = "/authguard/api/confirmations/batch/passkey/options"
BATCH = "/authguard/api/confirmations/batch/passkey"


def _two_held_sells(order_api: Any, authenticator: Any, clock: Any, tanaka: Any) -> tuple[Any, str, str]:
    bind_passkey(tanaka, authenticator)
    clock(0)
    browser = order_api()
    browser.login_usual(TANAKA.username, TANAKA.password, days=400)
    clock(0, hours=1)
    battery.sign_in(browser, TANAKA.username, TANAKA.password)
    helds = []
    for holding in sorted(value(tanaka).holdings, key=lambda h: -h.value_jpy):
        if holding.is_small_cap:
            continue
        answer = browser.order("sell", holding.symbol, holding.quantity).json()
        if answer["status"] == "held":
            helds.append(answer["confirmation"]["id"])
        if len(helds) == 2:
            break
    assert len(helds) == 2
    return browser, helds[0], helds[1]


def _quantity(user: Any, symbol: str) -> int:
    row = Position.objects.filter(account__user=user, instrument__symbol=symbol).first()
    return 0 if row is None else row.quantity


@pytest.mark.django_db
@pytest.mark.parametrize("alias", ["upper", "hex", "urn"])
def test_one_order_named_twice_in_a_batch_under_another_spelling_is_refused(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any, alias: str
) -> None:
    """Secure: a batch naming one held sell twice, the second time as its UUID in upper case, without
    hyphens or as ``urn:uuid:``, is refused before her passkey is asked to sign it; nothing executes."""
    browser, first, _second = _two_held_sells(order_api, authenticator, clock, tanaka)
    other = {"upper": first.upper(), "hex": uuid.UUID(first).hex, "urn": uuid.UUID(first).urn}[alias]
    held = HeldOrder.objects.get(pk=first)
    order = Order.objects.get(pk=int(held.portal_ref))
    before = _quantity(tanaka, order.instrument.symbol)
    options = browser.post(BATCH_OPTIONS, {"ids": [first, other]})
    assert options.status_code == 400 and options.json()["code"] == "malformed", options.content
    # the same batch with the assertion of a proper one-order batch: refused too
    assertion = authenticator.get(browser.post(BATCH_OPTIONS, {"ids": [first]}).json())
    done = browser.post(BATCH, {"ids": [first, other], "credential": assertion})
    assert done.status_code == 400, done.content
    assert _quantity(tanaka, order.instrument.symbol) == before
    assert HeldOrder.objects.get(pk=first).status == HeldOrder.Status.PENDING


@pytest.mark.django_db
def test_held_a_single_orders_assertion_confirms_no_batch_of_it(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """The customer touches her passkey for one held sell; the copied session posts the assertion to the batch
    endpoint as a batch of that order, and of both orders: refused, nothing executes."""
    browser, first, second = _two_held_sells(order_api, authenticator, clock, tanaka)
    options = browser.post(f"/authguard/api/confirmations/{first}/passkey/options").json()
    assertion = authenticator.get(options)
    for ids in ([first], [first, second]):
        crossed = browser.post(BATCH, {"ids": ids, "credential": assertion})
        assert crossed.status_code == 400, crossed.content
    assert set(HeldOrder.objects.filter(pk__in=[first, second]).values_list("status", flat=True)) == {
        HeldOrder.Status.PENDING
    }


@pytest.mark.django_db
def test_held_a_batch_assertion_confirms_no_single_order_of_it(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """The customer touches her passkey for a batch of one held sell; the assertion is posted for that order
    alone, for the other one, and as a batch of both: refused, nothing executes."""
    browser, first, second = _two_held_sells(order_api, authenticator, clock, tanaka)
    options = browser.post(BATCH_OPTIONS, {"ids": [first]}).json()
    assertion = authenticator.get(options)
    for target in (first, second):
        crossed = browser.post(f"/authguard/api/confirmations/{target}/passkey", assertion)
        assert crossed.status_code == 400, crossed.content
    both = browser.post(BATCH, {"ids": [first, second], "credential": assertion})
    assert both.status_code == 400, both.content
    assert set(HeldOrder.objects.filter(pk__in=[first, second]).values_list("status", flat=True)) == {
        HeldOrder.Status.PENDING
    }
