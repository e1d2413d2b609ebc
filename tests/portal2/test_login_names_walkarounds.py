"""The e-mail address as login name on portal two, against authguard's throttle, lockout and events (red
team round 34 (a), fixed): a login name is looked up whole, up to the user model's ``USERNAME_FIELD`` length
(``authguard.risk.context.login_name_limit``: 254 here), never cut to Django's 150."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import authenticate
from django.utils import timezone

from authguard.login import lockout, requestless
from authguard.login.attempt import user_and_lock, user_by_name
from authguard.models import AccountLock, LoginEvent, Outcome
from authguard.risk.context import login_name_limit

from ..conftest import IP_OSAKA, IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN
from .support import browser, home_customer, json_login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

# A real, if long, corporate address (Django's EmailField allows 254 characters; the portal's model too).
LONG_EMAIL = (
    "hanako.yamada.personal-investment-account@"
    "tokyo-headquarters.global-asset-management-division.private-banking.retail-investors."
    "mitsubishi-example-holdings.co.jp"
)
assert 150 < len(LONG_EMAIL) <= 254, len(LONG_EMAIL)


def test_a_long_login_name_is_counted_on_its_account_and_locks_it(user_factory: Any) -> None:
    """The gang guesses the password of a customer whose e-mail address (her login name) is longer than 150
    characters, through Django's LoginView (its form accepts the field's 254). authguard cut the typed name
    to 150 characters before it looked the account up (``after_failed_login``, the ThrottleBackend's lock
    check): no failure was counted on her account, no lock ever landed, and the events named nobody.

    Fixed: the whole name is looked up; the failed attempts are her account's (events with ``user`` set, the
    name stored cut to the column's 150 for display) and the tenth locks it; the right password is then
    refused too.
    """
    hanako = home_customer(user_factory, LONG_EMAIL)
    for i in range(10):
        ip = (IP_TOKYO, IP_TOKYO_2, IP_OSAKA)[i % 3]
        response = browser(ip, UA_CHROME_WIN).sign_in(LONG_EMAIL, f"guess-{i}")
        assert response.status_code == 200  # the form again: wrong password
    failed = LoginEvent.objects.filter(outcome=Outcome.BAD_PASSWORD)
    assert failed.count() == 10
    assert set(failed.values_list("user", flat=True)) == {hanako.pk}
    assert set(failed.values_list("username", flat=True)) == {LONG_EMAIL[:150]}  # the column's copy
    assert lockout.is_locked(hanako)
    # Two hours later (the hourly throttle has forgotten him) the right password is refused.
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        thief = browser(IP_TOKYO, UA_CHROME_WIN)
        thief.sign_in(LONG_EMAIL)
        assert "_auth_user_id" not in thief.session


def test_held_every_spelling_of_an_address_counts_on_one_lock(user_factory: Any) -> None:
    """Case, full-width characters (the form normalises NFKC) and the JSON login all count on one lock."""
    alice = home_customer(user_factory, "alice")
    spellings = ["Alice@Example.JP", "ＡＬＩＣＥ＠ｅｘａｍｐｌｅ．ｊｐ", "alice@EXAMPLE.jp"]
    for i in range(10):
        name = spellings[i % 3]
        ip = (IP_TOKYO, IP_TOKYO_2, IP_OSAKA)[i % 3]
        if i % 2:
            json_login(browser(ip), name, f"guess-{i}")
        else:
            browser(ip).sign_in(name, f"guess-{i}")
    lock = AccountLock.objects.get(user=alice)
    # Full-width names reach the JSON login unnormalised: unknown there (no account, no count); the form's
    # NFKC finds her. Whichever it was, no spelling got a fresh run of its own beyond that.
    counted = LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count()
    assert lock.failures == counted >= 8


def test_held_surrounding_whitespace_finds_no_other_account(user_factory: Any) -> None:
    """A name with spaces around it is stripped by the form and unknown to the JSON login: no second run."""
    alice = home_customer(user_factory, "alice")
    assert json_login(browser(), " alice@example.jp ", "guess").status_code == 401
    browser().sign_in(" alice@example.jp\t", "guess")
    assert AccountLock.objects.get(user=alice).failures == 1


def test_a_long_login_name_obtains_an_api_token(user_factory: Any) -> None:
    """Customer cost: authguard's token login refused a login name over 150 characters as malformed
    (``MAX_USERNAME_LENGTH = 150``, a ``username`` length, not the user model's), so the trading app of a
    customer with a long address could not sign in at all.

    Fixed: the token login accepts any login name the user model's ``USERNAME_FIELD`` can hold (254 for an
    ``EmailField``) and scores it like the other paths (here: home, allowed, a token); a longer one is
    malformed and says the limit.
    """
    from .support import api

    home_customer(user_factory, LONG_EMAIL)
    answer = api().post(
        "/api/v1/auth/token", {"username": LONG_EMAIL, "password": "correct horse battery"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "ok" and answer.json()["token"]
    too_long = api().post("/api/v1/auth/token", {"username": "a" * 245 + "@example.jp", "password": "x"})
    assert too_long.status_code == 400 and "254" in too_long.json()["errors"]["username"][0]


def _desk_locks(user_factory: Any, customer: Any) -> None:
    from django.contrib.auth.models import Permission

    from .accounts.models import User

    desk = user_factory("desk", is_staff=True)
    desk.user_permissions.add(Permission.objects.get(codename="contain_account"))
    lockout.lock(customer, by=User.objects.get(pk=desk.pk), reason="takeover suspected")


def test_a_locked_account_with_a_long_login_name_answers_a_right_and_a_wrong_password_alike(
    user_factory: Any,
) -> None:
    """The desk contained the account of the customer with a long address. ThrottleBackend looked the lock
    up for the name cut to 150 characters, found no account, and let the password be checked: the right one
    signed in and was thrown out at once (302), a wrong one re-rendered the form, a password oracle on
    exactly the accounts the desk locked.

    Fixed: a locked account is refused before its password is checked, whatever the length of its login
    name: the same answer for a right and a wrong password, both recorded on her account as refused.
    """
    hanako = home_customer(user_factory, LONG_EMAIL)
    _desk_locks(user_factory, hanako)
    wrong = browser(IP_TOKYO).sign_in(LONG_EMAIL, "wrong")
    right = browser(IP_TOKYO).sign_in(LONG_EMAIL)
    assert (right.status_code, right.get("Location")) == (wrong.status_code, wrong.get("Location"))
    assert not LoginEvent.objects.filter(user=hanako, password_ok=True, outcome=Outcome.REFUSED).exists()
    assert LoginEvent.objects.filter(user=hanako, password_ok=False, outcome=Outcome.REFUSED).count() == 2


def test_held_a_locked_account_with_a_usual_address_answers_a_right_and_a_wrong_password_alike(
    user_factory: Any,
) -> None:
    """The same with a usual address: both answers are the form, nobody signed in."""
    alice = home_customer(user_factory, "alice")
    _desk_locks(user_factory, alice)
    wrong = browser(IP_TOKYO).sign_in("Alice@example.jp", "wrong")
    right = browser(IP_TOKYO).sign_in("Alice@example.jp")
    assert right.status_code == wrong.status_code == 200
    assert not LoginEvent.objects.filter(user=alice, password_ok=True, outcome=Outcome.REFUSED).exists()


def test_the_login_name_limit_is_the_user_models_and_a_longer_name_is_nobody(user_factory: Any) -> None:
    """One limit for every path: the e-mail field's 254 here. A name one character longer than an account's
    finds no account (it is never cut down to someone's), and the lock check answers "nobody, not locked"."""
    hanako = user_factory(LONG_EMAIL)
    assert login_name_limit() == 254
    assert user_by_name(LONG_EMAIL) == hanako and user_and_lock(LONG_EMAIL) == (hanako, False)
    longer = LONG_EMAIL + "x" * (255 - len(LONG_EMAIL))
    assert user_by_name(longer) is None and user_and_lock(longer) == (None, False)


def test_a_long_login_name_failing_without_a_request_counts_on_its_lock(user_factory: Any) -> None:
    """``authenticate()`` without a request (a script, a websocket login) counted nothing for a login name
    over 150 characters; it now counts on the account's lock like any other wrong password."""
    hanako = user_factory(LONG_EMAIL)
    assert authenticate(None, username=LONG_EMAIL, password="wrong") is None
    assert AccountLock.objects.get(user=hanako).failures == 1
    assert requestless.note_failure({"username": LONG_EMAIL + "x" * 200}) is False  # longer than any name


def test_the_limit_follows_a_login_field_longer_than_an_email_address(monkeypatch: Any) -> None:
    """Red team, round thirty-five: a cap of 254 under a longer login field (``max_length=320``) let names
    between the two reach Django's password check but never the lock. The limit is the field's, up to 1024;
    a field without a length is capped there too."""
    from django.contrib.auth import get_user_model

    from authguard.risk.context import LOGIN_NAME_CAP

    model = get_user_model()
    field = model._meta.get_field(model.USERNAME_FIELD)
    monkeypatch.setattr(field, "max_length", 320)
    assert login_name_limit() == 320
    monkeypatch.setattr(field, "max_length", None)
    assert login_name_limit() == LOGIN_NAME_CAP == 1024
