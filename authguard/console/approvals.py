"""Four eyes: the security desk's powerful actions need a second staff member's approval.

Releasing (executing) a held order, revoking a customer's factor, unlocking an account and changing the
risk policy are exactly what a thief who phished one staff password would do (issue 10, battery case 60).
Each goes through this one flow, whichever page starts it (the admin actions, the policy editor, a script):

* :func:`request_action` — a passkey-verified staff member holding the action's permission asks, with a
  reason (an internal note). When ``AUTHGUARD_FOUR_EYES`` asks for a second approval at this severity the
  request waits as a :class:`~authguard.models.StaffApproval` (``pending``); otherwise it is carried out at
  once, and the record is its audit trail all the same.
* :func:`approve` — *another* passkey-verified staff member holding the same permission approves it; it is
  carried out at once, exactly once (the approval row is locked, and the owners' functions lock their own
  rows: held orders execute once, unlocks and removals are idempotent).
* :func:`reject` and :func:`withdraw` close a pending request without doing anything; :func:`expire_due`
  closes the ones nobody approved in time.

Every step is audited (Django's admin log on the approval and, when carried out, on the record it changed,
so the incident report shows it) and notified to the customer (``staff_action``), with what happened but
never who on the staff did it and never the internal notes; the staff recipients are told about requests
waiting for a second approval.

Execution calls the owners' public functions: :func:`authguard.orders.guard.staff_release`,
:func:`authguard.factors.removal.remove_factor`, :func:`authguard.login.lockout.unlock`,
:func:`authguard.risk.policy.save_policy`, and for containment (issue 16)
:func:`authguard.login.lockout.lock`,
:func:`authguard.login.lockout.end_all_access` and :mod:`authguard.console.containment` (forced password
resets,
network blocks).

Containment that only takes access away (lock an account, end its sessions, force a password reset) is
carried out at once by default: during an attack minutes matter, and a thief with one staff password gains
nothing from it. Its undo (unlock) keeps four eyes, and so do blocking a network and ending a block: a block
acts on every customer of that network, not on one account under suspicion (docs/staff-approvals.md).

The flow is split in three: :mod:`authguard.console.four_eyes` (the rules, the refusal, the audit
line), :mod:`authguard.console.staff_actions` (the concrete actions and how each is carried out) and this
module (asking, deciding, carrying out). Their public names stay importable from here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from authguard import clock
from authguard.audit import ADDITION
from authguard.audit import audit as audit
from authguard.console.four_eyes import ACCOUNT_CONTAINMENT as ACCOUNT_CONTAINMENT
from authguard.console.four_eyes import CRITICAL as CRITICAL
from authguard.console.four_eyes import DEFAULT_FOUR_EYES_ACTIONS as DEFAULT_FOUR_EYES_ACTIONS
from authguard.console.four_eyes import HIGH as HIGH
from authguard.console.four_eyes import LOW as LOW
from authguard.console.four_eyes import MEDIUM as MEDIUM
from authguard.console.four_eyes import REASON_MAX as REASON_MAX
from authguard.console.four_eyes import REASON_MIN as REASON_MIN
from authguard.console.four_eyes import ApprovalError as ApprovalError
from authguard.console.four_eyes import NotDone, reason_text, require_permission
from authguard.console.four_eyes import Target as Target
from authguard.console.four_eyes import four_eyes_options as four_eyes_options
from authguard.console.four_eyes import needs_second_approval as needs_second_approval
from authguard.console.four_eyes import require_console as require_console
from authguard.console.four_eyes import required_permission as required_permission
from authguard.console.staff_actions import EXECUTORS, check_actionable
from authguard.console.staff_actions import describe as describe
from authguard.exceptions import AuthguardError
from authguard.models import (
    StaffAction,
    StaffApproval,
    StaffApprovalStatus,
)
from authguard.notifications.messages import ways_back
from authguard.notifications.outbox import notify_customer, notify_staff

logger = logging.getLogger(__name__)


def _notify(approval: StaffApproval, stage: str, *, customer_what: str | None = None) -> None:
    """Tell the customer (and, for a request, the staff) what happened: never who on the staff did it, never
    the internal notes (neither is in the context)."""

    now = clock.now()
    what = approval.payload.get("customer_what", "") if customer_what is None else customer_what
    context: dict[str, Any] = {
        "action": approval.action,
        "stage": stage,
        "what": what,
        "four_eyes": approval.four_eyes,
        "time": now,
    }
    if approval.customer is not None:
        if approval.action == StaffAction.LOCK_ACCOUNT and stage == "executed":
            context.update(_ways_back(approval.customer))
        notify_customer(
            approval.customer, "staff_action", context=context, dedupe_key=f"staff:{approval.pk}:{stage}"
        )
    if stage in ("requested", "failed") or approval.customer is None:
        account = approval.customer.get_username() if approval.customer is not None else ""
        notify_staff(
            "staff_action",
            context={**context, "account": account},
            dedupe_key=f"staff:{approval.pk}:{stage}",
        )


# -- the flow ----------------------------------------------------------------------------------------------


def _expiry(now: datetime) -> datetime:
    hours = int(four_eyes_options().get("EXPIRY_HOURS") or 24)
    return now + timedelta(hours=max(1, hours))


def request_action(
    request: HttpRequest,
    *,
    action: str,
    target: Any = None,
    reason: object,
    payload: dict[str, Any] | None = None,
) -> StaffApproval:
    """Ask for ``action`` on ``target`` with ``reason``; returns its :class:`StaffApproval`.

    ``status`` is ``pending`` when a second approval is needed (``AUTHGUARD_FOUR_EYES``), else the action
    was carried out now (``executed`` or ``failed``). Asking again for a pending action on the same target
    returns the same request (idempotent); someone else's pending request on it refuses
    (``already_pending``). Raises :class:`ApprovalError`.
    """
    user = require_console(request)
    described = describe(action=action, target=target, payload=payload)
    require_permission(user, action, described.target_id)
    note = reason_text(reason)
    check_actionable(described)
    four_eyes = needs_second_approval(action=action, severity=described.severity)
    now = clock.now()
    stored = {**described.payload, "customer_what": described.customer_what}
    try:
        with transaction.atomic():
            existing = (
                StaffApproval.objects.select_for_update()
                .filter(action=action, target_id=described.target_id, status=StaffApprovalStatus.PENDING)
                .first()
            )
            if existing is not None and existing.expires_at <= now:
                _close_expired(existing, now=now)
                existing = None
            if existing is not None:
                if existing.requested_by_id == user.pk and existing.payload == stored:
                    return existing  # a double submit: the same request
                raise ApprovalError(
                    _("This action already waits for approval; approve or reject that request first."),
                    code="already_pending",
                )
            approval = StaffApproval.objects.create(
                action=action,
                target_id=described.target_id,
                customer=described.customer,
                summary=described.summary,
                payload=stored,
                severity=described.severity,
                four_eyes=four_eyes,
                requested_by=user,
                reason=note,
                requested_at=now,
                expires_at=_expiry(now),
            )
            audit(user, approval, f"requested: {note}", flag=ADDITION)
            if four_eyes:
                _notify(approval, "requested")
                logger.warning(
                    "authguard staff action %s requested by %s: %s (%s)",
                    approval.pk,
                    user.pk,
                    action,
                    described.target_id,
                )
                return approval
            _carry_out(approval, by=user)
    except IntegrityError:
        # Another desk asked for the same thing at the same moment (the unique pending constraint).
        raise ApprovalError(
            _("This action already waits for approval; approve or reject that request first."),
            code="already_pending",
        ) from None
    return approval


def _locked(approval_id: object) -> StaffApproval:
    raw = str(approval_id)
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        # SECURITY: only a plain positive number in the database's range reaches the query (no 500s).
        raise ApprovalError(_("There is no such staff action."), code="not_found")
    pk = int(raw)
    approval = (
        StaffApproval.objects.select_for_update(of=("self",))
        .select_related("customer", "requested_by")
        .filter(pk=pk)
        .first()
    )
    if approval is None:
        raise ApprovalError(_("There is no such staff action."), code="not_found")
    return approval


def _require_pending(approval: StaffApproval, *, now: datetime) -> bool:
    """Raise unless pending; False when it has just expired (the caller closes it and refuses)."""
    if approval.status != StaffApprovalStatus.PENDING:
        raise ApprovalError(
            _("This staff action was already decided (%(status)s).")
            % {"status": approval.get_status_display()},
            code="closed",
        )
    return approval.expires_at > now


def _close_expired(approval: StaffApproval, *, now: datetime) -> None:
    approval.status = StaffApprovalStatus.EXPIRED
    approval.decided_at = now
    approval.save(update_fields=["status", "decided_at"])
    logger.info("authguard staff action %s expired", approval.pk)


def _expired_error() -> ApprovalError:
    return ApprovalError(_("This request expired; ask again if it is still needed."), code="expired")


def approve(request: HttpRequest, *, approval_id: object, note: object = "") -> StaffApproval:
    """A second staff member approves a pending request; it is carried out now, exactly once.

    The approver must be another staff user than the requester, passkey-verified in this session, holding
    the action's permission. Returns the approval (``executed`` or ``failed``); raises
    :class:`ApprovalError` (``own_request``, ``closed``, ``expired``, ``permission``...).
    """
    user = require_console(request)
    text = reason_text(note, required=False)
    expired = False
    with transaction.atomic():
        approval = _locked(approval_id)
        now = clock.now()
        if not _require_pending(approval, now=now):
            _close_expired(approval, now=now)
            expired = True
        else:
            if approval.requested_by_id == user.pk:
                # SECURITY: four eyes means two people; the requester can never approve their own request.
                raise ApprovalError(
                    _("A second staff member must approve this; you cannot approve your own request."),
                    code="own_request",
                )
            require_permission(user, approval.action, approval.target_id)
            approval.approved_by = user
            approval.decided_at = now
            approval.decision_note = text
            approval.save(update_fields=["approved_by", "decided_at", "decision_note"])
            audit(user, approval, f"approved: {text}" if text else "approved")
            _carry_out(approval, by=user)
    if expired:
        raise _expired_error()
    return approval


def reject(request: HttpRequest, *, approval_id: object, note: object) -> StaffApproval:
    """A staff member (the requester included) rejects a pending request with a note; nothing is done."""
    user = require_console(request)
    text = reason_text(note)
    with transaction.atomic():
        approval = _locked(approval_id)
        now = clock.now()
        if not _require_pending(approval, now=now):
            _close_expired(approval, now=now)
            return approval  # expired: nothing was going to happen anyway
        require_permission(user, approval.action, approval.target_id)
        approval.status = StaffApprovalStatus.REJECTED
        approval.approved_by = user
        approval.decided_at = now
        approval.decision_note = text
        approval.save(update_fields=["status", "approved_by", "decided_at", "decision_note"])
        audit(user, approval, f"rejected: {text}")
        _notify(approval, "rejected")
    logger.info("authguard staff action %s rejected by %s", approval.pk, user.pk)
    return approval


def withdraw(request: HttpRequest, *, approval_id: object) -> StaffApproval:
    """The requester takes back their own pending request; nothing is done (the customer is not told:
    nothing happened that the request's notice did not already say would need an approval)."""
    user = require_console(request)
    with transaction.atomic():
        approval = _locked(approval_id)
        now = clock.now()
        if not _require_pending(approval, now=now):
            _close_expired(approval, now=now)
            return approval
        if approval.requested_by_id != user.pk:
            raise ApprovalError(_("Only the requester can withdraw a request."), code="permission")
        approval.status = StaffApprovalStatus.WITHDRAWN
        approval.decided_at = now
        approval.save(update_fields=["status", "decided_at"])
        audit(user, approval, "withdrawn")
    return approval


def expire_due(*, now: datetime | None = None) -> int:
    """Close every pending request past its expiry (for a periodic task); returns how many."""
    now = now or clock.now()
    n = 0
    for pk in StaffApproval.objects.filter(
        status=StaffApprovalStatus.PENDING, expires_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            approval = StaffApproval.objects.select_for_update().get(pk=pk)
            if approval.status == StaffApprovalStatus.PENDING and approval.expires_at <= now:
                _close_expired(approval, now=now)
                n += 1
    return n


def pending() -> Any:
    """The requests waiting for a second approval, oldest first (not yet expired)."""
    return StaffApproval.objects.filter(
        status=StaffApprovalStatus.PENDING, expires_at__gt=clock.now()
    ).order_by("requested_at")


def _carry_out(approval: StaffApproval, *, by: Any) -> None:
    """Execute ``approval`` (locked, in the caller's transaction) through the owner's function; record the
    outcome. The owner's writes are undone if it fails (a savepoint), the approval's record is not."""
    now = clock.now()
    try:
        with transaction.atomic():
            result = EXECUTORS[approval.action](approval, by)
    except (NotDone, AuthguardError, PermissionDenied, ValueError) as exc:
        message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        approval.status = StaffApprovalStatus.FAILED
        approval.executed_at = now
        approval.result = str(message)[:300]
        approval.save(update_fields=["status", "executed_at", "result"])
        audit(by, approval, f"failed: {approval.result}")
        _notify(approval, "failed")
        logger.warning("authguard staff action %s failed: %s", approval.pk, approval.result)
        return
    approval.status = StaffApprovalStatus.EXECUTED
    approval.executed_at = now
    approval.result = str(result or "")[:300]
    approval.save(update_fields=["status", "executed_at", "result"])
    audit(by, approval, "carried out" + (f": {approval.result}" if approval.result else ""))
    _notify(approval, "executed")
    logger.warning(
        "authguard staff action %s carried out: %s (%s) requested by %s, approved by %s",
        approval.pk,
        approval.action,
        approval.target_id,
        approval.requested_by_id,
        approval.approved_by_id,
    )


def _ways_back(user: Any) -> dict[str, bool]:
    """The ways out of a lock the customer really has, for the lock's message (the same answer as the
    lock mail's: :func:`authguard.notifications.messages.ways_back`), under keys the outbox accepts."""

    found = ways_back(user)
    return {"way_fido": found["unlock_passkey"], "way_app": found["unlock_codes"]}


__all__ = [
    "ACCOUNT_CONTAINMENT",
    "DEFAULT_FOUR_EYES_ACTIONS",
    "ApprovalError",
    "Target",
    "approve",
    "audit",
    "describe",
    "expire_due",
    "four_eyes_options",
    "needs_second_approval",
    "pending",
    "reject",
    "request_action",
    "require_console",
    "required_permission",
    "withdraw",
]
