"""User profiles: what a user's past successful logins looked like, as bounded aggregated counts.

A profile is a plain JSON-able dict so that the database (:class:`authguard.models.RiskProfile`) and the
replay's in-memory store hold exactly the same thing, updated by the same :func:`learn`.

Forgetting works in two periods of half the horizon each: counts live in a *current* and a *previous*
period; when a period ends the previous one is dropped. So a login older than the horizon (default 180
days) never counts, one younger than half of it always does, and the profile's size is bounded by
:data:`MAX_VALUES` values per feature, whatever the length of the history.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from django.utils import timezone
from django.utils.crypto import salted_hmac

if TYPE_CHECKING:  # context, geoip and useragent import this module
    from authguard.risk.context import LoginContext
    from authguard.risk.geoip import Geo
    from authguard.risk.useragent import ClientInfo


class computed_once:  # noqa: N801 - used as a decorator, like property
    """A read-only attribute computed on first use and kept in the instance's ``__dict__``.

    Like ``functools.cached_property`` without its per-access lock (Python < 3.12): a non-data
    descriptor, so once computed the value is a plain attribute lookup, no function call. The replay
    reads these attributes a dozen times per login. Frozen dataclasses still refuse assignment.
    """

    def __init__(self, method: Any) -> None:
        self.method = method
        self.name = method.__name__
        self.__doc__ = method.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.method(instance)
        return value


#: Features remembered per user, and counted across the population for the statistical model.
IP_LEVELS = ("ip", "prefix", "asn", "cc")
UA_LEVELS = ("ua", "browser", "os", "dtype")
#: Per-user only (never population features): the parsed browser class ("uac": family and release, OS
#: and major version, device type; see ``ClientInfo.browser_release``), and per-device memory: the
#: networks ("dasn") and cities ("dcity") each device cookie was used from, as ``device|value`` pairs.
USER_FEATURES = (*IP_LEVELS, *UA_LEVELS, "city", "dev", "hour", "uac", "dasn", "dcity")
POPULATION_FEATURES = (*IP_LEVELS, *UA_LEVELS)
#: Most values kept per feature; the least recently seen is evicted first.
MAX_VALUES = 48
#: Most device cookies whose last use the profile remembers (``"dv"``); the least recently used goes first.
MAX_DEVICES = 16
UNKNOWN = "?"
_HOURS = tuple(str(hour) for hour in range(24))
_NONE: dict[str, Any] = {}  # read-only stand-in for a feature never seen
_SECONDS_PER_DAY = 86400


@functools.lru_cache(maxsize=16384)
def ua_key(raw: str) -> str:
    """A short stable key for a user-agent string (the strings themselves are long)."""
    return salted_hmac("authguard.ua", raw, algorithm="sha256").hexdigest()[:16] if raw else UNKNOWN


def feature_values(ctx: LoginContext) -> dict[str, str | None]:
    """The value of every profile feature for a login (None: the feature is absent, e.g. no cookie).

    Hours are in the site's ``TIME_ZONE``, the same clock :class:`~authguard.risk_signals.UnusualHour` reads.
    Use ``ctx.features``, which computes this once per login.
    """
    asn, cc, city = ctx.geo.feature_values
    ua, browser, os_name, dtype = ctx.client.feature_values
    local = ctx.time.astimezone(timezone.get_default_timezone())
    dev = ctx.device_hash[:20] if ctx.device_hash else None
    return {
        "ip": ctx.ip or UNKNOWN,
        "prefix": ctx.prefix or UNKNOWN,
        "asn": asn,
        "cc": cc,
        "ua": ua,
        "browser": browser,
        "os": os_name,
        "dtype": dtype,
        "city": city,
        "dev": dev,
        "hour": _HOURS[local.hour],
        "uac": f"{ctx.client.browser} {ctx.client.browser_release}|{os_name}|{dtype}",
        "dasn": f"{dev}|{asn}" if dev else None,
        "dcity": f"{dev}|{city}" if dev else None,
    }


def geo_feature_values(geo: Geo) -> tuple[str, str, str]:
    """The profile values of a location: ASN, country and city (use ``geo.feature_values``, kept per Geo)."""
    return (
        str(geo.asn) if geo.asn is not None else UNKNOWN,
        geo.country or UNKNOWN,
        f"{geo.country}/{geo.city}" if geo.city else UNKNOWN,
    )


def client_feature_values(client: ClientInfo) -> tuple[str, str, str, str]:
    """The profile values of a parsed user agent: its key, browser, OS and device type (use
    ``client.feature_values``, kept per parsed user agent)."""
    return (
        ua_key(client.raw),
        f"{client.browser} {client.browser_version}".strip(),
        f"{client.os} {client.os_version}".strip(),
        client.device_type,
    )


def _period(day: int, horizon_days: int) -> int:
    return day // max(1, horizon_days // 2)


class Profile:
    """Read access to a profile dict, as of one moment (counts from before the horizon are ignored)."""

    __slots__ = ("data", "period", "_features", "_prev", "_cur")

    def __init__(self, data: dict[str, Any], period: int) -> None:
        self.data = data
        self.period = period
        self._features: dict[str, dict[str, list[int]]] = data.get("f", {})
        # Which stored columns (previous, current) are still inside the horizon.
        stored = data.get("p")
        if stored is None or period >= stored + 2:
            self._prev, self._cur = 0, 0
        elif period == stored + 1:
            self._prev, self._cur = 0, 1  # the stored "current" period is now the previous one
        else:
            self._prev, self._cur = 1, 1

    @classmethod
    def at(cls, data: dict[str, Any] | None, when: datetime | float, horizon_days: int) -> Profile:
        """The profile as of ``when`` (a datetime, or POSIX seconds such as ``ctx.timestamp``)."""
        seconds = when if isinstance(when, float | int) else when.timestamp()
        day = int(seconds // _SECONDS_PER_DAY)
        return cls(data or {}, _period(day, horizon_days))

    def count(self, feature: str, value: str | None) -> int:
        if value is None:
            return 0
        entry = self._features.get(feature, _NONE).get(value)
        if entry is None:
            return 0
        return entry[0] * self._prev + entry[1] * self._cur

    def total(self, feature: str) -> int:
        """Sum of a feature's counts: kept by :func:`learn` in ``"t"``, so reading it costs O(1)."""
        total = self.data.get("t", {}).get(feature)
        if total is None:
            return 0
        return total[0] * self._prev + total[1] * self._cur

    @property
    def logins(self) -> int:
        """Successful logins inside the horizon."""
        n = self.data.get("n", [0, 0])
        return n[0] * self._prev + n[1] * self._cur

    @property
    def lifetime_logins(self) -> int:
        """Successful logins ever learned (at least those inside the horizon): an account that signs in a few
        times a year is not a new one (red team, round twenty-eight: a copy of such a customer's PC was
        exempt from every device finding)."""
        return max(self.logins, int(self.data.get("life", 0)))

    @property
    def last(self) -> dict[str, Any]:
        """The last successful login: time (epoch seconds), place, network and device."""
        return self.data.get("last", {})

    @property
    def fingerprint(self) -> dict[str, Any]:
        return self.data.get("acct", {})

    def hour_share(self, hour: int, spread: int = 1) -> float:
        """Share of past logins within ``spread`` hours of ``hour`` (0..1)."""
        total = self.total("hour")
        if not total:
            return 0.0
        counts = self._features.get("hour")
        if not counts:
            return 0.0
        near = 0
        for d in range(-spread, spread + 1):
            entry = counts.get(_HOURS[(hour + d) % 24])
            if entry is not None:
                near += entry[0] * self._prev + entry[1] * self._cur
        return near / total


def learn(data: dict[str, Any] | None, ctx: LoginContext, *, horizon_days: int) -> dict[str, Any]:
    """Add a successful login to a profile dict and return it (the dict is updated in place)."""
    data = data if data is not None else {}
    day = int(ctx.timestamp // _SECONDS_PER_DAY)
    period = _period(day, horizon_days)
    stored = data.get("p")
    features: dict[str, dict[str, list[int]]] = data.setdefault("f", {})
    # Per-feature sums of the counts (previous, current period), kept in step with "f".
    totals: dict[str, list[int]] = data.setdefault("t", {})
    n = data.setdefault("n", [0, 0])
    if stored is None or period >= stored + 2:
        features.clear()
        totals.clear()
        n[:] = [0, 0]
    elif period == stored + 1:
        n[:] = [n[1], 0]
        for counts in totals.values():
            counts[0], counts[1] = counts[1], 0
        for seen in features.values():
            for key in [k for k, e in seen.items() if not e[1]]:
                del seen[key]
            for counts in seen.values():
                counts[0], counts[1] = counts[1], 0
    elif period < stored:
        period = stored  # an out-of-order older login counts in the current period
    data["p"] = period
    n[1] += 1
    for feature, value in ctx.features.items():
        if value is None:
            continue
        values = features.get(feature)
        if values is None:
            values = features[feature] = {}
        total = totals.get(feature)
        if total is None:
            total = totals[feature] = [0, 0]
        entry = values.get(value)
        if entry is None:
            if len(values) >= MAX_VALUES:
                # The least recently seen value goes (the first of them in the dict's order): the same
                # choice as min(values, key=last_seen), without a Python call per value.
                days = [e[2] for e in values.values()]
                evicted = values.pop(list(values)[days.index(min(days))])
                total[0] -= evicted[0]
                total[1] -= evicted[1]
            entry = values[value] = [0, 0, day]
        entry[1] += 1
        entry[2] = day
        total[1] += 1
    data["life"] = int(data.get("life", 0)) + 1
    geo = ctx.geo
    data["last"] = {
        "t": ctx.timestamp,
        "lat": geo.latitude,
        "lon": geo.longitude,
        "acc": geo.accuracy_km,
        "asn": geo.asn,
        "cc": geo.country,
        "dev": ctx.device_hash[:20] if ctx.device_hash else None,
        # Anonymising networks move their exits around: never use them as an anchor for travel speed.
        "anon": geo.anonymous_vpn or geo.tor_exit or geo.public_proxy,
    }
    if ctx.account:
        data["acct"] = dict(ctx.account)
    dev = ctx.features["dev"]
    if dev:
        devices: dict[str, list[Any]] = data.setdefault("dv", {})
        if dev not in devices and len(devices) >= MAX_DEVICES:
            del devices[min(devices, key=lambda key: devices[key][0])]
        client = ctx.client
        devices[dev] = [
            ctx.timestamp,
            client.browser,
            major_version(client.browser_version),
            client.os,
            client.device_type,
            geo.latitude,
            geo.longitude,
            geo.accuracy_km,
        ]
    return data


def major_version(version: str) -> int:
    """The leading number of a parsed version ("131" -> 131); -1 when there is none."""
    head = version.split(".", 1)[0]
    return int(head) if head.isascii() and head.isdigit() else -1


class DeviceMemory(NamedTuple):
    """The last successful use of one device cookie, as :func:`learn` keeps it in ``"dv"``."""

    t: float
    browser: str
    major: int
    os: str
    dtype: str
    lat: float | None
    lon: float | None
    acc: int | None


def device_memory(profile: Profile, dev: str | None) -> DeviceMemory | None:
    """What the profile remembers of device ``dev`` (the cookie's hash prefix, ``features["dev"]``)."""
    if not dev:
        return None
    entry = profile.data.get("dv", _NONE).get(dev)
    return DeviceMemory(*entry) if entry is not None and len(entry) == 8 else None


def device_city_count(profile: Profile, dev: str | None) -> int | None:
    """How many cities the profile has seen device ``dev`` in (its ``"dcity"`` pairs inside the horizon;
    a place GeoIP could not name is not a city), or ``None`` when that is not known for sure.

    The pairs are bounded like every feature (least recently seen evicted), so this reads a few dozen keys;
    while the table is full, one of this device's pairs may have been evicted, and the count is ``None``.
    """
    if not dev:
        return 0
    pairs = profile._features.get("dcity", _NONE)
    if len(pairs) >= MAX_VALUES:
        return None
    prefix, unknown = f"{dev}|", f"{dev}|{UNKNOWN}"
    return sum(
        1 for key in pairs if key.startswith(prefix) and key != unknown and profile.count("dcity", key)
    )


def population_keys(ctx: LoginContext) -> list[str]:
    """The population-count keys a login needs: each hierarchy level's value, total and distinct count."""
    keys = list(ctx.population_value_keys.values())
    keys += [f"#{feature}" for feature in POPULATION_FEATURES]
    keys += [f"~{feature}" for feature in POPULATION_FEATURES]
    keys.append("#users")
    return keys
