"""Red team round thirty (a): the live session's binding after c7e3316. Each finding below failed on c7e3316.

c7e3316: a newer browser release is "her update" only at the bound address (``places.same_address``), an
older or unparsed one is material, a session whose release goes back is held (``rescoring._held_went_back``),
and the owner of a re-scored session stepping up "where it was verified before" (the former binding) writes
no event and lets go of the re-score's event ``e`` (``stepup.refused_where_posted``).

Findings (each fails on c7e3316):

1. The "former binding" is whatever ``b`` holds, and a non-material move ("moved") rebinds ``b`` without any
   verification. A copy on her ISP nearby is "moved" there; it raises the binding's release at its own
   (now bound) address ("her update"), so her next request goes back a release and is held; the thief posts
   one relayed code from his address: his step-up is "her former binding", writes no event, pops her
   re-score's ``e`` and shuts her out. No event anywhere names his address; the only record is her own
   request at home, held and never passed. The pop comes before the code is checked, so his wrong guesses
   from there mark nothing ``step_up_failed`` either (the control from a third address is recorded).
2. Two browsers of different OS under one session (her Chrome on Windows, the copy's Chrome on a Mac)
   alternate all day: each switch is re-scored and allowed, no event, never held. ``went_back`` holds the
   release going back ("two browsers hold it") but not the browser going back and forth.
3. (Cost) Her own Chrome update at home reaching the site over her line's IPv6 while the session is bound to
   the line's IPv4 address (dual-stack: the session already moves between the two without a re-score) is
   "another address": re-scored, and the guard counts the session as re-scored.

Fixed: every step-up posted away from the pending login's own context is recorded where posted (no "former
binding" exemption, ``login.stepup.refused_where_posted``); a session back in a browser it left for another
is held at a step-up unless she vouched for both (``places.returned_browser``,
``session_in_two_browsers``); a newer release is her update on her line's other address family too
(``places.same_line``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from authguard.models import LoginEvent
from authguard.testing import GeoNetwork, write_geoip_databases

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, IP_TOKYO_2, TEST_NETWORKS, UA_CHROME_WIN, totp_token
from .test_orders_copied_browser_os_walkarounds import UA_CHROME_MAC
from .test_orders_first_device_walkarounds import LOWERED_SELL_SHARE
from .test_sessions_browser_release_walkarounds import _copy_of, _session_state
from .test_sessions_release_change_walkarounds import UA_CHROME_WIN_NEWER, _her_session_copied, _pump

start = battery.start
clock = battery.clock

PORTFOLIO = "/api/portfolio"


def _events(user: Any, since: int) -> list[tuple[Any, ...]]:
    return [
        (e.ip, e.outcome, e.action, e.reasons)
        for e in LoginEvent.objects.filter(user=user).order_by("pk")[since:]
    ]


# -- 1. a step-up at the thief's own "former binding" -----------------------------------------------------


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_thiefs_step_up_at_the_address_his_copy_was_moved_to_is_recorded(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """Tanaka (Chrome 131 at home, an authenticator app) is signed in; an hour later the thief replays her
    jar with her user agent from another address of her /24 ("moved": ``b`` is now his address, no event).
    A minute later his kit sends its own Chromium 133 from that very address: a newer release at the bound
    address is "her update", so ``b.rel`` becomes 133, still no event. Her next request from home (131) went
    back a release: held at a step-up (her ``rescored`` event at home; ``sc`` her home, ``b`` still his). The
    thief posts one relayed TOTP code from his address. ``refused_where_posted`` finds he is not where the
    re-score was scored but at the session's *former binding* (``b``, put there by his own non-material
    move, never verified): "an event already records this very context", so none is written, and ``e`` (her
    re-score) is popped. The step-up passes, the key rotates, she is out, the session lives at his address
    verified and vouched. Now: no event names his address at all, her held request is the last record
    (``rescored``, never passed), no event was marked ``step_up_passed``. Secure: the exemption holds only
    for a context an event records (where the session was signed in or stepped up, not where a "moved"
    rebind put it); his step-up is recorded as the re-score it is, and marked passed."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN)
    device = totp_factory(tanaka)
    assert copy.get(PORTFOLIO).status_code == 200
    assert _session_state(copy)["b"]["ip"] == IP_TOKYO_2
    clock(0, hours=1.02)
    kit = _copy_of(copy, ip=IP_TOKYO_2, ua=UA_CHROME_WIN_NEWER)
    assert kit.get(PORTFOLIO).status_code == 200
    assert _session_state(kit)["b"]["rel"] == "133"
    clock(0, hours=1.04)
    assert home.get(PORTFOLIO).status_code == 401  # her own browser is the one held
    held = _events(tanaka, events)
    assert [(ip, outcome) for ip, outcome, *_ in held] == [(IP_TOKYO, "rescored")], held
    clock(0, hours=1.05)
    answer = kit.post("/authguard/api/step-up/totp", {"code": totp_token(device)})
    assert answer.status_code == 200, answer.content
    assert kit.get(PORTFOLIO).status_code == 200
    assert home.get(PORTFOLIO).status_code != 200  # she is out
    after = _events(tanaka, events)
    outcome = (f"session e={_session_state(kit).get('e')}", after)
    assert any(ip == IP_TOKYO_2 for ip, *_ in after), outcome
    assert any(o == "step_up_passed" for _, o, *_ in after), outcome


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_wrong_code_at_the_address_his_copy_was_moved_to_is_recorded(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """Finding 1's session, the thief without a relayed code: he guesses from his address (the former
    binding). ``refused_where_posted`` pops ``e`` *before* the code is checked, so the failure marks no
    event ``step_up_failed`` (``note_step_up_failure`` needs ``e``) and nothing records a step-up tried from
    his address; posted from any other address, the failure is recorded there (a ``rescored`` event marked
    ``step_up_failed``). Secure: a failed step-up from a context no event records leaves one."""
    from .conftest import wrong_code

    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN)
    device = totp_factory(tanaka)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.02)
    kit = _copy_of(copy, ip=IP_TOKYO_2, ua=UA_CHROME_WIN_NEWER)
    assert kit.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.04)
    assert home.get(PORTFOLIO).status_code == 401
    clock(0, hours=1.05)
    answer = kit.post("/authguard/api/step-up/totp", {"code": wrong_code(device)})
    assert answer.status_code != 200, answer.content
    after = _events(tanaka, events)
    outcome = (answer.status_code, f"session e={_session_state(kit).get('e')}", after)
    assert any(o == "step_up_failed" for _, o, *_ in after), outcome


# -- 2. two browsers of different OS alternating in one session -------------------------------------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_browser_and_a_copy_in_another_os_alternating_in_one_session_are_held(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """Tanaka's jar (Chrome 131 on Windows) is replayed an hour after her sign-in in the thief's Chrome 131
    on a Mac at another address of her /24; she keeps using her session at home. Every switch between the
    two is another browser (``br``), material, re-scored by the engine (her cookie, her network: allowed),
    rebound, and writes no event. The session shows Windows, Mac, Windows, Mac... for hours, both served,
    neither held, no record: the copy lives (with the lowered limits) until her next sign-in. ``went_back``
    calls a session that goes back a release "two browsers" and holds it; a session that goes back to an OS
    it left minutes ago is two browsers just as surely (a browser's cookies never move to another OS).
    Secure: a session back at a browser (``br``) it showed before another one is held at a step-up at least
    (unless she vouched for both in this session: her tablet flipping its desktop site steps up once)."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    totp_factory(tanaka)
    seen = []
    for i in range(3):
        clock(0, hours=1 + 0.04 * i)
        seen.append(("copy", copy.get(PORTFOLIO).status_code))
        clock(0, hours=1.02 + 0.04 * i)
        seen.append(("her", home.get(PORTFOLIO).status_code))
    outcome = (seen, _events(tanaka, events))
    assert any(status != 200 for _, status in seen), outcome


# -- 3. (cost) her own update at home over her line's other address family ---------------------------------

IP_V6_TOKYO_HOME = "2001:db8:40:1::10"  # her OCN line's IPv6 side, placed in Tokyo as its IPv4 side
EXTRA = [
    GeoNetwork(
        "2001:db8:40::/48",
        country="JP",
        city="Tokyo",
        latitude=35.6895,
        longitude=139.6917,
        accuracy_km=10,
        time_zone="Asia/Tokyo",
        asn=4713,
        as_org="NTT Communications (OCN)",
    )
]


@pytest.fixture(scope="session")
def dual_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(tmp_path_factory.mktemp("dual_stack_geoip"), [*TEST_NETWORKS, *EXTRA])


@pytest.fixture
def dual_geoip(settings: Any, dual_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(dual_geoip_dir)
    return dual_geoip_dir


@pytest.mark.django_db
@pytest.mark.usefixtures("dual_geoip")
def test_her_chrome_updating_at_home_over_her_lines_ipv6_side_is_not_re_scored(
    clock: Any, tanaka: Any
) -> None:
    """COST. Tanaka's home line is dual-stack (OCN, Tokyo: 203.0.113.10 and 2001:db8:40:1::/64). Her session
    moves between the two families without a re-score (same network, same place: "moved"), and was last
    bound on the IPv4 side. Chrome relaunches as 133 overnight and its first request goes out over IPv6
    (Happy Eyeballs prefers it): "another address" for ``same_address`` (IPv4 against IPv6), so her own update
    is material, re-scored, and the session is re-scored (``r``) for the order guard. Nothing she can do
    avoids it, and a thief gets nothing she does not: her next request over IPv4 after his would do the
    same. Secure (cost): her update at her own line, whichever family it reaches the site over, is no
    re-score (e.g. ``same_address`` true also for an address of the other family the session was at,
    non-materially, minutes ago)."""
    home, _, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO, ua=UA_CHROME_WIN)
    v6 = _copy_of(home, ip=IP_V6_TOKYO_HOME, ua=UA_CHROME_WIN)
    assert v6.get(PORTFOLIO).status_code == 200
    assert _session_state(v6)["b"]["ip"] == IP_V6_TOKYO_HOME and not _session_state(v6).get("r")
    clock(0, hours=1.2)
    assert home.get(PORTFOLIO).status_code == 200  # back on IPv4: still no re-score
    assert not _session_state(home).get("r")
    clock(0, hours=1.4)
    updated = _copy_of(home, ip=IP_V6_TOKYO_HOME, ua=UA_CHROME_WIN_NEWER)
    served = updated.get(PORTFOLIO).status_code
    state = _session_state(updated)
    outcome = (served, f"r={state.get('r')} rel={state.get('b', {}).get('rel')}", _events(tanaka, events))
    assert served == 200 and not state.get("r"), outcome


# -- held ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize("release", ["133.0.0.0", "99999999999999999999.0.0.0"], ids=["next", "huge"])
def test_held_the_copy_raising_the_release_at_its_own_address_holds_her_and_her_step_up_shuts_it_out(
    clock: Any, tanaka: Any, totp_factory: Any, release: str
) -> None:
    """HELD: the copy of finding 1 ("moved" to his address) raises the release there (the next Chromium, or
    an absurd one so that hers can never catch up). Her next request at home goes back a release and is
    held; she confirms with her own code at home; the key rotates and the copy is out. The copy's own
    release is never "her update" elsewhere: from another address it is re-scored."""
    home, copy, _ = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN)
    device = totp_factory(tanaka)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.02)
    kit = _copy_of(copy, ip=IP_TOKYO_2, ua=UA_CHROME_WIN.replace("131.0.0.0", release))
    assert kit.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.04)
    assert home.get(PORTFOLIO).status_code == 401
    assert "device_user_agent_backwards" in LoginEvent.objects.filter(user=tanaka).latest("pk").reasons
    assert home.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    assert home.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.06)
    assert kit.get(PORTFOLIO).status_code == 401


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize(
    "version",
    [
        pytest.param("0131.0.0.0", id="leading-zero"),
        pytest.param("\u0661\u0663\u0661.0.0.0", id="arabic-indic-digits"),
        pytest.param("131.0.6778.86", id="full-build"),
        pytest.param("131.0.0.0 Chrome/120.0.0.0", id="two-versions"),
    ],
)
def test_held_her_release_spelled_otherwise_at_another_address_is_her_release_there(
    clock: Any, tanaka: Any, version: str
) -> None:
    """HELD: odd spellings of her own release (leading zero, Arabic-Indic digits, a full build number) parse
    to her release (131): the copy gains nothing over sending her very user agent (the known limit of a
    whole jar on her ISP nearby), and the binding keeps a release that parses."""
    _, copy, _ = _her_session_copied(
        clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN.replace("131.0.0.0", version)
    )
    assert copy.get(PORTFOLIO).status_code == 200
    assert _session_state(copy)["b"]["rel"] == "131"


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize(
    "ua",
    [
        pytest.param(UA_CHROME_WIN.replace("Chrome/131.0.0.0", "Chrome/"), id="no-version"),
        pytest.param(UA_CHROME_WIN.replace("Chrome/131.0.0.0", "Chrome/x131"), id="letters"),
    ],
)
def test_held_a_copy_whose_release_does_not_parse_as_hers_gets_the_lowered_limits(
    clock: Any, tanaka: Any, ua: str
) -> None:
    """HELD: a kit's user agent that parses to another family, no release or an odd one never puts an
    unparsed release into the binding without a re-score (one that does not parse is "older"): the copy is
    re-scored or held, and its pump gets the lowered limits."""
    _, copy, _ = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=ua)
    total = value_total(tanaka)
    served, state, bought, sold_share, statuses, paid = _pump(copy, tanaka)
    outcome = (served, state.get("r"), state.get("b", {}).get("rel"), bought, sold_share, statuses)
    assert paid == Decimal(0) or paid / total < Decimal("0.05"), outcome
    assert sold_share <= LOWERED_SELL_SHARE, outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_a_legacy_binding_without_a_release_takes_the_copys_and_holds_it_after_her_next_request(
    clock: Any, tanaka: Any
) -> None:
    """HELD: a session bound before ``rel`` (the key dropped from its binding, as written by round
    twenty-seven's code). The thief's older Chromium 120 copy from her /24 compares with nothing ("same"):
    moved, and the binding takes 120. Her next request (131, home) is newer from another address:
    re-scored and rebound to 131; the copy's next request went back a release and is held."""
    from importlib import import_module

    from django.conf import settings as django_settings

    home, copy, _ = _her_session_copied(
        clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN.replace("131.", "120.")
    )
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    session = store(session_key=home.client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    data = session.load()
    data["_authguard"]["b"].pop("rel")
    session.update(data)
    session.save()
    assert copy.get(PORTFOLIO).status_code == 200
    assert _session_state(copy)["b"]["rel"] == "120"
    clock(0, hours=1.02)
    assert home.get(PORTFOLIO).status_code == 200
    assert _session_state(home)["b"]["rel"] == "131"
    clock(0, hours=1.04)
    assert copy.get(PORTFOLIO).status_code == 401


def value_total(user: Any) -> Decimal:
    return battery.value(user).total_value


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_control_a_wrong_code_from_another_address_of_her_isp_is_recorded_there(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD (the control for the wrong-code finding): the same session, the same guess, posted from a third
    address of her /24 (neither the re-score's context nor the former binding): recorded there as a
    re-score marked ``step_up_failed``."""
    from .conftest import wrong_code

    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN)
    device = totp_factory(tanaka)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.02)
    kit = _copy_of(copy, ip=IP_TOKYO_2, ua=UA_CHROME_WIN_NEWER)
    assert kit.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.04)
    assert home.get(PORTFOLIO).status_code == 401
    clock(0, hours=1.05)
    elsewhere = _copy_of(kit, ip="203.0.113.30", ua=UA_CHROME_WIN_NEWER)
    answer = elsewhere.post("/authguard/api/step-up/totp", {"code": wrong_code(device)})
    assert answer.status_code != 200, answer.content
    after = _events(tanaka, events)
    assert ("203.0.113.30", "step_up_failed") in [(ip, o) for ip, o, *_ in after], after
