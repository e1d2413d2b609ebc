"""Tools for testing a portal that uses authguard: real MaxMind-format GeoIP databases built on the fly.

The databases are written with ``mmdb-writer`` (a test/demo dependency, imported lazily) in MaxMind's own
record layout and under MaxMind's own file names, so that authguard reads them with the real ``geoip2``
reader exactly as it reads GeoLite2 or GeoIP2 files in production.

Example::

    from authguard.testing import GeoNetwork, write_geoip_databases

    write_geoip_databases(tmp_path, [
        GeoNetwork("203.0.113.0/24", country="JP", city="Tokyo", latitude=35.69, longitude=139.69,
                   accuracy_km=20, time_zone="Asia/Tokyo", asn=2516, as_org="KDDI CORPORATION"),
        GeoNetwork("198.51.100.0/24", country="SG", city="Singapore", latitude=1.29, longitude=103.85,
                   asn=14061, as_org="DIGITALOCEAN-ASN", hosting=True, vpn=True),
    ])
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CITY_FILENAME = "GeoLite2-City.mmdb"
ASN_FILENAME = "GeoLite2-ASN.mmdb"
ANONYMOUS_FILENAME = "GeoIP2-Anonymous-IP.mmdb"

#: Continent of each country code used in demos and tests (MaxMind's continent codes).
CONTINENTS: dict[str, str] = {
    "JP": "AS",
    "KR": "AS",
    "CN": "AS",
    "HK": "AS",
    "TW": "AS",
    "SG": "AS",
    "TH": "AS",
    "VN": "AS",
    "IN": "AS",
    "ID": "AS",
    "PH": "AS",
    "MY": "AS",
    "US": "NA",
    "CA": "NA",
    "MX": "NA",
    "BR": "SA",
    "GB": "EU",
    "DE": "EU",
    "FR": "EU",
    "NL": "EU",
    "RU": "EU",
    "UA": "EU",
    "SE": "EU",
    "FI": "EU",
    "AU": "OC",
    "NZ": "OC",
    "ZA": "AF",
    "NG": "AF",
}


@dataclass(frozen=True)
class GeoNetwork:
    """One network of a synthetic GeoIP database and what MaxMind would say about it."""

    network: str
    country: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_km: int = 50
    time_zone: str | None = None
    asn: int | None = None
    as_org: str | None = None
    anonymous_vpn: bool = False
    hosting: bool = False
    public_proxy: bool = False
    residential_proxy: bool = False
    tor_exit: bool = False

    @property
    def anonymous(self) -> bool:
        return (
            self.anonymous_vpn or self.hosting or self.public_proxy or self.residential_proxy or self.tor_exit
        )


def _city_record(net: GeoNetwork) -> dict:
    record: dict = {}
    if net.country:
        country = {"iso_code": net.country, "names": {"en": net.country}}
        record["country"] = country
        record["registered_country"] = dict(country)
        continent = CONTINENTS.get(net.country)
        if continent:
            record["continent"] = {"code": continent, "names": {"en": continent}}
    if net.city:
        record["city"] = {"names": {"en": net.city}}
    if net.latitude is not None and net.longitude is not None:
        from mmdb_writer import MmdbF64, MmdbU16

        location: dict = {
            "latitude": MmdbF64(net.latitude),
            "longitude": MmdbF64(net.longitude),
            "accuracy_radius": MmdbU16(net.accuracy_km),
        }
        if net.time_zone:
            location["time_zone"] = net.time_zone
        record["location"] = location
    return record


def _writer(database_type: str):
    from mmdb_writer import MMDBWriter

    # An IPv6 tree with the IPv4 space mapped in, as MaxMind ships its own databases.
    return MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description=f"authguard synthetic {database_type}",
    )


def write_geoip_databases(
    folder: str | os.PathLike[str],
    networks: Iterable[GeoNetwork],
    *,
    city: bool = True,
    asn: bool = True,
    anonymous: bool = True,
) -> Path:
    """Write City, ASN and Anonymous-IP databases for ``networks`` into ``folder`` and return it.

    Each flag can be turned off to test a deployment that lacks that database (GeoLite2 users have no
    Anonymous-IP database). Networks without any data for a database are left out of it, so the reader
    raises ``AddressNotFoundError`` for them as it would for an unknown address.
    """
    from netaddr import IPSet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    networks = list(networks)
    if city:
        writer = _writer("GeoLite2-City")
        for net in networks:
            record = _city_record(net)
            if record:
                writer.insert_network(IPSet([net.network]), record)
        writer.to_db_file(str(folder / CITY_FILENAME))
    if asn:
        writer = _writer("GeoLite2-ASN")
        for net in networks:
            if net.asn is not None:
                record = {"autonomous_system_number": net.asn}
                if net.as_org:
                    record["autonomous_system_organization"] = net.as_org
                writer.insert_network(IPSet([net.network]), record)
        writer.to_db_file(str(folder / ASN_FILENAME))
    if anonymous:
        writer = _writer("GeoIP2-Anonymous-IP")
        for net in networks:
            if net.anonymous:
                record = {"is_anonymous": True}
                for flag, key in (
                    (net.anonymous_vpn, "is_anonymous_vpn"),
                    (net.hosting, "is_hosting_provider"),
                    (net.public_proxy, "is_public_proxy"),
                    (net.residential_proxy, "is_residential_proxy"),
                    (net.tor_exit, "is_tor_exit_node"),
                ):
                    if flag:
                        record[key] = True
                writer.insert_network(IPSet([net.network]), record)
        writer.to_db_file(str(folder / ANONYMOUS_FILENAME))
    return folder
