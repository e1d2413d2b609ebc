"""Held orders: confirming one with the customer's own factor, executing it exactly once, and closing it.

Held orders use dynamic linking (:mod:`authguard.orders.confirmation`, the flow held actions share): the
exact canonical order JSON and its SHA-256 ``digest`` are stored with a random ``nonce``, and the passkey
challenge is ``sha256(nonce || digest)``, so an assertion confirms this order and no other. A confirmation is
single-use, expires (``AUTHGUARD_CONFIRMATION_SECONDS``), is bound to the session that placed the order, and
executes the stored order exactly once, under row locks.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard import clock
from authguard.audit import audit
from authguard.conf import app_settings
from authguard.factors import passkey_ceremony
from authguard.factors.base import in_cooling_off
from authguard.factors.inventory import factor_confirmed_at, totp_device, usable_passkeys
from authguard.login import lockout
from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from authguard.notifications.lures import strip_lures
from authguard.notifications.outbox import notify_customer
from authguard.orders import confirmation as flow
from authguard.orders.confirmation import (
    ConfirmationError,
    ConfirmationGone,
    ConfirmationInvalid,
    ConfirmationNotFound,
    ConfirmationThrottled,
    HeldKind,
    canonical_json,
    challenge_for,
)
from authguard.orders.hooks import OrderNotExecutable, _executor
from authguard.orders.summary import render_summary

logger = logging.getLogger(__name__)

#: Session key of the random token that binds held orders to the session that placed them. It lives in
#: the session's data, so it survives the key rotation of a step-up (``cycle_key``) but no other session
#: (or a new login, which flushes the session) ever has it.
BINDING_SESSION_KEY = "_authguard_order_binding"
#: Largest canonical order accepted back from the database (a tampered row is refused, not parsed).
CANONICAL_VERSION = 1

#: What makes a held order's confirmation differ from a held action's.
HELD_ORDER = HeldKind(
    model=HeldOrder,
    binding_key=BINDING_SESSION_KEY,
    binding_needs_login=True,
    purpose="confirm",
    not_found=ConfirmationNotFound,
    gone=ConfirmationGone,
    invalid=ConfirmationInvalid,
    throttled=ConfirmationThrottled,
    expired_message=gettext_lazy("This order expired before it was confirmed."),
    passkey_method_message=gettext_lazy("This order cannot be confirmed with a passkey."),
    totp_method_message=gettext_lazy("This order must be confirmed with your passkey."),
    challenge_message=gettext_lazy("This passkey response is not for this order."),
    shape_before_challenge=False,
)


@dataclass(frozen=True)
class Confirmed:
    """A held order was confirmed and executed exactly once; ``result_ref`` is the portal's reference."""

    confirmation: HeldOrder
    result_ref: str


# -- the held order -------------------------------------------------------------------------------------


def order_digest(canonical: str) -> str:
    """SHA-256 (hex) of the canonical order."""
    return flow.digest_of(canonical)


def _session_binding(request: HttpRequest | None, *, create: bool) -> str | None:
    return flow.session_binding(request, HELD_ORDER, create=create)


def stored_order(held: HeldOrder) -> dict[str, Any]:
    """The held order's canonical order, after checking it still hashes to its digest.

    Executors read the order from here, never from the client. Raises :class:`ConfirmationInvalid` for a
    row whose canonical order was changed after it was held.
    """
    # SECURITY: recomputed on every use: a changed order voids the confirmation.
    if not secrets.compare_digest(order_digest(held.canonical), held.digest):
        raise ConfirmationInvalid(_("This order was changed after it was held."), code="order_changed")
    data = json.loads(held.canonical)
    if not isinstance(data, dict) or data.get("confirmation") != str(held.pk):
        raise ConfirmationInvalid(_("This order was changed after it was held."), code="order_changed")
    return data


def confirmation_json(held: HeldOrder) -> dict[str, Any]:
    """CONTRACTS section 3's ``confirmation``: ``{id, summary, methods, expires_at}`` (plus ``reasons``)."""
    return {
        "id": str(held.pk),
        "summary": render_summary(held.summary_data) if held.summary_data else held.summary,
        "methods": list(held.methods),
        "expires_at": held.expires_at,
        "reasons": [r.get("code") for r in held.reasons],
    }


# -- methods ------------------------------------------------------------------------------------------------


def factor_cooling_off(device: Any, *, at: datetime | None = None) -> bool:
    """Whether ``device`` is in its cooling-off and may not confirm anything sensitive.

    The factor lifecycle's one rule (:func:`authguard.factors.inventory.factor_is_cooling_off`, through
    :func:`authguard.factors.base.in_cooling_off`): the factor's own cooling-off has not ended, or it was
    confirmed during the account's running cooling-off (after a factor or contact change).
    """
    return bool(in_cooling_off(device, at=at))


def _usable_devices(user: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The user's usable passkeys (not disabled), those of them not cooling off, and the TOTP device that
    may confirm orders (not cooling off)."""
    passkeys = usable_passkeys(user)
    ready = [d for d in passkeys if not factor_cooling_off(d)]
    totp = totp_device(user)
    return passkeys, ready, [totp] if totp is not None and not factor_cooling_off(totp) else []


def confirmation_methods(user: Any) -> list[str]:
    """How ``user`` may confirm a held order: ``["passkey"]``, ``["totp"]``, both, or none.

    SECURITY: a customer with a passkey must use it unless ``AUTHGUARD_CONFIRMATION_TOTP_WITH_PASSKEY`` says
    otherwise, even while every passkey of theirs is in its cooling-off (then nothing confirms until it ends):
    otherwise a relayed one-time code would confirm for exactly the customer whose passkey is new. Factors in
    their cooling-off are not offered, and cooling-off is checked again when a factor confirms.
    """
    allowed = app_settings.CONFIRMATION_METHODS
    passkeys, ready, totps = _usable_devices(user)
    methods = []
    if "passkey" in allowed and ready:
        methods.append("passkey")
    if "totp" in allowed and totps and (not passkeys or app_settings.CONFIRMATION_TOTP_WITH_PASSKEY):
        methods.append("totp")
    return methods


# -- confirming ---------------------------------------------------------------------------------------------


def pending_for(request: HttpRequest, confirmation_id: object) -> HeldOrder:
    """The held order ``confirmation_id`` of the signed-in customer *in this session*, still pending.

    Raises :class:`ConfirmationNotFound` (unknown, another customer's, another session's) or
    :class:`ConfirmationGone` (confirmed, cancelled, expired).
    """
    return flow.pending(request, confirmation_id, HELD_ORDER, close=_close)


def owned_confirmation(request: HttpRequest, confirmation_id: object) -> HeldOrder:
    """The signed-in customer's held order ``confirmation_id`` in any state, from any of their sessions
    (to show or cancel it). Raises :class:`ConfirmationNotFound` for anyone else's or a malformed id."""
    return flow.owned(request, confirmation_id, HELD_ORDER)


def confirmation_options(request: HttpRequest, *, confirmation_id: object) -> dict[str, Any]:
    """WebAuthn request options whose challenge is ``sha256(nonce || digest)`` of this held order."""
    held = pending_for(request, confirmation_id)
    return flow.passkey_options(request, held, HELD_ORDER, recheck=stored_order)


def confirm_with_passkey(request: HttpRequest, *, confirmation_id: object, credential: object) -> Confirmed:
    """Confirm with the customer's passkey and execute the stored order exactly once."""
    held = pending_for(request, confirmation_id)
    device = flow.verify_passkey(request, held, HELD_ORDER, credential=credential, recheck=stored_order)
    if factor_cooling_off(device):
        raise ConfirmationInvalid(
            _("This passkey was added too recently to confirm orders."), code="cooling_off"
        )
    _require_older_than(device, held)
    evidence = passkey_ceremony.assertion_evidence(credential)
    return _execute(request.user, held.pk, method="passkey", device=device, assertion=evidence)


def confirm_with_totp(request: HttpRequest, *, confirmation_id: object, code: object) -> Confirmed:
    """Confirm with a TOTP code, where this confirmation's ``methods`` allow it.

    Raises :class:`ConfirmationThrottled` while django-otp's back-off refuses attempts (after a wrong code),
    and the other :class:`ConfirmationError` kinds as :func:`confirm_with_passkey` does.
    """
    held = pending_for(request, confirmation_id)
    device = flow.verify_confirmation_code(
        request, held, HELD_ORDER, code=code, allowed="totp" in held.methods, recheck=stored_order
    )
    if factor_cooling_off(device):
        raise ConfirmationInvalid(
            _("This authenticator was added too recently to confirm orders."), code="cooling_off"
        )
    _require_older_than(device, held)
    return _execute(request.user, held.pk, method="totp", device=device, assertion=None)


def _require_older_than(device: Any, held: HeldOrder) -> None:
    """SECURITY: only a factor the customer had before the order was held may confirm it. Whoever holds a
    hijacked session (and relays one-time codes) must not add a passkey of their own and confirm with it.
    The factor's age is when it was *confirmed*: an enrollment begun before the hold and finished after it
    is younger than the order."""
    confirmed = factor_confirmed_at(device)
    if confirmed is None or confirmed >= held.created_at:
        raise ConfirmationInvalid(
            _("Confirm with a passkey or authenticator you had before this order was placed."),
            code="factor_too_new",
        )


def _recheck(held: HeldOrder, now: datetime) -> dict[str, Any]:
    return stored_order(held)


def _mark_placed(held: HeldOrder, data: dict[str, Any], now: datetime) -> None:
    GuardedOrder.objects.filter(pk=held.guarded_id).update(status=GuardStatus.PLACED)


def _execute(user: Any, held_id: uuid.UUID, *, method: str, device: Any, assertion: Any) -> Confirmed:
    """Under the customer's and the held order's row locks: recheck, mark used, execute once."""
    held = flow.execute_once(
        user,
        held_id,
        HELD_ORDER,
        method=method,
        device=device,
        assertion=assertion,
        related="guarded",
        recheck=_recheck,
        recheck_errors=(ConfirmationInvalid,),
        execute=lambda row: _executor().execute(row),
        not_executable=OrderNotExecutable,
        close_locked=_close_locked,
        confirmed=_mark_placed,
    )
    logger.info("authguard held order %s confirmed with %s", held.pk, method)
    return Confirmed(held, held.result_ref)


# -- closing ----------------------------------------------------------------------------------------------

# Keyed by the plain status string the close functions take (equal to the members).
_LEDGER_STATUS: dict[str, GuardStatus] = {
    HeldOrder.Status.CANCELLED: GuardStatus.CANCELLED,
    HeldOrder.Status.EXPIRED: GuardStatus.EXPIRED,
    HeldOrder.Status.FAILED: GuardStatus.FAILED,
}


def staff_cancel(held: HeldOrder, *, by: Any, reason: str) -> bool:
    """Cancel a pending held order for the security desk; False if it was no longer pending.

    The same closing path as expiry (under the held order's row lock, ledger and portal updated). Who and
    why go to the admin log; the customer is told that the security desk cancelled the order, never who
    or why. SECURITY: staff names and internal notes never reach the customer's pages or mail.
    """
    now = clock.now()
    with transaction.atomic():
        if not _close(held.pk, HeldOrder.Status.CANCELLED):
            return False
        audit(by, held, f"cancelled: {reason}")
        # SECURITY: held-order notices also reach the address a thief replaced during its cooling-off.
        notify_customer(
            held.user,
            "staff_action",
            context={
                "action": "cancel_order",
                "stage": "executed",
                # SECURITY: a summary stored before round fifty-seven may hold his number (round 58).
                "what": strip_lures(str(held.summary))[:120],
                "four_eyes": False,
                "time": now,
            },
            dedupe_key=f"staff:cancel_order:{held.pk}",
        )
    return True


def staff_release(held: HeldOrder, *, by: Any, reason: str) -> Confirmed:
    """Execute a pending held order on the desk's word (the customer confirmed it to the desk out of band).

    The customer's own execution path (the customer's and the held order's row locks, the stored order
    re-checked, executed exactly once), recorded as confirmed with method ``staff``. Raises
    :class:`ConfirmationError` when the order is no longer pending or cannot be executed, and always under
    the JSDA preset.
    """
    if app_settings.JSDA:
        # SECURITY: under the JSDA preset only the customer's own passkey confirms an order; a phone call to
        # the desk is exactly the channel a social engineer would use.
        raise ConfirmationInvalid(
            _("Under the JSDA 2025 preset only the customer's passkey can confirm a held order."),
            code="preset",
        )
    if lockout.is_locked_fail_closed(held.user):
        # SECURITY: a locked account (the desk's containment, a run of failures) has no order executed on
        # anyone's word; its held orders expire unconfirmed.
        raise ConfirmationInvalid(
            _("This account is locked: its held orders cannot be released."), code="locked"
        )
    logger.info("authguard held order %s released by staff %s: %s", held.pk, by.get_username(), reason)
    return _execute(held.user, held.pk, method="staff", device=None, assertion=None)


def _close_locked(held: HeldOrder, status: str, *, now: datetime, reason: str = "") -> None:
    flow.mark_closed(held, status, now=now, reason=reason)
    GuardedOrder.objects.filter(pk=held.guarded_id).update(status=_LEDGER_STATUS[status])
    flow.release_portal_copy(held, lambda: _executor().release(held, status=status))


def _close(held_id: uuid.UUID, status: str, *, reason: str = "") -> bool:
    """Close a pending held order (cancelled, expired, failed) under its lock; False if it was not pending."""
    return flow.close_pending(held_id, HELD_ORDER, status=status, close_locked=_close_locked, reason=reason)


def cancel(request: HttpRequest, *, confirmation_id: object) -> None:
    """The customer cancels a held order (from any of their sessions). Raises if it is not pending."""
    held = owned_confirmation(request, confirmation_id)
    if not _close(held.pk, HeldOrder.Status.CANCELLED):
        raise ConfirmationGone()


def expire_due(*, now: datetime | None = None, user: Any = None) -> int:
    """Expire every pending held order past its ``expires_at`` (only ``user``'s when given); return how many.

    The periodic task calls it for everyone; the order path and the pages that list held orders call it for
    one customer, so held orders expire on time even where no Celery beat runs.
    """
    now = now or clock.now()
    due_rows = HeldOrder.objects.filter(status=HeldOrder.Status.PENDING, expires_at__lte=now)
    if user is not None:
        due_rows = due_rows.filter(user_id=user.pk)
    return flow.expire_rows(due_rows, HELD_ORDER, close=_close)


def pending_orders(user: Any, *, now: datetime | None = None) -> list[HeldOrder]:
    """The customer's held orders still waiting for confirmation, oldest first (those past their deadline
    are expired first, so a page listing them never shows one that can no longer be confirmed)."""
    if user is None or getattr(user, "pk", None) is None:
        return []
    now = now or clock.now()
    expire_due(user=user, now=now)
    rows = HeldOrder.objects.filter(user_id=user.pk, status=HeldOrder.Status.PENDING, expires_at__gt=now)
    return list(rows.order_by("created_at"))


__all__ = [
    "BINDING_SESSION_KEY",
    "CANONICAL_VERSION",
    "ConfirmationError",
    "Confirmed",
    "HELD_ORDER",
    "canonical_json",
    "cancel",
    "challenge_for",
    "confirm_with_passkey",
    "confirm_with_totp",
    "confirmation_json",
    "confirmation_methods",
    "confirmation_options",
    "expire_due",
    "factor_cooling_off",
    "order_digest",
    "owned_confirmation",
    "pending_for",
    "pending_orders",
    "staff_cancel",
    "staff_release",
    "stored_order",
]
