"""A copied token against the places it remembers and vouches for (red team, round seventeen, against round
sixteen's fixes): filling the window with hops, a commuter's office, a sign-in with her user agent only.

Each test failed on the code it was written against (round sixteen's fixes). Real views, the real risk
engine, the test GeoIP databases; time-machine for time; no mock of authguard's code.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

# isort: split
# test_drf skips this module without djangorestframework (and fails under CI=true): imported first.
from .test_drf import api, with_token

# isort: split
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from authguard.models import LoginEvent

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, UA_CHROME_WIN, totp_token
from .test_copy_walkarounds import (  # noqa: F401 (fixtures)
    KDDI_HIMEJI,
    KDDI_WAKAYAMA,
    PORTFOLIO,
    _her_app,
    _token_at,
    rt16_geoip,
    rt16_geoip_dir,
)
from .test_sessions_binding_anchor import START, _signed_in_after, hanako  # noqa: F401 (fixtures)

# -- 1. the token's places: the oldest eight kept, the newer ones dropped ----------------------------------


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.battery(66)
def test_a_copied_token_that_first_fills_the_oldest_eight_places_ping_pongs_with_her_unseen(
    hanako: Any,  # noqa: F811
    rt16_geoip: Path,  # noqa: F811
) -> None:
    """places._kept_places keeps the last three places and, before them, the *oldest* eight left within 15
    minutes; every place between is dropped for good (and the kept eighth's "left" time becomes the start
    of whatever follows it in the list). Hops on her office's network under 150 km from the binding and the
    anchor are not material: never scored, never recorded, yet each a new place. So the thief, once, while
    her app is idle: his copy calls from her Osaka office (re-scored, allowed: her history), makes one hop to
    Himeji, and 16 minutes later nine more hops between Himeji and Wakayama, seconds apart. The token's
    "oldest eight" are now his hops, and stay so (the eighth's successor is always recent). From then on
    each of her app's Tokyo calls and each of his Osaka calls is followed by two free hops of his, which
    push it out of the last three and, the oldest eight being full, out of the token's places: neither
    return is ever "back at a place it left minutes ago". They alternate every minute for 15 minutes,
    longer than the rule's window; everything is served and nothing is recorded."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10).cookies["authguard_device"].value
        token = _token_at(IP_TOKYO, device)
        for _ in range(8):  # her app, through the morning at home
            t.shift(timedelta(minutes=30))
            assert with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO).status_code == 200
        events = LoginEvent.objects.filter(user=hanako).count()

        def thief(ip: str) -> int:
            return with_token(api(ip, UA_CHROME_WIN), token).get(PORTFOLIO).status_code

        hops = [KDDI_HIMEJI, KDDI_WAKAYAMA]
        # Once, while her app is idle: Osaka, then a hop every 20 seconds for 16 minutes. Fifty minutes after
        # her last call (round forty-eight: five minutes after it, Tokyo-Osaka is measured from her last call
        # and the copy ends at once, before it could fill any place; 400 km in fifty minutes is possible).
        t.shift(timedelta(minutes=50))
        setup = [thief(IP_OSAKA)]
        for n in range(50):
            t.shift(timedelta(seconds=20))
            setup.append(thief(hops[n % 2]))
        assert setup == [200] * 51, setup

        served = []
        for _minute in range(30):
            t.shift(timedelta(seconds=20))
            served.append(("her", with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO).status_code))
            t.shift(timedelta(seconds=20))
            served.append(("thief", thief(IP_OSAKA)))
            for n in range(12):  # a burst of free hops after each return
                t.shift(timedelta(seconds=2))
                thief(hops[n % 2])
    finally:
        traveller.stop()

    recorded = [(e.ip, e.outcome, e.reasons) for e in LoginEvent.objects.filter(user=hanako)[events:]]
    assert not all(code == 200 for _who, code in served), (
        f"a copied token alternating every minute for 15 minutes between her Osaka office and her home in "
        f"Tokyo (400 km) is served throughout once it filled the oldest eight places: {served}; "
        f"recorded: {recorded}"
    )
    assert not Token.objects.filter(key=token).exists()


# -- 2. a token's vouched places: any place her client signed in at within a day ------------------------


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.battery(66)
def test_a_copied_token_ping_pongs_unseen_between_her_home_and_the_office_where_her_app_signed_in_yesterday(
    hanako: Any,  # noqa: F811
    rt16_geoip: Path,  # noqa: F811
) -> None:
    """Round fifteen's battery case 66: she works in Osaka (KDDI) and lives in Tokyo; the thief replays her
    app's token through a KDDI address in Osaka, each re-score is allowed (her history), and only the
    ping-pong rule (places.in_two_places) stands between him and her live app. Round sixteen made a new
    token's vouched places every precise place where her client signed in within 24 hours
    (token_binding.vouched_before), and in_two_places excuses any return between two vouched places. A
    commuter's app signs in at the office one evening and at home the next morning (its token lived a day,
    or she signed out): the morning's token is born vouched for *both* cities, and a copy of it alternates
    with her app between them, every minute, all day, unseen and unrecorded. A browser session signed in
    at home vouches only for home (the places where *that session* proved it was her): docs/drf.md says a
    token is bound "as a verified browser session is". Her line's IPv4/IPv6 pair (the case vouched_before
    was made for) is one region, under MATERIAL_MOVE_KM apart; home and office 400 km apart are not."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10).cookies["authguard_device"].value
        t.shift(timedelta(hours=8))  # 18:00 at her Osaka office: her app signs in there
        _token_at(IP_OSAKA, device)
        t.shift(timedelta(hours=14))  # 08:00 the next morning at home: it signs in again
        token = _token_at(IP_TOKYO, device)
        for _ in range(4):  # her app, through the morning at home
            t.shift(timedelta(minutes=30))
            assert with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO).status_code == 200
        events = LoginEvent.objects.filter(user=hanako).count()

        codes = []
        for ip in [IP_OSAKA, IP_TOKYO] * 5:  # thief, her, thief, her, ...
            t.shift(timedelta(seconds=60))
            client = api(ip, UA_CHROME_WIN) if ip == IP_OSAKA else _her_app(ip, device)
            codes.append(with_token(client, token).get(PORTFOLIO).status_code)
            if codes[-1] != 200:
                break
    finally:
        traveller.stop()

    recorded = [(e.ip, e.outcome, e.reasons) for e in LoginEvent.objects.filter(user=hanako)[events:]]
    assert codes != [200] * 10, (
        f"a copied token alternating every minute between her home in Tokyo and her Osaka office (400 km), "
        f"where her app signed in the evening before, is served throughout: {codes}; recorded: {recorded}"
    )
    assert not Token.objects.filter(key=token).exists()


def _token_login(ip: str) -> Any:
    """A token sign-in with her password and her browser's agent, keeping no cookie (her script, or the
    thief's)."""
    return api(ip, UA_CHROME_WIN).post(
        "/api/auth/token", {"username": "hanako", "password": HANAKO_PASSWORD}, format="json"
    )


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.battery(66)
def test_the_thiefs_own_sign_in_with_her_agent_vouches_his_place_for_her_cookieless_apps_next_token(
    hanako: Any,  # noqa: F811
    rt16_geoip: Path,  # noqa: F811
) -> None:
    """token_binding.vouched_before: "Another client's sign-ins (a thief's) vouch for nothing here". A client
    without the device cookie is matched by its user agent alone (``device_hash=""``), which the thief has
    (the infostealer's copy). With her password he signs in once through a KDDI address in Osaka, with her
    agent and no cookie (relaying her authenticator's code if asked): his own token, ended by her next
    sign-in. Her cookie-less client then signs in at home in Tokyo; its new token is born vouched for his
    Osaka place, and his copy of it alternates with her client between Osaka and Tokyo, unseen."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10)
        t.shift(timedelta(hours=1))
        his = _token_login(IP_OSAKA)  # the thief, with her password and her agent
        if his.status_code == 401 and his.json().get("status") == "step_up_required":
            his = api(IP_OSAKA, UA_CHROME_WIN).post(
                "/api/auth/step-up/totp",
                {"step_up_token": his.json()["step_up_token"], "code": totp_token(TOTPDevice.objects.get())},
                format="json",
            )
        assert his.status_code == 200, his.content
        t.shift(timedelta(hours=2))
        mine = _token_login(IP_TOKYO)  # her cookie-less client at home
        assert mine.status_code == 200, mine.content
        token = mine.json()["token"]
        for _ in range(4):
            t.shift(timedelta(minutes=30))
            assert with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get(PORTFOLIO).status_code == 200
        events = LoginEvent.objects.filter(user=hanako).count()

        codes = []
        for ip in [IP_OSAKA, IP_TOKYO] * 5:  # thief, her, thief, her, ...
            t.shift(timedelta(seconds=60))
            codes.append(with_token(api(ip, UA_CHROME_WIN), token).get(PORTFOLIO).status_code)
            if codes[-1] != 200:
                break
    finally:
        traveller.stop()

    recorded = [(e.ip, e.outcome, e.reasons) for e in LoginEvent.objects.filter(user=hanako)[events:]]
    assert codes != [200] * 10, (
        f"her token, vouched for the place of the thief's own sign-in with her agent, alternates between "
        f"Osaka and Tokyo with his copy unseen: {codes}; recorded: {recorded}"
    )
