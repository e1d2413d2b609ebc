"""Which step-up methods a user has, and whether a verification may remember the browser.

Read-only facts about a user's factors that the session, login, lockout and notification code need; they
read the factors and their cooling-off and change nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from authguard.conf import app_settings
from authguard.factors import inventory
from authguard.factors.inventory import user_factors

logger = logging.getLogger(__name__)

#: The only method whose verification remembers the browser and resets the account's failure run: a
#: thief who relays one code through a phishing page cannot relay a passkey (it is bound to the origin).
PHISHING_RESISTANT_METHODS = frozenset({"passkey"})


def method_of(device: Any) -> str | None:
    """The step-up method name of a django-otp device: ``passkey``, ``totp`` or ``recovery_code``."""
    name = type(device)._meta.model_name
    if name == "totpdevice":
        return "totp"
    if "passkey" in name or "webauthn" in name:
        return "passkey"
    if "recovery" in name or name == "staticdevice":
        return "recovery_code"
    return None


def usable_factors(user: Any) -> list[Any]:
    """The user's usable factors (:func:`authguard.factors.inventory.user_factors`)."""
    return list(user_factors(user))


def account_cooling_off(user: Any) -> bool:
    """Whether ``user``'s account is in its cooling-off (:mod:`authguard.factors.lifecycle`)."""
    try:
        return bool(inventory.in_cooling_off(user))
    except Exception:
        # SECURITY: if the cooling-off cannot be read, treat the account as cooling off (fail closed).
        logger.exception("authguard: cooling-off state unavailable")
        return True


def factor_cooling_off(device: Any, *, at: datetime | None = None) -> bool:
    """Whether ``device`` is still cooling off (added during, or too recently for, a sensitive use), now or
    ``at`` an earlier time."""
    if device is None:
        return True
    try:
        return bool(inventory.factor_is_cooling_off(device, at=at))
    except Exception:
        # SECURITY: fail closed: a factor whose age cannot be read is treated as new.
        logger.exception("authguard: factor cooling-off state unavailable")
        return True


def remembers_device(user: Any, *, device: Any, method: str) -> bool:
    """Whether a verification with ``device`` (``method``) may remember the browser, teach the risk
    profile the login and reset the account's failure run.

    SECURITY: only a passkey, and neither a passkey still cooling off nor during an account cooling-off: a
    relayed TOTP or recovery code, or the thief's own new passkey, buys one session and nothing that
    lasts (battery case 56). The customer's next sign-in from such a browser is scored as new again.
    """
    if method not in PHISHING_RESISTANT_METHODS or device is None:
        return False
    return not factor_cooling_off(device) and not account_cooling_off(user)


def step_up_methods(user: Any) -> list[str]:
    """What this user can step up with, in the order of ``AUTHGUARD_STEP_UP_METHODS`` (the JSDA preset keeps
    only passkeys). Empty: the user has no usable factor and a risky login must be refused."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    present = {method_of(device) for device in usable_factors(user)}
    return [method for method in app_settings.STEP_UP_METHODS if method in present]


def codes_unlock_available(user: Any) -> bool:
    """Whether ``user`` has what an unlock with an authenticator code plus a recovery code takes (both
    confirmed and usable), and the portal allows it (``AUTHGUARD_UNLOCK_WAIT_HOURS`` is not ``None``). Whether
    they are cooling off is the unlock's own question (:mod:`authguard.login.unlocking`)."""
    if app_settings.UNLOCK_WAIT_HOURS is None or user is None or user.pk is None:
        return False
    methods = {method_of(device) for device in usable_factors(user)}
    return {"totp", "recovery_code"} <= methods
