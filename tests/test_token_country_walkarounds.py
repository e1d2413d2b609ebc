"""Red team, round thirty-three (a): the token's issuing-country rule (``token_new_country``, round 32).

A token used in another country than the one it was issued in (``ic``) ends, unless the address is an
anonymous exit (VPN, Tor, proxy, hosting: ``x``), which "is left to the engine's re-score". The thief picks
his exit: a commercial VPN (or a cloud VM) abroad is anonymous, so the rule skips it, and the engine's
re-score of a token has no device to compare (round 32's own finding). Real DRF, the real risk engine, the
GeoIP test databases; time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

# isort: split
from .test_drf import api, obtain, with_token

# isort: split
import time_machine
from django.utils import timezone
from rest_framework.authtoken.models import Token

from authguard.models import LoginEvent, TokenActivity
from authguard.sessions.token_activity import _digest

from .conftest import HANAKO_PASSWORD, IP_AWS, IP_TOKYO, IP_US_HOME, IP_VPN, UA_CHROME_WIN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]

PORTFOLIO = "/drf/portfolio"


def _events(user: Any, since: int) -> list[tuple[Any, ...]]:
    rows = LoginEvent.objects.filter(user=user).order_by("pk")[since:]
    return [(e.ip, e.outcome, e.action, e.score, e.reasons) for e in rows]


def _hanako_with_history(brokerage_customer: Any, start: Any) -> Any:
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    for days in (10, 7, 4):  # her app signs in at home now and then (allowed, learned)
        with time_machine.travel(start - timedelta(days=days), tick=False):
            answer = obtain(api(IP_TOKYO, UA_CHROME_WIN), username="hanako", password=HANAKO_PASSWORD)
            assert answer.status_code == 200, answer.content
    return hanako


def _copy_used_from(brokerage_customer: Any, ip: str, *, hours: float, before_ic: bool = False) -> Any:
    """Her app's token, issued at home in Tokyo and used; the infostealer's copy is used ``hours`` later from
    ``ip`` with her exact agent. Returns (status, token still exists, events since)."""
    start = timezone.now()
    hanako = _hanako_with_history(brokerage_customer, start)
    with time_machine.travel(start, tick=False) as clock:
        app = api(IP_TOKYO, UA_CHROME_WIN)
        token = obtain(app, username="hanako", password=HANAKO_PASSWORD).json()["token"]
        assert with_token(app, token).get(PORTFOLIO).status_code == 200
        if before_ic:
            # A token issued by the release before round 32 (a day's tokens at the deploy): no ``ic``.
            row = TokenActivity.objects.get(token_digest=_digest(token))
            row.binding = {k: v for k, v in row.binding.items() if k != "ic"}
            row.save(update_fields=["binding"])
        elapsed = 0.0
        while elapsed + 0.5 < hours:  # her app keeps using its token at home (never idle an hour)
            clock.shift(timedelta(minutes=30))
            elapsed += 0.5
            assert with_token(app, token).get(PORTFOLIO).status_code == 200
        clock.shift(timedelta(hours=hours - elapsed))
        since = LoginEvent.objects.filter(user=hanako).count()
        answer = with_token(api(ip, UA_CHROME_WIN), token).get(PORTFOLIO)
        return answer.status_code, Token.objects.filter(key=token).exists(), _events(hanako, since)


def test_a_copied_token_is_not_served_abroad_through_a_vpn_exit_after_the_travel_time(
    brokerage_customer: Any,
) -> None:
    """Her app's token (Tokyo) is copied by an infostealer; her app keeps using it at home all day. The
    thief waits eleven hours (out of ``impossible_travel``'s reach: 9,300 km at under 900 km/h) and calls
    the API through a commercial VPN exit in Amsterdam (GeoIP: anonymous VPN). The country rule skips
    anonymous exits ("left to the engine's re-score"), and a token's re-score has no device cookie: it sees
    ``anonymous_vpn`` +25 and a little unfamiliarity, under 40. Now: 200, the token rebound to Amsterdam and
    alive, not one event recorded. The same copy from a home line in Los Angeles at the same hour is ended
    (held twin below): the anonymous exit is the *better* choice for the thief. Secure: the exemption is for
    her app coming back from an exit to the country it was issued in, not for a token that was never
    anywhere but there: a token whose first use abroad is through an anonymous exit ends (or its re-score is
    a step-up at least, which ends a token)."""
    status, alive, events = _copy_used_from(brokerage_customer, IP_VPN, hours=11)
    assert status in (401, 403) and not alive, (status, alive, events)


def test_held_the_same_copy_through_a_cloud_vm_abroad_ends(brokerage_customer: Any) -> None:
    """HELD: through a cloud VM in Ashburn (hosting +30 with the rest), eleven hours later, it ends."""
    status, alive, events = _copy_used_from(brokerage_customer, IP_AWS, hours=11)
    assert status in (401, 403) and not alive, (status, alive, events)


def test_held_the_same_copy_from_a_home_line_abroad_eleven_hours_later_ends(brokerage_customer: Any) -> None:
    """HELD (control): from a home line in Los Angeles, eleven hours later, ``token_new_country`` ends it."""
    status, alive, events = _copy_used_from(brokerage_customer, IP_US_HOME, hours=11)
    assert status in (401, 403) and not alive, (status, alive, events)


def test_a_token_issued_before_the_country_rule_ends_abroad_too(brokerage_customer: Any) -> None:
    """A token issued by the release before round 32 keeps a state without ``ic`` (issued-in country); the
    rule reads only ``ic``, so such a token is never checked for its country: her app's copy replayed from
    a home line in Los Angeles 32 minutes later is round 32's own case (38, allowed). Tokens live a day, so
    the window is the deploy day's tokens. Secure: a state without ``ic`` takes its binding's country
    (``b.cc``, kept since 0022) as the country it was issued in."""
    status, alive, events = _copy_used_from(brokerage_customer, IP_US_HOME, hours=0.55, before_ic=True)
    assert status in (401, 403) and not alive, (status, alive, events)


def test_a_copied_token_taking_turns_with_her_app_through_a_vpn_exit_abroad_is_stopped(
    brokerage_customer: Any,
) -> None:
    """Where the above leads: once the copy is served through the VPN exit in Amsterdam, it takes turns with
    her app at home every few minutes (two holders of one token, half a world apart). Now: see the
    assertion (every call of both served: the anonymous exit is never a "place" for ``in_two_places``,
    never a country for ``token_new_country``). Secure: a token back and forth between the country it was
    issued in and an exit abroad, minutes apart, has two holders: ended."""
    start = timezone.now()
    hanako = _hanako_with_history(brokerage_customer, start)
    with time_machine.travel(start, tick=False) as clock:
        app = api(IP_TOKYO, UA_CHROME_WIN)
        token = obtain(app, username="hanako", password=HANAKO_PASSWORD).json()["token"]
        for _ in range(22):  # her app, all day
            clock.shift(timedelta(minutes=30))
            assert with_token(app, token).get(PORTFOLIO).status_code == 200
        since = LoginEvent.objects.filter(user=hanako).count()
        seen = []
        for _ in range(3):
            clock.shift(timedelta(minutes=3))
            seen.append(("copy", with_token(api(IP_VPN, UA_CHROME_WIN), token).get(PORTFOLIO).status_code))
            clock.shift(timedelta(minutes=3))
            seen.append(("her", with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get(PORTFOLIO).status_code))
        outcome = (seen, _events(hanako, since))
        assert any(status != 200 for _, status in seen), outcome
