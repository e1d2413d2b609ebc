"""What Device Bound Session Credentials say about a presented device cookie (read side only).

The risk context asks it for every login, so it sits low: it reads settings, the signed bound cookie and
the ``DbscSession`` rows, nothing of the protocol (registration, refresh, proofs: :mod:`~.dbsc`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

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

#: The end reasons after which a device stays held without a proof (:func:`device_binding_state`):
#: ``dbsc_moves``' SESSIONS_ENDED (a password change or reset), SIGNED_OUT_EVERYWHERE and ACCESS_ENDED (the
#: desk's containment); that module imports this one. Doors a thief can open (her mailbox's reset, "sign out
#: everywhere" with a relayed code) or that a forced reset follows must not free her device cookie.
HOLDING_END_REASONS = frozenset({"sessions_ended", "signed_out_everywhere", "access_ended"})


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


def key_proved_since(request: HttpRequest, since: datetime | None) -> bool:
    """Whether the fresh, authentic bound cookie ``request`` carries was issued at or after ``since``: a bound
    cookie is issued only on a proof of the device key (a registration, a refresh), so its signed time is
    when the key last proved itself. False without such a cookie or without ``since``. Whether the cookie is
    the device's binding's is :func:`device_binding_state`'s to say.

    SECURITY: a bound cookie copied with the jar is a bearer cookie for its minutes: only one issued after
    what a thief does with the copy (his sign-in, his step-up) is her browser's own. A fresh copy of her jar
    and one relayed code forgot her bound browser of months and removed her authenticator (red team, round
    fifty-seven). Its time is in whole seconds: one signed within the second of ``since`` counts."""
    value = request.COOKIES.get(bound_cookie_name())
    if since is None or value is None or bound_session_id(value) is None:
        return False
    signer = clock.TimestampSigner(salt=_BOUND_COOKIE_SALT)
    stamp = signing.Signer.unsign(signer, value).rsplit(signer.sep, 1)[1]
    return signing.b62_decode(stamp) >= int(since.timestamp())


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
    request: HttpRequest, *, device_cookie_hash: str | None, user_id: object = None, ended_holds: bool = True
) -> BindingState:
    """What DBSC says about the device cookie ``device_cookie_hash`` presented with ``request``, for the
    account ``user_id`` (None: any account's binding of the device counts). ``ended_holds=False``: a binding
    a door ended does not hold the device (the factor throttle's scope: below).

    * ``"unbound"``: DBSC is off, there is no device cookie, or its device has no active DBSC session (nor
      one a door of :data:`HOLDING_END_REASONS` ended, below);
    * ``"bound_ok"``: its device is bound and the request carries a fresh bound cookie of that binding;
    * ``"bound_missing_proof"``: its device is bound but the request has no valid, fresh bound cookie for
      it: the device cookie was copied off the device (a legitimate browser refreshes the bound cookie
      before it sends the request). The risk engine must treat it as stolen. Also when the account's
      newest binding of the device was ended by a password change or reset, "sign out everywhere" or the
      desk's containment and would not have expired yet (:func:`_ended_binding_holds`): no request proves an
      ended binding.

    SECURITY: ``Secure-Session-Skipped`` (a browser saying it skipped a refresh) is not honoured: anyone can
    send it. Bindings are per account: one a thief made for the customer's copied device cookie from an
    account of his own neither proves his copy nor holds her browser (red team, 2026-12-05). One query, by
    the indexed device hash.
    """
    if not device_cookie_hash or not enabled():
        return "unbound"
    # Every binding of the device not past its expiry, ended or not: an active one decides; without one, a
    # binding a holding door ended still holds the device (:func:`_ended_binding_holds`).
    of_device = DbscSession.objects.filter(device_hash=device_cookie_hash, expires_at__gt=clock.now())
    if user_id is not None:
        of_device = of_device.filter(user_id=cast(Any, user_id))
    rows = list(of_device.values_list("session_id", "user_id", "created_at", "ended_at", "end_reason"))
    active = [session_id for session_id, _user, _created, ended_at, _reason in rows if ended_at is None]
    if not active:
        return "bound_missing_proof" if ended_holds and _ended_binding_holds(rows) else "unbound"
    presented = presented_session_id(request)
    if presented is not None and any(constant_time_compare(presented, sid) for sid in active):
        return "bound_ok"
    return "bound_missing_proof"


def _ended_binding_holds(rows: list[tuple[Any, ...]]) -> bool:
    """Whether, among a device's unexpired bindings (``session_id, user_id, created_at, ended_at,
    end_reason``) none of which is active, an account's newest was ended by a password change or reset,
    "sign out everywhere" or the desk's containment (:data:`HOLDING_END_REASONS`): its device still counts
    as bound, and no request holds its proof.

    SECURITY: a reset by e-mail is open to whoever has her mailbox. It ends the bindings of the last month
    (an intrusion's keys), hers of three weeks among them, and a copy of her device cookie then signed in
    with the new password as her trusted, unbound browser, with no code (red team, round forty-one). So
    the ended binding keeps its device ``bound_missing_proof`` (a step-up at sign-in) until the account binds
    the device again (only a passkey re-binds a used cookie: the newer binding then decides) or the ended
    binding would have expired (its ``expires_at``, no longer sliding); the key itself stays ended, and a
    thief's browser bound during the intrusion is held the same way. So for "sign out everywhere" (one
    relayed code ends her young binding) and the desk's containment (a forced reset follows, open to her
    mailbox). "Forget this browser" (its cookie is a new browser's from then on) and a replacement release
    the device, as before."""
    newest: dict[Any, tuple[Any, str]] = {}
    for _session_id, user, created_at, _ended_at, reason in rows:
        if user not in newest or created_at > newest[user][0]:
            newest[user] = (created_at, reason)
    return any(reason in HOLDING_END_REASONS for _created, reason in newest.values())
