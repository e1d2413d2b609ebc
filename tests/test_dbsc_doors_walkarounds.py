"""Red team round forty-one (b): the doors that end DBSC bindings (docs/dbsc.md's table), walked around. The
thief's key, registered on his own browser with her password, moved by its refresh onto a fresh device cookie
(new to the account) and outlived "forget this browser", which ended the bindings of the forgotten row's
cookie only; and a password reset from her mailbox ended her binding of three weeks, after which his copy of
her device cookie signed in with the new password as her unbound, trusted browser. Fixed:

* A binding is forgotten with the browser it was registered on: ``DbscSession.registered_device_hash`` records
  that browser, and "forget this browser" ends the account's bindings registered on the forgotten cookie as
  well as those now on it (``dbsc_moves.end_bindings``), wherever the key's refreshes moved them since.
* A binding a password change or reset ended (``sessions_ended``; "sign out everywhere" and the desk's
  containment too: ``device_binding.HOLDING_END_REASONS``) keeps its device cookie counted as bound
  without a proof (``device_binding.device_binding_state``: ``bound_missing_proof``, so
  ``device_binding_missing`` at sign-in) until a passkey binds the device again or the binding would have
  expired: a copy of her device cookie is stepped up after the reset as before it, and the thief's own key
  still ends with it.

Real sign-ins through the demo's JSON API and pages, real DBSC keys and proofs (test_sessions_dbsc's
helpers), real TOTP codes and passkeys, the real middleware, GeoIP test databases, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import DbscSession, KnownDevice
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.sessions import dbsc

from .conftest import IP_TOKYO_2, UA_CHROME_WIN
from .staff_fixtures import give_passkey, passkey_verify
from .test_dbsc_copies_walkarounds import _last, _login, _summary
from .test_dbsc_moves_walkarounds import _her_unbound_browser, _refresh, _thief_binds_his_own_browser
from .test_dbsc_session_rebind_walkarounds import _her_bound_history
from .test_sessions_dbsc import OFFER, DeviceKey, dbsc_on, post_register, urlpatterns  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip", "dbsc_on")]

DEVICE = app_settings.DEVICE_COOKIE_NAME
BOUND = "authguard_bound"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a new and long passphrase"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.mark.battery(65)
def test_forgetting_his_browser_ends_his_key_though_it_moved_onto_a_fresh_cookie_first(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: "forget this browser" forgets the key registered on that browser (docs/dbsc.md's table;
    round thirty-seven: his key's refresh had gone on answering after she forgot his browser). The attacker
    has her password (no code). He signs in on a browser of his own (allowed: her ISP, her user agent) and
    binds it to his key. Then, before she notices, he fetches a fresh device cookie from the site (a new
    client's first page) and refreshes his key with it: a cookie new to the account and issued after the
    registration, so ``may_move`` moves his binding off the browser row she can see. She finds his browser
    among her remembered ones and forgets it with her passkey: the door ends the bindings of that browser's
    cookie only; his key lives on, its refresh still answers (400 days, sliding), listed nowhere she can
    forget it."""
    her, _totp = _her_unbound_browser(clock, user_factory, totp_factory)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, _totp)
    his_browser = KnownDevice.objects.get(cookie_hash=DbscSession.objects.get(session_id=binding).device_hash)
    thief.post("/api/logout")

    clock.shift(timedelta(minutes=5))
    fresh = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    fresh.get("/api/csrf")  # the site hands a new device cookie to a new client
    assert DEVICE in fresh.cookies
    moved = _refresh(fresh, key, binding)
    assert moved.status_code == 200, moved.content
    row = DbscSession.objects.get(session_id=binding)
    assert row.device_hash == device_hash(device_id_from_cookie(fresh.cookies[DEVICE].value))

    clock.shift(timedelta(minutes=30))
    authenticator, _device = give_passkey(his_browser.user)
    assert _login(her).json()["status"] == "ok", _summary(_last())
    assert passkey_verify(her, authenticator).status_code == 200
    forgot = her.post(f"/authguard/security/devices/{his_browser.pk}/revoke/")
    assert forgot.status_code == 302 and "reverify" not in forgot["Location"], forgot
    assert KnownDevice.objects.get(pk=his_browser.pk).revoked_at is not None

    clock.shift(timedelta(days=1))
    fresh.cookies.pop(BOUND, None)
    after = _refresh(fresh, key, binding)
    row = DbscSession.objects.get(session_id=binding)
    assert row.ended_at is not None and after.status_code == 404, (
        f"a day after she forgot his browser his key's binding is alive ({row.end_reason!r}) and its "
        f"refresh answers {after.status_code}"
    )


@pytest.mark.battery(65)
def test_a_password_reset_from_her_mailbox_strips_her_binding_of_weeks(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure (docs/dbsc.md, review of round forty): a reset by e-mail is open to whoever has her mailbox,
    so it must not strip her browser's key proof and let a copy of her device cookie in as her trusted,
    unbound browser. The attacker has her mailbox and the jar of her bound browser (her device cookie) from
    an infostealer; no code. Hanako's browser was bound when she started with the portal's DBSC three weeks
    ago (any binding under ``ESTABLISHED_DEVICE_DAYS``: a new PC, the rollout's first month, a re-binding
    after a lost key). He resets her password from her mailbox: the reset ends her binding
    (``sessions_ended``), and her copied device cookie signs in with the new password, no code, as her known
    browser; with her binding of 31 days the same copy is stepped up."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=21)
    stolen = her.cookies[DEVICE].value  # the infostealer's copy of today's jar
    her.post("/api/logout")

    clock.shift(timedelta(hours=3))
    hanako = DbscSession.objects.get(session_id=her_binding).user
    hanako.set_password(NEW_PASSWORD)  # what PasswordResetConfirmView does with the mailed link
    hanako.save()
    row = DbscSession.objects.get(session_id=her_binding)

    clock.shift(timedelta(minutes=5))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.cookies[DEVICE] = stolen
    thief.get("/api/csrf")
    answer = thief.post(
        "/api/login", {"username": "hanako", "password": NEW_PASSWORD}, content_type="application/json"
    )
    status = answer.json()["status"]
    assert status != "ok", (
        f"her binding of three weeks after the reset: ended={row.ended_at is not None} ({row.end_reason!r}); "
        f"his copy of her device cookie with the new password: {status} {_summary(_last())}; "
        f"portfolio {thief.get('/api/portfolio').status_code}"
    )


def test_held_a_password_reset_from_her_mailbox_keeps_her_binding_of_months(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """The control of the attack above: the same mailbox reset and the same copy against her binding of 31
    days: the binding stays, and the copy is stepped up (``device_binding_missing``)."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=31)
    stolen = her.cookies[DEVICE].value
    her.post("/api/logout")
    clock.shift(timedelta(hours=3))
    hanako = DbscSession.objects.get(session_id=her_binding).user
    hanako.set_password(NEW_PASSWORD)
    hanako.save()
    assert DbscSession.objects.get(session_id=her_binding).ended_at is None
    clock.shift(timedelta(minutes=5))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.cookies[DEVICE] = stolen
    thief.get("/api/csrf")
    answer = thief.post(
        "/api/login", {"username": "hanako", "password": NEW_PASSWORD}, content_type="application/json"
    )
    assert answer.json()["status"] != "ok", _summary(_last())
    assert "device_binding_missing" in _last().reasons


def test_her_browser_held_after_a_reset_is_bound_again_by_her_passkey(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """The cost of the fix above, and its end: after the reset her own browser (its binding of three weeks
    ended, its key dropped at the refresh's 404) is stepped up at sign-in like the copy
    (``device_binding_missing``). Her passkey passes the step-up, whose answer offers the binding again, and
    her browser's new key registers (a used cookie: a passkey's session only); from then on the new binding
    decides: her browser signs in, and the copy is still stepped up."""
    her, _her_key, her_binding, _totp = _her_bound_history(clock, user_factory, totp_factory, days=21)
    stolen = her.cookies[DEVICE].value
    hanako = DbscSession.objects.get(session_id=her_binding).user
    authenticator, _device = give_passkey(hanako)
    her.post("/api/logout")
    clock.shift(timedelta(hours=3))
    hanako.set_password(NEW_PASSWORD)
    hanako.save()
    assert DbscSession.objects.get(session_id=her_binding).end_reason == "sessions_ended"

    clock.shift(timedelta(minutes=30))
    her.cookies.pop(BOUND, None)
    again = her.post(
        "/api/login", {"username": "hanako", "password": NEW_PASSWORD}, content_type="application/json"
    )
    assert again.json()["status"] == "step_up_required", _summary(_last())
    assert "device_binding_missing" in _last().reasons
    clock.shift(timedelta(seconds=31))
    passed = passkey_verify(her, authenticator)
    assert passed.status_code == 200, passed.content
    offered = OFFER.match(passed.get(dbsc.REGISTRATION_HEADER, ""))
    assert offered, dict(passed.items())
    registered = post_register(her, DeviceKey().proof(offered["challenge"]))
    assert registered.status_code == 200, registered.content
    her.post("/api/logout")

    clock.shift(timedelta(minutes=5))
    mine = her.post(
        "/api/login", {"username": "hanako", "password": NEW_PASSWORD}, content_type="application/json"
    )
    assert mine.json()["status"] == "ok", _summary(_last())
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.cookies[DEVICE] = stolen
    thief.get("/api/csrf")
    copy = thief.post(
        "/api/login", {"username": "hanako", "password": NEW_PASSWORD}, content_type="application/json"
    )
    assert copy.json()["status"] != "ok", _summary(_last())
    assert "device_binding_missing" in _last().reasons


@pytest.mark.battery(65)
def test_after_the_desks_containment_a_reset_from_her_mailbox_does_not_free_her_browsers_cookie(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: the desk's containment ends every binding and forces a password reset, which whoever holds
    her mailbox can do. Her browser's binding of months, ended by the containment (``access_ended``), keeps
    its device cookie held without a proof (``device_binding.HOLDING_END_REASONS``): the thief's copy of her
    device cookie with the password he set from her mailbox is stepped up, not let in as her trusted,
    unbound browser."""
    from .console_data import staff_user
    from .staff_fixtures import staff_client
    from .test_dbsc_moves_walkarounds import DESK_PERMS, INCIDENT

    her, _her_key, her_binding, _totp = _her_bound_history(clock, user_factory, totp_factory, days=31)
    stolen = her.cookies[DEVICE].value
    hanako = DbscSession.objects.get(session_id=her_binding).user
    desk = staff_user("desk-a", perms=DESK_PERMS)
    contained = staff_client(desk).post(
        INCIDENT, {"user": str(hanako.pk), "containment": "force_password_reset", "reason": "phishing report"}
    )
    assert contained.status_code == 303
    assert DbscSession.objects.get(session_id=her_binding).end_reason == "access_ended"

    clock.shift(timedelta(hours=1))
    hanako.refresh_from_db()
    hanako.set_password(NEW_PASSWORD)  # the mailed reset link, in his hands
    hanako.save()
    clock.shift(timedelta(minutes=5))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.cookies[DEVICE] = stolen
    thief.get("/api/csrf")
    answer = thief.post(
        "/api/login", {"username": "hanako", "password": NEW_PASSWORD}, content_type="application/json"
    )
    assert answer.json()["status"] != "ok", _summary(_last())
    assert "device_binding_missing" in _last().reasons


def test_the_holding_end_reasons_are_the_doors_own() -> None:
    """``device_binding.HOLDING_END_REASONS`` names the end reasons of ``dbsc_moves`` (which imports it) by
    their values: a renamed reason would silently stop holding its device."""
    from authguard.sessions import dbsc_moves, device_binding

    holding = {dbsc_moves.SESSIONS_ENDED, dbsc_moves.SIGNED_OUT_EVERYWHERE, dbsc_moves.ACCESS_ENDED}
    assert holding == device_binding.HOLDING_END_REASONS
    assert dbsc_moves.DEVICE_FORGOTTEN not in device_binding.HOLDING_END_REASONS
