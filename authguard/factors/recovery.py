"""Recovery codes: the backup factor, as :class:`~authguard.models.RecoveryCodeDevice`.

Ten codes of 16 base32 characters (80 bits each), stored as a keyed digest (HMAC-SHA256 with
``SECRET_KEY``), single use, throttled on their own counter (never by TOTP traffic: django-otp #110), and
using one notifies the user (cases 14-15). A new set replaces the old one and starts the account's
cooling-off (:mod:`authguard.factors.lifecycle`). How many are left:
:func:`authguard.factors.inventory.recovery_codes_left` (0 for a set the failure limit disabled).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_otp.models import Device

from authguard import clock
from authguard.factors.base import tell_user, verify_code
from authguard.factors.changes import require_verified_since_change
from authguard.factors.inventory import is_disabled, user_factors
from authguard.factors.lifecycle import (
    record_enrollment,
    require_can_change_factors,
)
from authguard.factors.removal import delete_replaced, require_can_remove
from authguard.models import FactorKind, RecoveryCode, RecoveryCodeDevice
from authguard.models.factors import _BASE32
from authguard.models.factors import RECOVERY_CODE_LENGTH as RECOVERY_CODE_LENGTH
from authguard.models.factors import consume_recovery_code as consume_recovery_code
from authguard.models.factors import normalise_recovery_code as _normalise_recovery_code
from authguard.models.factors import recovery_digest as _recovery_digest

logger = logging.getLogger(__name__)

#: How many recovery codes a set has, and how long each is (base32 characters; 5 bits each: 80 bits).
RECOVERY_CODE_COUNT = 10


def verify_recovery_code(
    user: Any, code: object, *, request: HttpRequest | None = None, while_locked: bool = False
) -> Device | None:
    """Spend one of the user's recovery codes; the device on success, None otherwise. Notifies the user.

    Throttled independently of TOTP; raises :class:`~authguard.exceptions.Throttled` like :func:`verify_totp`.
    """
    device = next((d for d in user_factors(user) if isinstance(d, RecoveryCodeDevice)), None)
    token = _normalise_recovery_code(code)
    verified = verify_code(
        user, device, kind=FactorKind.RECOVERY_CODE, token=token, request=request, while_locked=while_locked
    )
    if verified is not None:
        remaining = RecoveryCode.objects.filter(device_id=verified.pk, used_at__isnull=True).count()
        tell_user(user, "recovery_code_used", remaining=remaining)
        logger.info("authguard recovery code used user=%s remaining=%s", user.pk, remaining)
    return verified


# -- issuing ------------------------------------------------------------------------------------------------


def format_recovery_code(code: str) -> str:
    """``ABCDEFGHIJKLMNOP`` as ``ABCD-EFGH-IJKL-MNOP`` (as shown; dashes and case are ignored on input)."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def generate_recovery_codes(request: HttpRequest, *, user: Any) -> list[str]:
    """Issue a new set of recovery codes, replacing (and invalidating) the old set. Shown once, never stored.

    Subject to :func:`require_can_change_factors`. Each code has 80 bits of entropy; only a keyed digest of
    it (HMAC-SHA256 with ``SECRET_KEY``) is stored, so a set is generated in milliseconds.
    """
    via = require_can_change_factors(request, user=user)
    user = request.user
    require_verified_since_change(request, user=user, removing=False, via=via)
    for old in RecoveryCodeDevice.objects.filter(user=user, confirmed=True):
        if is_disabled(old) or not RecoveryCode.objects.filter(device=old, used_at__isnull=True).exists():
            continue  # a spent or disabled set is no factor to keep: as if she had none (red team 12-05)
        # SECURITY: a new set replaces the old one: a factor that is cooling off never replaces older codes,
        # and one relayed code never replaces hers, cooling off or not.
        require_can_remove(request, user=user, device=old, replacing=True)
    codes = [
        "".join(secrets.choice(_BASE32) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    with transaction.atomic():
        replaced = [delete_replaced(user, old) for old in RecoveryCodeDevice.objects.filter(user=user)]
        device = RecoveryCodeDevice.objects.create(
            user=user, name=_("Recovery codes")[:64], confirmed=True, created_at=clock.now()
        )
        RecoveryCode.objects.bulk_create(
            # 80 random bits need no slow password hash (10 of them took 5 s): the keyed digest is the
            # check, and a stolen table without SECRET_KEY gives nothing to guess against.
            RecoveryCode(device=device, digest=_recovery_digest(device.pk, code), hashed="")
            for code in codes
        )
        record_enrollment(
            request, user=user, device=device, kind=FactorKind.RECOVERY_CODE, via=via, replaced=replaced
        )
    return [format_recovery_code(code) for code in codes]


__all__ = [
    "consume_recovery_code",
    "format_recovery_code",
    "generate_recovery_codes",
    "RECOVERY_CODE_COUNT",
    "RECOVERY_CODE_LENGTH",
    "verify_recovery_code",
]
