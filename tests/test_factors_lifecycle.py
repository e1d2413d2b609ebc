"""Unit tests of :mod:`authguard.factors.lifecycle`: the account's cooling-off, a factor's age and state,
the first-factor rule, throttling, removal rules, the desk's re-binding and the e-mail change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.exceptions import Throttled
from authguard.factors import contact, inventory, lifecycle, removal, throttles
from authguard.factors.base import in_cooling_off
from authguard.models import AccountSecurity, FactorRecord, FactorThrottle, PasskeyDevice

from .conftest import (
    api_post,
    bind_passkey,
    enter_desk_code,
    passkey_step_up,
    totp_token,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


# -- the account's cooling-off -------------------------------------------------------------------------------


def test_cooling_off_starts_extends_and_never_shortens(alice: Any, clock: Any) -> None:
    assert inventory.cooling_off_until(alice) is None and not inventory.in_cooling_off(alice)
    start = timezone.now()
    until = lifecycle.start_cooling_off(alice, reason="factor_added")
    assert until == start + timedelta(hours=24) and inventory.in_cooling_off(alice)
    clock.shift(3600)
    later = lifecycle.start_cooling_off(alice, reason="email_changed")
    assert later == start + timedelta(hours=25)
    row = AccountSecurity.objects.get(user=alice)
    assert row.cooling_off_started_at == start and row.cooling_off_reason == "email_changed"
    # An earlier "at" never shortens it.
    assert lifecycle.start_cooling_off(alice, reason="x", at=start) == later
    assert inventory.cooling_off_until(alice, at=start - timedelta(seconds=1)) is None
    clock.shift(24 * 3600 + 1)
    assert not inventory.in_cooling_off(alice) and inventory.cooling_off_reason(alice) == ""


def test_the_cooling_off_length_is_a_setting(alice: Any, settings: Any, clock: Any) -> None:
    settings.AUTHGUARD_FACTOR_COOLING_OFF_HOURS = 72
    assert lifecycle.start_cooling_off(alice, reason="factor_added") == timezone.now() + timedelta(hours=72)


def test_a_factor_confirmed_before_the_cooling_off_is_not_cooling_off_one_after_is(
    alice: Any, totp_factory: Any, authenticator: Any, clock: Any
) -> None:
    old = totp_factory(alice)
    clock.shift(60)
    lifecycle.start_cooling_off(alice, reason="email_changed")
    new = bind_passkey(alice, authenticator)  # confirmed (created) during the cooling-off
    assert not inventory.factor_is_cooling_off(old) and not in_cooling_off(old)
    assert inventory.factor_is_cooling_off(new) and in_cooling_off(new)
    assert inventory.may_confirm_sensitive(alice, old) and not inventory.may_confirm_sensitive(alice, new)
    with pytest.raises(lifecycle.FactorCoolingOff):
        lifecycle.require_may_confirm_sensitive(alice, new)
    clock.shift(24 * 3600)
    assert not inventory.factor_is_cooling_off(new)


def test_a_factors_age_is_its_confirmation(alice: Any, totp_factory: Any, clock: Any) -> None:
    device = totp_factory(alice)
    FactorRecord.objects.create(
        device_id=device.persistent_id,
        user=alice,
        kind="totp",
        enrolled_at=timezone.now() + timedelta(hours=1),
    )
    assert inventory.factor_confirmed_at(device) == timezone.now() + timedelta(hours=1)


def test_may_confirm_sensitive_refuses_others_and_disabled_factors(
    alice: Any, user_factory: Any, totp_factory: Any
) -> None:
    bob = user_factory("bob")
    device = totp_factory(alice)
    assert not inventory.may_confirm_sensitive(bob, device)
    assert not inventory.may_confirm_sensitive(alice, None)
    FactorRecord.objects.create(
        device_id=device.persistent_id,
        user=alice,
        kind="totp",
        enrolled_at=timezone.now(),
        disabled_at=timezone.now(),
    )
    assert not inventory.may_confirm_sensitive(alice, device)


# -- the first factor, once ----------------------------------------------------------------------------------


def test_ever_had_factor_is_remembered_after_every_factor_is_gone(alice: Any, totp_factory: Any) -> None:
    assert not lifecycle.ever_had_factor(alice)
    device = totp_factory(alice)  # seeded: no record yet, backfilled on first ask
    assert lifecycle.ever_had_factor(alice)
    device.delete()
    assert lifecycle.ever_had_factor(alice)
    assert AccountSecurity.objects.get(user=alice).first_factor_at is not None


def test_the_first_factor_starts_no_cooling_off_the_second_does(
    alice: Any, low_risk: Client, authenticator: Any
) -> None:
    first = api_post(
        low_risk, "api-passkeys", authenticator.create(api_post(low_risk, "api-passkeys-options").json())
    )
    assert first.status_code == 201 and first.json()["passkey"]["cooling_off"] is False
    assert not inventory.in_cooling_off(alice)
    assert passkey_step_up(low_risk, authenticator).status_code == 200
    codes = api_post(low_risk, "api-recovery-codes")
    assert codes.status_code == 201
    assert inventory.in_cooling_off(alice) and inventory.cooling_off_reason(alice) == "recovery_codes"
    state = api_post(low_risk, "api-factors").json()
    kinds = {f["kind"]: f["cooling_off"] for f in state["factors"]}
    assert kinds == {"passkey": False, "recovery_code": True} and state["cooling_off_until"]


# -- throttling ----------------------------------------------------------------------------------------------


def test_without_a_request_only_the_account_is_throttled(alice: Any, clock: Any, settings: Any) -> None:
    settings.AUTHGUARD_FACTOR_THROTTLE = {"account": 2, "max_delay": 60}
    for _ in range(3):
        throttles.check_throttle(None, user=alice)
        throttles.note_throttle_failure(None, user=alice)
    row = FactorThrottle.objects.get()
    assert row.key == f"a:{alice.pk}" and row.failures == 3
    with pytest.raises(Throttled) as caught:
        throttles.check_throttle(None, user=alice)
    assert caught.value.retry_after == 1
    for _ in range(10):
        clock.shift(3600)
        throttles.note_throttle_failure(None, user=alice)
    assert FactorThrottle.objects.get().blocked_until == timezone.now() + timedelta(seconds=60)  # capped
    clock.shift(2 * 86400)
    throttles.note_throttle_failure(None, user=alice)
    assert FactorThrottle.objects.get().failures == 1  # forgotten after the window
    for _ in range(2):
        throttles.note_throttle_failure(None, user=alice)
    with pytest.raises(Throttled):
        throttles.check_throttle(None, user=alice)
    # The desk's unlock opens the scope and keeps its count (red team, round nine): the next failure waits.
    throttles.clear_throttle(user=alice)
    throttles.check_throttle(None, user=alice)
    assert FactorThrottle.objects.get().failures == 3


def test_a_password_only_session_could_not_be_the_customers(
    alice: Any, low_risk: Client, authenticator: Any
) -> None:
    from django.test import RequestFactory

    bind_passkey(alice, authenticator)
    request = RequestFactory().post("/")
    request.user = alice
    request.session = low_risk.session
    assert not throttles.could_be_customer(request)  # allowed, low-risk, but nothing proven
    assert not throttles.could_be_customer(None)
    assert passkey_step_up(low_risk, authenticator).status_code == 200
    request.session = low_risk.session
    assert throttles.could_be_customer(request)


# -- removal, revocation, the desk ---------------------------------------------------------------------------


def test_the_last_strong_factor_is_never_removed_by_the_customer(
    alice: Any, low_risk: Client, authenticator: Any
) -> None:
    passkey = bind_passkey(alice, authenticator)
    assert passkey_step_up(low_risk, authenticator).status_code == 200
    response = api_post(low_risk, "api-factor-remove", {"id": passkey.persistent_id})
    assert response.status_code == 400 and response.json()["code"] == "last_factor"
    assert PasskeyDevice.objects.filter(pk=passkey.pk).exists()


def test_staff_remove_a_factor_through_the_lifecycle_and_the_customer_is_told(
    alice: Any, user_factory: Any, totp_factory: Any
) -> None:
    from authguard.models import Notification

    staff = user_factory("desk", is_staff=True)
    device = totp_factory(alice)
    removal.remove_factor(None, user=alice, device=device, by_staff=staff, reason="lost phone")
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    notice = Notification.objects.get(kind="factor_removed", user=alice)
    assert notice.context["by_staff"] is True
    with pytest.raises(ValueError):
        removal.remove_factor(None, user=alice, device=totp_factory(alice))


def test_the_desk_grants_one_re_binding(
    alice: Any, user_factory: Any, totp_factory: Any, low_risk: Client, clock: Any
) -> None:
    device = totp_factory(alice)
    FactorRecord.objects.create(
        device_id=device.persistent_id,
        user=alice,
        kind="totp",
        enrolled_at=timezone.now(),
        disabled_at=timezone.now(),
    )
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=False)
    assert api_post(low_risk, "api-totp").json()["code"] == "rebind_required"
    with pytest.raises(PermissionError):
        lifecycle.grant_rebind(alice, by_staff=alice)
    grant = lifecycle.grant_rebind(alice, by_staff=user_factory("desk", is_staff=True))
    # The grant opens nothing until this session enters the desk code (given her by letter or phone).
    assert api_post(low_risk, "api-totp").json()["code"] == "desk_code_required"
    enter_desk_code(low_risk, grant)
    assert api_post(low_risk, "api-totp").status_code == 200
    new = TOTPDevice.objects.get(user=alice, confirmed=False, pk__gt=device.pk)
    clock.shift(31)
    confirmed = api_post(low_risk, "api-totp-confirm", {"code": totp_token(new)})
    assert confirmed.status_code == 201 and confirmed.json()["totp"]["cooling_off"] is True
    assert FactorRecord.objects.get(device_id=new.persistent_id).enrolled_via == "staff"
    assert AccountSecurity.objects.get(user=alice).rebind_granted_until is None  # used up


# -- the e-mail change ---------------------------------------------------------------------------------------


def test_a_customer_without_a_passkey_changes_the_email_with_two_different_factors(
    alice: Any, totp_factory: Any, low_risk: Client, clock: Any
) -> None:
    alice.totp = totp_factory(alice)
    assert api_post(low_risk, "api-step-up-totp", {"code": totp_token(alice.totp)}).status_code == 200
    # Her recovery codes were minted long ago.
    codes = api_post(low_risk, "api-recovery-codes").json()["codes"]
    clock.shift(25 * 3600)
    low_risk.sign_in("alice")
    clock.shift(31)
    assert api_post(low_risk, "api-step-up-totp", {"code": totp_token(alice.totp)}).status_code == 200
    first = api_post(low_risk, "api-email", {"email": "alice.new@example.jp"})
    assert first.status_code == 403 and first.json()["code"] == "second_factor_required"
    assert first.json()["methods"] == ["recovery_code"]
    assert api_post(low_risk, "api-step-up-recovery-code", {"code": codes[0]}).status_code == 200
    started = api_post(low_risk, "api-email", {"email": "alice.new@example.jp"})
    assert started.status_code == 202, started.content
    assert mail.outbox[-1].to == ["alice.new@example.jp"]


def test_email_change_input_is_checked(alice: Any, low_risk: Client, authenticator: Any) -> None:
    bind_passkey(alice, authenticator)
    assert passkey_step_up(low_risk, authenticator).status_code == 200
    for body in ({"email": "not an address"}, {"email": ["x"]}, {}, {"email": "alice@example.jp"}):
        response = api_post(low_risk, "api-email", body)
        assert response.status_code == 400 and response.json()["status"] == "invalid", body
    assert api_post(low_risk, "api-email-confirm", {"code": "1"}).json()["code"] == "no_change"
    assert api_post(low_risk, "api-email", {"email": "alice.new@example.jp"}).status_code == 202
    for _ in range(contact.EMAIL_CODE_ATTEMPTS - 1):
        assert api_post(low_risk, "api-email-confirm", {"code": "00000000"}).status_code == 400
    last = api_post(low_risk, "api-email-confirm", {"code": "00000000"})
    assert last.status_code == 429 and contact.pending_email_change(alice) is None


def test_a_mail_that_cannot_be_sent_answers_4xx_and_leaves_nothing_pending(
    alice: Any, low_risk: Client, authenticator: Any, monkeypatch: Any
) -> None:
    bind_passkey(alice, authenticator)
    assert passkey_step_up(low_risk, authenticator).status_code == 200

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("smtp down")

    monkeypatch.setattr(contact, "send_mail", broken)
    response = api_post(low_risk, "api-email", {"email": "alice.new@example.jp"})
    assert response.status_code == 400 and response.json()["code"] == "mail_failed"
    assert contact.pending_email_change(alice) is None


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("AUTHGUARD_FACTOR_THROTTLE", {"session": 0}, "authguard.E100"),
        ("AUTHGUARD_FACTOR_THROTTLE", {"sessions": 5}, "authguard.E100"),
        ("AUTHGUARD_FACTOR_THROTTLE", [5], "authguard.E100"),
        ("AUTHGUARD_IDENTITY_PROOFING_HOOK", "no.such.hook", "authguard.E101"),
    ],
)
def test_system_checks_catch_bad_lifecycle_settings(
    settings: Any, name: str, value: Any, check_id: str
) -> None:
    from authguard.checks import check_factor_lifecycle

    setattr(settings, name, value)
    assert [m.id for m in check_factor_lifecycle(None)] == [check_id]


def test_system_checks_accept_good_lifecycle_settings(settings: Any) -> None:
    from authguard.checks import check_factor_lifecycle

    settings.AUTHGUARD_FACTOR_THROTTLE = {"session": 3, "max_delay": 600}
    settings.AUTHGUARD_IDENTITY_PROOFING_HOOK = "tests.test_battery_lifecycle.proofed_hook"
    assert check_factor_lifecycle(None) == []
