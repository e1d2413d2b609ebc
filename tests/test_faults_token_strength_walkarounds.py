"""Red team api71: the DRF token paths when Redis is unreachable (a closed port of loopback, through the real
Redis backend: connection refused). docs/faults.md: "Security decisions fail closed, everything else fails
safe". The thief has her password (and, where said, a copy of her app's token from an infostealer).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

# isort: split
from .test_drf import api, obtain, post, with_token

# isort: split
import time_machine
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from authguard.choices import Action
from authguard.models import LoginEvent, TokenActivity
from authguard.risk.engine import Assessment
from authguard.sessions import token_binding
from authguard.sessions.token_activity import _digest
from authguard.sessions.token_strength import STRENGTH_DROPPED, token_strength

from .conftest import IP_SG_VPS, UA_CHROME_WIN, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]

#: Another address of the Singapore network of IP_SG_VPS (198.51.100.0/26): the same ASN, placed alike.
IP_SG_VPS_2 = "198.51.100.20"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_down() -> Iterator[None]:
    """Every cache call refused (the real Redis backend on a closed port); the breakers start afresh on the
    way in and on the way out (authguard.resilience resets them when CACHES changes)."""
    location = f"redis://127.0.0.1:{_closed_port()}/0"
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}}
    ):
        yield


def stepped_up_token(user: Any, ip: str = IP_SG_VPS) -> str:
    """A token login scored ``step_up`` (a hosting network), exchanged with a real TOTP code: a token strong
    by ``totp`` for AUTHGUARD_STEP_UP_FRESH_SECONDS."""
    client = api(ip, UA_CHROME_WIN)
    login = obtain(client)
    assert login.status_code == 401, login.content
    exchange = post(
        client,
        "/api/auth/step-up/totp",
        {"step_up_token": login.json()["step_up_token"], "code": totp_token(user.totp)},
    )
    assert exchange.status_code == 200, exchange.content
    return str(exchange.json()["token"])


def test_held_a_tokens_step_up_does_not_survive_a_move_made_while_redis_was_down(
    alice_with_totp: Any, clock: Any
) -> None:
    """Held since: round seventy-one's fix (the drop is kept in TokenActivity.binding, ``sd``, and
    ``token_strength`` ignores a strength not provably after it).
    Secure: a token's step-up holds only at the address it was made from (docs/drf.md, red team rounds
    twenty-three/twenty-four: a re-score or a move "drops the token's strength"); with Redis unreachable a
    security decision fails closed (docs/faults.md).
    Attack: her API client steps up with TOTP (a strong token). An infostealer's copy of the token is used
    from another address of the same network nearby (no material move: rebound, "its step-up holds where it
    was made") during a Redis blip of a few seconds (a failover). The rebind's ``forget_token_strength`` is
    "skipped" (best effort); the copy is served meanwhile (the outage reads as "no strength", fine). A minute
    later Redis is back and the strength written before the blip reads again: the copy, at its new address,
    passes ``StepUpRequired`` and withdraws.
    Root cause: authguard/sessions/token_binding.py:_check_once drops the strength with a best-effort cache
    delete (authguard/sessions/token_strength.py:forget_token_strength, ``default=None``) while the rebind
    itself is committed to the database; authguard/drf.py:StepUpRequired._token_fresh trusts whatever the
    cache says, never comparing it with the token's binding.
    Fix: record the drop where the rebind is written: e.g. ``state["sd"] = now`` in the token's binding state
    (TokenActivity.binding, already read by TokenAuthentication) and have ``_token_fresh`` ignore a strength
    with ``at <= sd``; or keep the strength in the TokenActivity row instead of the cache."""
    alice = alice_with_totp
    token = stepped_up_token(alice)
    assert token_strength(token) is not None
    # Hers, where she stepped up.
    assert with_token(api(IP_SG_VPS), token).post("/drf/withdraw").status_code == 200

    clock.shift(30)
    with redis_down():
        # The copy, from another address of her network nearby: served, rebound there (no re-score).
        served = with_token(api(IP_SG_VPS_2), token).get("/drf/portfolio")
        assert served.status_code == 200, served.content
        refused = with_token(api(IP_SG_VPS_2), token).post("/drf/withdraw")
        assert refused.status_code == 403  # unknown strength is no strength (fail closed while it lasts)

    clock.shift(30)  # Redis is back
    # As without the blip: the copy at its new address has no step-up
    # (tests/test_places_stepup_nearby_walkarounds).
    answer = with_token(api(IP_SG_VPS_2), token).post("/drf/withdraw")
    assert answer.status_code == 403, (
        f"the copy withdraws at its new address on her step-up kept through a Redis blip: "
        f"{answer.status_code}"
    )


def test_held_without_the_blip_the_same_move_drops_the_strength(alice_with_totp: Any, clock: Any) -> None:
    """The control: the same copy, the same move, Redis up: the withdrawal asks for a fresh factor."""
    token = stepped_up_token(alice_with_totp)
    clock.shift(30)
    assert with_token(api(IP_SG_VPS_2), token).get("/drf/portfolio").status_code == 200
    clock.shift(30)
    assert with_token(api(IP_SG_VPS_2), token).post("/drf/withdraw").status_code == 403


def test_held_redis_down_a_strong_token_counts_for_nothing_and_a_step_up_token_is_not_spent(
    alice_with_totp: Any, clock: Any
) -> None:
    """Redis unreachable: a strong token's strength is unknown (403 at StepUpRequired, served at NotPending);
    a thief's step-up exchange with a relayed code is refused (400 step_up_unavailable), no token issued."""
    alice = alice_with_totp
    token = stepped_up_token(alice)
    clock.shift(40)
    thief = api(IP_SG_VPS, UA_CHROME_WIN)
    with redis_down():
        assert with_token(api(IP_SG_VPS), token).post("/drf/withdraw").status_code == 403
        login = obtain(thief)
        assert login.status_code == 401, login.content
        before = set(Token.objects.values_list("key", flat=True))
        exchange = post(
            thief,
            "/api/auth/step-up/totp",
            {"step_up_token": login.json()["step_up_token"], "code": totp_token(alice.totp, steps=1)},
        )
        assert exchange.status_code == 400 and exchange.json()["code"] == "step_up_unavailable", (
            exchange.content
        )
        assert set(Token.objects.values_list("key", flat=True)) <= before


def _moves_materially_to(monkeypatch: Any, ip: str) -> None:
    """Make a call from ``ip`` a material move of the token (re-scored), whatever GeoIP says of it."""
    real = token_binding.is_material_change
    monkeypatch.setattr(
        token_binding,
        "is_material_change",
        lambda bound, now, state: now.get("ip") == ip or real(bound, now, state),
    )


def _binding(token: str) -> dict[str, Any]:
    return dict(TokenActivity.objects.get(token_digest=_digest(token)).binding)


def test_held_a_re_score_allowed_while_redis_is_down_drops_the_strength_for_good(
    alice_with_totp: Any, clock: Any, monkeypatch: Any
) -> None:
    """The re-score path ``"allowed"`` (token_binding: ``rebind(..., rescored="allowed")``): the copy's move
    is re-scored and allowed during the outage (the engine stubbed to allow, as for her own known context);
    the drop is in the binding state, so the strength the cache kept counts for nothing once it is back.
    Held since: round seventy-one's fix."""
    token = stepped_up_token(alice_with_totp)
    _moves_materially_to(monkeypatch, IP_SG_VPS_2)
    real = token_binding.login_flow.score_request

    def allowed(*args: Any, **kwargs: Any) -> Any:
        scored = real(*args, **kwargs)
        return type(scored)(scored.context, Assessment(0, Action.ALLOW, ()), scored.evidence, scored.history)

    monkeypatch.setattr(token_binding.login_flow, "score_request", allowed)
    clock.shift(30)
    with redis_down():
        assert with_token(api(IP_SG_VPS_2), token).get("/drf/portfolio").status_code == 200
    clock.shift(30)
    assert token_strength(token) is None, "the strength the cache kept through the outage counts again"
    assert isinstance(_binding(token).get(STRENGTH_DROPPED), float)
    assert with_token(api(IP_SG_VPS_2), token).post("/drf/withdraw").status_code == 403


def test_held_a_report_only_re_score_while_redis_is_down_drops_the_strength_for_good(
    alice_with_totp: Any, clock: Any, monkeypatch: Any, settings: Any
) -> None:
    """The report-only path (``"step_up"`` in AUTHGUARD_REPORT_ONLY: the re-score is recorded, the token
    rebound and carried on): the drop is kept in the binding state during the outage, and the cache's
    strength reads as none once Redis is back. Held since: round seventy-one's fix."""
    token = stepped_up_token(alice_with_totp)
    _moves_materially_to(monkeypatch, IP_SG_VPS_2)
    settings.AUTHGUARD_REPORT_ONLY = ["step_up"]
    clock.shift(30)
    before = LoginEvent.objects.count()
    with redis_down():
        assert with_token(api(IP_SG_VPS_2), token).get("/drf/portfolio").status_code == 200
    event = LoginEvent.objects.latest("pk")
    assert LoginEvent.objects.count() == before + 1 and event.ip == IP_SG_VPS_2
    assert "report_only" in event.reasons or any(f["code"] == "report_only" for f in event.findings)
    clock.shift(30)
    assert token_strength(token) is None, "the strength the cache kept through the outage counts again"
    assert isinstance(_binding(token).get(STRENGTH_DROPPED), float)


def test_held_a_step_up_noted_after_the_drop_still_counts(alice_with_totp: Any, clock: Any) -> None:
    """The drop outdates only what came before it: a strength noted (well) after it is the token's (the
    re-verification hook, ``note_token_strength``). Held since: round seventy-one's fix."""
    from authguard.sessions.token_strength import note_token_strength

    token = stepped_up_token(alice_with_totp)
    clock.shift(30)
    assert with_token(api(IP_SG_VPS_2), token).get("/drf/portfolio").status_code == 200
    assert token_strength(token) is None
    clock.shift(30)
    note_token_strength(token, method="totp", device=None)
    assert token_strength(token) is not None
