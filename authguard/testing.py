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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

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


# -- Mail ------------------------------------------------------------------------------------------------


def mail_settings(backend: str, **options: Any) -> dict[str, Any]:
    """The settings that send the portal's mail through ``backend`` on the running Django.

    Django 6.1 replaced ``EMAIL_BACKEND`` and the other ``EMAIL_*`` settings by ``MAILERS`` (the old ones are
    deprecated and refused next to it); authguard sends through the default mailer either way. ``options``
    are the backend's keyword arguments (``host``, ``port``, ``timeout``, ``file_path``): ``OPTIONS`` of the
    default mailer, or ``EMAIL_HOST``, ``EMAIL_PORT``... before 6.1. For ``override_settings(**...)``.
    """
    import django

    if django.VERSION >= (6, 1):
        return {"MAILERS": {"default": {"BACKEND": backend, "OPTIONS": dict(options)}}}
    return {"EMAIL_BACKEND": backend, **{f"EMAIL_{name.upper()}": value for name, value in options.items()}}


# -- WebAuthn: a software authenticator ------------------------------------------------------------------


@dataclass
class SoftCredential:
    """One credential held by a :class:`SoftAuthenticator`: its id, EC P-256 key, RP, user handle, counter."""

    credential_id: bytes
    private_key: EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @property
    def id(self) -> str:
        """The credential id as unpadded base64url (``PublicKeyCredential.id``)."""
        return _b64url(self.credential_id)


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(value: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class SoftAuthenticator:
    """A software WebAuthn authenticator producing real responses, for tests of the relying party.

    Registration answers (attestation ``"none"``) and assertions are built byte for byte as an authenticator
    and browser build them: authenticator data with the RP ID hash, flags and counter, a COSE EC2 P-256
    public key, a CBOR attestation object, a ``clientDataJSON`` with the given origin, and an ECDSA-SHA256
    signature made with the ``cryptography`` package. The results are in the browser's
    ``PublicKeyCredential.toJSON()`` shape, so py_webauthn verifies them for real.

    The constructor's arguments are the defaults of every ceremony; each call of :meth:`create` and
    :meth:`get` can override them (``origin="https://evil.example"``, ``user_verified=False``, ...)::

        authenticator = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
        credential = authenticator.create(creation_options)      # POST to api/passkeys
        assertion = authenticator.get(request_options)           # POST to api/step-up/passkey

    ``sign_count=None`` (the default) models a synced passkey whose counter stays 0; an integer starts a
    counter that increases by one on every assertion (a hardware key).
    """

    def __init__(
        self,
        *,
        origin: str = "http://localhost:8000",
        rp_id: str | None = None,
        user_present: bool = True,
        user_verified: bool = True,
        backup_eligible: bool = True,
        backup_state: bool = True,
        sign_count: int | None = None,
        cross_origin: bool = False,
        credential_id_length: int = 32,
        aaguid: bytes = bytes(16),
        transports: tuple[str, ...] = ("internal", "hybrid"),
    ) -> None:
        self.origin = origin
        self.rp_id = rp_id
        self.user_present = user_present
        self.user_verified = user_verified
        self.backup_eligible = backup_eligible
        self.backup_state = backup_state
        self.sign_count = sign_count
        self.cross_origin = cross_origin
        self.credential_id_length = credential_id_length
        self.aaguid = aaguid
        self.transports = transports
        self.credentials: list[SoftCredential] = []

    # -- building blocks ---------------------------------------------------------------------------------

    @staticmethod
    def _flags(*, up: bool, uv: bool, be: bool, bs: bool, at: bool = False) -> int:
        return (
            (0x01 if up else 0)
            | (0x04 if uv else 0)
            | (0x08 if be else 0)
            | (0x10 if bs else 0)
            | (0x40 if at else 0)
        )

    @staticmethod
    def _cose_key(private_key: EllipticCurvePrivateKey) -> bytes:
        import cbor2

        numbers = private_key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )

    def _client_data(
        self, kind: str, challenge: str, *, origin: str, cross_origin: bool, extra: dict | None
    ) -> bytes:
        import json

        data: dict = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": cross_origin}
        data.update(extra or {})
        return json.dumps(data, separators=(",", ":")).encode()

    def _setting(self, overrides: dict, name: str):
        return overrides[name] if name in overrides else getattr(self, name)

    # -- ceremonies ----------------------------------------------------------------------------------------

    def create(self, options: dict, **overrides) -> dict:
        """Answer ``navigator.credentials.create()`` for JSON creation ``options`` (as the RP sent them).

        Overrides: ``origin``, ``rp_id``, ``user_present``, ``user_verified``, ``backup_eligible``,
        ``backup_state``, ``sign_count``, ``cross_origin``, ``credential_id_length``, ``credential_id``
        (bytes: reuse a given id), ``client_data_type``, ``challenge``, ``client_data_extra`` (dict).
        """
        import hashlib

        import cbor2
        from cryptography.hazmat.primitives.asymmetric import ec

        def opt(name: str):
            return self._setting(overrides, name)

        rp_id = opt("rp_id") or options.get("rp", {}).get("id") or "localhost"
        private_key = ec.generate_private_key(ec.SECP256R1())
        credential_id = overrides.get("credential_id") or __import__("os").urandom(
            opt("credential_id_length")
        )
        user_handle = _b64url_decode(options["user"]["id"])
        start = opt("sign_count") or 0
        flags = self._flags(
            up=opt("user_present"),
            uv=opt("user_verified"),
            be=opt("backup_eligible"),
            bs=opt("backup_state"),
            at=True,
        )
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + start.to_bytes(4, "big")
            + self.aaguid
            + len(credential_id).to_bytes(2, "big")
            + credential_id
            + self._cose_key(private_key)
        )
        attestation_object = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data(
            overrides.get("client_data_type", "webauthn.create"),
            overrides.get("challenge", options["challenge"]),
            origin=opt("origin"),
            cross_origin=opt("cross_origin"),
            extra=overrides.get("client_data_extra"),
        )
        self.credentials.append(
            SoftCredential(
                credential_id=credential_id,
                private_key=private_key,
                rp_id=rp_id,
                user_handle=user_handle,
                sign_count=start,
            )
        )
        from cryptography.hazmat.primitives import serialization

        spki = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "id": _b64url(credential_id),
            "rawId": _b64url(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {"credProps": {"rk": True}},
            "response": {
                "clientDataJSON": _b64url(client_data),
                "attestationObject": _b64url(attestation_object),
                "authenticatorData": _b64url(auth_data),
                "transports": list(self.transports),
                "publicKeyAlgorithm": -7,
                "publicKey": _b64url(spki),
            },
        }

    def _pick(self, options: dict, rp_id: str) -> SoftCredential:
        allowed = [c.get("id") for c in options.get("allowCredentials") or []]
        for credential in reversed(self.credentials):
            if credential.rp_id == rp_id and (not allowed or credential.id in allowed):
                return credential
        raise LookupError("the soft authenticator holds no credential for these options")

    def get(self, options: dict, **overrides) -> dict:
        """Answer ``navigator.credentials.get()`` for JSON request ``options``.

        Picks the newest credential for the RP that ``allowCredentials`` lists (any, for a discoverable
        request), unless ``credential=`` (a :class:`SoftCredential`) is given. Overrides as for
        :meth:`create`, plus ``sign_count`` (the exact counter to report), ``user_handle`` (bytes or None:
        the userHandle to report) and ``signature`` (bytes to send instead of the real signature).
        """
        import hashlib

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        def opt(name: str):
            return self._setting(overrides, name)

        rp_id = opt("rp_id") or options.get("rpId") or "localhost"
        credential = overrides.get("credential") or self._pick(options, options.get("rpId") or rp_id)
        if "sign_count" in overrides:
            count = overrides["sign_count"] or 0
        elif self.sign_count is None:
            count = 0
        else:
            credential.sign_count += 1
            count = credential.sign_count
        flags = self._flags(
            up=opt("user_present"), uv=opt("user_verified"), be=opt("backup_eligible"), bs=opt("backup_state")
        )
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + count.to_bytes(4, "big")
        client_data = self._client_data(
            overrides.get("client_data_type", "webauthn.get"),
            overrides.get("challenge", options["challenge"]),
            origin=opt("origin"),
            cross_origin=opt("cross_origin"),
            extra=overrides.get("client_data_extra"),
        )
        signature = credential.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        signature = overrides.get("signature", signature)
        handle = overrides.get("user_handle", credential.user_handle)
        return {
            "id": credential.id,
            "rawId": credential.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": _b64url(client_data),
                "authenticatorData": _b64url(auth_data),
                "signature": _b64url(signature),
                "userHandle": None if handle is None else _b64url(handle),
            },
        }
