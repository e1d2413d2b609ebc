"""Credentials no password check can read, sent to authguard's ``password_login`` through portal two's JSON
login (red team round 34 (a), fixed): refused as malformed (400) before any throttle slot is taken."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, RequestFactory

from authguard.login.flow import MalformedCredentials, password_login
from authguard.models import AccountLock, LoginEvent

from ..conftest import IP_OSAKA, IP_TOKYO, IP_US_HOME
from .support import browser, home_customer, json_login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

UNHASHABLE = b'{"email": "alice@example.jp", "password": "\\ud800"}'  # a lone surrogate: valid JSON


def test_unhashable_passwords_are_refused_before_they_take_the_customers_throttle(user_factory: Any) -> None:
    """Customer cost (a silent denial of sign-in): the gang posted hanako's address with a password holding
    a lone surrogate (valid JSON, ``"\\ud800"``) to the portal's JSON login (``password_login``) ten times
    an hour. ThrottleBackend took the account's throttle slot, then Django's hasher could not encode the
    password and the request ended in a 500: after ten, her right password was answered ``throttled``, and
    nothing recorded it.

    Fixed: ``password_login`` refuses a credential that cannot be checked as malformed
    (:class:`MalformedCredentials`, a ``BadRequest``: Django answers 400) before it takes a throttle slot,
    so nothing is counted and the customer signs in.
    """
    home_customer(user_factory, "alice")
    before = LoginEvent.objects.count()
    answers = []
    for i in range(10):
        gang = Client(REMOTE_ADDR=(IP_US_HOME, IP_OSAKA)[i % 2], raise_request_exception=False)
        answers.append(gang.post("/api/v1/login", UNHASHABLE, content_type="application/json").status_code)
    assert answers == [400] * 10
    assert LoginEvent.objects.count() == before and not AccountLock.objects.exists()
    own = json_login(browser(IP_TOKYO), "alice@example.jp")
    assert own.status_code == 200 and own.json()["status"] == "ok", own.content


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice@example.jp", "\ud800"),
        ("alice\udfff@example.jp", "correct horse battery"),
        ("alice@example.jp\x00", "correct horse battery"),
        ("alice@example.jp", "correct\x00horse"),
    ],
    ids=["surrogate-password", "surrogate-name", "nul-name", "nul-password"],
)
def test_password_login_refuses_unreadable_credentials_with_a_message(
    user_factory: Any, username: str, password: str
) -> None:
    """Every caller of ``password_login`` gets the refusal, with a message, before the throttle or the
    database sees the name (PostgreSQL refuses a NUL, SQLite a lone surrogate)."""
    user_factory("alice")
    request = RequestFactory().post("/api/v1/login", REMOTE_ADDR=IP_TOKYO)
    with pytest.raises(MalformedCredentials, match="cannot be read"):
        password_login(request, username=username, password=password)
    assert not LoginEvent.objects.exists()
    body = json.dumps({"email": username, "password": password})
    answer = Client(REMOTE_ADDR=IP_TOKYO, raise_request_exception=False).post(
        "/api/v1/login", body, content_type="application/json"
    )
    assert answer.status_code == 400  # the portal's own check (NUL) or authguard's (a surrogate)
