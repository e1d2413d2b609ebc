"""Red team, round seventy-five (held since): the customer's notices. A thief with hanako's password and ONE
relayed code of her authenticator app makes sure she never hears of the passkey he adds (real flows: the
demo's JSON API, real TOTP, a SoftAuthenticator passkey, the outbox and its Celery task in the eager mode the
tests use).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone, translation

from authguard.conf import app_settings
from authguard.factors import inventory
from authguard.models import Notification, NotificationStatus, PasskeyDevice
from authguard.notifications import delivery, messages
from authguard.notifications.delivery import deliver, retry_pending_notifications
from authguard.notifications.lures import has_lure, strip_lures
from authguard.notifications.messages import build_message
from authguard.notifications.outbox import notify

from .conftest import IP_TOKYO
from .factor_scenarios import new_key
from .test_injected_text_walkarounds import (  # noqa: F401 (fixtures)
    _register_named,
    _thief_with_one_code,
    alice,
    on_commit,
    thief_setup,
)

pytestmark = pytest.mark.django_db

#: An ISO date-time at the very start of the calendar with a +14:00 offset: in UTC it is in year 0.
#: One-digit month and day: no run of seven digits, so the lure filter keeps it whole.
POISON = "0001-1-1T0:0+14:00"


def _added_mails_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if address in m.to and "sign-in method was added" in m.subject]


def test_a_passkey_named_as_a_date_of_year_one_silences_her_factor_added_notice_for_good(
    thief_setup: Any,  # noqa: F811
    order_api: Any,
    clock: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Secure: "A sign-in method was added to your account" is the customer's one defence while the thief's
    passkey cools off (14 days when one relayed code added it): she must receive it, or at the very least the
    row must end ``failed`` so that ``delivery_failed`` alerts the desk ("the customer was not warned").

    Attack: the thief signs in with her password from his browser, relays ONE code of her app, and registers
    his passkey named ``0001-1-1T0:0+14:00`` through ``POST /authguard/api/passkeys``. The name is no lure
    (no seven-digit run, no domain), so it is stored and copied into the ``factor_added`` context. The
    worker claims the row (``sending``), and rendering it raises ``OverflowError``; the row stays ``sending``.
    Ten minutes later ``retry_pending_notifications`` takes the stale claim again and fails again, for
    ever: 14 days of retries, no mail to her, never ``failed``, so no ``notification_failed`` to staff
    either. On day 15 his passkey is no longer cooling off and confirms withdrawals and held orders.

    Root cause: ``authguard/notifications/messages.py:_format_time`` runs on EVERY context value (the
    passkey's name included, although the template does not even show it): a string with a "T" that
    ``parse_datetime`` accepts is converted with ``timezone.localtime``, which overflows for year 1 at
    +14:00 (``OverflowError``, caught nowhere: ``_format_time`` catches ``ValueError`` only).
    ``delivery.deliver`` catches only ``LinkInMessage`` around ``build_message``, so any other rendering
    error leaves the claimed row ``sending`` and never counts towards ``NOTIFICATION_MAX_ATTEMPTS``.

    Fix: format only the keys authguard writes as times (``time``, ``expires``, ``until``,
    ``cooling_off_until``, ``due``) and catch ``(ValueError, OverflowError)`` there; in ``deliver`` treat any
    exception from ``build_message`` like a send failure (retry with back-off, then ``failed`` and the staff
    alert), and render a fallback body without the free-text values rather than nothing.
    """
    hanako = thief_setup
    assert not has_lure(POISON) and strip_lures(POISON) == POISON  # the lure filter lets it through
    thief = _thief_with_one_code(order_api, hanako)
    with django_capture_on_commit_callbacks(execute=True):
        added = _register_named(thief, new_key(), POISON)
    assert added.status_code == 201, added.content
    his = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his)
    notice = Notification.objects.get(user=hanako, kind="factor_added")

    # The days of his passkey's cooling-off: the beat's retry task runs; he waits.
    for _hour in range(15 * 24):
        clock.shift(timedelta(hours=1))
        retry_pending_notifications()
        if _added_mails_to(hanako.email):
            break
    notice.refresh_from_db()
    staff_alerts = Notification.objects.filter(kind="notification_failed").count()
    her_mails = _added_mails_to(hanako.email)
    measured = (
        f"row status={notice.status} attempts={notice.attempts}, mails to her={len(her_mails)}, "
        f"staff alerts={staff_alerts}, "
        f"his passkey cooling off on day 15: {inventory.factor_is_cooling_off(his)}"
    )
    assert her_mails or (notice.status == NotificationStatus.FAILED and staff_alerts), measured


def test_held_a_passkey_named_as_an_ordinary_date_time_reaches_her(
    thief_setup: Any,  # noqa: F811
    order_api: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A date-time of this century as the name formats harmlessly: her notice goes out."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    with django_capture_on_commit_callbacks(execute=True):
        assert _register_named(thief, new_key(), "2026-1-1T0:0+14:00").status_code == 201
    assert _added_mails_to(hanako.email)


def test_the_poisoned_row_is_never_given_up(
    thief_setup: Any,  # noqa: F811
    order_api: Any,
    clock: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Secure: a notice that cannot be sent ends ``failed`` after ``NOTIFICATION_MAX_ATTEMPTS`` (12), which
    alerts staff. Attack: as above; the worker's own entry point ``deliver`` is run 20 times, each after the
    stale-claim delay. Root cause and fix: see the test above (``deliver`` only catches ``LinkInMessage``
    around ``build_message``; the error escapes after the claim).

    Held since: the name is no time (only authguard's time keys are), so the notice is written and sent at
    once; ``sent`` with her mail is the secure end too. The fallback and the attempt count, for a notice that
    still cannot be written, are the tests below."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    with django_capture_on_commit_callbacks(execute=True):
        assert _register_named(thief, new_key(), POISON).status_code == 201
    notice = Notification.objects.get(user=hanako, kind="factor_added")
    errors = []
    for _ in range(20):
        clock.shift(timedelta(minutes=11))
        try:
            deliver(notice.pk)
        except Exception as error:  # what the Celery task sees
            errors.append(type(error).__name__)
    notice.refresh_from_db()
    try:
        build_message(notice)
        rendered = "rendered"
    except Exception as error:
        rendered = type(error).__name__
    alerted = Notification.objects.filter(kind="notification_failed").exists()
    sent = notice.status == NotificationStatus.SENT and _added_mails_to(hanako.email)
    failed = notice.status == NotificationStatus.FAILED and alerted
    assert sent or failed, (notice.status, notice.attempts, set(errors), rendered)
    assert not errors, errors


def test_held_a_user_agent_shaped_as_a_year_one_date_does_not_poison_her_sign_in_notice(
    alice: Any,  # noqa: F811
    browser_at: Any,
    on_commit: Any,  # noqa: F811
) -> None:
    """The Device line is ua-parser's "family version on OS", never his whole header: a User-Agent
    "... 0001-1-1T0:0+14:00 Spider/2" becomes "14:00 Spider 2 on iOS", which no date parser takes. Her notice
    goes."""
    Notification.objects.all().delete()
    mail.outbox.clear()
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        f"Version/18.1 Mobile/15E148 Safari/604.1 {POISON} Spider/2"
    )
    phone = browser_at(IP_TOKYO, ua)
    with on_commit(execute=True):
        phone.sign_in("alice")
    notice = Notification.objects.filter(user=alice, kind="new_device_login").latest("pk")
    notice.refresh_from_db()
    assert notice.status == NotificationStatus.SENT, (notice.status, notice.context)


# -- held since: a notice that cannot be written, the retry task -----------------------------------------


def _factor_added(user: Any) -> Notification:
    row = notify(
        user,
        "factor_added",
        context={
            "factor": "passkey",
            "name": "Hanako iPhone",
            "device": "Chrome 131 on Windows",
            "city": "Tokyo",
            "country": "Japan",
            "network": "Example Telecom",
            "ip": "203.0.113.10",
            "time": timezone.now(),
            "cooling_off_until": timezone.now() + timedelta(days=14),
        },
    )
    assert row is not None
    return row


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a value no one foresaw")


@pytest.mark.parametrize("language", ["en", "ja"])
def test_held_a_notice_that_cannot_be_written_reaches_her_without_its_details(
    user_factory: Any, monkeypatch: pytest.MonkeyPatch, language: str
) -> None:
    """Whatever breaks the full message (here any value's formatting), she receives the notice's own text with
    every value someone else may have written (name, browser, network, city) shown as "[…]", in her language,
    and the row records what failed."""
    hanako = user_factory("hanako")
    with translation.override(language):
        row = _factor_added(hanako)
    monkeypatch.setattr(messages, "_format_time", _refuse)
    mail.outbox.clear()
    assert deliver(row.pk) == "sent"
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and "RuntimeError" in row.last_error, row.last_error
    [sent] = mail.outbox
    body = sent.body
    for withheld in ("Chrome", "Tokyo", "Example Telecom"):
        assert withheld not in body, body
    assert "[…]" in body and "203.0.113.10" in body and "Japan" in body, body
    note = (
        "一部の詳細を表示できませんでした"
        if language == "ja"
        else "Some details of this message could not be shown"
    )
    assert note in body, body
    assert "(JST)" in body, body  # the times are still shown


def test_held_a_notice_that_cannot_be_written_at_all_fails_and_alerts_staff(
    user_factory: Any, monkeypatch: pytest.MonkeyPatch, clock: Any, settings: Any
) -> None:
    """Not even the fallback can be written: each claim counts as an attempt, so the row ends ``failed`` at
    ``NOTIFICATION_MAX_ATTEMPTS`` and staff get ``notification_failed``; it never sits in ``sending``."""
    settings.ADMINS = [("Security desk", "desk@example.jp")]
    row = _factor_added(user_factory("hanako"))
    monkeypatch.setattr(delivery, "build_message", _refuse)
    outcomes = []
    for _ in range(40):
        outcomes.append(deliver(row.pk))
        row.refresh_from_db()
        assert row.status != NotificationStatus.SENDING, (row.status, outcomes)
        if row.status == NotificationStatus.FAILED:
            break
        clock.shift(timedelta(hours=1, seconds=1))
    assert row.status == NotificationStatus.FAILED and row.attempts == app_settings.NOTIFICATION_MAX_ATTEMPTS
    assert outcomes.count("retry") == row.attempts - 1 and outcomes[-1] == "failed", outcomes
    assert Notification.objects.filter(kind="notification_failed", to_email="desk@example.jp").exists()


def test_held_claims_that_never_end_fail_at_the_attempt_limit(user_factory: Any, settings: Any) -> None:
    """A worker killed while writing or sending the row, each time, leaves a stale claim: taken again every
    ten minutes, the row fails once its claims pass the attempt limit, and staff are told."""
    settings.ADMINS = [("Security desk", "desk@example.jp")]
    row = _factor_added(user_factory("hanako"))
    limit = app_settings.NOTIFICATION_MAX_ATTEMPTS
    Notification.objects.filter(pk=row.pk).update(
        status=NotificationStatus.SENDING, claimed_at=timezone.now() - timedelta(minutes=11), attempts=limit
    )
    assert deliver(row.pk) == "failed"
    row.refresh_from_db()
    assert row.status == NotificationStatus.FAILED and mail.outbox == []
    assert Notification.objects.filter(kind="notification_failed").exists()


def test_held_one_row_failing_each_time_does_not_stop_the_retry_of_the_others(
    user_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run eagerly (the demo without a broker), a row whose delivery raises each time was the first of every
    retry run and stopped it: the notices after it were never sent. Now the run goes on to them."""
    first, second = (_factor_added(user_factory(name)) for name in ("hanako", "taro"))
    real_deliver = delivery.deliver

    def poisoned(pk: int) -> str:
        if pk == first.pk:
            raise RuntimeError("this row's own failure")
        return real_deliver(pk)

    monkeypatch.setattr(delivery, "deliver", poisoned)
    mail.outbox.clear()
    assert retry_pending_notifications() == 1
    second.refresh_from_db()
    assert second.status == NotificationStatus.SENT and [m.to for m in mail.outbox] == [["taro@example.jp"]]
