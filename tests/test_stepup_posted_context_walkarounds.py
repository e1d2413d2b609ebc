"""Red team 36 (g): the step-up's "one event per context posted from" (``authguard.sessions.pending``
``posted_event_id`` / ``_one_context``, round thirty-five: a context is its device cookie, browser and
address or another of its /24) against the desk's network block added since."""

from __future__ import annotations

import json
from typing import Any

import pytest

# isort: split
from .test_drf import with_token  # noqa: F401  (skips without djangorestframework, as its neighbours do)

# isort: split
from django.test import Client

from .conftest import IP_DOCOMO, IP_OSAKA, UA_CHROME_WIN, totp_token, wrong_code
from .test_stepup_stale_score_walkarounds import (
    _a_minute_later,
    _desk_blocks,
    _events,
    _kit_login,
    _served,
    _victim,
)

STEP_UP_TOTP = "/authguard/api/step-up/totp"
#: Another address of the Docomo address's /24 (203.0.113.140): the same context since round thirty-five.
IP_DOCOMO_NEIGHBOUR = "203.0.113.141"


def _post_code(kit: Client, code: str, ip: str) -> Any:
    return kit.post(STEP_UP_TOTP, json.dumps({"code": code}), content_type="application/json", REMOTE_ADDR=ip)


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.parametrize("final_ip", [IP_DOCOMO, IP_DOCOMO_NEIGHBOUR], ids=["same-address", "same-24"])
def test_held_a_step_up_posted_again_from_a_network_the_desk_blocked_since_is_scored_and_refused(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any, settings: Any, final_ip: str
) -> None:
    """The kit's mistyped first code from its Docomo exit lists that context (one event); the desk then
    blocks 203.0.113.128/25; a minute later her relayed code from the same address or another of its /24
    is still scored (``refused_where_posted`` scores before it looks the context up) and refused: the
    session is not verified or served there."""
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    alice, phone = _victim(user_factory, browser_at, totp_factory)
    kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    _kit_login(kit, IP_OSAKA)
    first = _post_code(kit, wrong_code(phone), IP_DOCOMO)
    assert first.status_code in (400, 401, 403), first.content
    assert (IP_DOCOMO, "step_up_failed", "step_up") in _events(alice), _events(alice)  # scored there
    _desk_blocks("203.0.113.128/25")
    direct = Client(HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/api/login", json.dumps({"username": "alice", "password": "correct horse battery"}),
        content_type="application/json", REMOTE_ADDR=final_ip,
    )  # fmt: skip
    assert direct.json()["status"] == "denied", direct.content  # the precondition: the block refuses
    with _a_minute_later():
        step_up = _post_code(kit, totp_token(phone), final_ip)
        served, withdrew = _served(kit, final_ip)
    assert step_up.status_code == 403 and served in (401, 403) and withdrew in (401, 403), (
        f"a step-up posted again from a network the desk blocked since passed there: step-up "
        f"{step_up.status_code} {step_up.content[:200]!r}, portfolio {served}, withdraw {withdrew}; "
        f"events {_events(alice)}"
    )
