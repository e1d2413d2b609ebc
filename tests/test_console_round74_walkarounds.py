"""Red team, round seventy-four (held since): the security console (authguard/console/) against an outsider
with a low-privilege staff session and against one corrupt, passkey-verified staff member."""

from __future__ import annotations

from typing import Any

import pytest

from authguard.console import approvals
from authguard.models import HeldOrder, StaffApproval

from .console_data import staff_user
from .staff_fixtures import APPROVALS, staff_client

pytestmark = [pytest.mark.django_db]


@pytest.mark.parametrize("selected", ["abc", "99999999999999999999999"])
def test_a_malformed_selection_on_the_held_actions_list_is_no_server_error(selected: str) -> None:
    """**Secure:** a malformed selection (``_selected_action=abc``, a number out of range) gets the admin's
    "Select valid records." message, as on every console list since round thirty-nine
    (``ValidSelectionMixin``).

    **Attack:** a desk member with ``view_heldaction``/``change_heldaction`` (or a forged form) posts
    *Cancel the held request* with ``_selected_action=abc`` to ``/admin/authguard/heldaction/``: 500.

    **Root cause:** ``authguard/actions/admin.py:_ReadOnly`` builds on ``UserSearchMixin`` and
    ``admin.ModelAdmin`` but not on ``ValidSelectionMixin`` (the console's ``ReadOnlyAdmin`` does), so
    Django filters ``pk__in=['abc']`` and raises.

    **Fix:** ``class _ReadOnly(UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin)`` (or build it on
    ``authguard.console.admin_base.ReadOnlyAdmin``).
    """
    client = staff_client(
        staff_user("desk-x", perms=("authguard.view_heldaction", "authguard.change_heldaction"))
    )
    client.raise_request_exception = False
    answer = client.post(
        "/admin/authguard/heldaction/",
        {"action": "cancel_held", "_selected_action": [selected], "apply": "1", "reason": "a reason"},
    )
    assert answer.status_code == 302, answer.status_code


def _lists_with_actions(client: Any) -> list[tuple[str, str]]:
    from django.contrib import admin

    found = []
    for model, model_admin in admin.site._registry.items():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        request = client.get(url).wsgi_request
        for name in model_admin.get_actions(request):
            found.append((url, name))
    return found


def test_no_admin_action_of_the_site_answers_a_malformed_selection_with_a_500() -> None:
    """**Secure:** every admin action of the console and of the demo's admin answers a malformed selection
    with a message (``ValidSelectionMixin``), never a 500.

    **Attack:** a superuser's session (or any staff member's with an action's permission) posts each action
    of each list with ``_selected_action=abc``.

    **Root cause / fix:** the lists listed in the assertion do not build on
    ``authguard.console.mixins.ValidSelectionMixin`` (``authguard/actions/admin.py:_ReadOnly``, the demo's
    ``demo_site/brokerage/admin.py`` admins); add it to their bases.
    """
    client = staff_client(staff_user("root", superuser=True))
    client.raise_request_exception = False
    crashes = []
    for url, action in _lists_with_actions(client):
        answer = client.post(
            url, {"action": action, "_selected_action": ["abc"], "apply": "1", "reason": "a reason"}
        )
        if answer.status_code >= 500:
            crashes.append(f"{url} {action}: {answer.status_code}")
    assert not crashes, "\n".join(crashes)


def test_staff_without_view_user_reads_customers_email_addresses_through_search(user_factory: Any) -> None:
    """**Secure:** a customer's e-mail address is personal data the console shows only to staff who may view
    users (``auth.view_user``: the compliance and incident reports "list customers", docs/operations.md).
    A desk member who may only look at remembered browsers should not be able to read it out.

    **Attack:** staff with ``authguard.view_knowndevice`` alone (no ``auth.view_user``) searches the known
    devices list: ``?q=@`` fragments match only e-mail addresses (never a login name), so one answer per
    guess (rows or none) spells out hanako's private address character by character; here the whole
    address, confirmed in one request, and its domain found by a prefix walk.

    **Root cause:** ``authguard/console/mixins.py:UserSearchMixin.get_search_fields`` adds
    ``user__<EMAIL_FIELD>`` to every console list's search whatever the staff member's permissions.

    **Fix:** add the e-mail lookup only when ``request.user.has_perm("<user app>.view_user")`` (the login
    name is on the list already), or match the e-mail only exactly (``=user__email``).
    """
    from django.utils import timezone

    from authguard.models import KnownDevice

    hanako = user_factory("hanako", email="hanako.private77@mail.example")
    now = timezone.now()
    KnownDevice.objects.create(
        user=hanako, cookie_hash="1" * 64, label="Chrome on Windows", first_seen_at=now, last_seen_at=now
    )
    client = staff_client(staff_user("looker", perms=("authguard.view_knowndevice",)))

    def hits(q: str) -> int:
        page = client.get("/admin/authguard/knowndevice/", {"q": q})
        assert page.status_code == 200
        return page.context["cl"].result_count

    leaked = hits("hanako.private77@mail.example")
    assert leaked == 0, "her whole private e-mail address confirmed by one search"


def test_held_a_lookup_through_the_customer_to_her_email_or_password_is_refused(user_factory: Any) -> None:
    """Held: ``?user__email__startswith=`` and ``?user__password__startswith=`` on a console list are
    refused (Django's relation rule after ``DeclaredFiltersMixin``), not an oracle."""
    user_factory("hanako", email="hanako@example.jp")
    client = staff_client(staff_user("looker", perms=("authguard.view_knowndevice",)))
    client.raise_request_exception = False
    for query in (
        "user__email__startswith=h",
        "user__password__startswith=p",
        "user__email=hanako@example.jp",
    ):
        answer = client.get(f"/admin/authguard/knowndevice/?{query}")
        assert answer.status_code in (302, 400), (query, answer.status_code)
        if answer.status_code == 302:
            assert answer["Location"].endswith("?e=1"), query


def test_held_low_privilege_staff_opens_no_console_page_beyond_his_permission() -> None:
    """Held: staff with ``view_knowndevice`` only get 403 from the export, incident, dashboard, compliance and
    backtest pages, and the incident page's containment POST."""
    client = staff_client(staff_user("looker", perms=("authguard.view_knowndevice",)))
    client.raise_request_exception = False
    base = "/admin/authguard/loginevent/"
    for page in ("export/?days=30", "incident/?user=1", "dashboard/", "compliance/?format=csv", "backtest/"):
        assert client.get(base + page).status_code == 403, page
    answer = client.post(base + "incident/", {"user": "1", "containment": "lock_account", "reason": "xyz"})
    assert answer.status_code == 403
    assert not StaffApproval.objects.exists()


def test_held_a_requester_cannot_approve_his_own_unlock(user_factory: Any, settings: Any) -> None:
    """Held: the corrupt desk member asks to unlock the victim and approves it himself through the staff
    actions page: refused (``own_request``), the account stays locked."""
    from authguard.login import lockout
    from authguard.models import AccountLock

    from .staff_fixtures import locked_by_failures

    victim = locked_by_failures(user_factory("victim"), settings)
    perms = ("authguard.view_accountlock", "authguard.unlock_account", "authguard.view_staffapproval")
    insider = staff_client(staff_user("insider", perms=perms))
    lock = AccountLock.objects.get(user=victim)
    insider.post(
        "/admin/authguard/accountlock/",
        {"action": "unlock", "_selected_action": [str(lock.pk)], "apply": "1", "reason": "she called"},
    )
    pending = StaffApproval.objects.get(status="pending")
    insider.post(
        APPROVALS,
        {"action": "approve", "_selected_action": [str(pending.pk)], "apply": "1", "reason": "ok by me"},
    )
    pending.refresh_from_db()
    assert pending.status == "pending" and lockout.is_locked(victim)


def test_held_a_plain_policy_post_turning_a_signal_off_out_of_range_is_refused() -> None:
    """Held: a plain POST (no editor forms) with ``{"DeviceCookie": {"new_device": -1e9}}`` or a count
    beyond 2**53 saves nothing and asks for nothing."""
    perms = ("authguard.add_policyversion", "authguard.view_policyversion")
    insider = staff_client(staff_user("insider", perms=perms))
    for options in (
        '{"authguard.risk_signals.DeviceCookie": {"new_device": -1000000000}}',
        '{"authguard.risk_signals.ImpossibleTravel": {"max_kmh": 1e300}}',
        '{"authguard.risk_signals.DeviceCookie": {"new_device": NaN}}',
    ):
        insider.post(
            "/admin/authguard/policyversion/add/",
            {"comment": "tuning", "step_up": "40", "deny": "80", "signal_options": options},
        )
    assert not StaffApproval.objects.exists()
    # The control: the same plain POST with a value in range is asked for (and waits for a second person).
    insider.post(
        "/admin/authguard/policyversion/add/",
        {
            "comment": "tuning",
            "step_up": "40",
            "deny": "80",
            "signal_options": '{"authguard.risk_signals.DeviceCookie": {"new_device": 20}}',
        },
    )
    assert StaffApproval.objects.get().status == "pending"


def test_held_release_through_the_admin_waits_for_a_second_person() -> None:
    """Held (no held order needed to show the rule): the default four-eyes actions include the release,
    the unlock, the factor revocation and the policy change at every severity."""
    from authguard.console import four_eyes

    for action in ("release_order", "unlock_account", "revoke_factor", "change_policy"):
        for severity in (1, 2, 3, 4):
            assert four_eyes.needs_second_approval(action=action, severity=severity)
    assert HeldOrder and approvals  # imported for the flow under test
