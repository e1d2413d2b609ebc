"""Containment by the security desk (issue 16): lock an account, end its sessions, force a password reset,
block a network for N hours, from the incident page, the network lists page and the admin's bulk actions,
all through the one four-eyes flow (authguard.console.approvals).

Customers sign in through the real login form; staff sessions are verified with a real passkey
(tests/staff_fixtures.py); the blocks are checked by real logins from the tests' GeoIP networks.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.forms import PasswordResetForm
from django.db import connection
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from authguard.console import approvals, containment, four_eyes
from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, NetworkBlock, Notification, SessionRecord, StaffApproval
from authguard.notifications.messages import render
from authguard.risk import networks

from .conftest import IP_SG_VPS, IP_TOKYO, IP_US_HOME, UA_FIREFOX_LINUX
from .console_data import staff_user
from .staff_fixtures import give_passkey, password_only_client, staff_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

INCIDENT = "/admin/authguard/loginevent/incident/"
NETWORKS = "/admin/authguard/loginevent/network-lists/"
EVENTS = "/admin/authguard/loginevent/"
DESK_PERMS = (
    "auth.view_user",
    "authguard.view_loginevent",
    "authguard.contain_account",
    "authguard.unlock_account",
    "authguard.add_networkblock",
    "authguard.view_networkblock",
    "authguard.view_heldorder",
)


@pytest.fixture
def desks() -> tuple[Any, Any]:
    return staff_user("desk-a", perms=DESK_PERMS), staff_user("desk-b", perms=DESK_PERMS)


@pytest.fixture
def hanako_signed_in(user_factory: Any, browser_at: Any) -> tuple[Any, Any]:
    """A customer signed in from her usual browser in Tokyo, with an API token as well."""
    hanako = user_factory("hanako")
    browser = browser_at(IP_TOKYO)
    answer = browser.sign_in("hanako")
    assert answer.status_code == 302, answer.content
    assert browser.session.get(SESSION_KEY) == str(hanako.pk)
    Token.objects.create(user=hanako)
    return hanako, browser


def store_has(session_key: str) -> bool:
    return bool(import_module(django_settings.SESSION_ENGINE).SessionStore().exists(session_key))


def contain(client: Any, user: Any, action: str, reason: str = "account takeover in progress") -> Any:
    return client.post(INCIDENT, {"user": str(user.pk), "containment": action, "reason": reason})


def messages_of(answer: Any) -> list[str]:
    return [str(m) for m in answer.wsgi_request._messages]


def signed_in(browser: Any) -> bool:
    return browser.get("/").wsgi_request.user.is_authenticated


def customer_mail(user: Any, action: str) -> tuple[Notification, str]:
    note = Notification.objects.get(user=user, kind="staff_action", context__action=action)
    _subject, body = render(note)
    return note, body


# -- lock, end sessions, force a password reset (the incident page) ---------------------------------------


def test_an_analyst_locks_an_account_at_once_and_every_session_and_token_ends(
    desks: Any, hanako_signed_in: Any
) -> None:
    hanako, browser = hanako_signed_in
    key = browser.session.session_key
    assert store_has(key) and SessionRecord.objects.filter(user=hanako).exists()
    desk, _other = desks

    answer = contain(staff_client(desk), hanako, "lock_account")

    assert answer.status_code == 303 and answer["Location"].endswith(f"?user={hanako.pk}")
    approval = StaffApproval.objects.get(action="lock_account")
    assert (approval.status, approval.four_eyes, approval.requested_by) == ("executed", False, desk)
    lock = AccountLock.objects.get(user=hanako)
    assert lock.is_locked and lock.lock_count == 1 and lockout.is_locked(hanako)
    assert not store_has(key) and not SessionRecord.objects.filter(user=hanako).exists()
    assert not Token.objects.filter(user=hanako).exists()
    assert not signed_in(browser)
    # The right password no longer opens the account.
    assert browser.sign_in("hanako").wsgi_request.user.is_authenticated is False
    # Audited on the approval and on the lock row.
    assert LogEntry.objects.filter(object_id=str(hanako.pk), change_message__startswith="locked by").exists()
    page = staff_client(desk).get(INCIDENT, {"user": hanako.pk})
    assert "Locked since" in page.content.decode()


def test_the_lock_message_names_the_ways_back_and_no_staff_member(desks: Any, hanako_signed_in: Any) -> None:
    hanako, _browser = hanako_signed_in
    give_passkey(hanako)  # an old passkey: her own way back
    desk, _other = desks
    contain(staff_client(desk), hanako, "lock_account", reason="called by desk-a colleague")
    note, body = customer_mail(hanako, "lock_account")
    assert note.context["stage"] == "executed"
    assert "Use your passkey on the sign-in page." in body
    for secret in ("desk-a", "colleague", "desk-a@example.jp"):
        assert secret not in body and secret not in str(note.context)


def test_ending_the_sessions_signs_the_customer_out_but_leaves_the_account_open(
    desks: Any, hanako_signed_in: Any
) -> None:
    hanako, browser = hanako_signed_in
    key = browser.session.session_key
    desk, _other = desks
    answer = contain(staff_client(desk), hanako, "end_sessions")
    assert answer.status_code == 303
    said = " ".join(messages_of(answer))
    # The browser she signed in from minutes ago is forgotten too (every containment: a thief's would age).
    assert (
        "done (1 session(s) and 1 API token(s) ended; 1 browser(s) without 30 days of standing forgotten)"
        in said
    )
    assert not store_has(key) and not Token.objects.filter(user=hanako).exists()
    assert not signed_in(browser)
    assert not lockout.is_locked(hanako)
    assert browser.sign_in("hanako").status_code == 302  # she signs in again
    _note, body = customer_mail(hanako, "end_sessions")
    assert "Sign in again to continue." in body and "desk-a" not in body


def test_a_forced_password_reset_replaces_the_password_keeps_the_factors_and_the_reset_mail_works(
    desks: Any, hanako_signed_in: Any, totp_factory: Any
) -> None:
    hanako, browser = hanako_signed_in
    totp_factory(hanako)
    desk, _other = desks
    answer = contain(staff_client(desk), hanako, "force_password_reset")
    assert answer.status_code == 303
    hanako.refresh_from_db()
    assert not hanako.check_password("correct horse battery")
    # A usable (random) password: Django's password reset only mails accounts that have one.
    assert hanako.has_usable_password()
    assert list(PasswordResetForm().get_users("hanako@example.jp")) == [hanako]
    assert TOTPDevice.objects.filter(user=hanako).count() == 1
    assert not signed_in(browser) and not Token.objects.filter(user=hanako).exists()
    assert not Notification.objects.filter(user=hanako, kind="password_changed").exists()
    _note, body = customer_mail(hanako, "force_password_reset")
    assert "Forgot your password?" in body and "desk-a" not in body
    assert browser.sign_in("hanako").wsgi_request.user.is_authenticated is False


def test_unlocking_after_a_desk_lock_keeps_four_eyes(desks: Any, hanako_signed_in: Any) -> None:
    hanako, _browser = hanako_signed_in
    desk_a, desk_b = desks
    contain(staff_client(desk_a), hanako, "lock_account")
    approval = approvals.request_action(
        staff_client(desk_a).get("/admin/").wsgi_request,
        action="unlock_account",
        target=hanako,
        reason="customer called back",
    )
    assert approval.status == "pending" and lockout.is_locked(hanako)
    approvals.approve(staff_client(desk_b).get("/admin/").wsgi_request, approval_id=approval.pk)
    assert not lockout.is_locked(hanako)


def test_containment_can_be_put_under_four_eyes(settings: Any, desks: Any, hanako_signed_in: Any) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": ["lock_account"]}
    hanako, browser = hanako_signed_in
    desk_a, desk_b = desks
    answer = contain(staff_client(desk_a), hanako, "lock_account")
    assert answer.status_code == 303
    assert "waiting for a second approval" in " ".join(messages_of(answer))
    assert not lockout.is_locked(hanako) and signed_in(browser)
    approval = StaffApproval.objects.get(action="lock_account")
    with pytest.raises(four_eyes.ApprovalError) as own:
        approvals.approve(staff_client(desk_a).get("/admin/").wsgi_request, approval_id=approval.pk)
    assert own.value.code == "own_request"
    approvals.approve(staff_client(desk_b).get("/admin/").wsgi_request, approval_id=approval.pk)
    assert lockout.is_locked(hanako) and not signed_in(browser)


def test_default_four_eyes_rules(settings: Any) -> None:
    del settings.AUTHGUARD_FOUR_EYES  # the package's defaults, not the demo's spelled-out ones
    for action in ("lock_account", "end_sessions", "force_password_reset"):
        assert not four_eyes.needs_second_approval(action=action, severity=4), action
    for action in ("unlock_account", "block_network", "end_network_block", "release_order"):
        assert four_eyes.needs_second_approval(action=action, severity=0), action


def test_containment_needs_the_permission_and_a_passkey_session(
    settings: Any, user_factory: Any, hanako_signed_in: Any
) -> None:
    hanako, browser = hanako_signed_in
    reader = staff_user("reader", perms=("auth.view_user", "authguard.view_loginevent"))
    answer = contain(staff_client(reader), hanako, "lock_account")
    assert answer.status_code == 403
    assert "permission" in " ".join(messages_of(answer))
    page = staff_client(reader).get(INCIDENT, {"user": hanako.pk}).content.decode()
    assert 'id="containment-form"' not in page
    # A phished desk password (no passkey check in this session): refused, even without the middleware.
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "authguard.console.guard.StaffPasskeyMiddleware"
    ]
    desk = staff_user("desk-x", perms=DESK_PERMS)
    answer = contain(password_only_client(desk), hanako, "lock_account")
    assert answer.status_code == 403
    assert not lockout.is_locked(hanako) and signed_in(browser)
    assert not StaffApproval.objects.exists()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"containment": "delete_account", "reason": "because"}, 400),
        ({"containment": "lock_account", "reason": "x"}, 400),
        ({"containment": "lock_account", "reason": "r" * 501}, 400),
        ({"containment": "lock_account", "reason": "because", "user": "abc"}, 400),
        ({"containment": "lock_account", "reason": "because", "user": "9" * 30}, 400),
        ({"containment": "lock_account", "reason": "because", "user": "999999"}, 400),
        ({"reason": "because"}, 400),
    ],
)
def test_malformed_containment_gets_a_4xx_and_changes_nothing(
    desks: Any, hanako_signed_in: Any, data: dict[str, str], status: int
) -> None:
    hanako, browser = hanako_signed_in
    answer = staff_client(desks[0]).post(INCIDENT, {"user": str(hanako.pk), **data})
    assert answer.status_code == status
    assert messages_of(answer)
    assert not lockout.is_locked(hanako) and signed_in(browser)
    assert not StaffApproval.objects.filter(status="executed").exists()


# -- network blocks ---------------------------------------------------------------------------------------


def login_from(browser_at: Any, ip: str, username: str = "hanako") -> LoginEvent:
    browser_at(ip, UA_FIREFOX_LINUX).sign_in(username)
    return LoginEvent.objects.order_by("-pk").first()


def denied_by_block(event: LoginEvent) -> bool:
    return event.action == "deny" and any(
        f["code"] == "denylisted_network" and "blocked_until" in (f.get("evidence") or {})
        for f in event.findings
    )


def test_blocking_a_network_needs_a_second_approval_then_denies_until_it_expires(
    settings: Any, desks: Any, user_factory: Any, browser_at: Any, django_capture_on_commit_callbacks: Any
) -> None:
    del settings.AUTHGUARD_FOUR_EYES  # the package's defaults
    user_factory("hanako")
    desk_a, desk_b = desks
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        answer = staff_client(desk_a).post(
            NETWORKS, {"op": "block", "network": "198.51.100.7/26", "hours": "6", "reason": "phishing kit"}
        )
        assert answer.status_code == 303
        assert "waiting for a second approval" in " ".join(messages_of(answer))
        assert not NetworkBlock.objects.exists()
        assert not denied_by_block(login_from(browser_at, IP_SG_VPS))
        approval = StaffApproval.objects.get(action="block_network")
        assert approval.target_id == "198.51.100.0/26" and approval.customer is None
        with django_capture_on_commit_callbacks(execute=True):
            approvals.approve(staff_client(desk_b).get("/admin/").wsgi_request, approval_id=approval.pk)
        block = NetworkBlock.objects.get()
        assert (block.network, block.kind, block.created_by, block.approved_by) == (
            "198.51.100.0/26",
            "cidr",
            desk_a,
            desk_b,
        )
        assert block.until == start + timedelta(hours=6)
        # Right password, from the blocked network: denied like the deny list; elsewhere nothing changes.
        event = login_from(browser_at, IP_SG_VPS)
        assert denied_by_block(event) and event.outcome != "signed_in"
        assert not denied_by_block(login_from(browser_at, IP_US_HOME))
        page = staff_client(desk_a).get(NETWORKS).content.decode()
        assert "198.51.100.0/26" in page and 'id="block-form"' in page
    with time_machine.travel(start + timedelta(hours=6, minutes=1), tick=False):
        # Expired: the login goes through the usual scoring again.
        assert not denied_by_block(login_from(browser_at, IP_SG_VPS))
        assert "198.51.100.0/26" not in staff_client(desk_a).get(NETWORKS).content.decode()


def test_an_asn_block_and_its_early_end(
    settings: Any, desks: Any, user_factory: Any, browser_at: Any
) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}  # one person, to test the records themselves
    user_factory("hanako")
    desk, _other = desks
    client = staff_client(desk)
    answer = client.post(NETWORKS, {"op": "block", "network": "as14061", "hours": "2", "reason": "stuffing"})
    assert answer.status_code == 303
    block = NetworkBlock.objects.get()
    assert (block.network, block.kind) == ("AS14061", "asn")
    assert denied_by_block(login_from(browser_at, IP_SG_VPS))  # the test VPS network is AS14061
    answer = client.post(NETWORKS, {"op": "end", "block": str(block.pk), "reason": "false alarm"})
    assert answer.status_code == 303
    ending = NetworkBlock.objects.get(ends=block)
    assert ending.until == ending.created_at and ending.network == "AS14061"
    block.refresh_from_db()
    assert block.until > timezone.now()  # never edited: ended by the second record
    assert not NetworkBlock.active(now=timezone.now()).exists()
    assert not denied_by_block(login_from(browser_at, IP_SG_VPS))
    # Ending it again: already ended.
    again = client.post(NETWORKS, {"op": "end", "block": str(block.pk), "reason": "false alarm"})
    assert again.status_code == 409 and NetworkBlock.objects.count() == 2


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"op": "block", "network": "10.0.0.0/8", "hours": "2", "reason": "too wide"}, 400),
        ({"op": "block", "network": "2001:db8::/20", "hours": "2", "reason": "too wide"}, 400),
        ({"op": "block", "network": "not-a-network", "hours": "2", "reason": "nonsense"}, 400),
        ({"op": "block", "network": "AS0", "hours": "2", "reason": "nonsense"}, 400),
        ({"op": "block", "network": "AS99999999999", "hours": "2", "reason": "nonsense"}, 400),
        ({"op": "block", "network": "198.51.100.0/26", "hours": "0", "reason": "zero"}, 400),
        ({"op": "block", "network": "198.51.100.0/26", "hours": "169", "reason": "too long"}, 400),
        ({"op": "block", "network": "198.51.100.0/26", "hours": "x", "reason": "hours?"}, 400),
        ({"op": "block", "network": "198.51.100.0/26", "hours": "2", "reason": ""}, 400),
        ({"op": "end", "block": "abc", "reason": "nothing"}, 404),
        ({"op": "end", "block": "424242", "reason": "nothing"}, 404),
        ({"op": "drop-table", "reason": "nothing"}, 400),
    ],
)
def test_malformed_blocks_get_a_4xx_and_write_nothing(
    settings: Any, desks: Any, data: dict[str, str], status: int
) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    answer = staff_client(desks[0]).post(NETWORKS, data)
    assert answer.status_code == status
    assert messages_of(answer)
    assert not NetworkBlock.objects.exists() and not StaffApproval.objects.exists()


def test_blocking_needs_its_permission(settings: Any, user_factory: Any) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    analyst = staff_user("analyst", perms=("authguard.view_loginevent",))
    client = staff_client(analyst)
    assert 'id="block-form"' not in client.get(NETWORKS).content.decode()
    answer = client.post(
        NETWORKS, {"op": "block", "network": "198.51.100.0/26", "hours": "2", "reason": "x y z"}
    )
    assert answer.status_code == 403 and not NetworkBlock.objects.exists()


def test_blocks_are_read_once_then_from_the_cache_and_a_new_one_drops_it(desks: Any, settings: Any) -> None:
    from django.test.utils import CaptureQueriesContext

    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    assert not networks.active_blocks()
    with CaptureQueriesContext(connection) as queries:
        networks.active_blocks()
    assert len(queries) == 0  # cached
    containment.request_block(
        staff_client(desks[0]).get("/admin/").wsgi_request,
        network="198.51.100.0/26",
        hours=1,
        reason="drop the cache",
    )
    blocks = networks.active_blocks()
    assert blocks.match(ip="198.51.100.9", asn=None, now=timezone.now().timestamp()) is not None


def test_a_cached_block_still_ends_at_its_time(settings: Any, desks: Any) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        containment.request_block(
            staff_client(desks[0]).get("/admin/").wsgi_request,
            network="AS14061",
            hours=1,
            reason="short block",
        )
        blocks = networks.active_blocks()  # what the cache holds for the next 30 seconds
    ended = (start + timedelta(hours=1, seconds=1)).timestamp()
    assert blocks.match(ip=None, asn=14061, now=start.timestamp()) is not None
    assert blocks.match(ip=None, asn=14061, now=ended) is None


def test_when_the_blocks_cannot_be_read_the_login_is_stepped_up_and_a_known_block_still_denies(
    settings: Any, desks: Any, user_factory: Any, browser_at: Any
) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    user_factory("hanako")
    containment.request_block(
        staff_client(desks[0]).get("/admin/").wsgi_request,
        network="198.51.100.0/26",
        hours=1,
        reason="known before the outage",
    )
    assert networks.active_blocks()  # this process read them once

    def broken_blocks_table(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "authguard_networkblock" in sql:
            raise connection.Database.OperationalError("the blocks table is unavailable")
        return execute(sql, params, many, context)

    from django.core.cache import cache

    cache.clear()
    with connection.execute_wrapper(broken_blocks_table):
        elsewhere = login_from(browser_at, IP_US_HOME)
        blocked = login_from(browser_at, IP_SG_VPS)
    assert elsewhere.action == "step_up"
    assert "network_blocks_unavailable" in [f["code"] for f in elsewhere.findings]
    assert denied_by_block(blocked)


# -- bulk actions in the admin ----------------------------------------------------------------------------


def test_bulk_lock_from_login_events_asks_once_per_customer(
    desks: Any, user_factory: Any, browser_at: Any
) -> None:
    hanako, taro = user_factory("hanako"), user_factory("taro")
    for ip in (IP_TOKYO, IP_US_HOME):
        browser_at(ip).sign_in("hanako")
    browser_at(IP_TOKYO).sign_in("taro")
    events = [str(pk) for pk in LoginEvent.objects.values_list("pk", flat=True)]
    assert len(events) == 3
    client = staff_client(desks[0])
    form = client.post(EVENTS, {"action": "lock_accounts", "_selected_action": events})
    assert form.status_code == 200 and form.content.decode().count('name="_selected_action"') == 2
    short = client.post(
        EVENTS, {"action": "lock_accounts", "_selected_action": events, "apply": "1", "reason": "x"}
    )
    assert short.status_code == 200 and not AccountLock.objects.filter(locked_at__isnull=False).exists()
    answer = client.post(
        EVENTS, {"action": "lock_accounts", "_selected_action": events, "apply": "1", "reason": "campaign"}
    )
    assert answer.status_code == 302
    assert "2 account(s) locked" in " ".join(messages_of(answer))
    assert lockout.is_locked(hanako) and lockout.is_locked(taro)
    assert StaffApproval.objects.filter(action="lock_account", status="executed").count() == 2
    assert Notification.objects.filter(kind="staff_action", context__action="lock_account").count() == 2


def test_bulk_lock_from_held_orders_locks_the_customer_and_ends_the_session_that_placed_them(
    desks: Any, tanaka: Any, order_api: Any
) -> None:
    from authguard.models import HeldOrder

    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    answer = browser.order("buy", "3Z3A", 5000)
    assert answer.status_code == 202, answer.content
    held = HeldOrder.objects.get(pk=answer.json()["confirmation"]["id"])
    answer = staff_client(desks[0]).post(
        "/admin/authguard/heldorder/",
        {"action": "lock_accounts", "_selected_action": [str(held.pk)], "apply": "1", "reason": "pump"},
    )
    assert answer.status_code == 302
    assert lockout.is_locked(tanaka)
    assert browser.get("/api/portfolio").status_code != 200  # the session that placed it is gone
    assert StaffApproval.objects.get().target_id == str(tanaka.pk)


def test_bulk_end_sessions_needs_the_permission(user_factory: Any, browser_at: Any) -> None:
    user_factory("hanako")
    browser = browser_at(IP_TOKYO)
    browser.sign_in("hanako")
    events = [str(pk) for pk in LoginEvent.objects.values_list("pk", flat=True)]
    reader = staff_user("reader", perms=("authguard.view_loginevent",))
    answer = staff_client(reader).post(
        EVENTS,
        {"action": "end_sessions_of_accounts", "_selected_action": events, "apply": "1", "reason": "go"},
    )
    assert answer.status_code in (200, 302)
    assert signed_in(browser) and not StaffApproval.objects.exists()


# -- security battery ---------------------------------------------------------------------------------------


@pytest.mark.battery(67)
def test_battery_67_the_thiefs_session_ended_by_the_analyst_cannot_continue(
    desks: Any, user_factory: Any, browser_at: Any
) -> None:
    hanako = user_factory("hanako")
    thief = browser_at(IP_TOKYO, UA_FIREFOX_LINUX)  # the right password, from a place that is not risky
    thief.sign_in("hanako")
    assert signed_in(thief)
    contain(staff_client(desks[0]), hanako, "end_sessions")
    answer = thief.get("/")
    assert not answer.wsgi_request.user.is_authenticated
    # The session cookie he kept opens nothing, on the pages or the JSON API.
    assert thief.post("/api/orders", {"side": "buy", "symbol": "7203", "quantity": 100}).status_code in (
        401,
        403,
    )


@pytest.mark.battery(68)
def test_battery_68_a_blocked_network_is_refused_even_with_the_right_password(
    settings: Any, desks: Any, user_factory: Any, browser_at: Any
) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    user_factory("hanako")
    staff_client(desks[0]).post(
        NETWORKS, {"op": "block", "network": "AS14061", "hours": "4", "reason": "stuffing wave"}
    )
    thief = browser_at(IP_SG_VPS, UA_FIREFOX_LINUX)
    thief.sign_in("hanako")
    assert not signed_in(thief)
    assert denied_by_block(LoginEvent.objects.order_by("-pk").first())


@pytest.mark.battery(69)
def test_battery_69_a_forced_reset_locks_out_the_stolen_password_and_api_token(
    desks: Any, hanako_signed_in: Any
) -> None:
    hanako, _browser = hanako_signed_in
    token = Token.objects.get(user=hanako).key
    contain(staff_client(desks[0]), hanako, "force_password_reset")
    thief = password_only_client(hanako)  # only to get a Client; signed out just below
    thief.logout()
    assert not thief.login(username="hanako", password="correct horse battery")
    assert not Token.objects.filter(key=token).exists()
