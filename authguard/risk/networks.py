"""Network knowledge that does not come from GeoIP: hosting ASNs, admin allow/deny lists, and the security
desk's network blocks.

GeoLite2 (the free MaxMind databases) carries no anonymity data, so authguard ships a list of the major
hosting and cloud networks. A login from a data centre is not a person at home or on a phone; phishing
kits and credential-stuffing tools run there. Operators extend the list with ``AUTHGUARD_HOSTING_ASNS``.

Network blocks (:class:`authguard.models.NetworkBlock`, issue 16) are added at run time by the console
(:mod:`authguard.console.containment`); :func:`active_blocks` is what the risk signal reads on every
login: one cache read, the database only when the cache has nothing (``BLOCKS_CACHE_SECONDS``), and each
entry carries its own end, so a cached block still expires on time.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.core.signals import setting_changed
from django.utils.translation import gettext

from authguard import clock
from authguard.conf import app_settings
from authguard.models import NetworkBlock
from authguard.resilience import NO_ANSWER, guarded_cache_call

logger = logging.getLogger(__name__)

#: Major hosting, cloud and VPS networks (ASN: operator). Sources: each operator's published ASNs.
HOSTING_ASNS: dict[int, str] = {
    14061: "DigitalOcean",
    16509: "Amazon Web Services",
    14618: "Amazon Web Services",
    8075: "Microsoft Azure",
    15169: "Google",
    396982: "Google Cloud",
    20473: "Vultr (Choopa)",
    63949: "Akamai Linode",
    16276: "OVHcloud",
    24940: "Hetzner",
    213230: "Hetzner Cloud",
    51167: "Contabo",
    45102: "Alibaba Cloud",
    37963: "Alibaba Cloud (CN)",
    132203: "Tencent Cloud",
    45090: "Tencent Cloud (CN)",
    31898: "Oracle Cloud",
    36351: "IBM Cloud (SoftLayer)",
    9009: "M247",
    60068: "Datacamp (CDN77)",
    62240: "Clouvider",
    212238: "Datacamp",
    40021: "Contabo US",
    53667: "FranTech (BuyVM)",
    35916: "MULTACOM",
    46606: "Unified Layer",
    26496: "GoDaddy",
    55286: "Server Mania",
    8100: "QuadraNet",
    7506: "GMO Internet (ConoHa)",
    9370: "Sakura Internet",
    2519: "ARTERIA (VPS)",
    4785: "xTom",
    138915: "Kaopu Cloud",
    141995: "Contabo Asia",
}


@dataclass(frozen=True)
class NetworkList:
    """A parsed allow or deny list: IP networks, ASNs (``"AS64500"``) and country codes (``"JP"``)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    asns: frozenset[int]
    countries: frozenset[str]

    def __bool__(self) -> bool:
        """False for an empty list (nothing can match)."""
        return bool(self.networks or self.asns or self.countries)

    def match(self, *, ip: str | None, asn: int | None, country: str | None) -> str | None:
        """The entry that matches (for the explanation), or None."""
        if asn is not None and asn in self.asns:
            return f"AS{asn}"
        if country and country.upper() in self.countries:
            return country.upper()
        if ip is not None and self.networks:
            address = ipaddress.ip_address(ip)
            for net in self.networks:
                if address.version == net.version and address in net:
                    return str(net)
        return None


@functools.lru_cache(maxsize=16)
def parse_network_list(entries: tuple[str, ...]) -> NetworkList:
    """Parse entries already validated by system check ``authguard.E008``."""
    networks, asns, countries = [], set(), set()
    for entry in entries:
        if entry.upper().startswith("AS") and entry[2:].isascii() and entry[2:].isdigit():
            asns.add(int(entry[2:]))
        elif len(entry) == 2 and entry.isalpha():
            countries.add(entry.upper())
        else:
            networks.append(ipaddress.ip_network(entry, strict=False))
    return NetworkList(tuple(networks), frozenset(asns), frozenset(countries))


@functools.lru_cache(maxsize=1)
def configured_lists() -> tuple[NetworkList, NetworkList]:
    """The parsed ``AUTHGUARD_NETWORK_ALLOWLIST`` and ``AUTHGUARD_NETWORK_DENYLIST``, parsed once per process
    (and again when those settings change), so scoring a login reads no setting."""
    return (
        parse_network_list(tuple(app_settings.NETWORK_ALLOWLIST)),
        parse_network_list(tuple(app_settings.NETWORK_DENYLIST)),
    )


def _settings_changed(*, setting: str, **kwargs: object) -> None:
    if setting in ("AUTHGUARD_NETWORK_ALLOWLIST", "AUTHGUARD_NETWORK_DENYLIST"):
        configured_lists.cache_clear()


setting_changed.connect(_settings_changed)


def hosting_asns(extra: Iterable[int] = ()) -> frozenset[int]:
    return frozenset(HOSTING_ASNS) | frozenset(extra)


# -- the security desk's network blocks (issue 16) -------------------------------------------------------

#: Broadest networks a block may name: wider ones are outages, not blocks (a whole carrier's customers).
MIN_BLOCK_PREFIX = {4: 16, 6: 32}
#: The cache key of the active blocks (a list of ``(network, kind, until timestamp)``).
BLOCKS_CACHE_KEY = "authguard:network_blocks:v1"
#: How long the active blocks stay cached. A new or ended block deletes the key, so with a shared cache
#: (Redis) every process sees it at its next login; with per-process memory caches within this time.
BLOCKS_CACHE_SECONDS = 30
#: How long a process keeps using the last blocks it read when the database cannot be read.
BLOCKS_STALE_SECONDS = 3600

_Row = tuple[str, str, float]


class BlocksUnavailable(Exception):
    """The active blocks could not be read (the database failed); ``last_known`` is the last good read."""

    def __init__(self, last_known: ActiveBlocks | None) -> None:
        super().__init__("the network blocks could not be read")
        self.last_known = last_known


def parse_block_target(raw: object) -> tuple[str, str]:
    """``(canonical network, kind)`` for what staff typed: ``"AS64500"`` (kind ``asn``) or a CIDR or single
    address (kind ``cidr``, host bits cleared). Raises ``ValueError`` with a message for staff."""
    text = "".join(str(raw).split()) if isinstance(raw, str) else ""
    malformed = gettext("Give an IP network (CIDR, e.g. 203.0.113.0/24) or an ASN (e.g. AS64500).")
    if not text or len(text) > 64:
        raise ValueError(malformed)
    if text[:2].upper() == "AS":
        number = text[2:]
        if not number.isascii() or not number.isdigit() or len(number) > 10 or not 0 < int(number) < 2**32:
            raise ValueError(gettext("An ASN is AS followed by a number from 1 to 4294967295."))
        return f"AS{int(number)}", "asn"
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(malformed) from None
    if network.prefixlen < MIN_BLOCK_PREFIX[network.version]:
        raise ValueError(
            gettext(
                "Block at most a /%(prefix)d network (IPv%(version)d) at once: a wider block would shut "
                "out a whole provider's customers."
            )
            % {"prefix": MIN_BLOCK_PREFIX[network.version], "version": network.version}
        )
    return str(network), "cidr"


@dataclass(frozen=True)
class ActiveBlocks:
    """The blocks in force, each with its end (a timestamp), as the risk signal matches them."""

    networks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, float], ...]
    asns: tuple[tuple[int, float], ...]

    def __bool__(self) -> bool:
        return bool(self.networks or self.asns)

    def match(self, *, ip: str | None, asn: int | None, now: float) -> tuple[str, float] | None:
        """``(entry, until timestamp)`` of the block ``ip``/``asn`` falls in at ``now``, or None.

        SECURITY: the end is checked here, not only when the blocks are read: a cached block ends on time.
        """
        if asn is not None:
            for number, until in self.asns:
                if number == asn and until > now:
                    return f"AS{number}", until
        if ip is not None and self.networks:
            address = ipaddress.ip_address(ip)
            for network, until in self.networks:
                if address.version == network.version and address in network and until > now:
                    return str(network), until
        return None


@functools.lru_cache(maxsize=8)
def _compile(rows: tuple[_Row, ...]) -> ActiveBlocks:
    networks, asns = [], []
    for network, kind, until in rows:
        if kind == "asn":
            asns.append((int(network[2:]), until))
        else:
            networks.append((ipaddress.ip_network(network, strict=False), until))
    return ActiveBlocks(tuple(networks), tuple(asns))


_last_good: tuple[float, ActiveBlocks] | None = None
_last_good_lock = threading.Lock()


def _read_rows(now: datetime) -> tuple[_Row, ...]:
    rows = NetworkBlock.active(now=now).order_by("pk").values_list("network", "kind", "until")
    return tuple((network, kind, until.timestamp()) for network, kind, until in rows)


def active_blocks(*, now: datetime | None = None) -> ActiveBlocks:
    """The network blocks in force: from the cache, else the database (then cached for
    :data:`BLOCKS_CACHE_SECONDS`). A cache that fails, hangs or whose circuit breaker is open is skipped
    (the database is read, nothing is written to the cache).

    Raises :class:`BlocksUnavailable` when the database cannot be read; its ``last_known`` holds this
    process's last good read if it is younger than :data:`BLOCKS_STALE_SECONDS` (the caller decides what
    a login gets meanwhile: :class:`authguard.risk_signals.NetworkLists` steps it up).
    """
    global _last_good
    now = now or clock.now()
    rows: tuple[_Row, ...] | None = None
    # SECURITY: a cache that cannot answer (down, hung, its breaker open) is never "no blocks": the database
    # is read instead, and failing that the last good read (BlocksUnavailable.last_known).
    cached = guarded_cache_call(cache.get, BLOCKS_CACHE_KEY, what="the network blocks", default=NO_ANSWER)
    if isinstance(cached, tuple):
        rows = cached
    if rows is None:
        try:
            rows = _read_rows(now)
        except Exception as exc:
            logger.exception("authguard: could not read the network blocks")
            with _last_good_lock:
                last = _last_good
            fresh = last is not None and time.monotonic() - last[0] < BLOCKS_STALE_SECONDS
            raise BlocksUnavailable(last[1] if fresh and last is not None else None) from exc
        if cached is not NO_ANSWER:  # a failing cache is not written to: the write would wait out its timeout
            guarded_cache_call(
                cache.set,
                BLOCKS_CACHE_KEY,
                rows,
                BLOCKS_CACHE_SECONDS,
                what="the network blocks",
                default=None,
            )
    blocks = _compile(rows)
    with _last_good_lock:
        _last_good = (time.monotonic(), blocks)
    return blocks


def blocks_changed() -> None:
    """Drop the cached blocks after a block was added or ended (call it once the change is committed)."""
    # SECURITY: not through the cache's breaker: a breaker this process opened may skip a cache that answers
    # again, and every process would then match the old blocks for up to BLOCKS_CACHE_SECONDS. Staff's
    # change may wait out one socket timeout instead.
    try:
        cache.delete(BLOCKS_CACHE_KEY)
    except Exception:
        # The cached list then lives until BLOCKS_CACHE_SECONDS; the change is in the database already.
        logger.exception("authguard: could not drop the cached network blocks")
