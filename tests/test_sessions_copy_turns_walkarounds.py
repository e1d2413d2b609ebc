"""Red team, round seventy-five (held since): a copy of her jar taking turns with her, each turn more than
half an hour after the other's (``address_returns.returned_address``; docs/step-up.md, "Rounds sixty-two to
sixty-five, seventy-five and seventy-seven").

An infostealer gang copies her whole jar (session, device and CSRF cookies; no DBSC) and replays it with her
exact user agent from a clean residential line in her city, over her session's day. Held since this round:
the copy's second turn (a second return within ``LEFT_SECONDS``, however long the pauses). Known limit
(strict xfail): a copy that takes each turn from a fresh block places a second sell before her return is
held. Costs measured (``test_cost_*``): her laptop to a café and back, and her flaky home Wi-Fi with her
phone's tethering on another network.

Real sign-ins through the demo's JSON API, the real middleware, GeoIP test databases with extra Tokyo blocks,
time_machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.models import LoginEvent, Notification
from authguard.testing import GeoNetwork, write_geoip_databases
from demo_site.brokerage.models import Order

from .conftest import IP_DOCOMO, IP_TOKYO, TEST_NETWORKS, totp_token
from .test_sessions_address_returns_walkarounds import OCN_TOKYO
from .test_sessions_copy_same_isp_walkarounds import _copy, _her, _state

pytestmark = [pytest.mark.django_db]

IP_OCN_OTHER_22 = "203.0.99.7"  # a clean OCN home line in Tokyo, another /22 (a residential proxy exit)
IP_KDDI_TOKYO = "203.0.75.8"  # a clean KDDI home line in Tokyo (another network, her city)
#: Two more clean OCN Tokyo /22s (the same residential proxy pool's other exits).
IP_OCN_POOL = ["203.0.88.7", "203.0.92.7"]
#: Her phone's tethering on au (KDDI's mobile data), placed in Tokyo within 20 km; IP_DOCOMO (conftest) is
#: docomo's, placed to 200 km (a carrier's region: imprecise).
IP_AU_TETHER = "203.0.84.30"


@pytest.fixture(scope="session")
def rt75_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    extra = [
        GeoNetwork("203.0.99.0/24", **OCN_TOKYO),
        GeoNetwork("203.0.75.0/24", **{**OCN_TOKYO, "asn": 2516, "as_org": "KDDI"}),
        GeoNetwork("203.0.84.0/24", **{**OCN_TOKYO, "accuracy_km": 20, "asn": 2516, "as_org": "KDDI"}),
        GeoNetwork("203.0.88.0/24", **OCN_TOKYO),
        GeoNetwork("203.0.92.0/24", **OCN_TOKYO),
    ]
    return write_geoip_databases(tmp_path_factory.mktemp("rt75"), [*TEST_NETWORKS, *extra])


@pytest.fixture(autouse=True)
def rt75_geoip(settings: Any, rt75_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(rt75_geoip_dir)
    return rt75_geoip_dir


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _sell(client: Client, quantity: int = 10) -> Any:
    order = {"side": "sell", "symbol": "7203", "quantity": quantity}
    return client.post("/api/orders", order, content_type="application/json")


def _totp_step_up(client: Client, user: Any, **extra: Any) -> Any:
    return client.post(
        "/authguard/api/step-up/totp",
        {"code": totp_token(user.totp)},
        content_type="application/json",
        **extra,
    )


def _turns(
    clock: Any, her: Client, thief: Client, *, turns: int, gap_minutes: int, quantity: int
) -> list[Any]:
    """The copy and she take turns ``gap_minutes`` apart (each of them idle longer than half an hour, never
    the session's hour): at each of his turns he reads her portfolio and sells ``quantity`` x 7203."""
    log = []
    for _ in range(turns):
        clock.shift(timedelta(minutes=gap_minutes))
        seen = thief.get("/api/portfolio").status_code
        sold = _sell(thief, quantity)
        clock.shift(timedelta(minutes=gap_minutes))
        back = her.get("/api/portfolio").status_code
        log.append((seen, sold.status_code, sold.json().get("status"), back))
    return log


def _sells(user: Any) -> int:
    return Order.objects.filter(account__user=user, side="sell").count()


def _visits(clock: Any, her: Client, user: Any, plan: list[tuple[str, int]]) -> list[list[str]]:
    """Her own requests: at each ``(ip, minutes)`` of ``plan``, ``minutes`` after the last, she reads her
    portfolio; when held, she steps up there with her code and reads again. The reasons of each step-up."""
    step_ups = []
    for ip, minutes in plan:
        clock.shift(timedelta(minutes=minutes))
        if her.get("/api/portfolio", REMOTE_ADDR=ip).status_code == 401:
            answer = _totp_step_up(her, user, REMOTE_ADDR=ip)
            assert answer.status_code == 200, answer.content
            step_ups.append(sorted(LoginEvent.objects.filter(user=user).latest("pk").reasons))
            clock.shift(30)  # the next TOTP step
            assert her.get("/api/portfolio", REMOTE_ADDR=ip).status_code == 200
    return step_ups


def _returns(step_ups: list[list[str]]) -> int:
    """How many of her step-ups the address-return rule asked for (the engine's own re-scores aside)."""
    return sum("session_at_two_addresses" in reasons for reasons in step_ups)


@pytest.mark.parametrize("gap_minutes", [31, 59])
def test_held_a_copy_taking_turns_with_her_over_half_an_hour_apart_at_his_second_turn(
    clock: Any, brokerage_customer: Any, gap_minutes: int
) -> None:
    """Secure: a copy of her jar that takes turns with her live session (his block, her block, his block
    again...) is held at his second turn, whatever the pauses between the turns (within her session's idle
    hour): one sell, then a step-up for whoever comes next; her step-up renews the key and the copy is
    signed out. No notice is sent (a held session asks her for her factor, as every session rule does).

    Attack (the thief): with her whole jar (session, device, CSRF cookies) and her exact UA, from a clean OCN
    home line in Tokyo on another /22 (a residential proxy exit), wait until her session has been quiet for
    31 minutes (or 59), read her portfolio and sell 5 x 7203; wait as long again (she uses the session in
    between), again; four times. Measured before the fix: all four sells placed (20 of her 100 Toyota
    shares), no request of his or hers ever held or re-scored (``r`` stayed false, ``lr`` true), no login
    event; the copy lived until the session's absolute lifetime. With 20 shares a turn, two sells were
    placed (40 shares, about ¥114,000) and the order guard held the third and fourth (she was told of those,
    ``order_held``): the order guard's unheld budget bounded what the copy moved, but the session check
    never caught it. Reaches further than the strict xfail
    ``test_a_copy_used_only_in_her_idle_gaps_from_her_isp_places_an_order`` (one turn, held at her return
    within half an hour): with every turn more than ``RETURN_SECONDS`` after the other's, no return was held.

    Root cause: returned_address counted a block "in between" only when it was used within the last 30
    minutes (``RETURN_SECONDS``): the session's blocks (``ad``) showed home -> his /22 -> home -> his /22
    within two hours (``LEFT_SECONDS``), but each switch came more than 30 minutes after the one before;
    is_material_change found the same ASN, city, cookie and browser, so check_binding rebound each turn as a
    plain ``moved``.

    Fix: the session remembers its first return (``ar``: her return home, his block between); a second
    return within ``LEFT_SECONDS`` (his, to his /22) is two holders whatever the pauses. A session's two
    turns of each holder fit within two hours, as each comes within the idle hour of the other's."""
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_OTHER_22)
    log = _turns(clock, her, thief, turns=4, gap_minutes=gap_minutes, quantity=5)
    assert log[0][:3] == (200, 201, "placed") and log[0][3] == 200, log  # his first turn, her first return
    assert all(row[0] == 401 and row[1] == 401 and row[3] == 401 for row in log[1:]), log
    assert _sells(user) == 1
    assert _totp_step_up(her, user).status_code == 200
    assert her.get("/api/portfolio").status_code == 200
    assert thief.get("/api/portfolio").status_code == 401
    assert _sell(thief).status_code == 401 and _sells(user) == 1


@pytest.mark.xfail(
    strict=True,
    reason="a known limit (docs/step-up.md, round seventy-five): a copy's turn from a block new to the "
    "session is a first sight, like her laptop's first visit to the office; only her next return is held",
)
def test_a_copy_taking_each_turn_from_a_fresh_block_of_her_isp_places_one_sell_at_most(
    clock: Any, brokerage_customer: Any
) -> None:
    """Secure: as above, with the copy's residential proxy handing him a fresh OCN Tokyo /22 at each turn
    (his block, her block, another block of his, her block...): one sell at most. Measured: his second turn,
    from a block the session never used, is a plain move (no return: nothing to come back to) and sells;
    her return after it is the session's second return, held (see the next test). DBSC is the answer (the
    copy has no key to refresh its bound cookie)."""
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_OTHER_22)
    for ip in [IP_OCN_OTHER_22, *IP_OCN_POOL]:
        thief.defaults["REMOTE_ADDR"] = ip
        clock.shift(timedelta(minutes=31))
        _sell(thief, 5)
        clock.shift(timedelta(minutes=31))
        her.get("/api/portfolio")
    assert _sells(user) <= 1, _sells(user)


def test_held_a_copy_taking_each_turn_from_a_fresh_block_at_her_second_return(
    clock: Any, brokerage_customer: Any
) -> None:
    """What the fresh-block copy gets (the strict xfail above): two turns, two sells; her return after his
    second turn is the session's second return within two hours, held; her step-up renews the key, the
    copy's third turn is signed out and sells nothing."""
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_OTHER_22)
    codes = []
    for ip in [IP_OCN_OTHER_22, IP_OCN_POOL[0]]:
        thief.defaults["REMOTE_ADDR"] = ip
        clock.shift(timedelta(minutes=31))
        sold = _sell(thief, 5).status_code
        clock.shift(timedelta(minutes=31))
        codes.append((sold, her.get("/api/portfolio").status_code))
    assert codes == [(201, 200), (201, 401)], codes
    assert _totp_step_up(her, user).status_code == 200
    assert her.get("/api/portfolio").status_code == 200
    thief.defaults["REMOTE_ADDR"] = IP_OCN_POOL[1]
    clock.shift(timedelta(minutes=31))
    assert _sell(thief, 5).status_code == 401
    assert _sells(user) == 2


def test_held_the_same_turns_from_another_isp_in_her_city_at_his_second_turn(
    clock: Any, brokerage_customer: Any
) -> None:
    """The same copy on a clean KDDI line in Tokyo: his first turn is a material move, re-scored and
    allowed (one sell placed, 5 x 7203, under the re-scored session's lower limits); her return is re-scored
    and allowed; his second turn is re-scored and held at a step-up, which holds her too. Her step-up renews
    the key: the copy is signed out. Only one sell."""
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_KDDI_TOKYO)
    log = _turns(clock, her, thief, turns=3, gap_minutes=31, quantity=5)
    assert log[0][1] == 201 and all(row[0] == 401 and row[1] == 401 for row in log[1:]), log
    assert _sells(user) == 1
    assert _totp_step_up(her, user).status_code == 200
    assert her.get("/api/portfolio").status_code == 200
    assert thief.get("/api/portfolio").status_code == 401


@pytest.mark.parametrize("method", ["head", "options"])
def test_held_a_head_or_options_of_the_json_api_from_abroad_is_never_served(
    clock: Any, brokerage_customer: Any, method: str
) -> None:
    """The copy's first request from Singapore is a HEAD or an OPTIONS of /api/orders: no exemption, the
    session is re-scored there and ended or held (never served)."""
    her, user = _her(clock, brokerage_customer)
    clock.shift(60)
    thief = _copy(her, "198.51.100.10")
    answer = getattr(thief, method)("/api/orders")
    assert answer.status_code in (302, 401, 403), answer.status_code
    assert thief.get("/api/portfolio").status_code in (401, 403)
    assert _sell(thief).status_code in (401, 403)


def test_held_her_fresh_step_up_does_not_travel_with_the_copy_to_sign_her_out_everywhere(
    clock: Any, brokerage_customer: Any
) -> None:
    """She re-verifies with her code at home (fresh for five minutes); the infostealer copies the jar at
    once (the renewed key) and replays it a minute later from another OCN /22: the move drops the session's
    strong verification, so his "sign out everywhere else" asks for a factor, and his sell is an ordinary
    one (the step-up vouches for nothing there)."""
    her, user = _her(clock, brokerage_customer)
    clock.shift(60)
    assert _totp_step_up(her, user).status_code == 200
    assert _state(her).get("st") is not None
    thief = _copy(her, IP_OCN_OTHER_22)
    clock.shift(30)
    assert thief.get("/api/portfolio").status_code == 200
    assert _state(thief).get("st") is None and _state(thief).get("sm") is None
    ended = thief.post("/authguard/security/sessions/end-others/")
    assert ended.status_code == 302 and "reverify" in ended.url, ended
    assert not Notification.objects.filter(user=user, kind="sessions_ended").exists()


# -- what it costs her ------------------------------------------------------------------------------------


def test_cost_her_laptop_going_out_to_a_cafe_and_back_once_steps_up_once(
    clock: Any, brokerage_customer: Any
) -> None:
    """What the fix must keep: her laptop at home, at a café on another OCN /22 for 40 minutes (used at its
    start and end), home again, then staying home: one step-up at her return (the half-hour rule's
    documented cost), never a second one."""
    her, user = _her(clock, brokerage_customer)
    plan = [(IP_OCN_OTHER_22, 20), (IP_OCN_OTHER_22, 20), (IP_TOKYO, 20), (IP_TOKYO, 20), (IP_TOKYO, 20)]
    step_ups = _visits(clock, her, user, plan)
    assert len(step_ups) == 1 and _returns(step_ups) == 1, step_ups


def test_cost_her_laptop_to_the_cafe_twice_within_two_hours_steps_up_once_at_the_cafe(
    clock: Any, brokerage_customer: Any
) -> None:
    """Her laptop: home, the café (used once, then idle 40 minutes), home (idle 40 minutes), the café again,
    home again: each a turn after a long pause, as the copy's. Held at her first return home? No (the café
    was used 40 minutes before); held at her second visit to the café (the session's second return within
    two hours: a step-up there), then never again (she proved herself at both). Measured: one step-up."""
    her, user = _her(clock, brokerage_customer)
    plan = [(IP_OCN_OTHER_22, 40), (IP_TOKYO, 40), (IP_OCN_OTHER_22, 40), (IP_TOKYO, 40)]
    step_ups = _visits(clock, her, user, plan)
    assert len(step_ups) == 1 and _returns(step_ups) == 1, step_ups


@pytest.mark.parametrize("tether", [IP_DOCOMO, IP_AU_TETHER], ids=["docomo_region", "au_tokyo"])
@pytest.mark.parametrize("minutes", [2, 35], ids=["minutes", "idle"])
def test_cost_flaky_home_wifi_and_her_phones_tethering_on_another_network_at_most_once_per_block(
    clock: Any, brokerage_customer: Any, tether: str, minutes: int
) -> None:
    """Her home Wi-Fi (OCN) drops now and then and her laptop falls over to her phone's tethering on a
    mobile network (docomo, placed only to its 200 km region; or au, placed in Tokyo), and back, five times
    each: every few minutes, or after she left the laptop idle for 35 minutes each time. Each move to the
    other network is a material move, re-scored by the engine as any; the address-return rule asks her for
    her code once at each block at most (at home, back from a tethering block she had not proved herself
    at; at the tethering block, back to it after that), then never again in the session.

    Measured: every few minutes, two step-ups (home, then the tethering block; before this round a docomo
    tethering block, placed too coarsely to be held at, cost a step-up at every return home, five here);
    idle in between, one (at the tethering block, the session's second return). Not this rule's: the
    engine's own re-score of a move to the other network asks for her code too when it comes at an hour
    she never signed in at (``unusual_hour`` with ``device_new_network``: here, idle, from the third hour on).
    """
    her, user = _her(clock, brokerage_customer)
    plan = [(tether if n % 2 == 0 else IP_TOKYO, minutes) for n in range(10)]
    step_ups = _visits(clock, her, user, plan)
    assert _returns(step_ups) == (2 if minutes == 2 else 1), step_ups
    assert minutes != 2 or len(step_ups) == 2, step_ups
