"""The login name limit of the demo (Django's ``username``, 150 characters) and credentials no password
check can read: the shared code portal two's fixes changed (red team round 34 (a))."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, RequestFactory

from authguard.login.attempt import user_and_lock, user_by_name
from authguard.login.flow import MalformedCredentials, password_login
from authguard.models import AccountLock, LoginEvent
from authguard.risk.context import login_name_limit

from .conftest import IP_TOKYO, UA_CHROME_WIN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

TOKEN_URL = "/api/auth/token"


def test_the_demos_login_name_limit_is_its_username_fields(user_factory: Any) -> None:
    """150 for Django's ``username``: the limit is the user model's, so nothing changes for the demo."""
    alice = user_factory("alice")
    assert login_name_limit() == 150
    assert user_by_name("alice") == alice and user_and_lock("alice") == (alice, False)
    assert user_by_name("a" * 151) is None and user_and_lock("a" * 151) == (None, False)


@pytest.mark.urls("tests.drf_urlconf")
def test_the_token_login_keeps_the_demos_150_characters(user_factory: Any) -> None:
    user_factory("alice")
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    body = json.dumps({"username": "a" * 151, "password": "correct horse battery"})
    answer = client.post(TOKEN_URL, body, content_type="application/json")
    assert answer.status_code == 400 and "150" in answer.json()["errors"]["username"][0]
    assert not LoginEvent.objects.exists()


@pytest.mark.parametrize("password", ["\ud800", "correct\x00horse"], ids=["surrogate", "nul"])
def test_password_login_refuses_an_unreadable_password_before_the_throttle(
    user_factory: Any, password: str
) -> None:
    """``password_login`` raises ``MalformedCredentials`` (a ``BadRequest``: Django answers 400) before it
    takes a throttle slot or looks the account up; ten of them leave the account's sign-in untouched."""
    user_factory("alice")
    for _ in range(10):
        request = RequestFactory().post("/api/login", REMOTE_ADDR=IP_TOKYO)
        with pytest.raises(MalformedCredentials):
            password_login(request, username="alice", password=password)
    assert not LoginEvent.objects.exists() and not AccountLock.objects.exists()
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    client.get("/login/")
    signed_in = client.post("/login/", {"username": "alice", "password": "correct horse battery"})
    assert signed_in.status_code == 302 and signed_in.url == "/"
