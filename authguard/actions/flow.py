"""Sensitive actions beyond orders: hold them until the customer confirms with a passkey bound to the action.

A portal describes a withdrawal, a bank-account registration or change, a transfer of securities out or a
contact change as a ``kind`` and its ``params``, and submits it through :func:`guard`::

    outcome = actions.guard(request, kind="withdrawal", portal_ref=str(withdrawal.pk),
                            params={"account": "42", "payee": "7", "amount": "500000", "currency": "JPY"})
    if isinstance(outcome, actions.Held):
        return JsonResponse({"status": "held", "confirmation": outcome.as_json()}, status=202)

The confirmation works as a held order's does (dynamic linking): the exact canonical action JSON and its
SHA-256 ``digest`` are stored with a random ``nonce``, and the passkey challenge is ``sha256(nonce ||
digest)``, so an assertion confirms this action and no other. A confirmation is single use, expires
(``AUTHGUARD_ACTION_CONFIRMATION_SECONDS``), is bound to the session that asked for it, is refused for a
factor in its cooling-off (or one confirmed during the account's cooling-off, see
:mod:`authguard.factors.lifecycle`) and for a factor newer than the action, and carries the action out
exactly once, under row locks, through the portal's executor (``AUTHGUARD_ACTION_EXECUTOR``: an object with
``execute(action) -> str`` that carries out the *stored* canonical action, and ``release(action, *,
status)`` that closes the portal's copy of an action that will never be carried out).

**New-payee hold.** Every bank account that can receive money is a
:class:`~authguard.models.RegisteredPayee` with the time it was registered or last changed (written by
authguard itself when a ``bank_account_add`` or ``bank_account_change`` is carried out, or by
:func:`register_payee` for the accounts a portal had before). A withdrawal to a payee registered less than
``AUTHGUARD_NEW_PAYEE_HOLD_HOURS`` ago is refused (:class:`PayeeOnHold`) when asked and again when carried
out, whatever was confirmed.

**Methods.** A passkey. TOTP only where ``AUTHGUARD_ACTION_CONFIRMATION_METHODS`` lists it and the customer
has no usable passkey; never under the ``jsda-2025`` preset, never for a ``contact_change``. A customer with
no usable method is refused with a clear message (:class:`NoConfirmationMethod`) and nothing is held.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard import clock
from authguard.actions.errors import ActionError as ActionError
from authguard.actions.errors import ActionInvalid as ActionInvalid
from authguard.actions.errors import ActionNotExecutable as ActionNotExecutable
from authguard.actions.errors import ActionRefused as ActionRefused
from authguard.actions.errors import ActionsMisconfigured as ActionsMisconfigured
from authguard.actions.errors import ConfirmationError as ConfirmationError
from authguard.actions.errors import ConfirmationGone as ConfirmationGone
from authguard.actions.errors import ConfirmationInvalid as ConfirmationInvalid
from authguard.actions.errors import ConfirmationNotFound as ConfirmationNotFound
from authguard.actions.errors import ConfirmationThrottled as ConfirmationThrottled
from authguard.actions.errors import NoConfirmationMethod as NoConfirmationMethod
from authguard.actions.errors import PayeeOnHold as PayeeOnHold
from authguard.actions.errors import UnknownPayee as UnknownPayee
from authguard.actions.hooks import Executor as Executor
from authguard.actions.hooks import _executor
from authguard.actions.methods import _require_may_confirm
from authguard.actions.methods import confirmation_methods as confirmation_methods
from authguard.actions.params import KIND_PARAMS as KIND_PARAMS
from authguard.actions.params import KINDS as KINDS
from authguard.actions.params import MAX_AMOUNT as MAX_AMOUNT
from authguard.actions.params import MAX_QUANTITY as MAX_QUANTITY
from authguard.actions.params import OUTFLOW_KINDS as OUTFLOW_KINDS
from authguard.actions.params import PAYEE_DETAILS as PAYEE_DETAILS
from authguard.actions.params import PAYEE_KINDS as PAYEE_KINDS
from authguard.actions.params import REASON_CONTACT_CHANGED as REASON_CONTACT_CHANGED
from authguard.actions.params import clean_params as clean_params
from authguard.actions.payees import _payee_snapshot, _recheck_payee, _write_payee
from authguard.actions.payees import hold_hours as hold_hours
from authguard.actions.payees import payee_available_at as payee_available_at
from authguard.actions.payees import payee_digest as payee_digest
from authguard.actions.payees import payee_for as payee_for
from authguard.actions.payees import payee_label as payee_label
from authguard.actions.payees import register_payee as register_payee
from authguard.actions.payees import remove_payee as remove_payee
from authguard.actions.summary import action_json as action_json
from authguard.actions.summary import action_url as action_url
from authguard.actions.summary import format_money as format_money
from authguard.actions.summary import render_summary as render_summary
from authguard.actions.summary import summary_data as summary_data
from authguard.actions.summary import summary_for
from authguard.audit import audit
from authguard.conf import app_settings
from authguard.factors import passkey_ceremony
from authguard.factors.inventory import (
    usable_passkeys,
)
from authguard.factors.lifecycle import note_contact_changed
from authguard.models import ActionKind as ActionKind
from authguard.models import HeldAction
from authguard.notifications.lures import strip_lures
from authguard.notifications.outbox import notify_customer
from authguard.orders import confirmation as flow
from authguard.orders.confirmation import HeldKind, canonical_json
from authguard.orders.confirmation import challenge_for as challenge_for
from authguard.orders.confirmation import lock_customer as lock_customer

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Version of the canonical action JSON (a row of another version is refused, not parsed).
CANONICAL_VERSION = 1
#: Session key of the random token that binds held actions to the session that asked for them. It survives
#: the key rotation of a step-up (``cycle_key``); no other session (nor a new login) ever has it.
BINDING_SESSION_KEY = "_authguard_action_binding"
#: Most actions one customer may have waiting at once; more are refused (no flood of notices).
MAX_PENDING = 5

#: What makes a held action's confirmation differ from a held order's.
HELD_ACTION = HeldKind(
    model=HeldAction,
    binding_key=BINDING_SESSION_KEY,
    binding_needs_login=False,
    purpose="action",
    not_found=ConfirmationNotFound,
    gone=ConfirmationGone,
    invalid=ConfirmationInvalid,
    throttled=ConfirmationThrottled,
    expired_message=gettext_lazy("This expired before it was confirmed."),
    passkey_method_message=gettext_lazy("This cannot be confirmed with a passkey."),
    totp_method_message=gettext_lazy("This must be confirmed with your passkey."),
    challenge_message=gettext_lazy("This passkey response is not for this request."),
    shape_before_challenge=True,
)


# -- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed(Generic[T]):
    """The kind is not guarded (``AUTHGUARD_ACTION_GUARDED_KINDS``): ``perform()`` returned ``result``."""

    kind: str
    result: T


@dataclass(frozen=True)
class Held:
    """The action waits for the customer's confirmation; nothing was carried out."""

    action: HeldAction

    def as_json(self) -> dict[str, Any]:
        """``{id, kind, summary, methods, expires_at, url}``: the ``confirmation`` of a 202 ``held``."""
        return action_json(self.action)


@dataclass(frozen=True)
class Confirmed:
    """The action was confirmed and carried out exactly once; ``result_ref`` is the portal's reference."""

    action: HeldAction
    result_ref: str


def guarded_kinds() -> frozenset[str]:
    """The kinds held for confirmation (all of them by default, and always under the JSDA preset)."""
    return frozenset(app_settings.ACTION_GUARDED_KINDS)


# -- canonical form, digest -----------------------------------------------------------------------------


def action_digest(canonical: str) -> str:
    """SHA-256 (hex) of the canonical action."""
    return flow.digest_of(canonical)


def stored_action(held: HeldAction) -> dict[str, Any]:
    """The held action's canonical action, after checking it still hashes to its digest.

    Executors read the action from here, never from the client. Raises :class:`ConfirmationInvalid` for a
    row whose canonical action was changed after it was held.
    """
    changed = ConfirmationInvalid(_("This was changed after it was asked for."), code="action_changed")
    # SECURITY: recomputed on every use: a changed action voids the confirmation.
    if not secrets.compare_digest(action_digest(held.canonical), held.digest):
        raise changed
    try:
        data = json.loads(held.canonical)
    except ValueError:
        raise changed from None
    if (
        not isinstance(data, dict)
        or data.get("v") != CANONICAL_VERSION
        or data.get("type") != "action"
        or data.get("confirmation") != str(held.pk)
        or data.get("kind") != held.kind
        or data.get("user") != str(held.user_id)
    ):
        raise changed
    return data


def _session_binding(request: HttpRequest | None, *, create: bool) -> str | None:
    return flow.session_binding(request, HELD_ACTION, create=create)


# -- methods ------------------------------------------------------------------------------------------------


# -- asking for an action -----------------------------------------------------------------------------------


def guard(
    request: HttpRequest | None,
    *,
    kind: str,
    params: Mapping[str, Any],
    portal_ref: str = "",
    perform: Callable[[], T] | None = None,
    user: Any = None,
    now: datetime | None = None,
) -> Allowed[T] | Held:
    """Ask for a sensitive action: hold it for the customer's confirmation (or, for a kind the settings do not
    guard, carry it out now with ``perform()``).

    ``params`` are checked against the kind's schema (:data:`KIND_PARAMS`); ``portal_ref`` is the portal's
    reference of its own pending copy (e.g. a withdrawal's primary key), given back to the executor. Runs in
    one transaction under the customer's row lock: call it inside the portal's transaction that wrote the
    pending copy, so a refusal leaves nothing behind. Raises :class:`ActionInvalid` (400),
    :class:`UnknownPayee`, :class:`PayeeOnHold`, :class:`NoConfirmationMethod`, :class:`ActionRefused` (403).
    """
    user = user if user is not None else getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        raise ActionRefused(_("Sign in first."), code="login_required")
    clean = clean_params(kind=kind, params=params)
    if not isinstance(portal_ref, str) or len(portal_ref) > 64:
        raise ValueError("portal_ref must be a string of at most 64 characters")
    now = now or clock.now()
    guarded = kind in guarded_kinds()
    with transaction.atomic():
        lock_customer(user)
        _expire_for(user, now=now)
        payee = _payee_snapshot(user, kind, clean, now=now)
        if not guarded:
            if perform is None:
                raise ActionsMisconfigured(f"{kind} is not guarded: pass perform= to carry it out.")
            result = perform()
            _carried_out(user, kind, clean, action=None, now=now, payee=payee)
            return Allowed(kind, result)
        _executor()  # SECURITY: fail closed before holding anything the portal could never carry out
        if (
            HeldAction.objects.filter(user_id=user.pk, status=HeldAction.Status.PENDING).count()
            >= MAX_PENDING
        ):
            raise ActionRefused(
                _("Too many requests are waiting for your confirmation. Confirm or cancel them first."),
                code="too_many_pending",
            )
        methods = confirmation_methods(user, kind=kind)
        if not methods:
            raise NoConfirmationMethod()
        held = _create_held(request, user=user, kind=kind, params=clean, payee=payee, methods=methods,
                            portal_ref=portal_ref, now=now)  # fmt: skip
        _notify_customer(
            user,
            "action_held",
            context={
                "summary": summary_for(user, held.summary_data),
                "time": now,
                "expires": held.expires_at,
            },
            dedupe_key=f"action-held:{held.pk}",
        )
    logger.info("authguard action held user=%s kind=%s id=%s", user.pk, kind, held.pk)
    return Held(held)


def _create_held(
    request: HttpRequest | None,
    *,
    user: Any,
    kind: str,
    params: dict[str, Any],
    payee: dict[str, Any] | None,
    methods: list[str],
    portal_ref: str,
    now: datetime,
) -> HeldAction:
    held_id = uuid.uuid4()
    canonical = canonical_json(
        {
            "v": CANONICAL_VERSION,
            "type": "action",
            "confirmation": str(held_id),
            "user": str(user.pk),
            "kind": kind,
            "params": params,
            "payee": payee,
            "portal_ref": portal_ref,
            "held_at": now.isoformat(),
        }
    )
    data = summary_data(kind, params, payee=payee)
    binding = _session_binding(request, create=True)
    return HeldAction.objects.create(
        id=held_id,
        user=user,
        kind=kind,
        canonical=canonical,
        digest=action_digest(canonical),
        nonce=secrets.token_hex(16),
        # SECURITY: no session, no binding anyone could satisfy: such an action can only be cancelled.
        session_binding=binding or "",
        methods=methods,
        summary=render_summary(data),
        summary_data=data,
        status=HeldAction.Status.PENDING,
        created_at=now,
        expires_at=now + timedelta(seconds=app_settings.ACTION_CONFIRMATION_SECONDS),
        portal_ref=portal_ref,
    )


# -- confirming -------------------------------------------------------------------------------------------


def owned_action(request: HttpRequest, action_id: object) -> HeldAction:
    """The signed-in customer's held action ``action_id`` in any state, from any of their sessions (to show or
    cancel it). Raises :class:`ConfirmationNotFound` for anyone else's or a malformed id."""
    return flow.owned(request, action_id, HELD_ACTION)


def pending_for(request: HttpRequest, action_id: object) -> HeldAction:
    """The held action ``action_id`` of the signed-in customer *in this session*, still pending.

    Raises :class:`ConfirmationNotFound` (unknown, another customer's, another session's) or
    :class:`ConfirmationGone` (confirmed, cancelled, expired: an expired one is closed here, on read).
    """
    return flow.pending(request, action_id, HELD_ACTION, close=_close)


def confirmation_options(request: HttpRequest, *, action_id: object) -> dict[str, Any]:
    """WebAuthn request options whose challenge is ``sha256(nonce || digest)`` of this held action."""
    held = pending_for(request, action_id)
    return flow.passkey_options(request, held, HELD_ACTION, recheck=stored_action)


def confirm_with_passkey(request: HttpRequest, *, action_id: object, credential: object) -> Confirmed:
    """Confirm with the customer's passkey and carry the stored action out exactly once."""
    held = pending_for(request, action_id)
    device = flow.verify_passkey(request, held, HELD_ACTION, credential=credential, recheck=stored_action)
    _require_may_confirm(request.user, device, held)
    evidence = passkey_ceremony.assertion_evidence(credential)
    return _execute(request.user, held.pk, method="passkey", device=device, assertion=evidence)


def confirm_with_totp(request: HttpRequest, *, action_id: object, code: object) -> Confirmed:
    """Confirm with a TOTP code, only where this action's ``methods`` allow it (never under the preset)."""
    held = pending_for(request, action_id)
    allowed = (
        "totp" in held.methods
        and held.kind != ActionKind.CONTACT_CHANGE  # SECURITY: held before the rule (round thirty)
        and not app_settings.JSDA
        and not usable_passkeys(request.user)
    )
    device = flow.verify_confirmation_code(
        request, held, HELD_ACTION, code=code, allowed=allowed, recheck=stored_action
    )
    _require_may_confirm(request.user, device, held)
    return _execute(request.user, held.pk, method="totp", device=device, assertion=None)


def _recheck(held: HeldAction, now: datetime) -> dict[str, Any]:
    data = stored_action(held)  # SECURITY: rechecked under the lock
    _recheck_payee(held, data, now=now)
    return data


def _done(held: HeldAction, data: dict[str, Any], now: datetime) -> None:
    _carried_out(held.user, held.kind, data["params"], action=held, now=now, payee=data.get("payee"))


def _execute(user: Any, held_id: uuid.UUID, *, method: str, device: Any, assertion: Any) -> Confirmed:
    """Under the customer's and the held action's row locks: recheck, mark used, carry out once."""
    held = flow.execute_once(
        user,
        held_id,
        HELD_ACTION,
        method=method,
        device=device,
        assertion=assertion,
        related="user",
        recheck=_recheck,
        recheck_errors=(ConfirmationInvalid, PayeeOnHold),
        execute=lambda row: _executor().execute(row),
        not_executable=ActionNotExecutable,
        close_locked=_close_locked,
        confirmed=_done,
    )
    logger.info("authguard action %s (%s) confirmed with %s", held.pk, held.kind, method)
    return Confirmed(held, held.result_ref)


def _carried_out(
    user: Any,
    kind: str,
    params: Mapping[str, Any],
    *,
    action: HeldAction | None,
    now: datetime,
    payee: Mapping[str, Any] | None,
) -> None:
    """After the portal carried an action out: payees start their hold, contact changes a cooling-off, and the
    customer is told."""
    if kind in PAYEE_KINDS:
        _write_payee(user=user, params=params, at=now, source="confirmed", action=action)
    if kind == ActionKind.CONTACT_CHANGE:
        # SECURITY: a changed contact is what a thief does before he acts: new factors wait again, and
        # notices keep going to the previous e-mail address until the cooling-off ends. ``user`` was loaded
        # before the portal's executor ran, so it still holds the old address unless it was this instance
        # the executor changed.
        old_email = ""
        if params["field"] == "email":
            held_email = str(getattr(user, get_user_model().get_email_field_name(), "") or "")
            old_email = held_email if held_email != params["value"] else ""
        # Confirmed with her passkey (one that may confirm it: not cooling off, older than the action): her
        # choice, as the e-mail page's passkey path (where the password reset's link goes; round forty).
        by_passkey = action is not None and action.confirmed_method == "passkey"
        note_contact_changed(
            user, old_email=old_email, reason=REASON_CONTACT_CHANGED, at=now, by_passkey=by_passkey
        )
    data = action.summary_data if action is not None else summary_data(kind, params, payee=payee)
    _notify_customer(
        user,
        "action_done",
        context={"summary": summary_for(user, data), "time": now},
        dedupe_key=f"action-done:{action.pk}" if action is not None else None,
    )


# -- closing ----------------------------------------------------------------------------------------------


def _close_locked(held: HeldAction, status: str, *, now: datetime, reason: str = "") -> None:
    flow.mark_closed(held, status, now=now, reason=reason)
    flow.release_portal_copy(held, lambda: _executor().release(held, status=status))


def _close(held_id: uuid.UUID, status: str, *, reason: str = "") -> bool:
    """Close a pending held action (cancelled, expired, failed) under its lock; False if not pending."""
    return flow.close_pending(held_id, HELD_ACTION, status=status, close_locked=_close_locked, reason=reason)


def _expire_for(user: Any, *, now: datetime) -> int:
    """Expire the customer's own held actions past their time (there is no need for a periodic task)."""
    rows = HeldAction.objects.filter(user_id=user.pk, status=HeldAction.Status.PENDING, expires_at__lte=now)
    return flow.expire_rows(rows, HELD_ACTION, close=_close)


def cancel(request: HttpRequest, *, action_id: object) -> None:
    """The customer cancels a held action (from any of their sessions). Raises if it is not pending."""
    held = owned_action(request, action_id)
    if not _close(held.pk, HeldAction.Status.CANCELLED):
        raise ConfirmationGone()
    logger.info("authguard action %s cancelled by the customer", held.pk)


def staff_cancel(held: HeldAction, *, by: Any, reason: str) -> bool:
    """Cancel a pending held action for the security desk; False if it was no longer pending. There is no
    staff release: only the customer's own factor confirms a sensitive action.

    Who and why go to the admin log; the customer is told that the security desk cancelled the request.
    SECURITY: staff names and internal notes never reach the customer's pages or mail.
    """
    now = clock.now()
    with transaction.atomic():
        if not _close(held.pk, HeldAction.Status.CANCELLED):
            return False
        audit(by, held, f"cancelled: {reason}")
        _notify_customer(
            held.user,
            "staff_action",
            context={
                "action": "cancel_action",
                "stage": "executed",
                # SECURITY: a summary stored before round fifty-seven may hold his number (round 58).
                "what": strip_lures(str(held.summary))[:120],
                "four_eyes": False,
                "time": now,
            },
            dedupe_key=f"staff:cancel_action:{held.pk}",
        )
    return True


def expire_due(*, now: datetime | None = None) -> int:
    """Expire every pending held action past its ``expires_at``; return how many (periodic task, optional:
    actions also expire when read and when their customer asks for another)."""
    now = now or clock.now()
    rows = HeldAction.objects.filter(status=HeldAction.Status.PENDING, expires_at__lte=now)
    return flow.expire_rows(rows, HELD_ACTION, close=_close)


def pending_actions(user: Any) -> list[HeldAction]:
    """The customer's actions waiting for confirmation (expired ones are closed first)."""
    if user is None or getattr(user, "pk", None) is None:
        return []
    _expire_for(user, now=clock.now())
    return list(
        HeldAction.objects.filter(user_id=user.pk, status=HeldAction.Status.PENDING).order_by("created_at")
    )


# -- notifications ------------------------------------------------------------------------------------------


def _notify_customer(user: Any, kind: str, *, context: dict[str, Any], dedupe_key: str | None) -> None:
    """Tell the customer (and, during a cooling-off after an e-mail change, the previous address too)."""
    notify_customer(user, kind, context=context, dedupe_key=dedupe_key)


__all__ = [
    "ActionError",
    "ActionInvalid",
    "ActionKind",
    "ActionNotExecutable",
    "ActionRefused",
    "ActionsMisconfigured",
    "Allowed",
    "ConfirmationError",
    "ConfirmationGone",
    "ConfirmationInvalid",
    "ConfirmationNotFound",
    "ConfirmationThrottled",
    "Confirmed",
    "Executor",
    "Held",
    "KINDS",
    "KIND_PARAMS",
    "NoConfirmationMethod",
    "PayeeOnHold",
    "UnknownPayee",
    "action_digest",
    "action_json",
    "action_url",
    "cancel",
    "challenge_for",
    "clean_params",
    "confirm_with_passkey",
    "confirm_with_totp",
    "confirmation_methods",
    "confirmation_options",
    "expire_due",
    "guard",
    "guarded_kinds",
    "hold_hours",
    "owned_action",
    "payee_available_at",
    "payee_digest",
    "payee_for",
    "pending_actions",
    "pending_for",
    "register_payee",
    "remove_payee",
    "render_summary",
    "staff_cancel",
    "stored_action",
]
