"""Variants of issue 10's attacks found by the red team of 2026-12-05, each failing on the code before it.

With the password alone: forgetting the customer's first browser made the thief's "the account's first" (his
passkey vouched for, no cooling-off); a password change from a password-only session revoked her new passkey
and ended her sessions. With one relayed code: her recovery codes regenerated, her authenticator app replaced
by his. The rules: docs/factor-lifecycle.md ("Removing or replacing a factor", "Changing the password").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from authguard.factors import inventory
from authguard.models import KnownDevice, PasskeyDevice, RecoveryCode, RecoveryCodeDevice
from authguard.models.factors import recovery_digest
from authguard.testing import SoftAuthenticator

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, OrderApi, of_long_standing, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def api(new_browser_api: Any) -> Any:
    return new_browser_api


def new_key() -> SoftAuthenticator:
    return SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")


def register(client: OrderApi, key: SoftAuthenticator) -> Any:
    options = client.post("/authguard/api/passkeys/options")
    if options.status_code != 200:
        return options
    return client.post("/authguard/api/passkeys", key.create(options.json()))


def holding(user: Any, symbol: str) -> int:
    from demo_site.brokerage.models import Account

    position = Account.objects.get(user=user).positions.filter(instrument__symbol=symbol).first()
    return int(position.quantity) if position is not None else 0


def form_post(client: OrderApi, path: str, data: dict[str, Any] | None = None) -> Any:
    """A form POST from the thief's browser (the security page's buttons), with its CSRF token."""
    return client.client.post(path, data or {}, HTTP_X_CSRFTOKEN=client.token)


# -- 1: forgetting her first browser makes the thief's browser "the account's first" ------------------------


@pytest.mark.usefixtures("both_presets")
def test_password_only_thief_forgets_her_first_browser_and_his_first_passkey_confirms_at_once(
    api: Any, hanako: Any, clock: Any
) -> None:
    """A new account (younger than ESTABLISHED_DEVICE_DAYS) without a factor yet. `_vouched` counts "the
    browser the account was first used from" among *non-revoked* known devices, and forgetting a remembered
    device needs no verification at all. With the password alone the thief forgets hanako's browser on the
    security page; his own browser is then "the first", his first passkey is vouched for and, being the
    account's first factor from a low-risk session, starts no cooling-off: it sells her whole NTT position
    at once (a held order confirmed), with nothing but the password."""
    her = api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)  # her first browser: the one a new account's first factor trusts
    her.post("/api/logout")
    clock.shift(2 * 24 * 3600)
    thief = api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)  # password only, allowed outright (a clean line)
    hers = KnownDevice.objects.filter(user=hanako).order_by("first_seen_at", "pk").first()
    assert hers is not None
    # The security page lists her device with its id; the form needs no fresh verification.
    assert str(hers.pk) in thief.get("/authguard/security/").content.decode()
    form_post(thief, f"/authguard/security/devices/{hers.pk}/revoke/")
    key = new_key()
    added = register(thief, key)
    assert added.status_code == 201, added.content
    device = PasskeyDevice.objects.get(user=hanako)
    clock.shift(60)
    # Now the payoff: a held liquidation confirmed with the thief's brand-new passkey.
    held = thief.order("sell", "9432", 2000)
    if held.status_code == 202:
        confirmation = held.json()["confirmation"]
        options = thief.post(f"/authguard/api/confirmations/{confirmation['id']}/passkey/options")
        if options.status_code == 200:
            thief.post(f"/authguard/api/confirmations/{confirmation['id']}/passkey", key.get(options.json()))
    # What must hold: a factor enrolled with a password alone from a browser that came after hers is not
    # vouched for, whatever the thief forgot: it cools off for days and confirms nothing.
    assert holding(hanako, "9432") == 2000
    assert inventory.factor_is_cooling_off(device)
    assert not inventory.may_confirm_sensitive(hanako, device)


# -- 2: one relayed TOTP code replaces the customer's recovery codes ----------------------------------------


def her_recovery_codes(user: Any, *, days: int = 300) -> list[str]:
    """Give ``user`` a recovery-code set she printed ``days`` days ago; returns her codes."""
    codes = [f"{'ABCDEFGHJKMNPQRS'[i]}BCDEFGHJKMNPQR{i % 8 + 2}" for i in range(10)]
    device = RecoveryCodeDevice.objects.create(
        user=user, name="Recovery codes", confirmed=True, created_at=timezone.now() - timedelta(days=days)
    )
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, digest=recovery_digest(device.pk, code), hashed="") for code in codes
    )
    return codes


def test_one_relayed_totp_code_replaces_the_customers_recovery_codes(
    api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako has her authenticator app and the recovery codes she printed long ago (no passkey). The thief
    relays one TOTP code and mints a new recovery-code set: hers die and he reads the new ten, which sign in
    (and re-verify) for him from then on, become active after the unvouched wait, and leave her without a
    backup factor (nor the codes path out of a lock: the TOTP and an *active* recovery code). The accepted
    rule: one relayed code must not remove, replace or regenerate the customer's factors."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    codes = her_recovery_codes(hanako)
    hers = RecoveryCodeDevice.objects.get(user=hanako)
    thief = api()
    thief.login("hanako", HANAKO_PASSWORD)
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert relayed.status_code == 200, relayed.content
    minted = thief.post("/authguard/api/recovery-codes")
    # Her set must survive a session bought with one relayed code, and the thief must see no codes.
    assert minted.status_code in (400, 401, 403), minted.content
    assert "codes" not in minted.json()
    assert RecoveryCodeDevice.objects.filter(pk=hers.pk, confirmed=True).exists()
    assert RecoveryCode.objects.filter(device_id=hers.pk, used_at__isnull=True).count() == len(codes)


# -- 3: the thief's password change turns "a password change revokes cooling-off factors" against her -------


@pytest.mark.usefixtures("both_presets")
def test_password_only_thief_changes_the_password_and_revokes_the_customers_new_passkey(
    api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako (authenticator app for years) adds a passkey from her usual browser: vouched, it cools off
    with the account for a day. The password change hook revokes every factor cooling off, assuming whoever
    changes the password is the customer. A thief with the password alone, on an allowed login, opens
    Django's password-change form (no fresh verification is asked for), changes the password: her new
    passkey is deleted, every session of hers is ended, and only he knows the password now."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    her = api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    from authguard.conf import app_settings

    if app_settings.JSDA:
        # The preset: no TOTP step-up. Give her the passkey bound from her usual browser another way: the
        # staff-free path is the same (record_enrollment), so bind one directly and start her cooling-off.
        from authguard.factors import lifecycle

        from .conftest import bind_passkey

        device = bind_passkey(hanako, new_key())
        lifecycle.start_cooling_off(hanako, reason="factor_added")
        PasskeyDevice.objects.filter(pk=device.pk).update(created_at=timezone.now())
    else:
        assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
        added = register(her, new_key())
        assert added.status_code == 201, added.content
    hers = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(hers)
    clock.shift(3600)
    thief = api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)  # password only, allowed outright
    page = thief.get("/password/change/")
    new = "thief chose this 2026"
    changed = thief.client.post(
        "/password/change/",
        {"old_password": HANAKO_PASSWORD, "new_password1": new, "new_password2": new},
        HTTP_X_CSRFTOKEN=thief.token,
    )
    # A password session changes no password: the customer's passkey, password and sessions stay.
    hanako.refresh_from_db()
    assert PasskeyDevice.objects.filter(pk=hers.pk).exists(), (page.status_code, changed.status_code)
    assert hanako.check_password(HANAKO_PASSWORD)
    assert her.get("/api/portfolio").status_code == 200


def test_one_relayed_totp_code_replaces_the_customers_authenticator_app(
    api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako has a passkey and her authenticator app, both for years. The thief relays one code from her
    app and then replaces the app with his own (begin + confirm): ``require_can_remove`` only stops a
    relayable code from removing a *passkey*, so her authenticator is deleted and his is bound, and it turns
    active after the unvouched wait. One relayed code must not remove or replace her factors."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from .conftest import bind_passkey

    of_long_standing(hanako)
    bind_passkey(hanako, new_key())
    hanako.totp = totp_factory(hanako)
    thief = api()
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    begun = thief.post("/authguard/api/totp")
    if begun.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})
    assert TOTPDevice.objects.filter(pk=hanako.totp.pk, confirmed=True).exists()
    assert list(TOTPDevice.objects.filter(user=hanako, confirmed=True)) == [hanako.totp]
