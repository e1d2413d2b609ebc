"""What a batch confirmation's one passkey touch can be made to place (red team, round fifty-two: all held).

Thief: a copy of tanaka's live session (infostealer jar) that can post to the API in her session, or her
password with one relayed code (a session of his own). He wants her passkey's batch assertion to place an
order she did not see signed: an id in another spelling, an order of another session, a batch mixing a
held order with one already confirmed, an order changed after the challenge.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from authguard.models import HeldOrder
from authguard.orders.held import order_digest
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from . import test_battery_exposure as battery
from .test_orders_batch_ids_walkarounds import BATCH, BATCH_OPTIONS, _two_held_sells

start = battery.start
clock = battery.clock

pytestmark = [pytest.mark.django_db]


def _statuses(*ids: str) -> set[str]:
    return set(HeldOrder.objects.filter(pk__in=ids).values_list("status", flat=True))


@pytest.mark.parametrize("spell", ["upper", "braces", "urn", "hex"])
def test_held_her_batch_assertion_posted_with_the_ids_respelled_confirms_exactly_her_set(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any, spell: str
) -> None:
    """She signs the batch {A}; the copy posts her assertion with A respelled (upper case, braces, urn:uuid:,
    no hyphens) and B added: refused; respelled alone it confirms A, and only A."""
    browser, first, second = _two_held_sells(order_api, authenticator, clock, tanaka)
    respell = {
        "upper": str.upper,
        "braces": lambda i: "{" + i + "}",
        "urn": lambda i: uuid.UUID(i).urn,
        "hex": lambda i: uuid.UUID(i).hex,
    }[spell]
    assertion = authenticator.get(browser.post(BATCH_OPTIONS, {"ids": [first]}).json())
    crossed = browser.post(BATCH, {"ids": [respell(first), second], "credential": assertion})
    assert crossed.status_code == 400, crossed.content
    assert _statuses(first, second) == {HeldOrder.Status.PENDING}
    done = browser.post(BATCH, {"ids": [respell(first)], "credential": assertion})
    assert done.status_code == 200, done.content
    assert HeldOrder.objects.get(pk=first).status == HeldOrder.Status.CONFIRMED
    assert HeldOrder.objects.get(pk=second).status == HeldOrder.Status.PENDING


def test_held_a_batch_mixing_a_held_order_with_one_already_confirmed_is_refused_before_signing(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """A confirmed first (singly), then a batch {A, B} asked for: refused before her passkey is asked, and B
    stays pending; her earlier single assertion for A replayed as a batch confirms nothing."""
    browser, first, second = _two_held_sells(order_api, authenticator, clock, tanaka)
    single = authenticator.get(browser.post(f"/authguard/api/confirmations/{first}/passkey/options").json())
    assert browser.post(f"/authguard/api/confirmations/{first}/passkey", single).status_code == 200
    options = browser.post(BATCH_OPTIONS, {"ids": [first, second]})
    assert options.status_code in (400, 404, 409, 410), options.content
    replay = browser.post(BATCH, {"ids": [first, second], "credential": single})
    assert replay.status_code != 200, replay.content
    assert HeldOrder.objects.get(pk=second).status == HeldOrder.Status.PENDING


def test_held_another_sessions_held_order_cannot_join_her_batch_in_any_spelling(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """Her second session (or his own, signed in with her password and a relayed code) holds a sell; her
    session's batch naming it, in any spelling, is refused before anything is signed."""
    browser, first, _second = _two_held_sells(order_api, authenticator, clock, tanaka)
    other = order_api()
    battery.sign_in(other, TANAKA.username, TANAKA.password)
    assert other.get("/api/portfolio").status_code == 200  # signed in, verified
    held = HeldOrder.objects.filter(pk=first).first()
    assert held is not None
    for spelling in (first, first.upper(), uuid.UUID(first).urn, uuid.UUID(first).hex, "{" + first + "}"):
        answer = other.post(BATCH_OPTIONS, {"ids": [spelling]})
        assert answer.status_code == 404, (spelling, answer.content)
    assert HeldOrder.objects.get(pk=first).status == HeldOrder.Status.PENDING


def test_held_an_order_changed_after_her_batch_challenge_is_not_placed(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """After she asked for the batch {A, B}'s challenge, A's stored order is rewritten (quantity doubled,
    digest recomputed, as anyone able to write the row could): her assertion confirms neither."""
    browser, first, second = _two_held_sells(order_api, authenticator, clock, tanaka)
    assertion = authenticator.get(browser.post(BATCH_OPTIONS, {"ids": [first, second]}).json())
    held = HeldOrder.objects.get(pk=first)
    changed = held.canonical.replace('"quantity":', '"quantity":2', 1)
    assert changed != held.canonical
    HeldOrder.objects.filter(pk=first).update(canonical=changed, digest=order_digest(changed))
    done = browser.post(BATCH, {"ids": [first, second], "credential": assertion})
    assert done.status_code == 400, done.content
    assert _statuses(first, second) == {HeldOrder.Status.PENDING}
