"""Red team 36 (g): round thirty-five's "one password check of an account in flight at a time", attacked with
other spellings of the customer's login name (portal two: e-mail login, ``email__iexact`` lookup).

``authguard.risk.velocity._user_key`` keys the in-flight place (and the per-account throttle) on
``username.lower()``; the account is found by the user manager (``email__iexact``: ``UPPER(email) =
UPPER(%s)`` on PostgreSQL). Python's ``lower()`` and PostgreSQL's ``UPPER`` disagree on a few letters: the
dotless ``ı`` (U+0131) upper-cases to ``I`` but lower-cases to itself. So ``alıce@example.jp`` is alice's
account for the password check and the lock, and *another* name for the in-flight place and the throttle.

The spelling tests need PostgreSQL (the production database; SQLite's LIKE folds ASCII only, so there the
odd spelling reaches no account and the test holds):
``AUTHGUARD_TEST_DB=postgres AUTHGUARD_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
AUTHGUARD_TEST_PG_NAME=test_rt36g ... --ds=tests.portal2.settings``.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, Outcome

from .support import browser, json_login
from .test_lock_burst_walkarounds import GANG_IPS, PRODUCTION_HASHERS, in_parallel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("geoip")]

EMAIL = "shiori.ishii@example.jp"


def spellings(email: str, count: int) -> list[str]:
    """``count`` spellings of ``email``, each with some of its ``i`` written as a dotless ``ı``."""
    places = [n for n, ch in enumerate(email.split("@")[0]) if ch == "i"]
    found: list[str] = []
    for mask in itertools.product((False, True), repeat=len(places)):
        chars = list(email)
        for place, dotless in zip(places, mask, strict=True):
            if dotless:
                chars[place] = "\u0131"
        found.append("".join(chars))
        if len(found) == count:
            break
    return found


def nine_failures_two_hours_ago(user_factory: Any, settings: Any) -> Any:
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    shiori = user_factory(EMAIL)
    with time_machine.travel(timezone.now() - timedelta(hours=2), tick=False):
        for i in range(9):
            answer = json_login(browser(GANG_IPS[i % 3]), EMAIL, f"guess-{i}")
            assert answer.status_code == 401, answer.content
    assert AccountLock.objects.get(user=shiori).failures == 9 and not lockout.is_locked(shiori)
    return shiori


def test_a_burst_in_eight_spellings_of_her_address_outruns_the_lock(user_factory: Any, settings: Any) -> None:
    """The gang made nine wrong guesses at shiori's password two hours ago (one short of the lock). Now it
    sends eight guesses at once, each with another spelling of her address (``shıori.ishii@…``,
    ``shiori.ıshii@…``: dotless i). On PostgreSQL every spelling is her account (``email__iexact``), so
    every password is checked against her and counted on her lock; but each spelling is its own in-flight
    place (``_user_key`` lower-cases, it does not case-fold), so all eight are checked at once: seventeen
    passwords against a lock of ten, the burst round thirty-five closed for one spelling.

    Secure: the in-flight place (and the per-account throttle) is the account's, whatever spelling the
    user manager resolves to it (key on the user found, or on a name folded as the lookup folds it): never
    more than ten wrong passwords checked in one run of the lock.
    """
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's LIKE folds ASCII only: the odd spellings reach no account there")
    shiori = nine_failures_two_hours_ago(user_factory, settings)
    names = spellings(EMAIL, len(GANG_IPS))
    assert len(set(names)) == len(GANG_IPS)
    answers = in_parallel(
        [
            lambda ip=ip, n=n, name=name: json_login(browser(ip), name, f"burst-{n}")
            for n, (ip, name) in enumerate(zip(GANG_IPS, names, strict=True))
        ]
    )
    assert not [a for a in answers if isinstance(a, Exception)], answers
    checked = LoginEvent.objects.filter(user=shiori, outcome=Outcome.BAD_PASSWORD).count()
    statuses = [a.status_code for a in answers]
    assert lockout.is_locked(shiori)
    assert checked <= 10, f"{checked} wrong passwords checked against a lock of 10; answers {statuses}"


def test_held_on_sqlite_an_odd_spelling_reaches_no_account(user_factory: Any) -> None:
    """On SQLite (LIKE folds ASCII only) ``shıori.ishii@…`` is nobody: its password counts on no lock."""
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL: see the burst test above")
    shiori = user_factory(EMAIL)
    answer = json_login(browser(GANG_IPS[0]), spellings(EMAIL, 2)[1], "correct horse battery")
    assert answer.status_code == 401
    assert not LoginEvent.objects.filter(user=shiori).exists()


def test_a_right_password_in_another_spelling_racing_the_lock_is_told_apart(
    user_factory: Any, settings: Any
) -> None:
    """Same start (nine failures). The gang fires seven wrong guesses in seven spellings and, a moment later,
    the candidate password it wants to test in an eighth spelling. No in-flight place stops any of them: the
    candidate passes the lock check before the others finish, its right password is found after the tenth
    failure locked the account, and it is refused *after* the check, 403 "denied", where every wrong one
    got 401 "invalid". The gang knows her password on a locked account (round thirty-five's second finding,
    back through the spellings).

    Secure: one in-flight place per account whatever the spelling; a right password checked after the
    account locked is never answered apart from the wrong ones, and no event records ``password_ok`` on it.
    """
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's LIKE folds ASCII only: the odd spellings reach no account there")
    shiori = nine_failures_two_hours_ago(user_factory, settings)
    names = spellings(EMAIL, 8)
    calls = [
        lambda ip=ip, n=n, name=name: json_login(browser(ip), name, f"burst-{n}")
        for n, (ip, name) in enumerate(zip(GANG_IPS[:7], names[:7], strict=True))
    ]
    candidate = lambda: json_login(browser(GANG_IPS[7]), names[7], "correct horse battery")  # noqa: E731
    answers = in_parallel([*calls, candidate], late=7)
    assert not [a for a in answers if isinstance(a, Exception)], answers
    right, wrong = answers[-1], answers[:-1]
    assert lockout.is_locked(shiori)
    signed_in = right.status_code == 200 and right.json()["status"] == "ok"
    if not signed_in:
        answered = (right.status_code, right.json().get("status"), right.json().get("code"))
        others = {(a.status_code, a.json().get("status"), a.json().get("code")) for a in wrong}
        assert answered in others and answered[0] != 401, (
            f"right password on the locked account answered {answered}; wrong ones {others}"
        )
        assert not LoginEvent.objects.filter(user=shiori, password_ok=True, outcome=Outcome.REFUSED).exists()
