"""Every built-in signal and the combined score, with real GeoIP databases and real user agents."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from authguard.choices import Action
from authguard.risk.engine import SHADOW_DECISION, assess, score_login
from authguard.risk.findings import STEP_UP_FLOOR, Finding, RiskSignal, build_signals
from authguard.risk.history import MemoryHistory
from authguard.risk.policy import Thresholds
from authguard.risk.signals import (
    AccountContext,
    AnonymousNetwork,
    AutomationClient,
    DeviceCookie,
    ImpossibleTravel,
    NetworkHop,
    NetworkLists,
    UnusualHour,
    Velocity,
)

from .conftest import (
    IP_AWS,
    IP_DOCOMO,
    IP_JP_PROXY,
    IP_OSAKA,
    IP_SG_VPS,
    IP_TOKYO,
    IP_TOKYO_2,
    IP_TOR,
    IP_US_HOME,
    IP_V6_FUKUOKA,
    IP_V6_JAPAN_ONLY,
    IP_V6_KUMAMOTO,
    IP_V6_SAPPORO,
    IP_VPN,
    UA_CURL,
    UA_IPHONE,
)
from .factories import T0, ctx, daily, history_of

pytestmark = pytest.mark.usefixtures("geoip")


def codes(signal: RiskSignal, store: MemoryHistory, login) -> dict[str, int]:
    return {f.code: f.score for f in signal.evaluate(store.evidence(login))}


def test_device_cookie_known_new_and_remembered():
    store = history_of(*daily(5))
    later = T0 + timedelta(days=6)
    assert codes(DeviceCookie(), store, ctx(at=later)) == {"known_device": -10}
    # A new browser at the account's own address, or another of its /24: a new browser all the same (the
    # known-address discount is off by default: battery case 56's thief is on the victim's /24).
    assert codes(DeviceCookie(), store, ctx(at=later, device="other")) == {"new_device": 25}
    assert codes(DeviceCookie(), store, ctx(at=later, device=None, ip=IP_TOKYO_2)) == {"new_device": 25}
    # A portal may turn the discount on (a cleared cookie at home counts less).
    discount = DeviceCookie(new_device_known_address=-15)
    assert codes(discount, store, ctx(at=later, device=None, ip=IP_TOKYO_2)) == {
        "new_device": 25,
        "new_device_known_address": -15,
    }
    # A new browser on a network never used.
    assert codes(DeviceCookie(), store, ctx(at=later, device=None, ip=IP_US_HOME, ua=UA_IPHONE)) == {
        "new_device": 25,
        "new_device_new_network": 15,
    }
    # The account's exact user agent, without its cookie, from a network never used: a copied user agent.
    assert codes(DeviceCookie(), store, ctx(at=later, device=None, ip=IP_US_HOME)) == {
        "new_device": 25,
        "new_device_new_network": 15,
        "copied_user_agent": 30,
    }
    store.trust_device(ctx(at=later, device="phone"), later + timedelta(days=30))
    assert codes(DeviceCookie(), store, ctx(at=later, device="phone")) == {"remembered_device": -25}
    assert codes(DeviceCookie(), store, ctx(at=later + timedelta(days=31), device="phone")) == {
        "new_device": 25
    }


def test_copied_user_agent_on_the_victims_own_isp():
    # History on SoftBank over IPv6; the attacker comes through a proxy on SoftBank's IPv4 space with the
    # victim's exact user agent but no cookie: same ISP, so not a new network, yet a copied user agent.
    store = history_of(*daily(5, ip=IP_V6_FUKUOKA))
    attack = ctx(at=T0 + timedelta(days=6), device=None, ip=IP_JP_PROXY)
    assert codes(DeviceCookie(), store, attack) == {
        "new_device": 25,
        "new_device_new_fixed_address": 20,
        "copied_user_agent": 30,
    }
    # The same without cookie but on the account's own /48 is a cleared cookie, not a copy.
    home = ctx(at=T0 + timedelta(days=6), device=None, ip="2001:db8::99")
    assert codes(DeviceCookie(), store, home) == {"new_device": 25}


def test_a_new_browser_is_judged_with_the_novelty_of_its_address():
    # Issue 13 (low and slow): a new browser's risk depends on whether its address is new, and whether the
    # address is a precisely placed fixed line (a targeted proxy on the victim's ISP) or a coarse one.
    store = history_of(*daily(5, ip=IP_V6_FUKUOKA))
    later = T0 + timedelta(days=6)
    proxy = store.evidence(ctx(at=later, device=None, ip=IP_JP_PROXY, ua=UA_IPHONE))
    assert proxy.ctx.geo.accuracy_km is not None and proxy.ctx.geo.accuracy_km < 100
    findings = {f.code: f for f in DeviceCookie().evaluate(proxy)}
    assert {code: f.score for code, f in findings.items()} == {
        "new_device": 25,
        "new_device_new_fixed_address": 20,
    }
    assert findings["new_device_new_fixed_address"].evidence == {"accuracy_km": proxy.ctx.geo.accuracy_km}
    # The same address placed no better than the option's radius (a carrier's CGNAT pool): no extra points.
    coarse = DeviceCookie(fixed_line_max_km=proxy.ctx.geo.accuracy_km)
    assert codes(coarse, store, proxy.ctx) == {"new_device": 25}
    # A network the account never used is new_device_new_network's case, not this one.
    assert codes(DeviceCookie(), store, ctx(at=later, device=None, ip=IP_US_HOME, ua=UA_IPHONE)) == {
        "new_device": 25,
        "new_device_new_network": 15,
    }
    # At the account's own /48: no extra points (a cleared cookie at home), so the proxy on the victim's
    # ISP scores at least the fixed-line points above it with the rest of the default signals.
    home = ctx(at=later, device=None, ip="2001:db8::99", ua=UA_IPHONE)
    assert codes(DeviceCookie(), store, home) == {"new_device": 25}
    shipped = {"signals": _default_signals(), "thresholds": Thresholds(step_up=40, deny=100)}
    assessment, _ = score_login(home, store, **shipped)
    attack, _ = score_login(proxy.ctx, store, **shipped)
    assert assessment.score + 20 <= attack.score
    assert attack.action != Action.ALLOW


def test_a_vpn_address_the_account_used_is_no_discount_for_a_new_browser():
    # A commercial VPN exit is shared with strangers: a phisher on the same exit is not the household.
    store = history_of(*daily(5, ip=IP_VPN))
    later = ctx(at=T0 + timedelta(days=6), device=None, ip=IP_VPN, ua=UA_IPHONE)
    assert later.geo.anonymous_vpn
    assert codes(DeviceCookie(new_device_known_address=-15), store, later) == {"new_device": 25}


def test_a_cookie_on_an_account_whose_sign_ins_never_carried_one_is_a_new_browser():
    # Red team, round seventy-four: an app without a cookie jar signs in every day; no device is ever learned.
    store = history_of(*daily(10, device=None, ua=UA_IPHONE))
    later = T0 + timedelta(days=11)
    # Her app again, without a cookie: the account's habit, no finding.
    assert codes(DeviceCookie(), store, ctx(at=later, device=None, ua=UA_IPHONE)) == {}
    # A browser presenting a (fresh) cookie: a new browser, with the novelty of its address, as on any other.
    home = DeviceCookie().evaluate(store.evidence(ctx(at=later, device="thief", ip=IP_TOKYO_2)))
    assert [(f.code, f.score, f.evidence["first_browser"]) for f in home] == [("new_device", 25, True)]
    assert codes(DeviceCookie(), store, ctx(at=later, device="thief", ip=IP_US_HOME)) == {
        "new_device": 25,
        "new_device_new_network": 15,
    }
    # Her app's own user agent with a cookie, from a /24 the account never used: not a "copied user agent",
    # since the account's sign-ins never carried the cookie it would be missing.
    assert codes(DeviceCookie(), store, ctx(at=later, device="thief", ua=UA_IPHONE, ip=IP_OSAKA)) == {
        "new_device": 25,
        "new_device_new_network": 15,
    }
    # Once that browser is learned it is known; the app without a cookie is then a new device like any.
    history_of(ctx(at=later, device="hers", ip=IP_TOKYO), store=store)
    then = T0 + timedelta(days=12)
    assert codes(DeviceCookie(), store, ctx(at=then, device="hers")) == {"known_device": -10}
    assert codes(DeviceCookie(), store, ctx(at=then, device=None, ua=UA_IPHONE)) == {"new_device": 25}
    # An account with no history at all says nothing (AccountContext reports it).
    assert codes(DeviceCookie(), MemoryHistory(), ctx(at=later, device="thief")) == {}


def test_a_cookieless_client_class_an_app_only_account_never_showed_is_a_new_browser():
    # Red team, round seventy-seven: on an account whose sign-ins never carried a cookie, "a missing cookie
    # says nothing" only for a client class (family, OS, device type) it signed in with.
    store = history_of(*daily(10, device=None, ua=UA_IPHONE))
    later = T0 + timedelta(days=11)
    # Her app updated (Safari 18.3 on iOS 19): the same class, still her habit.
    updated = UA_IPHONE.replace("OS 18_1", "OS 19_0").replace("Version/18.1", "Version/18.3")
    assert codes(DeviceCookie(), store, ctx(at=later, device=None, ua=updated)) == {}
    # A desktop Chrome that dropped its cookie: a new browser, as if it had presented a fresh one.
    home = DeviceCookie().evaluate(store.evidence(ctx(at=later, device=None, ip=IP_TOKYO_2)))
    assert [(f.code, f.score, f.evidence["first_browser"], f.evidence["cookie_presented"]) for f in home] == [
        ("new_device", 25, True, False)
    ]
    assert codes(DeviceCookie(), store, ctx(at=later, device=None, ip=IP_US_HOME)) == {
        "new_device": 25,
        "new_device_new_network": 15,
    }
    # Her app's class without a cookie on a network and in a city the account never used: what a known phone
    # scores there (a quarter of the points), the reasons the order guard reads; nothing at another address
    # of her own network and city.
    away = ctx(at=later, device=None, ua=UA_IPHONE, ip=IP_OSAKA)
    assert codes(DeviceCookie(), store, away) == {"device_new_network": 9, "device_new_city": 2}
    assert codes(DeviceCookie(), store, ctx(at=later, device=None, ua=UA_IPHONE, ip=IP_TOKYO_2)) == {}
    # A client naming no device (curl's, Flutter's "Dart/3.3 (dart:io)": device type "other") is taken for a
    # phone's app; a desktop class counts in full there.
    other = history_of(*daily(10, device=None, ua=UA_CURL))
    assert codes(DeviceCookie(), other, ctx(at=later, device=None, ua=UA_CURL, ip=IP_OSAKA)) == {
        "device_new_network": 9,
        "device_new_city": 2,
    }
    desk = history_of(*daily(10, device=None))
    assert codes(DeviceCookie(), desk, ctx(at=later, device=None, ip=IP_OSAKA)) == {
        "device_new_network": 35,
        "device_new_city": 10,
    }
    # Once her browser's class is learned (an allowed sign-in), it is known without a cookie too.
    history_of(ctx(at=later, device=None, ip=IP_TOKYO), store=store)
    then = T0 + timedelta(days=12)
    assert codes(DeviceCookie(), store, ctx(at=then, device=None, ip=IP_TOKYO_2)) == {}
    # An account too new to have habits: no place findings for its app (as for a known device).
    young = history_of(*daily(1, device=None, ua=UA_IPHONE))
    assert (
        codes(DeviceCookie(), young, ctx(at=T0 + timedelta(days=2), device=None, ua=UA_IPHONE, ip=IP_OSAKA))
        == {}
    )


def test_a_new_browser_can_count_less_on_an_account_with_one_to_three_sign_ins():
    # Issue 13 (friction): an account with up to three sign-ins has not shown all its customer's browsers
    # (phone, computer, tablet) yet, so a new one is the expected case; the address still counts in full.
    # Off by default (young_account_logins 0); a portal may turn it on.
    later = T0 + timedelta(days=4)
    young = history_of(*daily(3))
    phone = ctx(at=later, device="tablet", ip=IP_US_HOME, ua=UA_IPHONE)
    full = {"new_device": 25, "new_device_new_network": 15}
    assert codes(DeviceCookie(), young, phone) == full
    signal = DeviceCookie(young_account_logins=3)
    found = {f.code: f for f in signal.evaluate(young.evidence(phone))}
    assert {code: f.score for code, f in found.items()} == {"new_device": 15, "new_device_new_network": 15}
    assert found["new_device"].evidence["young_account"] is True
    assert codes(signal, young, ctx(at=later, device=None, ip=IP_US_HOME)) == {
        "new_device": 15,
        "new_device_new_network": 15,
        "copied_user_agent": 30,
    }
    # From the fourth sign-in on, the full points.
    assert codes(signal, history_of(*daily(4)), phone) == full
    # SECURITY: at the account's own address or /24, the full points (battery case 56: a thief proxying
    # through the customer's line).
    assert codes(signal, young, ctx(at=later, device="tablet")) == {"new_device": 25}
    assert codes(signal, young, ctx(at=later, device="tablet", ip=IP_TOKYO_2)) == {"new_device": 25}
    # SECURITY: through a VPN, proxy or hosting network (shared with strangers): no discount.
    assert codes(signal, young, ctx(at=later, device="tablet", ip=IP_VPN, ua=UA_IPHONE)) == full


def _shedding_iphone(cookies: int, *, start=T0):
    """Her iPhone's Safari loses its cookie every three weeks (private browsing, a cleaner app): each new
    cookie signs in a few times on her carrier and is learned; her PC keeps its cookie all along."""
    logins = [
        ctx(at=start + timedelta(days=21 * i + d), device=f"shed-{i}", ua=UA_IPHONE, ip=IP_V6_FUKUOKA)
        for i in range(cookies)
        for d in range(3)
    ]
    return history_of(*logins, *daily(cookies * 21, start=start, ip=IP_V6_FUKUOKA))


def test_a_browser_that_keeps_losing_its_cookie_can_make_a_new_one_its_habit():
    # Issue 13 (friction): off by default (a targeted proxy on a shedding victim's network with her user agent
    # looks the same, docs/benchmarks-detection.md); a portal may turn it on.
    store = _shedding_iphone(5)
    later = T0 + timedelta(days=106)
    cleared = ctx(at=later, device=None, ua=UA_IPHONE, ip=IP_V6_KUMAMOTO)
    full = {"new_device": 25, "new_device_new_fixed_address": 20, "copied_user_agent": 30}
    assert codes(DeviceCookie(), store, cleared) == full
    signal = DeviceCookie(cookie_shedding_browsers=5)
    found = {f.code: f for f in signal.evaluate(store.evidence(cleared))}
    assert {code: f.score for code, f in found.items()} == {
        "new_device": 25,
        "new_device_new_fixed_address": 20,
        "copied_user_agent_shedding": 5,
    }
    assert found["copied_user_agent_shedding"].evidence == {"exact": True, "cookies": 5}
    # Four cookies are not yet a habit.
    assert codes(signal, _shedding_iphone(4), cleared) == full
    # Her PC never lost its cookie: its user agent without the cookie is still a copy.
    assert codes(signal, store, ctx(at=later, device=None, ip=IP_V6_KUMAMOTO)) == full
    # SECURITY: a network the account never used, or a shared one (a residential proxy on her own ISP, a
    # VPN), gets no habit.
    proxy = ctx(at=later, device=None, ua=UA_IPHONE, ip=IP_JP_PROXY)
    assert proxy.geo.residential_proxy and codes(signal, store, proxy)["copied_user_agent"] == 30
    assert codes(signal, store, ctx(at=later, device=None, ua=UA_IPHONE, ip=IP_US_HOME)) == {
        "new_device": 25,
        "new_device_new_network": 15,
        "copied_user_agent": 30,
    }
    vpn = ctx(at=later, device=None, ua=UA_IPHONE, ip=IP_VPN)
    assert vpn.geo.anonymous_vpn and "copied_user_agent_shedding" not in codes(signal, store, vpn)
    # Cookies learned more than cookie_shedding_days ago no longer count.
    assert codes(DeviceCookie(cookie_shedding_browsers=5, cookie_shedding_days=30), store, cleared) == full


def test_a_habit_let_through_is_still_a_copy_for_factors_and_orders():
    # SECURITY: what the habit lets through may be the copy it resembles: factors it enrolls cool off and the
    # order guard lowers the account's limits, as for copied_user_agent. Both read the login's reasons, which
    # name only findings with points: the policy keeps this one at 1 point or more.
    from authguard.orders.exposure import CONTEXT_CHANGE_REASONS
    from authguard.risk.policy_validation import risk_signals_problem
    from authguard.sessions.state import RELAY_FINDINGS

    store = _shedding_iphone(5)
    cleared = ctx(at=T0 + timedelta(days=106), device=None, ua=UA_IPHONE, ip=IP_V6_KUMAMOTO)
    signals = [
        s if not isinstance(s, DeviceCookie) else DeviceCookie(cookie_shedding_browsers=5)
        for s in _default_signals()
    ]
    assessment, _ = score_login(cleared, store, signals=signals, thresholds=Thresholds(step_up=40, deny=100))
    assert "copied_user_agent_shedding" in assessment.reasons
    assert "copied_user_agent_shedding" in RELAY_FINDINGS
    assert any(code in "copied_user_agent_shedding" for code in CONTEXT_CHANGE_REASONS)
    device_cookie = {
        "NAME": "authguard.risk_signals.DeviceCookie",
        "OPTIONS": {"copied_user_agent_shedding": 0},
    }
    assert "copied_user_agent_shedding" in (risk_signals_problem([device_cookie]) or "")


def test_device_cookie_says_nothing_without_history():
    assert codes(DeviceCookie(), MemoryHistory(), ctx(device=None)) == {}


def test_impossible_travel_tokyo_to_los_angeles_in_an_hour():
    store = history_of(ctx(ip=IP_TOKYO))
    found = list(ImpossibleTravel().evaluate(store.evidence(ctx(ip=IP_US_HOME, at=T0 + timedelta(hours=1)))))
    assert [f.code for f in found] == ["impossible_travel"]
    assert found[0].evidence["kmh"] > 8000 and found[0].evidence["to"] == "US"


def test_travel_by_plane_speed_is_fine():
    store = history_of(ctx(ip=IP_TOKYO))
    assert codes(ImpossibleTravel(), store, ctx(ip=IP_US_HOME, at=T0 + timedelta(hours=14))) == {}


def test_accuracy_radii_are_subtracted_and_small_jumps_ignored():
    # Tokyo (10 km) to a Docomo exit "in Tokyo" with a 200 km radius: no travel at all.
    store = history_of(ctx(ip=IP_OSAKA))
    # Osaka -> Docomo Tokyo is ~400 km; minus 20 + 200 km radii = ~180 km in one minute: over the limit,
    assert codes(ImpossibleTravel(), store, ctx(ip=IP_DOCOMO, at=T0 + timedelta(minutes=1)))
    # but with max distance under min_km after the radii it is ignored.
    assert codes(ImpossibleTravel(min_km=200), store, ctx(ip=IP_DOCOMO, at=T0 + timedelta(minutes=1))) == {}


def test_travel_is_not_anchored_on_an_anonymising_network():
    store = history_of(ctx(ip=IP_VPN))
    assert codes(ImpossibleTravel(), store, ctx(ip=IP_TOKYO, at=T0 + timedelta(minutes=5))) == {}


def test_network_hop_flags_a_relay_within_minutes():
    store = history_of(ctx(ip=IP_TOKYO))
    relay = ctx(ip=IP_OSAKA, device=None, at=T0 + timedelta(seconds=40))
    assert codes(NetworkHop(), store, relay) == {"network_hop": 25}
    assert codes(NetworkHop(), store, ctx(ip=IP_OSAKA, at=T0 + timedelta(seconds=40))) == {}  # known device
    assert codes(NetworkHop(), store, ctx(ip=IP_OSAKA, device=None, at=T0 + timedelta(hours=2))) == {}


@pytest.mark.parametrize(
    ("ip", "code"),
    [
        (IP_TOR, "anonymous_tor"),
        (IP_SG_VPS, "anonymous_hosting"),
        (IP_VPN, "anonymous_hosting"),
        (IP_JP_PROXY, "anonymous_residential_proxy"),
        (IP_AWS, "anonymous_hosting"),
    ],
)
def test_anonymous_networks(ip, code):
    assert list(codes(AnonymousNetwork(), MemoryHistory(), ctx(ip=ip))) == [code]


def test_rare_country_without_history_uses_the_population():
    from authguard.risk.signals import StatisticalModel

    store = MemoryHistory()
    for i in range(200):
        history_of(ctx(user=f"jp{i}", ip=IP_TOKYO, device=f"d{i}"), store=store)
    store.fold()  # the 200 logins share one fold period: scoring reads them once folded
    model = StatisticalModel(rare_country_min_population=100)
    assert codes(model, store, ctx(user="newbie", ip=IP_US_HOME)) == {"rare_country": 25}
    assert codes(model, store, ctx(user="newbie", ip=IP_OSAKA)) == {}
    # A young site (fewer logins than the minimum) calls no country rare.
    assert codes(StatisticalModel(), store, ctx(user="newbie", ip=IP_US_HOME)) == {}


def test_an_address_no_database_knows_is_some_risk():
    assert codes(AnonymousNetwork(), MemoryHistory(), ctx(ip="127.0.0.1")) == {"unknown_network": 10}
    assert codes(AnonymousNetwork(), MemoryHistory(), ctx(ip=IP_TOKYO)) == {}


def test_hosting_asn_list_works_without_an_anonymous_ip_database(settings, tmp_path, geoip_dir):
    import shutil

    for name in ("GeoLite2-City.mmdb", "GeoLite2-ASN.mmdb"):
        shutil.copy(geoip_dir / name, tmp_path / name)
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path)  # GeoLite2 only: no anonymity data
    assert codes(AnonymousNetwork(), MemoryHistory(), ctx(ip=IP_SG_VPS)) == {"anonymous_hosting": 30}
    assert codes(AnonymousNetwork(), MemoryHistory(), ctx(ip=IP_TOR)) == {}


def test_the_strongest_flag_counts_and_a_habitual_vpn_counts_less():
    # The test VPN exits from M247 (a hosting ASN): hosting (30) outweighs VPN (25).
    first = list(AnonymousNetwork().evaluate(MemoryHistory().evidence(ctx(ip=IP_VPN))))[0]
    assert first.evidence["flags"] == ["hosting", "vpn"]
    store = history_of(*daily(10, ip=IP_VPN))
    assert codes(AnonymousNetwork(), store, ctx(ip=IP_VPN, at=T0 + timedelta(days=11))) == {
        "anonymous_hosting": 12
    }


def test_network_lists(settings):
    settings.AUTHGUARD_NETWORK_DENYLIST = ["AS14061"]
    settings.AUTHGUARD_NETWORK_ALLOWLIST = ["203.0.113.0/26", "US"]
    assert codes(NetworkLists(), MemoryHistory(), ctx(ip=IP_SG_VPS)) == {"denylisted_network": 100}
    assert codes(NetworkLists(), MemoryHistory(), ctx(ip=IP_TOKYO)) == {"allowlisted_network": -30}
    assert codes(NetworkLists(), MemoryHistory(), ctx(ip=IP_US_HOME)) == {"allowlisted_network": -30}
    assert codes(NetworkLists(), MemoryHistory(), ctx(ip=IP_OSAKA)) == {}


def test_velocity_user_ip_and_stuffing():
    store = MemoryHistory()
    for i in range(6):
        store.record_attempt(ctx(user=f"victim{i}", ip=IP_SG_VPS, at=T0 + timedelta(minutes=i)), failed=True)
    for i in range(5):
        store.record_attempt(ctx(user="alice", ip=IP_TOKYO_2, at=T0 + timedelta(minutes=i)), failed=True)
    found = codes(Velocity(), store, ctx(user="alice", ip=IP_SG_VPS, at=T0 + timedelta(minutes=10)))
    assert found == {"velocity_user_failures": 15, "velocity_ip_users": 30}
    # An hour later the window has moved on.
    assert codes(Velocity(), store, ctx(user="alice", ip=IP_SG_VPS, at=T0 + timedelta(minutes=75))) == {}


def test_a_surge_of_failures_across_the_site_is_relative_to_the_last_day():
    store = MemoryHistory()
    for i in range(12):
        store.record_attempt(ctx(user=f"u{i}", ip=f"198.51.100.{i + 1}", at=T0), failed=True)
    assert codes(Velocity(site_failures=10), store, ctx(at=T0 + timedelta(minutes=1))) == {
        "velocity_site_failures": 15
    }
    # A site that always sees about 12 failures an hour is not surging at 12.
    busy = MemoryHistory()
    for hour in range(1, 23):
        for i in range(12):
            busy.record_attempt(ctx(user=f"u{i}", ip=IP_TOKYO, at=T0 - timedelta(hours=hour)), failed=True)
    for i in range(12):
        busy.record_attempt(ctx(user=f"u{i}", ip=f"198.51.100.{i + 1}", at=T0), failed=True)
    assert "velocity_site_failures" not in codes(
        Velocity(site_failures=10), busy, ctx(at=T0 + timedelta(minutes=1))
    )


def test_unusual_hour():
    store = history_of(*daily(30))  # always 09:00 JST
    assert codes(UnusualHour(), store, ctx(at=T0.replace(hour=3) + timedelta(days=31))) == {
        "unusual_hour": 10
    }
    assert codes(UnusualHour(), store, ctx(at=T0.replace(hour=10) + timedelta(days=31))) == {}


def test_automation_clients():
    assert codes(AutomationClient(), MemoryHistory(), ctx(ua=UA_CURL)) == {"automation_client": 35}
    assert codes(AutomationClient(), MemoryHistory(), ctx(ua="")) == {"automation_client": 35}
    assert codes(AutomationClient(), MemoryHistory(), ctx(ua=UA_IPHONE)) == {}


def test_account_context_no_history_dormant_and_password_change():
    assert codes(AccountContext(), MemoryHistory(), ctx()) == {"no_history": 20}
    store = history_of(ctx(account={"pw": "aaa"}))
    assert codes(AccountContext(), store, ctx(at=T0 + timedelta(days=130), account={"pw": "aaa"})) == {
        "dormant_account": 20,
        "no_history": 20,
    }  # 130 days: outside half the horizon, inside the whole
    # Idle for less than dormant_days but longer than the profile remembers: dormant all the same.
    assert codes(AccountContext(), store, ctx(at=T0 + timedelta(days=100), account={"pw": "aaa"})) == {
        "dormant_account": 20,
        "no_history": 20,
    }
    assert codes(AccountContext(), store, ctx(at=T0 + timedelta(days=2), account={"pw": "bbb"})) == {
        "password_changed": 15
    }


def test_combined_score_is_the_clamped_sum_and_explains_itself():
    store = history_of(*daily(20))
    signals = build_signals(
        [
            {"NAME": f"authguard.risk.signals.{n}"}
            for n in ("DeviceCookie", "AnonymousNetwork", "AutomationClient")
        ]
    )
    thresholds = Thresholds(step_up=40, deny=90)
    attack = ctx(ip=IP_TOR, ua=UA_CURL, device=None, at=T0 + timedelta(days=21))
    assessment, _ = score_login(attack, store, signals=signals, thresholds=thresholds)
    assert assessment.score == min(100, 25 + 15 + 50 + 35)
    assert assessment.action == Action.DENY
    assert assessment.reasons == [
        "anonymous_tor",
        "automation_client",
        "new_device",
        "new_device_new_network",
    ]
    assert "anonymous_tor (+50)" in assessment.explain()
    usual, _ = score_login(ctx(at=T0 + timedelta(days=21)), store, signals=signals, thresholds=thresholds)
    assert (usual.score, usual.action) == (0, Action.ALLOW)  # -10 clamps at 0


class Broken(RiskSignal):
    def evaluate(self, evidence):
        raise RuntimeError("boom")


def test_a_crashing_signal_fails_closed():
    assessment = assess(MemoryHistory().evidence(ctx()), signals=[Broken()], thresholds=Thresholds(40, 90))
    assert assessment.action == Action.STEP_UP
    assert assessment.reasons == ["signal_error"]


class Fixed(RiskSignal):
    """Emits the findings it was given (code, points, floored)."""

    defaults = {"found": []}

    def evaluate(self, evidence):
        return [
            Finding(code, points, code, {STEP_UP_FLOOR: True} if floor else {})
            for code, points, floor in self.options["found"]
        ]


def test_a_report_only_floor_is_reported_as_the_live_rule_would_apply_it():
    thresholds = Thresholds(step_up=40, deny=90)
    login = ctx()
    live = [Fixed(found=[("known_device", -10, False)])]
    shadow = [Fixed(found=[("device_user_agent_backwards", 20, True)])]
    assessment, _ = score_login(
        login, MemoryHistory(), signals=live, thresholds=thresholds, shadow_signals=shadow
    )
    assert (assessment.score, assessment.action) == (0, Action.ALLOW)  # report-only: decides nothing
    found = {f.code: f for f in assessment.findings}
    # The recorded shadow finding says it would ask for a step-up, and never asks for one itself.
    assert found["device_user_agent_backwards"].evidence == {
        "shadow": True,
        "would_score": 20,
        "would_step_up": True,
    }
    assert found[SHADOW_DECISION].evidence == {"shadow": True, "would_score": 40, "would_action": "step_up"}
    # A live floor stays a floor when a shadow rule would take points off, and the sum is the live rule's
    # (clamped once: -10 + 30 - 25, not 0 + 30 - 25).
    live = [Fixed(found=[("first_login_elsewhere", 5, True), ("known_device", -10, False)])]
    shadow = [Fixed(found=[("trial", 30, False), ("trial_discount", -25, False)])]
    assessment, _ = score_login(
        login, MemoryHistory(), signals=live, thresholds=thresholds, shadow_signals=shadow
    )
    assert (assessment.score, assessment.action) == (40, Action.STEP_UP)
    summary = {f.code: f for f in assessment.findings}[SHADOW_DECISION].evidence
    assert summary == {"shadow": True, "would_score": 40, "would_action": "step_up"}
    no_floor = [Fixed(found=[("known_device", -10, False)])]
    assessment, _ = score_login(
        login, MemoryHistory(), signals=no_floor, thresholds=thresholds, shadow_signals=shadow
    )
    assert {f.code: f for f in assessment.findings}[SHADOW_DECISION].evidence["would_score"] == 0


class Unreachable(MemoryHistory):
    def evidence(self, ctx):
        raise ConnectionError("database down")


def test_unreadable_history_fails_closed():
    assessment, evidence = score_login(ctx(), Unreachable(), thresholds=Thresholds(40, 90))
    assert evidence is None and assessment.action == Action.STEP_UP


def test_findings_serialise_with_english_reasons():
    data = Finding("x", 5, "reason", {"k": 1}).as_dict()
    assert data == {"code": "x", "score": 5, "reason": "reason", "evidence": {"k": 1}}


def test_profile_forgets_logins_older_than_the_horizon():
    store = history_of(*daily(3))
    assert store.evidence(ctx(at=T0 + timedelta(days=60))).profile.logins == 3
    assert store.evidence(ctx(at=T0 + timedelta(days=200))).profile.logins == 0


def test_profile_size_is_bounded():
    store = history_of(
        *[ctx(ip=f"203.0.113.{i % 60}", device=f"d{i}", at=T0 + timedelta(hours=i)) for i in range(300)]
    )
    data = store.profiles["alice"]
    assert all(len(values) <= 48 for values in data["f"].values())
    assert store.evidence(ctx(at=T0 + timedelta(hours=301))).profile.logins == 300


def test_profile_totals_stay_equal_to_the_sum_of_counts():
    from authguard.risk.profile import Profile

    logins = [
        ctx(ip=f"203.0.113.{i % 60}", device=f"d{i % 70}", at=T0 + timedelta(days=i)) for i in range(150)
    ]
    store = history_of(*logins)
    data = store.profiles["alice"]
    for when in (T0 + timedelta(days=150), T0 + timedelta(days=200)):
        profile = Profile.at(data, when, 180)
        for feature, values in data["f"].items():
            assert profile.total(feature) == sum(profile.count(feature, v) for v in values)


def test_no_new_device_for_its_own_client_class_on_an_account_that_never_presented_a_cookie():
    store = history_of(*daily(5, device=None))
    at = T0 + timedelta(days=6)
    assert codes(DeviceCookie(), store, ctx(at=at, device=None, ip=IP_TOKYO_2)) == {}
    # On a network and in a city the account never used, what a known desktop device there scores (red team,
    # round seventy-seven), never new_device.
    assert codes(DeviceCookie(), store, ctx(at=at, device=None, ip=IP_US_HOME)) == {
        "device_new_network": 35,
        "device_new_city": 10,
    }


# -- the device cookie is evidence, not identity (issue 13) ------------------------------------------------

UA_CHROME_131_PATCH = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.86 Safari/537.36"
)
UA_CHROME_130 = UA_CHROME_131_PATCH.replace("131.0.6778.86", "130.0.0.0")
UA_CHROME_132 = UA_CHROME_131_PATCH.replace("131.0.6778.86", "132.0.0.0")


def _default_signals():
    from authguard.risk.findings import configured_signals

    return configured_signals()


def _decide(login, store):
    """The shipped signals and thresholds' decision on ``login``."""
    assessment, _ = score_login(
        login, store, signals=_default_signals(), thresholds=Thresholds(step_up=40, deny=100)
    )
    return assessment


def test_a_stolen_device_cookie_from_a_new_city_and_network_is_stepped_up():
    # Alice's PC signs in from her Tokyo line every day; an infostealer replays its cookie and user agent
    # from a clean residential line in Osaka (another ISP, not listed anywhere).
    store = history_of(*daily(30))
    attack = ctx(at=T0 + timedelta(days=31, hours=3), ip=IP_OSAKA)
    assert store.evidence(attack).device.known
    found = codes(DeviceCookie(), store, attack)
    # And no known-device discount; a PC only ever used in Tokyo, now on a fixed line in Osaka: settled.
    assert found == {"device_new_network": 35, "device_new_city": 10, "settled_device_moved": 30}
    assessment = _decide(attack, store)
    assert assessment.action == Action.STEP_UP
    assert {"device_new_network", "device_new_city"} <= set(assessment.reasons)
    # The same cookie at home is the customer: known, discounted, allowed.
    home = _decide(ctx(at=T0 + timedelta(days=31, hours=3)), store)
    assert home.action == Action.ALLOW
    assert "known_device" in {f.code for f in home.findings}


def test_a_known_device_on_a_network_the_account_uses_is_a_small_step():
    # The PC signs in from the account's phone carrier (tethering): the account knows that network.
    store = history_of(*daily(10), *daily(10, device="dev-alice-phone", ua=UA_IPHONE, ip=IP_DOCOMO))
    later = ctx(at=T0 + timedelta(days=11), ip=IP_DOCOMO)
    # A small step: one point, not 35, but a reason: the order guard sees a copy of the PC there (round 26).
    assert codes(DeviceCookie(), store, later) == {"device_new_network": 1}
    # The phone's own points on the PC's home line keep that point too (round 27: a phone's copy scored 0).
    phone_home = ctx(at=T0 + timedelta(days=11), device="dev-alice-phone", ua=UA_IPHONE, ip=IP_TOKYO)
    assert codes(DeviceCookie(), store, phone_home).get("device_new_network") == 1


def test_a_phone_moving_networks_counts_less_than_a_computer():
    store = history_of(*daily(10, device="dev-alice-phone", ua=UA_IPHONE))
    moved = codes(
        DeviceCookie(),
        store,
        ctx(at=T0 + timedelta(days=11), device="dev-alice-phone", ua=UA_IPHONE, ip=IP_OSAKA),
    )
    assert moved == {"device_new_network": 9, "device_new_city": 2}


def test_a_remembered_device_on_a_network_it_never_used_loses_most_of_its_discount():
    store = history_of(*daily(10))
    later = T0 + timedelta(days=11)
    store.trust_device(ctx(at=later), later + timedelta(days=30))
    assert codes(DeviceCookie(), store, ctx(at=later)) == {"remembered_device": -25}
    assert codes(DeviceCookie(), store, ctx(at=later, ip=IP_OSAKA)) == {
        "device_new_network": 35,
        "device_new_city": 10,
        "settled_device_moved": 30,
        "remembered_device": -10,
    }


def test_a_near_copy_of_the_accounts_user_agent_counts_as_copied():
    # History with Chrome/131.0.0.0; the attacker sends Chrome/131.0.6778.86 (another patch build of the
    # same major version, same OS, same device type) without the cookie, on the victim's own ISP.
    store = history_of(*daily(5, ip=IP_V6_FUKUOKA))
    attack = ctx(at=T0 + timedelta(days=6), device=None, ip=IP_JP_PROXY, ua=UA_CHROME_131_PATCH)
    findings = {f.code: f for f in DeviceCookie().evaluate(store.evidence(attack))}
    assert {code: f.score for code, f in findings.items()} == {
        "new_device": 25,
        "new_device_new_fixed_address": 20,
        "copied_user_agent": 30,
    }
    assert findings["copied_user_agent"].evidence == {"exact": False}
    # Another major version is another browser, not a copy (still a new browser at a new fixed address).
    other = ctx(at=T0 + timedelta(days=6), device=None, ip=IP_JP_PROXY, ua=UA_CHROME_130)
    assert codes(DeviceCookie(), store, other) == {"new_device": 25, "new_device_new_fixed_address": 20}


def test_a_real_browser_update_on_the_same_cookie_is_not_penalised():
    from authguard.risk.signals import StatisticalModel

    store = history_of(*daily(20))
    updated = ctx(at=T0 + timedelta(days=21), ua=UA_CHROME_132)
    assert codes(DeviceCookie(), store, updated) == {"known_device": -10}
    model = StatisticalModel()
    same = model.likelihood_ratio(store.evidence(ctx(at=T0 + timedelta(days=21))))
    assert model.likelihood_ratio(store.evidence(updated)) == pytest.approx(same)
    # Without the neutral update rule the new version string would look like a new client.
    strict = StatisticalModel(browser_update_neutral=False)
    assert strict.likelihood_ratio(store.evidence(updated)) > same


def test_a_user_agent_that_went_backwards_or_sideways_on_a_cookie_is_risk():
    store = history_of(*daily(20))
    older = ctx(at=T0 + timedelta(days=21), ua=UA_CHROME_130)
    # A cookie that does not fit its own browser earns no known-device discount.
    assert codes(DeviceCookie(), store, older) == {"device_user_agent_backwards": 40}
    other_os = ctx(at=T0 + timedelta(days=21), ua=UA_IPHONE)
    assert codes(DeviceCookie(), store, other_os) == {"device_user_agent_sideways": 40}
    # A remembered one keeps only the small discount it gets elsewhere.
    store.trust_device(ctx(at=T0 + timedelta(days=20)), T0 + timedelta(days=50))
    assert codes(DeviceCookie(), store, older) == {
        "device_user_agent_backwards": 40,
        "remembered_device": -10,
    }


def test_a_stolen_cookie_with_an_older_browser_is_stepped_up_even_from_home():
    # The infostealer copied the cookie when the PC ran Chrome 130; the customer has since updated to 131.
    # The thief replays it through a proxy at the customer's own address, at her usual hour: everything
    # familiar but the browser's release, which only goes forwards on a real browser.
    store = history_of(*daily(20, ua=UA_CHROME_130), *daily(10, start=T0 + timedelta(days=20)))
    thief = ctx(at=T0 + timedelta(days=30, hours=1), ua=UA_CHROME_130)
    found = {f.code: f for f in DeviceCookie().evaluate(store.evidence(thief))}
    assert set(found) == {"device_user_agent_backwards"}
    assert found["device_user_agent_backwards"].evidence[STEP_UP_FLOOR] is True
    assessment = _decide(thief, store)
    assert assessment.action == Action.STEP_UP
    assert "device_user_agent_backwards" in assessment.reasons
    # The customer's own browser, updated, at the same place and hour: allowed.
    own = _decide(ctx(at=T0 + timedelta(days=30, hours=1)), store)
    assert own.action == Action.ALLOW
    # A portal whose customers' browsers are rolled back (an enterprise fleet) may drop the floor.
    relaxed = {
        f.code: f
        for f in DeviceCookie(device_user_agent_backwards_step_up=False).evaluate(store.evidence(thief))
    }
    assert STEP_UP_FLOOR not in relaxed["device_user_agent_backwards"].evidence


def test_a_computer_seen_in_one_city_on_a_fixed_line_elsewhere_is_a_settled_device_moved():
    # Alice's PC only ever signed in from her SoftBank line in Sapporo. An infostealer's thief replays its
    # cookie and user agent through a residential proxy on the same ISP in Fukuoka (GeoIP radius 20 km, not
    # listed anywhere): no new network, only a new city, which alone would be 10 points: together a step-up.
    store = history_of(*daily(30, ip=IP_V6_SAPPORO))
    thief = ctx(at=T0 + timedelta(days=31), ip=IP_V6_FUKUOKA)
    found = {f.code: f for f in DeviceCookie().evaluate(store.evidence(thief))}
    assert {code: f.score for code, f in found.items()} == {"device_new_city": 10, "settled_device_moved": 30}
    assert found["settled_device_moved"].evidence == {"city": "Fukuoka, JP", "accuracy_km": 20}
    assessment = _decide(thief, store)
    assert assessment.action == Action.STEP_UP
    assert "settled_device_moved" in assessment.reasons


def test_a_device_that_travelled_before_a_phone_a_coarse_place_or_a_known_city_are_not_settled_moves():
    later = T0 + timedelta(days=31)
    # The same PC took one trip to Osaka before: a laptop that travels, its next city is only new.
    travelled = history_of(
        *daily(29, ip=IP_V6_SAPPORO), *daily(1, ip=IP_OSAKA, start=T0 + timedelta(days=29))
    )
    assert codes(DeviceCookie(), travelled, ctx(at=later, ip=IP_V6_FUKUOKA)) == {"device_new_city": 10}
    # A phone is never settled: it moves all day (whatever share of the new-city points a portal gives it).
    phone = history_of(*daily(30, ip=IP_V6_SAPPORO, ua=UA_IPHONE, device="dev-phone"))
    moved = ctx(at=later, ip=IP_V6_FUKUOKA, ua=UA_IPHONE, device="dev-phone")
    assert codes(DeviceCookie(), phone, moved) == {"device_new_city": 2}
    assert codes(DeviceCookie(portable_factor=1.0), phone, moved) == {"device_new_city": 10}
    store = history_of(*daily(30, ip=IP_V6_SAPPORO))
    # A coarsely placed address (a carrier's CGNAT, 200 km) is not a fixed line.
    coarse = codes(DeviceCookie(), store, ctx(at=later, ip=IP_DOCOMO))
    assert coarse == {"device_new_network": 35, "device_new_city": 10}
    # Nor is one placed exactly at the limit (``fixed_line_max_km`` is the radius *under* which it is one).
    thief = ctx(at=later, ip=IP_V6_FUKUOKA)  # placed within 20 km
    assert "settled_device_moved" not in codes(DeviceCookie(fixed_line_max_km=20), store, thief)
    assert "settled_device_moved" in codes(DeviceCookie(fixed_line_max_km=21), store, thief)
    # A VPN exit in a new city is the network signals' business.
    vpn = codes(DeviceCookie(), store, ctx(at=later, ip=IP_VPN))
    assert vpn == {"device_new_network": 35, "device_new_city": 10}
    # A city the account knows (the customer's phone signs in from Fukuoka): not where a thief's proxy is.
    known_city = history_of(
        *daily(30, ip=IP_V6_SAPPORO),
        *daily(5, ip=IP_V6_FUKUOKA, ua=UA_IPHONE, device="dev-phone"),
    )
    assert codes(DeviceCookie(), known_city, ctx(at=later, ip=IP_V6_FUKUOKA)) == {"device_new_city": 10}
    # A cookie whose DBSC key proved possession is on its own device, wherever that is.
    bound = replace(thief, dbsc="bound_ok")
    assert "settled_device_moved" not in codes(DeviceCookie(), store, bound)


def test_a_device_only_ever_placed_in_the_country_or_nowhere_is_not_settled():
    later = T0 + timedelta(days=31)
    # GeoIP placed the PC in Japan only (no city): it was in no known city, so it cannot leave one.
    country_only = history_of(*daily(30, ip=IP_V6_JAPAN_ONLY))
    moved = codes(DeviceCookie(), country_only, ctx(at=later, ip=IP_V6_FUKUOKA))
    assert moved == {"device_new_city": 10}
    # An address no database places at all: the device's last place is unknown.
    nowhere = history_of(*daily(30, ip="198.18.0.1"))
    assert "settled_device_moved" not in codes(DeviceCookie(), nowhere, ctx(at=later, ip=IP_V6_FUKUOKA))
    # Once in a real city as well, a move from it counts (the country-only place is not a second city).
    both = history_of(
        *daily(20, ip=IP_V6_JAPAN_ONLY), *daily(10, ip=IP_V6_SAPPORO, start=T0 + timedelta(days=20))
    )
    assert "settled_device_moved" in codes(DeviceCookie(), both, ctx(at=later, ip=IP_V6_FUKUOKA))


def test_a_travelled_computer_whose_other_cities_may_have_been_evicted_is_not_settled():
    from authguard.risk.profile import MAX_VALUES

    later = T0 + timedelta(days=31)
    store = history_of(*daily(30, ip=IP_V6_SAPPORO))
    # Fill the account's device|city pairs (other devices in other cities): a pair of this PC may be gone.
    profile = store.profiles["alice"]
    filler = {f"other-{i}|city-{i}": [0, 1] for i in range(MAX_VALUES - len(profile["f"]["dcity"]))}
    profile["f"]["dcity"].update(filler)
    assert "settled_device_moved" not in codes(DeviceCookie(), store, ctx(at=later, ip=IP_V6_FUKUOKA))
    for key in filler:
        del profile["f"]["dcity"][key]
    assert "settled_device_moved" in codes(DeviceCookie(), store, ctx(at=later, ip=IP_V6_FUKUOKA))


def test_a_version_that_does_not_parse_is_not_a_step_back():
    safari = (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534.57.2 (KHTML, like Gecko) "
        "Version/5.1.7 Safari/534.57.2"
    )
    no_version = (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534.57.2 (KHTML, like Gecko) Safari/534.57.2"
    )
    store = history_of(*daily(20, ua=safari))
    assert codes(DeviceCookie(), store, ctx(at=T0 + timedelta(days=21), ua=no_version)) == {
        "known_device": -10
    }


def test_a_dbsc_proof_keeps_a_browser_that_went_back_from_the_floor():
    store = history_of(*daily(20, ua=UA_CHROME_130), *daily(10, start=T0 + timedelta(days=20)))
    rolled_back = replace(ctx(at=T0 + timedelta(days=30, hours=1), ua=UA_CHROME_130), dbsc="bound_ok")
    found = {f.code: f for f in DeviceCookie().evaluate(store.evidence(rolled_back))}
    assert found["device_user_agent_backwards"].score == 40
    assert STEP_UP_FLOOR not in found["device_user_agent_backwards"].evidence


def test_a_cookie_unused_for_months_and_a_device_in_two_places_are_risk():
    store = history_of(*daily(5))
    stale = codes(DeviceCookie(), store, ctx(at=T0 + timedelta(days=75)))
    assert stale == {"known_device": -10, "stale_device": 5}
    # Tokyo at 13:00, then the same cookie in Osaka half an hour later (about 400 km).
    store = history_of(*daily(5, ip=IP_OSAKA), *daily(5, start=T0 + timedelta(days=5)))
    last = T0 + timedelta(days=9)
    moved = codes(DeviceCookie(), store, ctx(at=last + timedelta(minutes=30), ip=IP_OSAKA))
    assert moved == {"known_device": -10, "device_moved": 10}


def test_per_device_memory_is_bounded():
    from authguard.risk.profile import MAX_DEVICES

    store = history_of(*[ctx(device=f"d{i}", at=T0 + timedelta(hours=i)) for i in range(MAX_DEVICES + 10)])
    devices = store.profiles["alice"]["dv"]
    assert len(devices) == MAX_DEVICES
    assert all(len(entry) == 8 for entry in devices.values())


def test_first_login_policy_steps_up_a_first_sign_in_from_elsewhere():
    """Issue 13, the first day: an account with no history is judged on where it signs in from."""
    thresholds = Thresholds(step_up=40, deny=100)
    signals = build_signals([{"NAME": "authguard.risk_signals.AccountContext", "OPTIONS": {}}])
    empty = MemoryHistory()
    home = assess(empty.evidence(ctx(ip=IP_TOKYO)), signals=signals, thresholds=thresholds)
    assert home.action == Action.ALLOW and home.reasons == ["no_history"]
    for ip, where in (
        (IP_US_HOME, "abroad"),  # a residential line abroad
        ("100.64.0.1", "unknown"),  # no GeoIP database knows it
        (IP_AWS, "hosting"),
        (IP_VPN, "anonymous"),
    ):
        assessment = assess(empty.evidence(ctx(ip=ip)), signals=signals, thresholds=thresholds)
        first = {f.code: f for f in assessment.findings}["first_login_elsewhere"]
        assert first.evidence["where"] == where, ip
        # Stepped up at least, by the floor rather than by points: never denied for it alone.
        assert assessment.action == Action.STEP_UP and assessment.score == 40, (ip, assessment.explain())
    # The portal's own network (a health check, an internal client) is not an unknown place.
    internal = assess(empty.evidence(ctx(ip="127.0.0.1")), signals=signals, thresholds=thresholds)
    assert internal.action == Action.ALLOW and "first_login_elsewhere" not in internal.reasons
    # With a history the policy has nothing to say (the other signals judge the place).
    store = history_of(*daily(5))
    assert "first_login_elsewhere" not in codes(
        AccountContext(), store, ctx(at=T0 + timedelta(days=6), ip=IP_US_HOME)
    )
    # A portal elsewhere names its own market.
    us = AccountContext(home_countries=["US"])
    assert "first_login_elsewhere" not in codes(us, empty, ctx(ip=IP_US_HOME))
    assert "first_login_elsewhere" in codes(us, empty, ctx(ip=IP_TOKYO))


def test_an_unplaceable_address_right_after_a_known_place_counts_as_unverifiable_travel():
    store = history_of(*daily(5))
    last = T0 + timedelta(days=4)
    assert codes(ImpossibleTravel(), store, ctx(at=last + timedelta(hours=1), ip="100.64.0.1")) == {
        "unverifiable_travel": 15
    }
    # Long enough after the last sign-in, not knowing the place says nothing about travel.
    assert codes(ImpossibleTravel(), store, ctx(at=last + timedelta(hours=7), ip="100.64.0.1")) == {}
