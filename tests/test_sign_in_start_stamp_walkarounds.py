"""Sign-ins in flight against the endings of an account's sessions (the ending mark,
``records.unless_ended_since``), attacked with the thief's phished password and a script (red team, rounds
fifty-two and fifty-seven): an ending is measured from the sign-in's start (``records.note_sign_in_started``),
whichever door signed in (the JSON login, a portal's own ``login()``, the token API and its parked step-up).

Another node's ending (the desk's lock) is run from inside his request through a database execute hook
(Django's ``connection.execute_wrapper``) in a context of its own (``contextvars.copy_context``), as on
another node: the hook fires at the ``INSERT`` of his login event, the first statement after the login
flow's last look at the lock (``_locked_after_check``, from the evidence the scoring read), or at the
``INSERT`` of his parked token login's record (``authguard.drf._park``).
"""

from __future__ import annotations

import contextvars
import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model, login
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from authguard.drf import PARKED_KEY, pending_login
from authguard.login import lockout
from authguard.models import AccountLock, SessionRecord

from .conftest import IP_DOCOMO, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, OrderApi, totp_token


@csrf_exempt
def portal_own_login(request: HttpRequest) -> JsonResponse:
    """A portal's own sign-in (a magic link, its SSO callback): it checks the credential itself and calls
    Django's ``login()`` with a backend, never ``authenticate()`` (docs/integration.md: "Every login through
    Django's ``authenticate()``/``login()`` is scored")."""
    body = json.loads(request.body or b"{}")
    user = get_user_model()._default_manager.filter(username=body.get("username")).first()
    if user is None or not user.check_password(body.get("password", "")):
        return JsonResponse({"status": "invalid"}, status=400)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"status": "signed_in"})


#: The demo's URLs with the token API (tests.drf_urlconf) and a portal's own sign-in view.
urlpatterns = [
    path("portal/own-login", portal_own_login),
    path("", include("tests.drf_urlconf")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls(__name__)]

PASSWORD = "correct horse battery"


class _At:
    """Runs ``then`` once, right before the first statement ``when(sql)`` accepts (by default the first
    ``INSERT`` into the login events table)."""

    def __init__(self, then: Callable[[], None], when: Callable[[str], bool] | None = None) -> None:
        self.then: Callable[[], None] | None = then
        self.when = when or _login_event

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.then is not None and self.when(sql):
            then, self.then = self.then, None
            contextvars.copy_context().run(then)  # another node: not this request's context
        return execute(sql, params, many, context)


def _login_event(sql: str) -> bool:
    return sql.lstrip().upper().startswith("INSERT") and "loginevent" in sql


def _parking_record(sql: str) -> bool:
    """The ``INSERT`` of the parked token login's session record (``authguard.drf._park``)."""
    text = sql.lstrip().upper()
    if not (text.startswith("INSERT") and "SESSIONRECORD" in text):
        return False
    return any(frame.function == "_park" for frame in inspect.stack(context=0))


def _desk(alice: Any) -> Callable[[], None]:
    from .console_data import staff_user

    desk = staff_user("desk", perms=("authguard.contain_account",))
    return lambda: lockout.lock(alice, by=desk, reason="customer reports a sign-in she did not make")


def _thief_signs_in_while(the_ending: Callable[[], None]) -> tuple[OrderApi, Any]:
    thief = OrderApi(REMOTE_ADDR=IP_TOKYO)
    hook = _At(the_ending)
    with connection.execute_wrapper(hook):
        answer = thief.post("/api/login", {"username": "alice", "password": PASSWORD})
    assert hook.then is None, "the ending ran inside his sign-in"
    return thief, answer


def test_a_sign_in_held_up_by_a_long_ending_does_not_outlive_the_desks_lock(
    user_factory: Any, clock: Any
) -> None:
    """Secure: a browser sign-in whose lock check passed before the desk's lock committed must not keep a
    session on the contained account, however long the lock's transaction held it up.

    Means: her password (phished) and his script signing in again and again (the engine allows it from her
    city). Steps: the desk's containment lock starts (``note_ended`` stamps the mark at T0) while one of his
    sign-ins is past the flow's lock check; under PostgreSQL his login event's ``INSERT`` (a foreign key to
    the user row: ``FOR KEY SHARE``) waits for the ending's ``FOR UPDATE`` on that row until the ending
    commits. An ending lasting more than ``ending_skew_seconds()`` (14 s: the ending deletes every session
    from the store one by one, and he left thousands of pending sign-ins behind, each a record) lets his
    sign-in stamp its start (``state["t"]``, after the scoring) more than 14 s after the mark: the mark is
    read as an ending *before* his sign-in, and his session, recorded after the ending read the records,
    lives on. Gain: a signed-in session on the contained account (the browser middleware never looks at
    the lock). The passkey sign-in measures from its lock check (``checked_at``, round fifty-one), the
    token login from its start; the password sign-in measures from after its scoring."""
    alice = user_factory("alice")
    lock = _desk(alice)

    def the_desk_locks_for_fifteen_seconds() -> None:
        lock()
        clock.shift(15)  # the ending's transaction, for which his INSERT waited

    thief, answer = _thief_signs_in_while(the_desk_locks_for_fifteen_seconds)
    assert AccountLock.objects.get(user=alice).is_locked
    portfolio = thief.get("/api/portfolio")
    assert portfolio.status_code != 200, (
        f"his sign-in ({answer.json()['status']}) outlived the desk's lock: {portfolio.content[:120]!r}"
    )


def test_held_a_sign_in_racing_a_short_ending_is_ended(user_factory: Any, clock: Any) -> None:
    alice = user_factory("alice")
    lock = _desk(alice)

    def the_desk_locks() -> None:
        lock()
        clock.shift(5)

    thief, answer = _thief_signs_in_while(the_desk_locks)
    assert answer.json()["status"] == "denied", answer.content
    assert thief.get("/api/portfolio").status_code != 200


def test_held_her_phone_sign_in_twenty_seconds_after_her_reset_stays_signed_in(
    user_factory: Any, clock: Any
) -> None:
    """Held (the opposite cost): her reset on her PC ends every session (the mark, T0); her own sign-in on
    her phone 20 s later, beyond ``ending_skew_seconds()``, is not read as a race and stays signed in."""
    alice = user_factory("alice")
    new = "her own better password 2026"
    alice.set_password(new)
    alice.save()  # the password hook: every session ends, the mark is written
    clock.shift(20)
    her_phone = OrderApi(REMOTE_ADDR=IP_TOKYO)
    answer = her_phone.post("/api/login", {"username": "alice", "password": new})
    assert answer.json()["status"] in {"ok", "step_up_required"}, answer.content
    assert her_phone.get("/api/portfolio").status_code in {200, 403}
    assert SessionRecord.objects.filter(user=alice).count() == 1


# -- the token API's parked step-up (round fifty-seven) ----------------------------------------------------


def _thief_parks_a_token_login_while(
    the_ending: Callable[[], None], *, ip: str = IP_SG_VPS
) -> tuple[APIClient, Any]:
    """His script posts her phished password to the token API from a hosting network (scored step-up); the
    ending runs right before ``_park`` writes his parked login's record."""
    thief = APIClient(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)
    hook = _At(the_ending, when=_parking_record)
    with connection.execute_wrapper(hook):
        answer = thief.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    assert hook.then is None, f"the ending ran while his login was parked: {answer.content!r}"
    return thief, answer


def _relays_her_code(thief: APIClient, alice: Any, answer: Any) -> tuple[Any, str | None]:
    """His script exchanges the step-up token (if any) for a token with her relayed TOTP code."""
    step_up_token = answer.json().get("step_up_token")
    if not step_up_token:
        return None, None
    exchanged = thief.post(
        "/api/auth/step-up/totp",
        {"step_up_token": step_up_token, "code": totp_token(alice.totp)},
        format="json",
    )
    return exchanged, exchanged.json().get("token")


def test_a_parked_token_login_written_after_the_desks_end_sessions_exchanges_no_relayed_code_for_a_token(
    alice_with_totp: Any, clock: Any
) -> None:
    """Secure: a token sign-in in flight when the desk ends every session of the account (the
    containment's "end the sessions", or her "sign out everywhere") must not hand out an API token
    afterwards.

    Attack: his script posts her phished password to ``/api/auth/token`` from a hosting network (scored
    step-up). ``password_login`` records the private session and checks the ending mark
    (``records.record_sign_in``): none yet. The desk's ending then runs (the mark, the records read, every
    session deleted, every token revoked) before ``drf._park`` writes the *parked* session and its record
    (under PostgreSQL its record's INSERT waits on the ending's row lock and lands after it). Nothing checked
    the mark after ``_park``: the parked login was never known to the ending, it is not locked (no lock was
    taken), the password did not change, so ``pending_login``/``_usable`` let his relayed code exchange it
    for a token. Fix: after ``_park`` the token view checks the mark since its start
    (``unless_ended_since``) and discards the parked login (answer ``denied``); ``_passed`` checks again
    once the token is written, before handing it out."""
    alice = alice_with_totp
    thief, answer = _thief_parks_a_token_login_while(lambda: lockout.end_all_access(alice))
    clock.shift(5)
    exchanged, token = _relays_her_code(thief, alice, answer)
    served = None
    if token:
        thief.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        served = thief.get("/drf/portfolio").status_code
    assert token is None and not Token.objects.filter(user=alice).exists(), (
        f"the desk ended every session, then his parked login's relayed code got a token "
        f"({getattr(exchanged, 'status_code', None)}); the token reads her portfolio: {served}"
    )
    assert answer.status_code == 403 and answer.json()["status"] == "denied", answer.content
    assert not SessionRecord.objects.filter(user=alice).exists(), "his parked login is gone"


def test_a_parked_token_login_written_after_her_sign_out_everywhere_exchanges_no_relayed_code_for_a_token(
    alice_with_totp: Any, clock: Any
) -> None:
    """Secure: her own "sign out everywhere" (no lock: the account stays open to her) ends a token sign-in
    parked while it ran, as the desk's ending does (the attack above, round fifty-seven)."""
    alice = alice_with_totp
    her_pc = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her_pc.login("alice", PASSWORD)
    assert her_pc.post("/authguard/api/step-up/totp", {"code": totp_token(alice.totp)}).status_code == 200
    clock.shift(31)  # her code's time step has passed: his relayed one is the next

    def her_sign_out_everywhere() -> None:
        ended = her_pc.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=her_pc.token)
        assert ended.status_code == 302, ended

    # (a mobile network: from Singapore, 31 s after her Tokyo sign-in, he would be refused outright)
    thief, answer = _thief_parks_a_token_login_while(her_sign_out_everywhere, ip=IP_DOCOMO)
    clock.shift(5)
    _, token = _relays_her_code(thief, alice, answer)
    assert token is None and not Token.objects.filter(user=alice).exists(), answer.content
    assert answer.json()["status"] == "denied", answer.content
    assert her_pc.get("/api/portfolio").status_code == 200, "her own session is the one she kept"


def _token_written_by_the_exchange(sql: str) -> bool:
    """The ``INSERT`` of the token a passed step-up exchange hands out (``drf_views._passed``)."""
    text = sql.lstrip().upper()
    if not (text.startswith("INSERT") and "AUTHTOKEN_TOKEN" in text):
        return False
    return any(frame.function == "_passed" for frame in inspect.stack(context=0))


def test_a_parked_token_login_whose_exchange_the_desks_end_sessions_overtakes_hands_out_no_token(
    alice_with_totp: Any, clock: Any
) -> None:
    """Secure: an exchange in flight when the desk ends every session (it read the parked login before the
    ending deleted it, and writes its token after the ending revoked the account's tokens) hands out no
    token: ``_passed`` checks the ending mark since the sign-in began once the token is written (round
    fifty-seven)."""
    alice = alice_with_totp
    thief = APIClient(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    answer = thief.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    assert answer.status_code == 401, answer.content
    clock.shift(5)
    hook = _At(lambda: lockout.end_all_access(alice), when=_token_written_by_the_exchange)
    with connection.execute_wrapper(hook):
        exchanged, token = _relays_her_code(thief, alice, answer)
    assert hook.then is None, exchanged.content
    assert token is None and not Token.objects.filter(user=alice).exists(), exchanged.content
    assert exchanged.json()["code"] == "step_up_expired", exchanged.content


def test_cost_a_login_parked_without_its_start_by_an_earlier_release_is_refused_at_its_exchange(
    alice_with_totp: Any, clock: Any
) -> None:
    """The cost (round fifty-seven): a login parked by a release before this one has no start in its parked
    session; its exchange fails closed (``step_up_expired``: sign in again). It lives five minutes. Refused
    before any token is written, it revokes none of hers (the review of round fifty-nine: her app's token
    had been revoked with it)."""
    alice = alice_with_totp
    her_app = Token.objects.create(user=alice)
    thief = APIClient(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    answer = thief.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    parked = pending_login(answer.json()["step_up_token"]).session
    del parked[PARKED_KEY]["t"]  # as an earlier release parked it
    parked.modified = True
    parked.save()
    assert pending_login(answer.json()["step_up_token"]).started_at is None
    clock.shift(5)
    exchanged, token = _relays_her_code(thief, alice, answer)
    assert token is None and exchanged.json()["code"] == "step_up_expired", exchanged.content
    assert list(Token.objects.filter(user=alice)) == [her_app]


def test_held_a_parked_token_login_from_before_the_desks_end_sessions_exchanges_nothing(
    alice_with_totp: Any, clock: Any
) -> None:
    """Control: his login parked before the desk's ending is recorded, ended with the others, and its step-up
    token answers ``step_up_expired``."""
    alice = alice_with_totp
    thief = APIClient(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    answer = thief.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    assert answer.status_code == 401, answer.content
    clock.shift(5)
    lockout.end_all_access(alice)
    exchanged, token = _relays_her_code(thief, alice, answer)
    assert exchanged.status_code == 401 and token is None, exchanged.content
    assert not Token.objects.filter(user=alice).exists()


def test_held_an_allowed_token_login_racing_a_fifteen_second_lock_gets_no_token(
    user_factory: Any, clock: Any
) -> None:
    """The token view measures from its own ``started`` (before ``password_login``): an allowed token login
    whose login event waited 15 s on the desk's lock gets no token."""
    alice = user_factory("alice")
    lock = _desk(alice)

    def the_desk_locks_for_fifteen_seconds() -> None:
        lock()
        clock.shift(15)

    client = APIClient(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    hook = _At(the_desk_locks_for_fifteen_seconds)
    with connection.execute_wrapper(hook):
        answer = client.post("/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    assert hook.then is None
    assert "token" not in answer.json(), answer.content
    assert not Token.objects.filter(user=alice).exists()


# -- a portal's own login() (round fifty-seven) ------------------------------------------------------------


def _thief_signs_in_through_the_portal_while(the_ending: Callable[[], None]) -> tuple[OrderApi, Any]:
    thief = OrderApi(REMOTE_ADDR=IP_TOKYO)
    hook = _At(the_ending)
    with connection.execute_wrapper(hook):
        answer = thief.post("/portal/own-login", {"username": "alice", "password": PASSWORD})
    assert hook.then is None, "the ending ran inside his sign-in"
    return thief, answer


def test_a_portals_own_login_held_up_by_a_long_ending_does_not_outlive_the_desks_lock(
    user_factory: Any, clock: Any
) -> None:
    """Secure: whichever way a portal signs a customer in through Django's ``login()`` (scored by the
    ``user_logged_in`` receiver), a sign-in past its lock check when the desk's lock committed must not keep
    a session on the contained account, however long the lock's transaction held it up (round 52's race).

    Attack: the portal's own sign-in view (a magic link, its SSO callback: its own check, then
    ``login(request, user, backend=...)``, never ``authenticate()``) with her phished credential. No
    ``ThrottleBackend.authenticate`` and no ``password_login`` ran, so nothing stamped the start
    (``note_sign_in_started``): ``after_password_login`` scores, reads the lock (``_locked_after_check``),
    and its login event's INSERT waits 15 s on the desk's ending; ``record_sign_in`` then measured from
    ``state["t"]``, taken after the wait, and read the desk's mark as an ending *before* the sign-in. His
    session lived on the locked account. Fix: ``note_sign_in_started(request)`` at the top of
    ``flow.after_password_login`` (the first stamp stays, so the other doors keep their earlier one)."""
    alice = user_factory("alice")
    lock = _desk(alice)

    def the_desk_locks_for_fifteen_seconds() -> None:
        lock()
        clock.shift(15)

    thief, answer = _thief_signs_in_through_the_portal_while(the_desk_locks_for_fifteen_seconds)
    assert AccountLock.objects.get(user=alice).is_locked
    portfolio = thief.get("/api/portfolio")
    assert portfolio.status_code != 200 and not SessionRecord.objects.filter(user=alice).exists(), (
        f"his portal sign-in ({answer.status_code}) outlived the desk's lock: portfolio "
        f"{portfolio.status_code}, records {SessionRecord.objects.filter(user=alice).count()}"
    )


def test_held_a_portals_own_login_racing_a_short_lock_is_ended(user_factory: Any, clock: Any) -> None:
    alice = user_factory("alice")
    lock = _desk(alice)

    def the_desk_locks() -> None:
        lock()
        clock.shift(5)

    thief, _ = _thief_signs_in_through_the_portal_while(the_desk_locks)
    assert thief.get("/api/portfolio").status_code != 200
