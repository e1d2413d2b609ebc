"""Where a device cookie is in use right now: the latest activity of a verified session bound to it.

A browser holds one device cookie and one session cookie in the same cookie jar. The same device cookie
signing in from *another* jar (the session cookie it sends is not the one the device's active session
uses) while that session was active minutes ago, and from another city or network, is in two places at
once: a copy, which is what infostealer malware takes off the customer's computer (issue 13). The
risk signal :class:`~authguard.risk.signals_device.DeviceCookie` weighs it; this module only keeps the
fact.

One cache entry per device, written by the session middleware at most once a minute per session
(:func:`authguard.sessions.state.note_device_activity`) and read once per sign-in that presents a device
cookie (:func:`authguard.risk.context.build_context`). It lives in Django's default cache, never in the
database: it is worth minutes, and a cache that is down only loses this one piece of evidence (the
sign-in is scored on everything else; ``docs/faults.md``). It sits low, next to
:mod:`~authguard.sessions.device_binding`: it imports nothing of the risk engine, which reads it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from authguard.conf import app_settings
from authguard.resilience import guarded_cache_call

_KEY_PREFIX = "authguard:device-active:"


@dataclass(frozen=True)
class DeviceActivity:
    """The latest activity of a verified session bound to one device cookie.

    ``session`` is a digest of that session's key (never the key: the cache is not a session store),
    ``at`` the activity's time in POSIX seconds, ``ip`` / ``asn`` / ``latitude`` / ``longitude`` /
    ``accuracy_km`` where GeoIP placed its address (each None when unknown).
    """

    session: str
    at: float
    ip: str | None
    asn: int | None
    latitude: float | None
    longitude: float | None
    accuracy_km: float | None


def session_digest(session_key: str) -> str:
    """A short digest of a session key: tells two cookie jars apart without storing the key itself."""
    return hashlib.blake2b(
        session_key.encode("utf-8", "replace"), digest_size=12, person=b"ag-dev-act"
    ).hexdigest()


def _key(device_hash: str) -> str:
    return _KEY_PREFIX + device_hash


def note(device_hash: str, activity: DeviceActivity) -> None:
    """Record ``activity`` as the device's latest. Kept for ``AUTHGUARD_SESSION_IDLE_SECONDS``: a session
    idle longer is signed out, so its device is no longer in use there. A cache fault is logged and
    skipped (the evidence is lost, nothing else)."""
    value = [
        activity.session,
        activity.at,
        activity.ip,
        activity.asn,
        activity.latitude,
        activity.longitude,
        activity.accuracy_km,
    ]
    guarded_cache_call(
        cache.set,
        _key(device_hash),
        value,
        app_settings.SESSION_IDLE_SECONDS,
        what="the device activity",
        default=None,
    )


def read(device_hash: str) -> DeviceActivity | None:
    """The device's latest recorded activity, or None (none recorded, expired, unreadable, or the cache is
    down). Never raises."""
    found = guarded_cache_call(cache.get, _key(device_hash), what="the device activity", default=None)
    return _parse(found)


def forget(device_hash: str, session_key: str) -> None:
    """The session ``session_key`` signed out: its device is no longer in use there. An entry another
    session wrote since is kept."""
    found = read(device_hash)
    if found is not None and found.session == session_digest(session_key):
        guarded_cache_call(cache.delete, _key(device_hash), what="the device activity", default=None)


def _parse(value: Any) -> DeviceActivity | None:
    """A stored entry, checked field by field: anything else in the cache under the key is no entry."""
    if not isinstance(value, list) or len(value) != 7:
        return None
    session, at, ip, asn, latitude, longitude, accuracy = value
    numbers = (latitude, longitude, accuracy)
    if (
        not isinstance(session, str)
        or not isinstance(at, (int, float))
        or not (ip is None or isinstance(ip, str))
        or not (asn is None or isinstance(asn, int))
        or not all(n is None or isinstance(n, (int, float)) for n in numbers)
    ):
        return None
    return DeviceActivity(session, float(at), ip, asn, latitude, longitude, accuracy)
