"""Who may fail at a second factor, and how often: the customer's own sessions versus everybody else's.

Only failures from a session that could be the customer's (:func:`could_be_customer`: verified, low-risk,
and already proven with a factor that is not cooling off) count towards the NIST limit that disables a
factor (:func:`~authguard.factors.base.record_factor_failure`). Every other session's failures are
throttled per session, network and account with growing delays (:func:`check_throttle`,
:func:`note_throttle_failure`,
``AUTHGUARD_FACTOR_THROTTLE``), so whoever has the password can neither guess on nor disable the
customer's factors.

Nor can he hold her back with his failures: the account's scope is shared only by browsers the account
does not know well; a browser it has used for ``ESTABLISHED_DEVICE_DAYS`` (:func:`established_device`)
waits out only its own failures, and a stranger's failures never touch the back-off django-otp keeps on
the factor itself (:func:`stranger`, :func:`authguard.factors.base.verify_code`). A passkey assertion
cannot be guessed: it waits only on its own session's failures (:func:`check_passkey_throttle`).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.db.models import Q
from django.http import HttpRequest

from authguard import clock, durable
from authguard.conf import app_settings
from authguard.exceptions import Throttled
from authguard.factors.inventory import factor_is_cooling_off, session_device
from authguard.models import FactorThrottle, KnownDevice
from authguard.risk.addresses import client_ip
from authguard.sessions import device_binding, device_generations
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


#: How long the account must have known a browser before it counts as the customer's own: a factor
#: enrolled from it is vouched for (:func:`authguard.factors.lifecycle.session_vouched`), and its failures
#: are throttled apart from everybody else's (:func:`established_device`).
ESTABLISHED_DEVICE_DAYS = 30


def established_device(request: HttpRequest | None, *, user: Any, at: datetime | None = None) -> str | None:
    """The keyed hash of this request's device cookie when it is a browser ``user`` has signed in from for
    ``ESTABLISHED_DEVICE_DAYS``, not forgotten since, and the cookie is that browser's current one; else None.

    SECURITY: "known" alone is cheap (one allowed sign-in from a new browser lists it); "known for a month"
    is not. A copy of her cookie left behind (:mod:`authguard.sessions.device_generations`) is not her
    browser: its failures are a stranger's, never set on her factor's back-off (red team, round five); her
    browser, which holds the newest cookie, stays hers when the copy got the id retired (round six). A copy
    holding the newest cookie (taken after her last sign-in) shares her scope, unless her browser is bound
    to a device key (DBSC) and the copy comes without that key's proof.
    """
    if request is None:
        return None
    hashed, generation = device_generations.presented(request)
    if not hashed:
        return None
    since = _now(at) - timedelta(days=ESTABLISHED_DEVICE_DAYS)
    row = (
        KnownDevice.objects.filter(
            user_id=user.pk, cookie_hash=hashed, revoked_at__isnull=True, learned_at__lte=since
        )
        .values_list("cookie_generation", "previous_generation")
        .first()
    )
    if row is None:
        return None
    newest, previous = row
    if generation is not None and not device_generations.holds_newest(
        newest=newest, previous=previous, generation=generation
    ):
        return None
    # SECURITY: her browser bound to a device key (DBSC) sends that key's fresh proof; a copy of its cookie
    # without it is the infostealer's, whatever generation it holds (red team, round fourteen). A binding a
    # door ended holds the sign-in (a step-up), not her scope here: her browser of months, held after a
    # reset or his "sign out everywhere", fell into the strangers' scope he fills (round forty-two).
    state = device_binding.device_binding_state(
        request, device_cookie_hash=hashed, user_id=user.pk, ended_holds=False
    )
    if state == "bound_missing_proof":
        return None
    return hashed


@dataclass(frozen=True)
class Attempt:
    """Who an attempt at a factor comes from, read once per attempt (:func:`attempt_of`): a session that
    could be the customer's (never held back), one on a browser of hers (``own_device``, its own scope), or
    a stranger's (the shared scopes only, never the factor's own back-off)."""

    customer: bool
    own_device: str | None

    @property
    def stranger(self) -> bool:
        return not self.customer and self.own_device is None


def attempt_of(request: HttpRequest | None, *, user: Any, at: datetime | None = None) -> Attempt:
    """The :class:`Attempt` of this request at ``user``'s factors."""
    if could_be_customer(request):
        return Attempt(customer=True, own_device=None)
    return Attempt(customer=False, own_device=established_device(request, user=user, at=at))


def stranger(request: HttpRequest | None, *, user: Any) -> bool:
    """Whether an attempt of this request is a stranger's: neither a session that could be the customer's
    nor one on a browser of hers (:func:`established_device`). Its failures count in the shared scopes
    only, never on the factor's own back-off."""
    return attempt_of(request, user=user).stranger


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


def _throttle_keys(request: HttpRequest | None, user: Any, own: str | None) -> list[tuple[str, int]]:
    """(key, free failures) of each scope a failure of this request counts in.

    SECURITY: a browser the account has known for a month counts in a scope of its own instead of the
    account's and its network's: otherwise anyone with the password (or only the username, at the codes
    unlock) could keep the customer's own browser waiting for good by failing once each time the wait ends
    (red team, 2026-12-05). He still waits out his own failures, and the account lock still counts both.
    """
    options = _throttle_options()
    if own is not None:
        keys: list[tuple[str, int]] = [(f"d:{user.pk}:{own[:32]}"[:80], options["account"])]
    else:
        keys = [(f"a:{user.pk}", options["account"])]
    if request is not None:
        keys.extend(_session_scope(request))
        network = _network_of(client_ip(request))
        if network and own is None:
            keys.append((f"n:{network}"[:80], options["network"]))
    return keys


def _session_scope(request: HttpRequest | None) -> list[tuple[str, int]]:
    """(key, free failures) of the scope of this request's own session, if it has one."""
    session = getattr(request, "session", None)
    session_key = getattr(session, "session_key", None)
    if not session_key:
        return []
    digest = hashlib.sha256(session_key.encode()).hexdigest()[:40]
    return [(f"s:{digest}", _throttle_options()["session"])]


def _blocked_for(keys: list[str], at: datetime) -> None:
    blocked = (
        FactorThrottle.objects.filter(key__in=keys, blocked_until__gt=at)
        .order_by("-blocked_until")
        .values_list("blocked_until", flat=True)
        .first()
    )
    if blocked is not None:
        raise Throttled(retry_after=max(1, int((blocked - at).total_seconds() + 0.999)))


def check_throttle(
    request: HttpRequest | None, *, user: Any, at: datetime | None = None, attempt: Attempt | None = None
) -> None:
    """Raise :class:`~authguard.exceptions.Throttled` while a scope of this request (its session, network,
    or the account) waits out the back-off of earlier failures. The customer's own sessions
    (:func:`could_be_customer`) are never held back here. ``attempt``: :func:`attempt_of` this request,
    when the caller has read it already."""
    attempt = attempt or attempt_of(request, user=user, at=at)
    if attempt.customer:
        return
    _blocked_for([key for key, _free in _throttle_keys(request, user, attempt.own_device)], _now(at))


def note_throttle_failure(
    request: HttpRequest | None, *, user: Any, at: datetime | None = None, attempt: Attempt | None = None
) -> None:
    """Count a failure of a session that is not the customer's in each of its scopes; beyond the scope's
    free failures, each one doubles the wait (up to ``max_delay`` seconds). ``attempt`` as for
    :func:`check_throttle`."""
    attempt = attempt or attempt_of(request, user=user, at=at)
    if attempt.customer:
        return
    _count_durably(_throttle_keys(request, user, attempt.own_device), at=_now(at))


def check_passkey_throttle(request: HttpRequest | None, *, at: datetime | None = None) -> None:
    """Raise :class:`~authguard.exceptions.Throttled` while this request's own session waits out the
    back-off of its own failed passkey assertions (:func:`note_passkey_failure`). The customer's own
    sessions (:func:`could_be_customer`) are never held back.

    SECURITY: a passkey assertion waits on no scope that other sessions fill (the account's, its
    network's): a signature cannot be guessed, and whoever has her password kept the account's scope shut
    with one wrong code each time the wait ended, and with it her passkey's step-up and her passkey's
    confirmation of a held order (red team, round forty-three). The session's own scope still slows one
    session's stream of bad assertions, the account lock still counts them (the callers), and an unsigned
    assertion learns nothing of her passkey (:func:`authguard.factors.passkeys.verify_authentication`
    judges its sign count only after the signature).
    """
    if could_be_customer(request):
        return
    keys = _session_scope(request)
    if keys:
        _blocked_for([key for key, _free in keys], _now(at))


def note_passkey_failure(request: HttpRequest | None, *, at: datetime | None = None) -> None:
    """Count a failed passkey assertion of a session that is not the customer's in that session's own
    scope only (:func:`check_passkey_throttle`): never in the account's or the network's, where it would
    hold back her codes."""
    if could_be_customer(request):
        return
    keys = _session_scope(request)
    if keys:
        _count_durably(keys, at=_now(at))


def _count_durably(keys: list[tuple[str, int]], *, at: datetime) -> None:
    _count_in_scopes(keys, at=at)
    # SECURITY: a portal's step-up view raising on a wrong code rolled the count back under ATOMIC_REQUESTS:
    # unlimited guesses at her code (red team, round forty-two).
    durable.outlive_rollback(
        functools.partial(_count_in_scopes, keys, at=at), using=router.db_for_write(FactorThrottle)
    )


def _count_in_scopes(keys: list[tuple[str, int]], *, at: datetime) -> None:
    options = _throttle_options()
    window = timedelta(seconds=options["window"])
    with transaction.atomic():
        for key, free in keys:
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
    """End the waits of the account's scopes, its browsers' too (the desk's unlock), keeping their failure
    counts.

    SECURITY: the counts stay: deleting the rows gave whoever has her username the account's free failures
    again at every unlock (red team, round nine); his next wrong code waits twice as long as his last.
    """
    scopes = Q(key=f"a:{user.pk}") | Q(key__startswith=f"d:{user.pk}:")
    FactorThrottle.objects.filter(scopes, blocked_until__isnull=False).update(blocked_until=None)


__all__ = [
    "Attempt",
    "attempt_of",
    "check_passkey_throttle",
    "check_throttle",
    "clear_throttle",
    "could_be_customer",
    "ESTABLISHED_DEVICE_DAYS",
    "established_device",
    "note_passkey_failure",
    "note_throttle_failure",
    "stranger",
]
