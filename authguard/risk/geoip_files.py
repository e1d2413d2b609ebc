"""GeoIP database files: finding, copying, validating and reloading each MaxMind database of a folder.

:mod:`authguard.risk.geoip` asks each :class:`GeoDatabase` of a folder to look at its file (at most every
``AUTHGUARD_GEOIP_RECHECK_SECONDS``) and serves lookups from the readers they hold.

The databases are never memory-mapped where an operator writes them: ``cp`` over a live file truncates it
in place, and a truncated mapping kills the process with SIGBUS on its next lookup. Each database is first
copied into a private snapshot folder (only this user can write there; files are never rewritten, only
created and unlinked) and the snapshot is mapped; the C reader keeps its speed and every worker of the
machine shares one snapshot per database version. Without a usable snapshot folder the database is read
into memory instead (safe, about 6x slower per uncached lookup).

The files are checked for a replacement at most every ``AUTHGUARD_GEOIP_RECHECK_SECONDS`` (one ``open`` +
``fstat`` per database, never per lookup). A new version is validated before it serves; a file that cannot
be read is logged once per change and the last good copy keeps serving; a deleted file is no longer used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

import geoip2.database
import maxminddb
from django.conf import settings
from django.utils import timezone
from geoip2.errors import AddressNotFoundError
from maxminddb import InvalidDatabaseError

logger = logging.getLogger(__name__)


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
#: A snapshot temp file older than this was left by a crashed copy and is removed.
_STALE_TEMP_SECONDS = 3600.0
#: A snapshot copied longer ago than this is removed by the next load (whatever file it copies): unlinking
#: never harms a process that maps it, and one about to open it copies again.
_STALE_SNAPSHOT_SECONDS = 86400.0
#: Addresses looked up to validate a new database: its search tree must be walkable to real records.
_PROBE_ADDRESSES = ("1.1.1.1", "8.8.8.8", "203.0.113.1", "2001:db8::1", "2400:4000::1")


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
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # not POSIX: no ownership to check; read databases into memory instead
        return None
    configured = getattr(settings, "AUTHGUARD_GEOIP_SNAPSHOT_DIR", None)
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


class GeoDatabase:
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
