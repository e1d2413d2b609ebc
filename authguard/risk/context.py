"""Request context: everything the risk engine knows about where a login comes from.

All I/O of the risk engine that concerns the request itself happens here: the client IP (behind trusted
proxies only), the parsed user agent, the device cookie, and geolocation from MaxMind databases. Every
lookup degrades to "unknown" fields on missing, corrupt or unparsable input; it never raises.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import ipaddress
import logging
import os
import re
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.core import signing
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac

from authguard.conf import app_settings
from authguard.risk.profile import (
    POPULATION_FEATURES,
    client_feature_values,
    feature_values,
    geo_feature_values,
)
from authguard.sessions import device_binding

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
    #: What Device Bound Session Credentials say of the device cookie
    #: (:func:`authguard.sessions.dbsc.device_binding_state`): ``unbound``, ``bound_ok``, or
    #: ``bound_missing_proof``
    #: (a bound device's cookie presented without its proof: copied off the device).
    dbsc: str = "unbound"

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
        """The profile features of this login (:func:`authguard.risk.profile.feature_values`), computed
        once."""
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
#
# The databases are never memory-mapped where an operator writes them: ``cp`` over a live file truncates it
# in place, and a truncated mapping kills the process with SIGBUS on its next lookup. Each database is first
# copied into a private snapshot folder (only this user can write there; files are never rewritten, only
# created and unlinked) and the snapshot is mapped; the C reader keeps its speed and every worker of the
# machine shares one snapshot per database version. Without a usable snapshot folder the database is read
# into memory instead (safe, about 6x slower per uncached lookup).
#
# The files are checked for a replacement at most every ``AUTHGUARD_GEOIP_RECHECK_SECONDS`` (one ``open`` +
# ``fstat`` per database, never per lookup). A new version is validated before it serves; a file that cannot
# be read is logged once per change and the last good copy keeps serving; a deleted file is no longer used.

_CITY_FILES = ("GeoIP2-City.mmdb", "GeoLite2-City.mmdb")
_ASN_FILES = ("GeoLite2-ASN.mmdb", "GeoIP2-ISP.mmdb")
_ANON_FILES = ("GeoIP2-Anonymous-IP.mmdb",)

#: kind -> (file names in order of preference, words one of which the database type must contain).
GEOIP_DATABASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "city": (_CITY_FILES, ("City",)),
    "asn": (_ASN_FILES, ("ASN", "ISP")),
    "anonymous": (_ANON_FILES, ("Anonymous-IP",)),
}
#: Databases without which a deployment is degraded (the Anonymous-IP database is a paid option).
REQUIRED_GEOIP_DATABASES = ("city", "asn")
#: Default seconds between two checks of the files for a replacement.
DEFAULT_GEOIP_RECHECK_SECONDS = 30.0
#: A snapshot temp file older than this was left by a crashed copy and is removed.
_STALE_TEMP_SECONDS = 3600.0
#: A snapshot copied longer ago than this is removed by the next load (whatever file it copies): unlinking
#: never harms a process that maps it, and one about to open it copies again.
_STALE_SNAPSHOT_SECONDS = 86400.0
#: Addresses looked up to validate a new database: its search tree must be walkable to real records.
_PROBE_ADDRESSES = ("1.1.1.1", "8.8.8.8", "203.0.113.1", "2001:db8::1", "2400:4000::1")


def _geoip_recheck_seconds() -> float:
    # Read on every check, so tests and operators can change it without a restart.
    from django.conf import settings

    value = getattr(settings, "AUTHGUARD_GEOIP_RECHECK_SECONDS", DEFAULT_GEOIP_RECHECK_SECONDS)
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return DEFAULT_GEOIP_RECHECK_SECONDS


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


@dataclass(frozen=True)
class GeoDatabaseStatus:
    """What one GeoIP database of a folder is doing in this process (the console and the system check).

    ``ok`` is false when the file is missing or cannot be read; ``serving`` says whether lookups still use
    a copy (the last good one, loaded at ``loaded_at``). ``built_at`` is the build date the database
    itself declares (its ``build_epoch`` metadata), so ``age_days`` is the age of the data, not of the file.
    """

    kind: str
    path: str | None
    ok: bool
    error: str
    serving: bool
    loaded_at: datetime | None
    built_at: datetime | None
    database_type: str | None

    @property
    def age_days(self) -> float | None:
        """Days since the database was built (None when no copy is loaded)."""
        if self.built_at is None:
            return None
        return (timezone.now() - self.built_at).total_seconds() / 86400


class GeoFileError(Exception):
    """A GeoIP database file cannot be used (missing, truncated, corrupt, of the wrong type)."""


class _FileChanged(Exception):
    """The file changed while it was being copied (a writer is at work): try again at the next check."""


_snapshot_warned: set[str] = set()


def geoip_snapshot_dir() -> str | None:
    """The private folder database snapshots are mapped from, or None when there is no safe one.

    ``AUTHGUARD_GEOIP_SNAPSHOT_DIR`` or ``<tmp>/authguard-geoip-<uid>``. SECURITY: it must be a real
    folder owned by this user and writable by nobody else, or another local user could swap a snapshot.
    """
    from django.conf import settings

    getuid = getattr(os, "getuid", None)
    if getuid is None:  # not POSIX: no ownership to check; read databases into memory instead
        return None
    configured = getattr(settings, "AUTHGUARD_GEOIP_SNAPSHOT_DIR", None)
    import tempfile

    folder = (
        str(configured) if configured else os.path.join(tempfile.gettempdir(), f"authguard-geoip-{getuid()}")
    )
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError as error:
        problem = str(error)
    else:
        if not stat.S_ISDIR(st.st_mode):
            problem = "not a folder (or a symbolic link)"
        elif st.st_uid != getuid():
            problem = "owned by another user"
        elif st.st_mode & 0o022:
            problem = "writable by other users"
        else:
            return folder
    if folder not in _snapshot_warned:
        _snapshot_warned.add(folder)
        logger.warning(
            "authguard: GeoIP snapshot folder %s is unusable (%s); databases are read into memory instead "
            "(safe, slower uncached lookups). Set AUTHGUARD_GEOIP_SNAPSHOT_DIR to a private folder.",
            folder,
            problem,
        )
    return None


class _Database:
    """One kind of database (city, ASN, anonymous) of a folder: the reader serving it and its file's state."""

    def __init__(self, folder: str, kind: str) -> None:
        self.kind = kind
        self.names, self.types = GEOIP_DATABASES[kind]
        self.candidates = tuple(os.path.join(folder, name) for name in self.names)
        self.reader: Any = None
        self.source: tuple[str, tuple[int, int, int, int]] | None = None  # (path, identity) being served
        self.failed: tuple[str, tuple[int, int, int, int]] | None = None  # last (path, identity) refused
        self.path: str | None = None
        self.error = ""
        self.loaded_at: datetime | None = None
        self.built_at: datetime | None = None
        self.database_type: str | None = None
        self.snapshot: str | None = None

    def status(self) -> GeoDatabaseStatus:
        return GeoDatabaseStatus(
            kind=self.kind,
            path=self.path or self.candidates[-1],
            ok=not self.error,
            error=self.error,
            serving=self.reader is not None,
            loaded_at=self.loaded_at,
            built_at=self.built_at,
            database_type=self.database_type,
        )

    def check(self) -> bool:
        """Look at the file once; load a new version. True when the reader serving lookups changed."""
        handle = None
        for candidate in self.candidates:
            try:
                handle = open(candidate, "rb")  # noqa: SIM115 - closed below, on every path
            except FileNotFoundError:
                continue
            except OSError as error:
                return self._refuse(candidate, None, f"cannot be opened: {error}")
            break
        if handle is None:
            return self._missing()
        with handle:
            st = os.fstat(handle.fileno())
            identity = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            key = (handle.name, identity)
            if key == self.source or key == self.failed:
                return False  # unchanged since it was loaded, or since it was refused (logged then)
            try:
                reader, snapshot = self._open(handle, st)
            except _FileChanged:
                logger.info(
                    "authguard: GeoIP database %s is being rewritten; checking again later", handle.name
                )
                return False
            except GeoFileError as error:
                return self._refuse(handle.name, identity, str(error))
        return self._serve(key, reader, snapshot)

    def _open(self, handle: Any, st: os.stat_result) -> tuple[Any, str | None]:
        """A validated reader on a private copy of ``handle``'s file, and the snapshot's path if any."""
        import geoip2.database
        import maxminddb

        folder = geoip_snapshot_dir()
        if folder is not None:
            try:
                return self._open_snapshot(handle, st, folder)
            except OSError as error:  # the snapshot folder is full or gone: memory still works
                logger.warning(
                    "authguard: cannot copy GeoIP database %s into %s (%s); reading it into memory",
                    handle.name,
                    folder,
                    error,
                )
        handle.seek(0)
        data = handle.read()
        _unchanged(handle, st, len(data))
        try:
            reader = geoip2.database.Reader(io.BytesIO(data), mode=maxminddb.MODE_FD)
        except Exception as error:
            raise GeoFileError(_describe(error)) from None
        self._validate(reader)
        return reader, None

    def _open_snapshot(self, handle: Any, st: os.stat_result, folder: str) -> tuple[Any, str]:
        import geoip2.database
        import maxminddb

        # One name per file and version: "<kind>-<hash of its path>-<dev>-<inode>-<mtime>-<size>.mmdb".
        source = hashlib.sha256(os.path.realpath(handle.name).encode()).hexdigest()[:16]
        name = f"{self.kind}-{source}-{st.st_dev}-{st.st_ino}-{st.st_mtime_ns}-{st.st_size}.mmdb"
        snapshot = os.path.join(folder, name)
        for attempt in range(2):
            try:
                if attempt or os.path.getsize(snapshot) != st.st_size:
                    raise FileNotFoundError(snapshot)
            except FileNotFoundError:
                _copy(handle, st, folder, snapshot)
            try:
                # MODE_AUTO: libmaxminddb's C reader over mmap when installed (about 6x faster than the
                # pure-Python decoder). SECURITY: the snapshot is ours and never rewritten, so no SIGBUS.
                reader = geoip2.database.Reader(snapshot, mode=maxminddb.MODE_AUTO)
            except FileNotFoundError:
                continue  # another process pruned it between our copy and our open: copy again
            except Exception as error:
                _unlink(snapshot)
                raise GeoFileError(_describe(error)) from None
            try:
                self._validate(reader)
            except GeoFileError:
                _unlink(snapshot)
                raise
            return reader, snapshot
        raise GeoFileError("its private copy kept disappearing")

    def _validate(self, reader: Any) -> None:
        """Refuse a database of the wrong type or whose search tree or records cannot be read."""
        from geoip2.errors import AddressNotFoundError
        from maxminddb import InvalidDatabaseError

        meta = reader.metadata()
        database_type = str(getattr(meta, "database_type", "") or "")
        if not any(word in database_type for word in self.types):
            raise GeoFileError(f"it is a {database_type or 'unknown'} database, not {'/'.join(self.types)}")
        if not getattr(meta, "node_count", 0):
            raise GeoFileError("its search tree is empty")
        method = {"city": reader.city, "asn": reader.asn, "anonymous": reader.anonymous_ip}[self.kind]
        for address in _PROBE_ADDRESSES:
            try:
                method(address)
            except (AddressNotFoundError, ValueError):
                continue  # not in the database, or an IPv6 address in an IPv4 database: fine
            except InvalidDatabaseError as error:
                raise GeoFileError(f"its data is corrupt ({error})") from None
            except Exception as error:  # a decoder bug on garbage: corrupt all the same
                raise GeoFileError(f"its data cannot be decoded ({_describe(error)})") from None

    def _serve(self, key: tuple[str, tuple[int, int, int, int]], reader: Any, snapshot: str | None) -> bool:
        meta = reader.metadata()
        epoch = getattr(meta, "build_epoch", None)
        # The old reader is not closed: a lookup of another thread may still be using it; the garbage
        # collector unmaps it once nothing refers to it (its snapshot file is already unlinked by then).
        reloaded = self.source is not None or bool(self.error)
        self.reader = reader
        self.source, self.failed, self.path, self.error = key, None, key[0], ""
        self.loaded_at = timezone.now()
        self.built_at = datetime.fromtimestamp(epoch, tz=dt_timezone.utc) if epoch else None
        self.database_type = str(getattr(meta, "database_type", "") or "") or None
        previous, self.snapshot = self.snapshot, snapshot
        if snapshot:
            _prune_snapshots(snapshot)
        if previous and previous != snapshot:
            _unlink(previous)
        # A reload (or a recovery) is news; the first load of every worker is not.
        logger.log(
            logging.INFO if reloaded else logging.DEBUG,
            "authguard: GeoIP %s database loaded from %s (%s, built %s)",
            self.kind,
            key[0],
            self.database_type,
            self.built_at.date().isoformat() if self.built_at else "at an unknown date",
        )
        return True

    def _refuse(self, path: str, identity: tuple[int, int, int, int] | None, problem: str) -> bool:
        """Log (once per version of the file) that ``path`` cannot be used; keep the last good reader."""
        key = (path, identity) if identity is not None else None
        message = f"{path} cannot be read: {problem}"
        if key == self.failed and self.error == message:
            return False  # said already
        self.failed, self.path, self.error = key, path, message
        if self.reader is not None:
            logger.error(
                "authguard: GeoIP %s database %s; keeping the copy loaded at %s until a good file "
                "replaces it",
                self.kind,
                message,
                self.loaded_at.isoformat() if self.loaded_at else "?",
            )
        else:
            logger.error(
                "authguard: GeoIP %s database %s; its lookups answer 'unknown' (logins score as from an "
                "unknown network and step up more often) until a good file replaces it",
                self.kind,
                message,
            )
        return False

    def _missing(self) -> bool:
        """No file: stop serving (the operator removed it) and say so once."""
        message = f"missing: none of {', '.join(self.candidates)} exists"
        if self.error == message:
            return False
        changed = self.reader is not None
        was_loaded = changed or self.source is not None
        self.reader, self.source, self.failed, self.path, self.error = None, None, None, None, message
        self.loaded_at = self.built_at = self.database_type = None
        if self.snapshot:
            _unlink(self.snapshot)
            self.snapshot = None
        # The Anonymous-IP database is a paid option: its absence at start is normal, not an alarm.
        quiet = self.kind not in REQUIRED_GEOIP_DATABASES and not was_loaded
        (logger.info if quiet else logger.warning)(
            "authguard: GeoIP %s database %s; its lookups answer 'unknown'%s",
            self.kind,
            message,
            " (it was removed while in use)" if was_loaded else "",
        )
        return changed


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _unchanged(handle: Any, before: os.stat_result, copied: int) -> None:
    """Raise :class:`_FileChanged` when the file was written to while it was read."""
    after = os.fstat(handle.fileno())
    if copied != before.st_size or (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
        raise _FileChanged(handle.name)


def _copy(handle: Any, st: os.stat_result, folder: str, snapshot: str) -> None:
    """Copy the open file into ``snapshot`` atomically (a temp file renamed), checking it did not change."""
    import tempfile

    handle.seek(0)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".mmdb")
    try:
        copied = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := handle.read(1 << 20):
                out.write(chunk)
                copied += len(chunk)
        _unchanged(handle, st, copied)
        os.replace(temp, snapshot)  # SECURITY: never rewrite a snapshot in place; others may map it
    except BaseException:
        _unlink(temp)
        raise


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _prune_snapshots(keep: str) -> None:
    """Remove the other snapshots of ``keep``'s file (a mapped one stays valid until unmapped: unlinking
    is not truncating) and temp files a crashed copy left behind."""
    folder, name = os.path.split(keep)
    prefix = "-".join(name.split("-")[:2]) + "-"  # "<kind>-<hash of the file's path>-": every version
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.path == keep:
            continue
        if entry.name.startswith(prefix):
            _unlink(entry.path)
            continue
        limit = _STALE_TEMP_SECONDS if entry.name.startswith(".tmp-") else _STALE_SNAPSHOT_SECONDS
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime > limit:
                _unlink(entry.path)


class GeoVersion:
    """One version of a folder's databases: the readers serving lookups and the block cache of their answers.

    Never changed once built: a reload builds a new one and swaps it in as a whole, so a lookup always
    answers from one consistent set of databases, and the process cache (keyed by the version) never
    serves an answer of a database that was since replaced.
    """

    __slots__ = ("_blocks", "anonymous", "asn", "city", "number")

    def __init__(self, city: Any = None, asn: Any = None, anonymous: Any = None, *, number: int = 0) -> None:
        self.city = city
        self.asn = asn
        self.anonymous = anonymous
        self.number = number
        self._blocks: dict[str | None, Geo] = {}  # /24 or /48 -> Geo, for blocks one record covers

    def lookup(self, ip: str | None) -> Geo:
        """Geolocate ``ip``; unknown fields stay None/False, and no lookup error escapes.

        Addresses of one /24 (IPv4) or /48 (IPv6) block usually share every database's record; when the
        databases say so (each record's network, or the not-found network, covers the whole block), one
        lookup serves the block. This is exact, not an approximation: a block split between records is
        looked up address by address.
        """
        if ip is None or not is_public_ip(ip):
            return Geo()
        blocks = self._blocks
        block = ip_prefix(ip)
        geo = blocks.get(block)
        if geo is not None:
            return geo
        city, asn, anonymous = self.city, self.asn, self.anonymous
        block_bits = 48 if ":" in ip else 24
        values: dict[str, Any] = {}
        whole_block = True
        if city is not None:
            record, bits = self._find(city.city, ip)
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
        if asn is not None:
            record, bits = self._find(asn.asn, ip)
            whole_block = whole_block and bits is not None and bits <= block_bits
            if record is not None:
                values.update(
                    asn=record.autonomous_system_number, as_org=record.autonomous_system_organization
                )
        if anonymous is not None:
            record, bits = self._find(anonymous.anonymous_ip, ip)
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
            if len(blocks) >= MAX_CACHED_BLOCKS:
                blocks.clear()  # crude but bounded; a full cache refills from the next lookups
            blocks[block] = geo
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


class GeoReaders:
    """One ``geoip2`` reader per database per process, opened from a folder and reopened when replaced.

    :meth:`lookup` never touches the file system; :meth:`maybe_refresh` (called by :func:`geolocate`)
    checks the files at most every ``AUTHGUARD_GEOIP_RECHECK_SECONDS``.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        #: What lookups use now; replaced as a whole when a database changes.
        self.current = GeoVersion()
        self._databases = {kind: _Database(path, kind) for kind in GEOIP_DATABASES} if path else {}
        self._lock = threading.Lock()
        self._next_check = 0.0
        self._last_check = 0.0
        self.refresh()

    # The readers and block cache in use, under the names they always had.
    city = property(lambda self: self.current.city)
    asn = property(lambda self: self.current.asn)
    anonymous = property(lambda self: self.current.anonymous)
    _blocks = property(lambda self: self.current._blocks)

    def lookup(self, ip: str | None) -> Geo:
        """Geolocate ``ip`` with the databases in use (see :meth:`GeoVersion.lookup`)."""
        return self.current.lookup(ip)

    def maybe_refresh(self) -> None:
        """Check the files if the recheck interval has passed (or the clock went back)."""
        if not self._last_check <= time.time() < self._next_check:
            self.refresh()

    def refresh(self) -> bool:
        """Check every database file now and load new versions; True when any reader changed.

        Never raises: a file that cannot be used is logged (once per version) and the last good copy serves.
        """
        if not self._lock.acquire(blocking=False):
            return False  # another thread is checking; lookups go on with the current readers
        try:
            now = time.time()
            self._last_check, self._next_check = now, now + _geoip_recheck_seconds()
            changed = False
            for database in self._databases.values():
                try:
                    changed = database.check() or changed
                except Exception:  # SECURITY: a bug here must not fail logins; lookups stay as they were
                    logger.exception("authguard: checking the GeoIP %s database failed", database.kind)
            if changed:
                readers = {kind: database.reader for kind, database in self._databases.items()}
                self.current = GeoVersion(**readers, number=self.current.number + 1)
                # Answers of the old version are unreachable already (the cache is keyed by version);
                # dropping them frees the old readers' memory now.
                _cached_lookup.cache_clear()
            return changed
        finally:
            self._lock.release()

    def status(self) -> list[GeoDatabaseStatus]:
        """Per database: path, ok/error, whether a copy serves, when it was loaded and built."""
        return [database.status() for database in self._databases.values()]


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
    if setting in ("AUTHGUARD_GEOIP_PATH", "GEOIP_PATH", "AUTHGUARD_GEOIP_SNAPSHOT_DIR"):
        _readers.clear()
        _cached_lookup.cache_clear()


setting_changed.connect(_reset_readers)


@functools.lru_cache(maxsize=65536)
def _cached_lookup(version: GeoVersion, ip: str | None) -> Geo:
    # Keyed by the databases' version: an answer from a database that was since replaced is never hit.
    return version.lookup(ip)


def geolocate(ip: str | None, *, path: str | None = None) -> Geo:
    """Geolocate ``ip`` with the configured databases (cached per process, folder and database version)."""
    readers = geo_readers(path)
    # One clock read per call (no system call); the files are looked at once per recheck interval.
    if not readers._last_check <= time.time() < readers._next_check:
        readers.refresh()
    return _cached_lookup(readers.current, ip)


def geoip_status(path: str | None = None) -> list[GeoDatabaseStatus]:
    """The state of each GeoIP database of ``path`` (default: ``AUTHGUARD_GEOIP_PATH``) in this process.

    Empty when no folder is configured. Checks the files first if the recheck interval has passed.
    """
    if path is None:
        path = app_settings.GEOIP_PATH
    if not path:
        return []
    readers = geo_readers(path)
    readers.maybe_refresh()
    return readers.status()


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
    hashed = device_hash(device_id)
    return LoginContext(
        time=now or timezone.now(),
        username=(username or "")[:150],
        user_id=getattr(user, "pk", None),
        ip=ip,
        geo=geolocate(ip),
        client=client_info(request.META.get("HTTP_USER_AGENT")),
        device_hash=hashed,
        account=account_facts(user) if user is not None else {},
        dbsc=_dbsc_state(request, hashed),
    )


def _dbsc_state(request: HttpRequest, hashed: str | None) -> str:
    """The device cookie's DBSC binding state; no query unless DBSC is on and a cookie was presented."""
    try:
        return device_binding.device_binding_state(request, device_cookie_hash=hashed)
    except Exception:
        # SECURITY: a binding that cannot be read is treated as a missing proof (the login is stepped up).
        logger.exception("authguard: DBSC binding state unavailable")
        return "bound_missing_proof" if device_binding.enabled() and hashed else "unbound"
