"""Red team round forty-seven, found on the way: a copy of her live cookie jar replayed from a hosting
VPS abroad is held at step-up in the first hours of her session, and let in later the same day while she is
still using it at home.

Thief: a byte-for-byte copy of her cookie jar (an infostealer: session cookie, device cookie, CSRF cookie)
taken a minute ago, replayed from a VPS in Singapore (an anonymous hosting network) with her browser's user
agent. No password, no code.
"""

from __future__ import annotations

from typing import Any

import pytest

from .test_private_answers_cache_page_walkarounds import _copy, _her_session, _thief_with

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _replay_after(
    hours_active: int, hanako: Any, totp_factory: Any, clock: Any
) -> tuple[Any, dict[str, Any]]:
    """hanako signs in at home in Tokyo (password + TOTP) and uses the portal every 50 minutes for
    ``hours_active`` hours; a minute after her last call the thief replays her jar from Singapore."""
    her = _her_session(hanako, totp_factory)
    for _ in range(hours_active * 60 // 50):
        clock.shift(50 * 60)
        assert her.client.get("/api/portfolio").status_code == 200
    jar = _copy(her.client.cookies)
    clock.shift(60)
    thief = _thief_with(jar)
    answer = thief.get("/api/portfolio")
    return answer, dict(thief.session).get("_authguard") or {}


def test_a_copied_jar_replayed_from_a_vps_abroad_seven_hours_into_her_session_reads_her_portfolio(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: a copy of her live session replayed from a hosting VPS in another country a minute after
    her own call from Tokyo is held at step-up (as it is in her session's first hours).

    The re-score of the copy is a fresh sign-in from Singapore with her device cookie (``known_device``
    -10): its ``impossible_travel`` is measured from her *sign-in* in Tokyo, not from her call a minute
    ago, and Tokyo-Singapore (5,300 km) is "possible" once the sign-in is about six and a half hours old.
    ``in_two_places`` looks for a return only. The score falls under the step-up threshold: the session
    is rebound to the VPS, verified (and still low-risk), and the thief reads her portfolio."""
    answer, state = _replay_after(7, hanako, totp_factory, clock)
    assert answer.status_code != 200, (
        answer.status_code,
        state.get("s"),
        state.get("lr"),
        answer.content[:120],
    )


def test_held_the_same_copy_five_hours_into_her_session_is_held(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The control: the same replay five hours into her session is held (``impossible_travel``)."""
    answer, state = _replay_after(5, hanako, totp_factory, clock)
    assert answer.status_code != 200 and state.get("s") == "pending", (answer.status_code, state.get("s"))
