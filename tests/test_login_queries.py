"""Issue 15, acceptance 1: a safe login of a returning customer sends at most 15 SQL statements.

The count is the whole ``POST /api/login`` request through the real middleware, savepoints included: the
user fetch, the lock check, the risk evidence, the login event, learning, the (empty) notification check,
Django's session and the session record. A risky login is still refused.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authguard.login import attempt
from authguard.models import AccountLock, LoginEvent, Notification, Outcome, SessionRecord

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, UA_CURL
from .test_login_flow import api_login

# Real transactions: inside a test's transaction every atomic block would be a savepoint and the count off.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("geoip")]

#: Issue 15's goal for a safe login of a returning customer (known device and network, with history).
MAX_STATEMENTS = 15


def _returning_customer(user_factory: Any) -> tuple[Any, Client]:
    """A customer who signed in from this browser and home network twice before: a known device."""
    user = user_factory("tanaka")
    client = Client()
    client.get("/login/", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)  # the device cookie
    for _ in range(2):
        answer = api_login(client, "tanaka", "correct horse battery", ip=IP_TOKYO, ua=UA_CHROME_WIN)
        assert answer.status_code == 200 and answer.json()["status"] == "ok", answer.content
        client.post("/api/logout", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    return user, client


def test_a_safe_login_of_a_returning_customer_sends_at_most_15_statements(
    user_factory: Any, settings: Any
) -> None:
    # As deployed: the population counts are folded once a period (the tests' settings fold at every
    # login); the customer's earlier logins claimed this (long) period, so the login measured does not fold.
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = 10**8
    user, client = _returning_customer(user_factory)
    client.get("/api/csrf", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    notified = Notification.objects.count()
    with CaptureQueriesContext(connection) as queries:
        answer = client.post(
            "/api/login",
            json.dumps({"username": "tanaka", "password": "correct horse battery"}),
            content_type="application/json",
            REMOTE_ADDR=IP_TOKYO,
            HTTP_USER_AGENT=UA_CHROME_WIN,
            HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        )
    assert answer.status_code == 200 and answer.json()["status"] == "ok", answer.content
    sql = [q["sql"] for q in queries.captured_queries]
    # BEGIN/COMMIT are not statements the benchmark counted; savepoints are.
    statements = [s for s in sql if s.upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT")]
    assert len(statements) <= MAX_STATEMENTS, "\n".join(statements)
    event = LoginEvent.objects.latest("pk")
    assert (event.user, event.outcome, event.action, event.score) == (user, Outcome.SIGNED_IN, "allow", 0)
    assert Notification.objects.count() == notified  # a known browser and country: nothing to tell
    # The session is recorded for "sign out other sessions" (one INSERT for the key login() just created).
    assert SessionRecord.objects.filter(session_key=client.session.session_key, user=user).exists()


def test_a_risky_login_is_still_refused(user_factory: Any) -> None:
    _returning_customer(user_factory)
    thief = Client()
    answer = api_login(thief, "tanaka", "correct horse battery", ip=IP_SG_VPS, ua=UA_CURL)
    assert answer.status_code in (200, 403) and answer.json()["status"] in ("denied", "step_up_required")
    assert LoginEvent.objects.latest("pk").outcome in (Outcome.REFUSED, Outcome.STEP_UP_PENDING)


def test_the_lock_check_before_the_password_rides_on_the_user_query(
    user_factory: Any, django_assert_num_queries: Any
) -> None:
    user = user_factory("tanaka")
    with django_assert_num_queries(1):
        assert attempt.user_and_lock("tanaka") == (user, False)
    with django_assert_num_queries(1):
        assert attempt.user_and_lock("nobody") == (None, False)
    AccountLock.objects.create(user=user, locked_at=timezone.now(), failures=10)
    with django_assert_num_queries(1):
        assert attempt.user_and_lock("tanaka") == (user, True)
    # The API answers "locked" whatever the password, and ThrottleBackend refuses it on its own too.
    for password in ("correct horse battery", "wrong"):
        answer = api_login(Client(), "tanaka", password, ip=IP_TOKYO, ua=UA_CHROME_WIN)
        assert (answer.status_code, answer.json()["code"]) == (403, "locked")
    assert not Client().login(username="tanaka", password="correct horse battery")
