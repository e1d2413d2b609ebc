"""Red team, round thirty-three (c): the security desk's console (Django admin, staff actions, policy
editor), attacked as a customer's thief who phones the desk, as one desk member doing what needs two or
reading what nobody should, as a sloppy or malicious policy edit, and with malformed input.

Each failing test names the secure outcome in its assertion; the ``test_held_...`` ones passed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django_otp.oath import totp

from authguard.models import Notification, PolicyVersion, StaffApproval
from authguard.risk.policy import current_policy

from .conftest import IP_JP_PROXY, IP_TOKYO, UA_CHROME_WIN, UA_FIREFOX_LINUX
from .console_data import staff_client, staff_user
from .staff_fixtures import APPROVALS, approve_pending, password_only_client
from .test_policy_editor import ADD, PERMS, page_values

pytestmark = [pytest.mark.django_db]

TOTP_ADMIN = "/admin/otp_totp/totpdevice/"
BACKTEST = "/admin/authguard/loginevent/backtest/"
DEVICE_COOKIE = "authguard.risk_signals.DeviceCookie"


def _listed(client: Client, url: str, **query: str) -> int:
    page = client.get(url, query)
    assert page.status_code == 200, page.status_code
    return len(page.context["cl"].result_list)


# -- (b) one desk member reads what nobody should ---------------------------------------------------------


def test_a_desk_analyst_reads_a_customers_totp_secret_out_of_the_factor_lists_filter(
    user_factory: Any, totp_factory: Any
) -> None:
    """The console replaces django-otp's TOTP admin "so that no secret key is ever shown". But Django's admin
    takes any lookup on a model's own field from the query string (the token admin was fixed for exactly
    this, round 2026-12-05; the factor admins were not): ``?user=<id>&key__startswith=6`` lists her app or
    not. An analyst with only ``view_totpdevice`` (every member of the demo's Security desk group) reads her
    40-hex-digit seed in at most 640 page loads, then makes her codes at will: every step-up, every held
    order confirmation by code, every relayed-code path is his, from anywhere, for as long as she keeps the
    app.

    Now: the filter answers, the seed is read out exactly. Secure: the factor admins allow lookups on the
    customer (and the listed columns) only, as ``ApiTokenAdmin.lookup_allowed`` does; a lookup on ``key``
    answers 400 (Django's ``DisallowedModelAdminLookup``) like any other refused lookup."""
    hanako = user_factory("hanako")
    app = totp_factory(hanako)
    analyst = staff_client(staff_user("analyst", perms=("otp_totp.view_totpdevice",)))

    read = ""
    for _ in range(len(app.key)):
        for digit in "0123456789abcdef":
            answer = analyst.get(
                TOTP_ADMIN, {"user__id__exact": str(hanako.pk), "key__startswith": read + digit}
            )
            if answer.status_code != 200:
                break
            if len(answer.context["cl"].result_list) == 1:
                read += digit
                break
        else:
            break
        if answer.status_code != 200:
            break
    stolen = f"{totp(bytes.fromhex(read)):06d}" if len(read) == len(app.key) else None
    assert stolen != f"{totp(app.bin_key):06d}", (
        f"an analyst with view_totpdevice read hanako's TOTP seed ({read[:8]}...) through ?key__startswith= "
        "and makes her codes"
    )


def test_held_the_token_admin_refuses_a_key_lookup(user_factory: Any) -> None:
    """The same oracle on DRF's tokens is closed (round 2026-12-05): the lookup is refused."""
    pytest.importorskip("rest_framework")
    viewer = staff_client(
        staff_user("viewer", perms=("authtoken.view_tokenproxy",)), raise_request_exception=False
    )
    answer = viewer.get("/admin/authtoken/tokenproxy/", {"key__startswith": "a"})
    assert answer.status_code in (400, 403), answer.status_code


# -- (c) a policy change the approver cannot see -----------------------------------------------------------


def _in_force(signal: str, option: str) -> Any:
    """The value of ``option`` of ``signal`` in the policy in force (its class default when not set)."""
    for entry, built in zip(current_policy().signal_config, current_policy().signals, strict=True):
        if entry["NAME"] == signal:
            return built.options[option]
    raise LookupError(signal)


def _put_in_force(client: Client, approver: Client, on_commit: Any, **changes: str) -> None:
    """Open the editor, change ``changes``, review, confirm; a second desk approves it on the staff actions
    page."""
    data = {
        **page_values(client.get(ADD)),
        "comment": "harden new browsers after the November wave",
        **changes,
    }
    page = client.post(ADD, {**data, "_review": "1"})
    assert page.status_code == 200 and page.context["changes"], page.status_code
    asked = client.post(ADD, {**data, "reviewed": page.context["reviewed"], "_confirm": "1"})
    assert asked.status_code == 302, asked.status_code
    with on_commit(execute=True):
        approve_pending(approver)


def test_the_approver_is_not_shown_that_a_request_drops_an_earlier_hardening(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Two desks raised the points of a browser never seen on the account from 25 to 45 after a phishing
    wave (v1, reviewed and approved). Weeks later desk A (malicious, or tidying up with an old script) asks
    for a policy with the same thresholds and no option changes, comment "no scoring change: re-saving the
    thresholds" (a plain POST of the editor: its JSON is the whole proposal). Desk B opens the request on
    *Staff actions*: the summary says ``policy: thresholds {'step_up': 40, 'deny': 100}``, the payload says
    ``"signal_options": {}``. Nothing on the page says that approving it takes the 45 back to 25; the
    editor's own list of changes against the policy in force is shown only to the requester, and not even
    to him for a plain POST. B approves: new browsers score 25 again, with no one having seen it.

    Secure: the approval page of a policy change lists its changes against the policy in force (old → new,
    as the editor's review does: "Points for a browser never seen on the account: 45 → 25"), so what the
    second person approves is what will change."""
    desk_a = staff_client(staff_user("desk-a", perms=PERMS))
    desk_b = staff_client(staff_user("desk-b", perms=PERMS))
    field = "DeviceCookie__new_device"
    _put_in_force(desk_a, desk_b, django_capture_on_commit_callbacks, **{field: "45"})
    assert PolicyVersion.objects.count() == 1
    assert _in_force(DEVICE_COOKIE, "new_device") == 45

    asked = desk_a.post(
        ADD,
        {
            "comment": "no scoring change: re-saving the thresholds",
            "step_up": "40",
            "deny": "100",
            "signal_options": "{}",
            "shadow_signals": "[]",
        },
    )
    approval = StaffApproval.objects.get(status="pending")
    assert asked.status_code == 302 and approval.action == "change_policy"
    page = desk_b.get(f"{APPROVALS}{approval.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    shown = "new_device" in html or "Points for a browser never seen on the account" in html
    with django_capture_on_commit_callbacks(execute=True):
        approve_pending(desk_b)
    now_in_force = _in_force(DEVICE_COOKIE, "new_device")
    assert shown, (
        "desk B's approval page shows only the thresholds and an empty signal_options: approving it put the "
        f"points of a new browser back from 45 to {now_in_force} without anyone being shown that change"
    )


def test_the_editors_json_takes_points_its_own_field_refuses_and_new_browsers_score_nothing(
    django_capture_on_commit_callbacks: Any, geoip: Any, browser_at: Any, user_factory: Any
) -> None:
    """The editor's typed field refuses "Points for a browser never seen on the account" outside -100..100
    with a message that names it (docs/policy-editor.md: "Wrong values are refused ... nothing is saved or
    asked for"). The advanced JSON on the same page ("applied on top of the boxes") and a plain POST go
    through ``policy_problem`` only, which checks that a value is *a number*: ``-1e9`` (a slip of the
    keyboard, or meant) is reviewed as "25 → -1000000000", asked for and, approved by a second desk in a
    hurry, put in force. The score is the sum clamped to 0..100: every new browser now scores 0 whatever
    else it shows (a Japanese residential proxy, a hosting network, Tor), so the thief with her password
    signs in without any step-up.

    Secure: the flow's own check (``policy_problem`` / ``signal_problem``) enforces the options' bounds
    (``signal_info`` already has them) and refuses non-finite numbers, whichever path the proposal takes;
    the page answers with the form's error and nothing is asked for."""
    from authguard.models import LoginEvent

    hanako = user_factory("hanako")
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    for _ in range(3):
        home.sign_in("hanako")
    before = browser_at(IP_JP_PROXY, UA_FIREFOX_LINUX)
    before.sign_in("hanako")
    control = LoginEvent.objects.filter(user=hanako).order_by("-pk").first()
    assert control.action in ("step_up", "deny"), (control.score, control.action)
    desk_a = staff_client(staff_user("desk-a", perms=PERMS))
    desk_b = staff_client(staff_user("desk-b", perms=PERMS))
    data = {
        **page_values(desk_a.get(ADD)),
        "comment": "new browsers: fewer false step-ups",
        "signal_options": json.dumps({DEVICE_COOKIE: {"new_device": -1_000_000_000}}),
    }
    page = desk_a.post(ADD, {**data, "_review": "1"})
    refused = page.status_code == 200 and "reviewed" not in page.context
    if not refused:
        desk_a.post(ADD, {**data, "reviewed": page.context["reviewed"], "_confirm": "1"})
        with django_capture_on_commit_callbacks(execute=True):
            approve_pending(desk_b)
    thief = browser_at(IP_JP_PROXY, UA_FIREFOX_LINUX)
    answer = thief.sign_in("hanako")
    event = LoginEvent.objects.filter(user=hanako).order_by("-pk").first()
    assert refused and not StaffApproval.objects.exists(), (
        f"points of -1e9 for a new browser were reviewed, asked for and put in force "
        f"(v{PolicyVersion.objects.values_list('pk', flat=True).first()}); a new browser on a proxy scored "
        f"{control.score} -> {control.action} before, the thief's now {event.score} -> {event.action} "
        f"(HTTP {answer.status_code})"
    )


def test_held_the_typed_field_refuses_points_out_of_range_with_a_message() -> None:
    """The same value in the typed field is refused with a message naming the option; nothing is asked."""
    desk = staff_client(staff_user("desk-a", perms=PERMS))
    data = {**page_values(desk.get(ADD)), "comment": "probe", "DeviceCookie__new_device": "-1000000000"}
    page = desk.post(ADD, {**data, "_review": "1"})
    assert page.status_code == 200 and "reviewed" not in page.context
    assert "Points for a browser never seen on the account" in page.content.decode()
    assert not StaffApproval.objects.exists()


def test_held_a_policy_change_needs_a_second_desk_and_its_requester_cannot_approve_it() -> None:
    """One desk alone: the request waits; approving it herself on the staff actions page is refused; a
    password-only session of a second desk is held at the passkey page and approves nothing."""
    desk_a = staff_client(staff_user("desk-a", perms=PERMS))
    desk_b = staff_user("desk-b", perms=PERMS)
    data = {**page_values(desk_a.get(ADD)), "comment": "lower the step-up", "step_up": "90"}
    page = desk_a.post(ADD, {**data, "_review": "1"})
    desk_a.post(ADD, {**data, "reviewed": page.context["reviewed"], "_confirm": "1"})
    approval = StaffApproval.objects.get()
    assert approval.status == "pending"
    approve_pending(desk_a)
    assert StaffApproval.objects.get().status == "pending" and not PolicyVersion.objects.exists()
    held = approve_pending(password_only_client(desk_b))
    assert held.status_code == 403
    assert StaffApproval.objects.get().status == "pending" and not PolicyVersion.objects.exists()


# -- (d) malformed input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options", ["[1, 2]", '"strict"', "5", "true"], ids=["list", "string", "number", "bool"]
)
def test_the_backtest_page_answers_signal_options_that_are_not_an_object_with_a_form_error(
    options: str,
) -> None:
    """The console's backtest (``/admin/authguard/loginevent/backtest/``) reads "signal options" as JSON and
    hands whatever it is to ``backtest.proposed_runtime_policy``, which calls ``dict(signal_options)``: a
    list, a string, a number or ``true`` (valid JSON, not an object: a paste of the shadow-signal list, say)
    raise ``TypeError``/``ValueError`` there, outside the ``BacktestError`` the form catches, and the page
    answers 500.

    Secure: the form says "signal options must be an object {signal path: {option: value}}" (200 with the
    form, or 400), as it does for invalid JSON; nothing runs."""
    desk = staff_client(staff_user(perms=("authguard.view_loginevent",)), raise_request_exception=False)
    answer = desk.post(BACKTEST, {"days": "30", "step_up": "40", "deny": "80", "signal_options": options})
    assert answer.status_code in (200, 400), f"the backtest page answered {answer.status_code} to {options}"


@pytest.mark.parametrize(
    "form",
    [
        {"op": "block", "network": "::ffff:0:0/0", "hours": "6", "reason": "stuffing wave"},
        {"op": "block", "network": "AS٣٣٣", "hours": "6", "reason": "stuffing wave"},
        {"op": "block", "network": "198.51.100.0/24", "hours": "１２", "reason": "stuffing wave"},
        {"op": "block", "network": "198.51.100.0/24", "hours": "9" * 40, "reason": "stuffing wave"},
        {"op": "block", "network": "198.51.100.0/24\x00", "hours": "6", "reason": "stuffing wave"},
        {"op": "end", "block": "-1", "reason": "false alarm"},
        {"op": "end", "block": "9" * 30, "reason": "false alarm"},
        {"op": ["block", "end"], "network": "198.51.100.0/24", "hours": "6", "reason": "x" * 5000},
    ],
)
def test_held_malformed_blocks_get_a_4xx_and_write_nothing(form: dict[str, Any]) -> None:
    desk = staff_client(
        staff_user("desk-a", perms=("authguard.view_loginevent", "authguard.add_networkblock")),
        raise_request_exception=False,
    )
    answer = desk.post("/admin/authguard/loginevent/network-lists/", form)
    assert 400 <= answer.status_code < 500, answer.status_code
    assert not StaffApproval.objects.exists()


@pytest.mark.parametrize(
    "form",
    [
        {"containment": "unlock_account", "reason": "customer called"},
        {"containment": "lock_account", "reason": ""},
        {"containment": "lock_account", "reason": ["a", "b"]},
        {"containment": "LOCK_ACCOUNT", "reason": "takeover"},
        {"containment": "change_policy", "reason": "takeover"},
    ],
)
def test_held_the_incident_page_refuses_a_malformed_or_foreign_containment(
    user_factory: Any, form: dict[str, Any]
) -> None:
    """The incident page's POST takes only the three containments, with a real reason: an unlock or a policy
    change slipped in as ``containment`` is refused (4xx), nothing is written."""
    hanako = user_factory("hanako")
    desk = staff_client(
        staff_user(
            "desk-a", perms=("authguard.view_loginevent", "auth.view_user", "authguard.contain_account")
        ),
        raise_request_exception=False,
    )
    answer = desk.post("/admin/authguard/loginevent/incident/", {"user": str(hanako.pk), **form})
    assert 400 <= answer.status_code < 500, answer.status_code
    assert not StaffApproval.objects.exists()


# -- (a) the thief on the phone ---------------------------------------------------------------------------


def test_the_desks_re_binding_grant_needs_no_permission_leaves_no_audit_line_and_is_not_told_to_her(
    user_factory: Any,
) -> None:
    """The thief phones the desk as hanako: "my phone with the authenticator was stolen". A desk member
    (any staff user: this one holds no permission at all, and no passkey check is asked, since the function
    takes no request) calls ``lifecycle.grant_rebind``: for 72 hours the account binds a new factor from a
    session vouched for on its own. Unlike every other thing the desk does to an account (docs/staff-
    approvals.md: recorded, audited, told to the customer), the grant writes no admin-log line, no staff
    action, and tells hanako nothing; she learns of it only when the thief's factor is bound with it, and the
    incident report shows nothing for an analyst looking at the account in between.

    Secure: the grant is a staff action of the four-eyes flow (``approvals.request_action(action=
    "grant_rebind")``: a permission, a passkey-verified desk, a reason, an audit line) and hanako is told at
    once ("our desk allowed a new sign-in method to be set up on your account; if you did not call us ...").
    """
    from authguard.factors import lifecycle
    from authguard.models import AccountSecurity

    hanako = user_factory("hanako")
    nobody_special = staff_user("desk-temp", perms=())
    refused = False
    try:
        lifecycle.grant_rebind(hanako, by_staff=nobody_special)
    except Exception:  # a refusal of any kind is the secure outcome
        refused = True
    open_grant = AccountSecurity.objects.filter(user=hanako, rebind_granted_until__isnull=False).exists()
    audited = LogEntry.objects.exists() or StaffApproval.objects.exists()
    told = Notification.objects.filter(user=hanako).exists()
    assert refused or (audited and told), (
        f"a staff user without any permission opened hanako's re-binding grant (open: {open_grant}); "
        f"admin-log line or staff action: {audited}; hanako told: {told}"
    )


# -- one desk member, no reason, no notice ------------------------------------------------------------------


def test_the_desk_deletes_her_known_browsers_without_a_reason_and_she_is_not_told(
    geoip: Any, browser_at: Any, user_factory: Any
) -> None:
    """The console's known-device admin offers *Revoke*, which tells the customer ("a remembered device was
    removed by staff"). It does not refuse Django's own delete: ``has_delete_permission`` is not overridden,
    so any desk member holding ``authguard.delete_knowndevice`` (the demo's Security desk group holds every
    authguard permission) deletes her browsers of months through the *Delete selected* action or the delete
    page, with no reason (docs/staff-approvals.md: forgetting a remembered device is a one-person action
    *with a reason*) and no message to her. Her browser of long standing is what vouches for her own factor
    changes and keeps her out of step-ups; deleted, its history is gone, not merely revoked, and she never
    learns why her own browser is now a stranger.

    Secure: the known-device admin refuses delete as every other factor admin does (forgetting is the
    audited *Revoke*, with a reason and a message to her)."""
    from authguard.models import KnownDevice

    hanako = user_factory("hanako")
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    for _ in range(3):
        home.sign_in("hanako")
    devices = list(KnownDevice.objects.filter(user=hanako).values_list("pk", flat=True))
    assert devices
    desk = staff_client(
        staff_user("desk-a", perms=("authguard.view_knowndevice", "authguard.delete_knowndevice")),
        raise_request_exception=False,
    )
    before = Notification.objects.filter(user=hanako).count()
    desk.post(
        "/admin/authguard/knowndevice/",
        {"action": "delete_selected", "_selected_action": [str(pk) for pk in devices], "post": "yes"},
    )
    left = KnownDevice.objects.filter(user=hanako).count()
    told = Notification.objects.filter(user=hanako).count() > before
    assert left == len(devices) or told, (
        f"one desk member deleted {len(devices) - left} of hanako's known browsers with no reason; "
        f"hanako told: {told}"
    )
