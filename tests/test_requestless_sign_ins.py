"""Sign-ins Django reports without a request (red team, 2026-12-05; each test failed on the code before): a
websocket login (Django Channels' ``login(scope, user)`` sends ``user_logged_in`` with ``request=None`` and
saves the session itself) was never scored and its session was adopted as verified at the next HTTP request;
``authenticate()`` without a request neither counted towards the account lock. Threat model: the portal
offers such a sign-in, the thief has the password."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, authenticate
from django.contrib.auth.signals import user_logged_in
from django.utils import timezone

from authguard.conf import app_settings
from authguard.login import lockout
from authguard.models import AccountLock, AccountSecurity

from .conftest import HANAKO_PASSWORD, IP_OSAKA, OrderApi

pytestmark = pytest.mark.django_db

SessionStore = import_module(django_settings.SESSION_ENGINE).SessionStore


def websocket_login(user: Any) -> str:
    """What Channels' ``login(scope, user)`` does: the session written by the consumer, the signal sent with
    no request. Returns the session key (the browser's cookie from then on)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    user_logged_in.send(sender=type(user), request=None, user=user)
    return session.session_key


def browser_with(session_key: str) -> OrderApi:
    browser = OrderApi(REMOTE_ADDR=IP_OSAKA)
    browser.client.cookies[django_settings.SESSION_COOKIE_NAME] = session_key
    return browser


def test_a_websocket_sign_in_is_held_for_a_step_up_not_adopted_as_verified(hanako: Any, clock: Any) -> None:
    """The thief signs in over the portal's websocket with the password, then uses the session cookie on the
    JSON API. Before: adopted as verified, his orders went through with the password alone."""
    browser = browser_with(websocket_login(hanako))
    held = browser.get("/api/portfolio")
    assert held.status_code in (401, 403) and held.json()["status"] == "step_up_required", held.content
    assert browser.order("sell", "7203", 100).status_code in (401, 403)
    state = SessionStore(session_key=browser.client.cookies[django_settings.SESSION_COOKIE_NAME].value).load()
    assert state["_authguard"]["s"] == "pending"
    assert AccountSecurity.objects.get(user=hanako).unscored_login_at == timezone.now()


def test_a_websocket_session_kept_unused_for_a_day_is_still_held(brokerage_customer: Any, clock: Any) -> None:
    """Red team, round six: the thief signs in over the websocket and does not touch HTTP until a day has
    passed (Django keeps the session for two weeks). The hold was a 24-hour window on the account, and the
    session's own lifetime starts only when authguard first meets it: adopted as verified on the password
    alone. Any session of the account met without authguard's state is held, however old."""
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    key = websocket_login(hanako)
    clock.shift(timedelta(seconds=app_settings.SESSION_ABSOLUTE_SECONDS + 60))
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.client.cookies[django_settings.SESSION_COOKIE_NAME] = key
    held = thief.get("/api/portfolio")
    assert held.status_code in (401, 403), (held.status_code, held.content[:200])
    assert thief.order("sell", "7203", 100).status_code in (401, 403)


def test_a_forced_login_in_a_test_is_still_adopted_as_verified(hanako: Any, client: Any) -> None:
    client.force_login(hanako)
    assert client.get("/api/portfolio").status_code == 200
    assert not AccountSecurity.objects.filter(user=hanako, unscored_login_at__isnull=False).exists()


def test_wrong_passwords_without_a_request_count_towards_the_lock(hanako: Any, settings: Any) -> None:
    """authenticate() with no request (a websocket login form, a script) is not throttled per address; its
    failures must at least count towards the account lock. Before: unlimited guesses."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    for _ in range(3):
        assert authenticate(None, username="hanako", password="guess") is None
    assert lockout.is_locked(hanako)
    assert authenticate(None, username="hanako", password=HANAKO_PASSWORD) is None  # locked: refused
    assert AccountLock.objects.get(user=hanako).failures == 3  # the refusal itself is not counted
    assert authenticate(None, username="nobody", password="guess") is None  # unknown: nothing to count
