"""Network knowledge that does not come from GeoIP: hosting ASNs, and admin allow/deny lists.

GeoLite2 (the free MaxMind databases) carries no anonymity data, so authguard ships a list of the major
hosting and cloud networks. A login from a data centre is not a person at home or on a phone; phishing
kits and credential-stuffing tools run there. Operators extend the list with ``AUTHGUARD_HOSTING_ASNS``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.signals import setting_changed

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
        if entry.upper().startswith("AS") and entry[2:].isdigit():
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
    from .conf import app_settings

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
