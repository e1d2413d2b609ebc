"""Red team round fifty (B), fixed: API tokens (authguard.drf) against the account's endings (a password
reset, a change, "sign out everywhere", the desk's lock).

A DRF token carries no password hash: once issued it lives until something deletes it (``revoke_tokens``).
ObtainAuthToken's allowed login goes from the password check to ``_issue_token`` with no account lock and no
re-check of an ending in between. Her reset, landing in that window (on another web node), revokes every token
the account has; the thief's token, created a moment later, outlives it.

Her request is made from inside his (the moment between his password check and the token's issue) through a
session engine that runs a hook when the token login deletes its private session (``drf._discard``, right
before ``_issue_token``): the same database, another request, as another web node. A PostgreSQL variant with
real threads shows the same without any hook in his request's path but the pause. Her request runs in a
context of its own (``contextvars.copy_context``), as on another node.

Fixed: an ending marks the cache before it reads the records, and a token login reads the mark after its
token is written (``records.unless_ended_since``): one of the two sees the other.
"""

from __future__ import annotations

import contextvars
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

# isort: split
from .test_drf import PASSWORD, TOKEN_URL, api, obtain, with_token

# isort: split
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.test import Client
from django.urls import include, path
from rest_framework.authtoken.models import Token

from authguard.models import SessionRecord

from .conftest import IP_TOKYO, UA_CHROME_WIN
from .drf_urlconf import urlpatterns as drf_urlpatterns

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: Run once, right after a signed-in session is deleted (what another node does meanwhile).
AFTER_DELETE: list[Callable[[], None]] = []
#: Threads whose next deletion of a signed-in session pauses after it (the events to set and to wait for).
PAUSE_IN: set[str] = set()
PAUSES: list[tuple[threading.Event, threading.Event]] = []


#: Run once when a parked token login's sign-in keys are put back for the second time in a request (in
#: ``drf_views._passed``, after the factor passed and before the step-up's transaction).
AT_PASSED: list[Callable[[], None]] = []
PARKED_SEEN: list[int] = []


class SessionStore(DatabaseStore):
    """Django's database sessions, with a moment right after a signed-in session is deleted."""

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        signed_in = False
        if key and (AFTER_DELETE or PAUSE_IN):
            data = dict(self._session) if key == self.session_key else DatabaseStore(session_key=key).load()
            signed_in = SESSION_KEY in data and "_authguard_drf" not in data
        super().delete(session_key)
        if not signed_in:
            return
        while AFTER_DELETE:
            contextvars.copy_context().run(AFTER_DELETE.pop())  # another node: not this request's context
        if threading.current_thread().name in PAUSE_IN and PAUSES:
            paused, go = PAUSES.pop()
            paused.set()
            go.wait(20)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key == SESSION_KEY and AT_PASSED and "_authguard_drf" in self._session:
            PARKED_SEEN.append(1)
            if len(PARKED_SEEN) == 2:
                contextvars.copy_context().run(AT_PASSED.pop())


urlpatterns = [
    *[p for p in drf_urlpatterns if str(p.pattern) != ""],
    path("", include("demo_site.urls")),
]


@pytest.fixture
def portal(settings: Any) -> Any:
    settings.ROOT_URLCONF = __name__
    settings.SESSION_ENGINE = __name__
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    AFTER_DELETE.clear()
    yield
    AFTER_DELETE.clear()
    AT_PASSED.clear()
    PAUSE_IN.clear()
    PAUSES.clear()


NEW_PASSWORD = "her own better password 2026"


def _she_resets_her_password(mailoutbox: Any) -> Callable[[], None]:
    """Her reset by e-mail from her PC at home (she read the "new sign-in" notice)."""

    def reset() -> None:
        customer = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
        assert customer.post("/password/reset/", {"email": "alice@example.jp"}).status_code == 302
        link = re.search(r"http://testserver(/password/reset/\S+/)", mailoutbox[-1].body)
        assert link, mailoutbox[-1].body
        form = customer.get(link.group(1), follow=True)
        done = customer.post(
            form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
        assert done.status_code == 302 and done.url == "/password/reset/complete/", done

    return reset


def test_a_token_login_racing_her_password_reset_gets_no_token_that_outlives_it(
    portal: None, alice_with_totp: Any, mailoutbox: Any
) -> None:
    """Secure: a token login whose password was checked before her reset, and whose token is issued after
    it, must not hand out a token that outlives the reset.

    Means: her (old) password and a token login the engine allows (his script keeps re-signing in for a
    fresh token, as any API client does; each login replaces the previous token). Steps: she resets her
    password by e-mail while one of his logins is between ``password_login`` (the old hash matched) and
    ``_issue_token``. Her reset revokes every token the account has (``revoke_api_tokens``); his token is
    created a moment later, with no password hash to go stale, no lock taken and no look at the ending.
    Gain: a token (24 hours, kept alive by use) on the account she just took back, with no way for her to
    see or end it but another reset."""
    alice = alice_with_totp
    thief = api()
    assert obtain(thief).status_code == 200  # his earlier token: the reset must end it, and does

    AFTER_DELETE.append(_she_resets_her_password(mailoutbox))
    racing = obtain(thief)
    assert not AFTER_DELETE, "her reset ran inside his token login"
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)  # her reset went through

    token = racing.json().get("token") if racing.status_code == 200 else None
    usable = token is not None and with_token(api(), token).get("/drf/portfolio").status_code == 200
    assert not usable, f"a token issued after her password reset outlived it ({racing.content.decode()})"
    assert not Token.objects.filter(user=alice).exists()


def test_held_a_token_login_after_her_reset_needs_the_new_password(
    portal: None, alice_with_totp: Any, mailoutbox: Any
) -> None:
    """The control: once her reset is done, the old password gets no token, and the one before is gone."""
    alice = alice_with_totp
    token = obtain(api()).json()["token"]
    _she_resets_her_password(mailoutbox)()
    assert not Token.objects.filter(user=alice).exists()
    assert with_token(api(), token).get("/drf/portfolio").status_code in (401, 403)
    assert obtain(api()).status_code == 400
    assert not SessionRecord.objects.filter(user=alice).exists()


def _parked_step_up(alice: Any) -> tuple[Any, str]:
    from .conftest import IP_SG_VPS

    client = api(IP_SG_VPS, UA_CHROME_WIN)
    login = client.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert login.status_code == 401, login.content
    return client, login.json()["step_up_token"]


def test_held_a_relayed_code_exchange_racing_her_reset_gets_no_token(
    portal: None, alice_with_totp: Any, mailoutbox: Any, settings: Any
) -> None:
    """The step-up exchange checks the parked login's password hash first, then renews the parked key under
    the account's lock (``mark_strong``): her reset landing after the hash check (his relayed code already
    checked) deletes the parked record, the renewal finds it gone and the exchange is refused."""
    from .conftest import totp_token

    alice = alice_with_totp
    assert obtain(api()).status_code == 200  # her own earlier sign-in at home
    client, step_up_token = _parked_step_up(alice)
    PARKED_SEEN.clear()
    AT_PASSED.append(_she_resets_her_password(mailoutbox))
    exchange = client.post(
        "/api/auth/step-up/totp",
        {"step_up_token": step_up_token, "code": totp_token(alice.totp)},
        format="json",
    )
    assert not AT_PASSED, f"her reset ran inside his exchange {exchange.content!r}"
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert exchange.status_code == 403, exchange.content
    assert not Token.objects.filter(user=alice).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgres_a_token_login_racing_her_reset_on_another_node_gets_no_lasting_token(
    portal: None, alice_with_totp: Any, mailoutbox: Any
) -> None:
    """Secure: as the first test, with real threads and connections (two web nodes): his token login has
    checked the old password and deleted its private session; her reset by e-mail completes on another node;
    his token is then issued. No lock or re-check stands between the two, so it outlives her reset."""
    from django.db import connection

    alice = alice_with_totp
    paused, go = threading.Event(), threading.Event()
    results: dict[str, Any] = {}
    PAUSE_IN.add("his-token-login")
    PAUSES.append((paused, go))

    def his_token_login() -> None:
        try:
            results["his"] = obtain(api())
        finally:
            connection.close()

    racing = threading.Thread(target=his_token_login, name="his-token-login")
    racing.start()
    try:
        assert paused.wait(20), "his token login never deleted its private session"
        _she_resets_her_password(mailoutbox)()  # another node, another connection
    finally:
        go.set()
        racing.join(30)
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    his = results["his"]
    token = his.json().get("token") if his.status_code == 200 else None
    usable = token is not None and with_token(api(), token).get("/drf/portfolio").status_code == 200
    assert not usable, f"a token issued after her password reset outlived it ({his.content.decode()})"
