"""Request context: client IP behind proxies, user agents, device cookies and geolocation never crash."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from authguard.risk.addresses import client_ip, ip_prefix, is_public_ip, normalize_ip
from authguard.risk.context import build_context, device_hash, device_id_from_cookie, new_device_cookie
from authguard.risk.geoip import geolocate
from authguard.risk.useragent import MAX_USER_AGENT, parse_user_agent, sanitize_user_agent
from tests.conftest import (
    IP_SG_VPS,
    IP_TOKYO,
    IP_TOR,
    IP_V6_FUKUOKA,
    IP_VPN,
    UA_CHROME_WIN,
    UA_CURL,
    UA_IPHONE,
)

rf = RequestFactory()


def test_untrusted_peer_cannot_spoof_forwarded_for(settings):
    settings.AUTHGUARD_TRUSTED_PROXIES = []
    request = rf.get("/", REMOTE_ADDR=IP_SG_VPS, HTTP_X_FORWARDED_FOR=IP_TOKYO)
    assert client_ip(request) == IP_SG_VPS


def test_forwarded_for_from_a_peer_not_in_the_trusted_list_is_ignored(settings):
    settings.AUTHGUARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = rf.get("/", REMOTE_ADDR=IP_SG_VPS, HTTP_X_FORWARDED_FOR=IP_TOKYO)
    assert client_ip(request) == IP_SG_VPS


def test_rightmost_untrusted_hop_is_the_client(settings):
    settings.AUTHGUARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    # The client prepended a fake address; the proxies appended the real one and themselves.
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{IP_TOKYO}, {IP_SG_VPS}, 10.0.0.1")
    assert client_ip(request) == IP_SG_VPS


@pytest.mark.parametrize("header", ["garbage", "", " , ,", "1.2.3.4.5", "999.1.1.1", "1.2.3.4\x00"])
def test_garbage_forwarded_for_falls_back_to_the_proxy(settings, header):
    settings.AUTHGUARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=header)
    assert client_ip(request) == "10.0.0.2"


def test_ipv4_mapped_ipv6_is_normalised():
    assert client_ip(rf.get("/", REMOTE_ADDR="::ffff:203.0.113.10")) == IP_TOKYO


def test_user_agent_is_cut_and_stripped_of_control_characters():
    long = "Mozilla/5.0 " + "A" * 10_000
    assert len(sanitize_user_agent(long)) == MAX_USER_AGENT
    assert sanitize_user_agent("Mozilla/5.0\r\nX-Injected: 1\x00") == "Mozilla/5.0X-Injected: 1"


def test_user_agents_are_parsed_and_automation_flagged():
    chrome = parse_user_agent(UA_CHROME_WIN)
    assert (chrome.browser, chrome.browser_version, chrome.os, chrome.device_type) == (
        "Chrome",
        "131",
        "Windows",
        "desktop",
    )
    assert not chrome.automation
    iphone = parse_user_agent(UA_IPHONE)
    assert (iphone.browser, iphone.os, iphone.device_type) == ("Mobile Safari", "iOS", "mobile")
    assert parse_user_agent(UA_CURL).automation
    assert parse_user_agent("").automation
    assert parse_user_agent(
        "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0.0.0 Safari/537.36"
    ).automation


def test_device_cookie_is_signed_and_only_its_hash_is_kept():
    cookie = new_device_cookie()
    device_id = device_id_from_cookie(cookie)
    assert device_id and device_id in cookie
    assert device_id_from_cookie(cookie[:-1] + ("A" if cookie[-1] != "A" else "B")) is None
    assert device_id_from_cookie("x" * 5000) is None
    digest = device_hash(device_id)
    assert len(digest) == 64 and device_id not in digest
    assert device_hash(None) is None


def test_geolocation_reads_city_asn_and_anonymity(geoip):
    tokyo = geolocate(IP_TOKYO)
    assert (tokyo.country, tokyo.city, tokyo.asn, tokyo.accuracy_km, tokyo.time_zone) == (
        "JP",
        "Tokyo",
        4713,
        10,
        "Asia/Tokyo",
    )
    assert tokyo.latitude == pytest.approx(35.6895)
    assert not (tokyo.hosting or tokyo.tor_exit or tokyo.anonymous_vpn)
    assert geolocate(IP_SG_VPS).hosting
    assert geolocate(IP_TOR).tor_exit
    assert geolocate(IP_VPN).anonymous_vpn
    assert geolocate(IP_V6_FUKUOKA).city == "Fukuoka"


@pytest.mark.parametrize("ip", [None, "127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "fe80::1", "8.8.8.8"])
def test_private_and_unknown_addresses_have_unknown_location(geoip, ip):
    geo = geolocate(ip)
    assert geo.country is None and geo.asn is None and geo.place == "unknown"


def test_missing_geoip_folder_gives_unknown(settings, tmp_path):
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path / "missing")
    assert geolocate(IP_TOKYO).country is None


def test_corrupt_geoip_files_give_unknown(settings, tmp_path):
    for name in ("GeoLite2-City.mmdb", "GeoLite2-ASN.mmdb", "GeoIP2-Anonymous-IP.mmdb"):
        (tmp_path / name).write_bytes(b"\x00garbage" * 100)
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path)
    assert geolocate(IP_TOKYO).country is None


def test_truncated_geoip_file_gives_unknown(settings, tmp_path, geoip_dir):
    data = (geoip_dir / "GeoLite2-City.mmdb").read_bytes()
    (tmp_path / "GeoLite2-City.mmdb").write_bytes(data[: len(data) // 2])
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path)
    assert geolocate(IP_TOKYO).city is None


def test_build_context_from_a_request(geoip):
    request = rf.get("/", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT="Mozilla/5.0\n" + "B" * 20_000)
    request.COOKIES["authguard_device"] = new_device_cookie()
    ctx = build_context(request, username="alice")
    assert ctx.ip == IP_TOKYO and ctx.geo.city == "Tokyo" and ctx.prefix == "203.0.113.0/24"
    assert ctx.device_hash is not None
    assert len(ctx.client.raw) == MAX_USER_AGENT and "\n" not in ctx.client.raw


@given(ua=st.text(max_size=3000), xff=st.text(max_size=300), remote=st.text(max_size=60))
def test_context_never_raises_on_arbitrary_headers(ua, xff, remote):
    request = rf.get("/", HTTP_USER_AGENT=ua, HTTP_X_FORWARDED_FOR=xff)
    request.META["REMOTE_ADDR"] = remote
    ctx = build_context(request, username="x")
    assert len(ctx.client.raw) <= MAX_USER_AGENT


def _reference_normalize(value: str) -> str | None:
    """What normalize_ip must return: ipaddress's canonical form, IPv4-mapped IPv6 as IPv4."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


_LOCAL = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
          "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "0.0.0.0/8", "::/127", "fc00::/7",
          "fe80::/10", "ff00::/8")]  # fmt: skip

addresses = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded.upper()),
    st.integers(0, 2**32 - 1).map(lambda n: f"::ffff:{ipaddress.IPv4Address(n)}"),
    st.lists(st.integers(0, 999), min_size=3, max_size=5).map(lambda parts: ".".join(map(str, parts))),
    st.sampled_from(["01.2.3.4", " 1.2.3.4 ", "1.2.3.4/24", "fe80::1%eth0", "1::2::3", "١.2.3.4", ""]),
)


@given(value=addresses)
def test_fast_address_helpers_agree_with_ipaddress(value):
    # normalize_ip, is_public_ip and ip_prefix take shortcuts (no parsing of a dotted quad twice,
    # integer masks): they must say exactly what the ipaddress module says.
    expected = _reference_normalize(value)
    assert normalize_ip.__wrapped__(value) == expected
    if expected is None:
        return
    address = ipaddress.ip_address(expected)
    assert is_public_ip.__wrapped__(expected) is not any(
        address.version == net.version and address in net for net in _LOCAL
    )
    bits = 24 if address.version == 4 else 48
    assert ip_prefix.__wrapped__(expected) == str(ipaddress.ip_network(f"{expected}/{bits}", strict=False))


def test_one_lookup_serves_a_block_only_when_every_database_covers_it(tmp_path):
    from authguard.risk.geoip import GeoReaders
    from authguard.testing import GeoNetwork, write_geoip_databases

    write_geoip_databases(
        tmp_path,
        [
            # 203.0.113.0/24 is split: two cities, two networks.
            GeoNetwork(
                "203.0.113.0/25", country="JP", city="Tokyo", latitude=35.7, longitude=139.7, asn=64500
            ),
            GeoNetwork(
                "203.0.113.128/25", country="JP", city="Osaka", latitude=34.7, longitude=135.5, asn=64500
            ),
            # 198.51.100.0/23 is one record, so each of its /24 blocks is too.
            GeoNetwork(
                "198.51.100.0/23", country="JP", city="Sapporo", latitude=43.1, longitude=141.4, asn=64501
            ),
            GeoNetwork(
                "2001:db8::/32", country="JP", city="Fukuoka", latitude=33.6, longitude=130.4, asn=64502
            ),
            # Inside the whole block, one address is a Tor exit: the block must not be shared.
            GeoNetwork(
                "198.51.101.0/24", country="JP", city="Sapporo", latitude=43.1, longitude=141.4, asn=64501
            ),
            GeoNetwork("198.51.101.66/32", tor_exit=True),
        ],
    )
    readers = GeoReaders(str(tmp_path))
    assert readers.lookup("203.0.113.1").city == "Tokyo"
    assert readers.lookup("203.0.113.200").city == "Osaka"  # not the Tokyo answer of its /24
    assert "203.0.113.0/24" not in readers._blocks

    first = readers.lookup("198.51.100.7")
    assert first.city == "Sapporo" and "198.51.100.0/24" in readers._blocks
    assert readers.lookup("198.51.100.250") is first  # served from the block, same answer

    assert readers.lookup("198.51.101.66").tor_exit
    assert not readers.lookup("198.51.101.67").tor_exit
    assert readers.lookup("198.51.101.66").tor_exit  # the split block is never shared
    assert "198.51.101.0/24" not in readers._blocks

    assert readers.lookup("2001:db8:1::1").city == "Fukuoka" and "2001:db8:1::/48" in readers._blocks
    assert readers.lookup("10.0.0.1") == readers.lookup("10.0.0.2")  # private: no lookup, no location
    assert "10.0.0.0/24" not in readers._blocks
