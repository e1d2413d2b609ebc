"""What Device Bound Session Credentials say about a presented device cookie (read side only).

The risk context asks it for every login, so it sits low: it reads settings, the signed bound cookie and
the ``DbscSession`` rows, nothing of the protocol (registration, refresh, proofs: :mod:`~.dbsc`).
"""

from __future__ import annotations

from typing import Any, Literal

from django.core import signing
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from authguard import clock
from authguard.conf import app_settings
from authguard.models import DbscSession

#: Seconds a bound cookie is still honoured after its Max-Age (requests in flight while it expires).
BOUND_COOKIE_LEEWAY_SECONDS = 30

# SECURITY: a stable salt: changing it voids every bound cookie in use.
_BOUND_COOKIE_SALT = "authguard.dbsc-bound-cookie"

BindingState = Literal["unbound", "bound_ok", "bound_missing_proof"]


def enabled() -> bool:
    """Whether DBSC is on (``AUTHGUARD_DBSC["ENABLED"]``)."""
    return bool(app_settings.DBSC.get("ENABLED"))


def bound_cookie_name() -> str:
    return str(app_settings.DBSC["BOUND_COOKIE_NAME"])


def bound_cookie_age() -> int:
    """Lifetime of the bound cookie in seconds (``BOUND_COOKIE_AGE``)."""
    return int(app_settings.DBSC["BOUND_COOKIE_AGE"])


def bound_session_id(value: str | None) -> str | None:
    """The session identifier in a bound cookie that is authentic and fresh, or None."""
    if not value or len(value) > 256:
        return None
    try:
        return clock.TimestampSigner(salt=_BOUND_COOKIE_SALT).unsign(
            value, max_age=bound_cookie_age() + BOUND_COOKIE_LEEWAY_SECONDS
        )
    except signing.BadSignature:  # includes SignatureExpired
        return None


def presented_session_id(request: HttpRequest) -> str | None:
    """The session identifier of the fresh, authentic bound cookie ``request`` carries, or None."""
    return bound_session_id(request.COOKIES.get(bound_cookie_name()))


def _active_sessions() -> Any:
    return DbscSession.objects.filter(ended_at__isnull=True, expires_at__gt=clock.now())


def binding_released(session_id: str) -> bool:
    """Whether the DBSC session ``session_id`` no longer binds the Django sessions it bound: it expired, or
    was ended (the device revoked, a sign-out). One query.

    SECURITY: not when a new key *replaced* it: only a request proving the old key can replace a binding
    (:func:`authguard.sessions.dbsc.verify_registration`), and the customer's own session moves to the new
    binding as it registers; a copy of an older session of hers still has nothing to prove it with.
    """
    row = DbscSession.objects.filter(session_id=session_id).values_list(
        "ended_at", "end_reason", "expires_at"
    )
    found = row.first()
    if found is None:
        return True
    ended_at, reason, expires_at = found
    if ended_at is not None:
        return reason != "replaced"
    return bool(expires_at <= clock.now())


def device_binding_state(
    request: HttpRequest, *, device_cookie_hash: str | None, user_id: object = None
) -> BindingState:
    """What DBSC says about the device cookie ``device_cookie_hash`` presented with ``request``, for the
    account ``user_id`` (None: any account's binding of the device counts).

    * ``"unbound"``: DBSC is off, there is no device cookie, or its device has no active DBSC session;
    * ``"bound_ok"``: its device is bound and the request carries a fresh bound cookie of that binding;
    * ``"bound_missing_proof"``: its device is bound but the request has no valid, fresh bound cookie for
      it: the device cookie was copied off the device (a legitimate browser refreshes the bound cookie
      before it sends the request). The risk engine must treat it as stolen.

    SECURITY: ``Secure-Session-Skipped`` (a browser saying it skipped a refresh) is not honoured: anyone can
    send it. Bindings are per account: one a thief made for the customer's copied device cookie from an
    account of his own neither proves his copy nor holds her browser (red team, 2026-12-05). One query, by
    the indexed device hash.
    """
    if not device_cookie_hash or not enabled():
        return "unbound"
    of_device = _active_sessions().filter(device_hash=device_cookie_hash)
    if user_id is not None:
        of_device = of_device.filter(user_id=user_id)
    active = list(of_device.values_list("session_id", flat=True))
    if not active:
        return "unbound"
    presented = presented_session_id(request)
    if presented is not None and any(constant_time_compare(presented, sid) for sid in active):
        return "bound_ok"
    return "bound_missing_proof"
