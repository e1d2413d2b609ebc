"""End to end through the real login form and step-up: the notifications a customer gets after a sign-in
from a new browser abroad, a burst of wrong codes, and a lock. (Flows of `stepup` and `factors`; the
messages and the lock of `ops`.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from authguard.login.lockout import is_locked, unlock
from authguard.models import LoginEvent, Notification, NotificationStatus
from authguard.notifications.messages import contains_link

from .conftest import IP_TOKYO, IP_US_HOME, UA_CHROME_WIN, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks


@pytest.fixture
def alice(alice_with_totp: Any, browser_at: Any) -> Any:
    """alice with an authenticator app (``alice_with_totp``) and a few sign-ins from her browser at home in
    Tokyo."""
    user = alice_with_totp
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    with time_machine.travel(timezone.now() - timedelta(days=20), tick=True) as clock:
        for _ in range(3):
            assert home.sign_in("alice").status_code == 302
            home.post("/logout/")
            clock.shift(timedelta(days=3))
    return user


def _wrong(device: Any) -> str:
    return "000000" if totp_token(device) != "000000" else "111111"


def test_new_browser_abroad_after_step_up_notifies_once_each(
    alice: Any, browser_at: Any, on_commit: Any
) -> None:
    Notification.objects.all().delete()
    mail.outbox.clear()
    abroad = browser_at(IP_US_HOME, UA_CHROME_WIN)
    with on_commit(execute=True):
        response = abroad.sign_in("alice")
    assert response.url.startswith("/authguard/step-up/"), LoginEvent.objects.order_by("-pk").first().findings
    assert not Notification.objects.exists()  # not signed in yet: nothing to tell
    with on_commit(execute=True):
        abroad.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    kinds = sorted(Notification.objects.filter(user=alice).values_list("kind", flat=True))
    assert kinds == ["new_country_login", "new_device_login"]
    assert set(Notification.objects.values_list("status", flat=True)) == {NotificationStatus.SENT}
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert message.to == ["alice@example.jp"]
        assert "Los Angeles" in message.body and not contains_link(message.body)


def test_a_burst_of_wrong_codes_warns_the_customer(
    alice: Any, browser_at: Any, on_commit: Any, settings: Any
) -> None:
    settings.AUTHGUARD_STEP_UP_FAILURE_BURST = 3
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    abroad = browser_at(IP_US_HOME, UA_CHROME_WIN)
    abroad.sign_in("alice")
    with on_commit(execute=True):
        for _ in range(3):
            abroad.post("/authguard/step-up/totp/", {"code": _wrong(alice.totp)})
    warned = Notification.objects.filter(kind="step_up_failures", user=alice)
    assert warned.count() == 1 and warned.get().status == NotificationStatus.SENT
    assert any("failed 3 times" in m.body for m in mail.outbox)


def test_wrong_passwords_lock_the_account_until_an_admin_unlocks(
    alice: Any, browser_at: Any, user_factory: Any, on_commit: Any, settings: Any
) -> None:
    from django.contrib.auth.models import Permission

    settings.AUTHGUARD_LOCKOUT_FAILURES = 5
    desk = user_factory("desk", is_staff=True)
    desk.user_permissions.add(Permission.objects.get(codename="unlock_account"))
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    with on_commit(execute=True):
        for _ in range(5):
            home.sign_in("alice", "wrong password")
    assert is_locked(alice)
    assert Notification.objects.filter(kind="account_locked", user=alice).count() == 1
    right = home.sign_in("alice")  # the right password changes nothing while locked
    assert "_auth_user_id" not in home.session
    assert right.status_code in (200, 302, 403)
    unlock(alice, by=desk, reason="customer identified at the branch")
    assert home.sign_in("alice").status_code == 302 and home.session.get("_auth_user_id") == str(alice.pk)


def test_an_allowed_sign_in_from_a_new_browser_notifies_once(
    alice: Any, browser_at: Any, on_commit: Any
) -> None:
    from .conftest import UA_IPHONE

    Notification.objects.all().delete()
    mail.outbox.clear()
    phone = browser_at(IP_TOKYO, UA_IPHONE)  # a new browser at home: mild risk, allowed outright
    with on_commit(execute=True):
        assert phone.sign_in("alice").url == "/"
    event = LoginEvent.objects.order_by("-pk").first()
    assert event is not None and event.action == "allow" and "new_device" in event.reasons
    assert list(Notification.objects.values_list("kind", "status")) == [("new_device_login", "sent")]
    assert len(mail.outbox) == 1
    assert event.device_summary and event.device_summary in mail.outbox[0].body
    with on_commit(execute=True):  # the same browser again: known now, nothing more
        phone.post("/logout/")
        assert phone.sign_in("alice").url == "/"
    assert Notification.objects.count() == 1
