"""A customer's password at the demo's admin login (red team round 34 (a), found on portal two): checked by
ThrottleBackend and refused either way, the right one recorded and scored (``authguard.login.admin_door``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from authguard.login.admin_door import NOT_STAFF
from authguard.models import AccountLock, LoginEvent, Outcome
from authguard.risk import event_categories

from .conftest import IP_SG_VPS, UA_CURL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def admin_login(username: str, password: str) -> Any:
    client = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CURL)
    client.get("/admin/login/")
    answer = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    assert "_auth_user_id" not in client.session
    return answer


def test_a_customers_right_password_at_the_admin_login_is_a_refused_sign_in(user_factory: Any) -> None:
    alice = user_factory("alice")
    answer = admin_login("alice", "correct horse battery")
    assert answer.status_code == 200
    event = LoginEvent.objects.get(user=alice)
    assert (event.outcome, event.password_ok, event.ip) == (Outcome.REFUSED, True, IP_SG_VPS)
    assert NOT_STAFF in {f["code"] for f in event.findings}
    assert event_categories.category_of(event).code == "denied"
    assert not AccountLock.objects.filter(user=alice, failures__gt=0).exists()


def test_a_customers_wrong_password_at_the_admin_login_is_one_failure_with_the_same_answer(
    user_factory: Any,
) -> None:
    alice = user_factory("alice")
    wrong = admin_login("alice", "guess")
    right = admin_login("alice", "correct horse battery")
    assert wrong.context["form"].errors == right.context["form"].errors
    assert LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count() == 1
    assert AccountLock.objects.get(user=alice).failures == 1


def test_an_unknown_name_at_the_admin_login_is_a_wrong_password(user_factory: Any) -> None:
    answer = admin_login("nobody", "correct horse battery")
    assert answer.status_code == 200
    event = LoginEvent.objects.get()
    assert (event.user, event.username, event.outcome) == (None, "nobody", Outcome.BAD_PASSWORD)
