"""Copies of the portal's device cookie and of an API token, against rounds fourteen and fifteen's fixes (red
team, round sixteen): the fork of the portal's cookie (authguard.risk.legacy_device: forked_from,
settle_fork, TAKEN_OVER) and the token's places (authguard.sessions.token_binding). Each test failed on the
code it was written against. Real views, the real risk engine, the test GeoIP databases; time-machine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
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

from authguard.models import LoginEvent, RiskProfile
from authguard.risk.legacy_device import FORK_SEEN, TAKEN_OVER
from authguard.testing import GeoNetwork, write_geoip_databases

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, TEST_NETWORKS, UA_CHROME_WIN, OrderApi, totp_token
from .test_risk_legacy_device import COOKIE, PORTAL_ID, imported, sign_in, sign_in_again  # noqa: F401
from .test_sessions_binding_anchor import EXTRA, IIJ_V6_TSUKUBA, START, _signed_in_after, hanako  # noqa: F401

# -- the portal's device cookie with two holders ---------------------------------------------------------


def _pass_totp(api: OrderApi, when: datetime) -> None:
    """Her browser, held at step-up, passes it with her authenticator app's code (a TOTP)."""
    with time_machine.travel(when, tick=False):
        answer = api.post("/authguard/api/step-up/totp", {"code": totp_token(TOTPDevice.objects.get())})
    assert answer.status_code == 200, answer.content


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.battery(62)
def test_after_the_fork_her_own_pc_passing_its_totp_step_up_is_not_a_copy_at_every_sign_in_forever(
    imported: datetime,  # noqa: F811
) -> None:
    """Round fourteen (c5): a thief shows the infostealer's copy of her PC's portal cookie first and his
    authguard cookie takes the imported device over; her PC then shows the same cookie: a fork, she is held
    (``device_cookie_superseded``) and the thief's id retired. docs/benchmarks-detection.md: "Once a holder
    of it passes the step-up the fork is marked seen". But FORK_SEEN is written only by ``take_over``, which
    runs only when a login is *learned*, and a TOTP step-up teaches nothing (only a passkey does,
    login.stepup.remembers_device). So ``TAKEN_OVER`` keeps naming the thief's id, and every later sign-in
    of her PC presenting the portal's cookie is "another holder" again: stepped up as a copy, no known-device
    standing, a new authguard id, the thief's id retired again, every day, for good. The same happens in the
    other order (her PC first, one thief sign-in with the copy): her browser is stepped up for ever."""
    first, _thief = sign_in(imported, portal_id=PORTAL_ID)  # the thief, with the copy: her PC to the engine
    assert first.action == "allow", first.reasons

    when = imported + timedelta(days=1)
    fork, hers = sign_in(when, portal_id=PORTAL_ID)  # her own PC: the fork is caught, she steps up
    assert fork.action == "step_up" and "device_cookie_superseded" in fork.reasons, fork.reasons
    _pass_totp(hers, when + timedelta(seconds=30))

    later = []
    for day in (2, 3, 4):
        event = sign_in_again(hers, imported + timedelta(days=day))
        later.append((event.action, event.reasons))
        if event.action == "step_up":
            _pass_totp(hers, imported + timedelta(days=day, seconds=30))
    taken = RiskProfile.objects.get().data.get(TAKEN_OVER)
    assert all("device_cookie_superseded" not in reasons for _action, reasons in later), (
        f"her own PC, which passed the fork's step-up, is judged a copy at every later sign-in: {later}; "
        f"the fork is never marked seen: {taken}"
    )
    assert taken and set(taken.values()) == {FORK_SEEN}, taken


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.battery(62)
def test_a_wrong_password_with_a_copy_of_the_portals_cookie_does_not_retire_her_pcs_id(
    imported: datetime,  # noqa: F811
) -> None:
    """Round fourteen's retire_taker ran inside ``DatabaseHistory.evidence``, whenever a request of her
    account was scored: a failed password attempt (``after_failed_login`` scores it to record it), a
    throttled or locked one too. Authguard's own cookie is retired only by a sign-in whose password was right
    (``middleware._keep_device_cookie``). So a stranger holding only the infostealer's copy of the portal's
    cookie, without her password, retired her PC's id with one wrong guess. Now only a sign-in with the
    right password settles a fork (legacy_device.settle_fork)."""
    first, hers = sign_in(imported, portal_id=PORTAL_ID)  # her PC takes the imported device over
    assert first.action == "allow", first.reasons
    again = sign_in_again(hers, imported + timedelta(hours=2))
    assert again.action == "allow" and "known_device" in {f["code"] for f in again.findings}, again.reasons

    with time_machine.travel(imported + timedelta(hours=3), tick=False):
        stranger = OrderApi(REMOTE_ADDR=IP_OSAKA)
        stranger.client.cookies[COOKIE] = PORTAL_ID
        answer = stranger.post("/api/login", {"username": "alice", "password": "not her password"})
    assert answer.status_code != 200
    assert LoginEvent.objects.latest("pk").outcome == "bad_password"

    after = sign_in_again(hers, imported + timedelta(days=1))
    assert after.action == "allow" and "device_cookie_superseded" not in after.reasons, (
        f"one wrong password with a copy of the portal's cookie held her PC: {after.action} {after.reasons}"
    )


# -- API token binding ------------------------------------------------------------------------------------

KDDI: dict[str, Any] = dict(country="JP", time_zone="Asia/Tokyo", asn=2516, as_org="KDDI CORPORATION")
#: Two more KDDI places in the Kansai region, each 60-80 km from Osaka (IP_OSAKA's KDDI block) and from each
#: other: residential proxies on her office's ISP.
KANSAI = [
    GeoNetwork("203.0.102.0/24", city="Himeji", latitude=34.8151, longitude=134.6853, accuracy_km=5, **KDDI),
    GeoNetwork(
        "203.0.101.0/24", city="Wakayama", latitude=34.2261, longitude=135.1675, accuracy_km=5, **KDDI
    ),
]
KDDI_HIMEJI, KDDI_WAKAYAMA = "203.0.102.9", "203.0.101.9"
PORTFOLIO = "/drf/portfolio"


@pytest.fixture(scope="session")
def rt16_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(tmp_path_factory.mktemp("rt16geoip"), [*TEST_NETWORKS, *EXTRA, *KANSAI])


@pytest.fixture
def rt16_geoip(settings: Any, rt16_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(rt16_geoip_dir)
    return rt16_geoip_dir


def _her_app(ip: str, device_cookie: str) -> Any:
    """Her API client on her laptop (her browser's agent), keeping the device cookie as docs/drf.md asks."""
    client = api(ip, UA_CHROME_WIN)
    client.cookies["authguard_device"] = device_cookie
    return client


def _token_at(ip: str, device_cookie: str) -> str:
    answer = _her_app(ip, device_cookie).post(
        "/api/auth/token", {"username": "hanako", "password": HANAKO_PASSWORD}, format="json"
    )
    assert answer.status_code == 200, answer.content
    return str(answer.json()["token"])


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.battery(66)
def test_a_copied_token_ping_ponging_with_her_is_stopped_even_when_it_flushes_the_last_three_places(
    hanako: Any,  # noqa: F811
    rt16_geoip: Path,
) -> None:
    """Round fifteen's ping-pong rule (places.in_two_places) looks for her place among the token's *last
    three* places (``h``, places.place_binding ``[*seen, entry][-3:]``), and a hop on the same network
    under 150 km from the binding and the anchor is not material: unscored, yet a new ``h`` entry once it is
    30 km from the last one. So the thief, allowed at her Osaka office (KDDI, her history), hops at once
    through two more KDDI addresses in Himeji and Wakayama (70 km away, no re-score): Tokyo has left ``h``.
    Her app's next call from Tokyo is then no return to a place it left minutes ago: re-scored, allowed,
    rebound to Tokyo; his next call from Osaka is likewise neither (Himeji and Wakayama are the entries it
    is compared with). The copy and her app alternate every minute for good; nothing is recorded. (The same
    three-entry history holds a browser session's ping-pong rule.)"""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        device = _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10).cookies["authguard_device"].value
        token = _token_at(IP_TOKYO, device)
        for _ in range(8):  # her app, through the morning at home
            t.shift(timedelta(minutes=30))
            assert with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO).status_code == 200
        events = LoginEvent.objects.filter(user=hanako).count()

        served = []
        for _round in range(3):
            for ip in [IP_OSAKA, KDDI_HIMEJI, KDDI_WAKAYAMA]:  # the thief's copy, seconds apart
                t.shift(timedelta(seconds=2))
                served.append((ip, with_token(api(ip, UA_CHROME_WIN), token).get(PORTFOLIO).status_code))
            t.shift(timedelta(seconds=60))  # her app, a minute later, at home
            hers = with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO)
            served.append((IP_TOKYO, hers.status_code))
    finally:
        traveller.stop()

    assert not all(code == 200 for _ip, code in served), (
        f"a copied token alternating every minute between her Osaka office and her home in Tokyo (400 km) "
        f"with two flushing hops is served throughout: {served}; "
        f"{LoginEvent.objects.filter(user=hanako).count() - events} event(s) recorded"
    )
    assert not Token.objects.filter(key=token).exists()


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.battery(66)
def test_her_dual_stack_app_whose_ipv6_is_another_network_placed_apart_keeps_a_token_after_signing_in_at_both(
    hanako: Any,  # noqa: F811
    rt16_geoip: Path,
) -> None:
    """Her line's IPv6 runs on IIJ, which GeoIP places in Tsukuba (56 km); her IPv4 is OCN Tokyo; her
    history knows both (ten days of sign-ins on each). places.in_two_places excuses a return between "two
    places where she signed in or passed a step-up", and a browser session does this once per place
    (test_sessions_binding_anchor's dual-stack test). A token's vouched places (``vp``) are only the place of
    the sign-in that issued it (token_binding.issued_state) and nothing can add one (a re-score never
    vouches, and a step-up issues a new token with a new state): so after her app signed in on *each* side,
    every token still ends at its first round trip between the two sides (403 "Sign in again"), for good."""
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        home = _signed_in_after(t, [IP_TOKYO, IIJ_V6_TSUKUBA] * 10)
        home.post("/api/logout")
        t.shift(timedelta(minutes=20))  # the browser is closed: its device activity is no longer recent
        device = home.cookies["authguard_device"].value

        lives = []
        # Each time the token ends, the app signs in again: on one side of her line, then the other.
        for first_side in [IP_TOKYO, IIJ_V6_TSUKUBA, IP_TOKYO]:
            token = _token_at(first_side, device)
            other = IIJ_V6_TSUKUBA if first_side == IP_TOKYO else IP_TOKYO
            codes = []
            for ip in [other, first_side, other, first_side]:
                t.shift(timedelta(seconds=60))
                codes.append(with_token(_her_app(ip, device), token).get(PORTFOLIO).status_code)
                if codes[-1] != 200:
                    break
            lives.append((first_side, codes))
    finally:
        traveller.stop()

    # Each end is the ping-pong rule alone: the engine had nothing else against her.
    refused = [e.reasons for e in LoginEvent.objects.filter(user=hanako, outcome="refused")]
    assert refused and all(reasons == ["session_in_two_places"] for reasons in refused), refused
    signed_in_at = {side for side, _codes in lives}
    ended = [(side, codes) for side, codes in lives if codes[-1] != 200]
    assert signed_in_at == {IP_TOKYO, IIJ_V6_TSUKUBA}, lives
    assert len(ended) <= 1, (
        f"her dual-stack app signed in on both sides of her line and its token still ends at every round "
        f"trip between them: {lives}"
    )
