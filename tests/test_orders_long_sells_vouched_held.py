"""Red team round seventy-four (longsells; held since): whether a copy of her passkey-vouched session
carries the vouching that keeps its sells out of the sells' long count (authguard/orders/long_sells.py,
``GuardedOrder.vouched``).
Real sign-ins and a real passkey step-up through the demo's JSON API; the order-guard fixture scores no
sign-in (so every re-score of the copy is allowed: the most the copy can get)."""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import GuardedOrder

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, IP_TOKYO_2, OrderApi
from .test_orders_long_count_copied_cookie_walkarounds import _passkey_step_up
from .test_orders_long_liquidation_walkarounds import LARGE_CAPS

start = battery.start
clock = battery.clock


@pytest.mark.django_db
def test_held_a_copy_of_her_passkey_session_at_another_address_sells_unvouched(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """She signs in and steps up with her passkey: her sell is vouched (kept out of the long count). An
    infostealer copy of her whole jar (session, device cookie, CSRF) used from another address: the
    session's move clears its step-up (``state.rebind``), so the copy's sell is not vouched and counts."""
    user = battery.customer("rt74vouch", cash=1_200_000, holdings=LARGE_CAPS, authenticator=authenticator)
    clock(0)
    her = order_api(REMOTE_ADDR=IP_TOKYO)
    her.login(user.username, battery.PASSWORD)
    _passkey_step_up(her, authenticator)
    assert her.order("sell", "9432", 100).json()["status"] == "placed"
    assert GuardedOrder.objects.get(user=user, symbol="9432").vouched
    thief = OrderApi(REMOTE_ADDR=IP_TOKYO_2)
    for name, morsel in her.client.cookies.items():
        thief.client.cookies[name] = morsel.value
    thief.token = her.token
    answer = thief.order("sell", "7203", 50).json()
    if answer.get("status") == "placed":
        assert not GuardedOrder.objects.get(user=user, symbol="7203").vouched
    else:
        assert answer.get("status") in ("step_up_required", "login_required", "held"), answer
