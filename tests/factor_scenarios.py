"""The factor scenarios the relayed-code walk-around tests share (docs/factor-lifecycle.md).

hanako, a long-standing customer, and what she holds; the thief with her password and one relayed code. Real
TOTP codes, real WebAuthn payloads from :class:`authguard.testing.SoftAuthenticator`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory
from authguard.models import PasskeyDevice, RecoveryCode, RecoveryCodeDevice
from authguard.models.factors import recovery_digest
from authguard.testing import SoftAuthenticator

from .conftest import (
    HANAKO_PASSWORD,
    IP_OSAKA,
    IP_TOKYO,
    OrderApi,
    bind_passkey,
    of_long_standing,
    totp_token,
)


def new_key() -> SoftAuthenticator:
    return SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")


def register(client: OrderApi, key: SoftAuthenticator) -> Any:
    options = client.post("/authguard/api/passkeys/options")
    if options.status_code != 200:
        return options
    return client.post("/authguard/api/passkeys", key.create(options.json()))


def her_new_app(new_browser_api: Any, hanako: Any) -> Any:
    """hanako, with a passkey of years, sets up an authenticator app from her PC of months (a vouched
    session, verified with the passkey): the app cools off. Returns it."""
    of_long_standing(hanako)
    key = new_key()
    hanako.passkey = bind_passkey(hanako, key)
    PasskeyDevice.objects.filter(pk=hanako.passkey.pk).update(created_at=timezone.now() - timedelta(days=300))
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    options = her.post("/authguard/api/step-up/passkey/options")
    assert her.post("/authguard/api/step-up/passkey", key.get(options.json())).status_code == 200
    assert her.post("/authguard/api/totp").status_code == 200
    her_app = TOTPDevice.objects.get(user=hanako, confirmed=False)
    assert her.post("/authguard/api/totp/confirm", {"code": totp_token(her_app)}).status_code == 201
    her_app.refresh_from_db()
    assert inventory.factor_is_cooling_off(her_app)
    return her_app


def disabled_totp(user: Any, totp_factory: Any) -> Any:
    """The customer's authenticator app of long standing, disabled (the failure limit, or she lost it)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from authguard.models import FactorKind, FactorRecord

    device = totp_factory(user)
    TOTPDevice.objects.filter(pk=device.pk).update(created_at=timezone.now() - timedelta(days=300))
    FactorRecord.objects.create(
        user=user,
        device_id=device.persistent_id,
        kind=FactorKind.TOTP,
        enrolled_at=timezone.now() - timedelta(days=300),
        disabled_at=timezone.now() - timedelta(hours=1),
    )
    return device


def her_recovery_codes(user: Any, *, days: int = 300, used: bool = False) -> list[str]:
    """Give ``user`` a recovery-code set she printed ``days`` days ago (``used``: every code spent)."""
    codes = [f"{'ABCDEFGHJKMNPQRS'[i]}BCDEFGHJKMNPQR{i % 8 + 2}" for i in range(10)]
    device = RecoveryCodeDevice.objects.create(
        user=user, name="Recovery codes", confirmed=True, created_at=timezone.now() - timedelta(days=days)
    )
    spent = timezone.now() - timedelta(days=1) if used else None
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, digest=recovery_digest(device.pk, code), hashed="", used_at=spent)
        for code in codes
    )
    return codes


def old_totp(user: Any, totp_factory: Any, *, days: int = 300) -> Any:
    """Her authenticator app of long standing."""
    device = totp_factory(user)
    TOTPDevice.objects.filter(pk=device.pk).update(created_at=timezone.now() - timedelta(days=days))
    device.refresh_from_db()
    return device


def change_password(client: OrderApi, old: str, new: str) -> Any:
    client.get("/password/change/")
    return client.client.post(
        "/password/change/",
        {"old_password": old, "new_password1": new, "new_password2": new},
        HTTP_X_CSRFTOKEN=client.token,
    )


def passkey_verify(client: Any, key: Any) -> Any:
    options = client.post("/authguard/api/step-up/passkey/options")
    assert options.status_code == 200, options.content
    return client.post("/authguard/api/step-up/passkey", key.get(options.json()))


def her_renewed_recovery_codes(new_browser_api: Any, hanako: Any, totp_factory: Any) -> RecoveryCodeDevice:
    """hanako, with an authenticator app of years (``hanako.totp``) and a spent recovery-code set, renews the
    set from her new laptop, verified with the app: the new set cools off. Returns it."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her_recovery_codes(hanako, used=True)
    her = new_browser_api(IP_TOKYO)  # her new laptop
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert her.post("/authguard/api/recovery-codes").status_code == 201
    hers = RecoveryCodeDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(hers)
    return hers


def thief_with_one_code(new_browser_api: Any, device: Any, *, ip: str = IP_OSAKA) -> OrderApi:
    """The thief signs in as hanako with her password from ``ip`` and steps up with ONE relayed code of her
    authenticator app ``device``."""
    thief = new_browser_api(ip)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
    return thief


def her_new_passkey(new_browser_api: Any, hanako: Any, totp_factory: Any) -> PasskeyDevice:
    """hanako, with an authenticator app of years (``hanako.totp``), adds a passkey from her usual browser,
    verified with the app: it cools off. Returns it."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert register(her, new_key()).status_code == 201
    hers = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(hers)
    return hers


def her_only_app(her: Any, hanako: Any) -> Any:
    """hanako, signed in as ``her``, sets up an authenticator app that is then her only factor, cooling
    off (her first one, or the one the desk let her bind again). Returns it."""
    assert her.post("/authguard/api/totp").status_code == 200
    app = TOTPDevice.objects.get(user=hanako, confirmed=False)
    assert her.post("/authguard/api/totp/confirm", {"code": totp_token(app)}).status_code == 201
    app.refresh_from_db()
    assert inventory.factor_is_cooling_off(app)
    assert inventory.user_factors(hanako) == [app]
    return app
