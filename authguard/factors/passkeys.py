"""Passkeys: py_webauthn plus the relying-party checks py_webauthn leaves to the application.

Four verbs, shaped like py_webauthn's own:

* :func:`registration_options` / :func:`register` bind a new passkey (resident key and user verification
  required, the user's existing credentials excluded, credential IDs unique across all users). Both enforce
  authguard's enrollment rules (:func:`authguard.factors.lifecycle.require_can_change_factors`) first.
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

import logging
import re
import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from authguard import clock
from authguard.exceptions import InvalidCredential
from authguard.factors.base import record_factor_failure, record_factor_success
from authguard.factors.changes import require_verified_since_change
from authguard.factors.inventory import is_disabled, usable_passkeys
from authguard.factors.lifecycle import (
    record_enrollment,
    require_can_change_factors,
    require_strong_rebind,
)
from authguard.factors.passkey_ceremony import (
    SUPPORTED_ALGORITHMS,
    RelyingParty,
    b64url_decode,
    b64url_encode,
    challenge_bytes,
    client_data,
    descriptor,
    invalid,
    known_transports,
    load_credential,
    pop_challenge,
    relying_party,
    store_challenge,
    timeout_ms,
    webauthn_code,
)
from authguard.factors.throttles import check_passkey_throttle, note_passkey_failure
from authguard.models import FactorKind, FactorRecord, PasskeyDevice
from authguard.validators import visible_text

logger = logging.getLogger(__name__)

#: Purpose of a registration ceremony (the other purposes are the caller's).
REGISTER = "register"
_PURPOSE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")


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


def registration_options(request: HttpRequest, *, user: Any) -> dict[str, Any]:
    """JSON ``PublicKeyCredentialCreationOptions`` for a new passkey of ``user``; stores the challenge.

    Raises :class:`~authguard.exceptions.StepUpRequired` unless the session may change factors now.
    """
    via = require_can_change_factors(request, user=user)
    require_verified_since_change(request, user=request.user, removing=False, via=via)
    rp = relying_party()
    handle = user_handle_for(user)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=handle,
        user_name=user.get_username(),
        user_display_name=user.get_full_name() if hasattr(user, "get_full_name") else "",
        timeout=timeout_ms(),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        # SECURITY: every usable credential the user has, so one authenticator is never bound twice. A passkey
        # disabled by the failure limit is left out: binding it again is how it is re-bound.
        exclude_credentials=[descriptor(device) for device in usable_passkeys(user)],
        supported_pub_key_algs=SUPPORTED_ALGORITHMS,
    )
    store_challenge(
        request,
        purpose=REGISTER,
        kind="create",
        challenge=options.challenge,
        user=user,
        handle=b64url_encode(handle),
    )
    return options_to_json_dict(options)


def _device_name(name: object) -> str:
    text = visible_text(name or "")[:64]
    return text or _("Passkey")


def register(
    request: HttpRequest, *, user: Any, credential: dict[str, Any] | str, name: str = ""
) -> PasskeyDevice:
    """Verify a ``navigator.credentials.create()`` response and bind the passkey to ``user``.

    Enforces the enrollment rules again (the session could have changed since the options), records the
    enrollment (cooling-off, notification, risk-engine history) and returns the new device. Registering never
    verifies the session: it is not a step-up. Raises :class:`~authguard.exceptions.InvalidCredential`.
    """
    via = require_can_change_factors(request, user=user)
    require_verified_since_change(request, user=request.user, removing=False, via=via)
    rp = relying_party()
    record = pop_challenge(request, purpose=REGISTER, kind="create", user=user)
    data = load_credential(credential, fields=("clientDataJSON", "attestationObject"))
    client_data(data, expected_type="webauthn.create")
    try:
        verified = verify_registration_response(
            credential=data,
            expected_challenge=challenge_bytes(record),
            expected_rp_id=rp.id,
            expected_origin=rp.origins,
            require_user_presence=True,
            require_user_verification=True,
            supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        )
    except WebAuthnException as exc:
        logger.info("authguard passkey registration refused user=%s: %s", user.pk, exc)
        raise invalid(webauthn_code(exc)) from None
    except Exception:
        # SECURITY: an unexpected parser error is a refusal, never a 500 and never a partial write.
        logger.warning("authguard passkey registration: unexpected error", exc_info=True)
        raise invalid("malformed") from None
    credential_id = b64url_encode(verified.credential_id)
    if len(verified.credential_id) > 1023 or credential_id != data["rawId"]:
        raise invalid("malformed")
    transports = known_transports(data["response"].get("transports", []))
    try:
        with transaction.atomic():
            existing = PasskeyDevice.objects.select_for_update().filter(credential_id=credential_id).first()
            if existing is not None:
                # SECURITY: a credential ID is never moved to another account; the owner may re-bind their
                # own passkey after the failure limit disabled it (NIST: "disabled until re-bound").
                if existing.user_id != user.pk or not is_disabled(existing):
                    raise invalid("already_registered")
                # SECURITY: and only through a strong path: another passkey, identity proofing (case 55).
                via = require_strong_rebind(request, user=user)
                FactorRecord.objects.filter(device_id=existing.persistent_id).delete()
                existing.delete()
            device = PasskeyDevice.objects.create(
                user=user,
                name=_device_name(name),
                confirmed=True,
                created_at=clock.now(),  # its age: the database's time, as every node compares it
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
        raise invalid("already_registered") from None
    logger.info("authguard passkey registered user=%s device=%s", user.pk, device.pk)
    return device


# -- authentication ----------------------------------------------------------------------------------------


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
            raise invalid("no_passkey")
        allow = [device.credential_id for device in devices]
        descriptors = [descriptor(device) for device in devices]
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=timeout_ms(),
        allow_credentials=descriptors,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    store_challenge(request, purpose=purpose, kind="get", challenge=challenge, user=user, allow=allow)
    return options_to_json_dict(options)


def _locked_device(credential_id: str) -> PasskeyDevice:
    device = PasskeyDevice.objects.select_for_update().filter(credential_id=credential_id).first()
    if device is None:
        raise invalid("unknown_credential")
    return device


def _check_assertion(
    device: PasskeyDevice, *, data: dict[str, Any], record: dict[str, Any], user: Any, rp: RelyingParty
) -> None:
    """All checks of one assertion against the locked ``device``; updates the device on success."""
    if not device.confirmed or is_disabled(device):
        raise invalid("disabled")
    if user is not None:
        # SECURITY: the credential must be the expected user's and one we offered (allowCredentials).
        if device.user_id != user.pk:
            raise invalid("wrong_user")
        if device.credential_id not in (record.get("allow") or []):
            raise invalid("not_allowed")
    handle = data["response"].get("userHandle")
    if handle is None and user is None:
        # A discoverable login names its account only through the userHandle.
        raise invalid("user_handle")
    if handle is not None and not constant_time_compare(handle.rstrip("="), device.user_handle):
        raise invalid("user_handle")
    try:
        # SECURITY: py_webauthn judges the sign count before the signature: an unsigned assertion with a
        # made-up counter was told "sign_count" or "signature", and a dozen of them found her passkey's
        # count (how often she uses it) and filled the log with cloned-authenticator warnings. The count
        # is judged here only once the signature verified (0: py_webauthn's own check never refuses).
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=challenge_bytes(record),
            expected_rp_id=rp.id,
            expected_origin=rp.origins,
            credential_public_key=bytes(device.public_key),
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        logger.info(
            "authguard passkey assertion refused user=%s device=%s: %s", device.user_id, device.pk, exc
        )
        raise invalid(webauthn_code(exc)) from None
    except Exception:
        logger.warning("authguard passkey assertion: unexpected error", exc_info=True)
        raise invalid("malformed") from None
    counted = verified.new_sign_count
    if (counted > 0 or device.sign_count > 0) and counted <= device.sign_count:
        # A counter that went backwards can mean a cloned authenticator: worth an operator's look.
        logger.warning(
            "authguard passkey assertion refused user=%s device=%s: sign count %s not above %s",
            device.user_id,
            device.pk,
            counted,
            device.sign_count,
        )
        raise invalid("sign_count")
    # SECURITY: backup eligibility is fixed for a credential's life; a change means another authenticator.
    eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    if eligible != device.backup_eligible:
        raise invalid("backup_flags")
    device.sign_count = verified.new_sign_count
    device.backup_state = verified.credential_backed_up
    device.last_used_at = clock.now()
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
    (:func:`authguard.factors.throttles.could_be_customer`), and any other session is throttled in its own
    scope only (:func:`~authguard.factors.throttles.check_passkey_throttle`): a bad signature is no guess
    (disabling on it would only let whoever has the password disable the customer's passkey, issue 10
    item 3), and a scope that other sessions' wrong codes fill must not hold her passkey back (red team,
    round forty-three). The caller's view checks the account lock first, and counts a failure towards it.
    Anonymous (``user=None``) failures never count. Raises
    :class:`~authguard.exceptions.InvalidCredential` or :class:`~authguard.exceptions.Throttled`.
    """
    if user is not None:
        check_passkey_throttle(request)
    rp = relying_party()
    record = pop_challenge(request, purpose=purpose, kind="get", user=user)
    data = load_credential(credential, fields=("clientDataJSON", "authenticatorData", "signature"))
    client_data(data, expected_type="webauthn.get")
    failure: InvalidCredential | None = None
    with transaction.atomic():
        device = _locked_device(data["rawId"])
        try:
            _check_assertion(device, data=data, record=record, user=user, rp=rp)
        except InvalidCredential as exc:
            failure = exc
            if user is not None and device.user_id == user.pk and exc.code not in ("disabled", "not_allowed"):
                record_factor_failure(device, kind=FactorKind.PASSKEY, request=request)
        else:
            record_factor_success(device)
    if failure is not None:
        if user is not None:
            note_passkey_failure(request)
        raise failure
    return device


__all__ = [
    "authentication_options",
    "REGISTER",
    "register",
    "registration_options",
    "user_handle_for",
    "verify_authentication",
]
