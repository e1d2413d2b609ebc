"""Red team round fifty-one (B): DBSC registration and refresh with validly signed proofs of the wrong shape.

Earlier rounds sent unsigned, re-headed or truncated proofs (tests/test_sessions_dbsc.py). Here the device
key signs each hostile proof, so it passes the signature and reaches the claim and key checks: a ``jti`` of
the wrong type, a list or string payload, time claims of the wrong type, a JWK with wrong-typed or invalid
coordinates, headers with extra members. Every answer must be a 4xx and no binding may be written.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from django.test import Client

from authguard.models import DbscChallenge, DbscSession

from .test_sessions_dbsc import (  # noqa: F401  (fixtures)
    DeviceKey,
    browser,
    dbsc_on,
    offer,
    post_refresh,
    post_register,
    refresh_challenge,
    register,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_sessions_dbsc")]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signed(key: DeviceKey, header: dict[str, Any], payload: bytes) -> str:
    """A compact JWS the device key signs over any header and payload (ES256, raw r||s)."""
    protected = {"alg": "ES256", "typ": "dbsc+jwt", **header}
    signing_input = f"{_b64(json.dumps(protected).encode())}.{_b64(payload)}"
    der = key.key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _payloads(jti: str) -> list[bytes]:
    return [
        b"[1, 2]",
        b'"a string"',
        b"null",
        b"1e999",
        json.dumps({"jti": 12345}).encode(),
        json.dumps({"jti": [jti]}).encode(),
        json.dumps({"jti": {"v": jti}}).encode(),
        json.dumps({"jti": jti + "\x00"}).encode(),
        b'{"jti": "\\ud800"}',
        b"\xff\xfe",
        b'{"jti": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    ]


def test_held_signed_registration_proofs_of_the_wrong_shape_are_refused_and_bind_nothing(
    browser: Client,  # noqa: F811
) -> None:
    """Held (claims other than ``jti`` are not read, as the draft allows: a proof with the right ``jti`` and
    odd ``exp``/``iat``/``aud`` is accepted, which is harmless). A signed-in, verified browser with a
    real registration offer answers it with proofs its own key signed, each of a wrong shape (payload,
    claims, JWK members, header members). 4xx, no binding."""
    key = DeviceKey()
    jwk = key.public_jwk()
    bad_jwks = [
        {**jwk, "x": 1},
        {**jwk, "x": None},
        {**jwk, "y": [jwk["y"]]},
        {**jwk, "x": jwk["x"] + "AA"},
        {**jwk, "x": "A" * 43},
        {**jwk, "crv": "P-384"},
        {**jwk, "kty": ["EC"]},
        {k: v for k, v in jwk.items() if k != "y"},
        {**jwk, "x": "\ud800"},
        "a string",
        [jwk],
    ]
    statuses = []
    for _round in range(2):
        challenge = offer(browser)
        proofs = [_signed(key, {"jwk": jwk}, payload) for payload in _payloads(challenge)]
        proofs += [_signed(key, {"jwk": bad}, json.dumps({"jti": challenge}).encode()) for bad in bad_jwks]
        proofs += [
            _signed(key, {"jwk": jwk, "crit": ["exp"], "exp": 1}, json.dumps({"jti": challenge}).encode()),
            _signed(key, {"jwk": jwk, "kid": {"a": 1}, "x5u": 1}, json.dumps({"jti": "A" * 300}).encode()),
        ]
        for proof in proofs:
            response = post_register(browser, proof)
            statuses.append(response.status_code)
            assert 400 <= response.status_code < 500, (proof[:80], response.status_code, response.content)
    assert not DbscSession.objects.exists()
    assert not DbscChallenge.objects.filter(used_at__isnull=False).exists()


def test_held_signed_refresh_proofs_of_the_wrong_shape_are_refused_and_refresh_nothing(
    browser: Client,  # noqa: F811
) -> None:
    """Held: after a real registration, the same key signs refresh proofs of the wrong shape, and the
    session id header carries odd values. 4xx each; the binding's expiry does not move."""
    key = DeviceKey()
    session_id = register(browser, key)
    before = DbscSession.objects.values_list("last_refreshed_at", "expires_at", "device_hash").get()
    challenge = refresh_challenge(browser, session_id)
    proofs = [_signed(key, {}, payload) for payload in _payloads(challenge)]
    proofs += [
        _signed(key, {"jwk": key.public_jwk()}, json.dumps({"jti": challenge}).encode()),
        _signed(key, {}, json.dumps({"jti": "9" * 12 + challenge[12:]}).encode()),
        _signed(key, {}, json.dumps({"jti": challenge[:36]}).encode()),
        _signed(key, {}, json.dumps({"jti": "\uff11" * 12 + challenge[12:]}).encode()),
    ]
    for proof in proofs:
        response = post_refresh(browser, session_id, proof)
        assert 400 <= response.status_code < 500, (proof[:80], response.status_code, response.content)
    for odd_id in ["", "a" * 5000, '"', '"\\x"', "a;b", "\u00ff", session_id + "x", "1e999"]:
        response = post_refresh(browser, odd_id, quoted=False)
        assert 400 <= response.status_code < 500, (odd_id[:20], response.status_code)
    assert DbscSession.objects.values_list("last_refreshed_at", "expires_at", "device_hash").get() == before
