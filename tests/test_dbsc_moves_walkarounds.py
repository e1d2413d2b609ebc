"""Red team round thirty-seven (b): a thief's own DBSC binding in her account, moved by a refresh onto her
copied device cookie; bindings that outlived "forget this browser" and the desk's containment. Fixed:

* A refresh signed by a key moves its binding only onto a device cookie the binding's own browser was given
  (the new id re-issued to a request that proved the binding, as its session recorded it, or a cookie new to
  the account since the registration: ``dbsc_moves.may_move``); otherwise the binding stays where it is.
* The doors that end access end the account's bindings in the same transaction, each with its own reason:
  the desk's containment (``access_ended``), a password change or reset (``sessions_ended``), "sign out
  everywhere" (``signed_out_everywhere``: all but this browser's), "forget this browser"
  (``device_forgotten``). A lock after failed sign-ins (anyone with her username) does not.

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
from authguard.login import lockout
from authguard.models import DbscSession, KnownDevice, LoginEvent
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.sessions import dbsc

from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, api_post, totp_token
from .console_data import staff_user
from .staff_fixtures import give_passkey, passkey_verify, staff_client
from .test_dbsc_copies_walkarounds import (
    _her_bound_browser,
    _her_refresh,
    _last,
    _login,
    _summary,
    _thief_steps_up_with_a_current_copy,
)
from .test_sessions_dbsc import (  # noqa: F401
    CHALLENGE,
    OFFER,
    DeviceKey,
    dbsc_on,
    post_refresh,
    post_register,
    urlpatterns,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip", "dbsc_on")]

DEVICE = app_settings.DEVICE_COOKIE_NAME
BOUND = "authguard_bound"
PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _her_unbound_browser(
    clock: Any, user_factory: Any, totp_factory: Any, days: int = 5
) -> tuple[Client, Any]:
    totp = totp_factory(user_factory("hanako", password=PASSWORD))
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    for _ in range(days):
        assert _login(her).json()["status"] == "ok", _summary(_last())
        assert her.get("/api/portfolio").status_code == 200
        her.post("/api/logout")
        clock.shift(timedelta(days=1))
    return her, totp


def _thief_binds_his_own_browser(thief: Client, totp: Any) -> tuple[DeviceKey, str]:
    """Her password on his own fresh browser from her ISP with her user agent (allowed as a new browser at
    25: no code); he answers the offer its answer carries with his own key."""
    thief.get("/api/csrf")
    answer = _login(thief)
    assert answer.json()["status"] == "ok", _summary(_last())  # no code was needed
    if answer.json()["status"] == "step_up_required":
        answer = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})
        assert answer.status_code == 200, answer.content
    offered = OFFER.match(answer.get(dbsc.REGISTRATION_HEADER, ""))
    assert offered, dict(answer.items())
    key = DeviceKey()
    registered = post_register(thief, key.proof(offered["challenge"]))
    assert registered.status_code == 200, registered.content
    return key, registered.json()["session_identifier"]


def _refresh(client: Client, key: DeviceKey, binding: str) -> Any:
    first = post_refresh(client, binding)
    if first.status_code != 403:
        return first
    match = CHALLENGE.match(first[dbsc.CHALLENGE_HEADER])
    assert match, first.content
    return post_refresh(client, binding, key.proof(match["challenge"], registration=False))


def test_his_keys_refresh_with_her_copied_device_cookie_does_not_move_his_binding_onto_her_browser(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: a refresh signed by a key moves its binding only onto a device cookie the binding's own
    browser was given (never onto another browser of the account: her copied, unbound device cookie), and
    her browser is never judged by a key she never had. The attacker had her password and a copy of her
    cookie jar (her device cookie); no code. He signs in to her account on a fresh browser of his own (a new
    browser on her ISP with her user agent: allowed at 25), answers the registration offer with his own
    key, then, from a client with no session at all, runs a refresh of that binding presenting her copied
    device cookie: ``verify_refresh`` moves the binding onto her device id, with none of
    ``_check_bindable``'s rules (round thirty-four/five: a cookie the account used before is bound only
    after a passkey). Her own unbound browser (Firefox, Safari, a Mac) is then ``device_binding_missing``
    +60 at every sign-in, stepped up as "the copy" for as long as he refreshes his key (400 days), her offer
    to bind refused (an active binding), while his copy with his key is her key-proven browser."""
    her, totp = _her_unbound_browser(clock, user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value

    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)
    thief.post("/api/logout")

    mover = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    mover.cookies[DEVICE] = stolen  # her copied device cookie, no session
    moved = _refresh(mover, key, binding)
    row = DbscSession.objects.get(session_id=binding)
    on_hers = row.device_hash == device_hash(device_id_from_cookie(stolen))

    clock.shift(timedelta(hours=2))
    hers = _login(her)
    first = f"{hers.json()['status']} {_summary(_last())}"
    if hers.json()["status"] == "step_up_required":
        clock.shift(timedelta(seconds=31))
        api_post(her, "api-step-up-totp", {"code": totp_token(totp)})
    her.post("/api/logout")
    later = []
    for _ in range(3):  # the following days, the thief refreshing his key on her id now and then
        clock.shift(timedelta(days=1))
        assert _refresh(mover, key, binding).status_code == 200
        again = _login(her)
        later.append(f"{again.json()['status']} {_summary(_last())}")
        her.post("/api/logout")
    assert "device_binding_missing" not in first and not any("device_binding_missing" in x for x in later), (
        f"refresh with her cookie: {moved.status_code}, binding now on her device id: {on_hers}; "
        f"her own browser's next sign-in: {first}; the next days: {later}"
    )


INCIDENT = "/admin/authguard/loginevent/incident/"
DESK_PERMS = ("auth.view_user", "authguard.view_loginevent", "authguard.contain_account")


def test_the_desks_containment_ends_the_thiefs_device_binding(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: the desk's containment (end sessions) ends the DBSC bindings of the account too
    (``dbsc.end_device_binding``, never called): a key the thief registered during the intrusion must not
    outlive it. The attacker had her password and a copy of her jar (her device cookie). He signs in on a
    browser of his own (allowed: her ISP, her user agent) and binds it to his key; the new-browser alert
    makes the desk end her sessions; later, with no session and no password needed any more, his key's
    refresh still answers and moves the binding onto her copied device cookie: her own browser is stepped
    up as "the copy" (``device_binding_missing``) after the containment."""
    her, totp = _her_unbound_browser(clock, user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value
    hanako = LoginEvent.objects.filter(user__username="hanako").first().user

    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)

    clock.shift(timedelta(minutes=30))
    desk = staff_user("desk-a", perms=DESK_PERMS)
    contained = staff_client(desk).post(
        INCIDENT, {"user": str(hanako.pk), "containment": "end_sessions", "reason": "new browser alert"}
    )
    assert contained.status_code == 303
    assert thief.get("/api/portfolio").status_code != 200  # his session ended
    alive = DbscSession.objects.get(session_id=binding).ended_at is None

    clock.shift(timedelta(days=1))
    mover = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    mover.cookies[DEVICE] = stolen
    moved = _refresh(mover, key, binding)
    hers = _login(her)
    first = f"{hers.json()['status']} {_summary(_last())}"
    assert not alive and moved.status_code != 200 and "device_binding_missing" not in first, (
        f"his binding alive after the containment: {alive}; his refresh with her cookie: "
        f"{moved.status_code}; her next sign-in: {first}"
    )


def test_a_customer_without_a_second_factor_keeps_her_own_browser_after_his_keys_refresh(
    clock: Any, user_factory: Any
) -> None:
    """Secure: her own browser of days keeps signing her in; another browser's key never decides for hers.
    The attacker had her password and a copy of her cookie jar (her device cookie). Hanako has no second
    factor yet (password only, as many portals' customers). The same move as above (his fresh browser
    allowed at 25, his key registered, refreshed with her copied device cookie): her own browser's sign-in
    is now ``device_binding_missing`` +60, a step-up she has no factor for: *denied*, at every try, for as
    long as he refreshes his key, while he keeps signing in (password only) as her key-proven browser."""
    user_factory("hanako", password=PASSWORD)
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    for _ in range(5):
        assert _login(her).json()["status"] == "ok", _summary(_last())
        assert her.get("/api/portfolio").status_code == 200
        her.post("/api/logout")
        clock.shift(timedelta(days=1))
    stolen = her.cookies[DEVICE].value

    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, None)
    thief.post("/api/logout")
    mover = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    mover.cookies[DEVICE] = stolen
    assert _refresh(mover, key, binding).status_code == 200

    tries = []
    for _ in range(3):
        clock.shift(timedelta(hours=6))
        answer = _login(her)
        tries.append(f"{answer.json()['status']} {_summary(_last())}")
        her.post("/api/logout")
    assert _refresh(mover, key, binding).status_code == 200
    mover.get("/api/csrf")
    his = f"{_login(mover).json()['status']} {_summary(_last())}"
    assert all(t.startswith("ok") for t in tries), f"her own browser's sign-ins: {tries}; his: {his}"


# -- the move: her own browser's new id, and his session's ------------------------------------------------


def test_her_browser_keeps_its_id_and_binding_after_a_current_copy_was_stepped_up_and_she_signs_in_twice(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Kept (round thirty-four, changed in round forty-seven): a current copy of her bound browser's cookie,
    stepped up with one relayed code, is re-issued nothing and retires nothing, so her bound browser, signing
    in after it, keeps its device id (round thirty-four gave it a new one, onto which her key's refresh then
    moved her binding). She signs in again before her key's refresh; the refresh keeps her binding on her
    id, and her pages load."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value
    clock.shift(timedelta(hours=2))
    _thief_steps_up_with_a_current_copy(clock, stolen, totp)
    clock.shift(timedelta(hours=6))
    assert _her_refresh(her, key, binding).status_code == 200
    assert _login(her).json()["status"] == "ok", _summary(_last())
    assert her.get("/api/portfolio").status_code == 200
    kept = her.cookies[DEVICE].value
    assert device_id_from_cookie(kept) == device_id_from_cookie(stolen)
    clock.shift(timedelta(minutes=3))
    assert _login(her).json()["status"] == "ok", _summary(_last())  # signed in again (no sign-out between)

    clock.shift(timedelta(minutes=11))
    assert _her_refresh(her, key, binding).status_code == 200
    row = DbscSession.objects.get(session_id=binding)
    assert row.ended_at is None and row.device_hash == device_hash(device_id_from_cookie(kept))
    assert her.get("/api/portfolio").status_code == 200


def test_his_session_given_her_device_id_by_a_relayed_step_up_does_not_move_his_binding_onto_it(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """His browser bound to his key in her account, he puts her copied device cookie into his own session and
    relays one code: his step-up re-issues her id's next generation to his session. That session's browser
    proved no binding of her cookie, so his key's refresh leaves his binding on his own browser, and her own
    browser's next sign-in is not ``device_binding_missing``."""
    her, totp = _her_unbound_browser(clock, user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)
    his_device = DbscSession.objects.get(session_id=binding).device_hash

    clock.shift(timedelta(minutes=2))
    thief.cookies[DEVICE] = stolen
    thief.get("/api/portfolio")  # held: his session shows another device cookie
    clock.shift(timedelta(seconds=31))
    api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})  # one relayed code
    thief.get("/api/portfolio")
    clock.shift(timedelta(minutes=11))
    thief.cookies.pop(BOUND, None)
    refreshed = _refresh(thief, key, binding)
    row = DbscSession.objects.get(session_id=binding)
    clock.shift(timedelta(hours=1))
    her.post("/api/logout")
    hers = _login(her)
    assert refreshed.status_code == 200
    assert row.device_hash == his_device, "his binding moved off his own browser"
    assert "device_binding_missing" not in _last().reasons, f"{hers.json()['status']} {_summary(_last())}"


# -- the doors that end access end the bindings --------------------------------------------------------------


def _assert_ended(binding: str, reason: str, client: Client, key: DeviceKey) -> None:
    """The binding's row is ended with ``reason``, and a later refresh by its key is refused (404)."""
    row = DbscSession.objects.get(session_id=binding)
    assert row.ended_at is not None and row.end_reason == reason, (row.ended_at, row.end_reason)
    client.cookies.pop(BOUND, None)
    answer = _refresh(client, key, binding)
    assert answer.status_code == 404 and answer.json()["code"] == "unknown_session", answer.content
    assert not answer.cookies.get(BOUND)


@pytest.mark.parametrize("containment", ["end_sessions", "lock_account", "force_password_reset"])
def test_each_containment_of_the_desk_ends_the_thiefs_binding(
    clock: Any, user_factory: Any, totp_factory: Any, containment: str
) -> None:
    """The desk's three containments (end the sessions, lock the account, force a password reset) end the
    account's DBSC bindings with the sessions (``access_ended``); his key's refresh is refused a day later,
    from his own browser or with her copied device cookie."""
    her, totp = _her_unbound_browser(clock, user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value
    hanako = LoginEvent.objects.filter(user__username="hanako").first().user
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)

    clock.shift(timedelta(minutes=30))
    desk = staff_user("desk-a", perms=DESK_PERMS)
    contained = staff_client(desk).post(
        INCIDENT, {"user": str(hanako.pk), "containment": containment, "reason": "new browser alert"}
    )
    assert contained.status_code == 303
    clock.shift(timedelta(days=1))
    _assert_ended(binding, "access_ended", thief, key)
    mover = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    mover.cookies[DEVICE] = stolen
    assert _refresh(mover, key, binding).status_code == 404


def test_forgetting_his_browser_ends_its_binding(clock: Any, user_factory: Any, totp_factory: Any) -> None:
    """She sees his browser among her remembered ones and forgets it (verified with her passkey): its DBSC
    binding ends with it (``device_forgotten``), and his key's refresh is refused."""
    her, totp = _her_unbound_browser(clock, user_factory, totp_factory)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)
    his_browser = KnownDevice.objects.get(cookie_hash=DbscSession.objects.get(session_id=binding).device_hash)

    clock.shift(timedelta(minutes=30))
    authenticator, _device = give_passkey(his_browser.user)
    assert _login(her).json()["status"] == "ok", _summary(_last())
    assert passkey_verify(her, authenticator).status_code == 200
    forgot = her.post(f"/authguard/security/devices/{his_browser.pk}/revoke/")
    assert forgot.status_code == 302 and "reverify" not in forgot["Location"], forgot
    assert KnownDevice.objects.get(pk=his_browser.pk).revoked_at is not None
    _assert_ended(binding, "device_forgotten", thief, key)


def test_signing_out_everywhere_ends_his_binding_and_keeps_her_browsers(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Her browser is bound to her own key; his, with her password, to his. She signs out every other session
    (verified with her passkey): his binding ends (``signed_out_everywhere``) and his refresh is refused;
    her browser's binding stays, and her key's refresh answers."""
    her, her_key, her_binding, totp = _her_bound_browser(user_factory, totp_factory)
    clock.shift(timedelta(hours=2))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)

    clock.shift(timedelta(minutes=30))
    assert _her_refresh(her, her_key, her_binding).status_code == 200
    her.post("/api/logout")
    assert _login(her).json()["status"] == "ok", _summary(_last())
    authenticator, _device = give_passkey(DbscSession.objects.get(session_id=binding).user)
    assert passkey_verify(her, authenticator).status_code == 200
    ended = her.post("/authguard/security/sessions/end-others/")
    assert ended.status_code == 302 and "reverify" not in ended["Location"], ended
    assert thief.get("/api/portfolio").status_code != 200
    _assert_ended(binding, "signed_out_everywhere", thief, key)
    assert DbscSession.objects.get(session_id=her_binding).ended_at is None
    clock.shift(timedelta(minutes=11))
    assert _her_refresh(her, her_key, her_binding).status_code == 200
    assert her.get("/api/portfolio").status_code == 200


def test_a_password_change_ends_his_binding(clock: Any, user_factory: Any, totp_factory: Any) -> None:
    """Her password is changed (or reset): every session ends, and every DBSC binding of the account
    registered within the month with them (``sessions_ended``); his key's refresh is refused."""
    her, totp = _her_unbound_browser(clock, user_factory, totp_factory)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)
    clock.shift(timedelta(minutes=30))
    hanako = DbscSession.objects.get(session_id=binding).user
    hanako.set_password("a new and long passphrase")
    hanako.save()
    assert thief.get("/api/portfolio").status_code != 200
    _assert_ended(binding, "sessions_ended", thief, key)


def test_a_password_reset_ends_his_new_binding_and_keeps_her_browsers_of_months(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Review, round forty: a reset by e-mail is open to whoever has her mailbox. Ending her browser's
    binding of months with it left a copy of her device cookie her trusted, unbound browser (the reason the
    failure lock keeps them). A password change ends the keys of the last month (an intrusion's) and keeps
    her older ones: her key still refreshes, his does not."""
    from .test_dbsc_session_rebind_walkarounds import _her_bound_history, _her_refresh

    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=31)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)
    clock.shift(timedelta(minutes=30))
    hanako = DbscSession.objects.get(session_id=binding).user
    hanako.set_password("a new and long passphrase")
    hanako.save()
    _assert_ended(binding, "sessions_ended", thief, key)
    kept = DbscSession.objects.get(session_id=her_binding)
    assert kept.ended_at is None and kept.end_reason == ""
    assert _her_refresh(her, her_key, her_binding).status_code == 200


def test_a_lock_after_failed_sign_ins_leaves_the_bindings(
    clock: Any, user_factory: Any, totp_factory: Any, settings: Any
) -> None:
    """Kept as a trade: anyone who knows her username can lock her account with wrong passwords. That lock
    ends her sessions but not her DBSC bindings: a binding of a cookie the account used is made again only
    after a passkey, so ending it would strip her browser's key proof on demand. The desk's lock ends them
    (above)."""
    her, her_key, her_binding, _totp = _her_bound_browser(user_factory, totp_factory)
    hanako = DbscSession.objects.get(session_id=her_binding).user
    settings.AUTHGUARD_LOCKOUT_FAILURES = 2
    for _ in range(2):
        lockout.record_failure(hanako, kind="password")
    assert lockout.is_locked(hanako)
    assert DbscSession.objects.get(session_id=her_binding).ended_at is None
