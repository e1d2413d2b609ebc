"""Request context: everything the risk engine knows about where a login comes from.

All I/O of the risk engine that concerns the request itself happens here: the client IP (behind trusted
proxies only), the parsed user agent, the device cookie, and geolocation from MaxMind databases. Every
lookup degrades to "unknown" fields on missing, corrupt or unparsable input; it never raises.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core import signing
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .conf import app_settings
from .profile import POPULATION_FEATURES, client_feature_values, feature_values, geo_feature_values

logger = logging.getLogger(__name__)

#: Longest user agent kept; longer ones are cut (a 10 KB header is an attack, not a browser).
MAX_USER_AGENT = 512
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_DEVICE_COOKIE_SALT = "authguard.device-cookie"


class _computed_once:  # noqa: N801 - used as a decorator, like property
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


@dataclass(frozen=True)
class Geo:
    """What the GeoIP databases say about an address; every field may be unknown (None/False)."""

    country: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_km: int | None = None
    time_zone: str | None = None
    asn: int | None = None
    as_org: str | None = None
    anonymous_vpn: bool = False
    hosting: bool = False
    public_proxy: bool = False
    residential_proxy: bool = False
    tor_exit: bool = False

    @property
    def place(self) -> str:
        """A short human description such as ``"Tokyo, JP"``."""
        return ", ".join(part for part in (self.city, self.country) if part) or "unknown"

    @_computed_once
    def feature_values(self) -> tuple[str, str, str]:
        """ASN, country and city as the profile counts them (kept: a Geo is cached per address)."""
        return geo_feature_values(self)


@dataclass(frozen=True)
class ClientInfo:
    """The parsed user agent."""

    raw: str
    browser: str
    browser_version: str
    os: str
    os_version: str
    device_type: str  # desktop, mobile, tablet, bot or other
    automation: bool
    #: The browser version at the granularity that tells two builds apart as a person would: the major
    #: version, plus the minor one for browsers versioned with their OS (Safari: 18.1 and 18.5 are as
    #: different as Chrome 130 and 131). Patch builds never count ("131.0.6778.86" is "131").
    browser_release: str = ""

    @property
    def summary(self) -> str:
        browser = f"{self.browser} {self.browser_version}".strip()
        os_name = f"{self.os} {self.os_version}".strip()
        return f"{browser} on {os_name}" if os_name and self.os != "Other" else browser

    @_computed_once
    def feature_values(self) -> tuple[str, str, str, str]:
        """Key, browser, OS and device type as the profile counts them (kept: parsing is cached)."""
        return client_feature_values(self)


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

    @_computed_once
    def timestamp(self) -> float:
        """``time`` as POSIX seconds, computed once (counters, profiles and several signals need it)."""
        return self.time.timestamp()

    @_computed_once
    def prefix(self) -> str | None:
        """The /24 (IPv4) or /48 (IPv6) network of the address: an ISP customer's neighbourhood."""
        return ip_prefix(self.ip)

    @_computed_once
    def population_value_keys(self) -> dict[str, str]:
        """``{feature: "feature:value"}``: the population-count key of each hierarchy level's value."""
        features = self.features
        return {feature: f"{feature}:{features[feature]}" for feature in POPULATION_FEATURES}

    @_computed_once
    def features(self) -> dict[str, str | None]:
        """The profile features of this login (:func:`authguard.profile.feature_values`), computed once."""
        return feature_values(self)


# -- client IP ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _proxy_networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


@functools.lru_cache(maxsize=65536)
def normalize_ip(value: str | None) -> str | None:
    """Return the canonical form of an IP address, or None when it is not one."""
    if not value:
        return None
    value = value.strip()
    try:
        if ":" not in value:
            # A valid dotted quad is its own canonical form (ipaddress refuses leading zeros).
            ipaddress.IPv4Address(value)
            return value
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    mapped = address.ipv4_mapped
    return str(mapped if mapped is not None else address)


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address under the trusted-proxy rule of CONTRACTS section 2.

    ``X-Forwarded-For`` is read only when the direct peer is a trusted proxy; then the client is the
    right-most address that is not itself a trusted proxy.
    """
    remote = normalize_ip(request.META.get("REMOTE_ADDR"))
    proxies = _proxy_networks(tuple(app_settings.TRUSTED_PROXIES))
    # SECURITY: an untrusted peer's X-Forwarded-For is ignored entirely (spoofing it changes nothing).
    if remote is None or not proxies or not _in_networks(remote, proxies):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = normalize_ip(hop)
        if address is None:
            # A garbage hop appended by the client: stop at the last address a trusted proxy vouched for.
            return remote
        if not _in_networks(address, proxies):
            return address
        remote = address
    return remote


def _in_networks(address: str, networks: tuple[Any, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == net.version and ip in net for net in networks)


def _address_int(ip: str) -> tuple[int, int]:
    """(version, integer value) of a normalised address; ``inet_pton`` is C, ``ipaddress`` is not."""
    family, version = (socket.AF_INET6, 6) if ":" in ip else (socket.AF_INET, 4)
    try:
        return version, int.from_bytes(socket.inet_pton(family, ip), "big")
    except OSError:  # a scoped IPv6 address ("fe80::1%eth0") is not for inet_pton
        return version, int(ipaddress.ip_address(ip))


@functools.lru_cache(maxsize=65536)
def ip_prefix(ip: str | None) -> str | None:
    """The /24 or /48 network of a normalised address, as a string."""
    if ip is None:
        return None
    if ":" not in ip:  # IPv4 (normalised): cut the last octet, no parsing needed
        return ip.rsplit(".", 1)[0] + ".0/24"
    network = _address_int(ip)[1] >> 80 << 80
    return f"{ipaddress.IPv6Address(network)}/48"


#: Address space that never has a location: private, carrier-grade NAT, loopback, link-local, multicast.
#: Documentation ranges (RFC 5737, RFC 3849) are looked up, so synthetic test databases can use them.
_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


# (network, mask) as integers per IP version: a membership test is one AND and one comparison.
_LOCAL_RANGES = {
    version: tuple(
        (int(net.network_address), int(net.netmask)) for net in _LOCAL_NETWORKS if net.version == version
    )
    for version in (4, 6)
}


@functools.lru_cache(maxsize=65536)
def is_public_ip(ip: str | None) -> bool:
    """False for addresses that carry no location (private, loopback, link-local, ...)."""
    if ip is None:
        return False
    version, value = _address_int(ip)
    return not any(value & mask == network for network, mask in _LOCAL_RANGES[version])


# -- user agent --------------------------------------------------------------------------------------

_AUTOMATION = re.compile(
    r"headless|phantomjs|selenium|webdriver|puppeteer|playwright|curl/|wget/|python-requests|python-urllib|"
    r"aiohttp|httpx|go-http-client|java/|okhttp|libwww-perl|scrapy|node-fetch|axios/|postmanruntime|insomnia",
    re.IGNORECASE,
)


def sanitize_user_agent(value: str | None) -> str:
    """Cut the header to :data:`MAX_USER_AGENT` characters and drop control characters (CR/LF injection)."""
    if not value:
        return ""
    return _CONTROL_CHARS.sub("", value[: MAX_USER_AGENT * 2])[:MAX_USER_AGENT].strip()


@functools.lru_cache(maxsize=4096)
def parse_user_agent(raw: str) -> ClientInfo:
    """Parse a (sanitized) user agent with ``user-agents``. Cached: a new string costs about 0.6 ms."""
    from user_agents import parse

    if not raw:
        return ClientInfo("", "Other", "", "Other", "", "other", automation=True)
    ua = parse(raw)
    if ua.is_bot:
        device_type = "bot"
    elif ua.is_tablet:
        device_type = "tablet"
    elif ua.is_mobile:
        device_type = "mobile"
    elif ua.is_pc:
        device_type = "desktop"
    else:
        device_type = "other"
    browser_version = ".".join(str(v) for v in ua.browser.version[:1])
    release_parts = 2 if "Safari" in ua.browser.family else 1
    browser_release = ".".join(str(v) for v in ua.browser.version[:release_parts])
    os_version = ".".join(str(v) for v in ua.os.version[:1])
    automation = bool(ua.is_bot or _AUTOMATION.search(raw))
    return ClientInfo(
        raw=raw,
        browser=ua.browser.family,
        browser_version=browser_version,
        os=ua.os.family,
        os_version=os_version,
        device_type=device_type,
        automation=automation,
        browser_release=browser_release,
    )


def client_info(header: str | None) -> ClientInfo:
    """The parsed user agent of a raw ``User-Agent`` header, sanitized first (:func:`sanitize_user_agent`).

    Cached per header, so a browser seen before costs one dictionary lookup; an oversized header (an
    attack, not a browser) is sanitized every time rather than kept in the cache.
    """
    if header is not None and len(header) <= MAX_USER_AGENT:
        return _cached_client_info(header)
    return parse_user_agent(sanitize_user_agent(header))


@functools.lru_cache(maxsize=4096)
def _cached_client_info(header: str) -> ClientInfo:
    return parse_user_agent(sanitize_user_agent(header))


# -- device cookie -----------------------------------------------------------------------------------


def new_device_cookie() -> str:
    """A fresh signed device cookie value (random id, signed so forged ids are recognised)."""
    import secrets

    return signing.Signer(salt=_DEVICE_COOKIE_SALT).sign(secrets.token_urlsafe(24))


def device_id_from_cookie(value: str | None) -> str | None:
    """The device id inside a signed cookie value, or None when absent or forged."""
    if not value or len(value) > 200:
        return None
    try:
        return signing.Signer(salt=_DEVICE_COOKIE_SALT).unsign(value)
    except signing.BadSignature:
        return None


@functools.lru_cache(maxsize=65536)
def device_hash(device_id: str | None) -> str | None:
    """What the server stores of a device id: a keyed hash, so a database leak reveals no cookie."""
    if not device_id:
        return None
    return salted_hmac(_DEVICE_COOKIE_SALT, device_id, algorithm="sha256").hexdigest()


# -- geolocation -------------------------------------------------------------------------------------

_CITY_FILES = ("GeoIP2-City.mmdb", "GeoLite2-City.mmdb")
_ASN_FILES = ("GeoLite2-ASN.mmdb", "GeoIP2-ISP.mmdb")
_ANON_FILES = ("GeoIP2-Anonymous-IP.mmdb",)


def _prefix_length(holder: Any) -> int | None:
    """The prefix length of the network a geoip2 record (or AddressNotFoundError) holds for.

    geoip2 keeps it as ``_prefix_len`` and builds the public ``network`` from it by parsing a string,
    which costs more than the lookup itself; the public property is the fallback.
    """
    length = getattr(holder, "_prefix_len", None)
    if isinstance(length, int):
        return length
    network = getattr(holder, "network", None)
    return network.prefixlen if network is not None else None


#: Most /24 or /48 blocks whose location is kept per process and database folder.
MAX_CACHED_BLOCKS = 65536


class GeoReaders:
    """One ``geoip2`` reader per database per process, opened lazily from a folder."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._blocks: dict[str | None, Geo] = {}  # /24 or /48 -> Geo, for blocks one record covers
        self.city = self._open(_CITY_FILES)
        self.asn = self._open(_ASN_FILES)
        self.anonymous = self._open(_ANON_FILES)

    def _open(self, names: tuple[str, ...]) -> Any:
        if not self.path:
            return None
        import geoip2.database

        for name in names:
            full = os.path.join(self.path, name)
            if os.path.exists(full):
                try:
                    # MODE_AUTO: libmaxminddb's C reader over mmap when installed (about 10x faster
                    # than the pure-Python decoder), else the pure-Python one.
                    return geoip2.database.Reader(full, mode=0)
                except Exception:  # a corrupt file is a broken dependency, not a reason to fail logins
                    logger.warning("authguard: cannot read GeoIP database %s", full, exc_info=True)
                    return None
        return None

    def lookup(self, ip: str | None) -> Geo:
        """Geolocate ``ip``; unknown fields stay None/False, and no lookup error escapes.

        Addresses of one /24 (IPv4) or /48 (IPv6) block usually share every database's record; when the
        databases say so (each record's network, or the not-found network, covers the whole block), one
        lookup serves the block. This is exact, not an approximation: a block split between records is
        looked up address by address.
        """
        if ip is None or not is_public_ip(ip):
            return Geo()
        block = ip_prefix(ip)
        geo = self._blocks.get(block)
        if geo is not None:
            return geo
        block_bits = 48 if ":" in ip else 24
        values: dict[str, Any] = {}
        whole_block = True
        if self.city is not None:
            record, bits = self._find(self.city.city, ip)
            whole_block = whole_block and bits is not None and bits <= block_bits
            if record is not None:
                loc = record.location
                values.update(
                    country=record.country.iso_code,
                    city=record.city.name,
                    latitude=loc.latitude,
                    longitude=loc.longitude,
                    accuracy_km=loc.accuracy_radius,
                    time_zone=loc.time_zone,
                )
        if self.asn is not None:
            record, bits = self._find(self.asn.asn, ip)
            whole_block = whole_block and bits is not None and bits <= block_bits
            if record is not None:
                values.update(
                    asn=record.autonomous_system_number, as_org=record.autonomous_system_organization
                )
        if self.anonymous is not None:
            record, bits = self._find(self.anonymous.anonymous_ip, ip)
            whole_block = whole_block and bits is not None and bits <= block_bits
            if record is not None:
                values.update(
                    anonymous_vpn=bool(record.is_anonymous_vpn),
                    hosting=bool(record.is_hosting_provider),
                    public_proxy=bool(record.is_public_proxy),
                    residential_proxy=bool(getattr(record, "is_residential_proxy", False)),
                    tor_exit=bool(record.is_tor_exit_node),
                )
        geo = Geo(**values)
        if whole_block and block is not None:
            if len(self._blocks) >= MAX_CACHED_BLOCKS:
                self._blocks.clear()  # crude but bounded; a full cache refills from the next lookups
            self._blocks[block] = geo
        return geo

    @staticmethod
    def _find(method: Any, ip: str) -> tuple[Any, int | None]:
        """The record for ``ip`` (None when unknown) and the prefix length of the network it holds for
        (None when that is not known: then nothing is shared with the address's neighbours)."""
        from geoip2.errors import AddressNotFoundError

        try:
            record = method(ip)
        except AddressNotFoundError as error:
            return None, _prefix_length(error)
        except Exception:  # a corrupt tree, a wrong database type: "unknown", and never shared
            return None, None
        return record, _prefix_length(getattr(record, "traits", record))  # City keeps it in traits


_readers: dict[str | None, GeoReaders] = {}
_readers_lock = threading.Lock()


def geo_readers(path: str | None = None) -> GeoReaders:
    """The process-wide readers for ``path`` (default: ``AUTHGUARD_GEOIP_PATH``)."""
    if path is None:
        path = app_settings.GEOIP_PATH
    readers = _readers.get(path)
    if readers is None:
        with _readers_lock:
            readers = _readers.get(path)
            if readers is None:
                readers = _readers[path] = GeoReaders(path)
    return readers


def _reset_readers(*, setting: str, **kwargs: Any) -> None:
    if setting in ("AUTHGUARD_GEOIP_PATH", "GEOIP_PATH"):
        _readers.clear()


setting_changed.connect(_reset_readers)


@functools.lru_cache(maxsize=65536)
def _cached_lookup(readers: GeoReaders, ip: str | None) -> Geo:
    return readers.lookup(ip)


def geolocate(ip: str | None, *, path: str | None = None) -> Geo:
    """Geolocate ``ip`` with the configured databases (cached per process and folder)."""
    return _cached_lookup(geo_readers(path), ip)


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


def build_context(
    request: HttpRequest,
    *,
    username: str,
    user: Any = None,
    now: datetime | None = None,
) -> LoginContext:
    """Build the :class:`LoginContext` of a login attempt from the live request."""
    ip = client_ip(request)
    device_id = device_id_from_cookie(request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME))
    return LoginContext(
        time=now or timezone.now(),
        username=(username or "")[:150],
        user_id=getattr(user, "pk", None),
        ip=ip,
        geo=geolocate(ip),
        client=client_info(request.META.get("HTTP_USER_AGENT")),
        device_hash=device_hash(device_id),
        account=account_facts(user) if user is not None else {},
    )
