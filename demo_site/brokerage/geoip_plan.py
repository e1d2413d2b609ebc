"""The demo's GeoIP plan: which demo IP ranges ``build_demo_geoip`` puts where.

Every range is reserved for documentation (RFC 5737 for IPv4: 192.0.2.0/24, 198.51.100.0/24 and
203.0.113.0/24, split into /26s; RFC 3849 for IPv6: 2001:db8::/32), so the demo databases never say anything
about a real address. Cities, autonomous system numbers and organisation names are real, so the risk engine
sees what it would see for a customer at home in Tokyo or an attacker on a VPS in Singapore.

- 192.0.2.0/24: Japanese home and mobile lines (where customers normally sign in from).
- 198.51.100.0/24: more Japanese lines, a Japanese residential proxy, a foreign home line, and one /26 that
  is in no database at all (an unknown address).
- 203.0.113.0/24: hosting networks, a VPN and a Tor exit abroad (where account takeovers come from).
- 2001:db8::/32: IPv6 counterparts (the Japanese ones carry the ASN in the third group).

Loopback (127.0.0.0/8, ::1) and private ranges (10/8, 172.16/12, 192.168/16) are deliberately absent: a
local address must stay "unknown". ``docs/demo.md`` has the same table.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from authguard.testing import GeoNetwork


@dataclass(frozen=True)
class DemoNetwork:
    """One planned range: what it stands for in the demo story and what the databases say about it."""

    label: str
    geo: GeoNetwork

    @property
    def sample_ip(self) -> str:
        """An address inside the range to use in the demo (its first host address)."""
        network = ipaddress.ip_network(self.geo.network)
        return str(network.network_address + 1)


@dataclass(frozen=True)
class _City:
    country: str
    name: str
    latitude: float
    longitude: float
    time_zone: str


TOKYO = _City("JP", "Tokyo", 35.6895, 139.6917, "Asia/Tokyo")
OSAKA = _City("JP", "Osaka", 34.6937, 135.5023, "Asia/Tokyo")
NAGOYA = _City("JP", "Nagoya", 35.1815, 136.9066, "Asia/Tokyo")
FUKUOKA = _City("JP", "Fukuoka", 33.5904, 130.4017, "Asia/Tokyo")
SAPPORO = _City("JP", "Sapporo", 43.0618, 141.3545, "Asia/Tokyo")
SINGAPORE = _City("SG", "Singapore", 1.2897, 103.8501, "Asia/Singapore")
LOS_ANGELES = _City("US", "Los Angeles", 34.0522, -118.2437, "America/Los_Angeles")
FRANKFURT = _City("DE", "Frankfurt am Main", 50.1109, 8.6821, "Europe/Berlin")

# Real autonomous systems, named as MaxMind's ASN database names them.
NTT_OCN = (4713, "NTT Communications Corporation")
KDDI = (2516, "KDDI CORPORATION")
SOFTBANK = (17676, "SoftBank Corp.")
DOCOMO = (9605, "NTT DOCOMO, INC.")
RAKUTEN_MOBILE = (138384, "Rakuten Mobile, Inc.")
SINGTEL = (7473, "Singapore Telecommunications Ltd")
DIGITALOCEAN = (14061, "DIGITALOCEAN-ASN")
AWS = (16509, "AMAZON-02")
VULTR = (20473, "AS-VULTR")


def _net(
    network: str,
    label: str,
    city: _City,
    asys: tuple[int, str],
    *,
    accuracy_km: int = 20,
    **flags: bool,
) -> DemoNetwork:
    return DemoNetwork(
        label,
        GeoNetwork(
            network,
            country=city.country,
            city=city.name,
            latitude=city.latitude,
            longitude=city.longitude,
            accuracy_km=accuracy_km,
            time_zone=city.time_zone,
            asn=asys[0],
            as_org=asys[1],
            **flags,
        ),
    )


PLAN: tuple[DemoNetwork, ...] = (
    # -- Japanese customers at home and on the move -----------------------------------------------------
    _net("192.0.2.0/26", "Tokyo home fibre (NTT OCN)", TOKYO, NTT_OCN),
    _net("192.0.2.64/26", "Osaka home fibre (KDDI au Hikari)", OSAKA, KDDI),
    _net("192.0.2.128/26", "Nagoya home broadband (SoftBank)", NAGOYA, SOFTBANK),
    _net("192.0.2.192/26", "Fukuoka mobile (NTT Docomo)", FUKUOKA, DOCOMO, accuracy_km=100),
    _net("198.51.100.0/26", "Sapporo mobile (Rakuten Mobile)", SAPPORO, RAKUTEN_MOBILE, accuracy_km=100),
    # -- Suspicious but plausible ------------------------------------------------------------------------
    _net(
        "198.51.100.64/26",
        "Tokyo residential proxy (looks like a KDDI home line)",
        TOKYO,
        KDDI,
        residential_proxy=True,
    ),
    _net(
        "198.51.100.128/26",
        "Singapore home broadband (Singtel), e.g. a customer travelling",
        SINGAPORE,
        SINGTEL,
    ),
    # 198.51.100.192/26 is in no database: an unknown address.
    # -- Where account takeovers come from -----------------------------------------------------------------
    _net(
        "203.0.113.0/26",
        "Singapore VPS (DigitalOcean)",
        SINGAPORE,
        DIGITALOCEAN,
        accuracy_km=100,
        hosting=True,
    ),
    _net(
        "203.0.113.64/26",
        "Los Angeles VPN exit on a VPS (Vultr)",
        LOS_ANGELES,
        VULTR,
        accuracy_km=100,
        hosting=True,
        anonymous_vpn=True,
    ),
    _net("203.0.113.128/26", "Frankfurt cloud server (AWS)", FRANKFURT, AWS, accuracy_km=100, hosting=True),
    _net(
        "203.0.113.192/26",
        "Frankfurt Tor exit node (DigitalOcean)",
        FRANKFURT,
        DIGITALOCEAN,
        accuracy_km=100,
        hosting=True,
        tor_exit=True,
    ),
    # -- IPv6 ----------------------------------------------------------------------------------------------
    _net("2001:db8:4713::/48", "Tokyo home fibre over IPv6 (NTT OCN)", TOKYO, NTT_OCN),
    _net("2001:db8:2516::/48", "Osaka home fibre over IPv6 (KDDI)", OSAKA, KDDI),
    _net("2001:db8:9605::/48", "Fukuoka mobile over IPv6 (NTT Docomo)", FUKUOKA, DOCOMO, accuracy_km=100),
    _net(
        "2001:db8:e000::/48", "Singapore VPS over IPv6 (DigitalOcean)", SINGAPORE, DIGITALOCEAN, hosting=True
    ),
    _net(
        "2001:db8:e001::/48",
        "Los Angeles VPN over IPv6 (Vultr)",
        LOS_ANGELES,
        VULTR,
        hosting=True,
        anonymous_vpn=True,
    ),
)

#: A documentation address that no demo database knows (lookups raise ``AddressNotFoundError``).
UNKNOWN_SAMPLE_IP = "198.51.100.193"


def geo_networks() -> list[GeoNetwork]:
    """The plan as ``authguard.testing.write_geoip_databases`` takes it."""
    return [n.geo for n in PLAN]
