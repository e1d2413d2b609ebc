"""Portal two's admin login form as a customer login path (red team round 34 (a), fixed): at the admin login
ThrottleBackend checks a non-staff account's password itself and refuses it either way; a right one is
recorded as a refused sign-in, scored like any other (``authguard.login.admin_door``)."""

from __future__ import annotations

from typing import Any

import pytest

from authguard.login.admin_door import NOT_STAFF
from authguard.models import AccountLock, LoginEvent, Outcome
from authguard.risk import event_categories

from ..conftest import IP_SG_VPS
from .support import UA_REQUESTS, browser, home_customer, kinds

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def admin_login(client: Any, email: str, password: str) -> Any:
    client.get("/admin/login/")
    return client.post(
        "/admin/login/?next=/admin/", {"username": email, "password": password, "next": "/admin/"}
    )


def test_a_customers_password_checked_at_the_admin_login_is_scored_and_recorded(
    user_factory: Any, totp_factory: Any
) -> None:
    """The gang checks each phished customer password at the portal's ``/admin/login/`` from a Singapore
    VPS with python-requests. The admin form refused the right one as "not staff" itself, after the
    password check: neither ``user_logged_in`` nor ``user_login_failed`` fired, so the right password left
    no trace while a wrong one was recorded (and the two differed by authguard's work: a timing oracle).

    Fixed: a customer's password checked at the admin login is an attempt like any other: the right one is
    recorded with ``password_ok`` and refused, scored (category ``denied``, the risk engine's reasons, and a
    finding saying why the admin refused it); nobody is signed in.
    """
    alice = home_customer(user_factory, "alice")
    totp_factory(alice)
    before = set(LoginEvent.objects.values_list("pk", flat=True))
    thief = browser(IP_SG_VPS, UA_REQUESTS)
    answer = admin_login(thief, "alice@example.jp", "correct horse battery")
    assert answer.status_code == 200 and "_auth_user_id" not in thief.session  # not signed in: good
    new = LoginEvent.objects.exclude(pk__in=before).filter(user=alice)
    assert new.exists(), "the customer's right password was checked and nothing was recorded"
    event = new.get()
    assert event.ip == IP_SG_VPS and event.outcome == Outcome.REFUSED and event.password_ok
    assert event_categories.category_of(event).code == "denied"
    assert {"anonymous_hosting", "automation_client", NOT_STAFF} <= set(event.reasons) | {
        f["code"] for f in event.findings
    }
    assert not AccountLock.objects.filter(user=alice, failures__gt=0).exists()  # a right password: no failure


def test_held_a_customer_cannot_sign_in_to_the_admin(user_factory: Any) -> None:
    """The admin refuses a customer with her right password from home; no session, no notice."""
    alice = home_customer(user_factory, "alice")
    before = kinds(alice)
    client = browser()
    answer = admin_login(client, "alice@example.jp", "correct horse battery")
    assert answer.status_code == 200 and "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302
    assert kinds(alice) == before


def test_a_wrong_customer_password_at_the_admin_login_is_one_failure_and_answers_as_a_right_one(
    user_factory: Any,
) -> None:
    """A wrong password is checked once (by ThrottleBackend, not again by Django's backend), recorded as a
    wrong password and counted once on her lock; the admin's answer is the same page as for the right one."""
    alice = home_customer(user_factory, "alice")
    before = set(LoginEvent.objects.values_list("pk", flat=True))
    wrong = admin_login(browser(IP_SG_VPS, UA_REQUESTS), "alice@example.jp", "guess")
    right = admin_login(browser(IP_SG_VPS, UA_REQUESTS), "alice@example.jp", "correct horse battery")
    assert wrong.status_code == right.status_code == 200
    assert wrong.context["form"].errors == right.context["form"].errors
    new = LoginEvent.objects.exclude(pk__in=before).filter(user=alice).order_by("pk")
    assert [(e.outcome, e.password_ok) for e in new] == [
        (Outcome.BAD_PASSWORD, False),
        (Outcome.REFUSED, True),
    ]
    assert AccountLock.objects.get(user=alice).failures == 1


def test_held_staff_still_sign_in_at_the_admin_login(user_factory: Any) -> None:
    """A staff account's password is checked by Django's backend as before: signed in, scored, recorded."""
    desk = user_factory("desk", is_staff=True)
    client = browser()
    answer = admin_login(client, desk.email, "correct horse battery")
    assert answer.status_code == 302 and client.session["_auth_user_id"] == str(desk.pk)
    assert LoginEvent.objects.get(user=desk).outcome == Outcome.SIGNED_IN
