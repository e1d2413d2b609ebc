"""Red team round twenty-nine's session findings: a browser release that changes mid-session.

Round twenty-nine (a): round twenty-eight's session changes (4cd2ced, 23cf280, 2505bde).

Round twenty-eight made an *older* browser release than the session's bound one a material change
(``sessions.places._same_browser`` / ``_older``) and left a *newer* one "her browser's update". Each test not
marked HELD fails on 2505bde.

1. Her live session replayed from a *newer* Chromium build than hers on her ISP nearby: "moved", full limits.
2. After such a copy, her own older browser is the one re-scored (allowed, no event); the session showing
   133 then 131 (two browsers) is never held, and the two go on side by side.
3. A release that does not parse (Safari ``Version/18``): ``_older`` answers False, full limits.
4. 2505bde: her step-up at home (the former binding) marks the thief's re-score event ``step_up_passed``
   (console "passed step-up", backtest "known good").

HELD: Safari ``Version/18.0`` against her 18.1 (re-scored, lowered limits); a relayed code posted away from
both the re-score's context and the former binding is scored and recorded where posted.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from authguard.models import LoginEvent
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, OrderApi, totp_token
from .test_battery_exposure import sign_in, value
from .test_orders_copied_browser_os_walkarounds import _home_browser
from .test_orders_first_device_walkarounds import LOWERED_SELL_SHARE, _buy_and_sell, _paid_for
from .test_sessions_browser_release_walkarounds import _copy_of, _session_state

start = battery.start
clock = battery.clock

#: The thief's anti-detect browser: a Chromium build of the same family, OS and device type as hers
#: (Chrome 131 on Windows), but the newer release it ships (anti-detect kits track current Chromium).
UA_CHROME_WIN_NEWER = UA_CHROME_WIN.replace("Chrome/131.0.0.0", "Chrome/133.0.0.0")


def _her_session_copied(
    clock: Any, tanaka: Any, *, ip: str, ua: str, home_ua: str = UA_CHROME_WIN
) -> tuple[OrderApi, OrderApi, int]:
    """Tanaka signs in at home (``home_ua``) and uses her session; an hour later its jar is replayed from
    ``ip`` with ``ua``. Her browser, the copy, and how many login events she had before the copy."""
    home = _home_browser(clock, tanaka, ua=home_ua)
    clock(0)
    sign_in(home, TANAKA.username, TANAKA.password)
    assert home.get("/api/portfolio").status_code == 200
    events = LoginEvent.objects.filter(user=tanaka).count()
    clock(0, hours=1)
    return home, _copy_of(home, ip=ip, ua=ua), events


def _pump(copy: OrderApi, tanaka: Any) -> tuple[int, dict[str, Any], str, float, list[str], Decimal]:
    """The copy's portfolio answer, its session state, and its try at the pump: the buy's outcome, the share
    of the portfolio sold, the orders' statuses and what was paid for 5Z4A."""
    served = copy.get("/api/portfolio").status_code
    state = _session_state(copy) if served == 200 else {}
    bought, sold_share, statuses = ("not served", 0.0, [])
    if served == 200:
        bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    return served, state, bought, sold_share, statuses, _paid_for(tanaka, "5Z4A")


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_live_session_replayed_with_a_newer_chromium_build_is_re_scored_and_gets_the_lowered_limits(
    clock: Any, tanaka: Any
) -> None:
    """Round twenty-eight's own scenario with the kit's build newer than her browser: infostealer malware
    copies Tanaka's jar while she is signed in at home (Chrome 131 on Windows); an hour later the thief loads
    it into an anti-detect Chromium 133 on Windows behind a residential proxy at another address of her /24.
    ``_same_browser`` calls only an older release a copy ("a newer one is her browser's update"), so the
    move is "moved": no re-score, no event, and the guard sees her allowed session."""
    _, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN_NEWER)
    total = value(tanaka).total_value
    served, state, bought, sold_share, statuses, paid = _pump(copy, tanaka)
    rescored = LoginEvent.objects.filter(user=tanaka).count() - events
    outcome = (
        f"portfolio {served}", f"{rescored} events",
        f"r={state.get('r')} rel={state.get('b', {}).get('rel')}", bought,
        f"{paid / total:.1%} of the portfolio in 5Z4A", f"sold {sold_share:.1%}", statuses,
    )  # fmt: skip
    assert paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE, outcome
    if served == 200:
        assert bought == "held" and "held" in statuses, outcome


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_browser_going_back_a_release_after_the_copys_newer_one_holds_the_session(
    clock: Any, tanaka: Any
) -> None:
    """The copy of the test above (Chromium 133, another address of her /24) has moved the session's binding
    to release 133 ("moved", no re-score). Three minutes later Tanaka's own Chrome 131 at home sends her next
    request: now *her* browser is the older release, material, and the session is re-scored; the engine
    compares her UA with the device's memory (131, learned at her sign-in), finds nothing, and allows it:
    rebound to 131, no event. The copy's next request is newer again ("moved"), and the two go back and forth
    in one session, each of her requests re-scored and allowed, none of his ever scored, and nothing holds
    the session. One session that showed release 133 and then 131 is two browsers (browsers update
    forwards), as a session back at a place it left minutes ago is two holders (``in_two_places``). Secure:
    the step back is held at a step-up at least (the session's own evidence, as
    ``session_in_two_places``), so her step-up rotates the key and the copy is out."""
    _, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN_NEWER)
    assert copy.get("/api/portfolio").status_code == 200
    assert _session_state(copy)["b"]["rel"] == "133"
    clock(0, hours=1.05)
    her = _copy_of(copy, ip=IP_TOKYO, ua=UA_CHROME_WIN)  # her own browser: the same jar, at home
    hers = her.get("/api/portfolio")
    after_hers = _session_state(her)
    clock(0, hours=1.1)
    copy_again = copy.get("/api/portfolio").status_code
    new_events = [
        (e.ip, e.outcome, e.action, e.score, e.reasons)
        for e in LoginEvent.objects.filter(user=tanaka).order_by("pk")[events:]
    ]
    outcome = (
        f"her request {hers.status_code}", f"state {after_hers.get('s')} r={after_hers.get('r')}",
        f"copy again {copy_again}", new_events,
    )  # fmt: skip
    # Held at a step-up; a customer with no factor to step up with has the session ended (``refused``).
    from authguard.factors.methods import step_up_methods

    held = "pending" if step_up_methods(tanaka) else None
    assert hers.status_code == 401 and after_hers.get("s") == held, outcome
    assert "device_user_agent_backwards" in new_events[-1][4], outcome
    assert copy_again != 200, outcome


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_step_up_after_her_browser_went_back_a_release_shuts_the_newer_copy_out(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """The test above with Tanaka's authenticator app: her own older browser's request is held at a step-up
    (``device_user_agent_backwards``, the session's own evidence), she confirms with her code at home, the
    session key rotates, and the copy's next request (Chromium 133, the old session cookie) is out."""
    device = totp_factory(tanaka)
    _, copy, _ = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_WIN_NEWER)
    assert copy.get("/api/portfolio").status_code == 200
    clock(0, hours=1.05)
    her = _copy_of(copy, ip=IP_TOKYO, ua=UA_CHROME_WIN)
    assert her.get("/api/portfolio").status_code == 401
    assert _session_state(her)["s"] == "pending"
    held = LoginEvent.objects.filter(user=tanaka).latest("pk")
    assert (held.ip, held.outcome, held.action) == (IP_TOKYO, "rescored", "step_up"), held.reasons
    assert "device_user_agent_backwards" in held.reasons
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    assert her.get("/api/portfolio").status_code == 200
    clock(0, hours=1.1)
    assert copy.get("/api/portfolio").status_code == 401
    assert _session_state(her)["b"]["rel"] == "131"


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_control_her_chrome_updating_mid_session_at_home_is_not_re_scored(clock: Any, tanaka: Any) -> None:
    """Her own update: Chrome relaunches as 133 at her home address an hour into her session. Not a move (her
    update, where the session is bound): no re-score, no event, her session's limits untouched."""
    _, updated, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO, ua=UA_CHROME_WIN_NEWER)
    assert updated.get("/api/portfolio").status_code == 200
    state = _session_state(updated)
    assert (state["b"]["rel"], bool(state.get("r")), state["s"]) == ("133", False, "verified")
    assert LoginEvent.objects.filter(user=tanaka).count() == events


# -- a release that does not parse: ``_older`` answers False ------------------------------------------------

#: Safari on her Mac: ``browser_release`` is major.minor for Safari ("18.1").
UA_SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/%s Safari/605.1.15"
)


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize(
    "release",
    [
        pytest.param("18", id="no-minor"),
        pytest.param("18.0", id="older-minor-control"),
    ],
)
def test_her_safari_session_replayed_with_a_release_that_does_not_parse_gets_the_lowered_limits(
    clock: Any, tanaka: Any, release: str
) -> None:
    """Tanaka's Mac Safari 18.1 jar, replayed an hour after her sign-in from another address of her /24 by
    a kit that sends ``Version/18`` (no minor). The parser gives no version at all for it (``rel`` ""), and
    ``_older("", "18.1")`` hits ``int("")``: ValueError, "not older". Family, OS and device type match, so the
    move is "moved": no re-score, full limits (9.9 % into 5Z4A, 44 % sold, no hold). The control,
    ``Version/18.0``, parses, is older, is re-scored (``r``) and gets the lowered limits. One user-agent edit
    that works whatever her release is (as a newer one does). Secure: a release that does not parse against a
    bound one that does is a change, as an older one is."""
    home, copy, _ = _her_session_copied(
        clock, tanaka, ip=IP_TOKYO_2, ua=UA_SAFARI_MAC % release, home_ua=UA_SAFARI_MAC % "18.1"
    )
    assert _session_state(home)["b"]["rel"] == "18.1"
    total = value(tanaka).total_value
    served, state, bought, sold_share, statuses, paid = _pump(copy, tanaka)
    outcome = (
        f"portfolio {served}", f"r={state.get('r')} rel={state.get('b', {}).get('rel')!r}", bought,
        f"{paid / total:.1%} of the portfolio in 5Z4A", f"sold {sold_share:.1%}",
    )  # fmt: skip
    assert paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE, outcome


# -- 2505bde: the former binding's exemption, and whose event a step-up marks passed -------------------------


from .conftest import IP_DOCOMO, UA_FIREFOX_LINUX  # noqa: E402
from .test_sessions_binding import Browser, hanako, steal, victim  # noqa: E402, F401 (fixtures)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_step_up_at_home_does_not_label_the_thiefs_copy_a_passed_step_up(
    victim: Browser,  # noqa: F811
    hanako: Any,  # noqa: F811
) -> None:
    """hanako's session cookie is replayed from the thief's Firefox on docomo: re-scored, held at step-up,
    its event (docomo, the thief's browser) ``rescored``. The thief has no factor and gives up. She, at home
    in her Chrome (the session's former binding), is held too and confirms with her TOTP. Since 2505bde her
    step-up is "recorded" by the re-score's event because she posts from the former binding, so that
    event, the thief's copy on docomo, becomes ``step_up_passed``: the console lists it as "session
    re-checked, passed step-up" (got in), and the backtest labels the thief's attempt *known good*, so a
    policy that refuses such copies is charged with friction for it. Her own step-up at home leaves no
    event. Secure: the thief's re-score keeps its outcome (nobody passed there), and her step-up is not
    booked on another context's event."""
    from authguard.risk import backtest, event_categories

    thief = steal(victim, ip=IP_DOCOMO, ua=UA_FIREFOX_LINUX)
    assert thief.get("/api/portfolio").status_code == 401
    assert victim.get("/api/portfolio").status_code == 401
    step_up = victim.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert step_up.status_code == 200, step_up.content
    assert victim.get("/api/portfolio").status_code == 200
    copy_event = LoginEvent.objects.get(ip=IP_DOCOMO)
    category = event_categories.category_of(copy_event)
    outcome = (copy_event.outcome, str(category.label), backtest.label(copy_event))
    assert copy_event.outcome != "step_up_passed", outcome
    assert backtest.label(copy_event) != backtest.GOOD, outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_a_thiefs_relayed_code_posted_away_from_both_contexts_is_scored_and_recorded_where_posted(
    victim: Browser,  # noqa: F811
    hanako: Any,  # noqa: F811
) -> None:
    """HELD: the re-scored session of the test above; two minutes later the thief posts one relayed TOTP
    code from another address of her own ISP (neither the re-score's context nor the former binding, whose
    exemption needs the very address, device cookie and browser). It is scored where posted; whatever the
    answer, that address is in an event (refused, or the ``rescored`` event the step-up marks passed), and
    the copy's docomo event is not the one that passed."""
    import time_machine
    from django.utils import timezone

    thief = steal(victim, ip=IP_DOCOMO, ua=UA_FIREFOX_LINUX)
    with time_machine.travel(timezone.now(), tick=False) as t:
        assert thief.get("/api/portfolio").status_code == 401
        t.shift(120)
        moved = steal(victim, ip=IP_TOKYO_2, ua=UA_FIREFOX_LINUX)
        answer = moved.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    events = [(e.ip, e.outcome, e.action) for e in LoginEvent.objects.filter(user=hanako).order_by("pk")]
    there = [e for e in events if e[0] == IP_TOKYO_2]
    assert there, (answer.status_code, answer.content, events)
    assert LoginEvent.objects.get(ip=IP_DOCOMO).outcome != "step_up_passed", events
    if answer.status_code == 200:
        assert there[-1][1] == "step_up_passed", events
    else:
        assert there[-1][1] == "refused", events
