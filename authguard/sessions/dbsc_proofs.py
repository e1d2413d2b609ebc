"""DBSC's wire formats: the errors, the structured-field headers (RFC 9651) and the JWT proofs.

A proof is a JWS (``typ`` ``dbsc+jwt``) signed by the device-held key (ES256 or RS256, never ``none``) over
the challenge the server issued; :func:`verify_proof` checks it with joserfc. The protocol that issues
challenges, registers and refreshes sessions is :mod:`authguard.sessions.dbsc`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from authguard.exceptions import AuthguardError

#: The ``typ`` of a DBSC proof.
PROOF_TYPE = "dbsc+jwt"


#: The signature algorithms authguard offers and accepts, in order of preference. The draft also names
#: ``none`` (keys shared with a federated provider); authguard never accepts an unsigned proof.
ALGORITHMS: tuple[str, ...] = ("ES256", "RS256")


#: Smallest RSA modulus accepted for RS256 (NIST SP 800-131A).
MIN_RSA_BITS = 2048


#: Longest proof read (an RS256 registration with a 4096-bit key is under 2 KB).
MAX_PROOF_CHARS = 8 * 1024


#: A bare (unquoted) header value: the characters of a compact JWS or of a session identifier.
_BARE_VALUE = re.compile(r"[A-Za-z0-9_.\-]+")


_SF_STRING_CHAR = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]")
#: The alphabet of the challenges authguard issues (``secrets.token_urlsafe``).
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class _ProofRegistry(JWSRegistry):
    # joserfc's default 512-byte header ceiling is below an RS256 registration (a 2048-bit JWK in the
    # header); the proof as a whole is bounded by MAX_PROOF_CHARS first.
    max_header_length = 4096
    max_payload_length = 4096


#: joserfc registry for proofs: only our algorithms; header members beyond the registered ones tolerated
#: (the draft says "at least"), ``crit`` refused by :func:`_proof_header`.
_REGISTRY = _ProofRegistry(algorithms=list(ALGORITHMS), strict_check_header=False)


_MESSAGES = {
    "disabled": gettext_lazy("Device-bound sessions are not enabled here."),
    "malformed": gettext_lazy("The device-bound session request is malformed."),
    "too_large": gettext_lazy("The device-bound session request is too large."),
    "no_proof": gettext_lazy("The device-bound session request carries no proof."),
    "no_session_id": gettext_lazy("The device-bound session request names no session."),
    "type": gettext_lazy("The device-bound session proof is of the wrong kind."),
    "algorithm": gettext_lazy("The device-bound session proof uses an algorithm that is not accepted."),
    "key": gettext_lazy("The device-bound session key is missing or not accepted."),
    "key_reused": gettext_lazy("This device-bound session key is already registered."),
    "signature": gettext_lazy("The device-bound session proof signature is invalid."),
    "challenge": gettext_lazy("The device-bound session proof does not answer a challenge issued here."),
    "expired": gettext_lazy("The device-bound session challenge has expired. Please try again."),
    "replayed": gettext_lazy("This device-bound session proof was already used."),
    "login_required": gettext_lazy("Sign in first."),
    "step_up_required": gettext_lazy("Please confirm it is you first."),
    "device": gettext_lazy("This browser's device cookie does not match the device-bound session."),
    "unknown_session": gettext_lazy("This device-bound session is unknown or has ended."),
}


class DbscError(AuthguardError):
    """A DBSC request that was refused. ``code`` is stable; ``http_status`` is the answer's status."""

    default_code = "malformed"
    default_message = _MESSAGES["malformed"]
    http_status: int = 400

    def __init__(self, code: str | None = None) -> None:
        code = code or self.default_code
        super().__init__(str(_MESSAGES.get(code, self.default_message)), code=code)


class DbscDisabled(DbscError):
    """``AUTHGUARD_DBSC["ENABLED"]`` is off: the endpoints do not exist (404)."""

    default_code = "disabled"
    http_status = 404


class MalformedDbscRequest(DbscError):
    """A header, proof or key that cannot be parsed or is not acceptable (400). Codes: ``malformed``,
    ``too_large``, ``no_proof``, ``no_session_id``, ``type``, ``algorithm``, ``key``, ``key_reused``."""

    default_code = "malformed"
    http_status = 400


class InvalidProof(DbscError):
    """The proof's signature does not verify with the key it must be signed by (401, code ``signature``)."""

    default_code = "signature"
    http_status = 401


class ChallengeRejected(DbscError):
    """The proof's ``jti`` is not a usable challenge (403). Codes: ``challenge`` (not issued here, or for
    another purpose, user, device or session), ``expired``, ``replayed``. On refresh the answer carries a
    new challenge, as the draft's 403 flow expects."""

    default_code = "challenge"
    http_status = 403


class RegistrationNotAllowed(DbscError):
    """The session may not register a device key (401 ``login_required``, 403 ``step_up_required``,
    403 ``device``)."""

    default_code = "login_required"
    http_status = 401

    def __init__(self, code: str | None = None) -> None:
        super().__init__(code)
        if self.code != "login_required":
            self.http_status = 403


class UnknownSession(DbscError):
    """The DBSC session is unknown, ended or expired (404 ``unknown_session``), or bound to another device
    cookie (400 ``device``): any 4xx other than 403 makes the browser drop the session."""

    default_code = "unknown_session"
    http_status = 404

    def __init__(self, code: str | None = None) -> None:
        super().__init__(code)
        if self.code == "device":
            self.http_status = 400


def sf_string(value: str) -> str:
    """Serialize ``value`` as a structured-field string (``"..."``); it must be printable ASCII."""
    if any(not (0x20 <= ord(char) <= 0x7E) for char in value):
        raise ValueError("sf-string must be printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_sf_string_item(raw: str | None, *, max_chars: int) -> str:
    """The string of a structured-field string item such as ``"value";param=1`` (parameters ignored, as the
    draft says). A bare token (``eyJ...`` or ``session_id``) is also read: the explainer and Chrome's
    developer documentation show unquoted values. Anything else is :class:`MalformedDbscRequest`."""
    if raw is None:
        raise MalformedDbscRequest("malformed")
    text = raw.strip(" ")
    if len(text) > max_chars + 512:
        raise MalformedDbscRequest("too_large")
    if not text.startswith('"'):
        bare = text.split(";", 1)[0].strip(" ")
        if not _BARE_VALUE.fullmatch(bare):
            raise MalformedDbscRequest("malformed")
        value = bare
    else:
        chars: list[str] = []
        index, closed = 1, False
        while index < len(text):
            char = text[index]
            if char == "\\":
                if index + 1 >= len(text) or text[index + 1] not in '"\\':
                    raise MalformedDbscRequest("malformed")
                chars.append(text[index + 1])
                index += 2
                continue
            if char == '"':
                closed = True
                index += 1
                break
            if not _SF_STRING_CHAR.fullmatch(char):
                raise MalformedDbscRequest("malformed")
            chars.append(char)
            index += 1
        rest = text[index:].strip(" ")
        if not closed or (rest and not rest.startswith(";")):
            raise MalformedDbscRequest("malformed")
        value = "".join(chars)
    if not value:
        raise MalformedDbscRequest("malformed")
    if len(value) > max_chars:
        raise MalformedDbscRequest("too_large")
    return value


@dataclass(frozen=True)
class VerifiedProof:
    """A DBSC proof whose signature verified: its algorithm, key and challenge (``jti``)."""

    algorithm: str
    jwk: dict[str, Any]
    thumbprint: str
    challenge: str
    claims: dict[str, Any]


def _proof_header(proof: str) -> dict[str, Any]:
    """The unverified protected header of a compact JWS, after shape and size checks."""
    if not isinstance(proof, str) or not proof:
        raise MalformedDbscRequest("no_proof")
    if len(proof) > MAX_PROOF_CHARS:
        raise MalformedDbscRequest("too_large")
    if proof.count(".") != 2 or not _BARE_VALUE.fullmatch(proof):
        raise MalformedDbscRequest("malformed")
    try:
        header = jws.extract_compact(proof.encode("ascii"), registry=_REGISTRY).headers()
    except (JoseError, ValueError, TypeError, UnicodeError, RecursionError):
        raise MalformedDbscRequest("malformed") from None
    if not isinstance(header, dict):
        raise MalformedDbscRequest("malformed")
    # SECURITY: the algorithm is checked against our own allow-list before any key is built from the
    # token: "none" and HMAC (with the public key as secret) never reach a verifier.
    if header.get("alg") not in ALGORITHMS:
        raise MalformedDbscRequest("algorithm")
    if header.get("typ") != PROOF_TYPE:
        raise MalformedDbscRequest("type")
    if "crit" in header:
        # No extension is understood, so none may be critical (RFC 7515 section 4.1.11).
        raise MalformedDbscRequest("malformed")
    return header


def _import_public_key(jwk: Any, *, algorithm: str) -> ECKey | RSAKey:
    """A public key from a JWK that fits ``algorithm``: EC P-256 for ES256, RSA >= 2048 bits for RS256."""
    if not isinstance(jwk, dict) or len(json.dumps(jwk, default=str)) > 4096:
        raise MalformedDbscRequest("key")
    # SECURITY: a JWK with private members is refused rather than stripped: a client that sends its
    # private key is broken or hostile, and that key is not device-bound.
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "oth", "k")):
        raise MalformedDbscRequest("key")
    try:
        if algorithm == "ES256":
            if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
                raise MalformedDbscRequest("key")
            key: ECKey | RSAKey = ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")})
        else:
            # 2048 bits are 342 unpadded base64url characters (a JWK's "n" has no leading zeros): refuse
            # short moduli before joserfc builds (and warns about) the key.
            modulus = jwk.get("n")
            if jwk.get("kty") != "RSA" or not isinstance(modulus, str) or len(modulus) < 342:
                raise MalformedDbscRequest("key")
            key = RSAKey.import_key({k: jwk[k] for k in ("kty", "n", "e")})
            if key.public_key.key_size < MIN_RSA_BITS:
                raise MalformedDbscRequest("key")
    except MalformedDbscRequest:
        raise
    except (JoseError, KeyError, ValueError, TypeError):
        raise MalformedDbscRequest("key") from None
    if key.is_private:
        raise MalformedDbscRequest("key")
    return key


def _verify(proof: str, *, key: ECKey | RSAKey, algorithm: str) -> dict[str, Any]:
    """Verify the signature with ``key`` under exactly ``algorithm``; return the claims."""
    try:
        token = jwt.decode(proof, key, algorithms=[algorithm], registry=_REGISTRY)
    except BadSignatureError:
        raise InvalidProof("signature") from None
    except (JoseError, ValueError, TypeError, UnicodeError, RecursionError):
        raise MalformedDbscRequest("malformed") from None
    claims = token.claims
    if not isinstance(claims, dict):
        raise MalformedDbscRequest("malformed")
    jti = claims.get("jti")
    # Every challenge authguard issues is base64url (secrets.token_urlsafe); anything else (a lone surrogate
    # included, which cannot even be encoded to look it up: red team, round fourteen) is malformed.
    if not isinstance(jti, str) or not jti or len(jti) > 256 or not _BASE64URL.fullmatch(jti):
        raise MalformedDbscRequest("malformed")
    return claims


def verify_proof(
    *, proof: str, registered_jwk: dict[str, Any] | None, registered_algorithm: str | None
) -> VerifiedProof:
    """Check a DBSC proof's shape, algorithm and signature (not its challenge).

    ``registered_jwk=None``: a registration proof, signed by the key in its own ``jwk`` header. Otherwise a
    refresh proof, which must not carry a key and must be signed by ``registered_jwk`` under
    ``registered_algorithm``. Raises :class:`MalformedDbscRequest` or :class:`InvalidProof`.
    """
    header = _proof_header(proof)
    algorithm = str(header["alg"])
    if registered_jwk is None:
        if "jwk" not in header:
            raise MalformedDbscRequest("key")
        key = _import_public_key(header["jwk"], algorithm=algorithm)
    else:
        # SECURITY: a refresh is verified with the registered key only; a proof bringing its own key is
        # refused, so no code path can ever trust a key the request chose.
        if "jwk" in header:
            raise MalformedDbscRequest("key")
        if algorithm != registered_algorithm:
            raise MalformedDbscRequest("algorithm")
        key = _import_public_key(registered_jwk, algorithm=algorithm)
    claims = _verify(proof, key=key, algorithm=algorithm)
    public = key.as_dict(private=False)
    return VerifiedProof(
        algorithm=algorithm,
        jwk={k: public[k] for k in sorted(public) if k in ("kty", "crv", "x", "y", "n", "e")},
        thumbprint=key.thumbprint(),
        challenge=claims["jti"],
        claims=claims,
    )
