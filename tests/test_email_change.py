"""The e-mail change with real portals' user models (issue 14, item 4), through the demo's JSON API.

An address is normalised as Django stores new users' addresses, one another account has is refused with a
message that says nothing about that account, the check is repeated at confirmation under row locks (two
accounts confirming one address at once: one 200, one 400, never a 500), and ``AUTHGUARD_EMAIL_CHANGE``
switches the built-in change off.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from authguard.factors import inventory
from authguard.models import ContactChange, Notification, PreviousEmail
from authguard.testing import SoftAuthenticator

from .conftest import IP_TOKYO, UA_CHROME_WIN, api_post, bind_passkey, passkey_step_up
from .test_orders_concurrency import in_parallel

pytestmark = [pytest.mark.usefixtures("geoip")]

UNUSABLE = "This address cannot be used."


def mailed_code() -> str:
    """The eight-digit code of the last confirmation mail."""
    return next(word for word in mail.outbox[-1].body.split() if word.isdigit() and len(word) == 8)


def verified_customer(
    user_factory: Any, browser_at: Any, settings: Any, username: str, **extra: Any
) -> tuple[Any, Client]:
    """``username`` with a passkey, signed in and freshly verified with it: allowed to change the address."""
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    user = user_factory(username, **extra)
    authenticator = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    bind_passkey(user, authenticator)
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.sign_in(username)
    assert passkey_step_up(client, authenticator).status_code == 200
    return user, client


@pytest.fixture
def alice(db: Any, user_factory: Any, browser_at: Any, settings: Any) -> tuple[Any, Client]:
    return verified_customer(user_factory, browser_at, settings, "alice")


@pytest.fixture
def bob(db: Any, user_factory: Any, browser_at: Any, settings: Any) -> tuple[Any, Client]:
    return verified_customer(user_factory, browser_at, settings, "bob")


@pytest.mark.django_db
def test_the_new_address_is_stored_normalised_as_django_stores_new_users(alice: tuple[Any, Client]) -> None:
    user, client = alice
    started = api_post(client, "api-email", {"email": "  Alice.New@EXAMPLE.JP \n"})
    assert started.status_code == 202, started.content
    assert mail.outbox[-1].to == ["Alice.New@example.jp"]  # the local part is kept, the domain lower-cased
    assert ContactChange.objects.get(user=user).new_email == "Alice.New@example.jp"
    assert api_post(client, "api-email-confirm", {"code": mailed_code()}).status_code == 200
    user.refresh_from_db()
    assert user.email == "Alice.New@example.jp"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        "no-at-sign",
        "two@@example.jp",
        "spaces in@example.jp",
        "x" * 250 + "@example.jp",
        "@example.jp",
        " ",
        7,
    ],
)
def test_an_invalid_address_is_a_400_and_nothing_is_pending_or_mailed(
    alice: tuple[Any, Client], value: Any
) -> None:
    user, client = alice
    response = api_post(client, "api-email", {"email": value})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_email" and response.json()["message"]
    assert not ContactChange.objects.filter(user=user).exists() and not mail.outbox


@pytest.mark.django_db
@pytest.mark.parametrize("claimed", ["bob@example.jp", "BOB@Example.JP", " bob@EXAMPLE.jp"])
def test_an_address_of_another_account_is_refused_without_saying_whose(
    alice: tuple[Any, Client], bob: tuple[Any, Client], claimed: str, caplog: Any
) -> None:
    user, client = alice
    with caplog.at_level(logging.WARNING, logger="authguard.factors.lifecycle"):
        response = api_post(client, "api-email", {"email": claimed})
    assert response.status_code == 400
    assert response.json() == {"status": "invalid", "message": UNUSABLE, "code": "email_unavailable"}
    assert "bob" not in response.content.decode()
    assert not ContactChange.objects.filter(user=user).exists() and not mail.outbox
    refused = [r for r in caplog.records if "another account" in r.getMessage()]
    assert len(refused) == 1 and f"user={user.pk}" in refused[0].getMessage()
    assert "bob" not in refused[0].getMessage()  # the log names the account asking, not the address


@pytest.mark.django_db
def test_the_same_address_in_another_case_is_the_customers_own(alice: tuple[Any, Client]) -> None:
    _user, client = alice
    response = api_post(client, "api-email", {"email": "ALICE@example.JP"})
    assert response.status_code == 400 and response.json()["code"] == "same_email"


@pytest.mark.django_db
def test_of_two_accounts_claiming_one_address_the_second_confirmation_is_refused(
    alice: tuple[Any, Client], bob: tuple[Any, Client]
) -> None:
    (alice_user, alice_client), (bob_user, bob_client) = alice, bob
    assert api_post(alice_client, "api-email", {"email": "shared@example.jp"}).status_code == 202
    alice_code = mailed_code()
    # Nobody has the address yet: bob may ask for it too.
    assert api_post(bob_client, "api-email", {"email": "Shared@Example.jp"}).status_code == 202
    bob_code = mailed_code()
    assert api_post(alice_client, "api-email-confirm", {"code": alice_code}).status_code == 200
    refused = api_post(bob_client, "api-email-confirm", {"code": bob_code})
    assert refused.status_code == 400
    assert refused.json() == {"status": "invalid", "message": UNUSABLE, "code": "email_unavailable"}
    alice_user.refresh_from_db()
    bob_user.refresh_from_db()
    assert (alice_user.email, bob_user.email) == ("shared@example.jp", "bob@example.jp")
    # Bob's refused change left nothing behind: no pending change, no notices, no cooling-off.
    assert not ContactChange.objects.filter(user=bob_user).exists()
    assert not Notification.objects.filter(user=bob_user, kind__startswith="email_changed").exists()
    assert not inventory.in_cooling_off(bob_user)
    assert not PreviousEmail.objects.filter(account_id=bob_user.pk).exists()
    again = api_post(bob_client, "api-email-confirm", {"code": bob_code})
    assert again.status_code == 400 and again.json()["code"] == "no_change"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_accounts_confirming_one_address_at_the_same_moment_end_with_one_200_and_400s(
    user_factory: Any, browser_at: Any, settings: Any
) -> None:
    names = ["alice", "bob", "carol", "dave"]
    customers = [verified_customer(user_factory, browser_at, settings, name) for name in names]
    codes = []
    for _user, client in customers:  # nobody has the address yet: each may ask for it
        assert api_post(client, "api-email", {"email": "race@example.jp"}).status_code == 202
        codes.append(mailed_code())
    connection.close()  # each thread opens its own connection
    answers = in_parallel(
        [
            lambda client=client, code=code: api_post(client, "api-email-confirm", {"code": code})
            for (_user, client), code in zip(customers, codes, strict=True)
        ]
    )
    # A 500 would be raised by the test client, not returned.
    assert not [a for a in answers if isinstance(a, BaseException)], answers
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400], [a.content for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 400} == {"email_unavailable"}
    emails = {}
    for (user, _client), answer in zip(customers, answers, strict=True):
        user.refresh_from_db()
        emails[user.username] = (answer.status_code, user.email)
    assert sorted(email for _status, email in emails.values()) == sorted(
        ["race@example.jp"] + [f"{n}@example.jp" for n in names if emails[n][0] == 400]
    )
    assert all((email == "race@example.jp") == (status == 200) for status, email in emails.values())
    assert not ContactChange.objects.exists()


@pytest.mark.django_db
def test_the_setting_switches_the_built_in_email_change_off(alice: tuple[Any, Client], settings: Any) -> None:
    user, client = alice
    assert api_post(client, "api-email", {"email": "alice.new@example.jp"}).status_code == 202
    code = mailed_code()
    settings.AUTHGUARD_EMAIL_CHANGE = False
    for name, body in (
        ("api-email", {"email": "alice.other@example.jp"}),
        ("api-email-confirm", {"code": code}),
    ):
        response = api_post(client, name, body)
        assert response.status_code == 400, (name, response.content)
        assert response.json()["code"] == "email_change_off" and response.json()["message"]
    # The security page's form is refused the same way: a message, no mail, no change.
    sent = len(mail.outbox)
    page = client.post("/authguard/security/email/", {"email": "alice.other@example.jp"})
    assert page.status_code == 302
    assert len(mail.outbox) == sent
    user.refresh_from_db()
    assert user.email == "alice@example.jp"
    assert ContactChange.objects.get(user=user).new_email == "alice.new@example.jp"  # untouched, unusable


def test_the_security_page_offers_no_email_form_when_the_portal_switches_it_off(
    settings: Any, client: Any, user_factory: Any
) -> None:
    settings.AUTHGUARD_EMAIL_CHANGE = False
    user = user_factory("dora")
    client.force_login(user)
    page = client.get("/authguard/security/")
    assert page.status_code == 200 and "/authguard/security/email/" not in page.content.decode()
    refused = client.post("/authguard/security/email/", {"email": "new@example.jp"}, follow=True)
    assert "cannot be changed here" in refused.content.decode()
    user.refresh_from_db()
    assert user.email == "dora@example.jp"


# -- the previous address keeps hearing (red team, 2026-12-04) ---------------------------------------------


def _change_email(client: Client, address: str) -> None:
    assert api_post(client, "api-email", {"email": address}).status_code == 202
    assert api_post(client, "api-email-confirm", {"code": mailed_code()}).status_code == 200


def _sent_to(kind: str) -> set[str]:
    return set(Notification.objects.filter(kind=kind).values_list("to_email", flat=True))


@pytest.mark.django_db
def test_after_an_email_change_the_previous_address_hears_of_every_change(alice: tuple[Any, Client]) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user, client = alice
    totp = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    _change_email(client, "thief@evil.example")
    assert _sent_to("email_changed") == {"alice@example.jp"}
    assert _sent_to("email_changed_new") == {"thief@evil.example"}
    assert api_post(client, "api-recovery-codes").status_code == 201
    assert _sent_to("factor_added") == {"thief@evil.example", "alice@example.jp"}
    assert api_post(client, "api-factor-remove", {"id": totp.persistent_id}).status_code == 200
    assert _sent_to("factor_removed") == {"thief@evil.example", "alice@example.jp"}


@pytest.mark.django_db
def test_a_second_email_change_keeps_the_customers_own_address_in_the_notices(
    alice: tuple[Any, Client],
) -> None:
    user, client = alice
    for address in ("one@evil.example", "two@evil.example"):
        _change_email(client, address)
    user.refresh_from_db()
    assert inventory.notice_addresses(user) == ["two@evil.example", "alice@example.jp", "one@evil.example"]


@pytest.mark.django_db
def test_an_address_dropped_long_ago_neither_hears_nor_displaces_the_current_one(user_factory: Any) -> None:
    """Review, 2026-12-04: the remembered address was never forgotten, so any later cooling-off sent every
    notice to an address the customer dropped a year before, and kept her current one from being
    remembered when a thief changed it."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from authguard.factors import lifecycle

    user = user_factory("carol", email="old@example.jp")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        user.email = "carol@example.jp"
        user.save()
        lifecycle.note_contact_changed(user, old_email="old@example.jp")
        assert inventory.notice_addresses(user) == ["carol@example.jp", "old@example.jp"]
        clock.shift(timedelta(days=365))
        lifecycle.start_cooling_off(user, reason=lifecycle.REASON_RECOVERY_CODES)
        assert inventory.notice_addresses(user) == ["carol@example.jp"]
        user.email = "thief@evil.example"
        user.save()
        lifecycle.note_contact_changed(user, old_email="carol@example.jp")
        assert inventory.notice_addresses(user) == ["thief@evil.example", "carol@example.jp"]


@pytest.mark.django_db
def test_a_lock_and_a_password_change_reach_the_previous_address_too(alice: tuple[Any, Client]) -> None:
    from authguard.login import lockout

    user, client = alice
    _change_email(client, "thief@evil.example")
    user.refresh_from_db()
    for _ in range(12):
        lockout.record_failure(user, kind="password")
    assert _sent_to("account_locked") == {"thief@evil.example", "alice@example.jp"}
    user.set_password("a brand new password 2026")
    user.save()
    assert _sent_to("password_changed") == {"thief@evil.example", "alice@example.jp"}
