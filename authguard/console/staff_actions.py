"""The concrete staff actions of the four-eyes flow (:mod:`authguard.console.approvals`): what each one is
about (:func:`describe`), what can never be carried out (:func:`check_actionable`), and how each is carried
out through its owner's public function (:data:`EXECUTORS`).

Execution calls the owners' public functions: :func:`authguard.orders.guard.staff_release`,
:func:`authguard.factors.removal.remove_factor`, :func:`authguard.login.lockout.unlock`,
:func:`authguard.risk.policy.save_policy`, :func:`authguard.login.lockout.lock`,
:func:`authguard.login.lockout.end_all_access`, and for containment (issue 16) the forced password reset
(:func:`force_password_reset`) and the network block records (:func:`create_block`, :func:`end_block`),
which live here.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _
from django_otp.models import Device

from authguard import clock
from authguard.audit import ADDITION, audit
from authguard.conf import app_settings
from authguard.console.four_eyes import (
    ACCOUNT_CONTAINMENT,
    CRITICAL,
    HIGH,
    MEDIUM,
    ApprovalError,
    NotDone,
    Target,
    could_not,
)
from authguard.exceptions import AuthguardError
from authguard.factors import lifecycle, removal, throttles
from authguard.factors.inventory import FACTOR_LABELS, kind_of
from authguard.login import lockout
from authguard.models import (
    AccountLock,
    HeldOrder,
    KnownDevice,
    NetworkBlock,
    PolicyVersion,
    StaffAction,
    StaffApproval,
    StaffApprovalStatus,
)
from authguard.notifications.messages import user_language
from authguard.orders import guard as orders
from authguard.risk import networks
from authguard.risk.policy import InvalidPolicy, policy_problem, save_policy

logger = logging.getLogger(__name__)

# -- what an action is about -------------------------------------------------------------------------------


def _in_language_of(user: Any, value: Any) -> str:

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
        lock_count = AccountLock.objects.filter(user_id=user.pk).values_list("lock_count", flat=True).first()
        return Target(
            action=action,
            target_id=str(user.pk),
            customer=user,
            summary=f"unlock {user.get_username()}"[:300],
            severity=HIGH,
            # The request is about the lock in force now; _unlock_account ends that one or none.
            payload={"lock_count": lock_count or 0},
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


def check_actionable(target: Target) -> None:
    """Refuse up front what could never be carried out (so nobody is asked to approve it)."""
    if target.action == StaffAction.RELEASE_ORDER:
        if app_settings.JSDA:
            raise ApprovalError(
                _("Under the JSDA 2025 preset only the customer's passkey can confirm a held order."),
                code="preset",
            )
        if not HeldOrder.objects.filter(pk=target.target_id, status=HeldOrder.Status.PENDING).exists():
            raise ApprovalError(_("This held order is no longer waiting."), code="closed")
        if lockout.is_locked_fail_closed(target.customer):
            raise ApprovalError(
                _("This account is locked: its held orders cannot be released."), code="closed"
            )
    elif (
        target.action == StaffAction.UNLOCK_ACCOUNT
        and not AccountLock.objects.filter(user_id=target.customer.pk, locked_at__isnull=False).exists()
    ):
        raise ApprovalError(_("This account is not locked."), code="closed")
    elif target.action == StaffAction.END_NETWORK_BLOCK and not (
        NetworkBlock.active(now=clock.now()).filter(pk=target.payload["block"]).exists()
    ):
        raise ApprovalError(_("This network block has already ended."), code="closed")


def _contained_since(approval: StaffApproval) -> bool:
    """Whether the desk contained the customer's account (a lock, an end of sessions, a forced reset) after
    ``approval`` was asked for: one query.

    SECURITY: a request is about the account as it was when asked. A release, an unlock or a factor's
    revocation asked for on the thief's phone call must not carry out after the desk found the takeover,
    even when the containment has since been lifted or never locked the account (red team, 2026-12-05).
    """
    if approval.customer_id is None:
        return False  # the account is gone: its executor says so
    return (
        StaffApproval.objects.filter(
            customer_id=approval.customer_id,
            action__in=ACCOUNT_CONTAINMENT,
            status=StaffApprovalStatus.EXECUTED,
            executed_at__gte=approval.requested_at,
        )
        .exclude(pk=approval.pk)
        .exists()
    )


def _release_order(approval: StaffApproval, by: Any) -> str:

    held = HeldOrder.objects.filter(pk=approval.target_id).first()
    if held is None:
        raise NotDone(_("The held order no longer exists."))
    try:
        confirmed = orders.staff_release(held, by=by, reason=approval.reason)
    except orders.ConfirmationError as exc:
        raise NotDone(exc.message) from None
    audit(by, held, f"released: {approval.reason}")
    return str(getattr(confirmed, "result_ref", "") or "")


def _revoke_factor(approval: StaffApproval, by: Any) -> str:

    try:
        device = Device.from_persistent_id(approval.target_id, for_verify=True)
    except (AttributeError, ValueError, LookupError):
        device = None
    if device is None or approval.customer is None or device.user_id != approval.customer.pk:
        raise NotDone(_("The sign-in method no longer exists."))
    name = device.name
    audit(
        by, device, f"revoked {approval.payload.get('kind', '')} {name!r} of {device.user}: {approval.reason}"
    )
    removal.remove_factor(None, user=approval.customer, device=device, by_staff=by, reason=approval.reason)
    return ""


def _unlock_account(approval: StaffApproval, by: Any) -> str:

    if approval.customer is None:
        raise NotDone(_("The account no longer exists."))
    row = AccountLock.objects.select_for_update().filter(user_id=approval.customer.pk).first()
    if row is not None and row.is_locked and row.lock_count != approval.payload.get("lock_count"):
        # SECURITY: the account was locked again after the request (the desk's containment lock, a new
        # run of failures): approving an old request must not end a lock nobody asked to end.
        raise NotDone(_("The account was locked again after this request was made. Ask again."))
    if not lockout.unlock(approval.customer, by=by, reason=approval.reason):
        raise NotDone(_("The account was not locked any more."))
    # SECURITY: the desk checked who she is; the failures whoever knows her username sent while it was
    # locked must not keep her codes refused after it (a browser without a month of standing shares the
    # strangers' scope: docs/factor-lifecycle.md).
    throttles.clear_throttle(user=approval.customer)
    lock = AccountLock.objects.filter(user_id=approval.customer.pk).first()
    if lock is not None:
        audit(by, lock, f"unlocked: {approval.reason}")
    return ""


def _lock_account(approval: StaffApproval, by: Any) -> str:

    if approval.customer is None:
        raise NotDone(_("The account no longer exists."))
    try:
        locked_now = lockout.lock(approval.customer, by=by, reason=approval.reason)
    except (PermissionDenied, ValueError):
        raise
    except Exception as exc:
        # The lock and the ended sessions go together or not at all (the savepoint undoes both).
        raise could_not(exc) from exc
    lock = AccountLock.objects.filter(user_id=approval.customer.pk).first()
    if lock is not None:
        audit(by, lock, f"locked by the security desk: {approval.reason}")
    return "locked" if locked_now else "already locked; its sessions ended"


def _end_sessions(approval: StaffApproval, by: Any) -> str:

    if approval.customer is None:
        raise NotDone(_("The account no longer exists."))
    try:
        sessions, tokens = lockout.end_all_access(approval.customer)
    except Exception as exc:
        raise could_not(exc) from exc
    return f"{sessions} session(s) and {tokens} API token(s) ended"


def _force_password_reset(approval: StaffApproval, by: Any) -> str:

    if approval.customer is None:
        raise NotDone(_("The account no longer exists."))
    try:
        sessions, tokens = force_password_reset(approval.customer)
    except AuthguardError:
        raise
    except Exception as exc:
        raise could_not(exc) from exc
    return f"password replaced; {sessions} session(s) and {tokens} API token(s) ended"


def _block_network(approval: StaffApproval, by: Any) -> str:

    block = create_block(approval, approved_by=by if approval.four_eyes else None)
    until = block.until.isoformat(timespec="minutes")
    audit(by, block, f"blocked {block.network} until {until}: {approval.reason}", flag=ADDITION)
    return f"{block.network} blocked until {block.until.isoformat(timespec='minutes')}"


def _end_network_block(approval: StaffApproval, by: Any) -> str:

    ending = end_block(approval, approved_by=by if approval.four_eyes else None)
    if ending is None:
        raise NotDone(_("This network block has already ended."))
    audit(by, ending, f"ended the block of {ending.network}: {approval.reason}", flag=ADDITION)
    return f"the block of {ending.network} ended"


def _change_policy(approval: StaffApproval, by: Any) -> str:

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
        raise NotDone(str(exc)) from None
    if approval.four_eyes:
        # Recorded on the new version (added in this transaction, never edited afterwards).
        PolicyVersion.objects.filter(pk=version.pk).update(approved_by=by)
    audit(by, version, f"policy v{version.pk} in force: {approval.reason}", flag=ADDITION)
    return f"policy v{version.pk}"


def _unless_contained_since(
    execute: Callable[[StaffApproval, Any], str],
) -> Callable[[StaffApproval, Any], str]:
    """``execute``, refused (:class:`NotDone`) when the desk contained the customer's account after the
    request was made (:func:`_contained_since`): for the actions that give a customer's account something
    (a release, an unlock) or take her way back from it (a factor's revocation)."""

    def unless_contained(approval: StaffApproval, by: Any) -> str:
        if _contained_since(approval):
            raise NotDone(_("The desk contained this account after this request was made. Ask again."))
        return execute(approval, by)

    return unless_contained


def _containing(
    execute: Callable[[StaffApproval, Any], str],
) -> Callable[[StaffApproval, Any], str]:
    """``execute`` (a containment: a lock, an end of sessions, a forced reset), then what every containment
    also closes: the factors still cooling off are revoked, as the customer's own password reset revokes
    them, an open re-binding grant is withdrawn, and the browsers without a month of standing (learned in
    the last ``ESTABLISHED_DEVICE_DAYS``, or never) are forgotten (:func:`_forget_young_browsers`).

    SECURITY: ending the thief's sessions or his password is no containment while his passkey, added with
    the password and one relayed code, still signs him in without either, or while the desk's grant given
    on his phone call still lets him bind one (red team, 2026-12-05). The customer is told of each factor
    removed; one of her own still cooling off she adds again once the desk has spoken with her.
    """

    def contain(approval: StaffApproval, by: Any) -> str:
        result = execute(approval, by)
        customer = approval.customer
        if customer is None:
            return result
        removed = removal.revoke_factors_added_in_cooling_off(
            customer, reason=f"contained: {approval.reason}"
        )
        withdrawn = lifecycle.withdraw_rebind_grant(customer)
        forgotten = _forget_young_browsers(customer)
        if removed:
            result += f"; {removed} sign-in method(s) still cooling off revoked"
        if withdrawn:
            result += "; the open re-binding grant withdrawn"
        if forgotten:
            days = throttles.ESTABLISHED_DEVICE_DAYS
            result += f"; {forgotten} browser(s) without {days} days of standing forgotten"
        return result

    return contain


def _forget_young_browsers(customer: Any) -> int:
    """Forget the browsers ``customer``'s account learned in the last ``ESTABLISHED_DEVICE_DAYS``, or never
    learned at all; returns how many.

    SECURITY: the thief's browser, known to the account since his sign-in, kept aging after the containment
    into "a browser the account has known for a month" (its own throttle scope, a vouched session) and kept
    the known-device discount (red team, round eight). The desk cannot tell his from her new phone; hers
    is learned again at her next verified sign-in, counted from then (``risk.history.learn``).
    """
    now = clock.now()
    since = now - timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS)
    # SECURITY: and every browser the engine never learned (listed by a relayed code), however long ago:
    # a thief who waited a month after his one relayed code kept it through every containment (round eleven).
    young = Q(learned_at__isnull=True) | Q(learned_at__gt=since)
    rows = KnownDevice.objects.filter(young, user=customer, revoked_at__isnull=True)
    return rows.update(revoked_at=now, trusted_until=None)


# Keyed by StaffApproval.action, a plain string equal to the members.
EXECUTORS: dict[str, Callable[[StaffApproval, Any], str]] = {
    StaffAction.RELEASE_ORDER: _unless_contained_since(_release_order),
    StaffAction.REVOKE_FACTOR: _unless_contained_since(_revoke_factor),
    StaffAction.UNLOCK_ACCOUNT: _unless_contained_since(_unlock_account),
    StaffAction.CHANGE_POLICY: _change_policy,
    StaffAction.LOCK_ACCOUNT: _containing(_lock_account),
    StaffAction.END_SESSIONS: _containing(_end_sessions),
    StaffAction.FORCE_PASSWORD_RESET: _containing(_force_password_reset),
    StaffAction.BLOCK_NETWORK: _block_network,
    StaffAction.END_NETWORK_BLOCK: _end_network_block,
}


# -- containment's records (issue 16) ----------------------------------------------------------------


#: The default longest block, in hours (``AUTHGUARD_NETWORK_BLOCK_MAX_HOURS``): a week. A longer need is a
#: deny-list entry in the settings, reviewed like any other change.
DEFAULT_MAX_BLOCK_HOURS = 168


def max_block_hours() -> int:
    """``AUTHGUARD_NETWORK_BLOCK_MAX_HOURS``: the longest block the console accepts (default 168 = a week)."""
    return app_settings.NETWORK_BLOCK_MAX_HOURS


def force_password_reset(user: Any) -> tuple[int, int]:
    """Replace ``user``'s password with a random one nobody knows, then end every session and API token;
    returns (sessions, tokens) ended. The account's factors are untouched here (the desk's containment then
    revokes those still cooling off, :func:`_containing`).

    Not an *unusable* password: Django's password reset sends no mail to an account without a usable one,
    and the portal's password reset is exactly the customer's way back. Written with an UPDATE, not
    ``save()``: the password-change hook (:func:`authguard.login.flow.password_changed`) would also revoke the
    factors added during a cooling-off and tell the customer their password was *changed*; here the desk's
    own message says what happened and what to do.
    """

    model = type(user)
    # SECURITY: a fresh random secret, hashed like any password: the old one (the thief's) no longer works.
    secret = make_password(secrets.token_urlsafe(48))
    updated = model._default_manager.filter(pk=user.pk).update(password=secret)
    if not updated:
        raise ApprovalError(_("The account no longer exists."), code="closed")
    user.refresh_from_db(fields=["password"])
    return lockout.end_all_access(user)


def block_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The checked values of a block request: ``network`` (canonical), ``kind``, ``hours``, ``wide``.

    Raises :class:`~authguard.console.ApprovalError` (``invalid``) with a message for staff.
    """
    if not isinstance(payload, dict):
        raise ApprovalError(_("A network block needs a network and a number of hours."), code="invalid")
    try:
        network, kind = networks.parse_block_target(payload.get("network"))
    except ValueError as exc:
        raise ApprovalError(str(exc), code="invalid") from None
    raw_hours = payload.get("hours")
    hours = raw_hours if isinstance(raw_hours, int) and not isinstance(raw_hours, bool) else None
    if isinstance(raw_hours, str) and raw_hours.strip().isascii() and raw_hours.strip().isdigit():
        hours = int(raw_hours.strip()[:6])
    limit = max_block_hours()
    if hours is None or not 1 <= hours <= limit:
        raise ApprovalError(_("Block for 1 to %(max)d hours.") % {"max": limit}, code="invalid")
    wide = kind == "asn" or int(network.rsplit("/", 1)[1]) < (24 if ":" not in network else 48)
    return {"network": network, "kind": kind, "hours": hours, "wide": wide}


def create_block(approval: StaffApproval, *, approved_by: Any = None) -> NetworkBlock:
    """Write the block of an approved ``block_network`` request (in the flow's transaction); the cached
    blocks are dropped once it commits."""
    values = block_payload(approval.payload)
    now = clock.now()
    block = NetworkBlock.objects.create(
        network=values["network"],
        kind=values["kind"],
        until=now + timedelta(hours=values["hours"]),
        reason=approval.reason[:500],
        created_by=approval.requested_by,
        approved_by=approved_by,
        created_at=now,
    )
    networks.blocks_changed()  # now, and again once committed (a login in between may re-cache the old)
    transaction.on_commit(networks.blocks_changed)
    logger.warning("authguard: network %s blocked until %s", block.network, block.until.isoformat())
    return block


def end_block(approval: StaffApproval, *, approved_by: Any = None) -> NetworkBlock | None:
    """Write the record that ends the block of an approved ``end_network_block`` request; None when the
    block has already ended (expired, or ended by another record)."""
    now = clock.now()
    block = (
        NetworkBlock.objects.select_for_update()
        .filter(pk=approval.payload.get("block"), ends__isnull=True)
        .first()
    )
    if block is None or block.until <= now or NetworkBlock.objects.filter(ends=block).exists():
        return None
    ending = NetworkBlock.objects.create(
        network=block.network,
        kind=block.kind,
        until=now,
        reason=approval.reason[:500],
        created_by=approval.requested_by,
        approved_by=approved_by,
        created_at=now,
        ends=block,
    )
    networks.blocks_changed()  # now, and again once committed (a login in between may re-cache the old)
    transaction.on_commit(networks.blocks_changed)
    logger.warning("authguard: the block of network %s ended early", block.network)
    return ending
