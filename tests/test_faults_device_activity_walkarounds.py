"""Red team, round seventy-two: round seventy-one's "every enforced score fails safe without its counters"
against the other evidence that lives only in Redis, the device cookie's activity (docs/faults.md: "Nothing
is allowed *because* the counters were missing"), and Django's ``cached_db`` session store in an outage."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session

from authguard.models import LoginEvent

from .conftest import IP_TOKYO
from .test_faults_token_strength_walkarounds import redis_down
from .test_sessions_binding_anchor import (  # noqa: F401
    OSAKA_2,
    _client,
    _jar,
    _login,
    commuter,
    hanako,
    rt_geoip,
    rt_geoip_dir,
)

pytestmark = [pytest.mark.django_db]


def _copy_of_her_device_cookie(home: Any, ip: str) -> Any:
    """The thief's anti-detect browser at ``ip`` holding only her device cookie (an infostealer's copy)."""
    thief = _client(ip, home.defaults.get("HTTP_USER_AGENT"))
    thief.cookies["authguard_device"] = home.cookies["authguard_device"].value
    return thief


def _sign_in_with_the_copy(t: Any, home: Any, *, down: bool) -> tuple[dict[str, Any], LoginEvent]:
    # She signed in at home in Tokyo at 10:00 and keeps using the portal (watching the market open): her
    # session notes where her device is in use, the last of it a minute ago. The thief comes at 10:58 (her
    # usual hour; an hour after her sign-in, so Tokyo-Osaka is no impossible travel and no device_moved).
    for _ in range(57 // 3):
        t.shift(timedelta(minutes=3))
        assert home.get("/api/portfolio").status_code == 200
    t.shift(timedelta(minutes=1))
    thief = _copy_of_her_device_cookie(home, OSAKA_2)
    if down:
        with redis_down():
            answer = _login(thief).json()
            portfolio = thief.get("/api/portfolio").status_code
    else:
        answer = _login(thief).json()
        portfolio = thief.get("/api/portfolio").status_code
    answer["portfolio"] = portfolio
    event = LoginEvent.objects.filter(ip=OSAKA_2).order_by("-pk").first()
    assert event is not None
    return answer, event


def test_held_with_redis_up_her_copied_device_cookie_at_her_office_while_she_is_home_is_stepped_up(
    commuter: Any,  # noqa: F811
) -> None:
    """The control: her device cookie, copied, signs in with her password from her office's ISP in Osaka
    while her browser is in use at home in Tokyo: device_in_two_places, a step-up (her TOTP: the thief has
    none)."""
    t, home = commuter
    answer, event = _sign_in_with_the_copy(t, home, down=False)
    assert answer["status"] == "step_up_required", (answer, event.reasons)
    assert "device_in_two_places" in event.reasons


def test_held_a_copied_device_cookie_is_stepped_up_during_a_redis_outage_while_she_is_active_far_away(
    commuter: Any,  # noqa: F811
) -> None:
    """Secure: docs/faults.md: "Nothing is allowed *because* the counters were missing" and round
    seventy-one's claim that an outage no longer lets a copy through that Redis-up would hold; docs of
    issue 13: the same device cookie in two places at once is a copy, "a step-up at least"
    (``device_in_two_places``, STEP_UP_FLOOR).

    Attack: hanako commutes Tokyo (OCN) / Osaka office (KDDI) on one laptop. An infostealer took her device
    cookie. While she is using the portal at home in Tokyo, the thief, on a residential proxy of KDDI in
    Osaka (her office's ISP and city, so no new-city/new-network finding), signs in with her password and
    her copied device cookie. With Redis up: ``device_in_two_places`` (400 km, a minute apart) holds it at
    step-up (the control above). During a Redis outage (or with this worker's breaker open) the device
    activity read answers None, so that finding is never computed; the velocity counters are missing too,
    but ``fail_safe`` sees a known device with no finding above 0 and keeps the "allow": a fully verified
    session for the thief, no step-up, no ``device_cookie_copied`` warning to her.

    Root cause: authguard/login/flow.py:fail_safe treats only the velocity/throttle counters as "missing"
    evidence; authguard/sessions/device_activity.py:read answers None (no entry) for a cache that is down,
    indistinguishable from "her device is not in use elsewhere", and authguard/risk/context.py builds the
    context from it. ``low_risk`` then rests on a signal that was never evaluated.

    Fix: let ``device_activity.read`` report "unavailable" (a sentinel, as ``VelocityCounts.available``) and
    make ``fail_safe`` count it as missing evidence; and, since the device-in-two-places check is exactly the
    one a known device cookie needs, do not treat "known device" as low-risk while it could not run: require
    the device to be the one last seen at this place/network (``dasn``/city of its own last sign-in) or step
    up. Her own browser at her usual place (the cost test of round 71) keeps passing if its last sign-in was
    from there.

    Held since: ``device_activity.read_checked`` tells "the cache is down" from "no activity", and
    ``login.fail_safe`` then keeps a known device's "allow" only where the account last signed in with it
    (same network, same place).
    """
    t, home = commuter
    answer, event = _sign_in_with_the_copy(t, home, down=True)
    assert answer["status"] != "ok", (
        f"during the outage her copied device cookie signed in from Osaka while she was active in Tokyo: "
        f"{answer['status']}, score {event.score}, action {event.action}, reasons {event.reasons}, findings "
        f"{[f['code'] for f in event.findings]}; the copy then reads her portfolio: {answer['portfolio']}"
    )


# -- session endings during an outage, with Django's cached_db session store --------------------------------

CACHED_DB = "django.contrib.sessions.backends.cached_db"


def _try(call: Any) -> Any:
    try:
        return call()
    except Exception as error:  # the test client re-raises a view's exception
        return error


@pytest.fixture
def cached_db_sessions(settings: Any) -> None:
    """A portal on ``cached_db`` (authguard.checks names it among the server-side engines to use)."""
    settings.SESSION_ENGINE = CACHED_DB


@pytest.mark.xfail(
    strict=True,
    reason="a known limit (docs/faults.md, Django's cached_db store): its load writes the cache unguarded, "
    "so during a cache outage every signed-in request is a 500 and nothing can be ended (nothing is let "
    "through)",
)
def test_cost_on_cached_db_every_signed_in_request_is_a_500_during_an_outage_and_nothing_can_be_ended(
    cached_db_sessions: None,
    commuter: Any,  # noqa: F811
) -> None:
    """Cost / availability (not an attack): docs/faults.md says a Redis outage costs no 500 ("Redis stopped
    ... under the workers: no 500"), and mentions Django's ``cached_db`` store as one authguard works with
    ("a session written during an outage is read stale afterwards"); ``authguard.checks`` names cached_db
    among the server-side engines to use.

    Measured: on ``cached_db``, during an outage every request carrying a session cookie answers 500 before
    any view: ``cached_db.load`` guards its cache *read* but not the cache *write* after the database read
    (django/contrib/sessions/backends/cached_db.py:load, ``self._cache.set``), raised from authguard's
    session middleware (``_check_session``: ``key in request.session``). So she cannot sign out, "sign out
    everywhere" or use anything; the desk's console is down too, and a containment run without the console's
    request (``end_all_sessions``) raises on the cache half of ``cached_db.delete`` and rolls back: nothing
    ends until Redis is back. Nothing is let through (the thief's copy gets the same 500s); once Redis is back
    the copy is served as before: no stale resurrection was reachable, because every ending fails visibly.

    Fix: authguard's system check should warn on ``cached_db`` (or ship a subclass whose cache calls go
    through ``guarded_cache_call`` and whose ``delete`` deletes the cache key after the transaction, again
    when the breaker closes), and docs/faults.md should say a cached_db portal is down for signed-in users
    during an outage (done: docs/faults.md)."""
    t, home = commuter
    copy = _jar(home, IP_TOKYO)
    t.shift(timedelta(minutes=2))
    assert copy.get("/api/portfolio").status_code == 200
    t.shift(timedelta(minutes=2))
    key = home.cookies["sessionid"].value
    with redis_down():
        signed_out = _try(lambda: home.post("/api/logout"))
    row_left = Session.objects.filter(session_key=key).exists()
    t.shift(timedelta(minutes=5))  # Redis is back
    served = copy.get("/api/portfolio").status_code
    assert not isinstance(signed_out, Exception) and served != 200, (
        f"her sign-out during the outage: {signed_out!r} (session row left: {row_left}); the copy once Redis "
        f"was back: {served}"
    )


def test_held_with_the_database_store_her_sign_out_during_an_outage_ends_the_copy(
    commuter: Any,  # noqa: F811
) -> None:
    """The control: the demo's (and the tests') engine, Django's default ``db``: the same sign-out during
    the outage ends the copy."""
    t, home = commuter
    copy = _jar(home, IP_TOKYO)
    t.shift(timedelta(minutes=2))
    assert copy.get("/api/portfolio").status_code == 200
    t.shift(timedelta(minutes=2))
    with redis_down():
        home.post("/api/logout")
    t.shift(timedelta(minutes=5))
    assert copy.get("/api/portfolio").status_code == 401
