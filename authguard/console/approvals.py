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
:func:`authguard.factors.lifecycle.remove_factor`, :func:`authguard.login.lockout.unlock`,
:func:`authguard.risk.policy.save_policy`, and for containment (issue 16)
:func:`authguard.login.lockout.lock`,
:func:`authguard.login.lockout.end_all_access` and :mod:`authguard.console.containment` (forced password
resets,
network blocks).

Containment that only takes access away (lock an account, end its sessions, force a password reset) is
carried out at once by default: during an attack minutes matter, and a thief with one staff password gains
nothing from it. Its undo (unlock) keeps four eyes, and so do blocking a network and ending a block: a block
acts on every customer of that network, not on one account under suspicion (docs/staff-approvals.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard.conf import app_settings
from authguard.console.guard import console_access
from authguard.exceptions import AuthguardError
from authguard.models import (
    AccountLock,
    HeldOrder,
    NetworkBlock,
    PolicyVersion,
    StaffAction,
    StaffApproval,
    StaffApprovalStatus,
)

logger = logging.getLogger(__name__)

#: Severities, on the held orders' scale (:mod:`authguard.orders.rules`): 1 low .. 4 critical.
LOW, MEDIUM, HIGH, CRITICAL = 1, 2, 3, 4
#: Shortest and longest reason (an internal note) a request or a decision takes.
REASON_MIN, REASON_MAX = 3, 500


class ApprovalError(AuthguardError):
    """A staff action was refused. ``code`` says why: ``staff_passkey_required``, ``permission``,
    ``own_request``, ``already_pending``, ``closed``, ``expired``, ``not_found``, ``invalid``, ``preset``."""

    default_code = "approval_refused"
    default_message = gettext_lazy("This staff action is not possible.")


@dataclass(frozen=True)
class Target:
    """What a staff action is about, as the approval records it."""

    action: str
    target_id: str
    customer: Any
    summary: str
    severity: int
    payload: dict[str, Any] = field(default_factory=dict)
    #: What the customer is told the action is about (never staff names or notes).
    customer_what: str = ""


# -- rules -------------------------------------------------------------------------------------------------


#: The actions that need a second approval when ``AUTHGUARD_FOUR_EYES`` names no ``ACTIONS``: every one
#: that gives access back or acts beyond one account under suspicion. Lock, end sessions and force a
#: password reset are not here: they only take access away, and minutes matter during an attack.
DEFAULT_FOUR_EYES_ACTIONS = (
    StaffAction.RELEASE_ORDER,
    StaffAction.REVOKE_FACTOR,
    StaffAction.UNLOCK_ACCOUNT,
    StaffAction.CHANGE_POLICY,
    StaffAction.BLOCK_NETWORK,
    StaffAction.END_NETWORK_BLOCK,
)
#: The containment actions on one account (the incident page's buttons, the bulk admin actions).
ACCOUNT_CONTAINMENT = (
    StaffAction.LOCK_ACCOUNT,
    StaffAction.END_SESSIONS,
    StaffAction.FORCE_PASSWORD_RESET,
)


def four_eyes_options() -> dict[str, Any]:
    """``AUTHGUARD_FOUR_EYES`` with its defaults (``ACTIONS``: :data:`DEFAULT_FOUR_EYES_ACTIONS`)."""
    return dict(app_settings.FOUR_EYES)


def needs_second_approval(*, action: str, severity: int) -> bool:
    """Whether ``action`` at ``severity`` needs a second staff member's approval (``AUTHGUARD_FOUR_EYES``)."""
    options = four_eyes_options()
    if action not in set(options.get("ACTIONS") or ()):
        return False
    return int(severity) >= int(options.get("MIN_SEVERITY") or 0)


def required_permission(action: str, *, target_id: str = "") -> str:
    """The permission a staff member needs to request *and* to approve ``action``."""
    if action == StaffAction.RELEASE_ORDER:
        return "authguard.change_heldorder"
    if action == StaffAction.UNLOCK_ACCOUNT:
        return "authguard.unlock_account"
    if action == StaffAction.CHANGE_POLICY:
        return "authguard.add_policyversion"
    if action in ACCOUNT_CONTAINMENT:
        return "authguard.contain_account"
    if action in (StaffAction.BLOCK_NETWORK, StaffAction.END_NETWORK_BLOCK):
        return "authguard.add_networkblock"
    if action == StaffAction.REVOKE_FACTOR:
        # A django-otp persistent id is "app_label.model/pk": deleting that model's rows is the permission.
        model = target_id.split("/", 1)[0]
        app_label, _dot, model_name = model.partition(".")
        if not app_label or not model_name:
            raise ApprovalError(_("Unknown sign-in method."), code="invalid")
        return f"{app_label}.delete_{model_name}"
    raise ApprovalError(_("Unknown staff action."), code="invalid")


def require_console(request: HttpRequest) -> Any:
    """The request's staff user, if the session passed the console's passkey check; else raise.

    SECURITY: asked here again, not only by the middleware: a portal that forgot
    ``StaffPasskeyMiddleware`` still gets no four-eyes action from a password-only session.
    """
    access = console_access(request)
    if not access.ok:
        raise ApprovalError(
            _("Confirm it is you with your passkey before acting in the security console."),
            code="staff_passkey_required",
        )
    return request.user


def _require_permission(user: Any, action: str, target_id: str) -> None:
    if not user.has_perm(required_permission(action, target_id=target_id)):
        raise ApprovalError(_("You do not have the permission for this staff action."), code="permission")


def _reason(raw: object, *, required: bool = True) -> str:
    text = " ".join(str(raw or "").split()) if isinstance(raw, str) else ""
    if not text and not required:
        return ""
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise ApprovalError(
            _("Give a reason of %(min)d to %(max)d characters.") % {"min": REASON_MIN, "max": REASON_MAX},
            code="invalid",
        )
    return text


# -- what an action is about -------------------------------------------------------------------------------


def _in_language_of(user: Any, value: Any) -> str:
    from authguard.notifications.outbox import user_language

    with translation.override(user_language(user) or None):
        return str(value)


def describe(*, action: str, target: Any = None, payload: dict[str, Any] | None = None) -> Target:
    """The :class:`Target` of ``action`` on ``target`` (a held order, a factor device, a user or an
    :class:`~authguard.models.AccountLock`; nothing for a policy change, whose values are ``payload``).

    Raises :class:`ApprovalError` (``invalid``) for a target that does not fit the action.
    """
    if action == StaffAction.RELEASE_ORDER:
        if not isinstance(target, HeldOrder):
            raise ApprovalError(_("Choose a held order."), code="invalid")
        return Target(
            action=action,
            target_id=str(target.pk),
            customer=target.user,
            summary=str(target.summary)[:300],
            severity=int(target.severity or 0),
            payload={"held_order": str(target.pk)},
            customer_what=str(target.summary)[:120],
        )
    if action == StaffAction.REVOKE_FACTOR:
        from authguard.factors.base import FACTOR_LABELS, kind_of

        try:
            kind = kind_of(target)
        except ValueError:
            raise ApprovalError(_("Choose a sign-in method."), code="invalid") from None
        user = target.user
        label = _in_language_of(user, FACTOR_LABELS[kind])
        name = str(target.name or "")[:60]
        return Target(
            action=action,
            target_id=target.persistent_id,
            customer=user,
            summary=f"{FACTOR_LABELS[kind]} {name!r} of {user.get_username()}"[:300],
            # Recovery codes are a backup; passkeys and authenticator apps are what a thief wants gone.
            severity=MEDIUM if kind == "recovery_code" else HIGH,
            payload={"kind": str(kind), "name": name},
            customer_what=f"{label} ({name})" if name else label,
        )
    if action == StaffAction.UNLOCK_ACCOUNT:
        user = target.user if isinstance(target, AccountLock) else target
        if user is None or getattr(user, "pk", None) is None:
            raise ApprovalError(_("Choose an account."), code="invalid")
        return Target(
            action=action,
            target_id=str(user.pk),
            customer=user,
            summary=f"unlock {user.get_username()}"[:300],
            severity=HIGH,
        )
    if action in ACCOUNT_CONTAINMENT:
        user = target.user if isinstance(target, AccountLock) else target
        if user is None or getattr(user, "pk", None) is None or not hasattr(user, "get_username"):
            raise ApprovalError(_("Choose an account."), code="invalid")
        verb = {
            StaffAction.LOCK_ACCOUNT: "lock",
            StaffAction.END_SESSIONS: "end the sessions of",
            StaffAction.FORCE_PASSWORD_RESET: "force a password reset of",
        }[StaffAction(action)]
        return Target(
            action=action,
            target_id=str(user.pk),
            customer=user,
            summary=f"{verb} {user.get_username()}"[:300],
            # Taking access away from one account: the least dangerous thing a desk can do.
            severity=MEDIUM,
        )
    if action == StaffAction.BLOCK_NETWORK:
        from authguard.console.containment import block_payload

        values = block_payload(payload)
        return Target(
            action=action,
            target_id=values["network"],
            customer=None,
            summary=f"block {values['network']} for {values['hours']} h"[:300],
            # A whole autonomous system, or a wide prefix, shuts out many customers at once.
            severity=HIGH if values["wide"] else MEDIUM,
            payload=values,
            customer_what=values["network"],  # no customer: only staff read it
        )
    if action == StaffAction.END_NETWORK_BLOCK:
        if not isinstance(target, NetworkBlock) or target.ends_id is not None:
            raise ApprovalError(_("Choose a network block."), code="invalid")
        return Target(
            action=action,
            target_id=str(target.pk),
            customer=None,
            summary=f"end the block of {target.network}"[:300],
            severity=HIGH,
            payload={"network": target.network, "block": target.pk},
            customer_what=target.network,
        )
    if action == StaffAction.CHANGE_POLICY:
        values = _policy_payload(payload)
        return Target(
            action=action,
            target_id="policy",
            customer=None,
            summary=f"policy: thresholds {values['thresholds']}; {values['comment']}"[:300],
            severity=CRITICAL,
            payload=values,
        )
    raise ApprovalError(_("Unknown staff action."), code="invalid")


def _policy_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    from authguard.risk.policy import policy_problem

    if not isinstance(payload, dict):
        raise ApprovalError(_("A policy change needs its values."), code="invalid")
    values = {
        "comment": str(payload.get("comment") or "")[:500],
        "thresholds": payload.get("thresholds") or {},
        "signal_options": payload.get("signal_options") or {},
        "shadow_signals": payload.get("shadow_signals") or [],
    }
    problem = policy_problem(
        thresholds=values["thresholds"],
        signal_options=values["signal_options"],
        shadow_signals=values["shadow_signals"],
    )
    if problem:
        raise ApprovalError(str(problem), code="invalid")
    return values


def _check_actionable(target: Target) -> None:
    """Refuse up front what could never be carried out (so nobody is asked to approve it)."""
    if target.action == StaffAction.RELEASE_ORDER:
        if app_settings.JSDA:
            raise ApprovalError(
                _("Under the JSDA 2025 preset only the customer's passkey can confirm a held order."),
                code="preset",
            )
        if not HeldOrder.objects.filter(pk=target.target_id, status=HeldOrder.Status.PENDING).exists():
            raise ApprovalError(_("This held order is no longer waiting."), code="closed")
    elif (
        target.action == StaffAction.UNLOCK_ACCOUNT
        and not AccountLock.objects.filter(user_id=target.customer.pk, locked_at__isnull=False).exists()
    ):
        raise ApprovalError(_("This account is not locked."), code="closed")
    elif target.action == StaffAction.END_NETWORK_BLOCK and not (
        NetworkBlock.active(now=timezone.now()).filter(pk=target.payload["block"]).exists()
    ):
        raise ApprovalError(_("This network block has already ended."), code="closed")


# -- audit and notifications -------------------------------------------------------------------------------


def audit(user: Any, obj: Any, message: str, *, flag: int = CHANGE) -> None:
    """One line of Django's admin log (who, when, what) about ``obj``: the console's audit trail, which the
    incident report reads."""
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=flag,
        change_message=message[:1000],
        single_object=True,
    )


def _notify(approval: StaffApproval, stage: str, *, customer_what: str | None = None) -> None:
    """Tell the customer (and, for a request, the staff) what happened: never who on the staff did it, never
    the internal notes (neither is in the context)."""
    from authguard.notifications.outbox import notify, notify_staff

    now = timezone.now()
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
        notify(approval.customer, "staff_action", context=context, dedupe_key=f"staff:{approval.pk}:{stage}")
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
    _require_permission(user, action, described.target_id)
    note = _reason(reason)
    _check_actionable(described)
    four_eyes = needs_second_approval(action=action, severity=described.severity)
    now = timezone.now()
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
    if not raw.isdigit() or len(raw) > 18:
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
    text = _reason(note, required=False)
    expired = False
    with transaction.atomic():
        approval = _locked(approval_id)
        now = timezone.now()
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
            _require_permission(user, approval.action, approval.target_id)
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
    text = _reason(note)
    with transaction.atomic():
        approval = _locked(approval_id)
        now = timezone.now()
        if not _require_pending(approval, now=now):
            _close_expired(approval, now=now)
            return approval  # expired: nothing was going to happen anyway
        _require_permission(user, approval.action, approval.target_id)
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
        now = timezone.now()
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
    now = now or timezone.now()
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
        status=StaffApprovalStatus.PENDING, expires_at__gt=timezone.now()
    ).order_by("requested_at")


# -- carrying out ------------------------------------------------------------------------------------------


class _NotDone(Exception):
    """The owner's function refused or found nothing to do: the approval is ``failed`` with ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _carry_out(approval: StaffApproval, *, by: Any) -> None:
    """Execute ``approval`` (locked, in the caller's transaction) through the owner's function; record the
    outcome. The owner's writes are undone if it fails (a savepoint), the approval's record is not."""
    now = timezone.now()
    try:
        with transaction.atomic():
            result = _EXECUTORS[approval.action](approval, by)
    except (_NotDone, AuthguardError, PermissionDenied, ValueError) as exc:
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


def _release_order(approval: StaffApproval, by: Any) -> str:
    from authguard.orders import guard as orders

    held = HeldOrder.objects.filter(pk=approval.target_id).first()
    if held is None:
        raise _NotDone(_("The held order no longer exists."))
    try:
        confirmed = orders.staff_release(held, by=by, reason=approval.reason)
    except orders.ConfirmationError as exc:
        raise _NotDone(exc.message) from None
    audit(by, held, f"released: {approval.reason}")
    return str(getattr(confirmed, "result_ref", "") or "")


def _revoke_factor(approval: StaffApproval, by: Any) -> str:
    from django_otp.models import Device

    from authguard.factors import lifecycle

    try:
        device = Device.from_persistent_id(approval.target_id, for_verify=True)
    except (AttributeError, ValueError, LookupError):
        device = None
    if device is None or approval.customer is None or device.user_id != approval.customer.pk:
        raise _NotDone(_("The sign-in method no longer exists."))
    name = device.name
    audit(
        by, device, f"revoked {approval.payload.get('kind', '')} {name!r} of {device.user}: {approval.reason}"
    )
    lifecycle.remove_factor(None, user=approval.customer, device=device, by_staff=by, reason=approval.reason)
    return ""


def _unlock_account(approval: StaffApproval, by: Any) -> str:
    from authguard.login import lockout

    if approval.customer is None:
        raise _NotDone(_("The account no longer exists."))
    if not lockout.unlock(approval.customer, by=by, reason=approval.reason):
        raise _NotDone(_("The account was not locked any more."))
    lock = AccountLock.objects.filter(user_id=approval.customer.pk).first()
    if lock is not None:
        audit(by, lock, f"unlocked: {approval.reason}")
    return ""


def _ways_back(user: Any) -> dict[str, bool]:
    """The ways out of a lock the customer really has, for the lock's message (the same answer as the
    lock mail's: :func:`authguard.notifications.outbox.ways_back`), under keys the outbox accepts."""
    from authguard.notifications.outbox import ways_back as ways

    found = ways(user)
    return {"way_fido": found["unlock_passkey"], "way_app": found["unlock_codes"]}


def _could_not(exc: Exception) -> _NotDone:
    """A failure of the session store, the cache or the database while containing: nothing was written (the
    executor's savepoint is undone), and the desk is told to try again."""
    logger.exception("authguard: a containment action could not be carried out")
    return _NotDone(_("It could not be carried out (%(error)s); try again.") % {"error": type(exc).__name__})


def _lock_account(approval: StaffApproval, by: Any) -> str:
    from authguard.login import lockout

    if approval.customer is None:
        raise _NotDone(_("The account no longer exists."))
    try:
        locked_now = lockout.lock(approval.customer, by=by, reason=approval.reason)
    except (PermissionDenied, ValueError):
        raise
    except Exception as exc:
        # The lock and the ended sessions go together or not at all (the savepoint undoes both).
        raise _could_not(exc) from exc
    lock = AccountLock.objects.filter(user_id=approval.customer.pk).first()
    if lock is not None:
        audit(by, lock, f"locked by the security desk: {approval.reason}")
    return "locked" if locked_now else "already locked; its sessions ended"


def _end_sessions(approval: StaffApproval, by: Any) -> str:
    from authguard.login import lockout

    if approval.customer is None:
        raise _NotDone(_("The account no longer exists."))
    try:
        sessions, tokens = lockout.end_all_access(approval.customer)
    except Exception as exc:
        raise _could_not(exc) from exc
    return f"{sessions} session(s) and {tokens} API token(s) ended"


def _force_password_reset(approval: StaffApproval, by: Any) -> str:
    from authguard.console.containment import force_password_reset

    if approval.customer is None:
        raise _NotDone(_("The account no longer exists."))
    try:
        sessions, tokens = force_password_reset(approval.customer)
    except AuthguardError:
        raise
    except Exception as exc:
        raise _could_not(exc) from exc
    return f"password replaced; {sessions} session(s) and {tokens} API token(s) ended"


def _block_network(approval: StaffApproval, by: Any) -> str:
    from authguard.console.containment import create_block

    block = create_block(approval, approved_by=by if approval.four_eyes else None)
    until = block.until.isoformat(timespec="minutes")
    audit(by, block, f"blocked {block.network} until {until}: {approval.reason}", flag=ADDITION)
    return f"{block.network} blocked until {block.until.isoformat(timespec='minutes')}"


def _end_network_block(approval: StaffApproval, by: Any) -> str:
    from authguard.console.containment import end_block

    ending = end_block(approval, approved_by=by if approval.four_eyes else None)
    if ending is None:
        raise _NotDone(_("This network block has already ended."))
    audit(by, ending, f"ended the block of {ending.network}: {approval.reason}", flag=ADDITION)
    return f"the block of {ending.network} ended"


def _change_policy(approval: StaffApproval, by: Any) -> str:
    from authguard.risk.policy import InvalidPolicy, save_policy

    values = approval.payload
    try:
        version = save_policy(
            by=approval.requested_by,
            comment=values.get("comment", ""),
            thresholds=values.get("thresholds") or {},
            signal_options=values.get("signal_options") or {},
            shadow_signals=values.get("shadow_signals") or [],
        )
    except InvalidPolicy as exc:
        raise _NotDone(str(exc)) from None
    if approval.four_eyes:
        # Recorded on the new version (added in this transaction, never edited afterwards).
        PolicyVersion.objects.filter(pk=version.pk).update(approved_by=by)
    audit(by, version, f"policy v{version.pk} in force: {approval.reason}", flag=ADDITION)
    return f"policy v{version.pk}"


# Keyed by StaffApproval.action, a plain string equal to the members.
_EXECUTORS: dict[str, Callable[[StaffApproval, Any], str]] = {
    StaffAction.RELEASE_ORDER: _release_order,
    StaffAction.REVOKE_FACTOR: _revoke_factor,
    StaffAction.UNLOCK_ACCOUNT: _unlock_account,
    StaffAction.CHANGE_POLICY: _change_policy,
    StaffAction.LOCK_ACCOUNT: _lock_account,
    StaffAction.END_SESSIONS: _end_sessions,
    StaffAction.FORCE_PASSWORD_RESET: _force_password_reset,
    StaffAction.BLOCK_NETWORK: _block_network,
    StaffAction.END_NETWORK_BLOCK: _end_network_block,
}


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
