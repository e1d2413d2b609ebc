"""Red team round forty-eight, the customer's side: round forty-seven keeps a renewed session whose old
key's record the retention prune deleted, but only when the account's sessions were never ended since the
session signed in (``records._ended_since``). Her *own* kept session is exactly one signed in before an
ending: the one she pressed "sign out everywhere else" in (after the Osaka sign-in she did not know), or
the one she signed in with minutes after resetting her password (then within a five-minute skew; round
49 narrowed it to the nodes' clocks, ``records.ending_skew_seconds``).

Not a thief: hanako, signed out of the session she kept ("it was used from a place we could not trust").

Fixed: the session an ending kept notes when (``state["ek"]``, ``state.note_kept_through_ending``): that
ending, and any before it, is not its end.
"""

from __future__ import annotations

from typing import Any

import pytest

from authguard.retention import prune_session_records

from .conftest import HANAKO_PASSWORD, IP_TOKYO, OrderApi, of_long_standing, totp_token
from .factor_scenarios import old_totp
from .test_session_key_renewal_portals_walkarounds import (  # noqa: F401 (fixtures)
    portal,
    rotating_portal,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip", "rotating_portal")]


def _her_kept_session_renewed_above_authguard_then(
    sign_out_everywhere: bool, hanako: Any, totp_factory: Any, clock: Any
) -> Any:
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    if sign_out_everywhere:
        ended = her.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=her.token)
        assert ended.status_code == 302 and ended["Location"].endswith("/authguard/security/"), ended
    assert her.get("/portal/portfolio").status_code == 200
    before = her.client.cookies["sessionid"].value
    clock.shift(6 * 60)
    assert her.get("/portal/portfolio").status_code == 200
    assert her.client.cookies["sessionid"].value != before  # renewed by the portal, after authguard looked
    clock.shift(5 * 60)
    prune_session_records()
    clock.shift(60)
    return her.get("/portal/portfolio")


def test_her_kept_session_is_signed_out_by_the_prune_after_her_own_sign_out_everywhere(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: the session she kept when she signed out everywhere else stays signed in across the
    scheduled retention prune, as round forty-seven's session without an ending does.

    hanako sees a sign-in she does not know, steps up and signs out everywhere else, then goes on with
    her portfolio. The portal's rotation middleware (above authguard's, round 46) renews her key six
    minutes later; the prune then deletes the old key's record (older than ten minutes, its key gone from
    the store). Her next page finds the record gone and an ending after her sign-in - her own - and ends
    the very session that ending kept."""
    again = _her_kept_session_renewed_above_authguard_then(True, hanako, totp_factory, clock)
    assert again.status_code == 200, (again.status_code, again.get("Location"), again.content[:120])


def test_held_without_her_ending_the_prune_keeps_her(hanako: Any, totp_factory: Any, clock: Any) -> None:
    """The control (round forty-seven's fix): no ending since her sign-in, the prune keeps her."""
    again = _her_kept_session_renewed_above_authguard_then(False, hanako, totp_factory, clock)
    assert again.status_code == 200
