"""Every address the account had during the cooling-off hears of it, not only the first (red team: "known, not
fixed" until now).

The customer changes her address A->B herself, which starts the cooling-off; during it the thief changes
B->C. authguard remembered one previous address and kept the first, A, so notices and her password reset
went to C (his) and A (the one she dropped), and B, her real address, heard nothing. Now each address dropped
during the running cooling-off is remembered (the earliest :attr:`AccountSecurity.PREVIOUS_EMAILS_KEPT`), and
none from an earlier cooling-off.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from authguard.factors import inventory, lifecycle
from authguard.models import AccountSecurity, Notification, PreviousEmail

from .conftest import IP_OSAKA, UA_FIREFOX_LINUX, api_post
from .test_email_change import _change_email, verified_customer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

A, B, C, D = "alice@example.jp", "alice.home@example.jp", "thief@evil.example", "thief2@evil.example"
COOLING_OFF = timedelta(hours=24, seconds=1)


def _changed(user: Any, new: str) -> None:
    """``user``'s address becomes ``new`` as the e-mail change's confirmation does it."""
    old = user.email
    user.email = new
    user.save(update_fields=["email"])
    lifecycle.note_contact_changed(user, old_email=old)


def _reset_links(browser_at: Any, entered: str) -> set[str]:
    """Where the password reset asked for with ``entered`` mailed its link."""
    mail.outbox.clear()
    browser_at(IP_OSAKA, UA_FIREFOX_LINUX).post("/password/reset/", {"email": entered})
    return {
        address for message in mail.outbox if "/password/reset/" in message.body for address in message.to
    }


def test_after_her_own_change_the_thiefs_change_still_reaches_her_current_address(
    user_factory: Any, browser_at: Any, settings: Any, clock: Any
) -> None:
    """A->B is hers (with her passkey), B->C the thief's (his two-factor change, accepted in
    docs/factor-lifecycle.md): B hears of every change and gets the reset link, whichever address she
    enters; C never gets it, and neither does A, the address she moved off with her passkey (round
    thirty-nine: a passkey-confirmed change closes the addresses before it for resets)."""
    user, session = verified_customer(user_factory, browser_at, settings, "alice")
    clock.shift(timedelta(seconds=30))  # her passkey is older than the cooling-off her change starts
    _change_email(session, B)  # hers: the cooling-off starts
    user.refresh_from_db()
    _changed(user, C)  # the thief's, during it: confirmed with two relayed codes (no passkey)
    user.refresh_from_db()
    assert inventory.notice_addresses(user) == [C, A, B]
    assert inventory.previous_addresses(user) == [A, B]
    assert inventory.previous_addresses(user)[0] == A  # the earliest first: the one remembered before

    assert api_post(session, "api-recovery-codes").status_code == 201
    sent = set(Notification.objects.filter(kind="factor_added").values_list("to_email", flat=True))
    assert sent == {A, B, C}
    for entered in (B, C):
        assert _reset_links(browser_at, entered) == {B}, entered
    assert _reset_links(browser_at, A) == set()

    clock.shift(COOLING_OFF)
    assert inventory.notice_addresses(user) == [C]
    assert _reset_links(browser_at, B) == set()
    assert _reset_links(browser_at, C) == {C}


def test_a_third_change_adds_the_thiefs_last_address_and_keeps_hers(user_factory: Any, clock: Any) -> None:
    user = user_factory("alice", email=A)
    _changed(user, B)
    clock.shift(timedelta(hours=1))
    _changed(user, C)
    clock.shift(timedelta(hours=1))
    _changed(user, D)
    assert inventory.notice_addresses(user) == [D, A, B, C]


def test_the_earliest_addresses_stay_when_the_thief_changes_it_past_the_bound(
    user_factory: Any, browser_at: Any, clock: Any
) -> None:
    """A bound keeps a change loop from filling a table; the earliest stay, so the thief's later changes
    (his own addresses) cannot push hers out."""
    kept = AccountSecurity.PREVIOUS_EMAILS_KEPT
    user = user_factory("alice", email=A)
    _changed(user, B)
    thiefs = [f"thief{n}@evil.example" for n in range(kept + 2)]
    for address in thiefs:
        clock.shift(timedelta(minutes=10))
        _changed(user, address)
    expected = [A, B, *thiefs[: kept - 2]]
    assert inventory.previous_addresses(user) == expected
    assert inventory.notice_addresses(user) == [thiefs[-1], *expected]
    assert PreviousEmail.objects.filter(account_id=user.pk).count() == kept
    assert _reset_links(browser_at, B) == set(expected)


def test_addresses_repeat_neither_in_the_notices_nor_in_the_list_whatever_their_case(
    user_factory: Any, browser_at: Any, clock: Any
) -> None:
    user = user_factory("alice", email=A)
    for address in (B, C.upper(), B.upper(), A.upper(), C):
        _changed(user, address)
    assert inventory.previous_addresses(user) == [A, B, C.upper()]
    assert inventory.notice_addresses(user) == [C, A, B]
    assert _reset_links(browser_at, "ALICE.HOME@example.jp") == {A, B, C.upper()}


def test_nothing_dropped_in_an_earlier_cooling_off_is_remembered(
    user_factory: Any, browser_at: Any, clock: Any
) -> None:
    """Review, 2026-12-04: an address the customer dropped long ago must not hear of her account."""
    user = user_factory("alice", email="old@example.jp")
    _changed(user, A)
    _changed(user, B)
    assert inventory.notice_addresses(user) == [B, "old@example.jp", A]
    clock.shift(timedelta(days=30))
    lifecycle.start_cooling_off(user, reason=lifecycle.REASON_RECOVERY_CODES)
    assert inventory.notice_addresses(user) == [B]
    _changed(user, C)
    assert inventory.notice_addresses(user) == [C, B]
    assert _reset_links(browser_at, "old@example.jp") == set()
    assert _reset_links(browser_at, A) == set()
    assert _reset_links(browser_at, B) == {B}
    # Forgotten, not merely unused: the earlier cooling-off's rows are gone.
    assert list(PreviousEmail.objects.filter(account_id=user.pk).values_list("email", flat=True)) == [B]


def test_a_contact_change_without_an_old_address_remembers_nothing(user_factory: Any, clock: Any) -> None:
    user = user_factory("alice", email=A)
    lifecycle.note_contact_changed(user, reason="contact_changed")  # a phone number, say
    assert inventory.in_cooling_off(user)
    assert inventory.notice_addresses(user) == [A]
    assert not PreviousEmail.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_the_one_remembered_address_over(user_factory: Any) -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("authguard", "0017_exposure_counts_illiquid_in_full")]
    users = [user_factory(name) for name in ("carol", "dora", "erin")]
    at = timezone.now()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("authguard", "AccountSecurity")
        remembered = [{"previous_email": A, "previous_email_at": at}, {"previous_email": B}, {}]
        for user, values in zip(users, remembered, strict=True):  # B: from before 0015, never used
            old.objects.update_or_create(user_id=user.pk, defaults=values)
    finally:
        # Forward to the newest migrations (0018 carries the address over), never to 0018 alone: the tests
        # after this one need the schema as it is now.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert list(PreviousEmail.objects.values_list("account_id", "email", "dropped_at")) == [
        (users[0].pk, A, at)
    ]
