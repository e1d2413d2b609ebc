"""Red team round forty-seven: the other side of round forty-six's "a renewal whose old key's record
is gone ends the session" (``sessions.records.renew_record``): the record can be gone for a reason that is
no ending. ``authguard.retention.prune_session_records`` deletes a record whose key the session store no
longer has, and a key renewed by a middleware above authguard's (round forty-six: recorded at the session's
next request) is exactly that until she comes back.

Not a thief: the customer herself, signed out for nothing (and told her session "was used from a place we
could not trust"). Fixed: a missing record ends a renewal only when the account's sessions were ended after
the session signed in (``AccountSecurity.sessions_ended_at``, migration 0031).
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


def _renewed_above_authguard_then(prune: bool, hanako: Any, totp_factory: Any, clock: Any) -> Any:
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert her.get("/portal/portfolio").status_code == 200
    before = her.client.cookies["sessionid"].value
    clock.shift(6 * 60)
    assert her.get("/portal/portfolio").status_code == 200
    assert her.client.cookies["sessionid"].value != before  # renewed by the portal, after authguard looked
    clock.shift(5 * 60)
    if prune:
        prune_session_records()
    clock.shift(60)
    return her.get("/portal/portfolio")


def test_her_session_renewed_above_authguard_is_signed_out_by_the_scheduled_prune(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: a customer whose portal renews session ids periodically (the round-46 rotation middleware,
    listed above authguard's, as docs/faults.md allows) stays signed in across the retention prune.

    hanako signs in and steps up; six minutes later a page: the portal renews her key in the answer (the
    old key leaves the store, its record stays until her next request moves it). Five minutes later the
    scheduled ``prune_session_records`` runs: the record is older than ten minutes and names a key the
    store does not have: deleted. Her next page finds her old key's record gone, reads it as "sign out
    everywhere came first", and signs her out."""
    again = _renewed_above_authguard_then(True, hanako, totp_factory, clock)
    assert again.status_code == 200, (again.status_code, again.get("Location"), again.content[:120])


def test_held_without_the_prune_she_stays_signed_in(hanako: Any, totp_factory: Any, clock: Any) -> None:
    """The control: the same pages without the prune in between: her renewed key is moved, she stays."""
    assert _renewed_above_authguard_then(False, hanako, totp_factory, clock).status_code == 200
