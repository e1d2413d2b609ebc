"""Second factors: TOTP and recovery codes (``base``), passkeys (``passkeys``, py_webauthn) and
the one lifecycle every factor goes through (``lifecycle``).
"""

from __future__ import annotations

from authguard.compat import forward_to

# The old authguard/factors/__init__.py was split into these (issue 12).
__getattr__ = forward_to(
    __name__,
    "authguard.factors.base",
    "authguard.factors.inventory",
    "authguard.factors.lifecycle",
    "authguard.factors.totp",
    "authguard.factors.recovery",
)
