"""``manage.py build_demo_geoip``: the demo GeoIP databases, read back with the real ``geoip2`` reader."""

from __future__ import annotations

import ipaddress
from io import StringIO
from itertools import combinations
from pathlib import Path
from typing import Any

import geoip2.database
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from geoip2.errors import AddressNotFoundError

from authguard.risk.geoip import geolocate
from authguard.testing import ANONYMOUS_FILENAME, ASN_FILENAME, CITY_FILENAME
from demo_site.brokerage.geoip_plan import PLAN, UNKNOWN_SAMPLE_IP

DOCUMENTATION_RANGES = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]
LOCAL_ADDRESSES = ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "::1", "fd00::1", UNKNOWN_SAMPLE_IP]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("demo-geoip")
    out = StringIO()
    call_command("build_demo_geoip", "--path", str(folder), stdout=out)
    return folder, out.getvalue()


@pytest.fixture(scope="module")
def readers(built: tuple[Path, str]) -> Any:
    folder = built[0]
    opened = {
        "city": geoip2.database.Reader(str(folder / CITY_FILENAME)),
        "asn": geoip2.database.Reader(str(folder / ASN_FILENAME)),
        "anonymous": geoip2.database.Reader(str(folder / ANONYMOUS_FILENAME)),
    }
    yield opened
    for reader in opened.values():
        reader.close()


def test_the_command_writes_the_three_databases_and_prints_the_plan(built: tuple[Path, str]) -> None:
    folder, output = built
    assert {p.name for p in folder.iterdir()} == {CITY_FILENAME, ASN_FILENAME, ANONYMOUS_FILENAME}
    for network in PLAN:
        assert network.geo.network in output and network.label in output


@pytest.mark.parametrize("network", PLAN, ids=[n.label for n in PLAN])
def test_every_planned_network_reads_back_as_planned(readers: Any, network: Any) -> None:
    geo = network.geo
    for ip in (network.sample_ip, str(ipaddress.ip_network(geo.network)[-1])):
        city = readers["city"].city(ip)
        assert (city.country.iso_code, city.city.name, city.location.time_zone) == (
            geo.country,
            geo.city,
            geo.time_zone,
        )
        assert city.location.latitude == pytest.approx(geo.latitude)
        assert city.location.longitude == pytest.approx(geo.longitude)
        assert city.location.accuracy_radius == geo.accuracy_km
        asn = readers["asn"].asn(ip)
        assert (asn.autonomous_system_number, asn.autonomous_system_organization) == (geo.asn, geo.as_org)
        if geo.anonymous:
            anon = readers["anonymous"].anonymous_ip(ip)
            assert anon.is_anonymous
            assert (
                anon.is_anonymous_vpn,
                anon.is_hosting_provider,
                anon.is_residential_proxy,
                anon.is_tor_exit_node,
            ) == (geo.anonymous_vpn, geo.hosting, geo.residential_proxy, geo.tor_exit)
        else:
            with pytest.raises(AddressNotFoundError):
                readers["anonymous"].anonymous_ip(ip)


@pytest.mark.parametrize("ip", LOCAL_ADDRESSES)
def test_local_and_unplanned_addresses_stay_unknown(readers: Any, ip: str) -> None:
    for method in ("city", "asn", "anonymous_ip"):
        reader = readers["anonymous" if method == "anonymous_ip" else method]
        with pytest.raises(AddressNotFoundError):
            getattr(reader, method)(ip)


def test_authguard_reads_the_demo_story_from_them(built: tuple[Path, str]) -> None:
    path = str(built[0])
    home = geolocate("192.0.2.10", path=path)
    assert (home.country, home.city, home.asn, home.hosting) == ("JP", "Tokyo", 4713, False)
    vps = geolocate("203.0.113.10", path=path)
    assert (vps.country, vps.city, vps.asn, vps.hosting) == ("SG", "Singapore", 14061, True)
    proxy = geolocate("198.51.100.70", path=path)
    assert (proxy.country, proxy.residential_proxy) == ("JP", True)
    assert geolocate("127.0.0.1", path=path).country is None


def test_the_plan_uses_only_documentation_ranges_without_overlaps() -> None:
    networks = [ipaddress.ip_network(n.geo.network) for n in PLAN]
    for net in networks:
        assert any(net.version == doc.version and net.subnet_of(doc) for doc in DOCUMENTATION_RANGES), net
    for a, b in combinations(networks, 2):
        assert a.version != b.version or not a.overlaps(b), (a, b)
    unknown = ipaddress.ip_address(UNKNOWN_SAMPLE_IP)
    assert not any(unknown in net for net in networks)


def test_the_plan_covers_the_demo_story() -> None:
    geos = [n.geo for n in PLAN]
    japanese_cities = {g.city for g in geos if g.country == "JP"}
    assert {"Tokyo", "Osaka", "Nagoya", "Fukuoka", "Sapporo"} <= japanese_cities
    assert {4713, 2516, 17676, 9605, 138384} <= {g.asn for g in geos if g.country == "JP"}
    assert {14061, 16509, 20473} <= {g.asn for g in geos if g.hosting}
    assert {"Singapore", "Los Angeles", "Frankfurt am Main"} <= {g.city for g in geos if g.country != "JP"}
    assert any(g.anonymous_vpn for g in geos)
    assert any(g.tor_exit for g in geos)
    assert [g.country for g in geos if g.residential_proxy] == ["JP"]
    assert any(ipaddress.ip_network(g.network).version == 6 for g in geos)


def test_the_default_folder_is_authguards_geoip_path(settings: Any, tmp_path: Path) -> None:
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path / "var" / "geoip")
    call_command("build_demo_geoip", stdout=StringIO())
    assert (tmp_path / "var" / "geoip" / CITY_FILENAME).is_file()


def test_without_a_folder_the_command_says_what_to_do(settings: Any) -> None:
    settings.AUTHGUARD_GEOIP_PATH = None
    with pytest.raises(CommandError, match="--path"):
        call_command("build_demo_geoip", stdout=StringIO())


def test_an_unwritable_folder_is_a_command_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CommandError, match="Could not write"):
        call_command("build_demo_geoip", "--path", str(blocker / "geoip"), stdout=StringIO())
