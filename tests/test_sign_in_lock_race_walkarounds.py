"""Red team round fifty (B), fixed: a browser sign-in racing the desk's containment lock.

A sign-in's session key exists from Django's ``login()`` on, but is recorded (``SessionRecord``) only at the
end of ``begin_verified``, after the login flow's last look at the lock (``_locked_after_check``). An ending
(the desk's lock, "sign out everywhere") landing in between reads the records without his key and ends
everything else; his record is written a moment later and his session lives on. ``ending_skew_seconds``
only helps a renewal that finds its record *missing*: here nothing is missing, so nothing ever looks.
The browser middleware does not look at the lock on each request (the DRF permission classes do).

The desk's lock is run from inside his request (the moment ``begin_verified`` writes the session's state,
right before its record) through a session engine hook: the same database, another request, in a context
of its own (``contextvars.copy_context``), as on another node.

Fixed: an ending marks the cache before it reads the records, and a sign-in reads the mark after its record
is written (``records.record_sign_in``): one of the two sees the other, and the sign-in's session ends.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth import views as auth_views
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.test import Client
from django.urls import include, path

from authguard.login import lockout
from authguard.models import AccountLock, SessionRecord

from .conftest import IP_TOKYO, UA_CHROME_WIN, OrderApi
from .test_login_flow import api_login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: Run once when a signed-in session first gets authguard's state (``begin_verified``/``begin_pending``).
AT_STATE: list[Callable[[], None]] = []


class SessionStore(DatabaseStore):
    def __setitem__(self, key: str, value: Any) -> None:
        first = key == "_authguard" and "_authguard" not in self._session and SESSION_KEY in self._session
        super().__setitem__(key, value)
        if first:
            while AT_STATE:
                contextvars.copy_context().run(AT_STATE.pop())  # another node: not this request's context


urlpatterns = [
    # Django's own option: the reset's confirmation signs her in (test_held_her_sign_in_by_her_own_reset...).
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            post_reset_login=True,
            post_reset_login_backend="django.contrib.auth.backends.ModelBackend",
            success_url="/api/portfolio",
        ),
        name="password_reset_confirm",
    ),
    path("", include("demo_site.urls")),
]


@pytest.fixture
def portal(settings: Any) -> Any:
    settings.ROOT_URLCONF = __name__
    settings.SESSION_ENGINE = __name__
    AT_STATE.clear()
    yield
    AT_STATE.clear()


def test_a_sign_in_racing_the_desks_lock_does_not_outlive_it(portal: None, user_factory: Any) -> None:
    """Secure: the desk's containment lock ends every session of the account, a sign-in in flight included.

    Means: her password and a sign-in the engine allows (his script signs in again and again). Steps: the
    desk, alerted, locks the account while one of his sign-ins is past the flow's lock check and before its
    record. Gain: a signed-in session on the contained account (reading, trading: the browser middleware
    never looks at the lock) until its idle or absolute limit, or until the desk ends the sessions again."""
    from .console_data import staff_user

    alice = user_factory("alice")
    desk = staff_user("desk", perms=("authguard.contain_account",))

    def the_desk_locks() -> None:
        assert lockout.lock(alice, by=desk, reason="customer reports a sign-in she did not make")

    thief = OrderApi(REMOTE_ADDR=IP_TOKYO)
    AT_STATE.append(the_desk_locks)
    signed_in = thief.post("/api/login", {"username": "alice", "password": "correct horse battery"})
    assert signed_in.json()["status"] == "denied", signed_in.content  # (round 51: not "ok")
    assert not AT_STATE, "the desk's lock ran inside his sign-in"
    assert AccountLock.objects.get(user=alice).is_locked

    recorded = SessionRecord.objects.filter(user=alice).exists()
    portfolio = thief.get("/api/portfolio")
    assert portfolio.status_code != 200, (
        f"his session outlived the desk's lock (record kept: {recorded}): {portfolio.content[:200]!r}"
    )


def test_held_a_sign_in_after_the_desks_lock_is_refused(portal: None, user_factory: Any) -> None:
    from .console_data import staff_user

    alice = user_factory("alice")
    desk = staff_user("desk", perms=("authguard.contain_account",))
    thief = OrderApi(REMOTE_ADDR=IP_TOKYO)
    thief.login("alice", "correct horse battery")
    assert thief.get("/api/portfolio").status_code == 200
    assert lockout.lock(alice, by=desk, reason="customer reports a sign-in she did not make")
    assert thief.get("/api/portfolio").status_code == 401


def test_held_her_sign_in_by_her_own_reset_is_not_a_race(
    portal: None, user_factory: Any, mailoutbox: Any
) -> None:
    """Held (a cost the fix must not have): a portal whose reset confirmation signs her in at once (Django's
    ``post_reset_login``) ends every session and signs her in in one request, within the skew of the
    ending: her own ending, which her sign-in follows, is no race (``records._OWN_ENDINGS``); she stays
    signed in on her PC, and the thief's session is gone."""
    alice = user_factory("alice")
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    for _ in range(2):  # her PC, known to the account
        assert api_login(her, "alice", "correct horse battery").json()["status"] == "ok"
        her.post("/api/logout", HTTP_X_CSRFTOKEN=her.cookies["csrftoken"].value)
    thief = OrderApi(REMOTE_ADDR=IP_TOKYO)
    thief.login("alice", "correct horse battery")
    assert her.post("/password/reset/", {"email": "alice@example.jp"}).status_code == 302
    link = re.search(r"http://testserver(/password/reset/\S+/)", mailoutbox[-1].body)
    assert link, mailoutbox[-1].body
    form = her.get(link.group(1), follow=True)
    new = "her own better password 2026"
    done = her.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert (done.status_code, done.get("Location")) == (302, "/api/portfolio"), done
    assert her.get("/api/portfolio").status_code == 200
    assert list(SessionRecord.objects.filter(user=alice).values_list("session_key", flat=True)) == [
        her.cookies["sessionid"].value
    ]
    assert thief.get("/api/portfolio").status_code == 401
