"""Red team 37 (a): the demo portal's JSON login (``POST /api/login``, ``password_login``) has the same
"lock read too early" window as portal two's (``tests/portal2/test_lock_read_early_walkarounds.py``, where the
mechanism is described): the lock is read by ``attempt.user_and_lock`` before the in-flight place is taken,
and ``ThrottleBackend`` does not read it again when the place was free at once.

The candidate's request is paused right after ``user_and_lock``'s query returned (Django's
``connection.execute_wrapper`` in its own thread: a worker taken off the processor there); nothing of
authguard is replaced. PostgreSQL (parallel connections).
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, Outcome

from .conftest import IP_OSAKA, IP_SG_VPS, IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("geoip")]

RIGHT = "correct horse battery"


def api_login(ip: str, username: str, password: str) -> Any:
    client = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)
    return client.post(
        "/api/login",
        json.dumps({"username": username, "password": password}),
        content_type="application/json",
    )


def not_by_risk(user: Any) -> None:
    """Precondition: a right password refused after its check was refused by the lock, not by the risk
    engine (its decision was not "deny": from home it would have been signed in or stepped up)."""
    for event in LoginEvent.objects.filter(user=user, password_ok=True, outcome=Outcome.REFUSED):
        assert event.action != "deny", (event.action, event.score)


def _shape(answer: Any) -> tuple[int, str | None, str | None]:
    body = answer.json()
    return answer.status_code, body.get("status"), body.get("code")


def paused_after_the_lock_read(call: Callable[[], Any], meanwhile: Callable[[], Any]) -> tuple[Any, Any]:
    read, go_on = threading.Event(), threading.Event()
    result: list[Any] = [None]

    def pause(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        answer = execute(sql, params, many, context)
        if (
            not read.is_set()
            and "authguard_accountlock" in sql
            and any(frame.name == "user_and_lock" for frame in traceback.extract_stack())
        ):
            read.set()
            go_on.wait(timeout=30)
        return answer

    def run() -> None:
        try:
            with connection.execute_wrapper(pause):
                result[0] = call()
        except Exception as exc:
            result[0] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert read.wait(timeout=30), "the candidate never read the lock"
        other = meanwhile()
    finally:
        go_on.set()
        thread.join(timeout=60)
    return result[0], other


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs parallel connections (PostgreSQL)")
def test_demo_json_login_tells_a_right_password_apart_on_a_locked_account(user_factory: Any) -> None:
    """Secure: a right password whose account locked before it was checked is answered as the locked account
    is (403 ``code: locked``, with the ways back), and never checked.

    The gang (candidate passwords only) made nine wrong guesses at hanako two hours ago; its tenth (wrong)
    and its candidate go a moment apart. The candidate read "not locked" just before the tenth locked the
    account, took the place the tenth gave back without waiting, and was checked: 403 "We could not sign you
    in from here" without ``code``, where the locked account answers ``code: locked`` to everything else.
    """
    hanako = user_factory("hanako")
    with time_machine.travel(timezone.now() - timedelta(hours=2), tick=False):
        for i in range(9):
            assert (
                api_login([IP_TOKYO, IP_OSAKA, IP_SG_VPS][i % 3], "hanako", f"guess-{i}").status_code == 401
            )
    assert AccountLock.objects.get(user=hanako).failures == 9
    candidate, tenth = paused_after_the_lock_read(
        lambda: api_login(IP_TOKYO, "hanako", RIGHT),
        lambda: api_login(IP_TOKYO_2, "hanako", "guess-tenth"),
    )
    assert not isinstance(candidate, Exception), candidate
    assert tenth.status_code == 401 and lockout.is_locked(hanako)
    not_by_risk(hanako)
    locked_answer = _shape(api_login(IP_TOKYO_2, "hanako", "guess-eleventh"))
    assert locked_answer == (403, "denied", "locked")
    assert _shape(candidate) == locked_answer, f"right password {_shape(candidate)}, others {locked_answer}"
    assert not LoginEvent.objects.filter(user=hanako, password_ok=True, outcome=Outcome.REFUSED).exists()
