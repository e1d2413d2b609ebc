"""Passkeys: py_webauthn plus the relying-party checks py_webauthn leaves to the application.

Four verbs, shaped like py_webauthn's own:

* :func:`registration_options` / :func:`register` bind a new passkey (resident key and user verification
  required, the user's existing credentials excluded, credential IDs unique across all users). Both enforce
  authguard's enrollment rules (:func:`authguard.factors.base.require_can_change_factors`) first.
* :func:`authentication_options` / :func:`verify_authentication` prove one, for step-up (``"step_up"``),
  re-verification (``"reverify"``), usernameless passwordless login (``"login"``, ``user=None``) or a held
  order's confirmation (``f"confirm:{id}"``, with the caller's ``challenge``).

What authguard checks on top of py_webauthn 3.0.1 (security-battery.md section 3):

* challenges are kept server-side in the session, one per purpose, expire after
  ``AUTHGUARD_WEBAUTHN_CHALLENGE_SECONDS``, are popped *before* anything is verified, and are marked spent in
  the cache so that two parallel requests of one session cannot both use one;
* the JSON is strict: bounded sizes, canonical base64url, ``id`` equal to ``rawId``;
* ``clientDataJSON.crossOrigin`` must be false and ``topOrigin`` absent (py_webauthn ignores both);
* the credential must be registered, usable, belong to the expected user and have been offered in
  ``allowCredentials``; the ``userHandle`` must be the owner's; backup eligibility must never change;
* the device row is locked (``select_for_update``) while its sign count is checked and written.

Every failure is an :class:`~authguard.exceptions.InvalidCredential` with a stable ``code`` and a fixed,
translated message (never py_webauthn's text, which can echo the request).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import InvalidBackupFlags, WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential
from authguard.models import CREDENTIAL_ID_MAX_CHARS, FactorKind, FactorRecord, PasskeyDevice

logger = logging.getLogger(__name__)

#: Session key of the pending WebAuthn challenges, ``{purpose: record}``.
SESSION_KEY = "_authguard_webauthn"
#: Purpose of a registration ceremony (the other purposes are the caller's).
REGISTER = "register"
#: The most challenges one session keeps at a time (older ones are dropped).
MAX_PENDING = 8
#: Bounds of what a credential JSON may contain, in characters of base64url (or JSON for the whole).
MAX_CREDENTIAL_JSON = 64 * 1024
_MAX_FIELD = {
    "clientDataJSON": 8 * 1024,
    "attestationObject": 48 * 1024,
    "authenticatorData": 4 * 1024,
    "signature": 2 * 1024,
    "userHandle": 128,
}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_PURPOSE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
#: COSE algorithms accepted for new passkeys: ES256, EdDSA, RS256.
SUPPORTED_ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,  # -7
    COSEAlgorithmIdentifier.EDDSA,  # -8
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,  # -257
]

# Fixed messages per failure code: py_webauthn's own messages can contain request data.
_MESSAGES = {
    "malformed": gettext_lazy("The passkey response is malformed."),
    "too_large": gettext_lazy("The passkey response is too large."),
    "no_challenge": gettext_lazy("This passkey request has expired or was already used. Please try again."),
    "replayed": gettext_lazy("This passkey request was already used. Please try again."),
    "type": gettext_lazy("The passkey response is of the wrong kind."),
    "origin": gettext_lazy("The passkey response comes from another site."),
    "cross_origin": gettext_lazy("Passkeys cannot be used from inside another site."),
    "rp_id": gettext_lazy("The passkey belongs to another site."),
    "challenge": gettext_lazy("The passkey response does not answer this request."),
    "user_presence": gettext_lazy("The security key was not touched."),
    "user_verification": gettext_lazy(
        "Your device did not verify you (PIN, fingerprint or face). Please try again."
    ),
    "signature": gettext_lazy("The passkey signature is invalid."),
    "sign_count": gettext_lazy("This passkey may have been copied; it was refused."),
    "backup_flags": gettext_lazy("The passkey reported inconsistent backup information."),
    "algorithm": gettext_lazy("This kind of passkey is not supported."),
    "unknown_credential": gettext_lazy("This passkey is not registered here."),
    "disabled": gettext_lazy("This passkey is disabled. Please register it again."),
    "wrong_user": gettext_lazy("This passkey belongs to another account."),
    "not_allowed": gettext_lazy("This passkey was not offered for this request."),
    "user_handle": gettext_lazy("This passkey belongs to another account."),
    "already_registered": gettext_lazy("This passkey is already registered."),
    "no_passkey": gettext_lazy("You have no passkey registered."),
    "unavailable": gettext_lazy("Passkeys are unavailable right now. Please try again in a moment."),
}


def _invalid(code: str) -> InvalidCredential:
    return InvalidCredential(str(_MESSAGES[code]), code=code)


# -- relying party ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelyingParty:
    """The configured WebAuthn relying party."""

    id: str
    name: str
    origins: list[str]


def relying_party() -> RelyingParty:
    """The relying party from ``AUTHGUARD_WEBAUTHN_*``; raises ``ImproperlyConfigured`` when incomplete."""
    rp_id = app_settings.WEBAUTHN_RP_ID
    origins = app_settings.WEBAUTHN_ORIGINS
    if not rp_id or not origins:
        # SECURITY: never guess the RP from the request's Host header (an attacker controls it).
        raise ImproperlyConfigured("AUTHGUARD_WEBAUTHN_RP_ID and AUTHGUARD_WEBAUTHN_ORIGINS must be set")
    return RelyingParty(id=rp_id, name=app_settings.WEBAUTHN_RP_NAME, origins=list(origins))


# -- strict decoding ----------------------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as WebAuthn's JSON forms use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: object, *, max_chars: int = CREDENTIAL_ID_MAX_CHARS) -> bytes:
    """Decode canonical unpadded base64url (trailing ``=`` tolerated); anything else is ``malformed``.

    Stricter than py_webauthn's decoder, which silently skips characters outside the alphabet.
    """
    if not isinstance(value, str):
        raise _invalid("malformed")
    if len(value) > max_chars:
        raise _invalid("too_large")
    stripped = value.rstrip("=")
    if len(value) - len(stripped) > 2 or not _BASE64URL.fullmatch(stripped) or len(stripped) % 4 == 1:
        raise _invalid("malformed")
    try:
        data = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("malformed") from None
    # SECURITY: one encoding per value, so "id == rawId" cannot be satisfied by two different spellings.
    if b64url_encode(data) != stripped:
        raise _invalid("malformed")
    return data


def _load_credential(credential: dict[str, Any] | str, *, fields: tuple[str, ...]) -> dict[str, Any]:
    """Parse and bound-check a ``PublicKeyCredential.toJSON()`` object; return it as a dict."""
    if isinstance(credential, (str, bytes)):
        if len(credential) > MAX_CREDENTIAL_JSON:
            raise _invalid("too_large")
        try:
            credential = json.loads(credential)
        except (ValueError, UnicodeDecodeError):
            raise _invalid("malformed") from None
    if not isinstance(credential, dict):
        raise _invalid("malformed")
    if credential.get("type") != "public-key":
        raise _invalid("type")
    raw_id = credential.get("rawId")
    cred_id = credential.get("id")
    b64url_decode(raw_id)
    if (
        not isinstance(cred_id, str)
        or not isinstance(raw_id, str)
        or not constant_time_compare(cred_id, raw_id)
    ):
        raise _invalid("malformed")
    response = credential.get("response")
    if not isinstance(response, dict):
        raise _invalid("malformed")
    for field in fields:
        b64url_decode(response.get(field), max_chars=_MAX_FIELD[field])
    handle = response.get("userHandle")
    if handle is not None:
        b64url_decode(handle, max_chars=_MAX_FIELD["userHandle"])
    transports = response.get("transports", [])
    if not isinstance(transports, list) or len(transports) > 10:
        raise _invalid("malformed")
    attachment = credential.get("authenticatorAttachment")
    if attachment is not None and attachment not in ("platform", "cross-platform"):
        raise _invalid("malformed")
    return credential


def _client_data(credential: dict[str, Any], *, expected_type: str) -> dict[str, Any]:
    """Decode ``clientDataJSON`` and apply the checks py_webauthn 3.0.1 skips (crossOrigin, topOrigin)."""
    raw = b64url_decode(credential["response"]["clientDataJSON"], max_chars=_MAX_FIELD["clientDataJSON"])
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("malformed") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), str) for key in ("type", "challenge", "origin")
    ):
        raise _invalid("malformed")
    if data["type"] != expected_type:
        raise _invalid("type")
    # SECURITY: an assertion made inside another site's iframe is a relay (WebAuthn L3 7.2 step 13).
    if data.get("crossOrigin", False) is not False or "topOrigin" in data:
        raise _invalid("cross_origin")
    return data


def _webauthn_code(exc: Exception) -> str:
    """Map a py_webauthn exception to one of our stable codes (its message is never shown)."""
    if isinstance(exc, InvalidBackupFlags):
        return "backup_flags"
    text = str(exc).lower()
    for needle, code in (
        ("origin", "origin"),
        ("rp id", "rp_id"),
        ("challenge", "challenge"),
        ("sign count", "sign_count"),
        ("user verification", "user_verification"),
        ("user was not present", "user_presence"),
        ("user presence", "user_presence"),
        ("signature", "signature"),
        ("alg", "algorithm"),
        ("client data type", "type"),
    ):
        if needle in text:
            return code
    return "malformed"


# -- challenges ----------------------------------------------------------------------------------------


def _store_challenge(
    request: HttpRequest,
    *,
    purpose: str,
    kind: str,
    challenge: bytes,
    user: Any,
    allow: list[str] | None = None,
    handle: str | None = None,
) -> None:
    now = timezone.now().timestamp()
    pending = request.session.get(SESSION_KEY)
    pending = dict(pending) if isinstance(pending, dict) else {}
    pending = {
        key: value
        for key, value in pending.items()
        if isinstance(value, dict) and float(value.get("exp", 0)) > now
    }
    pending.pop(purpose, None)
    while len(pending) >= MAX_PENDING:
        pending.pop(min(pending, key=lambda key: pending[key]["exp"]))
    pending[purpose] = {
        "kind": kind,
        "c": b64url_encode(challenge),
        "exp": now + app_settings.WEBAUTHN_CHALLENGE_SECONDS,
        "user": None if user is None else str(user.pk),
        "allow": allow,
        "handle": handle,
        # Names this issuance: a caller's deterministic challenge (a held order's) can be asked for again.
        "n": secrets.token_hex(16),
    }
    request.session[SESSION_KEY] = pending
    request.session.modified = True


def _pop_challenge(request: HttpRequest, *, purpose: str, kind: str, user: Any) -> dict[str, Any]:
    """Remove and return the purpose's challenge, if it is still valid for this kind and user.

    SECURITY: popped before anything is verified, so every challenge is tried at most once, and marked spent
    in the cache so that a parallel request holding the same (not yet saved) session cannot use it again.
    """
    pending = request.session.get(SESSION_KEY)
    record = None
    if isinstance(pending, dict) and purpose in pending:
        pending = dict(pending)
        record = pending.pop(purpose)
        request.session[SESSION_KEY] = pending
        request.session.modified = True
        # Saved at once, not at the end of the request, so the challenge is gone even if this request dies.
        request.session.save()
    if not isinstance(record, dict) or record.get("kind") != kind:
        raise _invalid("no_challenge")
    if float(record.get("exp", 0)) <= timezone.now().timestamp():
        raise _invalid("no_challenge")
    expected_user = None if user is None else str(user.pk)
    if record.get("user") != expected_user:
        raise _invalid("no_challenge")
    digest = hashlib.sha256(f"{record['c']}:{record.get('n', '')}".encode()).hexdigest()
    try:
        fresh = cache.add(
            f"authguard:webauthn:spent:{digest}", 1, app_settings.WEBAUTHN_CHALLENGE_SECONDS + 60
        )
    except Exception:
        # SECURITY: without the spent marker single use cannot be guaranteed: refuse (fail closed).
        logger.exception("authguard: cache unavailable for WebAuthn challenges")
        raise _invalid("unavailable") from None
    if not fresh:
        raise _invalid("replayed")
    return record


def _challenge_bytes(record: dict[str, Any]) -> bytes:
    return b64url_decode(record["c"], max_chars=256)


# -- registration ----------------------------------------------------------------------------------------


def user_handle_for(user: Any) -> bytes:
    """The WebAuthn ``user.id`` of ``user``: the handle of their existing passkeys, else a keyed digest.

    Opaque (no username, no primary key), stable across the user's passkeys so an authenticator replaces
    rather than duplicates a credential for the same account.
    """
    existing = PasskeyDevice.objects.filter(user=user).values_list("user_handle", flat=True).first()
    if existing:
        return b64url_decode(existing, max_chars=128)
    return salted_hmac("authguard.passkeys.user-handle", str(user.pk), algorithm="sha256").digest()


def _descriptor(device: PasskeyDevice) -> PublicKeyCredentialDescriptor:
    transports = []
    for value in device.transports or []:
        try:
            transports.append(AuthenticatorTransport(value))
        except ValueError:
            continue
    return PublicKeyCredentialDescriptor(
        id=b64url_decode(device.credential_id), transports=transports or None
    )


def _timeout_ms() -> int:
    return app_settings.WEBAUTHN_CHALLENGE_SECONDS * 1000


def registration_options(request: HttpRequest, *, user: Any) -> dict[str, Any]:
    """JSON ``PublicKeyCredentialCreationOptions`` for a new passkey of ``user``; stores the challenge.

    Raises :class:`~authguard.exceptions.StepUpRequired` unless the session may change factors now.
    """
    from authguard.factors.base import require_can_change_factors

    require_can_change_factors(request, user=user)
    rp = relying_party()
    handle = user_handle_for(user)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=handle,
        user_name=user.get_username(),
        user_display_name=user.get_full_name() if hasattr(user, "get_full_name") else "",
        timeout=_timeout_ms(),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        # SECURITY: every usable credential the user has, so one authenticator is never bound twice. A passkey
        # disabled by the failure limit is left out: binding it again is how it is re-bound.
        exclude_credentials=[_descriptor(device) for device in usable_passkeys(user)],
        supported_pub_key_algs=SUPPORTED_ALGORITHMS,
    )
    _store_challenge(
        request,
        purpose=REGISTER,
        kind="create",
        challenge=options.challenge,
        user=user,
        handle=b64url_encode(handle),
    )
    return options_to_json_dict(options)


def _device_name(name: object) -> str:
    text = " ".join(str(name or "").split())[:64]
    return text or _("Passkey")


def register(
    request: HttpRequest, *, user: Any, credential: dict[str, Any] | str, name: str = ""
) -> PasskeyDevice:
    """Verify a ``navigator.credentials.create()`` response and bind the passkey to ``user``.

    Enforces the enrollment rules again (the session could have changed since the options), records the
    enrollment (cooling-off, notification, risk-engine history) and returns the new device. Registering never
    verifies the session: it is not a step-up. Raises :class:`~authguard.exceptions.InvalidCredential`.
    """
    from authguard.factors.base import is_disabled, record_enrollment, require_can_change_factors
    from authguard.factors.lifecycle import require_strong_rebind

    via = require_can_change_factors(request, user=user)
    rp = relying_party()
    record = _pop_challenge(request, purpose=REGISTER, kind="create", user=user)
    data = _load_credential(credential, fields=("clientDataJSON", "attestationObject"))
    _client_data(data, expected_type="webauthn.create")
    try:
        verified = verify_registration_response(
            credential=data,
            expected_challenge=_challenge_bytes(record),
            expected_rp_id=rp.id,
            expected_origin=rp.origins,
            require_user_presence=True,
            require_user_verification=True,
            supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        )
    except WebAuthnException as exc:
        logger.info("authguard passkey registration refused user=%s: %s", user.pk, exc)
        raise _invalid(_webauthn_code(exc)) from None
    except Exception:
        # SECURITY: an unexpected parser error is a refusal, never a 500 and never a partial write.
        logger.warning("authguard passkey registration: unexpected error", exc_info=True)
        raise _invalid("malformed") from None
    credential_id = b64url_encode(verified.credential_id)
    if len(verified.credential_id) > 1023 or credential_id != data["rawId"]:
        raise _invalid("malformed")
    transports = [t for t in data["response"].get("transports", []) if isinstance(t, str)][:10]
    try:
        with transaction.atomic():
            existing = PasskeyDevice.objects.select_for_update().filter(credential_id=credential_id).first()
            if existing is not None:
                # SECURITY: a credential ID is never moved to another account; the owner may re-bind their
                # own passkey after the failure limit disabled it (NIST: "disabled until re-bound").
                if existing.user_id != user.pk or not is_disabled(existing):
                    raise _invalid("already_registered")
                # SECURITY: and only through a strong path: another passkey, identity proofing (case 55).
                via = require_strong_rebind(request, user=user)
                FactorRecord.objects.filter(device_id=existing.persistent_id).delete()
                existing.delete()
            device = PasskeyDevice.objects.create(
                user=user,
                name=_device_name(name),
                confirmed=True,
                credential_id=credential_id,
                public_key=verified.credential_public_key,
                user_handle=record.get("handle") or b64url_encode(user_handle_for(user)),
                sign_count=verified.sign_count,
                aaguid=str(verified.aaguid),
                transports=[t[:32] for t in transports],
                backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
                backup_state=verified.credential_backed_up,
                user_verified=verified.user_verified,
            )
            record_enrollment(request, user=user, device=device, kind=FactorKind.PASSKEY, via=via)
    except IntegrityError:
        # SECURITY: the unique constraint is the last word when two registrations race.
        raise _invalid("already_registered") from None
    logger.info("authguard passkey registered user=%s device=%s", user.pk, device.pk)
    return device


# -- authentication ----------------------------------------------------------------------------------------


def usable_passkeys(user: Any) -> list[PasskeyDevice]:
    """The user's confirmed passkeys that are not disabled by the failure limit."""
    from authguard.factors.base import disabled_device_ids

    devices = list(PasskeyDevice.objects.filter(user=user, confirmed=True).order_by("pk"))
    disabled = disabled_device_ids(user)
    return [device for device in devices if device.persistent_id not in disabled]


def authentication_options(
    request: HttpRequest, *, purpose: str, user: Any = None, challenge: bytes | None = None
) -> dict[str, Any]:
    """JSON ``PublicKeyCredentialRequestOptions`` for ``purpose``; stores the challenge in the session.

    ``user`` given: only that user's usable passkeys are allowed (step-up, re-verification, confirmation);
    raises ``InvalidCredential("no_passkey")`` when there is none. ``user=None``: a discoverable,
    usernameless login (empty ``allowCredentials``; the browser offers its passkeys, autofill included).
    ``challenge``: the caller's (e.g. ``sha256(nonce || digest)`` of a held order), at least 16 bytes;
    default 32 random bytes. User verification is always required.
    """
    if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose) or purpose == REGISTER:
        raise ValueError(f"invalid WebAuthn purpose {purpose!r}")
    if challenge is None:
        challenge = secrets.token_bytes(32)
    elif not isinstance(challenge, bytes) or not 16 <= len(challenge) <= 64:
        raise ValueError("a WebAuthn challenge must be 16 to 64 bytes")
    rp = relying_party()
    allow: list[str] | None = None
    descriptors: list[PublicKeyCredentialDescriptor] = []
    if user is not None:
        devices = usable_passkeys(user)
        if not devices:
            raise _invalid("no_passkey")
        allow = [device.credential_id for device in devices]
        descriptors = [_descriptor(device) for device in devices]
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=_timeout_ms(),
        allow_credentials=descriptors,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    _store_challenge(request, purpose=purpose, kind="get", challenge=challenge, user=user, allow=allow)
    return options_to_json_dict(options)


def _locked_device(credential_id: str) -> PasskeyDevice:
    device = PasskeyDevice.objects.select_for_update().filter(credential_id=credential_id).first()
    if device is None:
        raise _invalid("unknown_credential")
    return device


def _check_assertion(
    device: PasskeyDevice, *, data: dict[str, Any], record: dict[str, Any], user: Any, rp: RelyingParty
) -> None:
    """All checks of one assertion against the locked ``device``; updates the device on success."""
    from authguard.factors.base import is_disabled

    if not device.confirmed or is_disabled(device):
        raise _invalid("disabled")
    if user is not None:
        # SECURITY: the credential must be the expected user's and one we offered (allowCredentials).
        if device.user_id != user.pk:
            raise _invalid("wrong_user")
        if device.credential_id not in (record.get("allow") or []):
            raise _invalid("not_allowed")
    handle = data["response"].get("userHandle")
    if handle is None and user is None:
        # A discoverable login names its account only through the userHandle.
        raise _invalid("user_handle")
    if handle is not None and not constant_time_compare(handle.rstrip("="), device.user_handle):
        raise _invalid("user_handle")
    try:
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=_challenge_bytes(record),
            expected_rp_id=rp.id,
            expected_origin=rp.origins,
            credential_public_key=bytes(device.public_key),
            credential_current_sign_count=device.sign_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        code = _webauthn_code(exc)
        # A counter that went backwards can mean a cloned authenticator: worth an operator's look.
        log = logger.warning if code == "sign_count" else logger.info
        log("authguard passkey assertion refused user=%s device=%s: %s", device.user_id, device.pk, exc)
        raise _invalid(code) from None
    except Exception:
        logger.warning("authguard passkey assertion: unexpected error", exc_info=True)
        raise _invalid("malformed") from None
    # SECURITY: backup eligibility is fixed for a credential's life; a change means another authenticator.
    eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    if eligible != device.backup_eligible:
        raise _invalid("backup_flags")
    device.sign_count = verified.new_sign_count
    device.backup_state = verified.credential_backed_up
    device.last_used_at = timezone.now()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save(
        update_fields=[
            "sign_count",
            "backup_state",
            "last_used_at",
            "throttling_failure_count",
            "throttling_failure_timestamp",
        ]
    )


def verify_authentication(
    request: HttpRequest, *, purpose: str, credential: dict[str, Any] | str, user: Any = None
) -> PasskeyDevice:
    """Verify a ``navigator.credentials.get()`` response against the session's challenge for ``purpose``.

    Pops the challenge first; checks structure, clientData (type, crossOrigin), origin, rpId, user presence
    and verification, signature, the credential's owner, ``allowCredentials``, ``userHandle``, sign count and
    backup flags; then writes sign count, backup state and last use under a row lock. Returns the device.

    With ``user`` given (a signed-in session), a failed assertion of one of that user's passkeys is counted;
    it counts towards the failure limit only from a session that could be the customer's
    (:func:`authguard.factors.lifecycle.could_be_customer`), and any other session is throttled per session,
    network and account instead (a bad signature is no guess: disabling on it would only let whoever has
    the password disable the customer's passkey, issue 10 item 3). Anonymous (``user=None``) failures never
    count. Raises :class:`~authguard.exceptions.InvalidCredential` or
    :class:`~authguard.exceptions.Throttled`.
    """
    from authguard.factors.base import record_failure, record_success
    from authguard.factors.lifecycle import check_throttle, note_throttle_failure

    if user is not None:
        check_throttle(request, user=user)
    rp = relying_party()
    record = _pop_challenge(request, purpose=purpose, kind="get", user=user)
    data = _load_credential(credential, fields=("clientDataJSON", "authenticatorData", "signature"))
    _client_data(data, expected_type="webauthn.get")
    failure: InvalidCredential | None = None
    with transaction.atomic():
        device = _locked_device(data["rawId"])
        try:
            _check_assertion(device, data=data, record=record, user=user, rp=rp)
        except InvalidCredential as exc:
            failure = exc
            if user is not None and device.user_id == user.pk and exc.code not in ("disabled", "not_allowed"):
                record_failure(device, kind=FactorKind.PASSKEY, request=request)
        else:
            record_success(device)
    if failure is not None:
        if user is not None:
            note_throttle_failure(request, user=user)
        raise failure
    return device


__all__ = [
    "REGISTER",
    "RelyingParty",
    "authentication_options",
    "b64url_decode",
    "b64url_encode",
    "register",
    "registration_options",
    "relying_party",
    "usable_passkeys",
    "user_handle_for",
    "verify_authentication",
]
