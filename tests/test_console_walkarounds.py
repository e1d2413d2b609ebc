"""The staff side and its faults, attacked (red team, 2026-12-05; each test failed on the code before): a
stale unlock request, a release of a contained account's order, DRF's token admin, a failing portal hook,
a failure lock that kept the API tokens."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from authguard.console import approvals
from authguard.login import lockout
from authguard.models import AccountLock, HeldOrder, StaffApproval
from authguard.orders import guard as orders
from demo_site.brokerage import services

from .console_data import staff_user
from .staff_fixtures import locked_by_failures, staff_client
from .test_staff_approvals import session_request

pytestmark = [pytest.mark.django_db]

#: Each test of a containment runs for each of the desk's three.
every_containment = pytest.mark.parametrize(
    "containment", ["lock_account", "end_sessions", "force_password_reset"]
)

#: When her authenticator app was bound: long before any of this.
START_OF_TIME = datetime(2024, 1, 1, tzinfo=UTC)

PERMS = (
    "authguard.view_accountlock",
    "authguard.unlock_account",
    "authguard.contain_account",
    "authguard.add_policyversion",
    "authguard.view_policyversion",
    "authguard.change_heldorder",
    "authguard.view_heldorder",
)


@pytest.fixture
def locked(user_factory: Any, settings: Any) -> Any:
    return locked_by_failures(user_factory("alice"), settings)


def held_order_and_release_request(order_api: Any, desk: Any) -> tuple[HeldOrder, StaffApproval]:
    """tanaka's held buy of an illiquid stock (the thief's, signed in as her), and ``desk``'s request to
    release it ("the customer confirmed by phone": the thief's phone call), waiting for a second desk."""
    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    answer = browser.order("buy", "3Z3A", 5000)
    held = HeldOrder.objects.get(pk=answer.json()["confirmation"]["id"])
    release = approvals.request_action(
        session_request(staff_client(desk)), action="release_order", target=held, reason="confirmed by phone"
    )
    assert release.status == "pending"
    return held, release


@pytest.fixture
def desks() -> tuple[Any, Any, Any]:
    return (
        staff_user("desk-a", perms=PERMS),
        staff_user("desk-b", perms=PERMS),
        staff_user("desk-c", perms=PERMS),
    )


@pytest.mark.battery(66)
def test_a_stale_unlock_request_does_not_undo_a_later_containment_lock(locked: Any, desks: Any) -> None:
    """Desk A (phished or insider) asks to unlock alice after a run of failures. Alice unlocks herself with
    her passkey; later desk C locks the account for a takeover (containment). Approving A's old request must
    not end the *new* lock it was never about: the request was about a lock that already ended."""
    desk_a, desk_b, desk_c = desks
    stale = approvals.request_action(
        session_request(staff_client(desk_a)),
        action="unlock_account",
        target=locked,
        reason="customer called",
    )
    lockout.unlock(locked, by=None, reason="identity check: passkey")  # her own way back
    assert not lockout.is_locked(locked)
    contained = approvals.request_action(
        session_request(staff_client(desk_c)),
        action="lock_account",
        target=locked,
        reason="takeover in progress",
    )
    assert contained.status == "executed" and lockout.is_locked(locked)
    assert StaffApproval.objects.get(pk=stale.pk).status == "pending"  # nothing closed the old request

    try:
        result = approvals.approve(session_request(staff_client(desk_b)), approval_id=stale.pk)
    except approvals.ApprovalError:
        result = StaffApproval.objects.get(pk=stale.pk)
    # SECURE: the containment lock stands; the stale request failed or was closed, not executed.
    assert lockout.is_locked(locked), "a stale unlock request ended the desk's containment lock"
    assert AccountLock.objects.get(user=locked).locked_reason.startswith("security desk")
    assert result.status != "executed"


@pytest.mark.battery(66)
def test_a_containment_lock_closes_or_blocks_a_pending_release_of_the_customers_held_order(
    settings: Any, desks: Any, tanaka: Any, order_api: Any
) -> None:
    """A held order (a suspicious buy of an illiquid stock) waits; desk A asks for its release ("the
    customer confirmed by phone"). Desk C then locks the account because it is being taken over. Approving
    A's request must not execute the held order of an account the desk has just contained (docs: "a locked
    account's pending ones expire unconfirmed")."""
    desk_a, desk_b, desk_c = desks
    held, release = held_order_and_release_request(order_api, desk_a)
    lock = approvals.request_action(
        session_request(staff_client(desk_c)), action="lock_account", target=tanaka, reason="account takeover"
    )
    assert lock.status == "executed" and lockout.is_locked(tanaka)

    with contextlib.suppress(approvals.ApprovalError):
        approvals.approve(session_request(staff_client(desk_b)), approval_id=release.pk)
    held.refresh_from_db()
    # SECURE: the contained account's held order is not executed on the desk's word.
    assert held.status != HeldOrder.Status.CONFIRMED, "a locked account's held order was executed"
    assert StaffApproval.objects.get(pk=release.pk).status != "executed"


@pytest.mark.battery(66)
def test_the_console_shows_no_customer_api_token_and_one_desk_cannot_mint_one(user_factory: Any) -> None:
    """authguard replaces django-otp's TOTP admin because it showed secrets to any staff member allowed to
    view devices. DRF's TokenAdmin (``rest_framework.authtoken``, which authguard.drf requires) is left in
    the console: it lists every customer's API bearer token to whoever may view tokens, and lets one staff
    member mint a token for any customer (a full API sign-in as her: no login scoring, no step-up, no four
    eyes, no notice)."""
    Token = pytest.importorskip("rest_framework.authtoken.models").Token
    alice = user_factory("alice")
    bob = user_factory("bob")
    token = Token.objects.create(user=alice)  # alice's app signed in
    viewer = staff_client(staff_user("desk-view", perms=("authtoken.view_tokenproxy",)))
    page = viewer.get("/admin/authtoken/tokenproxy/")
    # SECURE: a console page never shows a credential someone could use as the customer.
    leaked = page.status_code == 200 and token.key in page.content.decode()

    minter = staff_client(
        staff_user("desk-mint", perms=("authtoken.view_tokenproxy", "authtoken.add_tokenproxy"))
    )
    minter.post("/admin/authtoken/tokenproxy/add/", {"user": str(bob.pk)})
    minted = Token.objects.filter(user=bob).first()
    assert not leaked, "the console lists alice's API token in clear"
    assert minted is None, f"one staff member minted an API token for bob: {minted.key}"


@pytest.mark.battery(66)
def test_a_failing_portal_release_hook_does_not_undo_the_desks_cancel_of_a_held_order(
    monkeypatch: Any, desks: Any, tanaka: Any, order_api: Any
) -> None:
    """Fault: the portal's ``release()`` hook (closing its own copy of the order) raises, e.g. its back office
    is down. The desk cancels a suspicious held order (one staff member, the protective action). The cancel
    must stand in authguard (fail closed: the order can never execute), with the portal's copy closed later;
    instead the hook's exception rolls the cancel back and the order stays pending and confirmable."""
    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    held = HeldOrder.objects.get(pk=browser.order("buy", "3Z3A", 5000).json()["confirmation"]["id"])

    def down(self: Any, held: Any, *, status: str) -> None:
        raise RuntimeError("back office unavailable")

    monkeypatch.setattr(services.HeldOrderExecutor, "release", down)
    desk_a = desks[0]
    with contextlib.suppress(RuntimeError):
        orders.staff_cancel(held, by=desk_a, reason="phishing report from the customer")
    held.refresh_from_db()
    # SECURE: the desk's cancel is recorded; the order can no longer be confirmed.
    assert held.status == HeldOrder.Status.CANCELLED, f"the desk's cancel was undone: {held.status}"


@pytest.mark.battery(66)
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.usefixtures("geoip")
def test_an_api_token_does_not_survive_a_failure_lock_and_come_back_at_the_unlock(
    alice_with_totp: Any, settings: Any
) -> None:
    """docs/drf.md: "A password change or reset, and an account lock, delete every token of the user as they
    end the user's sessions". The automatic lock (consecutive failures) ends the sessions but keeps the API
    tokens: TokenAuthentication only refuses them *while* locked. When the account is unlocked (the desk's
    four-eyes unlock, or the customer's passkey), a thief's token from before the lock works again, while
    every browser session of his stays ended."""
    pytest.importorskip("rest_framework")
    from rest_framework.authtoken.models import Token

    from .test_drf import api, obtain, with_token

    alice = alice_with_totp
    token = obtain(api()).json()["token"]  # the thief's API sign-in (or any token of the account)
    assert with_token(api(), token).get("/drf/portfolio").status_code == 200
    settings.AUTHGUARD_LOCKOUT_FAILURES = 2
    obtain(api(), password="wrong password!")
    obtain(api(), password="wrong password!")
    assert lockout.is_locked(alice)
    lockout.unlock(alice, by=None, reason="identity check: passkey")  # the customer's own way back
    # SECURE: the lock ended every API token, as it ended every session.
    assert not Token.objects.filter(user=alice).exists(), "the failure lock kept the account's API tokens"
    assert with_token(api(), token).get("/drf/portfolio").status_code in (401, 403)


# -- round 2, against the fixes above --------------------------------------------------------------------


@pytest.mark.battery(66)
@pytest.mark.parametrize("containment", ["lock_then_unlock", "end_sessions", "force_password_reset"])
def test_a_release_requested_before_the_desks_containment_is_not_executed_after_it(
    desks: Any, tanaka: Any, order_api: Any, containment: str
) -> None:
    """The thief, signed in as tanaka, buys an illiquid stock; the order is held. He phones the desk as
    tanaka and desk A asks for its release. Desk C then contains the account as a takeover. e9ac580 only
    refuses the release *while* the account is locked (``staff_release``: ``is_locked_fail_closed``):

    * ``lock_then_unlock``: the lock is lifted (tanaka's own passkey, the desk's unlock) within the order's
      confirmation window, and desk B's approval of the stale request executes the thief's order; the
      unlock request got a ``lock_count`` for exactly this shape (docs/staff-approvals.md: "a request is for
      the lock it saw"), the release request did not;
    * ``end_sessions`` / ``force_password_reset``: the desk's other containment actions leave the account
      unlocked and the order pending, and the stale release executes at once.

    SECURE: a release request is about the account as it was when asked: a containment since (a lock, an
    end of sessions, a forced reset) makes it fail, as the stale unlock request does."""
    desk_a, desk_b, desk_c = desks
    held, release = held_order_and_release_request(order_api, desk_a)

    action = "lock_account" if containment == "lock_then_unlock" else containment
    contained = approvals.request_action(
        session_request(staff_client(desk_c)), action=action, target=tanaka, reason="account takeover"
    )
    assert contained.status == "executed"
    if containment == "lock_then_unlock":
        assert lockout.is_locked(tanaka)
        lockout.unlock(tanaka, by=None, reason="identity check: passkey")  # her own way back
    assert not lockout.is_locked(tanaka)

    with contextlib.suppress(approvals.ApprovalError):
        approvals.approve(session_request(staff_client(desk_b)), approval_id=release.pk)
    held.refresh_from_db()
    # SECURE: the order the thief placed before the containment is not executed on a request from before it.
    assert held.status != HeldOrder.Status.CONFIRMED, (
        f"a release requested before the desk's {containment} executed the held order after it"
    )
    assert StaffApproval.objects.get(pk=release.pk).status != "executed"


@pytest.mark.battery(66)
def test_a_stale_unlock_request_does_not_undo_a_containment_lock_taken_while_already_locked(
    user_factory: Any, settings: Any
) -> None:
    """The thief's guesses lock alice's account (a failure lock, ``lock_count`` 1). He phones the desk as
    alice ("I mistyped my password") and desk A asks to unlock her. Desk C, who reads the login events,
    sees a takeover and contains the account with "lock": it is already locked, so ``lockout.lock`` only
    ends the sessions and cancels a waiting self-service unlock (``locked_now`` False): no new
    ``lock_count``, the reason stays "too many failures". Desk B approves A's request: its ``lock_count``
    (e9ac580) still matches, and the desk's containment is undone on a request made before it.

    SECURE: the desk's containment lock is a new lock as far as an earlier unlock request is concerned:
    the request fails (docs/staff-approvals.md: "approving it after the account was locked again (the
    desk's containment lock ...) fails")."""
    perms = ("authguard.view_accountlock", "authguard.unlock_account", "authguard.contain_account")
    desk_a, desk_b, desk_c = (staff_user(f"desk-{n}", perms=perms) for n in "abc")
    alice = locked_by_failures(user_factory("alice"), settings)

    stale = approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=alice, reason="customer called"
    )
    assert stale.status == "pending"
    contained = approvals.request_action(
        session_request(staff_client(desk_c)), action="lock_account", target=alice, reason="account takeover"
    )
    assert contained.status == "executed" and lockout.is_locked(alice)

    try:
        result = approvals.approve(session_request(staff_client(desk_b)), approval_id=stale.pk)
    except approvals.ApprovalError:
        result = StaffApproval.objects.get(pk=stale.pk)
    # SECURE: the desk's containment stands; the request from before it is not carried out.
    assert lockout.is_locked(alice), (
        "a stale unlock request ended the desk's containment lock (taken while already locked): "
        f"{AccountLock.objects.get(user=alice).locked_reason!r}"
    )
    assert result.status != "executed"


@pytest.mark.battery(66)
def test_the_token_admin_cannot_be_filtered_by_the_key_to_read_it_out(user_factory: Any) -> None:
    """authguard.console.admin.tokens: "no console page shows a customer's API key". The list page shows no
    key, but Django's changelist accepts a lookup on any local field in the query string
    (``ModelAdmin.lookup_allowed``: "Either a local field filter ... return True"): ``?key__startswith=``
    narrows the list to alice's row or to none, so a desk with view permission reads her bearer token out
    one hex digit at a time (at most 16 x 40 page views, scripted in minutes)."""
    Token = pytest.importorskip("rest_framework.authtoken.models").Token
    alice = user_factory("alice")
    token = Token.objects.create(user=alice)  # alice's app signed in
    viewer = staff_client(staff_user("desk-view", perms=("authtoken.view_tokenproxy",)))

    def row_shown(prefix: str) -> bool:
        page = viewer.get("/admin/authtoken/tokenproxy/", {"key__startswith": prefix})
        return page.status_code == 200 and "alice" in page.content.decode()

    recovered = ""
    for _position in range(len(token.key)):
        for digit in "0123456789abcdef":
            if row_shown(recovered + digit):
                recovered += digit
                break
        else:
            break
    # SECURE: no query string lets a console page tell one key from another.
    assert recovered != token.key, f"the desk read alice's API token out of the token admin: {recovered}"


@pytest.mark.battery(66)
@every_containment
def test_a_revocation_the_thief_asked_for_before_the_containment_still_deletes_her_factor_after_it(
    user_factory: Any, containment: str
) -> None:
    """aef2bf0: "a request is about the account as it was when asked": a release or an unlock asked for on
    the thief's phone call fails once the desk contained the account since. The third customer-facing
    request the thief can phone in, revoke_factor ("I lost my phone, delete my authenticator"), has no
    such rule: desk A asks, desk C contains the account as a takeover, desk B approves A's stale request and
    the customer's own factor of long standing (her way back from the lock: unlock with codes, the step-up
    after the forced reset) is deleted on the thief's word."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    perms = (
        "authguard.view_accountlock",
        "authguard.unlock_account",
        "authguard.contain_account",
        "otp_totp.delete_totpdevice",
        "otp_totp.view_totpdevice",
    )
    desk_a, desk_b, desk_c = (staff_user(f"desk-{n}", perms=perms) for n in "abc")
    alice = user_factory("alice")
    hers = TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)

    stale = approvals.request_action(
        session_request(staff_client(desk_a)), action="revoke_factor", target=hers, reason="lost phone"
    )
    assert stale.status == "pending", (stale.status, stale.result)
    contained = approvals.request_action(
        session_request(staff_client(desk_c)), action=containment, target=alice, reason="account takeover"
    )
    assert contained.status == "executed", (contained.status, contained.result)

    with contextlib.suppress(approvals.ApprovalError):
        approvals.approve(session_request(staff_client(desk_b)), approval_id=stale.pk)
    # SECURE: as for a release or an unlock: a request from before the containment does not act after it.
    assert TOTPDevice.objects.filter(pk=hers.pk).exists(), "revoked on a request from before the containment"
    assert StaffApproval.objects.get(pk=stale.pk).status != "executed"


# -- what a containment leaves the thief (red team, round four) --------------------------------------------


@pytest.fixture
def taken_over(brokerage_customer: Any, settings: Any, geoip: Any) -> Iterator[Any]:
    """hanako (authenticator app, a laptop the account has known for a year) at START, frozen."""
    from authguard.models import KnownDevice

    from .conftest import of_long_standing
    from .test_device_cookie_generations import START, _browser_in_use, _later_sign_ins

    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    hanako = of_long_standing(brokerage_customer(holdings={"7203": 100}, totp=True))
    with time_machine.travel(START, tick=False) as clock:
        hanako.laptop = _browser_in_use()
        _later_sign_ins(hanako.laptop, clock, 3)
        KnownDevice.objects.filter(user=hanako).update(
            first_seen_at=START - timedelta(days=365), learned_at=START - timedelta(days=365)
        )
        hanako.clock = clock
        yield hanako


def contain(user: Any, action: str) -> StaffApproval:
    desk = staff_user("desk-c", perms=("authguard.contain_account",))
    contained = approvals.request_action(
        session_request(staff_client(desk)), action=action, target=user, reason="account takeover"
    )
    assert contained.status == "executed", (contained.status, contained.result)
    return contained


@pytest.mark.battery(66)
@every_containment
def test_a_re_bind_grant_given_before_the_containment_binds_nothing_after_it(
    taken_over: Any, containment: str
) -> None:
    """The thief (her password, her stolen laptop of long standing) phones the desk as hanako, "I lost my
    phone", and gets a re-binding grant (72 h). An hour later the desk finds the takeover and contains the
    account. The grant was no staff action: nothing ended it, and after an end of sessions he signed in
    again and bound his passkey through it. Every containment withdraws it."""
    from authguard.factors import inventory, lifecycle
    from authguard.models import AccountSecurity, FactorKind, FactorRecord, PasskeyDevice

    from .test_device_cookie_generations import _cookie, _copy, _login

    hanako, clock = taken_over, taken_over.clock
    FactorRecord.objects.update_or_create(
        device_id=hanako.totp.persistent_id,
        defaults={"user_id": hanako.pk, "kind": FactorKind.TOTP, "enrolled_at": START_OF_TIME},
    )
    FactorRecord.objects.filter(device_id=hanako.totp.persistent_id).update(disabled_at=timezone.now())
    assert not inventory.user_factors(hanako)
    stolen = _cookie(hanako.laptop)
    lifecycle.grant_rebind(hanako, by_staff=staff_user("desk-a", perms=()))  # the thief's phone call
    clock.shift(3600)
    contained = contain(hanako, containment)
    assert "re-binding grant withdrawn" in contained.result
    assert AccountSecurity.objects.get(user=hanako).rebind_granted_until is None
    if containment != "end_sessions":
        return  # locked, or his password replaced: he cannot sign in to try
    clock.shift(600)
    thief = _copy(stolen)
    assert _login(thief)["status"] == "ok"  # password only: she has no usable factor to step up with
    refused = thief.post("/authguard/api/passkeys/options", "{}", "application/json")
    assert refused.status_code == 403 and refused.json()["code"] == "rebind_required", refused.content
    assert not PasskeyDevice.objects.filter(user=hanako).exists()


@pytest.mark.battery(66)
@every_containment
def test_the_thiefs_cooling_off_passkey_does_not_survive_the_desks_containment(
    taken_over: Any, containment: str
) -> None:
    """With one relayed code the thief added a passkey of his own (cooling off, 14 days). The desk forced a
    password reset (or ended the sessions, or locked the account), and five minutes later he signed in with
    that passkey, no password needed (or after the unlock). Every containment revokes what is still cooling
    off, as her own password reset does, and tells her."""
    from authguard.models import Notification, PasskeyDevice
    from authguard.testing import SoftAuthenticator

    from .conftest import IP_OSAKA, register_passkey, totp_token
    from .test_device_cookie_generations import _client, _login

    hanako, clock = taken_over, taken_over.clock
    thief = _client(IP_OSAKA)
    assert _login(thief)["status"] == "step_up_required"
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, "application/json")
    assert relayed.status_code == 200, relayed.content
    key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    assert register_passkey(thief, key).status_code == 201  # his, cooling off
    clock.shift(3600)

    contained = contain(hanako, containment)
    assert "1 sign-in method(s) still cooling off revoked" in contained.result
    assert not PasskeyDevice.objects.filter(user=hanako).exists()
    assert Notification.objects.filter(user=hanako, kind="factor_removed").exists()
    hanako.totp.refresh_from_db()
    assert hanako.totp.confirmed  # hers, of long standing, untouched
    clock.shift(300)
    options = thief.post("/authguard/api/login/passkey/options", "{}", "application/json")
    back = thief.post("/authguard/api/login/passkey", key.get(options.json()), "application/json")
    assert back.status_code in (400, 403), back.content
    assert thief.get("/api/portfolio").status_code != 200


@pytest.mark.battery(66)
@every_containment
def test_the_thiefs_browser_does_not_age_into_her_browser_of_a_month_after_the_containment(
    taken_over: Any, containment: str
) -> None:
    """The thief signed in with the password and one relayed code from a browser of his own: the account
    knows it from then on. The desk contained the account, but his browser stayed a known device and kept
    aging: a month later it was "a browser the account has known for a month" (its own throttle scope; a
    factor enrolled from a low-risk sign-in on it vouched for) and its cookie earned the known-device
    discount. Every containment forgets the browsers the account met in the month before it; hers of long
    standing are untouched."""
    from django.test import RequestFactory

    from authguard.factors import throttles
    from authguard.models import KnownDevice

    from .conftest import IP_OSAKA
    from .test_device_cookie_generations import _cookie

    hanako, clock = taken_over, taken_over.clock
    thief = in_with_one_relayed_code(hanako)
    his = KnownDevice.objects.filter(user=hanako, first_seen_at__gt=timezone.now() - timedelta(days=1))
    assert his.count() == 1
    clock.shift(3600)

    contained = contain(hanako, containment)
    assert "1 browser(s) without 30 days of standing forgotten" in contained.result
    assert his.get().revoked_at is not None
    assert not KnownDevice.objects.filter(user=hanako, revoked_at__isnull=False).exclude(pk=his.get().pk)

    clock.shift(timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS + 1))
    request = RequestFactory().get("/", REMOTE_ADDR=IP_OSAKA)
    request.COOKIES["authguard_device"] = _cookie(thief)
    assert throttles.established_device(request, user=hanako) is None
    laptop = RequestFactory().get("/")
    laptop.COOKIES["authguard_device"] = _cookie(hanako.laptop)
    assert throttles.established_device(laptop, user=hanako) is not None  # hers, of long standing


@pytest.mark.battery(66)
@every_containment
def test_the_browser_of_a_thief_who_sat_on_the_account_for_a_month_is_forgotten_by_the_containment(
    taken_over: Any, containment: str
) -> None:
    """The first containment rule forgot the browsers "first met in the last ESTABLISHED_DEVICE_DAYS":
    the window is exactly the age at which a browser becomes "hers" (its own throttle scope, a vouched
    session). The thief who phished one relayed code signs in once from his browser, does nothing for 31
    days (account sitting: the 2025 brokerage takeovers waited for the pump), then strikes; the desk
    contains the account that day. His browser, known to the account only through a relayed code
    (``history.note_device``: "nothing learned or trusted"), is already 31 days old: it is not forgotten
    and remains an established browser of hers after the containment (after the desk's lock, whoever has
    the username guesses at her codes unlock from it in a scope of its own, apart from the strangers').
    The desk cannot tell his from her new phone by age; it can by how the browser was ever verified: one
    the engine never learned (no allowed sign-in, no passkey) is no browser of long standing.
    SECURE: after the containment his browser is not an established browser of hers."""
    from django.test import RequestFactory

    from authguard.factors import throttles

    from .conftest import IP_OSAKA
    from .test_device_cookie_generations import _cookie

    hanako, clock = taken_over, taken_over.clock
    thief = in_with_one_relayed_code(hanako)
    thief.post("/api/logout", content_type="application/json")
    clock.shift(timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS + 1))  # he sits on the account

    contain(hanako, containment)
    request = RequestFactory().get("/", REMOTE_ADDR=IP_OSAKA)
    request.COOKIES["authguard_device"] = _cookie(thief)
    assert throttles.established_device(request, user=hanako) is None, (
        "the thief's browser, verified only by a relayed code, survived the containment as hers"
    )
    laptop = RequestFactory().get("/")
    laptop.COOKIES["authguard_device"] = _cookie(hanako.laptop)
    assert throttles.established_device(laptop, user=hanako) is not None  # hers, of long standing


def in_with_one_relayed_code(hanako: Any) -> Any:
    """The thief signs in from his own browser in Osaka with her password and one relayed authenticator
    code (the browser is only listed: a relayed code teaches the engine nothing); returns his browser."""
    from .conftest import IP_OSAKA, totp_token
    from .test_device_cookie_generations import _client, _login

    thief = _client(IP_OSAKA)
    assert _login(thief)["status"] == "step_up_required"
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, "application/json")
    assert relayed.status_code == 200, relayed.content
    assert thief.get("/api/portfolio").status_code == 200
    return thief
