"""Geolocation: what the MaxMind databases say about an address, with a per-process cache.

:func:`geolocate` serves lookups from the readers of the configured folder (``AUTHGUARD_GEOIP_PATH``); the
files themselves (snapshots, validation, replacement) are handled by :mod:`authguard.risk.geoip_files`.
Every lookup degrades to "unknown" fields on a missing or unreadable database; it never raises.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from geoip2.errors import AddressNotFoundError

from authguard.conf import app_settings
from authguard.risk.addresses import ip_prefix, is_public_ip
from authguard.risk.geoip_files import GEOIP_DATABASES, GeoDatabase, GeoDatabaseStatus
from authguard.risk.profile import computed_once, geo_feature_values

logger = logging.getLogger(__name__)


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

    @computed_once
    def feature_values(self) -> tuple[str, str, str]:
        """ASN, country and city as the profile counts them (kept: a Geo is cached per address)."""
        return geo_feature_values(self)


#: Default seconds between two checks of the files for a replacement.
DEFAULT_GEOIP_RECHECK_SECONDS = 30.0


def _geoip_recheck_seconds() -> float:
    # Read on every check, so tests and operators can change it without a restart.
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
        self._databases = {kind: GeoDatabase(path, kind) for kind in GEOIP_DATABASES} if path else {}
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
