"""Request context: everything the risk engine knows about where a login comes from.

All I/O of the risk engine that concerns the request itself starts here: the client IP (behind trusted
proxies only, :mod:`~authguard.risk.addresses`), the parsed user agent (:mod:`~authguard.risk.useragent`),
the device cookie, and geolocation from MaxMind databases (:mod:`~authguard.risk.geoip`). Every lookup
degrades to "unknown" fields on missing, corrupt or unparsable input; it never raises.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from authguard import clock
from authguard.conf import app_settings

# The request's parts moved to their own modules; re-exported because callers import them from here.
from authguard.risk.addresses import client_ip as client_ip
from authguard.risk.addresses import ip_prefix as ip_prefix
from authguard.risk.addresses import is_public_ip as is_public_ip
from authguard.risk.addresses import normalize_ip as normalize_ip
from authguard.risk.geoip import Geo as Geo
from authguard.risk.geoip import GeoReaders as GeoReaders
from authguard.risk.geoip import GeoVersion as GeoVersion
from authguard.risk.geoip import _cached_lookup as _cached_lookup
from authguard.risk.geoip import geo_readers as geo_readers
from authguard.risk.geoip import geoip_status as geoip_status
from authguard.risk.geoip import geolocate as geolocate
from authguard.risk.geoip_files import REQUIRED_GEOIP_DATABASES as REQUIRED_GEOIP_DATABASES
from authguard.risk.geoip_files import GeoDatabaseStatus as GeoDatabaseStatus
from authguard.risk.profile import POPULATION_FEATURES, computed_once, feature_values
from authguard.risk.useragent import MAX_USER_AGENT as MAX_USER_AGENT
from authguard.risk.useragent import ClientInfo as ClientInfo
from authguard.risk.useragent import client_info as client_info
from authguard.risk.useragent import parse_user_agent as parse_user_agent
from authguard.risk.useragent import sanitize_user_agent as sanitize_user_agent
from authguard.sessions import device_activity, device_binding
from authguard.sessions.device_activity import DeviceActivity

logger = logging.getLogger(__name__)

_DEVICE_COOKIE_SALT = "authguard.device-cookie"

#: The longest login name authguard looks up or counts when the user model's field has no length (a
#: ``TextField``) or a longer one: no typed name is unbounded. Above any real login field (an e-mail address
#: holds at most 254 characters): a cap under the field's length let names between the two reach Django's
#: password check but never the lock (red team, round thirty-five).
LOGIN_NAME_CAP = 1024


def login_name_limit() -> int:
    """The longest login name an account can have: the ``max_length`` of the user model's ``USERNAME_FIELD``
    (150 for Django's ``username``, 254 for an ``EmailField``), at most :data:`LOGIN_NAME_CAP` (also without
    one).

    The one limit of every login path (the failed-login flow, the lock check, the token login): a name cut
    to a shorter one reached no account, so a long address was never locked (red team 34a).
    """
    model = get_user_model()
    length = getattr(model._meta.get_field(model.USERNAME_FIELD), "max_length", None)
    return min(length, LOGIN_NAME_CAP) if isinstance(length, int) and length > 0 else LOGIN_NAME_CAP


@dataclass(frozen=True)
class LoginContext:
    """One login attempt as the risk engine sees it. Built by :func:`build_context` or by the replay."""

    time: datetime
    username: str
    user_id: int | str | None
    ip: str | None
    geo: Geo
    client: ClientInfo
    device_hash: str | None
    # Facts about the account the caller knows (password hash fingerprint, ...), never secrets.
    account: dict[str, Any] = field(default_factory=dict)
    #: What Device Bound Session Credentials say of the device cookie
    #: (:func:`authguard.sessions.dbsc.device_binding_state`): ``unbound``, ``bound_ok``, or
    #: ``bound_missing_proof``
    #: (a bound device's cookie presented without its proof: copied off the device).
    dbsc: str = "unbound"
    #: The keyed hash of the portal's own device cookie (``AUTHGUARD_LEGACY_DEVICE_COOKIE``), when set and
    #: presented: the history judges the login as the imported device it names, if the account's imported
    #: profile knows that id and not this browser's authguard cookie (:mod:`authguard.risk.legacy_device`).
    legacy_device_hash: str | None = None
    #: The latest activity of a verified session of this account bound to this device cookie, when one was
    #: recorded (:mod:`authguard.sessions.device_activity`): live sign-ins and re-scores only, the replay
    #: has no sessions.
    device_activity: DeviceActivity | None = None
    #: Whether that activity is the request's own live, verified session's (one session moving).
    device_activity_own: bool = False
    #: Whether that activity could not be read (the cache down or hung): the login is then decided as one
    #: without its evidence (:func:`authguard.login.fail_safe.fail_safe`).
    device_activity_unavailable: bool = False
    #: The generation of the presented device cookie (:func:`device_cookie_generation`: 0 for a cookie from
    #: before generations), None when no live cookie was presented (the replay has none): the history
    #: compares it with the newest one the account's browser confirmed (a superseded one is a copy).
    device_generation: int | None = None
    #: An API token client's sign-in (:mod:`authguard.drf`): it may pin its device cookie and never take the
    #: next generation its answers give, so none is noted as given (``sessions.device_generations``).
    token_client: bool = False

    @computed_once
    def timestamp(self) -> float:
        """``time`` as POSIX seconds, computed once (counters, profiles and several signals need it)."""
        return self.time.timestamp()

    @computed_once
    def prefix(self) -> str | None:
        """The /24 (IPv4) or /48 (IPv6) network of the address: an ISP customer's neighbourhood."""
        return ip_prefix(self.ip)

    @computed_once
    def population_value_keys(self) -> dict[str, str]:
        """``{feature: "feature:value"}``: the population-count key of each hierarchy level's value."""
        features = self.features
        return {feature: population_key(f"{feature}:{features[feature]}") for feature in POPULATION_FEATURES}

    @computed_once
    def features(self) -> dict[str, str | None]:
        """The profile features of this login (:func:`authguard.risk.profile.feature_values`), computed
        once."""
        return feature_values(self)


#: The length of ``PopulationCount.key`` (and ``PopulationDelta.key``): the risk core imports no model, so
#: it is repeated here, and tests/test_population_key_length.py holds the two equal.
POPULATION_KEY_LENGTH = 255


def population_key(key: str) -> str:
    """``key`` as stored: one longer than its column ends in a digest of the whole, so it stays its own
    value. A user agent with a 380-digit version wrote a key no PostgreSQL column took, and the sign-in's
    learning (or an install-day import) failed (red team, round twenty-five)."""
    if len(key) <= POPULATION_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]
    return f"{key[: POPULATION_KEY_LENGTH - len(digest) - 1]}#{digest}"


# -- device cookie -----------------------------------------------------------------------------------


#: Between the device id and its generation in a cookie value (never in a ``token_urlsafe`` id).
_GENERATION_SEPARATOR = "."


def new_device_cookie(device_id: str | None = None, *, after: int | None = None) -> str:
    """A signed device cookie value: ``device_id`` (a fresh random id when None) and a new generation.

    The generation is the issue time in milliseconds, and always above ``after`` (the generation the browser
    presented): a node whose clock runs behind must not issue a cookie older than the one it replaces.
    Signed with the id, so neither can be forged or moved to another id
    (:mod:`authguard.sessions.device_generations`).
    """
    generation = max(int(clock.now().timestamp() * 1000), (after or 0) + 1)
    value = f"{device_id or secrets.token_urlsafe(24)}{_GENERATION_SEPARATOR}{_base36(generation)}"
    return signing.Signer(salt=_DEVICE_COOKIE_SALT).sign(value)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, digit = divmod(number, 36)
        out = digits[digit] + out
        if not number:
            return out


def device_cookie_parts(value: str | None) -> tuple[str, int] | None:
    """``(device id, generation)`` of a signed cookie value (generation 0: a value from before
    generations), or None when absent, oversized or forged."""
    if not value or len(value) > 200:
        return None
    try:
        unsigned = signing.Signer(salt=_DEVICE_COOKIE_SALT).unsign(value)
    except signing.BadSignature:
        return None
    device_id, _, generation = unsigned.partition(_GENERATION_SEPARATOR)
    if not device_id:
        return None
    try:
        return device_id, int(generation, 36) if generation else 0
    except ValueError:
        return device_id, 0  # signed by us, so never; read as the oldest generation all the same


def device_id_from_cookie(value: str | None) -> str | None:
    """The device id inside a signed cookie value (the same for every generation of one browser's
    cookie), or None when absent or forged."""
    parts = device_cookie_parts(value)
    return parts[0] if parts else None


def device_cookie_generation(value: str | None) -> int | None:
    """The generation of a signed cookie value (0 for one from before generations), or None when absent
    or forged."""
    parts = device_cookie_parts(value)
    return parts[1] if parts else None


#: The shortest portal device id a legacy device cookie may carry: shorter ones (a counter, a short code)
#: could be guessed, and are ignored as if no cookie were presented.
MIN_LEGACY_DEVICE_ID = 16


def legacy_device_hash(value: str | None) -> str | None:
    """The keyed hash of a portal device id (the legacy cookie's value, or a log's ``device_id``), or None
    when absent, shorter than :data:`MIN_LEGACY_DEVICE_ID` or over 200 characters."""
    if not value or not MIN_LEGACY_DEVICE_ID <= len(value) <= 200:
        return None
    return device_hash(value)


def device_hash(device_id: str | None) -> str | None:
    """What the server stores of a device id: a keyed hash, so a database leak reveals no cookie."""
    if not device_id:
        return None
    # Memoised for ids of a sane length only: the cache holds its keys, and 65,536 ids of 100 KB each (a
    # replayed log's, or headers at the server's limit) would be gigabytes (found by review, 2026-12-04).
    if len(device_id) > _CACHED_ID_LENGTH:
        return _device_hash(device_id)
    return _cached_device_hash(device_id)


_CACHED_ID_LENGTH = 256


def _device_hash(device_id: str) -> str:
    return salted_hmac(_DEVICE_COOKIE_SALT, device_id, algorithm="sha256").hexdigest()


_cached_device_hash = functools.lru_cache(maxsize=65536)(_device_hash)


# -- the context -------------------------------------------------------------------------------------


def account_facts(user: Any) -> dict[str, Any]:
    """Facts about the account that signals compare with the profile: a fingerprint of the password hash.

    Only a short keyed hash of the stored hash is kept, so the profile says "the password changed since
    the last login" without holding anything secret.
    """
    password = getattr(user, "password", "") or ""
    if not password:
        return {}
    return {
        "pw": salted_hmac("authguard.password-fingerprint", password, algorithm="sha256").hexdigest()[:16]
    }


#: Set on the request while :mod:`authguard.drf` runs the login flows for an API token client.
TOKEN_CLIENT_ATTR = "_authguard_token_client"


def build_context(
    request: HttpRequest,
    *,
    username: str,
    user: Any = None,
    now: datetime | None = None,
) -> LoginContext:
    """Build the :class:`LoginContext` of a login attempt from the live request."""
    ip = client_ip(request)
    presented = device_cookie_parts(request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME))
    hashed = device_hash(presented[0] if presented else None)
    legacy_cookie = app_settings.LEGACY_DEVICE_COOKIE
    return LoginContext(
        time=now or clock.now(),
        username=(username or "")[: login_name_limit()],
        user_id=getattr(user, "pk", None),
        ip=ip,
        geo=geolocate(ip),
        client=client_info(request.META.get("HTTP_USER_AGENT")),
        device_hash=hashed,
        account=account_facts(user) if user is not None else {},
        dbsc=_dbsc_state(request, hashed, getattr(user, "pk", None)),
        legacy_device_hash=legacy_device_hash(request.COOKIES.get(legacy_cookie)) if legacy_cookie else None,
        device_generation=presented[1] if presented else None,
        token_client=bool(getattr(request, TOKEN_CLIENT_ATTR, False)),
        **_device_activity(request, hashed, user),
    )


def _device_activity(request: HttpRequest, hashed: str | None, user: Any) -> dict[str, Any]:
    """Where a verified session of this account last used the device cookie, and whether it was the
    request's own: one cache read, only for a presented device cookie of a known account."""
    if not hashed or user is None or getattr(user, "pk", None) is None:
        return {}
    # The account id as Django's session stores it (SESSION_KEY), which is what the writer has.
    account = user._meta.pk.value_to_string(user)
    found, readable = device_activity.read_checked(hashed, account)
    if not readable:
        return {"device_activity_unavailable": True}
    if found is None:
        return {}
    # SECURITY: "own" only for a live, verified session the middleware loaded for this account, never for a
    # session cookie the request merely sends (a thief replays the stolen one, live or dead).
    own = getattr(request, device_activity.OWN_SESSION_ATTR, None) == (account, found.session)
    return {"device_activity": found, "device_activity_own": own}


def _dbsc_state(request: HttpRequest, hashed: str | None, user_id: object) -> str:
    """The device cookie's DBSC binding state for this account; no query unless DBSC is on and a cookie
    was presented."""
    try:
        return device_binding.device_binding_state(request, device_cookie_hash=hashed, user_id=user_id)
    except Exception:
        # SECURITY: a binding that cannot be read is treated as a missing proof (the login is stepped up).
        logger.exception("authguard: DBSC binding state unavailable")
        return "bound_missing_proof" if device_binding.enabled() and hashed else "unbound"
