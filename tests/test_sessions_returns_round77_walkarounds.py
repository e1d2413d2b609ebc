# ruff: noqa: F811  (fixtures re-used from the round seventy-five module)
"""Red team, round seventy-seven (held since): the second-return rule (``address_returns.returned_address``,
``ar``) against a copy of her whole jar that keeps her session alive from its own block between her visits
(docs/step-up.md, "Rounds sixty-two to sixty-five, seventy-five and seventy-seven").

Her visits came about four hours apart and his turns 31 minutes after each, his block kept alive with a read
every 50 minutes: none of her visits was a return (her block left more than two hours before), each of his a
first return more than two hours after the last, which ``ar`` (then remembered two hours) never made a
second: four sells. Held since: her visit back at her block, the session kept alive meanwhile from one she
never proved herself at, is the session's first return, and a second return to a block she never proved
herself at is held at any time in the session (left however long ago): his next request after her visit.
Known limit (strict xfail): the same copy handed a fresh block of her ISP at each turn. Costs measured
(``test_cost_*``): her laptop's working day, short trips to a café, trips hours apart, her phone's
tethering morning and evening.

Real sign-ins through the demo's JSON API, the real middleware and session rules, the GeoIP test databases
of round seventy-five (extra OCN Tokyo /22s), time_machine for time; no mocks.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from authguard.models import LoginEvent, Notification
from authguard.testing import GeoNetwork, write_geoip_databases
from demo_site.brokerage.models import Order

from .conftest import IP_DOCOMO, IP_TOKYO, TEST_NETWORKS
from .test_sessions_address_returns_walkarounds import OCN_TOKYO
from .test_sessions_copy_same_isp_walkarounds import _copy, _her
from .test_sessions_copy_turns_walkarounds import (  # noqa: F401  (fixtures re-used)
    IP_AU_TETHER,
    IP_OCN_OTHER_22,
    IP_OCN_POOL,
    _returns,
    _sell,
    _totp_step_up,
    _visits,
    clock,
    rt75_geoip,
    rt75_geoip_dir,
)

pytestmark = [pytest.mark.django_db]

IP_OCN_COARSE_NET, IP_OCN_COARSE = "203.0.96.0/24", "203.0.96.7"  # an OCN line placed only to 500 km
DOCOMO_POOL = ["203.0.64.30", "203.0.68.30"]  # docomo's CGNAT exits in two /22s, placed to 200 km


def _sells(user: Any) -> int:
    return Order.objects.filter(account__user=user, side="sell").count()


def _her_visit(clock: Any, her: Any) -> list[int]:
    """She uses the portal for ten minutes (three reads, five minutes apart)."""
    codes = []
    for _ in range(3):
        codes.append(her.get("/api/portfolio").status_code)
        clock.shift(timedelta(minutes=5))
    return codes


def test_a_copy_that_keeps_her_session_alive_from_its_block_sells_after_each_of_her_visits_never_held(
    clock: Any, brokerage_customer: Any
) -> None:
    """**Secure** (docs/step-up.md, "Taking turns gives it away"): a copy of her jar taking turns with her
    live session from another block is held at his second turn at the latest ("a copy taking turns with
    longer pauses at his second turn"); her step-up then renews the key and signs the copy out. The docs
    rest this on "each holder's turn comes within the session's idle hour of the other's, so the second
    return always falls within [two hours]".

    **Attack** (the thief, with her whole jar, her exact UA, a clean OCN Tokyo line on another /22): she
    checks the portal three times a day, ten minutes each, about four hours apart (morning, lunch, evening).
    31 minutes after each of her visits he reads her portfolio and sells 5 x 7203; in between he keeps *her*
    session alive himself with a read every 50 minutes from his block (the idle hour never runs out, so she
    is never signed out either). Her turns are never returns (her block was left more than two hours ago:
    ``LEFT_SECONDS``, "her laptop home in the evening"); his are first returns (his block was left minutes
    before her visit; hers used 31 minutes ago), each more than two hours after the last, so ``ar`` never
    makes one a second return. Measured: four turns, four sells placed (20 Toyota, about ¥57,000 here; with
    more per turn the order guard's unheld budget is the only bound, as in round seventy-five), no request
    of either held or re-scored, no login event, no notice; the copy lives until the session's absolute
    lifetime (a day), and she is never asked for her code.

    **Root cause**: ``authguard/sessions/address_returns.py:returned_address``: a block left more than
    ``LEFT_SECONDS`` ago is never returned to, and a return is remembered (``ar``) only for ``LEFT_SECONDS``.
    Both windows assume each holder acts at most an idle hour after the other; but the *copy's* keep-alive
    requests reset the idle clock, so her turns can be hours apart while the session never idles, and
    neither window ever sees two turns of each.

    **Fix**: measure from the session's life, not from the idle hour: remember returns (``ar``) for the
    session's absolute lifetime (or count them: a second return to a block she never proved herself at,
    at any time in the session, is held), or treat a return to a block left more than ``LEFT_SECONDS`` ago
    as a return when the session was active all that time at one block she never proved herself at (a
    laptop at the office all day is the only legitimate shape; she proved herself nowhere there, so one
    step-up there at most, then never again). DBSC ends it for good (the copy has no key).

    **Held since**: her visit back at her block hours after she left it, the session kept alive meanwhile
    from his block (one she never proved herself at), is the session's first return (``ar``), and a second
    return to a block she never proved herself at is held at any time in the session: his read after her
    second visit is held (one sell, his first turn's); see the next tests for her step-up and his waiting
    out a longer visit of hers.
    """
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_OTHER_22)
    log = []
    for _ in range(4):
        mine = _her_visit(clock, her)
        clock.shift(timedelta(minutes=26))  # her last read was 31 minutes ago
        seen = thief.get("/api/portfolio").status_code
        sold = _sell(thief, 5)
        log.append((mine, seen, sold.status_code, sold.json().get("status")))
        for _ in range(4):  # keeps the session alive from his block, 3 h 20 min
            clock.shift(timedelta(minutes=50))
            thief.get("/api/portfolio")
    events = list(LoginEvent.objects.filter(user=user).values_list("reasons", flat=True))
    notices = list(Notification.objects.filter(user=user).values_list("kind", flat=True))
    assert _sells(user) <= 1, (
        f"the copy sold at each of {_sells(user)} turns, never held: {log}; "
        f"last login events {events[-2:]}, notices {notices}"
    )


def test_held_a_copy_keeping_her_session_alive_is_held_when_her_visits_are_under_two_hours_apart(
    clock: Any, brokerage_customer: Any
) -> None:
    """The same copy, with her visits 81 minutes apart (10 minutes of use, his turn 31 minutes after, 40
    more minutes): held at his second turn (one sell), as documented."""
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_OTHER_22)
    for _ in range(3):
        _her_visit(clock, her)
        clock.shift(timedelta(minutes=26))
        _sell(thief, 5)
        clock.shift(timedelta(minutes=40))
        thief.get("/api/portfolio")
    assert _sells(user) == 1


def test_cost_her_laptop_day_home_train_office_lunch_cafe_train_home_steps_up_as_documented(
    clock: Any, brokerage_customer: Any
) -> None:
    """A real customer's working day with one laptop session kept alive (a read every 20-30 minutes):
    home Wi-Fi (OCN, signed in), her phone's docomo tethering on the train (placed only to its region), the
    office (another OCN /22) all morning, a café at lunch (a third OCN /22), the office all afternoon, the
    train home, home. Documented cost: one step-up back at the office from the café within half an hour
    (a first return), nothing for returns after hours away (train, home). Measured: one by this rule; and
    one more that is the engine's own re-score, not this rule's (the evening train's docomo tethering at an
    hour she never signed in at: ``device_new_network`` with ``unusual_hour``, as docs/step-up.md says)."""
    her, user = _her(clock, brokerage_customer)
    train, office, cafe = IP_DOCOMO, IP_OCN_OTHER_22, IP_OCN_POOL[0]
    plan = [(IP_TOKYO, 20), (train, 20), (train, 20), *[(office, 30)] * 7, (cafe, 20), (cafe, 20)]
    plan += [*[(office, 30)] * 10, (train, 20), (train, 20), (IP_TOKYO, 20), (IP_TOKYO, 30)]
    step_ups = _visits(clock, her, user, plan)
    assert _returns(step_ups) == 1, step_ups
    assert all("session_at_two_addresses" in r or "unusual_hour" in r for r in step_ups), step_ups


# -- held since: the edges of the fix --------------------------------------------------------------------


def _keep_alive(clock: Any, thief: Any, reads: int = 4) -> list[int]:
    """The copy keeps the session alive from its block: a read every 50 minutes."""
    codes = []
    for _ in range(reads):
        clock.shift(timedelta(minutes=50))
        codes.append(thief.get("/api/portfolio").status_code)
    return codes


def test_held_the_copy_keeping_her_session_alive_at_his_first_request_after_her_visit_and_signed_out(
    clock: Any, brokerage_customer: Any
) -> None:
    """His first turn (a block new to the session) sells, as any first sight; his keep-alive reads pass;
    her visit four hours after the last is the session's first return (nothing asked of her); his next
    request from his block, 31 minutes after her, is the second return: held, and so is his sell. Her next
    visit is asked for her code; her step-up renews the session key and the copy is signed out."""
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_OTHER_22)
    _her_visit(clock, her)
    clock.shift(timedelta(minutes=26))
    assert _sell(thief, 5).status_code == 201
    assert _keep_alive(clock, thief) == [200] * 4
    assert _her_visit(clock, her) == [200] * 3
    clock.shift(timedelta(minutes=26))
    assert thief.get("/api/portfolio").status_code == 401
    assert _sell(thief, 5).status_code == 401
    reasons = LoginEvent.objects.filter(user=user).latest("pk").reasons
    assert "session_at_two_addresses" in reasons, reasons
    clock.shift(timedelta(minutes=30))
    assert her.get("/api/portfolio").status_code == 401
    assert _totp_step_up(her, user).status_code == 200
    assert her.get("/api/portfolio").status_code == 200
    assert thief.get("/api/portfolio").status_code == 401
    assert _sell(thief, 5).status_code == 401 and _sells(user) == 1


def test_held_a_copy_that_waits_out_her_visit_of_more_than_two_hours_at_his_return(
    clock: Any, brokerage_customer: Any
) -> None:
    """The same copy, with her second visit lasting two and a half hours (a read every five minutes): his
    block, left before her visit, is more than two hours behind him when he comes back 31 minutes after
    her last read (no return under the two-hour rule, as her laptop home in the evening). A second return
    to a block she never proved herself at is held however long ago it was left: held, one sell."""
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_OTHER_22)
    _her_visit(clock, her)
    clock.shift(timedelta(minutes=26))
    assert _sell(thief, 5).status_code == 201
    _keep_alive(clock, thief)
    assert set(sum((_her_visit(clock, her) for _ in range(10)), [])) == {200}
    clock.shift(timedelta(minutes=26))
    assert thief.get("/api/portfolio").status_code == 401
    assert _sell(thief, 5).status_code == 401 and _sells(user) == 1


@pytest.mark.xfail(
    strict=True,
    reason="a known limit (docs/step-up.md, rounds seventy-five and seventy-seven): a copy's turn from a "
    "block new to the session is a first sight; kept alive from it, her visits hours later are no second "
    "return at her own block (her laptop home in the evening); DBSC is the answer",
)
def test_a_copy_keeping_her_session_alive_from_a_fresh_block_at_each_turn_sells_twice_at_most(
    clock: Any, brokerage_customer: Any
) -> None:
    """Known limit, measured: the copy of the first test handed a fresh clean OCN Tokyo /22 at each turn by
    its residential proxy (three here). Each turn is a first sight (nothing to come back to), each of her
    visits back at her block more than two hours after she left it (never held there: her laptop home in the
    evening), and his keep-alive reads come back to the block he is at: one sell a turn, three of three, no
    step-up (round seventy-five's "two sells at most" assumed her visits within two hours). Bounded by the
    fresh /22s of her ISP in her city his proxy hands him, the session's day and the order guard's unheld
    budget; DBSC ends it (the copy has no key)."""
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_OTHER_22)
    for ip in [IP_OCN_OTHER_22, *IP_OCN_POOL]:
        _her_visit(clock, her)
        clock.shift(timedelta(minutes=26))
        thief.defaults["REMOTE_ADDR"] = ip
        _sell(thief, 5)
        _keep_alive(clock, thief)
    assert _sells(user) <= 2, _sells(user)


@pytest.fixture(scope="session")
def coarse_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Round seventy-five's OCN Tokyo lines, an OCN line in Tokyo GeoIP places only to 500 km, and docomo's
    CGNAT exits in two /22s placed only to its 200 km region (her phone's tethering)."""
    coarse = GeoNetwork(IP_OCN_COARSE_NET, **{**OCN_TOKYO, "accuracy_km": 500})
    extra = [GeoNetwork(f"203.0.{n}.0/24", **OCN_TOKYO) for n in (88, 92, 99)]
    docomo = {**OCN_TOKYO, "accuracy_km": 200, "asn": 9605, "as_org": "NTT DOCOMO"}
    extra += [GeoNetwork(f"{ip.rsplit('.', 1)[0]}.0/24", **docomo) for ip in DOCOMO_POOL]
    return write_geoip_databases(tmp_path_factory.mktemp("rt77"), [*TEST_NETWORKS, *extra, coarse])


@pytest.mark.xfail(
    strict=True,
    reason="a known limit (docs/step-up.md, round seventy-seven): a block she never proved herself at, left "
    "more than two hours ago, is held on return only when placed within 150 km (a carrier's tethering on "
    "the train morning and evening is never asked); DBSC is the answer",
)
def test_a_copy_on_a_coarsely_placed_block_that_waits_out_her_long_visits_sells_once_at_most(
    clock: Any, brokerage_customer: Any, settings: Any, coarse_geoip_dir: Path
) -> None:
    """Known limit, measured: the copy keeping her session alive from an OCN line GeoIP places only to
    500 km, and two of her visits lasting two and a half hours each (which he waits out, 31 minutes after
    her last read): his return after each is to a block left more than two hours ago and not placed
    precisely, so not held: a sell after each such visit (three here: his first turn and two), held at his
    first request after a visit of hers shorter than two hours. A gamble for him: guessing wrong, he is held
    and she is asked at her next visit."""
    settings.AUTHGUARD_GEOIP_PATH = str(coarse_geoip_dir)
    her, user = _her(clock, brokerage_customer)
    thief = _copy(her, IP_OCN_COARSE)
    for visits in [1, 10, 10, 1]:
        for _ in range(visits):
            _her_visit(clock, her)
        clock.shift(timedelta(minutes=26))
        _sell(thief, 5)
        _keep_alive(clock, thief)
    assert _sells(user) <= 1, _sells(user)


# -- what it costs her ------------------------------------------------------------------------------------

CAFE = IP_OCN_POOL[0]


def _step_ups_at(clock: Any, her: Any, user: Any, plan: list[tuple[str, int]]) -> list[tuple[str, bool]]:
    """:func:`_visits`, with where each step-up was asked for and whether this rule asked for it."""
    where = []
    for ip, minutes in plan:
        where += [(ip, "session_at_two_addresses" in r) for r in _visits(clock, her, user, [(ip, minutes)])]
    return where


@pytest.mark.parametrize("trips", [2, 3])
def test_cost_short_trips_to_a_cafe_hours_apart_step_up_once_at_home_and_once_at_the_cafe(
    clock: Any, brokerage_customer: Any, trips: int
) -> None:
    """Her laptop at home (where she signed in), to a café on another OCN /22 for 20 minutes (used at its
    start and end), home, the session kept alive at home for three hours, and again. The first return home,
    the café used within the half hour, asks her at home (round sixty-five's cost); her next visit to the
    café is a second return to a block she never proved herself at: asked there, once; then never again
    (she proved herself at both). Measured: two step-ups, however many trips; before this round one at
    home at every trip (two, three)."""
    her, user = _her(clock, brokerage_customer)
    trip = [(CAFE, 20), (CAFE, 20), *[(IP_TOKYO, 20)] * 9]
    assert _step_ups_at(clock, her, user, trip * trips) == [(IP_TOKYO, True), (CAFE, True)]


def test_cost_trips_to_a_cafe_hours_apart_with_long_pauses_step_up_once_at_the_cafe(
    clock: Any, brokerage_customer: Any
) -> None:
    """Her laptop to the café and back with 40 idle minutes each way (no return within the half hour), the
    trips four hours apart: the first return home is the session's first (nothing asked); her second visit
    to the café is a second return to a block she never proved herself at, asked there once, then never
    again. Measured: one step-up, at the café; before this round none (the cost of the rule)."""
    her, user = _her(clock, brokerage_customer)
    trip = [(CAFE, 40), (IP_TOKYO, 40), *[(IP_TOKYO, 30)] * 6]
    assert _step_ups_at(clock, her, user, trip * 3) == [(CAFE, True)]


def test_cost_a_day_at_the_office_and_home_in_the_evening_is_never_held_by_this_rule(
    clock: Any, brokerage_customer: Any
) -> None:
    """Her laptop from home on the train (her phone's docomo tethering) to the office all day, the train
    home, home: her evening at home is a return through blocks she never proved herself at, the session's
    first (noted, nothing asked). Measured: no step-up of this rule (the engine's own re-score of the
    evening train at an hour she never signed in at asks once, as documented)."""
    her, user = _her(clock, brokerage_customer)
    plan = [(IP_DOCOMO, 20), (IP_DOCOMO, 20), *[(IP_OCN_OTHER_22, 30)] * 16, (IP_DOCOMO, 20)]
    plan += [(IP_DOCOMO, 20), (IP_TOKYO, 20), (IP_TOKYO, 30)]
    assert [by_this_rule for _, by_this_rule in _step_ups_at(clock, her, user, plan)] == [False]


def test_cost_her_laptop_day_with_her_tethering_placed_in_tokyo_morning_and_evening_steps_up_there_once(
    clock: Any, brokerage_customer: Any
) -> None:
    """Round seventy-seven's working day with her phone's tethering on au (placed in Tokyo within 20 km,
    not a carrier's region as docomo's): one step-up back at the office from the café (a first return within
    the half hour), and on the evening train the au block, left in the morning, is a second return to a
    block she never proved herself at: asked there (the engine asks there too, a new network at an hour she
    never signed in at). Home in the evening nothing. Measured: two step-ups, both with this rule's reason
    (before this round the same two, the evening one the engine's alone; at an hour she signs in at, this
    rule's is one more)."""
    her, user = _her(clock, brokerage_customer)
    office, tether = IP_OCN_OTHER_22, IP_AU_TETHER
    plan = [(IP_TOKYO, 20), (tether, 20), (tether, 20), *[(office, 30)] * 7, (CAFE, 20), (CAFE, 20)]
    plan += [*[(office, 30)] * 10, (tether, 20), (tether, 20), (IP_TOKYO, 20), (IP_TOKYO, 30)]
    assert _step_ups_at(clock, her, user, plan) == [(office, True), (tether, True)]


def test_cost_her_phones_tethering_whose_carrier_exits_alternate_two_blocks_hours_after_a_return(
    clock: Any, brokerage_customer: Any, settings: Any, coarse_geoip_dir: Path
) -> None:
    """Her laptop home, to the café and back (the session's first return, nothing asked), home three hours,
    then on her phone's docomo tethering for an hour whose CGNAT exits alternate between two /22s (placed
    only to the carrier's region) every ten minutes. The engine asks at the first exit block (a new network,
    as before this round), which proves her there; back at the second exit block is a second return to a
    block she never proved herself at: asked once there, then never again. Measured: two step-ups, the
    second this rule's (before this round only the engine's: the first return was more than two hours old;
    within two hours of it the same two)."""
    settings.AUTHGUARD_GEOIP_PATH = str(coarse_geoip_dir)
    her, user = _her(clock, brokerage_customer)
    plan = [(CAFE, 40), (IP_TOKYO, 40), *[(IP_TOKYO, 30)] * 6, *[(DOCOMO_POOL[n % 2], 10) for n in range(6)]]
    assert _step_ups_at(clock, her, user, plan) == [(DOCOMO_POOL[0], False), (DOCOMO_POOL[1], True)]
