"""Red team round fifty-one (A), fixed: the sign-in paths round fifty's ending mark
(``records.unless_ended_since``) did not cover (a passkey's sign-in, recorded by ``mark_strong``), and what
``password_login`` reported when it ended the session it had just signed in (``ok``).

Another node's ending (the desk's lock, her reset) is run from inside his request through a session engine
hook, in a context of its own (``contextvars.copy_context``), as in
``tests/test_sign_in_lock_race_walkarounds.py``.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from authguard.login import lockout
from authguard.login.flow import password_login
from authguard.models import AccountLock, SessionRecord

from .conftest import IP_TOKYO, UA_CHROME_WIN, api_post
from .drf_urlconf import urlpatterns as drf_urlpatterns

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: Run once when a session is first signed in (``SESSION_KEY`` written by Django's ``login()``).
AT_SIGN_IN: list[Callable[[], None]] = []
#: Run once when a signed-in session first gets authguard's state (right before its record).
AT_STATE: list[Callable[[], None]] = []


class SessionStore(DatabaseStore):
    def __setitem__(self, key: str, value: Any) -> None:
        first_state = (
            key == "_authguard" and "_authguard" not in self._session and SESSION_KEY in self._session
        )
        super().__setitem__(key, value)
        if key == SESSION_KEY:
            while AT_SIGN_IN:
                contextvars.copy_context().run(AT_SIGN_IN.pop())  # another node
        if first_state:
            while AT_STATE:
                contextvars.copy_context().run(AT_STATE.pop())  # another node


@csrf_exempt
def app_login(request: HttpRequest) -> JsonResponse:
    """A portal's app login (docs/integration.md: "API views that sign users in themselves call
    ``password_login``"; docs/drf.md's SimpleJWT recipe issues its pair where ``password_login`` says
    ``ok``). It reports what ``password_login`` answered, and whether the session is still signed in."""
    import json

    body = json.loads(request.body or b"{}")
    result = password_login(request, username=body.get("username"), password=body.get("password"))
    from authguard.sessions.records import ENDED_SESSIONS

    # Ended: dropped by the middleware after the view, or signed out by password_login itself.
    ended = request.session.session_key in ENDED_SESSIONS.get() or SESSION_KEY not in request.session
    return JsonResponse({"status": result.status, "session_ended": ended})


@csrf_exempt
def login_then_cycle(request: HttpRequest) -> JsonResponse:
    """A portal's own sign-in view: Django's ``authenticate()`` and ``login()``, then a fresh key as ASVS
    3.2.1 asks (``cycle_key()``), then its answer."""
    import json

    from django.contrib.auth import authenticate, login

    body = json.loads(request.body or b"{}")
    user = authenticate(request, username=body.get("username"), password=body.get("password"))
    if user is None:
        return JsonResponse({"status": "invalid"}, status=400)
    login(request, user)
    request.session.cycle_key()
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("app/login", app_login),
    path("app/login-cycle", login_then_cycle),
    *[p for p in drf_urlpatterns if str(p.pattern) != ""],
    path("", include("demo_site.urls")),
]


@pytest.fixture
def portal(settings: Any) -> Any:
    settings.ROOT_URLCONF = __name__
    settings.SESSION_ENGINE = __name__
    AT_SIGN_IN.clear()
    AT_STATE.clear()
    yield
    AT_SIGN_IN.clear()
    AT_STATE.clear()


def _his_cooling_off_passkey(alice: Any) -> Any:
    """The passkey on her account is the one he enrolled yesterday during the intrusion: cooling off."""
    from datetime import timedelta

    from django.utils import timezone

    from authguard.factors.methods import factor_cooling_off
    from authguard.models import FactorKind, FactorRecord

    device = alice.passkey
    FactorRecord.objects.update_or_create(
        device_id=device.persistent_id,
        defaults={
            "user": alice,
            "kind": FactorKind.PASSKEY,
            "enrolled_at": timezone.now() - timedelta(days=1),
            "cooling_off_until": timezone.now() + timedelta(days=6),
        },
    )
    assert factor_cooling_off(device)
    return device


def _desk() -> Any:
    from .console_data import staff_user

    return staff_user("desk", perms=("authguard.contain_account",))


# -- 1. the passkey sign-in ---------------------------------------------------------------------------------


def test_a_passkey_sign_in_racing_the_desks_lock_does_not_outlive_it(
    portal: None, alice_with_totp_and_passkey: Any, authenticator: Any
) -> None:
    """Secure: the desk's containment lock ends every session of the account, a passkey sign-in in flight
    included.

    Means: a passkey on her account in his authenticator (the one he enrolled during the intrusion, which
    cannot unlock a desk's lock: ``unlocking._cooling_off_when_locked``), and his script signing in with it
    again and again (a software authenticator needs no one at the keyboard). Steps: the desk, alerted, locks
    the account while one of his passkey sign-ins is past ``complete_passwordless_login``'s lock check and
    before ``mark_strong`` writes its record. The record is written by ``renew_record(previous=None)`` ->
    ``record_session``: no ending mark is read (round fifty wired ``unless_ended_since`` into
    ``begin_verified``/``begin_pending`` only). Gain: a *verified* session (strong, passkey) on the contained
    account, which the browser middleware never checks against the lock, until its idle/absolute limit."""
    alice = alice_with_totp_and_passkey
    _his_cooling_off_passkey(alice)
    desk = _desk()

    def the_desk_locks() -> None:
        assert lockout.lock(alice, by=desk, reason="customer reports a sign-in she did not make")

    thief = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    options = api_post(thief, "api-login-passkey-options")
    assert options.status_code == 200, options.content
    AT_SIGN_IN.append(the_desk_locks)
    signed_in = api_post(thief, "api-login-passkey", authenticator.get(options.json()))
    assert not AT_SIGN_IN, "the desk's lock ran inside his passkey sign-in"
    assert AccountLock.objects.get(user=alice).is_locked

    recorded = SessionRecord.objects.filter(user=alice).exists()
    portfolio = thief.get("/api/portfolio")
    assert portfolio.status_code != 200, (
        f"his passkey session outlived the desk's lock (sign-in answered {signed_in.status_code}, "
        f"record kept: {recorded}): {portfolio.content[:120]!r}"
    )


def test_held_a_passkey_sign_in_after_the_desks_lock_is_refused(
    portal: None, alice_with_totp_and_passkey: Any, authenticator: Any
) -> None:
    """The control: once the desk's lock is in, his cooling-off passkey neither signs in nor unlocks."""
    alice = alice_with_totp_and_passkey
    _his_cooling_off_passkey(alice)
    assert lockout.lock(alice, by=_desk(), reason="customer reports a sign-in she did not make")
    thief = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    options = api_post(thief, "api-login-passkey-options")
    assert api_post(thief, "api-login-passkey", authenticator.get(options.json())).status_code == 403
    assert thief.get("/api/portfolio").status_code != 200
    unlock_options = api_post(thief, "api-unlock-options")
    assert api_post(thief, "api-unlock", authenticator.get(unlock_options.json())).status_code == 403
    assert AccountLock.objects.get(user=alice).is_locked


# -- 2. password_login's "ok" for a session it ended -----------------------------------------------------


NEW_PASSWORD = "her own better password 2026"


def _she_resets_her_password(mailoutbox: Any) -> Callable[[], None]:
    def reset() -> None:
        customer = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
        assert customer.post("/password/reset/", {"email": "alice@example.jp"}).status_code == 302
        link = re.search(r"http://testserver(/password/reset/\S+/)", mailoutbox[-1].body)
        assert link, mailoutbox[-1].body
        form = customer.get(link.group(1), follow=True)
        done = customer.post(
            form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
        assert done.status_code == 302, done

    return reset


def test_password_login_does_not_answer_ok_for_a_sign_in_it_ended(
    portal: None, alice_with_totp: Any, mailoutbox: Any, settings: Any
) -> None:
    """Secure: when ``record_sign_in`` reads the ending mark and ends the session it just signed in,
    ``password_login`` does not report ``ok`` ("signed in and verified").

    Means: her old password, and a portal's app login on ``password_login`` that issues its own credential
    on ``ok`` (docs/drf.md's SimpleJWT recipe: a JWT pair, no password hash to go stale, nothing for
    ``api_access_revoked`` to delete). Steps: she resets her password on another node while his login is
    between the password check and its record; ``record_sign_in`` sees her mark and ends the session, but
    ``password_login`` still returns ``LoginResult("ok", user=...)``: it never looks at what
    ``unless_ended_since`` did. Gain: the portal's credential, minted after her reset, on the account she
    just took back. (With authguard's own ``ObtainAuthToken`` its second ``unless_ended_since`` catches it;
    a portal has no ``started`` to pass.) Fix: ``password_login`` answers ``denied`` when the session it
    signed in was ended (``ENDED_SESSIONS`` / ``SESSION_KEY`` gone)."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    alice = alice_with_totp
    thief = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    AT_STATE.append(_she_resets_her_password(mailoutbox))
    answer = thief.post(
        "/app/login",
        {"username": "alice", "password": "correct horse battery"},
        content_type="application/json",
    )
    assert not AT_STATE, "her reset ran inside his login"
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    body = answer.json()
    assert body["session_ended"] is True, body  # record_sign_in did end the session
    assert thief.get("/api/portfolio").status_code != 200
    assert body["status"] != "ok", f"password_login answered ok for a session its ending check ended: {body}"


def test_held_the_same_login_after_her_reset_is_invalid(
    portal: None, alice_with_totp: Any, mailoutbox: Any, settings: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    _she_resets_her_password(mailoutbox)()
    thief = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    answer = thief.post(
        "/app/login",
        {"username": "alice", "password": "correct horse battery"},
        content_type="application/json",
    )
    assert answer.json()["status"] == "invalid"


# -- 3. a portal's login() and cycle_key() (review, round fifty-one) --------------------------------------


def test_a_sign_in_ended_by_its_race_is_not_kept_by_the_portals_key_renewal(
    portal: None, user_factory: Any
) -> None:
    """Secure: a sign-in that raced the desk's lock, ended by its own check, stays ended when the portal's
    view renews its key after ``login()``.

    Means: her password; a portal whose sign-in view calls ``login()`` then ``cycle_key()`` (as
    ``note_renewed_key`` expects portals to). His sign-in is past its lock check when the desk locks the
    account; its check ends the session (its key in ``ENDED_SESSIONS``); the view renews the key, and the
    renewal counted the old key "ended by this very request" as the session an ending kept (Django's
    password change): the renewed key was recorded and the session outlived the lock."""
    alice = user_factory("alice")
    desk = _desk()

    def the_desk_locks() -> None:
        assert lockout.lock(alice, by=desk, reason="customer reports a sign-in she did not make")

    thief = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    AT_STATE.append(the_desk_locks)
    thief.post(
        "/app/login-cycle",
        {"username": "alice", "password": "correct horse battery"},
        content_type="application/json",
    )
    assert not AT_STATE, "the desk's lock ran inside his sign-in"
    assert AccountLock.objects.get(user=alice).is_locked
    assert thief.get("/api/portfolio").status_code != 200
    assert not SessionRecord.objects.filter(user=alice).exists()
