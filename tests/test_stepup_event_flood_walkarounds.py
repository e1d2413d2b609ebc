"""Red team round thirty-two (a): the session and step-up changes of 4219f4f and 807a455.

``refused_where_posted`` books a step-up on the event of the context it is posted from (``se`` from the
scored context, one ``rescored`` event per other context, remembered as ``ep``); two browsers she vouched
for in a session are one (``places._same_browser``); a full browser list holds every new browser.

Each test not named ``test_held_...`` fails on 807a455 (the attack works). The ``test_held_...`` ones are
attempts the product withstood.

Fixed: the events of a pending session's step-ups are kept per context (``ep``, ``sessions.pending``), past
three contexts the step-up is refused (``step_up_too_many_places``), a state from before ``se`` keeps its
scored event before ``e`` moves, and a session from before ``bs`` lists the browser it leaves.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.conf import settings as django_settings

from authguard.models import LoginEvent

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, IP_TOKYO_2, totp_token, wrong_code
from .test_orders_copied_browser_os_walkarounds import UA_CHROME_MAC
from .test_sessions_browser_list_walkarounds import FILLERS
from .test_sessions_browser_release_walkarounds import _copy_of, _session_state
from .test_sessions_release_change_walkarounds import _her_session_copied
from .test_stepup_event_booking_walkarounds import _events, _her_request_held_by_the_copy

start = battery.start
clock = battery.clock

PORTFOLIO = "/api/portfolio"
UA_LINUX = FILLERS[0]  # Chrome on Linux: another browser (family|OS|device type) than the copy's Mac


def _edit_state(browser: Any, change: Any) -> None:
    """Rewrite the session's stored authguard state with ``change`` (a state an older release wrote)."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    key = browser.client.cookies[django_settings.SESSION_COOKIE_NAME].value
    session = store(session_key=key)
    data = session.load()
    state = dict(data["_authguard"])
    change(state)
    session["_authguard"] = state
    session.save()


def _html_post(browser: Any, path: str, *, ua: str, code: str = "") -> int:
    """A POST of the HTML step-up form (CSRF token included) with ``ua`` as the browser."""
    response = browser.client.post(
        path, {"csrfmiddlewaretoken": browser.token, "code": code}, HTTP_USER_AGENT=ua
    )
    return response.status_code


# -- findings ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_empty_step_up_forms_from_two_alternating_browsers_do_not_flood_her_events(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """Her request at home is held (the copy's Mac went first). The copy, from his one address, posts the
    HTML TOTP form forty times with an empty code, switching its User-Agent between Chrome on a Mac and
    Chrome on Linux at every post. ``refused_where_posted`` runs before the form is validated, so each POST
    is scored; ``posted_event_id`` remembers only the last context (``ep``), so every switch is "a new
    context" and writes one more ``rescored`` LoginEvent. An empty form verifies no code, so nothing counts
    a failure, no throttle or lock stops it. Now: forty events for forty empty posts from one address (her
    incident timeline, the console's re-check counts and the security page's recent sign-ins full of his
    probes; round thirty-one's own "forty posts wrote forty events" with one header toggled). Secure: a
    POST that posts no code writes no event, and/or the events recorded for this pending session are kept
    per context (a few at most for two contexts)."""
    _, copy, events, _ = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    before = len(_events(tanaka, events))
    answers = []
    for i in range(40):
        clock(0, hours=1.025 + i * 0.0005)
        ua = UA_CHROME_MAC if i % 2 else UA_LINUX
        answers.append(_html_post(copy, "/authguard/step-up/totp/", ua=ua))
    written = len(_events(tanaka, events)) - before
    outcome = (
        f"{written} rescored events written for 40 empty posts from one address, 2 user agents",
        answers,
    )
    assert written <= 5, outcome


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_step_up_posted_from_every_browser_in_turn_is_refused_after_three_places(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """The flood above with a new user agent at every post (Chrome of eight other systems): each post is a
    new context. The first three are recorded (one ``rescored`` event each); the fourth refuses the step-up
    (``step_up_too_many_places``): the pending session ends, and nothing more is written."""
    from authguard.sessions.pending import MAX_POSTED_CONTEXTS

    _, copy, events, _ = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    before = len(_events(tanaka, events))
    answers = []
    for i, ua in enumerate([UA_CHROME_MAC, *FILLERS]):
        clock(0, hours=1.025 + i * 0.0005)
        answers.append(_html_post(copy, "/authguard/step-up/totp/", ua=ua))
    written = _events(tanaka, events)[before:]
    outcomes = [e[2] for e in written]
    assert outcomes[:MAX_POSTED_CONTEXTS] == ["rescored"] * MAX_POSTED_CONTEXTS, (outcomes, answers)
    assert outcomes[MAX_POSTED_CONTEXTS:] == ["refused"], (outcomes, answers)
    assert "step_up_too_many_places" in LoginEvent.objects.get(pk=written[-1][0]).reasons
    assert copy.get(PORTFOLIO).status_code == 401 and not _session_state(copy)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_session_pending_across_the_upgrade_books_her_step_up_on_the_thiefs_event(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """A session held before 807a455 was deployed has no ``se`` (the scored event): ``scored_event_id``
    falls back to ``e``. Her request at home is held (the copy's Mac went first; the state is rewritten as
    the release before wrote it: no ``se``). After the deploy the copy posts one wrong guess from his
    address: scored there, recorded, ``point_at_event`` moves ``e`` to *his* event, and ``se`` is still
    absent, so ``scored_event_id`` now answers his event. Tanaka types her code at home (the scored
    context): ``_point_at(scored_event)`` points at his event and ``complete_step_up`` marks it
    ``step_up_passed`` (her "signed in" notice names his place, the backtest labels his context good), her
    own held event stays "never completed": round thirty-one's first finding, back for every session
    pending at the deploy (a pending session lives up to the idle timeout). Secure: ``point_at_event``
    keeps the scored event before it moves ``e`` (``state.setdefault("se", state.get("e"))``)."""
    home, copy, events, device = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    _edit_state(home, lambda state: (state.pop("se", None), state.pop("ep", None)))
    clock(0, hours=1.025)
    guess = copy.post("/authguard/api/step-up/totp", {"code": wrong_code(device)})
    assert guess.status_code == 400, guess.content
    clock(0, hours=1.03)
    assert home.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    after = _events(tanaka, events)
    outcome = ("events (pk, ip, outcome, category, backtest label):", after)
    assert not any(ip == IP_TOKYO_2 and o == "step_up_passed" for _, ip, o, *_ in after), outcome
    assert any(ip == IP_TOKYO and o == "step_up_passed" for _, ip, o, *_ in after), outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_session_from_before_the_browser_list_holds_her_return_after_the_copys_turn(
    clock: Any, tanaka: Any
) -> None:
    """A session signed in before 4219f4f has no ``bs`` (the browsers it showed): her Chrome on Windows,
    the browser it is bound to, is listed nowhere. The copy's Mac is re-scored and allowed (listed,
    unvouched); her next request at home is back in the browser the session left for another, but
    ``returned_browser`` finds her Windows Chrome not in the list: re-scored, allowed, not held, no event.
    The two take one more turn each unseen, and she is never asked to step up (which would rotate the key
    and shut the copy out); only the copy's second turn is held. Secure: the browser a session is bound to
    counts as shown (a state without ``bs`` is read with its bound ``br`` listed, or ``place_binding``
    lists the browser it leaves), so her return is held as on a session signed in after the upgrade."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    _edit_state(home, lambda state: state.pop("bs", None))
    clock(0, hours=1)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.02)
    hers = home.get(PORTFOLIO).status_code
    state = _session_state(home)
    outcome = (
        f"her return at home answered {hers}",
        "bs:",
        state.get("bs"),
        "events:",
        _events(tanaka, events),
    )
    assert hers == 401, outcome


# -- held ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_one_context_posting_empty_forms_writes_one_event(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: the same forty empty HTML posts from one context (his Mac only) write one event."""
    _, copy, events, _ = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    before = len(_events(tanaka, events))
    for i in range(40):
        clock(0, hours=1.025 + i * 0.0005)
        _html_post(copy, "/authguard/step-up/totp/", ua=UA_CHROME_MAC)
    assert len(_events(tanaka, events)) - before == 1, _events(tanaka, events)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_her_step_up_does_not_vouch_for_the_copys_browser_and_a_recopied_jar_is_held(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: the copy's Mac went first (listed, unvouched), her request at home was held, the copy posted
    a wrong guess from his Mac, and she steps up at home. Her step-up vouches for her Windows Chrome only.
    The infostealer copies her new jar (the rotated key); the copy's Mac is back in a browser the session
    left, not vouched: held (``session_in_two_browsers``), never "one browser" with hers."""
    home, copy, events, device = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    clock(0, hours=1.025)
    assert copy.post("/authguard/api/step-up/totp", {"code": wrong_code(device)}).status_code == 400
    clock(0, hours=1.03)
    assert home.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    assert home.get(PORTFOLIO).status_code == 200
    listed = dict((br, v) for br, v in _session_state(home)["bs"])
    assert listed.get("Chrome|Mac OS X|desktop") == 0, listed
    assert copy.get(PORTFOLIO).status_code != 200  # the old key: out
    clock(0, hours=1.05)
    recopied = _copy_of(home, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    assert recopied.get(PORTFOLIO).status_code == 401, _session_state(home)
    assert "session_in_two_browsers" in (LoginEvent.objects.filter(user=tanaka).latest("pk").reasons or "")


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_the_copys_relayed_step_up_vouches_his_browser_only_in_a_session_she_is_out_of(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: with one relayed code the copy steps up from his Mac (his own step-up: the Mac is vouched,
    the session's two vouched browsers are "one"). The step-up rotated the key: her browser holds the old
    one and is signed out, so no session is shared by her Windows Chrome and his Mac; a re-copy of her
    jar after she signs in again is a new session whose list has no Mac vouched."""
    home, copy, events, device = _her_request_held_by_the_copy(clock, tanaka, totp_factory)
    clock(0, hours=1.025)
    relayed = copy.post("/authguard/api/step-up/totp", {"code": totp_token(device)})
    assert relayed.status_code == 200, relayed.content
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.03)
    assert home.get(PORTFOLIO).status_code in (401, 403), "her old key still signed in"
    after = _events(tanaka, events)
    assert any(ip == IP_TOKYO_2 and o == "step_up_passed" for _, ip, o, *_ in after), after


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_a_verified_session_from_before_se_is_re_scored_with_its_own_scored_event(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD (migration): a *verified* session without ``se`` (signed in before 807a455): the copy's Mac
    goes first, her request is held: ``back_to_pending`` writes ``se``; the copy's wrong guess, then her
    step-up at home, book her own held event passed and his failed."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    _edit_state(home, lambda state: (state.pop("se", None), state.pop("ep", None)))
    device = totp_factory(tanaka)
    clock(0, hours=1)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.02)
    assert home.get(PORTFOLIO).status_code == 401
    assert isinstance(_session_state(home).get("se"), int)
    clock(0, hours=1.025)
    assert copy.post("/authguard/api/step-up/totp", {"code": wrong_code(device)}).status_code == 400
    clock(0, hours=1.03)
    assert home.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    after = _events(tanaka, events)
    assert not any(ip == IP_TOKYO_2 and o == "step_up_passed" for _, ip, o, *_ in after), after
    assert any(ip == IP_TOKYO and o == "step_up_passed" for _, ip, o, *_ in after), after
