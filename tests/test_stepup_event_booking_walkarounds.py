"""Red team round thirty-one (a): the step-up's events after 4219f4f (``refused_where_posted`` records every
step-up posted away from the pending login's scored context as a ``rescored`` event and points ``e`` at it).

Each test not named ``test_held_...`` failed on 4219f4f. Fixed: a step-up from the scored context books the
scored event (``sessions.pending.scored_event_id``), one event per context a step-up is posted from, and a
method the user lacks is answered before anything is scored or recorded.
"""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import LoginEvent
from authguard.risk import backtest
from authguard.risk.event_categories import category_of

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, IP_TOKYO_2, totp_token, wrong_code
from .test_orders_copied_browser_os_walkarounds import UA_CHROME_MAC
from .test_sessions_browser_release_walkarounds import _copy_of, _session_state
from .test_sessions_release_change_walkarounds import _her_session_copied

start = battery.start
clock = battery.clock

PORTFOLIO = "/api/portfolio"


def _events(user: Any, since: int) -> list[tuple[Any, ...]]:
    return [
        (e.pk, e.ip, e.outcome, category_of(e).code, backtest.label(e))
        for e in LoginEvent.objects.filter(user=user).order_by("pk")[since:]
    ]


def _her_request_held_by_the_copy(clock: Any, tanaka: Any, totp_factory: Any) -> tuple[Any, Any, int, Any]:
    """Tanaka (Chrome 131 on Windows, home) is signed in; an hour later the thief replays her jar in his
    Chrome on a Mac from another address of her /24 (re-scored, allowed). Her next request at home is back
    in a browser the session left for another: held (``session_in_two_browsers``), scored at home."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    device = totp_factory(tanaka)
    clock(0, hours=1)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.02)
    assert home.get(PORTFOLIO).status_code == 401
    held = _events(tanaka, events)
    assert [(ip, outcome) for _, ip, outcome, *_ in held] == [(IP_TOKYO, "rescored")], held
    assert _session_state(home)["sc"]["ip"] == IP_TOKYO
    return home, copy, events, device


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_thiefs_wrong_guess_is_not_marked_passed_by_her_step_up_where_she_was_held(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """Her request at home is held (the copy's Chrome on a Mac went first: two browsers). The copy sees its
    own next request answered 401 and posts one wrong TOTP guess from his address: scored there and
    recorded as a ``rescored`` event, ``e`` now points at it, and the guess marks it ``step_up_failed``.
    Tanaka, on the step-up page at home, types her code: she is in the very context the re-score was scored
    in (``sc``), so no event is written and ``e`` is left where the thief put it: ``complete_step_up``
    marks the thief's event ``step_up_passed`` (and sends her the "signed in" notice for his place). Now:
    the console shows his address as "session re-checked, passed step-up", the backtest labels his context
    ``good``, his failed guess is gone, and her own held event stays "step-up never completed". Secure: her
    step-up in the scored context marks that context's own event passed; the thief's event keeps
    ``step_up_failed`` (``refused_where_posted``: on ``same``, point ``e`` back at the scored event)."""
    home, copy, events, device = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    clock(0, hours=1.025)
    guess = copy.post("/authguard/api/step-up/totp", {"code": wrong_code(device)})
    assert guess.status_code == 400, guess.content
    clock(0, hours=1.03)
    assert home.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    assert home.get(PORTFOLIO).status_code == 200
    after = _events(tanaka, events)
    thief = [e for e in after if e[1] == IP_TOKYO_2]
    hers = [e for e in after if e[1] == IP_TOKYO]
    outcome = ("events (pk, ip, outcome, category, backtest label):", after)
    assert thief and all(o == "step_up_failed" for _, _, o, *_ in thief), outcome
    assert all(label != "good" for *_, label in thief), outcome
    assert any(o == "step_up_passed" for _, _, o, *_ in hers), outcome


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_thiefs_post_without_a_code_is_not_marked_passed_by_her_step_up(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """The same, the thief without even a guess: a POST to the recovery-code step-up (Tanaka has none:
    ``method_unavailable``) is scored and recorded before the method is checked, and ``e`` points at his
    event; nothing marks it failed and no throttle counts it. Her step-up at home then marks his event
    ``step_up_passed``. Secure: as above; and a POST that cannot verify anything moves no ``e``."""
    home, copy, events, device = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    clock(0, hours=1.025)
    probe = copy.post("/authguard/api/step-up/recovery-code", {"code": "x"})
    assert probe.status_code == 400, probe.content
    clock(0, hours=1.03)
    assert home.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    after = _events(tanaka, events)
    outcome = ("events (pk, ip, outcome, category, backtest label):", after)
    assert not any(ip == IP_TOKYO_2 and o == "step_up_passed" for _, ip, o, *_ in after), outcome
    assert any(ip == IP_TOKYO and o == "step_up_passed" for _, ip, o, *_ in after), outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_step_up_posts_that_verify_nothing_do_not_flood_her_events(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """The copy of a held session posts the step-up endpoint of a method Tanaka does not have, forty times
    from his one address (not the re-score's context, so each is scored anew). Each is scored and
    written as a ``rescored`` LoginEvent *before* the method check refuses it, nothing throttles it (no
    factor was tried), and each repoints ``e``. Now: one LoginEvent per POST, her incident timeline and
    the console's re-check counts flooded with the thief's probes. Secure: a POST that cannot verify a
    factor (method unavailable, no code) writes no event, or repeats of one context reuse its event."""
    _, copy, events, _ = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    before = len(_events(tanaka, events))
    answers = []
    for i in range(40):
        clock(0, hours=1.025 + i * 0.0005)
        answers.append(copy.post("/authguard/api/step-up/recovery-code", {"code": "x"}).status_code)
    written = len(_events(tanaka, events)) - before
    outcome = (f"{written} events written for 40 probes from his one address", answers)
    assert written <= 5, outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_her_step_up_at_home_after_the_copy_was_held_marks_her_event_only(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD (the customer's side): the copy's request is the one held (her Chrome, then his Mac, then hers:
    she is held first, steps up; then the copy is held). Her step-up at home is recorded once and marked
    passed; the copy's re-score keeps ``rescored`` (never passed); nothing is counted twice."""
    home, copy, events, device = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    clock(0, hours=1.021)
    assert home.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    assert home.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.03)
    assert copy.get(PORTFOLIO).status_code != 200
    after = _events(tanaka, events)
    passed = [e for e in after if e[2] == "step_up_passed"]
    assert len(passed) == 1 and passed[0][1] == IP_TOKYO, after


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_the_thiefs_relayed_step_up_is_not_recorded_as_hers_at_home(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """The copy (Chrome on a Mac, another address of her /24) goes first, switches to a Linux Chrome and
    back to the Mac: back in a browser it left, held (``session_in_two_browsers``), scored at *his*
    address (``sc``). Tanaka's next request at home finds the step-up page; she mistypes her code once:
    scored at home, recorded as a ``rescored`` event, ``e`` points at it, marked ``step_up_failed``. The
    thief then posts the one code he relayed from her, from the held context (his address, his Mac): that
    is ``sc``, so nothing is written and ``complete_step_up`` marks *her home* event ``step_up_passed``.
    The key rotates and she is out. Now: the incident timeline says the session was re-checked and passed
    its step-up at her home address with her Windows Chrome, his held event ("session re-checked, step-up
    never completed") is the only trace of his address, and the backtest labels her home context ``good``
    for a takeover. Secure: the step-up that passes marks the event of the context it was posted in (his
    held re-score: ``step_up_passed`` at 203.0.113.20); her mistyped attempt stays ``step_up_failed``."""
    from .test_sessions_browser_list_walkarounds import FILLERS

    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    device = totp_factory(tanaka)
    clock(0, hours=1)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.001)
    assert _copy_of(copy, ip=IP_TOKYO_2, ua=FILLERS[0]).get(PORTFOLIO).status_code == 200
    clock(0, hours=1.002)
    assert copy.get(PORTFOLIO).status_code == 401  # held at his address
    assert _session_state(copy)["sc"]["ip"] == IP_TOKYO_2
    clock(0, hours=1.02)
    assert home.get(PORTFOLIO).status_code == 401
    typo = home.post("/authguard/api/step-up/totp", {"code": wrong_code(device)})
    assert typo.status_code == 400, typo.content
    clock(0, hours=1.03)
    relayed = copy.post("/authguard/api/step-up/totp", {"code": totp_token(device)})
    assert relayed.status_code == 200, relayed.content
    assert copy.get(PORTFOLIO).status_code == 200
    after = _events(tanaka, events)
    outcome = ("events (pk, ip, outcome, category, backtest label):", after)
    assert not any(ip == IP_TOKYO and o == "step_up_passed" for _, ip, o, *_ in after), outcome
    assert any(ip == IP_TOKYO_2 and o == "step_up_passed" for _, ip, o, *_ in after), outcome
