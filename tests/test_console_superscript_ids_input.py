"""Red team round thirty-nine (a): a superscript digit as an id on the security console's own pages.

``str.isdigit()`` is True for "²" (and the other superscripts), which ``int()`` refuses. Two console lookups
guard ``int(raw)`` with ``raw.isdigit()`` only (the demo's own money code learnt this: "ASCII digits:
"²".isdigit() is True"): the incident report's account search (``pages._find_user``, ``?user=²``) and ending a
network block early (``containment.request_end_block``, ``block=²``). Both raise ``ValueError``: a 500 instead
of "no such account" / "no such network block".
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from authguard.models import StaffApproval

from .console_data import staff_client, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

BASE = "/admin/authguard/loginevent/"


def _desk(brokerage_customer: Any) -> Client:
    brokerage_customer(holdings={"7203": 100}, totp=True)
    return staff_client(staff_user("root", superuser=True), raise_request_exception=False)


def test_console_incident_search_for_user_superscript_two_answers_not_found_not_500(
    brokerage_customer: Any,
) -> None:
    """Secure: searching the incident report for "²" (a typo on a Japanese keyboard, or a probe) shows "no
    such account", as "abc" does. Had: a verified staff session with view permissions."""
    desk = _desk(brokerage_customer)
    assert desk.get(BASE + "incident/?user=abc").status_code == 200
    response = desk.get(BASE + "incident/?user=%C2%B2")
    assert response.status_code < 500, response.status_code


def test_console_end_network_block_superscript_two_answers_404_not_500(brokerage_customer: Any) -> None:
    """Secure: asking to end network block "²" answers 404 "no such network block" (as block "abc" or "١"
    do) and stores no staff request. Had: a verified staff session with the console's permissions."""
    desk = _desk(brokerage_customer)
    form = {"op": "end", "reason": "the wave is over"}
    assert desk.post(BASE + "network-lists/", {**form, "block": "١"}).status_code == 404
    response = desk.post(BASE + "network-lists/", {**form, "block": "²"})
    assert response.status_code < 500, response.status_code
    assert not StaffApproval.objects.exists()
