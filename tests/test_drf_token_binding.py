"""A copied API token against its binding (docs/drf.md, "A token is bound to where it was issued";
authguard.sessions.token_binding), red team round fifteen.

The thief holds a copy of the customer's API token (an infostealer) and her user agent, has read the code
and has days. Each test failed on the code it was written against. Real DRF, the real risk engine, the test
GeoIP databases; time-machine for time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from hashlib import sha256
from typing import Any

import pytest

# isort: split
# test_drf skips this module without djangorestframework (and fails under CI=true): imported first.
from .test_drf import api, obtain, with_token

# isort: split
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from authguard.models import LoginEvent, TokenActivity

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN
from .test_sessions_binding_anchor import commuter, hanako, rt_geoip, rt_geoip_dir  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.drf_urlconf")]

PORTFOLIO = "/drf/portfolio"


def _digest(token: str) -> str:
    return sha256(token.encode()).hexdigest()


def _her_app(ip: str, device_cookie: str | None) -> Any:
    """Her API client on her laptop (her browser's agent), keeping the device cookie as docs/drf.md asks."""
    client = api(ip, UA_CHROME_WIN)
    if device_cookie is not None:
        client.cookies["authguard_device"] = device_cookie
    return client


# -- 1. ping-pong between her home and her usual second place -------------------------------------------


@pytest.mark.usefixtures("rt_geoip")
@pytest.mark.battery(66)
def test_a_copied_token_ping_ponging_with_her_between_tokyo_and_her_osaka_office_is_stopped(
    commuter: tuple[Any, Any],  # noqa: F811
    hanako: Any,  # noqa: F811
) -> None:
    """She signs in from Tokyo and from her Osaka office (KDDI) on alternate days. The thief replays her
    app's token, with her agent, through a KDDI address in Osaka: a place her history vouches for, so each
    re-score is allowed and rebinds the token there; her next call from Tokyo is allowed and rebinds it back.
    A browser session doing this is held on the return (``in_two_places``, docs/step-up.md "Two places at
    once", test_sessions_binding_anchor's ping-pong test); docs/drf.md says a token is bound "as a verified
    browser session is". token_binding.check had no such rule: both were served for the token's whole day,
    and nothing was even recorded."""
    t, home = commuter
    device = home.cookies["authguard_device"].value
    answer = _her_app(IP_TOKYO, device).post(
        "/api/auth/token", {"username": "hanako", "password": HANAKO_PASSWORD}, format="json"
    )
    assert answer.status_code == 200, answer.content
    token = answer.json()["token"]
    # Her app is used through the morning at home (no impossible travel left to flag for the thief).
    for _ in range(8):
        t.shift(timedelta(minutes=30))
        assert with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO).status_code == 200
    events = LoginEvent.objects.filter(user=hanako).count()

    codes = []
    for ip in [IP_OSAKA, IP_TOKYO, IP_OSAKA, IP_TOKYO, IP_OSAKA]:  # thief, her, thief, her, thief
        t.shift(timedelta(seconds=60))
        client = api(ip, UA_CHROME_WIN) if ip == IP_OSAKA else _her_app(ip, device)
        codes.append(with_token(client, token).get(PORTFOLIO).status_code)
        if codes[-1] != 200:
            break

    assert codes != [200] * 5, (
        "a copied token alternating every minute between Tokyo and Osaka (400 km) with her live app is "
        f"served throughout, {LoginEvent.objects.filter(user=hanako).count() - events} event(s) recorded"
    )
    assert not Token.objects.filter(key=token).exists()


# -- 2. a request in flight rides through the revoke of the one that ended the token ---------------------


@pytest.mark.usefixtures("geoip")
@pytest.mark.battery(66)
def test_a_second_copied_request_in_flight_when_the_first_ends_the_token_is_not_served(
    alice_with_totp: Any,
) -> None:
    """The thief fires two calls from his hosting network at once. The first is re-scored, refused, and
    revokes the token (revoke_tokens: the token, then its TokenActivity row). The second had read the token
    just before; when it reaches token_binding.check the row is gone, ``bound`` is None and ``not bound``
    answers "same" (the update of a missing row binds nothing): a call from Singapore is served without any
    re-score. (With the token idle a minute or more, token_activity.ended even re-creates the row, with an
    empty binding, which check then binds to the thief's context.)"""
    token = obtain(api(IP_TOKYO, UA_CHROME_WIN)).json()["token"]
    assert with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get(PORTFOLIO).status_code == 200
    first: list[Any] = []
    started: list[bool] = []

    def interleave(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        # The second call's token lookup (DRF's authenticate_credentials) has just returned: the first call
        # runs to its end now, as a concurrent worker would.
        if not started and "authtoken_token" in sql and sql.lstrip().upper().startswith("SELECT"):
            started.append(True)
            first.append(with_token(api(IP_SG_VPS, UA_CHROME_WIN), token).get(PORTFOLIO))
        return result

    with connection.execute_wrapper(interleave):
        second = with_token(api(IP_SG_VPS, UA_CHROME_WIN), token).get(PORTFOLIO)

    assert first and first[0].status_code in (401, 403), first and first[0].content
    assert not Token.objects.filter(key=token).exists()
    assert second.status_code in (401, 403), (
        f"the second copied call from Singapore was served: {second.status_code} {second.content!r}"
    )
    assert not TokenActivity.objects.filter(token_digest=_digest(token)).exists()


# -- 3. what a served call costs --------------------------------------------------------------------------


@pytest.mark.usefixtures("geoip")
def test_a_served_token_call_reads_its_activity_row_once(alice_with_totp: Any) -> None:
    """Its idle time and its binding come from one read of the token's activity row (they were two)."""
    token = obtain(api(IP_TOKYO, UA_CHROME_WIN)).json()["token"]
    client = with_token(api(IP_TOKYO, UA_CHROME_WIN), token)
    assert client.get(PORTFOLIO).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PORTFOLIO).status_code == 200
    table = TokenActivity._meta.db_table
    reads = [q["sql"] for q in queries.captured_queries if table in q["sql"] and "SELECT" in q["sql"].upper()]
    assert len(reads) == 1, reads
