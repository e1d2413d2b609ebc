"""Which factor verified a session strongly, kept by authguard itself.

Imports nothing of django-otp's models: :mod:`authguard.sessions.state` records it at every strong
verification, and a portal without django-otp installed must still reach the system check that says so
(``authguard.E007``) rather than fail on an import.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

#: The session key under which authguard keeps the factor that last verified the session strongly.
VERIFIER_SESSION_KEY = "_authguard_verifier"


def remember_verifier(request: HttpRequest, device: Any) -> None:
    """Keep which factor verified this session, for
    :func:`authguard.factors.inventory.verified_by_cooling_off_factor`.

    SECURITY: django-otp's middleware drops its own record (``DEVICE_ID_SESSION_KEY``) once that factor is
    deleted or unconfirmed, and a session whose verifier was gone read as "never verified with a factor": the
    thief's session, verified with his own cooling-off passkey, opened every step-up view, passkey-only ones
    included, the moment he (or she) removed that passkey (red team, round seventy-five)."""
    if device is None:
        request.session.pop(VERIFIER_SESSION_KEY, None)
    else:
        request.session[VERIFIER_SESSION_KEY] = device.persistent_id


__all__ = ["VERIFIER_SESSION_KEY", "remember_verifier"]
