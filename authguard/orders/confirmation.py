"""Confirming a held item, once: the flow that held orders (:mod:`authguard.orders.held`) and held sensitive
actions (:mod:`authguard.actions.flow`) both call.

Dynamic linking: the exact canonical JSON of the item (:func:`canonical_json`) and its SHA-256
(:func:`digest_of`) are stored with a random ``nonce``, and the passkey challenge is ``sha256(nonce ||
digest)`` (:func:`challenge_for`), so an assertion confirms this item and no other. A confirmation is bound
to the session that asked for it (:func:`session_binding`), single use, expires, and is carried out exactly
once under the customer's and the item's row locks (:func:`execute_once`).

What differs between orders and actions (the model, the session key, the WebAuthn purpose, the wording, the
recheck before execution, what follows it) is a :class:`HeldKind` and the callables the owners pass in.

The confirmation exceptions live here (their default wording is the held order's, the first held item;
:mod:`authguard.actions.flow` subclasses them with its own), so whatever answers a held order's
:class:`ConfirmationError` answers a held action's too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import SESSION_KEY, get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard import clock
from authguard.exceptions import AuthguardError, InvalidCredential, Throttled
from authguard.factors.base import note_account_failure
from authguard.factors.passkey_ceremony import b64url_decode
from authguard.factors.passkeys import authentication_options, verify_authentication
from authguard.factors.totp import verify_totp

logger = logging.getLogger(__name__)

# -- exceptions ---------------------------------------------------------------------------------------------


class ConfirmationError(AuthguardError):
    """A confirmation attempt failed; ``http_status`` is the answer of CONTRACTS section 4."""

    http_status = 400


class ConfirmationNotFound(ConfirmationError):
    """No such pending confirmation for this customer in this session (also for another session's)."""

    http_status = 404
    default_code = "not_found"
    default_message = gettext_lazy("There is no such order waiting for your confirmation.")


class ConfirmationGone(ConfirmationError):
    """The confirmation expired, was cancelled, or was already used."""

    http_status = 410
    default_code = "gone"
    default_message = gettext_lazy("This order is no longer waiting for confirmation.")


class ConfirmationInvalid(ConfirmationError):
    """The passkey or code did not verify, the method is not allowed, or the factor is cooling off."""

    http_status = 400
    default_code = "invalid"
    default_message = gettext_lazy("The confirmation failed.")


class ConfirmationThrottled(ConfirmationError):
    """The factor's back-off refuses attempts for now (a wrong code was just tried): 429 ``throttled``."""

    http_status = 429
    default_code = "throttled"
    default_message = gettext_lazy("Too many attempts. Please wait a moment and try again.")

    def __init__(
        self, message: str | None = None, *, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        #: Whole seconds until the factor takes an attempt again (``Retry-After``); None: unknown.
        self.retry_after: int | None = retry_after


# -- what differs between held orders and held actions ----------------------------------------------------


@dataclass(frozen=True)
class HeldKind:
    """One kind of held item: its model, its session binding, its WebAuthn purpose and its wording.

    The model has ``methods``, ``canonical``, ``digest``, ``nonce``, ``session_binding``, ``status`` (with a
    ``Status`` enum of ``PENDING``, ``CONFIRMED``...), ``expires_at``, ``closed_at``, ``failure`` and the
    ``confirmed_*``/``assertion``/``result_ref`` fields.
    """

    #: The model class (HeldOrder or HeldAction); typed loosely: the two share fields, not a base class.
    model: Any
    #: Session key of the random token that binds the items to the session that asked for them.
    binding_key: str
    #: Whether only a signed-in session may get a binding (held orders; see :func:`session_binding`).
    binding_needs_login: bool
    #: WebAuthn purpose prefix: the purpose is ``f"{purpose}:{pk}"``.
    purpose: str
    not_found: type[ConfirmationNotFound]
    gone: type[ConfirmationGone]
    invalid: type[ConfirmationInvalid]
    throttled: type[ConfirmationThrottled]
    expired_message: str | Promise
    passkey_method_message: str | Promise
    totp_method_message: str | Promise
    challenge_message: str | Promise
    #: Whether a credential that is neither an object nor a string is refused before the challenge is
    #: read (``malformed``) rather than after (held orders answer ``challenge`` for it).
    shape_before_challenge: bool

    @property
    def pending(self) -> str:
        return str(self.model.Status.PENDING)


# -- canonical form, digest, challenge, session binding ---------------------------------------------------


def canonical_json(data: Mapping[str, Any]) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of(canonical: str) -> str:
    """SHA-256 (hex) of a canonical item."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def challenge_for(held: Any) -> bytes:
    """The WebAuthn challenge of a held item: ``sha256(nonce || digest)`` (dynamic linking).

    The nonce is renewed by every :func:`passkey_options`, so each attempt signs a new challenge that still
    names this exact item; the nonce of the successful attempt stays on the row with the assertion.
    """
    return hashlib.sha256(bytes.fromhex(held.nonce) + bytes.fromhex(held.digest)).digest()


def session_binding(request: HttpRequest | None, kind: HeldKind, *, create: bool) -> str | None:
    """The hash of this session's binding token for ``kind`` (made when ``create``), or ``None``.

    The token lives in the session's data, so it survives the key rotation of a step-up (``cycle_key``)
    but no other session (or a new login, which flushes the session) ever has it.
    """
    session = getattr(request, "session", None)
    if session is None:
        return None
    token = session.get(kind.binding_key)
    if not isinstance(token, str) or len(token) < 32:
        # SECURITY: for held orders only a signed-in session carries a binding. A token client's request
        # comes with an anonymous session: a binding written there would create a session (and a cookie)
        # that no sign-in can ever satisfy; without one the order can only be cancelled or expire.
        if not create or (kind.binding_needs_login and session.get(SESSION_KEY) is None):
            return None
        token = secrets.token_urlsafe(32)
        session[kind.binding_key] = token
    return hashlib.sha256(token.encode()).hexdigest()


def signed_challenge(credential: object) -> bytes | None:
    """The challenge inside the assertion's ``clientDataJSON``, or ``None`` when unreadable."""
    try:
        if isinstance(credential, str):
            credential = json.loads(credential)
        raw = credential["response"]["clientDataJSON"]  # type: ignore[index]
        client_data = json.loads(b64url_decode(raw, max_chars=8 * 1024))
        return b64url_decode(client_data["challenge"], max_chars=256)
    except (InvalidCredential, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def lock_customer(user: Any) -> None:
    """``SELECT ... FOR UPDATE`` on the customer's row: one order or sensitive action of theirs at a time."""
    model = get_user_model()
    # SECURITY: every read of the rolling window that leads to a placement happens under this lock.
    model._default_manager.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


# -- finding the item ---------------------------------------------------------------------------------------


def parse_id(item_id: object, kind: HeldKind) -> uuid.UUID:
    """``item_id`` as a UUID; :attr:`HeldKind.not_found` for anything else."""
    try:
        return uuid.UUID(str(item_id))
    except (ValueError, TypeError, AttributeError):
        raise kind.not_found() from None


def owned(request: HttpRequest, item_id: object, kind: HeldKind) -> Any:
    """The signed-in customer's held item ``item_id`` in any state, from any of their sessions."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise kind.not_found()
    held = kind.model._default_manager.filter(pk=parse_id(item_id, kind), user_id=user.pk).first()
    if held is None:
        raise kind.not_found()
    return held


def pending(
    request: HttpRequest, item_id: object, kind: HeldKind, *, close: Callable[[uuid.UUID, str], bool]
) -> Any:
    """The held item ``item_id`` of the signed-in customer *in this session*, still pending; one past its
    time is closed here (``close(pk, "expired")``) and answered as gone."""
    held = owned(request, item_id, kind)
    binding = session_binding(request, kind, create=False)
    # SECURITY: only the session that asked may confirm it; others cannot even see it exists.
    if not binding or not held.session_binding or not secrets.compare_digest(binding, held.session_binding):
        raise kind.not_found()
    if held.status != kind.pending:
        raise kind.gone()
    if held.expires_at <= clock.now():
        close(held.pk, kind.model.Status.EXPIRED)
        raise kind.gone(str(kind.expired_message), code="expired")
    return held


# -- verifying the customer's factor ------------------------------------------------------------------------


def passkey_options(
    request: HttpRequest, held: Any, kind: HeldKind, *, recheck: Callable[[Any], Any]
) -> dict[str, Any]:
    """WebAuthn request options whose challenge is ``sha256(nonce || digest)`` of the pending ``held``."""
    if "passkey" not in held.methods:
        raise kind.invalid(str(kind.passkey_method_message), code="method")
    recheck(held)
    # A fresh nonce per attempt: every challenge is single use, and a failed try must not burn the item.
    held.nonce = secrets.token_hex(16)
    kind.model._default_manager.filter(pk=held.pk, status=kind.pending).update(nonce=held.nonce)
    try:
        return authentication_options(
            request, purpose=f"{kind.purpose}:{held.pk}", user=request.user, challenge=challenge_for(held)
        )
    except InvalidCredential as exc:
        raise kind.invalid(exc.message, code=exc.code) from None


def verify_passkey(
    request: HttpRequest, held: Any, kind: HeldKind, *, credential: object, recheck: Callable[[Any], Any]
) -> Any:
    """The customer's passkey that signed this item's challenge (the device), or :attr:`HeldKind.invalid`.
    A failed verification counts towards the account's lock, like a failed step-up."""
    if "passkey" not in held.methods:
        raise kind.invalid(str(kind.passkey_method_message), code="method")
    recheck(held)
    if kind.shape_before_challenge and not isinstance(credential, dict | str):
        raise kind.invalid(code="malformed")
    # SECURITY: dynamic linking: the signed challenge must be the one derived from this exact item.
    signed = signed_challenge(credential)
    if signed is None or not secrets.compare_digest(signed, challenge_for(held)):
        raise kind.invalid(str(kind.challenge_message), code="challenge")
    if not isinstance(credential, dict | str):
        raise kind.invalid(code="malformed")
    try:
        return verify_authentication(
            request, purpose=f"{kind.purpose}:{held.pk}", credential=credential, user=request.user
        )
    except InvalidCredential as exc:
        note_account_failure(request.user, kind="passkey", code=exc.code)
        raise kind.invalid(exc.message, code=exc.code) from None


def verify_confirmation_code(
    request: HttpRequest,
    held: Any,
    kind: HeldKind,
    *,
    code: object,
    allowed: bool,
    recheck: Callable[[Any], Any],
) -> Any:
    """The customer's TOTP device that took ``code`` for this item; :attr:`HeldKind.throttled` while the
    factor's back-off refuses attempts, :attr:`HeldKind.invalid` otherwise. ``allowed``: whether this item
    may be confirmed with a code at all."""
    if not allowed:
        raise kind.invalid(str(kind.totp_method_message), code="method")
    recheck(held)
    if (
        not isinstance(code, str)
        or not (code.strip().isascii() and code.strip().isdigit())
        or len(code.strip()) > 10
    ):
        raise kind.invalid(_("Enter the code from your authenticator app."), code="malformed")
    try:
        # SECURITY: with the request, every wrong code counts towards the factor's failure limit and the
        # lifecycle's back-off, for orders and sensitive actions alike (no cheaper place to guess codes).
        device = verify_totp(request.user, code.strip(), request=request)
    except Throttled as exc:
        raise kind.throttled(exc.message, code=exc.code, retry_after=exc.retry_after) from None
    except AuthguardError as exc:
        raise kind.invalid(exc.message, code=exc.code) from None
    if device is None:
        raise kind.invalid(_("The code is not correct."), code="wrong_code")
    return device


# -- carrying it out once, closing --------------------------------------------------------------------------


def execute_once(
    user: Any,
    held_id: uuid.UUID,
    kind: HeldKind,
    *,
    method: str,
    device: Any,
    assertion: Any,
    related: str,
    recheck: Callable[[Any, datetime], dict[str, Any]],
    recheck_errors: tuple[type[AuthguardError], ...],
    execute: Callable[[Any], Any],
    not_executable: type[AuthguardError],
    close_locked: Callable[..., None],
    confirmed: Callable[[Any, dict[str, Any], datetime], None],
) -> Any:
    """Under the customer's and the held item's row locks: recheck, mark used, carry out once; return the
    confirmed row.

    ``recheck(held, now)`` returns the stored item (raising one of ``recheck_errors`` closes it as failed);
    ``execute(held)`` is the portal's executor (its writes are undone when it raises ``not_executable``);
    ``confirmed(held, data, now)`` runs after the row was saved as confirmed, inside the same transaction.
    """
    status = kind.model.Status
    failure: AuthguardError | None = None
    with transaction.atomic():
        lock_customer(user)
        held = kind.model._default_manager.select_for_update().select_related(related).get(pk=held_id)
        now = clock.now()
        # SECURITY: single use: whoever takes the lock second finds it no longer pending.
        if held.status != status.PENDING:
            raise kind.gone()
        data: dict[str, Any] = {}
        if held.expires_at <= now:
            close_locked(held, status.EXPIRED, now=now)
            failure = kind.gone(str(kind.expired_message), code="expired")
        else:
            try:
                data = recheck(held, now)  # SECURITY: rechecked under the lock (battery case 36)
            except recheck_errors as exc:
                close_locked(held, status.FAILED, now=now, reason=exc.message)
                failure = exc
        if failure is None:
            held.confirmed_at = now
            held.confirmed_method = method
            held.confirmed_device = str(getattr(device, "persistent_id", ""))[:255]
            held.assertion = assertion
            try:
                with transaction.atomic():  # the executor's writes are undone if it refuses
                    ref = execute(held)
            except not_executable as exc:
                close_locked(held, status.FAILED, now=now, reason=exc.message)
                failure = kind.invalid(exc.message, code="not_executable")
            else:
                held.status = status.CONFIRMED
                held.closed_at = now
                held.result_ref = "" if ref is None else str(ref)[:64]
                held.save()
                confirmed(held, data, now)
    if failure is not None:
        raise failure
    return held


def mark_closed(held: Any, status: str, *, now: datetime, reason: str = "") -> None:
    """Save ``held`` as closed with ``status`` (cancelled, expired, failed); the caller holds its row lock."""
    held.status = status
    held.closed_at = now
    held.failure = str(reason)[:300]
    held.save(
        update_fields=[
            "status",
            "closed_at",
            "failure",
            "confirmed_at",
            "confirmed_method",
            "confirmed_device",
            "assertion",
        ]
    )


def release_portal_copy(held: Any, release: Callable[[], object]) -> None:
    """Let the portal close its copy of the closed ``held`` item (``release()``), in a savepoint.

    SECURITY: a failing portal hook (its back office is down) is logged and never undoes the close: a cancel
    by the customer or the desk, an expiry or a failure stands, and the item can never execute.
    """
    try:
        with transaction.atomic():
            release()
    except Exception:
        logger.exception(
            "authguard: held item %s is %s, but the portal could not close its copy", held.pk, held.status
        )


def close_pending(
    held_id: uuid.UUID, kind: HeldKind, *, status: str, close_locked: Callable[..., None], reason: str = ""
) -> bool:
    """Close a pending held item under its row lock; False if it was not pending."""
    with transaction.atomic():
        held = kind.model._default_manager.select_for_update().filter(pk=held_id).first()
        if held is None or held.status != kind.pending:
            return False
        close_locked(held, status, now=clock.now(), reason=reason)
    return True


def expire_rows(rows: Any, kind: HeldKind, *, close: Callable[[uuid.UUID, str], bool]) -> int:
    """Expire the held items of the queryset ``rows`` (pending, past their time); return how many."""
    due = list(rows.values_list("pk", flat=True))
    expired = kind.model.Status.EXPIRED
    return len([pk for pk in due if close(pk, expired)])


__all__ = [
    "ConfirmationError",
    "ConfirmationGone",
    "ConfirmationInvalid",
    "ConfirmationNotFound",
    "ConfirmationThrottled",
    "HeldKind",
    "canonical_json",
    "challenge_for",
    "close_pending",
    "digest_of",
    "execute_once",
    "expire_rows",
    "lock_customer",
    "mark_closed",
    "owned",
    "parse_id",
    "passkey_options",
    "pending",
    "release_portal_copy",
    "session_binding",
    "signed_challenge",
    "verify_confirmation_code",
    "verify_passkey",
]
