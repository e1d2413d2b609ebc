"""The unlock API: a locked-out customer's own passkey (a real assertion) unlocks the account."""

from __future__ import annotations

from typing import Any

from django.core import mail

from authguard.login.lockout import is_locked, record_failure

from .conftest import api_post, bind_passkey


def _unlock(client: Any, authenticator: Any, **overrides: Any) -> Any:
    options = api_post(client, "api-unlock-options")
    assert options.status_code == 200, options.content
    assert options.json()["allowCredentials"] == []  # discoverable: the passkey names its own account
    return api_post(client, "api-unlock", authenticator.get(options.json(), **overrides))


def test_own_passkey_unlocks_over_the_api_and_signs_nothing_in(
    client: Any, user_factory: Any, settings: Any, authenticator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    alice = user_factory("alice")
    bind_passkey(alice, authenticator)
    record_failure(alice, kind="password")
    assert is_locked(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = _unlock(client, authenticator)
    assert response.status_code == 200 and response.json()["status"] == "ok", response.content
    assert not is_locked(alice)
    assert "_auth_user_id" not in client.session  # proved who they are; signing in is a separate, scored step
    assert any(alice.email in m.to for m in mail.outbox)


def test_unlock_of_an_unlocked_account_says_so(client: Any, user_factory: Any, authenticator: Any) -> None:
    alice = user_factory("alice")
    bind_passkey(alice, authenticator)
    response = _unlock(client, authenticator)
    assert response.status_code == 409 and response.json()["status"] == "not_locked"


def test_a_bad_assertion_is_refused_and_the_lock_stays(
    client: Any, user_factory: Any, settings: Any, authenticator: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    alice = user_factory("alice")
    bind_passkey(alice, authenticator)
    record_failure(alice, kind="password")
    response = _unlock(client, authenticator, origin="https://evil.example")
    assert response.status_code == 400 and response.json()["status"] == "invalid"
    assert is_locked(alice)


def test_unlock_refused_where_passkeys_may_not_unlock(
    client: Any, user_factory: Any, settings: Any, authenticator: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 1
    settings.AUTHGUARD_UNLOCK_METHODS = []
    alice = user_factory("alice")
    bind_passkey(alice, authenticator)
    record_failure(alice, kind="password")
    response = _unlock(client, authenticator)
    assert response.status_code == 403 and response.json()["status"] == "denied"
    assert is_locked(alice)


def test_malformed_unlock_bodies_are_4xx(client: Any, db: Any) -> None:
    for raw in ("", "[]", "{", '{"id": 1}'):
        response = api_post(client, "api-unlock", raw=raw)
        assert 400 <= response.status_code < 500 and "message" in response.json()
