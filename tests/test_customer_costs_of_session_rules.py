"""Round thirty-one (c), the legitimate customer's advocate: what the session rules of c7e3316 and 4219f4f
cost real customers with real browsers and networks.

The rules: a newer browser release is "her update" only on her line (``places.same_line``: the bound IPv4
address, the bound IPv6 /64, or the other family), an older or unparsed release is material
(``places.release_change``) and a session going back a release is held (``places.went_back``); a session
back in a browser it left for another is held unless she vouched for both (``places.returned_browser``).
Each journey below is a real customer on the demo portal's real endpoints (JSON login, ``/api/portfolio``,
``/api/orders``, authguard's step-up with real TOTP codes), synthetic GeoIP databases and the real risk
engine. Each asserts what a fair product does for her: she gets through, with at most one step-up, and her
normal trades are not held. ``test_held_...``: journeys the rules let through at no cost.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from authguard.models import LoginEvent
from authguard.testing import GeoNetwork, write_geoip_databases
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from . import test_battery_exposure as battery
from .conftest import (
    IP_DOCOMO,
    IP_TOKYO,
    TEST_NETWORKS,
    UA_CHROME_WIN,
    UA_IPHONE,
    OrderApi,
    of_long_standing,
    settle_device,
    totp_token,
)
from .test_battery_exposure import sign_in
from .test_customer_costs_of_the_rules import _rebalance
from .test_sessions_browser_release_walkarounds import _copy_of, _session_state

start = battery.start
clock = battery.clock

PORTFOLIO = "/api/portfolio"

UA_ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Mobile Safari/537.36"
)
#: Chrome for Android with "Desktop site" ticked: its reduced desktop Linux user agent, the same release.
UA_ANDROID_CHROME_DESKTOP_SITE = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
#: Safari on iPadOS: desktop-class browsing by default (the Mac user agent), the iPad one in Slide Over or a
#: narrow Split View (Safari asks for the mobile site there by itself) or with "Request Mobile Website".
UA_IPAD_DESKTOP = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
UA_IPAD_MOBILE = (
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
#: Safari on her iPhone with "Request Desktop Website" (one page that renders badly on a phone).
UA_IPHONE_DESKTOP = UA_IPAD_DESKTOP


def _newer(ua: str) -> str:
    """The same browser one release later (Chrome 131 -> 132; Safari 18.1 -> 18.2 with iOS 18.2)."""
    if "Chrome/131.0.0.0" in ua:
        return ua.replace("Chrome/131.0.0.0", "Chrome/132.0.0.0")
    return ua.replace("18_1", "18_2").replace("Version/18.1", "Version/18.2")


#: Her OCN line's IPv6 side (Tokyo, as its IPv4 side): a /64 of which her PC uses rotating privacy addresses.
V6_HOME_NET = GeoNetwork(
    "2001:db8:40::/48", country="JP", city="Tokyo", latitude=35.6895, longitude=139.6917, accuracy_km=10,
    time_zone="Asia/Tokyo", asn=4713, as_org="NTT Communications (OCN)",
)  # fmt: skip
#: Her employer's office in Tokyo on KDDI's business line, whose proxy leaves through a pool of addresses
#: (each connection may leave from another one).
OFFICE_NET = GeoNetwork(
    "203.0.103.0/24", country="JP", city="Tokyo", latitude=35.6812, longitude=139.7671, accuracy_km=10,
    time_zone="Asia/Tokyo", asn=2516, as_org="KDDI CORPORATION",
)  # fmt: skip


@pytest.fixture(scope="session")
def journeys_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(
        tmp_path_factory.mktemp("journeys_geoip"), [*TEST_NETWORKS, V6_HOME_NET, OFFICE_NET]
    )


@pytest.fixture
def journeys_geoip(settings: Any, journeys_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(journeys_geoip_dir)
    return journeys_geoip_dir


def _device_of_a_year(clock: Any, user: Any, *, ips: list[str], ua: str, days: int = 10) -> OrderApi:
    """Tanaka's browser ``ua`` of more than a year, signed in every day of the last ``days`` from ``ips`` in
    turn (a phone's carrier hands it another address each time), each session used; signed out."""
    of_long_standing(user)
    clock(-days)
    browser = OrderApi(REMOTE_ADDR=ips[0], HTTP_USER_AGENT=ua)
    browser.login(TANAKA.username, TANAKA.password)
    settle_device(browser.client.cookies["authguard_device"].value, user, days=400)
    for day in range(-days + 1, 0):
        clock(day)
        browser.client.defaults["REMOTE_ADDR"] = ips[day % len(ips)]
        sign_in(browser, TANAKA.username, TANAKA.password)
        assert browser.get(PORTFOLIO).status_code == 200
    browser.post("/api/logout")
    return browser


def _events(user: Any, since: int = 0) -> list[tuple[Any, ...]]:
    return [
        (e.ip, e.outcome, e.action, e.score, e.reasons)
        for e in LoginEvent.objects.filter(user=user).order_by("pk")[since:]
    ]


# -- 1. her browser updating mid-session ------------------------------------------------------------------

#: (where her browser lives: the addresses it used over the days before, where she signs in today, where its
#: first request after the update comes from, her browser)
UPDATE_JOURNEYS = {
    # Android Chrome on NTT Docomo (CGNAT): Play Store updates Chrome at lunch; the relaunched Chrome's first
    # request leaves the carrier's NAT from another public address, as most of her requests do.
    "android-chrome-on-lte-cgnat": (
        ["203.0.113.140", "203.0.113.141", "203.0.113.142"],
        "203.0.113.143",
        "203.0.113.150",
        UA_ANDROID_CHROME,
    ),
    # Her iPhone installs iOS 18.2 overnight (Safari 18.1 -> 18.2 with it) and restarts; in the morning on the
    # train, her session's first request after the restart is from another Docomo address.
    "iphone-ios-update-on-lte": (
        ["203.0.113.140", "203.0.113.141", "203.0.113.142"],
        "203.0.113.143",
        "203.0.113.151",
        UA_IPHONE,
    ),
    # Her work laptop at the office: the corporate proxy leaves through a pool of addresses. Chrome relaunches
    # after lunch to apply its update.
    "office-proxy-egress-pool": (
        ["203.0.103.10", "203.0.103.11"],
        "203.0.103.10",
        "203.0.103.11",
        UA_CHROME_WIN,
    ),
}
HELD_UPDATE_JOURNEYS = {
    # Her home PC on a fixed IPv4 address: the update at the very address.
    "home-ipv4-same-address": ([IP_TOKYO], IP_TOKYO, IP_TOKYO, UA_CHROME_WIN),
    # Her home PC on IPv6: its privacy address rotated overnight, in the same /64.
    "home-ipv6-privacy-address": (
        ["2001:db8:40:1::10"],
        "2001:db8:40:1::10",
        "2001:db8:40:1:9c1e:44ff:fe01:7",
        UA_CHROME_WIN,
    ),
    # Dual-stack home line: bound on IPv4, the relaunched Chrome's first request goes over IPv6.
    "home-dual-stack-v4-to-v6": ([IP_TOKYO], IP_TOKYO, "2001:db8:40:1::10", UA_CHROME_WIN),
    # Her iPhone on her home Wi-Fi (one IPv4 address) installs iOS 18.2 overnight.
    "iphone-ios-update-on-home-wifi": ([IP_TOKYO], IP_TOKYO, IP_TOKYO, UA_IPHONE),
}


def _update_journey(clock: Any, tanaka: Any, totp_factory: Any, journey: tuple[Any, ...]) -> tuple[Any, ...]:
    history, today, after_update, ua = journey
    browser = _device_of_a_year(clock, tanaka, ips=history, ua=ua)
    clock(0)
    browser.client.defaults["REMOTE_ADDR"] = today
    sign_in(browser, TANAKA.username, TANAKA.password)
    assert browser.get(PORTFOLIO).status_code == 200
    assert _session_state(browser)["s"] == "verified", _events(tanaka)[-1:]
    device = totp_factory(tanaka)  # her authenticator app (bound earlier: the demo's account has none)
    events = LoginEvent.objects.filter(user=tanaka).count()
    clock(0, hours=0.5)
    updated = _copy_of(browser, ip=after_update, ua=_newer(ua))  # the same jar: her browser, relaunched
    served = updated.get(PORTFOLIO)
    step_ups = 0
    if served.status_code == 401:
        step_ups += 1
        assert updated.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
        served = updated.get(PORTFOLIO)
    state = _session_state(updated)
    sold, statuses = _rebalance(updated, tanaka)
    return served.status_code, step_ups, state, sold, statuses, _events(tanaka, events)


@pytest.mark.django_db
@pytest.mark.usefixtures("journeys_geoip")
@pytest.mark.parametrize("journey", list(UPDATE_JOURNEYS))
def test_trade_her_browser_updating_mid_session_away_from_a_fixed_address_is_re_scored_and_lowers_her_limits(
    clock: Any, tanaka: Any, totp_factory: Any, journey: str
) -> None:
    """TRADE, kept (docs/step-up.md, "What the address rule costs"). Tanaka's browser of a year updates
    mid-session (Chrome 131 -> 132; Safari 18.1 -> 18.2 with iOS) where her public address is not one fixed
    address: a phone on LTE behind the carrier's NAT, her office's proxy leaving through a pool of
    addresses. The relaunched browser's first request is "a newer release at another address": re-scored
    (her cookie, her device's usual network: allowed, no step-up), and the session counts as re-scored for
    the order guard: her 40 % rebalancing stops at the risky session's limit and the rest is held for her
    to confirm with her factor. Kept because a thief's anti-detect build on a mobile proxy of her own carrier
    is, request for request, the same (round twenty-nine); what she has that he does not is her factor."""
    served, step_ups, state, sold, statuses, events = _update_journey(
        clock, tanaka, totp_factory, UPDATE_JOURNEYS[journey]
    )
    outcome = (f"served {served}, {step_ups} step-up(s), r={state.get('r')}", f"sold {sold:.1%}", statuses,
               events)  # fmt: skip
    assert served == 200 and step_ups == 0 and state.get("r"), outcome
    assert "held" in statuses and sold < Decimal("0.35"), outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("journeys_geoip")
@pytest.mark.parametrize("journey", list(HELD_UPDATE_JOURNEYS))
def test_held_her_browser_updating_mid_session_on_her_own_line_costs_nothing(
    clock: Any, tanaka: Any, totp_factory: Any, journey: str
) -> None:
    """HELD (no cost): her update at the bound IPv4 address, in the bound IPv6 /64 (a rotated privacy
    address), over her dual-stack line's other family, or her iPhone's iOS update on her home Wi-Fi: no
    re-score, no step-up, her 40 % rebalancing placed."""
    served, step_ups, state, sold, statuses, events = _update_journey(
        clock, tanaka, totp_factory, HELD_UPDATE_JOURNEYS[journey]
    )
    outcome = (f"served {served}, {step_ups} step-up(s), r={state.get('r')}", f"sold {sold:.1%}", statuses,
               events)  # fmt: skip
    assert served == 200 and step_ups == 0 and not state.get("r"), outcome
    assert "held" not in statuses and sold > Decimal("0.35"), outcome


# -- 2. one browser, two user agents: desktop and mobile site ------------------------------------------------

#: (her device's everyday user agent, the other one her browser sends for a while, where)
FLIP_JOURNEYS = {
    # iPad Safari: desktop-class by default; she opens the portal in Split View next to her notes, and Safari
    # asks for the mobile site by itself; back to full screen, the desktop one again. Then Split View again.
    "ipad-split-view": (UA_IPAD_DESKTOP, UA_IPAD_MOBILE, IP_TOKYO),
    # Her iPhone: "Request Desktop Website" for the statement page that renders badly, then back.
    "iphone-request-desktop-website": (UA_IPHONE, UA_IPHONE_DESKTOP, IP_TOKYO),
    # Android Chrome "Desktop site" ticked for one page, then unticked, on LTE.
    "android-desktop-site-on-lte": (UA_ANDROID_CHROME, UA_ANDROID_CHROME_DESKTOP_SITE, IP_DOCOMO),
}


@pytest.mark.django_db
@pytest.mark.usefixtures("journeys_geoip")
@pytest.mark.parametrize("journey", list(FLIP_JOURNEYS))
def test_her_browser_switching_between_its_desktop_and_mobile_site_at_one_address_asks_at_most_one_step_up(
    clock: Any, tanaka: Any, totp_factory: Any, journey: str
) -> None:
    """Tanaka's iPad (iPhone, Android phone) of a year, signed in at home (on LTE). Her one browser sends
    two user agents within the session, at her one address: the desktop site and the mobile one (iPadOS
    Safari switches by itself in Split View; "Request Desktop Website" on a phone). ``br`` (family|OS|type)
    differs. docs/step-up.md names the Android tablet's cost as one step-up in each of the two and a trust
    week of lowered limits; iPadOS does it without her asking, at every Split View. Secure (fair): two user
    agents of one device cookie within one session, each vouched for by her step-up in it, are one browser:
    at most one step-up.

    Now: ``session_in_two_browsers`` is not what holds her. The first switch is re-scored and the ENGINE
    asks a step-up (``device_user_agent_sideways`` + ``unfamiliar_login``, 47: the device's memory knows
    only her everyday user agent, and a re-score is "scored, never learned"). The switch back is allowed
    (both browsers vouched). The next switch to the other user agent is material again (``br`` differs
    from the bound one), re-scored again, and the engine asks again: a step-up at EVERY switch, however
    many times she has stepped up in that very browser in this session. docs/step-up.md promises "once in
    each of the two, and then never again in that session". Smallest fix (checked against round thirty's
    walkarounds): in ``places.is_material_change``, a ``br`` the session's ``bs`` marks vouched, against a
    bound ``br`` also vouched, is no change of browser (compare network, place, device cookie and release
    as for the same browser); the thief's browser is never vouched without a step-up of its own."""
    everyday, other, ip = FLIP_JOURNEYS[journey]
    browser = _device_of_a_year(clock, tanaka, ips=[ip], ua=everyday)
    clock(0)
    sign_in(browser, TANAKA.username, TANAKA.password)
    assert browser.get(PORTFOLIO).status_code == 200
    assert _session_state(browser)["s"] == "verified", _events(tanaka)[-1:]
    device = totp_factory(tanaka)
    since = LoginEvent.objects.filter(user=tanaka).count()
    step_ups, seen = 0, []
    for i, ua in enumerate([other, everyday, other, everyday, other, everyday]):
        clock(0, hours=0.2 + 0.1 * i)
        browser.client.defaults["HTTP_USER_AGENT"] = ua
        answer = browser.get(PORTFOLIO)
        if answer.status_code == 401:
            step_ups += 1
            seen.append(f"held in {'other' if ua == other else 'everyday'}")
            passed = browser.post("/authguard/api/step-up/totp", {"code": totp_token(device)})
            assert passed.status_code == 200, (i, passed.content, _events(tanaka, since))
            answer = browser.get(PORTFOLIO)
        seen.append(answer.status_code)
    events = _events(tanaka, since)
    # Measured, not asserted (the documented trade): each passed step-up is a ``step_up_passed`` event, and
    # the account's limits are lowered for the trust week: the next day her 40 % rebalancing is held.
    clock(1)
    browser.client.defaults["HTTP_USER_AGENT"] = everyday
    sign_in(browser, TANAKA.username, TANAKA.password)
    sold, statuses = _rebalance(browser, tanaka)
    outcome = (f"{step_ups} step-ups in 3 switches to the other user agent", seen, events,
               f"next day sold {sold:.1%} {statuses}")  # fmt: skip
    assert all(s == 200 for s in seen if isinstance(s, int)) and step_ups <= 1, outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("journeys_geoip")
def test_held_her_ipad_staying_in_one_mode_all_session_costs_nothing(clock: Any, tanaka: Any) -> None:
    """HELD (no cost): the same iPad, never leaving full screen: one user agent, no re-score, her 40 %
    rebalancing placed."""
    browser = _device_of_a_year(clock, tanaka, ips=[IP_TOKYO], ua=UA_IPAD_DESKTOP)
    clock(0)
    sign_in(browser, TANAKA.username, TANAKA.password)
    for i in range(4):
        clock(0, hours=0.2 + 0.1 * i)
        assert browser.get(PORTFOLIO).status_code == 200
    assert not _session_state(browser).get("r")
    sold, statuses = _rebalance(browser, tanaka)
    assert "held" not in statuses and sold > Decimal("0.35"), (sold, statuses)


# -- 3. two browsers of a family on one PC -------------------------------------------------------------------

UA_EDGE_WIN = UA_CHROME_WIN + " Edg/131.0.0.0"


@pytest.mark.django_db
@pytest.mark.usefixtures("journeys_geoip")
def test_held_a_family_pc_with_chrome_and_edge_keeps_each_session_to_itself(
    clock: Any, tanaka: Any, user_factory: Any
) -> None:
    """HELD (no cost): the family PC at home. Tanaka banks in Chrome 131, his wife in Edge 131 (the same
    Chromium release) with her own account, both signed in all evening at one address. Each browser has its
    own cookie jar, so neither session ever sees the other's user agent: no re-score, no hold, his 40 %
    rebalancing placed."""
    home = _device_of_a_year(clock, tanaka, ips=[IP_TOKYO], ua=UA_CHROME_WIN)
    clock(0)
    sign_in(home, TANAKA.username, TANAKA.password)
    wife = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_EDGE_WIN)
    user_factory("keiko", password="keiko-own-pass-2025")
    wife.login("keiko", "keiko-own-pass-2025")
    for i in range(3):
        clock(0, hours=0.2 + 0.1 * i)
        assert home.get(PORTFOLIO).status_code == 200
        assert wife.get(PORTFOLIO).status_code in (200, 404)
    assert not _session_state(home).get("r")
    sold, statuses = _rebalance(home, tanaka)
    assert "held" not in statuses and sold > Decimal("0.35"), (sold, statuses)


# -- 4. her step-up after a network change (login.stepup.refused_where_posted) -------------------------------

#: (where her new phone signs in, where its code is posted a minute later)
STEP_UP_MOVES = {
    # Dual-stack home line: the login over IPv4, the code over IPv6 (Happy Eyeballs picked the other family).
    "home-v4-then-v6": (IP_TOKYO, "2001:db8:40:1::10"),
    # On LTE behind the carrier's NAT: the code leaves from another public address of the carrier.
    "lte-cgnat-address-change": ("203.0.113.140", "203.0.113.150"),
    # Her iPhone leaves the office Wi-Fi (KDDI business line) for LTE between password and code.
    "office-wifi-then-lte": ("203.0.103.10", IP_DOCOMO),
}


@pytest.mark.django_db
@pytest.mark.usefixtures("journeys_geoip")
@pytest.mark.parametrize("move", list(STEP_UP_MOVES))
def test_held_her_new_phones_step_up_after_its_network_changed_passes_once(
    clock: Any, tanaka: Any, totp_factory: Any, move: str
) -> None:
    """HELD (one step-up, as any new device): Tanaka's PC of a year at home; his new iPhone signs in
    (a new device: step-up) and the code goes out a minute later from another address of his line (the other
    family), of his carrier's NAT, or from LTE after the office Wi-Fi. Round thirty scores and records every
    step-up posted away from the login's own context: none of these is refused, the session is verified and
    served where the code was posted, and no second step-up is asked."""
    password_at, code_at = STEP_UP_MOVES[move]
    _device_of_a_year(clock, tanaka, ips=[IP_TOKYO], ua=UA_CHROME_WIN)
    device = totp_factory(tanaka)
    clock(0)
    phone = OrderApi(REMOTE_ADDR=password_at, HTTP_USER_AGENT=UA_IPHONE)
    answer = phone.login(TANAKA.username, TANAKA.password).json()
    since = LoginEvent.objects.filter(user=tanaka).count() - 1
    clock(0, hours=0.02)
    phone.client.defaults["REMOTE_ADDR"] = code_at
    if answer["status"] == "ok":  # at home the new phone is allowed outright: no step-up at all
        passed = answer_ok = phone.get(PORTFOLIO)
        assert answer_ok.status_code == 200, _events(tanaka, since)
    else:
        assert answer["status"] == "step_up_required", (answer, _events(tanaka)[-1:])
        passed = phone.post("/authguard/api/step-up/totp", {"code": totp_token(device)})
    served = phone.get(PORTFOLIO)
    state = _session_state(phone)
    events = _events(tanaka, since)
    assert passed.status_code == 200 and served.status_code == 200, (passed.content, events)
    assert state["s"] == "verified" and not any(o == "refused" for _, o, *_ in events), events
