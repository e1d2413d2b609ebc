"""Console actions that need a recorded reason: held orders (cancel, release), account locks, campaigns."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from authguard.console import reports
from authguard.login import lockout
from authguard.models import AccountLock, CampaignFlag, GuardedOrder, GuardStatus, HeldOrder, Notification
from demo_site.brokerage.models import Account, Order, OrderStatus

from .console_data import staff_client, staff_user
from .staff_fixtures import approve_pending

HELD = "/admin/authguard/heldorder/"


@pytest.fixture
def held(tanaka, order_api):
    """The pivot into the small cap, held for Tanaka's confirmation."""
    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    answer = browser.order("buy", "3Z3A", 5000)
    assert answer.status_code == 202, answer.content
    return HeldOrder.objects.get(pk=answer.json()["confirmation"]["id"])


DESK_PERMS = ("authguard.view_heldorder", "authguard.change_heldorder")


@pytest.fixture
def desk():
    return staff_user("desk", perms=DESK_PERMS)


def act(client, url, action, pks, **extra):
    return client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks], **extra})


def test_held_orders_are_reviewed_read_only(held, desk):
    client = staff_client(desk)
    listing = client.get(HELD)
    assert listing.status_code == 200 and held.summary in listing.content.decode()
    page = client.get(f"{HELD}{held.pk}/change/").content.decode()
    assert "illiquid_buy_large" in page and held.nonce not in page and held.session_binding not in page
    assert client.get(f"{HELD}add/").status_code == 403


def test_cancel_asks_for_a_reason_then_cancels_in_the_portal_too(held, desk):
    client = staff_client(desk)
    ask = act(client, HELD, "cancel_held", [held.pk])
    assert ask.status_code == 200 and 'name="reason"' in ask.content.decode()
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.PENDING  # nothing happens before the reason is given
    too_short = act(client, HELD, "cancel_held", [held.pk], apply="1", reason="x")
    assert too_short.status_code == 200 and "at least 3 characters" in too_short.content.decode()
    done = act(client, HELD, "cancel_held", [held.pk], apply="1", reason="customer called: not his order")
    assert done.status_code == 302
    held.refresh_from_db()
    # SECURITY: the reason is the desk's; the customer's order page never shows it (battery case 60).
    assert held.status == HeldOrder.Status.CANCELLED and "not his order" not in held.failure
    assert GuardedOrder.objects.get(pk=held.guarded_id).status == GuardStatus.CANCELLED
    assert Order.objects.get(pk=int(held.portal_ref)).status == OrderStatus.CANCELLED
    log = LogEntry.objects.get(object_id=str(held.pk))
    assert log.user == desk and log.change_message == "cancelled: customer called: not his order"
    # The incident report shows what staff did, and why.
    timeline = reports.incident_timeline(held.user)
    assert any(e.kind == "staff" and "not his order" in e.summary for e in timeline)
    assert any(e.summary == "held order cancelled" for e in timeline)


def test_release_executes_the_held_order_once_with_the_reason_logged(held, desk, tanaka):
    cash_before = Account.objects.get(user=tanaka).cash
    client = staff_client(desk)
    act(client, HELD, "release_held", [held.pk], apply="1", reason="confirmed by phone, call 4711")
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.PENDING  # four eyes: waits for a second staff member
    approve_pending(staff_client(staff_user("desk2", perms=DESK_PERMS)))
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.CONFIRMED and held.confirmed_method == "staff"
    assert Account.objects.get(user=tanaka).cash < cash_before
    assert Order.objects.get(pk=int(held.portal_ref)).status == OrderStatus.PLACED
    assert "call 4711" in LogEntry.objects.get(object_id=str(held.pk)).change_message
    # Releasing again does nothing: it is no longer pending.
    cash_after = Account.objects.get(user=tanaka).cash
    act(client, HELD, "release_held", [held.pk], apply="1", reason="again")
    assert Account.objects.get(user=tanaka).cash == cash_after
    assert LogEntry.objects.filter(object_id=str(held.pk)).count() == 1


def test_viewers_cannot_cancel_or_release(held):
    viewer = staff_client(staff_user("viewer", perms=("authguard.view_heldorder",)))
    for action in ("cancel_held", "release_held"):
        act(viewer, HELD, action, [held.pk], apply="1", reason="no permission here")
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.PENDING and not LogEntry.objects.exists()


@pytest.mark.django_db
def test_unlock_needs_its_permission_and_a_reason_and_notifies(user_factory, settings):
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    alice = user_factory("alice")
    for _ in range(3):
        lockout.record_failure(alice, kind="password")
    lock = AccountLock.objects.get(user=alice)
    assert lock.is_locked
    url = "/admin/authguard/accountlock/"
    viewer = staff_client(staff_user("viewer", perms=("authguard.view_accountlock",)))
    act(viewer, url, "unlock", [alice.pk], apply="1", reason="identity checked at the branch")
    assert lockout.is_locked(alice)
    unlocker = staff_user("unlocker", perms=("authguard.view_accountlock", "authguard.unlock_account"))
    client = staff_client(unlocker)
    act(client, url, "unlock", [alice.pk], apply="1", reason="identity checked at the branch")
    assert lockout.is_locked(alice)  # four eyes: waits for a second staff member
    second = staff_user("unlocker2", perms=("authguard.view_accountlock", "authguard.unlock_account"))
    approve_pending(staff_client(second))
    lock.refresh_from_db()
    assert not lockout.is_locked(alice)
    assert lock.unlocked_by == second and lock.unlock_reason == "identity checked at the branch"
    assert Notification.objects.filter(user=alice, kind="account_unlocked").exists()


@pytest.mark.django_db
def test_clearing_a_campaign_flag_records_who():
    flag = CampaignFlag.objects.create(
        symbol="7Z2A", flagged_at=timezone.now(), accounts=12, risky_accounts=9, window_hours=24
    )
    desk = staff_user("desk", perms=("authguard.view_campaignflag", "authguard.change_campaignflag"))
    client = staff_client(desk)
    act(
        client,
        "/admin/authguard/campaignflag/",
        "clear",
        [flag.pk],
        apply="1",
        reason="pump ended, issuer halted",
    )
    flag.refresh_from_db()
    assert not flag.active and flag.cleared_by == "desk" and flag.cleared_at is not None
    assert "pump ended" in LogEntry.objects.get(object_id=str(flag.pk)).change_message


def test_under_the_preset_staff_cannot_release_only_cancel(held, desk, settings, tanaka):
    settings.AUTHGUARD_PRESET = "jsda-2025"
    cash = Account.objects.get(user=tanaka).cash
    client = staff_client(desk)
    answer = act(client, HELD, "release_held", [held.pk], apply="1", reason="he said so on the phone")
    assert answer.status_code == 302
    messages = [str(m) for m in answer.wsgi_request._messages]
    assert any("only the customer's passkey" in m for m in messages)
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.PENDING and Account.objects.get(user=tanaka).cash == cash
    assert not LogEntry.objects.exists()
    act(client, HELD, "cancel_held", [held.pk], apply="1", reason="customer asked to cancel")
    held.refresh_from_db()
    assert held.status == HeldOrder.Status.CANCELLED
