"""Client addresses: the client IP behind trusted proxies, canonical forms, networks and public ranges."""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Any

from django.http import HttpRequest

from authguard.conf import app_settings


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
