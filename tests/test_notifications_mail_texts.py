"""The wording of customer mails, rendered from rows that the real flows create (issue 16): the site's name
without a possessive, one time format in the site's zone with the zone shown, no doubled punctuation, held
orders naming the instrument and amount, factor names not repeated, and lock mails offering only the ways
back the customer really has."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.utils import translation

from authguard.models import Notification
from authguard.notifications.messages import contains_link, render
from authguard.notifications.outbox import notify

from .conftest import IP_TOKYO, UA_CHROME_WIN, api_post, bind_passkey

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

DOUBLED = re.compile(r"\.\.|,,|::|\.\)\.|a\.m\.\.|p\.m\.\.")


@pytest.fixture(autouse=True)
def _site(settings: Any) -> Any:
    settings.AUTHGUARD_WEBAUTHN_RP_NAME = "Demo Securities"
    settings.TIME_ZONE = "Asia/Tokyo"
    before = translation.get_language()
    yield
    translation.activate(before) if before else translation.deactivate_all()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks


def _clean(body: str) -> None:
    assert "Securities's" not in body
    assert not DOUBLED.search(body), body
    assert "a.m." not in body and "p.m." not in body and not contains_link(body)


def _held_order(order_api: Any, hanako: Any, on_commit: Any, language: str) -> Notification:
    client = order_api(HTTP_ACCEPT_LANGUAGE=language)
    client.login("hanako", "hanako-test-2025")
    with on_commit(execute=True):
        held = client.order("sell", "AAPL", 10)
    assert held.status_code == 202, held.content
    return Notification.objects.get(user=hanako, kind="order_held")


# -- site name, times, punctuation ----------------------------------------------------------------------


def test_held_order_mail_shows_one_time_format_in_tokyo_with_the_zone(
    order_api: Any, hanako: Any, on_commit: Any
) -> None:
    notice = _held_order(order_api, hanako, on_commit, "en")
    _subject, body = render(notice)
    _clean(body)
    assert "security desk of Demo Securities" in body
    when = next(line for line in body.splitlines() if line.startswith("When: "))
    assert re.fullmatch(r"When: \d{4}-\d\d-\d\d \d\d:\d\d \(JST\)", when), when
    cancelled = next(line for line in body.splitlines() if "cancelled automatically" in line)
    assert re.search(r"at \d{4}-\d\d-\d\d \d\d:\d\d \(JST\)\.$", cancelled), cancelled


def test_a_utc_time_is_shown_in_tokyo_time(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    at = datetime(2026, 12, 2, 18, 42, tzinfo=UTC)  # 03:42 on the 3rd in Tokyo: once "3:42 a.m.."
    with on_commit(execute=True):
        notify(
            alice,
            "order_held",
            context={"side": "buy", "quantity": 1, "symbol": "7203", "time": at, "expires": at},
        )
    body = mail.outbox[-1].body
    _clean(body)
    assert "When: 2026-12-03 03:42 (JST)" in body.splitlines()
    assert "cancelled automatically at 2026-12-03 03:42 (JST)." in body


# -- held orders name the instrument and the amount -------------------------------------------------------


def test_the_held_order_mail_from_the_order_api_names_the_instrument_and_amount(
    order_api: Any, hanako: Any, on_commit: Any
) -> None:
    _subject, body = render(_held_order(order_api, hanako, on_commit, "en"))
    assert "Order: sell 10 Apple" in body and "Estimated amount: " in body and "JPY" in body


@pytest.mark.parametrize(
    ("language", "order_line", "amount_line"),
    [
        ("en", "Order: buy 3000 Toyota Motor (7203)", "Estimated amount: 8,550,000 JPY"),
        ("ja", "注文：Toyota Motor (7203) 3000株の買付", "8,550,000円"),
    ],
)
def test_a_held_order_with_name_and_amount_shows_both(
    user_factory: Any, on_commit: Any, language: str, order_line: str, amount_line: str
) -> None:
    alice = user_factory("alice")
    context = {
        "side": "buy", "quantity": 3000, "symbol": "7203", "instrument": "Toyota Motor",
        "amount": Decimal("8550000"), "currency": "JPY", "time": datetime(2026, 12, 3, 3, 42, tzinfo=UTC),
    }  # fmt: skip
    with on_commit(execute=True), translation.override(language):
        notify(alice, "order_held", context=context)
    body = mail.outbox[-1].body
    _clean(body)
    assert order_line in body.splitlines()
    assert any(line.endswith(amount_line) for line in body.splitlines()), body


# -- factor labels are not repeated --------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_new_recovery_code_set_is_named_once(
    user_factory: Any, browser_at: Any, on_commit: Any, language: str
) -> None:
    user_factory("alice")
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.sign_in("alice")
    client.cookies["django_language"] = language
    with on_commit(execute=True):
        response = api_post(client, "api-recovery-codes", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 201, response.content
    notice = Notification.objects.get(kind="factor_added")
    _subject, body = render(notice)
    first = body.splitlines()[0]
    assert "(" not in first, first
    assert "Recovery codes" not in body and "リカバリーコード（" not in body
    if language == "en":
        assert first == "A sign-in method was added to your account: recovery codes"


def test_a_new_passkey_is_told_by_where_and_on_what_it_was_added_not_by_its_name(
    user_factory: Any, on_commit: Any
) -> None:
    """Whoever adds a passkey names it: a thief's "Hanako's iPhone" reads as hers (red team, round 53). The
    mail says where and on what browser it was added, which she can tell from her own."""
    alice = user_factory("alice")
    where = {"city": "Osaka", "country": "JP", "network": "OCN", "device": "Chrome 131 on Windows 10"}
    with on_commit(execute=True):
        notify(alice, "factor_added", context={"factor": "passkey", "name": "Hanako's iPhone", **where})
    body = mail.outbox[-1].body
    assert body.startswith("A sign-in method was added to your account: passkey\n"), body
    assert "Hanako's iPhone" not in body
    assert "Where: Osaka, JP (OCN)" in body and "Device: Chrome 131 on Windows 10" in body, body


# -- the "new country" mail only for a new country -------------------------------------------------------


def test_a_tokyo_sign_in_after_sign_ins_without_location_is_not_a_new_country(
    user_factory: Any, browser_at: Any, on_commit: Any, settings: Any
) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = []  # every sign-in is allowed: only the message is under test
    user_factory("alice")
    local = browser_at("127.0.0.1", UA_CHROME_WIN)  # the demo on a laptop: no GeoIP answer, no country
    assert local.sign_in("alice").status_code == 302
    local.post("/logout/")
    tokyo = browser_at(IP_TOKYO, UA_CHROME_WIN)
    with on_commit(execute=True):
        tokyo.sign_in("alice")
    from authguard.models import LoginEvent

    assert LoginEvent.objects.filter(country="JP", outcome__in=["signed_in", "step_up_passed"]).exists()
    assert not Notification.objects.filter(kind="new_country_login").exists()


# -- lock mails offer only the ways back the customer has ----------------------------------------------


def _lock(login_as: Any, settings: Any, on_commit: Any) -> str:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    with on_commit(execute=True):
        for _ in range(3):
            login_as("alice", "wrong password!")
    notice = Notification.objects.get(kind="account_locked", staff=False)
    _subject, body = render(notice)
    _clean(body)
    return body


def test_a_lock_mail_to_a_customer_without_passkey_offers_only_the_desk(
    user_factory: Any, login_as: Any, settings: Any, on_commit: Any
) -> None:
    user_factory("alice")
    body = _lock(login_as, settings, on_commit)
    assert "passkey" not in body and "recovery codes" not in body
    assert "To unlock it, call our security desk." in body.splitlines()


def test_a_lock_mail_offers_the_passkey_to_a_customer_who_has_one(
    user_factory: Any, login_as: Any, settings: Any, on_commit: Any, authenticator: Any
) -> None:
    alice = user_factory("alice")
    bind_passkey(alice, authenticator)
    body = _lock(login_as, settings, on_commit)
    lines = body.splitlines()
    assert "- Use your passkey on the sign-in page." in lines and "- Call our security desk." in lines
    assert not any("recovery codes" in line for line in lines)


def test_a_lock_mail_offers_the_codes_only_when_that_path_is_on(
    user_factory: Any, login_as: Any, settings: Any, on_commit: Any, totp_factory: Any
) -> None:
    from authguard.models import RecoveryCodeDevice

    alice = user_factory("alice")
    totp_factory(alice)
    RecoveryCodeDevice.objects.create(user=alice, name="Recovery codes", confirmed=True)
    settings.AUTHGUARD_UNLOCK_WAIT_HOURS = 24
    body = _lock(login_as, settings, on_commit)
    assert any("one of your recovery codes" in line for line in body.splitlines())
    assert "passkey" not in body
    Notification.objects.all().delete()
    from authguard.login.lockout import unlock

    unlock(alice, by=None, reason="test")
    settings.AUTHGUARD_UNLOCK_WAIT_HOURS = None
    body = _lock(login_as, settings, on_commit)
    assert "recovery codes" not in body and "To unlock it, call our security desk." in body.splitlines()
