"""Red team round forty-eight: ``renew_record``'s rollback rewrite (``_move_again``, round forty-seven)
assumes the session store kept what the view's rollback undid in the database (the cache engine). With
Django's default database sessions (or ``cached_db``) the rollback also undoes ``cycle_key()``: the new key
never exists and the old one is alive again. ``_move_again`` then moves the old key's record onto the phantom
new key: the key the browser still holds (and uses) has no record, and "sign out everywhere" never ends it.

Thief: her password and relayed TOTP codes (a phishing kit: the sign-in's step-up, then the withdrawal's
confirmation code she types a minute later), the portal's documented DRF step-up endpoint of round 47.

Fixed: the move is written again only when the session store kept the renewed key (a cache engine); a
database store's rollback restored the old key with its record (``records._move_again``).
"""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import SessionRecord

from .conftest import HANAKO_PASSWORD, IP_OSAKA, OrderApi, of_long_standing, totp_token
from .factor_scenarios import old_totp
from .test_session_key_renewal_portals_walkarounds import _her_sign_out_everywhere
from .test_session_key_renewal_rollback_walkarounds import urlpatterns  # noqa: F401 (this module's URLs)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]


@pytest.fixture(params=["db", "cached_db"])
def db_portal(request: pytest.FixtureRequest, settings: Any) -> None:
    # Django's default, and the cache in front of it (which keeps the new key the rollback undid: review,
    # round forty-eight).
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{request.param}"
    settings.AUTHGUARD_LOCKOUT_FAILURES = None


def _thief_verified_then_confirms_with_blank_amount(hanako: Any, totp_factory: Any, clock: Any) -> OrderApi:
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    ok = thief.post("/app/withdraw", {"code": totp_token(hanako.totp), "amount": "1000"})
    assert ok.status_code == 200, ok.content[:200]
    assert thief.client.session.get("_authguard", {}).get("s") == "verified"
    clock.shift(60)
    # The next relayed code, and a blank amount: the view's transaction rolls back after finish_step_up.
    thief.client.raise_request_exception = False  # a browser just sees the error answer
    thief.post("/app/withdraw", {"code": totp_token(hanako.totp), "amount": ""})
    return thief


@pytest.mark.usefixtures("db_portal", "atomic_requests")
def test_a_rolled_back_re_verification_unrecords_his_live_key_with_database_sessions(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: "sign out everywhere else" ends the thief's session however a view that re-verified it
    answered, also with Django's default database sessions.

    The thief signs in with her password and her relayed code through the portal's withdrawal endpoint
    (verified, recorded). A minute later he confirms another withdrawal with the next relayed code and a
    blank amount: ``finish_step_up`` renews his key and moves the record; the amount check raises, DRF rolls
    the view back: the database session store still has his old key (the new one was never committed), the
    browser keeps the old cookie. ``_move_again`` then moves the record from his live old key to the
    phantom new key. She signs out everywhere else: the phantom is "ended", his live key is not."""
    thief = _thief_verified_then_confirms_with_blank_amount(hanako, totp_factory, clock)
    his_key = thief.client.cookies["sessionid"].value
    assert thief.get("/api/portfolio").status_code == 200
    recorded = SessionRecord.objects.filter(session_key=his_key).exists()
    clock.shift(10 * 60)
    _her_sign_out_everywhere(hanako)
    clock.shift(60)
    after = thief.get("/api/portfolio")
    assert after.status_code != 200, (recorded, after.status_code, after.content[:120])


@pytest.mark.usefixtures("db_portal", "atomic_requests")
def test_held_without_the_rolled_back_confirmation_her_sign_out_ends_him(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The control: the same thief with database sessions and only the committed withdrawal is ended."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/app/withdraw", {"code": totp_token(hanako.totp), "amount": "1000"}).status_code == 200
    clock.shift(10 * 60)
    _her_sign_out_everywhere(hanako)
    clock.shift(60)
    assert thief.get("/api/portfolio").status_code != 200
