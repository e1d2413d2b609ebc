"""Where a device cookie is in use right now: the latest activity of a verified session bound to it.

The same device cookie used for an account from a place too far from where that account's verified
session used it minutes ago is in two places at once: one of them holds a copy, which is what infostealer
malware takes off the customer's computer (issue 13). The risk signal
:class:`~authguard.risk.signals_device.DeviceCookie` weighs it; this module only keeps the fact.

One cache entry per device *and account*, written by the session middleware at most once a minute per
session (:func:`authguard.sessions.middleware.note_device_activity`) and read once per sign-in (or re-score)
that presents a device cookie (:func:`authguard.risk.context.build_context`). Per account, so that a
thief's own account signed in with the copy can neither overwrite the customer's entry nor tell him
whether the customer is online. It lives in Django's default cache, never in the database: it is worth
minutes, and a cache that is down only loses this one piece of evidence (the sign-in is scored on
everything else; ``docs/faults.md``). It sits low, next to :mod:`~authguard.sessions.device_binding`: it
imports nothing of the risk engine, which reads it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, replace
from typing import Any

from django.core.cache import cache

from authguard.conf import app_settings
from authguard.resilience import guarded_cache_call

logger = logging.getLogger(__name__)

_KEY_PREFIX = "authguard:device-active:"

#: Request attribute the session middleware sets on a request that carries a live, verified session:
#: ``(account id as the session stores it, session_digest(key))``. Only this says "the request's own
#: session"; a session cookie the request merely sends proves nothing (a thief sends the stolen one).
OWN_SESSION_ATTR = "_authguard_own_session"


@dataclass(frozen=True)
class DeviceActivity:
    """The latest activity of a verified session bound to one device cookie, for one account.

    ``session`` is a digest of that session's key (never the key: the cache is not a session store; only
    signing out compares it, so that one session never forgets another's activity), ``at`` the activity's
    time in POSIX seconds, ``ip`` / ``asn`` / ``latitude`` / ``longitude`` / ``accuracy_km`` where GeoIP
    placed its address (each None when unknown).
    """

    session: str
    at: float
    ip: str | None
    asn: int | None
    latitude: float | None
    longitude: float | None
    accuracy_km: float | None


def session_digest(session_key: str) -> str:
    """A short digest of a session key: tells two sessions apart without storing the key itself."""
    return hashlib.blake2b(
        session_key.encode("utf-8", "replace"), digest_size=12, person=b"ag-dev-act"
    ).hexdigest()


def _key(device_hash: str, user_id: Any) -> str:
    # The account's id is hashed with the device, so cache keys carry no account number.
    raw = f"{device_hash}\x00{user_id}".encode("utf-8", "replace")
    return _KEY_PREFIX + hashlib.blake2b(raw, digest_size=16).hexdigest()


def note(device_hash: str, user_id: Any, activity: DeviceActivity) -> None:
    """Record ``activity`` as the device's latest for the account. Kept for
    ``AUTHGUARD_SESSION_IDLE_SECONDS``: a session idle longer is signed out, so its device is no longer in
    use there. A cache fault is logged and skipped (the evidence is lost, nothing else)."""
    value = [
        activity.session,
        activity.at,
        activity.ip,
        activity.asn,
        activity.latitude,
        activity.longitude,
        activity.accuracy_km,
    ]
    try:
        guarded_cache_call(
            cache.set,
            _key(device_hash, user_id),
            value,
            app_settings.SESSION_IDLE_SECONDS,
            what="the device activity",
            default=None,
        )
    except ValueError:
        logger.warning("authguard: the device activity could not be written")


def read(device_hash: str, user_id: Any) -> DeviceActivity | None:
    """The latest recorded activity of the device for the account, or None (none recorded, expired,
    unreadable, or the cache is down). Never raises."""
    return read_checked(device_hash, user_id)[0]


_DOWN = object()


def read_checked(device_hash: str, user_id: Any) -> tuple[DeviceActivity | None, bool]:
    """:func:`read`'s answer and whether the cache could be read at all (False: down or hung, so "no
    activity" is not known). Never raises.

    SECURITY: a scored request tells the two apart: with the cache down, a copy of her device cookie used
    while she was active elsewhere looked like her browser alone (red team, round seventy-two)."""
    try:
        found = guarded_cache_call(
            cache.get, _key(device_hash, user_id), what="the device activity", default=_DOWN
        )
    except ValueError:
        # The breaker passes ValueError through (``incr``'s answer); from ``get`` it is an entry that does
        # not decode (a pickle of another version, a serializer's error): no entry.
        logger.warning("authguard: an unreadable device activity entry was ignored")
        return None, True
    if found is _DOWN:
        return None, False
    return _parse(found), True


def forget(device_hash: str, user_id: Any, session_key: str) -> None:
    """The verified session ``session_key`` signed out: its device is no longer in use there. An entry
    another session wrote since is kept."""
    found = read(device_hash, user_id)
    if found is None or found.session != session_digest(session_key):
        return
    try:
        guarded_cache_call(cache.delete, _key(device_hash, user_id), what="the device activity", default=None)
    except ValueError:
        logger.warning("authguard: a device activity entry could not be deleted")


def rekey(device_hash: str, user_id: Any, *, old_key: str, new_key: str) -> None:
    """The session ``old_key`` got the key ``new_key`` (a step-up, a portal rotating keys): the entry it
    wrote stays its own, so the session's next move is not taken for another session's."""
    found = read(device_hash, user_id)
    if found is None or found.session != session_digest(old_key):
        return
    note(device_hash, user_id, replace(found, session=session_digest(new_key)))


def _parse(value: Any) -> DeviceActivity | None:
    """A stored entry, checked field by field: anything else in the cache under the key is no entry."""
    if not isinstance(value, list) or len(value) != 7:
        return None
    session, at, ip, asn, latitude, longitude, accuracy = value
    if (
        not isinstance(session, str)
        or not _finite(at)
        or not (ip is None or isinstance(ip, str))
        or not (asn is None or (isinstance(asn, int) and not isinstance(asn, bool)))
        or not all(n is None or _finite(n) for n in (latitude, longitude, accuracy))
    ):
        return None
    return DeviceActivity(session, float(at), ip, asn, latitude, longitude, accuracy)


def _finite(value: Any) -> bool:
    """A real number (not a bool, NaN or infinity): arithmetic on it cannot fail."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
