"""The security console (Django admin) on portal two: its staff sign in with their e-mail address, the
console opens only to a passkey-verified staff session, and every list searches this user model's e-mail
address (the demo's twins: tests/test_any_user_model.py, tests/test_admin.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from authguard.models import AccountLock, LoginEvent, Outcome

from ..conftest import IP_SG_VPS, IP_TOKYO, IP_TOR, UA_CHROME_WIN, UA_CURL
from .support import PASSWORD, browser, give_passkey, staff_console

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: What staff type into a search box, and what a fuzzer does (each must answer 200, never a 500).
QUERIES = [
    "alice@example.jp",
    "203.0.113.10",
    "2001:db8::1",
    "999.999.999.999",
    "%_'\"\\",
    "a" * 500,
    "\u3042 ::",
]


def console_admins() -> list[tuple[type, Any]]:
    """Every changelist of the console, the portal's own user admin included."""
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if type(model_admin).__module__.startswith(("authguard.", "tests.portal2."))
    ]


def changelist(model: type) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.fixture
def desk(user_factory: Any) -> Any:
    return user_factory("desk", is_staff=True, is_superuser=True)


@pytest.fixture
def events(user_factory: Any) -> Any:
    """alice's login from home and a thief's from a Tor exit with curl."""
    alice = user_factory("alice")
    browser(IP_TOKYO, UA_CHROME_WIN).sign_in("alice@example.jp")
    browser(IP_TOR, UA_CURL).sign_in("alice@example.jp")
    AccountLock.objects.create(user=alice, failures=3)
    return alice


def test_the_console_opens_only_to_a_passkey_verified_staff_session(desk: Any) -> None:
    password_only = Client()
    password_only.force_login(desk)
    refused = password_only.get(changelist(LoginEvent))
    assert refused.status_code in (302, 403) or b"passkey" in refused.content.lower()
    assert b"result_list" not in refused.content
    assert staff_console(desk).get(changelist(LoginEvent)).status_code == 200


def test_staff_sign_in_to_the_admin_with_their_email_and_the_login_is_scored(desk: Any) -> None:
    give_passkey(desk)
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "desk@example.jp", "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    event = LoginEvent.objects.get()
    assert (event.user, event.username, event.outcome) == (desk, "desk@example.jp", Outcome.SIGNED_IN)
    risky = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CURL).post(
        "/admin/login/?next=/admin/", {"username": "desk@example.jp", "password": PASSWORD}
    )
    assert "/admin/authguard/" not in risky.get("Location", "")
    assert LoginEvent.objects.latest("pk").outcome in (Outcome.REFUSED, Outcome.STEP_UP_PENDING)


def test_login_events_are_listed_and_found_by_the_customers_email(desk: Any, events: Any) -> None:
    console = staff_console(desk)
    listing = console.get(changelist(LoginEvent))
    assert listing.status_code == 200
    found = console.get(changelist(LoginEvent), {"q": "alice@example.jp"})
    assert found.status_code == 200
    rows = list(found.context["cl"].result_list)
    assert len(rows) == 2 and {row.user for row in rows} == {events}
    assert {row.outcome for row in rows} == {Outcome.SIGNED_IN, Outcome.REFUSED}
    tor = console.get(changelist(LoginEvent), {"reason": "anonymous_tor"})
    assert [row.ip for row in tor.context["cl"].result_list] == ["198.51.100.130"]
    detail = console.get(reverse("admin:authguard_loginevent_change", args=[rows[0].pk]))
    assert detail.status_code == 200 and b"alice@example.jp" in detail.content


def test_every_console_list_answers_every_search_and_finds_the_customer_by_email(
    desk: Any, events: Any
) -> None:
    console = staff_console(desk)
    admins = console_admins()
    assert len(admins) >= 15
    failures = {}
    for model, _model_admin in admins:
        url = changelist(model)
        for q in QUERIES:
            answer = console.get(url, {"q": q})
            if answer.status_code != 200:
                failures[(url, q)] = answer.status_code
    assert failures == {}
    locks = console.get(changelist(AccountLock), {"q": "Alice@Example.jp"})
    assert [lock.user for lock in locks.context["cl"].result_list] == [events]
    users = console.get(changelist(type(events)), {"q": "alice@"})
    assert [user.email for user in users.context["cl"].result_list] == ["alice@example.jp"]


def test_the_incident_report_finds_an_account_by_its_email(desk: Any, events: Any) -> None:
    console = staff_console(desk)
    page = console.get(reverse("admin:authguard_incident"), {"user": "alice@example.jp"})
    assert page.status_code == 200 and b"alice@example.jp" in page.content
    missing = console.get(reverse("admin:authguard_incident"), {"user": "nobody@example.jp"})
    assert missing.status_code in (200, 404) and b"nobody@example.jp" in missing.content


def test_the_incident_report_finds_an_account_as_its_login_finds_it(desk: Any, events: Any) -> None:
    console = staff_console(desk)
    page = console.get(reverse("admin:authguard_incident"), {"user": "Alice@Example.JP"})
    assert page.status_code == 200 and b"No account" not in page.content
    assert page.context["account"] == events
