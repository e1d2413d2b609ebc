"""Red team, round twenty-eight (a): sessions and step-up after round twenty-seven (c92fdcf).

Round twenty-seven binds a session to ``browser family|OS|device type`` (``sessions.state.current_binding``'s
``br``). The browser's *release* is not in it, although the risk engine calls the same device cookie from an
older release of the same browser a copy (``device_user_agent_backwards``, with a step-up floor: "browsers
update forwards"). Each test not marked HELD fails on c92fdcf.

1. Her live session replayed from an older release of the same browser on her ISP nearby: no re-score, no
   hold (also on c92fdcf^).
2. The same at her own address: her fresh step-up is kept and the copy withdraws on it (also on c92fdcf^).
3. The customer's side of round twenty-seven's ``br``: Chrome or Samsung Internet on an Android tablet say
   ``X11; Linux`` at full width (desktop site) and ``Linux; Android`` in split screen; one flip mid-session is
   a re-score and lowers her limits for the day (passes on c92fdcf^).
4. A session bound before the deploy (``br`` = the family) is re-scored at its next address change.

HELD: a sign-in with the older release's copied cookie is refused; her own slow step-up (90 s, 240 s) from
where she signed in passes the re-score; her tablet without a flip keeps her full limits.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from authguard.models import LoginEvent
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, OrderApi
from .test_battery_exposure import sign_in, value
from .test_orders_copied_browser_os_walkarounds import _home_browser
from .test_orders_first_device_walkarounds import LOWERED_SELL_SHARE, _buy_and_sell, _paid_for
from .test_sessions_binding_anchor import rt_geoip, rt_geoip_dir  # noqa: F401 (fixtures)

start = battery.start
clock = battery.clock

#: Chrome on Windows as hers, but the release of the day the jar was stolen (an infostealer's replay kit
#: sends the user agent recorded with the cookies): same family, OS and device type, an older release.
UA_CHROME_WIN_OLD = UA_CHROME_WIN.replace("Chrome/131.0.0.0", "Chrome/120.0.0.0")


def _session_state(browser: OrderApi) -> dict[str, Any]:
    from importlib import import_module

    from django.conf import settings as django_settings

    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    key = browser.client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return store(session_key=key).load().get("_authguard") or {}


def _copy_of(home: OrderApi, *, ip: str, ua: str) -> OrderApi:
    copy = OrderApi(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
    for name, morsel in home.client.cookies.items():
        copy.client.cookies[name] = morsel.value
    copy.token = home.token
    return copy


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_live_session_replayed_with_an_older_chrome_release_is_re_scored_and_gets_the_lowered_limits(
    clock: Any, tanaka: Any
) -> None:
    """Infostealer malware copies Tanaka's whole jar (session cookie and newest device cookie) while she is
    signed in at home (Chrome 131 on Windows). An hour later the thief loads it into his anti-detect browser
    (a Chromium 120 build on Windows: the version it ships) behind a residential proxy at another address
    of her /24. Family, OS and device type equal hers, so the binding's ``br`` is the same, the move is not
    material and the session is rebound ("moved") with no re-score and no event. A *sign-in* with that very
    cookie from that release is refused or stepped up whatever the network (``device_user_agent_backwards``
    and its step-up floor: browsers update forwards); the session path never asks (battery case 61: never
    more gently than a fresh sign-in). The guard sees her own allowed session: 9.9 % of the portfolio into
    the thin 5Z4A and 44 % of the holdings sold, no hold. Secure: a session whose browser goes back to an
    older release is material (re-scored, held at a step-up at least), and neither the buy nor the sale
    beyond a quarter of the holdings goes through unheld."""
    home = _home_browser(clock, tanaka)
    clock(0)
    sign_in(home, TANAKA.username, TANAKA.password)
    assert home.get("/api/portfolio").status_code == 200
    events = LoginEvent.objects.filter(user=tanaka).count()
    clock(0, hours=1)
    copy = _copy_of(home, ip=IP_TOKYO_2, ua=UA_CHROME_WIN_OLD)
    served = copy.get("/api/portfolio").status_code
    rescored = LoginEvent.objects.filter(user=tanaka).count() - events
    total = value(tanaka).total_value
    bought, sold_share, statuses = ("not served", 0, [])
    if served == 200:
        bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (
        f"portfolio {served}", f"{rescored} events", bought,
        f"{paid / total:.1%} of the portfolio in 5Z4A", f"sold {sold_share:.1%}", statuses,
    )  # fmt: skip
    assert paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE, outcome
    if served == 200:
        assert bought == "held" and "held" in statuses, outcome


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_control_a_sign_in_with_her_cookie_from_the_older_chrome_release_is_not_let_in(
    clock: Any, tanaka: Any
) -> None:
    """HELD (the control for the test above): the same copied device cookie, the same older Chrome, the
    same address of her /24, but the thief *signs in* with the phished password: refused (the older
    release's ``device_user_agent_backwards`` with her PC's live session elsewhere)."""
    home = _home_browser(clock, tanaka)
    clock(0)
    sign_in(home, TANAKA.username, TANAKA.password)
    clock(0, hours=1)
    thief = OrderApi(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN_OLD)
    thief.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    answer = thief.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
    event = LoginEvent.objects.filter(user=tanaka).order_by("-pk").first()
    assert event is not None and event.ip == IP_TOKYO_2, event
    assert answer.json().get("status") in ("step_up_required", "denied"), (answer.content, event.reasons)
    assert event.action in ("step_up", "deny"), (event.action, event.reasons)
    assert "device_user_agent_backwards" in str(event.reasons), event.reasons


# -- the customer's side: Chrome on an Android tablet switching between desktop and tablet site --------------

#: Chrome on her Galaxy Tab at full width: large-screen Android Chrome asks for the desktop site by default.
UA_TAB_DESKTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
#: The same Chrome in split-screen (narrow window): the tablet site, Android's reduced user agent.
UA_TAB_SPLIT = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


#: Samsung Internet on the same tablet (or a phone docked in DeX): the desktop site, and the tablet site.
UA_SAMSUNG_DESKTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 "
    "Chrome/122.0.0.0 Safari/537.36"
)
UA_SAMSUNG_TABLET = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Safari/537.36"
)
TABLET_BROWSERS = pytest.mark.parametrize(
    "full,split",
    [(UA_TAB_DESKTOP, UA_TAB_SPLIT), (UA_SAMSUNG_DESKTOP, UA_SAMSUNG_TABLET)],
    ids=["chrome", "samsung-internet"],
)


def _tanakas_tablet(clock: Any, user: Any, *, days: int = 10, ua: str = UA_TAB_DESKTOP) -> OrderApi:
    """Tanaka's Galaxy Tab (Chrome, OCN at home, Tokyo) of more than a year, signed in every day for ``days``
    days, at full width (the desktop site)."""
    from .conftest import of_long_standing, settle_device

    of_long_standing(user)
    clock(-days)
    tab = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=ua)
    tab.login(TANAKA.username, TANAKA.password)
    settle_device(tab.client.cookies["authguard_device"].value, user, days=400)
    for day in range(-days + 1, 0):
        clock(day)
        sign_in(tab, TANAKA.username, TANAKA.password)
        assert tab.get("/api/portfolio").status_code == 200
    tab.post("/api/logout")
    return _copy_of(tab, ip=IP_TOKYO, ua=ua)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@TABLET_BROWSERS
def test_trade_her_tablets_chrome_going_split_screen_mid_session_is_re_scored(
    clock: Any, tanaka: Any, full: str, split: str
) -> None:
    """Tanaka trades on her Galaxy Tab at home. Android browsers on a large screen request the desktop site
    at full width (``X11; Linux x86_64``: Chrome|Linux|desktop, Samsung Internet|Linux|desktop) and the
    tablet site in a narrow window (``Linux; Android ...``: Chrome|Android|tablet); she signs in at full
    width as every day, then opens split screen to read the news beside the portal: the same browser, the
    same cookies, the same address, the same release. Since round twenty-seven the binding's ``br`` holds the
    OS and device type, so the flip is a material change: the session is re-scored (allowed, no event, but
    ``r`` set, its step-up cleared) and the order guard counts it as a re-scored session: her 40 % rebalancing
    stops at 23 % with a hold. THE TRADE, kept (docs/step-up.md): a Chrome on a Linux desktop holding her
    tablet's cookie jar sends the very same requests, and a browser's cookies never move to another OS."""
    from .test_customer_costs_of_the_rules import _rebalance

    tab = _tanakas_tablet(clock, tanaka, ua=full)
    clock(0)
    sign_in(tab, TANAKA.username, TANAKA.password)
    assert tab.get("/api/portfolio").status_code == 200
    events = LoginEvent.objects.filter(user=tanaka).count()
    clock(0, hours=0.1)
    narrowed = _copy_of(tab, ip=IP_TOKYO, ua=split)  # the same browser, in split screen
    served = narrowed.get("/api/portfolio").status_code
    new_events = [
        (e.outcome, e.action, e.score, e.reasons)
        for e in LoginEvent.objects.filter(user=tanaka).order_by("pk")[events:]
    ]
    sold, statuses = _rebalance(narrowed, tanaka) if served == 200 else (Decimal(0), [])
    state = _session_state(narrowed)
    outcome = (
        f"portfolio {served}", new_events, f"re-scored {state.get('r')}", f"sold {sold:.1%}", statuses,
    )  # fmt: skip
    assert served == 200 and state.get("r"), outcome  # re-scored and allowed: her history
    assert "held" in statuses, outcome  # her large sale is confirmed with her factor


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@TABLET_BROWSERS
def test_control_her_tablet_without_a_flip_mid_session_rebalances_40_percent_unheld(
    clock: Any, tanaka: Any, full: str, split: str
) -> None:
    """HELD (the control of the test above): the same tablet, the same history of both user agents, signed
    in today at full width and staying so: the 40 % rebalancing is placed unheld."""
    from .test_customer_costs_of_the_rules import _rebalance

    tab = _tanakas_tablet(clock, tanaka, ua=full)
    clock(0)
    sign_in(tab, TANAKA.username, TANAKA.password)
    assert tab.get("/api/portfolio").status_code == 200
    clock(0, hours=0.1)
    sold, statuses = _rebalance(tab, tanaka)
    assert statuses and set(statuses) == {"placed"} and sold > Decimal("0.35"), (sold, statuses)


# -- the same at her own address: her step-up carried by an older release ------------------------------------


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_copy_of_her_session_from_an_older_chrome_at_her_own_address_does_not_withdraw_on_her_step_up(
    brokerage_customer: Any,
    rt_geoip: Any,  # noqa: F811
) -> None:
    """hanako re-verifies with her TOTP at home and withdraws. The infostealer's back-connect proxy on her own
    PC (her very address) replays her jar 90 s later from the thief's anti-detect browser, Chromium 120 on
    Windows (hers is Chrome 131). The binding compares family|OS|device only, the address is the same: the
    request is "moved" with ``moved`` false, so ``rebind`` keeps her ``st`` and the copy withdraws on her
    step-up. The documented limit ("a copy on her own address keeps her step-up") is for a copy that cannot
    be told from her browser; this one can, by the rule the risk engine applies to a sign-in
    (``device_user_agent_backwards``). Secure: the older release is material, re-scored, and no withdrawal is
    served on her step-up."""
    from datetime import timedelta

    import time_machine

    from .conftest import totp_token
    from .test_sessions_binding_anchor import START, _signed_in_after

    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        home = _signed_in_after(t, [IP_TOKYO] * 10)
        t.shift(timedelta(seconds=30))
        assert home.post("/authguard/step-up/totp/", {"code": totp_token(hanako.totp)}).status_code == 302
        assert home.post("/drf/withdraw").status_code == 200  # her own
        events = LoginEvent.objects.filter(user=hanako).count()
        t.shift(timedelta(seconds=90))
        from django.test import Client

        thief = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN_OLD)
        for name, morsel in home.cookies.items():
            thief.cookies[name] = morsel.value
        answer = thief.post("/drf/withdraw")
        rescored = LoginEvent.objects.filter(user=hanako).count() - events
    finally:
        traveller.stop()
    sent_to_step_up = answer.status_code == 302 and "step-up" in answer["Location"]
    assert answer.status_code in (401, 403) or sent_to_step_up, (
        f"a copy of her session from an older Chrome at her address withdrew on her step-up: "
        f"{answer.status_code} {answer.content!r}; re-score events: {rescored}"
    )


# -- the 60-s window: her own slow step-up from where she signed in ------------------------------------------


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.parametrize("ip", ["203.0.113.70", "203.0.113.140"], ids=["osaka", "docomo"])
@pytest.mark.parametrize("seconds", [90, 240])
def test_her_own_slow_step_up_from_where_she_signed_in_passes(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any, ip: str, seconds: int
) -> None:
    """HELD: her sign-in from a new network is scored step_up; she takes a minute or four to find her
    phone and posts the code from the very same browser and address. Past ``SCORE_FRESH_SECONDS`` the
    step-up is scored as a sign-in from there, with her own pending login in the history: it still passes."""
    import json
    from datetime import timedelta

    import time_machine
    from django.test import Client
    from django.utils import timezone

    from .conftest import totp_token
    from .test_drf import customer

    alice = customer(user_factory, browser_at, "alice")
    phone = totp_factory(alice)
    her = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False) as t:
        login = her.post(
            "/api/login", json.dumps({"username": "alice", "password": "correct horse battery"}),
            content_type="application/json", REMOTE_ADDR=ip,
        )  # fmt: skip
        assert login.json()["status"] == "step_up_required", login.content  # the precondition
        t.shift(timedelta(seconds=seconds))
        step_up = her.post(
            "/authguard/api/step-up/totp", json.dumps({"code": totp_token(phone)}),
            content_type="application/json", REMOTE_ADDR=ip,
        )  # fmt: skip
        served = her.get("/drf/portfolio", REMOTE_ADDR=ip).status_code
    events = [(e.ip, e.outcome, e.action, e.score, e.reasons) for e in LoginEvent.objects.filter(user=alice)]
    assert step_up.status_code == 200 and served == 200, (step_up.status_code, step_up.content, events)


# -- the customer's side of the deploy: sessions bound before round twenty-seven ---------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_session_bound_before_the_upgrade_is_not_re_scored_at_her_next_dhcp_renewal(
    clock: Any, tanaka: Any
) -> None:
    """Tanaka's PC signed in at home before the portal deployed round twenty-seven: its session binding
    holds ``br`` as c92fdcf^ wrote it, the browser family alone ("Chrome"). After the deploy her first
    requests match the session's fingerprint (nothing compared). An hour later her router's DHCP lease gives
    her another OCN address in Tokyo, which is no move (tests/test_customer_costs_of_the_rules.py, the clean
    address), but now the stored "Chrome" differs from "Chrome|Windows|desktop": a material change, the
    session is re-scored and the guard holds her 40 % rebalancing for the day. Every session (and token
    binding) alive at the deploy pays this once, at its next address change. Secure for her: a binding in
    the former format is compared by the browser family, or upgraded in place on its first request."""
    from .test_customer_costs_of_the_rules import _rebalance

    home = _home_browser(clock, tanaka)
    clock(0)
    sign_in(home, TANAKA.username, TANAKA.password)
    assert home.get("/api/portfolio").status_code == 200
    # The session as c92fdcf^ bound it (its ``current_binding``: ``"br": client_info(ua).browser``).
    from importlib import import_module

    from django.conf import settings as django_settings

    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    session = store(session_key=home.client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    state = session["_authguard"]
    assert state["b"]["br"] == "Chrome|Windows|desktop", state["b"]
    state["b"]["br"] = "Chrome"
    session["_authguard"] = state
    session.save()
    clock(0, hours=0.5)
    assert home.get("/api/portfolio").status_code == 200  # the same fingerprint: nothing compared
    clock(0, hours=1)
    moved = _copy_of(home, ip=IP_TOKYO_2, ua=UA_CHROME_WIN)  # her own PC, renewed address
    assert moved.get("/api/portfolio").status_code == 200
    after = _session_state(moved)
    sold, statuses = _rebalance(moved, tanaka)
    outcome = (f"re-scored {after.get('r')}", f"bound {after['b'].get('br')}", f"sold {sold:.1%}", statuses)
    assert not after.get("r") and statuses and "held" not in statuses, outcome
