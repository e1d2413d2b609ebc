"""Red team round thirty-nine (a): a NUL byte in the reason a staff member types on the console's own pages.

The incident report's containment form and the allow/deny lists page read ``reason`` straight from
``request.POST`` (no Django form, so no ``ProhibitNullCharactersValidator``); ``four_eyes.reason_text`` only
squeezes whitespace and checks the length. PostgreSQL refuses a NUL in a text column, so
``approvals.request_action``'s ``StaffApproval.objects.create`` raises ``DataError``: a 500 instead of the
form's "give a reason" message (the admin's own actions, which use ``ReasonForm``, answer 400 for it).

The incident report's account search has the same hole on the read side: ``pages._find_user`` passes
``?user=`` (with its NUL) to ``get_by_natural_key``, and PostgreSQL's ``DataError`` is a 500 instead of
"no such account".
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from authguard.models import StaffApproval

from .console_data import staff_client, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.postgres]

BASE = "/admin/authguard/loginevent/"


@pytest.mark.parametrize(
    ("page", "form"),
    [
        ("incident/", {"containment": "lock_account"}),
        ("incident/", {"containment": "end_sessions"}),
        ("network-lists/", {"op": "block", "network": "198.18.0.0/24", "hours": "24"}),
    ],
    ids=["incident-lock", "incident-end-sessions", "network-block"],
)
def test_console_reason_with_a_nul_byte_is_refused_with_a_message_not_a_500(
    brokerage_customer: Any, page: str, form: dict[str, str]
) -> None:
    """Secure: a reason pasted with a NUL byte (from a ticket system, a copied log line) is refused as any
    other unusable reason, with the page and its message (4xx), and no staff request is stored.
    Had: a verified, passkey-verified staff session with the console's permissions."""
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    desk: Client = staff_client(staff_user("root", superuser=True), raise_request_exception=False)
    data = {**form, "reason": "customer called\x00 from the branch", "user": str(hanako.pk)}
    response = desk.post(BASE + page, data)
    assert response.status_code < 500, response.status_code
    assert not StaffApproval.objects.exists()


@pytest.mark.parametrize(
    "query", ["%00", "hanako%00", "%00@example.com"], ids=["nul", "name-nul", "address-nul"]
)
def test_console_incident_search_for_a_user_with_a_nul_byte_answers_not_found_not_500(
    brokerage_customer: Any, query: str
) -> None:
    """Secure: searching the incident report for a name with a NUL byte (a pasted log line) shows "no such
    account" (200), as any unknown name does. Had: a verified staff session with view permissions."""
    brokerage_customer(holdings={"7203": 100}, totp=True)
    desk: Client = staff_client(staff_user("root", superuser=True), raise_request_exception=False)
    assert desk.get(BASE + "incident/?user=nobody").status_code == 200
    response = desk.get(BASE + "incident/?user=" + query)
    assert response.status_code < 500, response.status_code
