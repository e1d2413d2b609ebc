"""Red team 35 (e), fixed (authguard/login/backend.py): ``authenticate()`` called with the user model's
USERNAME_FIELD as the keyword (``email=``, as many e-mail-login portals call it) shared one per-account
throttle bucket for every customer, and ``aauthenticate()`` failed with a 500 (no ``aauthenticate``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from authguard.models import AccountLock, LoginEvent, Outcome

from ..conftest import IP_DOCOMO, IP_JP_PROXY, IP_OSAKA, IP_SG_VPS, IP_TOKYO, IP_TOKYO_2, IP_US_HOME, IP_VPN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

GANG_IPS = [IP_SG_VPS, IP_US_HOME, IP_VPN, IP_JP_PROXY, IP_OSAKA, IP_DOCOMO, IP_TOKYO_2]


def post(ip: str) -> Any:
    return RequestFactory().post("/accounts/login/", REMOTE_ADDR=ip, HTTP_USER_AGENT="Mozilla/5.0")


def test_wrong_passwords_for_other_accounts_do_not_throttle_every_customer_signing_in_by_email_keyword(
    user_factory: Any,
) -> None:
    """Customer cost (a site-wide denial of sign-in): the portal's login view calls
    ``authenticate(request, email=..., password=...)`` (the USERNAME_FIELD keyword, as django-allauth does for
    an e-mail login; Django's ModelBackend reads it). ThrottleBackend takes the attempt's per-account
    throttle slot under ``username or ""``: every account's attempts share the one bucket of the empty name.
    The gang tries ten wrong passwords an hour, for ten different (even made-up) customers, from several
    addresses; from then on every customer's right password is refused unchecked as "throttled", site-wide.

    Secure: the per-account throttle keys on the name ThrottleBackend reads (``username`` or the
    USERNAME_FIELD keyword), as its lock check does: ten failures of others do not throttle alice.
    """
    alice = user_factory("alice")
    for i in range(10):
        ip = GANG_IPS[i % len(GANG_IPS)]
        assert authenticate(post(ip), email=f"customer{i}@example.jp", password="Summer2026!") is None
    own = authenticate(post(IP_TOKYO), email="alice@example.jp", password="correct horse battery")
    refused = LoginEvent.objects.filter(user=alice, outcome=Outcome.THROTTLED).exists()
    assert own == alice and not refused, "alice's right password was throttled by other accounts' failures"


def test_held_the_email_keyword_still_counts_on_the_accounts_lock(user_factory: Any) -> None:
    """Ten wrong passwords for alice by the ``email=`` keyword lock her account, and her right one is then
    refused unchecked (the lock check reads the keyword)."""
    alice = user_factory("alice")
    for i in range(10):
        authenticate(post(GANG_IPS[i % len(GANG_IPS)]), email="alice@example.jp", password=f"guess-{i}")
    assert AccountLock.objects.get(user=alice).is_locked
    assert authenticate(post(IP_TOKYO), email="alice@example.jp", password="correct horse battery") is None


def test_an_async_login_view_can_sign_a_customer_in(user_factory: Any) -> None:
    """Customer cost: a portal's ``async def`` login view calls Django's ``aauthenticate()`` (Django 5's async
    API). Django awaits ``backend.aauthenticate`` of every backend; ThrottleBackend has none, so every async
    sign-in ends in ``AttributeError`` (a 500) before any password is checked, and the portal's way out is to
    take ThrottleBackend out of ``AUTHENTICATION_BACKENDS`` (and with it the throttle and the lock check of
    every path).

    Secure: ThrottleBackend answers ``aauthenticate`` as it answers ``authenticate`` (throttle, lock, admin
    door), so the async login is throttled, locked and signs the customer in.
    """
    from asgiref.sync import async_to_sync
    from django.contrib.auth import aauthenticate

    alice = user_factory("alice")
    try:
        user = async_to_sync(aauthenticate)(
            post(IP_TOKYO), username="alice@example.jp", password="correct horse battery"
        )
    except AttributeError as error:
        pytest.fail(f"an async sign-in cannot be made: {error}")
    assert user == alice
