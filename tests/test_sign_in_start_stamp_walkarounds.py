"""Sign-ins in flight against the endings of an account's sessions (the ending mark,
``records.unless_ended_since``), attacked with the thief's phished password and a script (red team, round
fifty-two): an ending is measured from the sign-in's start (``records.note_sign_in_started``).

Another node's ending (the desk's lock) is run from inside his request through a database execute hook
(Django's ``connection.execute_wrapper``) in a context of its own (``contextvars.copy_context``), as on
another node: the hook fires at the ``INSERT`` of his login event, the first statement after the login
flow's last look at the lock (``_locked_after_check``, from the evidence the scoring read).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from authguard.login import lockout
from authguard.models import AccountLock

from .conftest import IP_TOKYO, OrderApi

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

PASSWORD = "correct horse battery"


class _AtLoginEvent:
    """Runs ``then`` once, right before the first ``INSERT`` into the login events table."""

    def __init__(self, then: Callable[[], None]) -> None:
        self.then: Callable[[], None] | None = then

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.then is not None and sql.lstrip().upper().startswith("INSERT") and "loginevent" in sql:
            then, self.then = self.then, None
            contextvars.copy_context().run(then)  # another node: not this request's context
        return execute(sql, params, many, context)


def _desk(alice: Any) -> Callable[[], None]:
    from .console_data import staff_user

    desk = staff_user("desk", perms=("authguard.contain_account",))
    return lambda: lockout.lock(alice, by=desk, reason="customer reports a sign-in she did not make")


def _thief_signs_in_while(the_ending: Callable[[], None]) -> tuple[OrderApi, Any]:
    thief = OrderApi(REMOTE_ADDR=IP_TOKYO)
    hook = _AtLoginEvent(the_ending)
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
    from authguard.models import SessionRecord

    assert SessionRecord.objects.filter(user=alice).count() == 1
