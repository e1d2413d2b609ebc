"""Red team round thirty-one (a): the DRF step-up exchange's events after 4219f4f.

``refused_where_posted`` points the pending login's ``e`` at the event of any exchange posted away from the
login's context, and a later exchange from the login's own context (``same``) writes nothing and leaves
``e`` there: the login's own event is never marked, another context's is. Fails on 4219f4f when the attack
works.
"""

from __future__ import annotations

from typing import Any

import pytest

# isort: split
# test_drf skips this module without djangorestframework: imported first.
from .test_drf import alice, api, obtain, step_up_pending  # noqa: F401

# isort: split
import time_machine
from django.utils import timezone

from authguard.models import LoginEvent
from authguard.risk import backtest
from authguard.risk.event_categories import category_of

from .conftest import IP_SG_VPS, IP_TOKYO_2, UA_CHROME_WIN, totp_token, wrong_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _events(user: Any) -> list[tuple[Any, ...]]:
    return [
        (e.ip, e.outcome, category_of(e).code, backtest.label(e))
        for e in LoginEvent.objects.filter(user=user).order_by("pk")
    ]


@pytest.mark.battery(61)
def test_a_token_login_stepped_up_where_it_was_scored_marks_its_own_event_passed(
    alice: Any,  # noqa: F811
    clock: Any,
) -> None:
    """The phished password is posted to the token endpoint from a Singapore hosting address (scored
    ``step_up``: the login's event). The kit posts one junk code to the step-up exchange through a
    residential proxy on the customer's ISP (203.0.113.20, her Chrome's agent): scored there, a
    ``rescored`` event written and marked ``step_up_failed``, and the parked login's ``e`` now names it.
    Then it posts the relayed code from the Singapore address within the minute: the login's very context,
    so nothing is written and ``complete_step_up`` marks the *Tokyo* event ``step_up_passed``; the token is
    issued in Singapore. Now: the hosting login reads "password, step-up never completed" (never got in),
    the proxy's Tokyo context reads "session re-checked, passed step-up" and the backtest labels it
    ``good``. Secure: the exchange that passes marks the event of the context it was posted from (the
    login's own, here); the Tokyo probe stays ``step_up_failed``."""
    kit, body = step_up_pending(alice)
    token = body["step_up_token"]
    clock.shift(5)
    proxy = api(IP_TOKYO_2, UA_CHROME_WIN)
    junk = proxy.post(
        "/api/auth/step-up/totp", {"step_up_token": token, "code": wrong_code(alice.totp)}, format="json"
    )
    assert junk.status_code == 400, junk.content
    clock.shift(5)
    passed = kit.post(
        "/api/auth/step-up/totp", {"step_up_token": token, "code": totp_token(alice.totp)}, format="json"
    )
    assert passed.status_code == 200, passed.content
    events = _events(alice)
    outcome = ("events (ip, outcome, category, backtest label):", events)
    assert (IP_SG_VPS, "step_up_passed") in [(ip, o) for ip, o, *_ in events], outcome
    assert (IP_TOKYO_2, "step_up_passed") not in [(ip, o) for ip, o, *_ in events], outcome
