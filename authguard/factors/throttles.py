"""Who may fail at a second factor, and how often: the customer's own sessions versus everybody else's.

Only failures from a session that could be the customer's (:func:`could_be_customer`: verified, low-risk,
and already proven with a factor that is not cooling off) count towards the NIST limit that disables a
factor (:func:`~authguard.factors.base.record_factor_failure`). Every other session's failures are
throttled per session, network and account with growing delays (:func:`check_throttle`,
:func:`note_throttle_failure`,
``AUTHGUARD_FACTOR_THROTTLE``), so whoever has the password can neither guess on nor disable the
customer's factors.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from authguard import clock
from authguard.conf import app_settings
from authguard.exceptions import Throttled
from authguard.factors.inventory import factor_is_cooling_off, session_device
from authguard.models import FactorThrottle
from authguard.risk.addresses import client_ip
from authguard.sessions import state as sessions_state


def _now(at: datetime | None) -> datetime:
    return at if at is not None else clock.now()


def could_be_customer(request: HttpRequest | None) -> bool:
    """Whether a failure from this session could be the customer's own: a verified, low-risk, never
    re-scored session that already proved a factor which is not cooling off. A password alone (however
    low its score) is not enough: it is exactly what a thief has."""
    if request is None:
        return False
    state = sessions_state.session_state(request)
    if state is None or state.status != "verified" or not state.low_risk or state.rescored:
        return False
    device = session_device(request)
    return device is not None and not factor_is_cooling_off(device)


def _throttle_options() -> dict[str, int]:
    return app_settings.FACTOR_THROTTLE


def _network_of(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 56
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _throttle_keys(request: HttpRequest | None, user: Any) -> list[tuple[str, int]]:
    """(key, free failures) of each scope a failure of this request counts in."""
    options = _throttle_options()
    keys: list[tuple[str, int]] = [(f"a:{user.pk}", options["account"])]
    if request is not None:
        session = getattr(request, "session", None)
        session_key = getattr(session, "session_key", None)
        if session_key:
            digest = hashlib.sha256(session_key.encode()).hexdigest()[:40]
            keys.append((f"s:{digest}", options["session"]))
        network = _network_of(client_ip(request))
        if network:
            keys.append((f"n:{network}"[:80], options["network"]))
    return keys


def check_throttle(request: HttpRequest | None, *, user: Any, at: datetime | None = None) -> None:
    """Raise :class:`~authguard.exceptions.Throttled` while a scope of this request (its session, network,
    or the account) waits out the back-off of earlier failures. The customer's own sessions
    (:func:`could_be_customer`) are never held back here."""
    if could_be_customer(request):
        return
    at = _now(at)
    keys = [key for key, _free in _throttle_keys(request, user)]
    blocked = (
        FactorThrottle.objects.filter(key__in=keys, blocked_until__gt=at)
        .order_by("-blocked_until")
        .values_list("blocked_until", flat=True)
        .first()
    )
    if blocked is not None:
        raise Throttled(retry_after=max(1, int((blocked - at).total_seconds() + 0.999)))


def note_throttle_failure(request: HttpRequest | None, *, user: Any, at: datetime | None = None) -> None:
    """Count a failure of a session that is not the customer's in each of its scopes; beyond the scope's
    free failures, each one doubles the wait (up to ``max_delay`` seconds)."""
    if could_be_customer(request):
        return
    at = _now(at)
    options = _throttle_options()
    window = timedelta(seconds=options["window"])
    with transaction.atomic():
        for key, free in _throttle_keys(request, user):
            row, created = FactorThrottle.objects.select_for_update().get_or_create(
                key=key, defaults={"failures": 0, "last_failure_at": at}
            )
            if not created and row.last_failure_at < at - window:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = at
            if row.failures > free:
                delay = min(2 ** min(row.failures - free - 1, 30), options["max_delay"])
                row.blocked_until = at + timedelta(seconds=delay)
            row.save()


def clear_throttle(*, user: Any) -> None:
    """Forget the account scope's failures (a desk reset, a password reset)."""
    FactorThrottle.objects.filter(key=f"a:{user.pk}").delete()


__all__ = [
    "check_throttle",
    "clear_throttle",
    "could_be_customer",
    "note_throttle_failure",
]
