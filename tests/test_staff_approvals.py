"""The four-eyes flow (authguard.console.approvals), the console's passkey door (authguard.console.guard) and
their settings and checks, unit by unit. The end-to-end attack is tests/test_battery_staff.py (case 60)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.checks import run_checks
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.checks import Codes
from authguard.console import approvals, four_eyes
from authguard.console.guard import console_access
from authguard.login import lockout
from authguard.models import AccountLock, Notification, PolicyVersion, StaffApproval

from .console_data import staff_user
from .staff_fixtures import locked_by_failures, password_only_client, staff_client

pytestmark = [pytest.mark.django_db]

PERMS = (
    "authguard.view_accountlock",
    "authguard.unlock_account",
    "otp_totp.view_totpdevice",
    "otp_totp.delete_totpdevice",
    "authguard.add_policyversion",
    "authguard.view_policyversion",
)


def session_request(client):
    """The (passkey-verified or not) HttpRequest of ``client``'s staff session, for calling the flow."""
    return client.get("/admin/").wsgi_request


@pytest.fixture
def locked(user_factory, settings):
    return locked_by_failures(user_factory("alice"), settings)


@pytest.fixture
def two_desks():
    return staff_user("desk-a", perms=PERMS), staff_user("desk-b", perms=PERMS)


def test_defaults_need_a_second_approval_for_all_four_actions(settings):
    for action in ("release_order", "revoke_factor", "unlock_account", "change_policy"):
        assert four_eyes.needs_second_approval(action=action, severity=0)
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": ["release_order"], "MIN_SEVERITY": 3}
    assert four_eyes.needs_second_approval(action="release_order", severity=4)
    assert not four_eyes.needs_second_approval(action="release_order", severity=2)
    assert not four_eyes.needs_second_approval(action="unlock_account", severity=4)


def test_below_the_severity_one_staff_member_acts_and_it_is_still_recorded_and_notified(
    settings, locked, two_desks
):
    settings.AUTHGUARD_FOUR_EYES = {"MIN_SEVERITY": 4}  # an unlock is HIGH (3): no second approval
    desk, _other = two_desks
    request = session_request(staff_client(desk))
    approval = approvals.request_action(
        request, action="unlock_account", target=locked, reason="identity checked at the branch"
    )
    assert (approval.status, approval.four_eyes, approval.approved_by) == ("executed", False, None)
    assert not lockout.is_locked(locked)
    assert AccountLock.objects.get(user=locked).unlocked_by == desk
    stages = list(
        Notification.objects.filter(user=locked, kind="staff_action").values_list("context__stage", flat=True)
    )
    assert stages == ["executed"]


def test_the_flow_refuses_a_password_only_session_even_without_the_middleware(settings, locked, two_desks):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "authguard.console.guard.StaffPasskeyMiddleware"
    ]
    desk, _other = two_desks
    client = password_only_client(desk)
    answer = client.post(
        "/admin/authguard/accountlock/",
        {"action": "unlock", "_selected_action": [str(locked.pk)], "apply": "1", "reason": "phished"},
    )
    assert answer.status_code == 302  # the admin page opened (no middleware), but the flow refused
    messages = [str(m) for m in answer.wsgi_request._messages]
    assert any("passkey" in m for m in messages)
    assert lockout.is_locked(locked) and not StaffApproval.objects.exists()


def test_someone_elses_pending_request_is_not_duplicated(locked, two_desks):
    desk_a, desk_b = two_desks
    first = approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=locked, reason="branch visit"
    )
    with pytest.raises(four_eyes.ApprovalError) as refused:
        approvals.request_action(
            session_request(staff_client(desk_b)), action="unlock_account", target=locked, reason="phone call"
        )
    assert refused.value.code == "already_pending"
    assert list(StaffApproval.objects.all()) == [first]


def test_an_approver_needs_the_actions_permission(locked, two_desks):
    desk_a, _desk_b = two_desks
    approval = approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=locked, reason="branch visit"
    )
    intern = staff_user("intern", perms=("authguard.view_accountlock",))
    with pytest.raises(four_eyes.ApprovalError) as refused:
        approvals.approve(session_request(staff_client(intern)), approval_id=approval.pk)
    assert refused.value.code == "permission"
    approval.refresh_from_db()
    assert approval.status == "pending" and lockout.is_locked(locked)


@pytest.mark.parametrize("bad_id", ["", "abc", None, "1; DROP TABLE", 10**30, "-1"])
def test_malformed_approval_ids_are_not_found(bad_id, two_desks):
    desk_a, _desk_b = two_desks
    with pytest.raises(four_eyes.ApprovalError) as refused:
        approvals.approve(session_request(staff_client(desk_a)), approval_id=bad_id)
    assert refused.value.code == "not_found"


@pytest.mark.parametrize("reason", ["", "  ", "x", "y" * 501, None, ["a list"]])
def test_a_request_needs_a_real_reason(reason, locked, two_desks):
    desk_a, _desk_b = two_desks
    with pytest.raises(four_eyes.ApprovalError) as refused:
        approvals.request_action(
            session_request(staff_client(desk_a)), action="unlock_account", target=locked, reason=reason
        )
    assert refused.value.code == "invalid" and not StaffApproval.objects.exists()


def test_unapproved_requests_expire(settings, locked, two_desks):
    settings.AUTHGUARD_FOUR_EYES = {"EXPIRY_HOURS": 2}
    desk_a, desk_b = two_desks
    approval = approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=locked, reason="branch visit"
    )
    later = timezone.now() + timedelta(hours=3)
    with time_machine.travel(later, tick=False):
        with pytest.raises(four_eyes.ApprovalError) as refused:
            approvals.approve(session_request(staff_client(desk_b)), approval_id=approval.pk)
        assert refused.value.code == "expired"
    approval.refresh_from_db()
    assert approval.status == "expired" and lockout.is_locked(locked)


def test_expire_due_closes_old_requests_only(settings, locked, two_desks, user_factory):
    desk_a, _desk_b = two_desks
    approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=locked, reason="branch visit"
    )
    assert approvals.expire_due() == 0
    assert approvals.expire_due(now=timezone.now() + timedelta(hours=25)) == 1
    assert StaffApproval.objects.get().status == "expired"


def test_only_the_requester_withdraws(locked, two_desks):
    desk_a, desk_b = two_desks
    approval = approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=locked, reason="branch visit"
    )
    with pytest.raises(four_eyes.ApprovalError):
        approvals.withdraw(session_request(staff_client(desk_b)), approval_id=approval.pk)
    done = approvals.withdraw(session_request(staff_client(desk_a)), approval_id=approval.pk)
    assert done.status == "withdrawn" and lockout.is_locked(locked)


def test_an_approved_action_that_cannot_be_carried_out_fails_cleanly(locked, two_desks):
    desk_a, desk_b = two_desks
    approval = approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=locked, reason="branch visit"
    )
    lockout.unlock(locked, by=None, reason="identity check: passkey")  # the customer unlocked it meanwhile
    result = approvals.approve(session_request(staff_client(desk_b)), approval_id=approval.pk)
    assert result.status == "failed" and "not locked" in result.result
    stages = set(
        Notification.objects.filter(user=locked, kind="staff_action").values_list("context__stage", flat=True)
    )
    assert stages == {"requested", "failed"}


def test_a_removed_factor_fails_the_approval_and_nothing_else_is_removed(user_factory, two_desks):
    desk_a, desk_b = two_desks
    alice = user_factory("alice")
    device = TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    other = TOTPDevice.objects.create(user=alice, name="tablet", confirmed=True)
    approval = approvals.request_action(
        session_request(staff_client(desk_a)), action="revoke_factor", target=device, reason="lost phone"
    )
    device.delete()
    result = approvals.approve(session_request(staff_client(desk_b)), approval_id=approval.pk)
    assert result.status == "failed" and TOTPDevice.objects.filter(pk=other.pk).exists()


def test_an_invalid_policy_is_refused_before_anyone_is_asked(two_desks):
    desk_a, _desk_b = two_desks
    with pytest.raises(four_eyes.ApprovalError) as refused:
        approvals.request_action(
            session_request(staff_client(desk_a)),
            action="change_policy",
            reason="loosen",
            payload={"comment": "loosen", "thresholds": {"step_up": 90, "deny": 10}},
        )
    assert refused.value.code == "invalid" and not StaffApproval.objects.exists()
    assert not PolicyVersion.objects.exists()


def test_the_release_of_a_held_order_is_refused_under_the_preset(settings, two_desks, tanaka, order_api):
    from authguard.models import HeldOrder

    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    held = HeldOrder.objects.get(pk=browser.order("buy", "3Z3A", 5000).json()["confirmation"]["id"])
    settings.AUTHGUARD_PRESET = "jsda-2025"
    desk = staff_user("desk-c", perms=("authguard.change_heldorder", "authguard.view_heldorder"))
    with pytest.raises(four_eyes.ApprovalError) as refused:
        approvals.request_action(
            session_request(staff_client(desk)), action="release_order", target=held, reason="on the phone"
        )
    assert refused.value.code == "preset" and not StaffApproval.objects.exists()


def test_console_access_reasons(two_desks):
    desk_a, _desk_b = two_desks
    assert console_access(session_request(password_only_client(desk_a))).why == "no_passkey"
    client = staff_client(desk_a)
    assert console_access(session_request(client)).ok
    fresh_login = password_only_client(desk_a)
    assert console_access(session_request(fresh_login)).why == "not_verified"


def test_the_staff_actions_page_lists_pending_requests_to_desks_only(locked, two_desks):
    desk_a, desk_b = two_desks
    approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=locked, reason="branch visit"
    )
    reviewer = staff_client(desk_b)
    page = reviewer.get("/admin/authguard/staffapproval/")
    assert page.status_code == 200 and "unlock alice" in page.content.decode()
    detail = reviewer.get(f"/admin/authguard/staffapproval/{StaffApproval.objects.get().pk}/change/")
    html = detail.content.decode()
    assert detail.status_code == 200 and "branch visit" in html and 'name="reason"' not in html
    nobody = staff_client(staff_user("intern"))
    assert nobody.get("/admin/authguard/staffapproval/").status_code == 403
    assert staff_client(desk_b).get("/admin/authguard/staffapproval/abc/change/").status_code in (302, 404)


def ids() -> set[str]:
    return {m.id for m in run_checks(tags=["security"]) if m.id and m.id.startswith("authguard.")}


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"ACTIONS": ["format_disk"]},
        {"ACTIONS": "release_order"},
        {"MIN_SEVERITY": 9},
        {"MIN_SEVERITY": True},
        {"EXPIRY_HOURS": 0},
        {"APPROVERS": 2},
    ],
)
def test_bad_four_eyes_settings_are_e140(settings, value):
    settings.AUTHGUARD_FOUR_EYES = value
    assert Codes.FOUR_EYES_INVALID in ids()


@pytest.mark.parametrize("name", ["AUTHGUARD_CONSOLE_PASSKEY_SECONDS", "AUTHGUARD_CONSOLE_NEW_PASSKEY_HOURS"])
def test_bad_console_settings_are_e141(settings, name):
    setattr(settings, name, "1h")
    assert Codes.CONSOLE_SETTINGS_INVALID in ids()


def test_a_console_without_the_passkey_middleware_is_w140(settings):
    path = "authguard.console.guard.StaffPasskeyMiddleware"
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != path]
    assert Codes.STAFF_MIDDLEWARE_MISSING in ids()
    settings.MIDDLEWARE = [path, *settings.MIDDLEWARE]  # before AuthguardMiddleware
    assert Codes.STAFF_MIDDLEWARE_MISSING in ids()


@pytest.mark.postgres
def test_two_approvers_at_once_carry_it_out_exactly_once(transactional_db, settings):
    import threading

    from django.contrib.auth import get_user_model
    from django.db import connection

    settings.AUTHGUARD_LOCKOUT_FAILURES = 2
    alice = get_user_model().objects.create_user("alice", "alice@example.jp", "correct horse battery")
    for _ in range(2):
        lockout.record_failure(alice, kind="password")
    desk_a, desk_b, desk_c = (staff_user(name, perms=PERMS) for name in ("desk-a", "desk-b", "desk-c"))
    approval = approvals.request_action(
        session_request(staff_client(desk_a)), action="unlock_account", target=alice, reason="branch visit"
    )
    requests = [session_request(staff_client(desk)) for desk in (desk_b, desk_c)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(request):
        try:
            barrier.wait()
            outcomes.append(approvals.approve(request, approval_id=approval.pk).status)
        except four_eyes.ApprovalError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["closed", "executed"]
    assert not lockout.is_locked(alice)
    assert Notification.objects.filter(user=alice, kind="account_unlocked").count() == 1
    assert (
        Notification.objects.filter(user=alice, kind="staff_action", context__stage="executed").count() == 1
    )


@pytest.mark.parametrize("selected", ["abc", "1e9", "99999999999999999999999", "' OR 1=1 --"])
@pytest.mark.parametrize(
    ("url", "action"),
    [
        ("/admin/authguard/staffapproval/", "approve"),
        ("/admin/authguard/accountlock/", "unlock"),
        ("/admin/authguard/heldorder/", "release_held"),
        ("/admin/otp_totp/totpdevice/", "revoke"),
    ],
)
def test_a_malformed_selection_gets_a_message_not_a_server_error(url, action, selected):
    perms = (*PERMS, "authguard.view_heldorder", "authguard.change_heldorder")
    client = staff_client(staff_user("desk-z", perms=perms))
    answer = client.post(
        url, {"action": action, "_selected_action": [selected], "apply": "1", "reason": "a reason"}
    )
    assert answer.status_code == 302
    assert "Select valid records." in [str(m) for m in answer.wsgi_request._messages]
    assert not StaffApproval.objects.exists()


# -- containment (issue 16): the flow's new actions ----------------------------------------------------------


def test_containment_actions_need_their_own_permissions():
    for action in ("lock_account", "end_sessions", "force_password_reset"):
        assert four_eyes.required_permission(action) == "authguard.contain_account"
    for action in ("block_network", "end_network_block"):
        assert four_eyes.required_permission(action) == "authguard.add_networkblock"


def test_containment_refuses_a_target_that_is_not_an_account(locked, two_desks):
    desk = staff_user("desk-c", perms=("authguard.contain_account",))
    request = session_request(staff_client(desk))
    for target in (None, "alice", AccountLock.objects.get(user=locked).pk):
        with pytest.raises(four_eyes.ApprovalError) as refused:
            approvals.request_action(request, action="lock_account", target=target, reason="takeover")
        assert refused.value.code == "invalid"
    assert not StaffApproval.objects.exists()


def test_an_unlock_request_waits_while_a_desk_lock_is_immediate(locked, two_desks):
    desk = staff_user("desk-c", perms=("authguard.contain_account", "authguard.unlock_account"))
    request = session_request(staff_client(desk))
    lock = approvals.request_action(request, action="lock_account", target=locked, reason="still suspicious")
    assert (lock.status, lock.four_eyes) == ("executed", False)
    assert lock.result == "already locked; its sessions ended"
    unlock = approvals.request_action(
        request, action="unlock_account", target=locked, reason="customer called"
    )
    assert (unlock.status, unlock.four_eyes) == ("pending", True)
    assert lockout.is_locked(locked)
