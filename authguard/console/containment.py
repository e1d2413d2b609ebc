"""Containment by the security desk (issue 16): lock an account, end its sessions, force a password reset,
block a network for some hours.

Every one of them is a staff action of the one four-eyes flow (:mod:`authguard.console.approvals`): the
console's pages and admin actions call :func:`contain_account`, :func:`request_block` and
:func:`request_end_block`, which call :func:`~authguard.console.approvals.request_action`; the flow checks
the passkey session and the permission, records and audits the action, tells the customer (never staff
names or notes) and, when ``AUTHGUARD_FOUR_EYES`` asks for it, waits for a second staff member.

This module also holds what the flow's executors need beyond the owners' functions: the forced password
reset (:func:`force_password_reset`) and the network block records (:func:`create_block`,
:func:`end_block`).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from authguard.conf import app_settings
from authguard.console import approvals
from authguard.models import NetworkBlock, StaffAction, StaffApproval, StaffApprovalStatus
from authguard.risk import networks

logger = logging.getLogger(__name__)

#: The default longest block, in hours (``AUTHGUARD_NETWORK_BLOCK_MAX_HOURS``): a week. A longer need is a
#: deny-list entry in the settings, reviewed like any other change.
DEFAULT_MAX_BLOCK_HOURS = 168


def max_block_hours() -> int:
    """``AUTHGUARD_NETWORK_BLOCK_MAX_HOURS``: the longest block the console accepts (default 168 = a week)."""
    return app_settings.NETWORK_BLOCK_MAX_HOURS


@dataclass(frozen=True)
class Outcome:
    """What a containment request came to, in words for the staff member who asked."""

    approval: StaffApproval
    message: str

    @property
    def waiting(self) -> bool:
        """True when it waits for a second staff member's approval."""
        return self.approval.status == StaffApprovalStatus.PENDING

    @property
    def done(self) -> bool:
        """True when it was carried out."""
        return self.approval.status == StaffApprovalStatus.EXECUTED


def describe_outcome(approval: StaffApproval) -> str:
    """One sentence for staff: carried out (with the result), waiting for a second approval, or failed."""
    label = capfirst(approval.get_action_display())
    if approval.status == StaffApprovalStatus.PENDING:
        return _("%(action)s: waiting for a second approval (Staff actions).") % {"action": label}
    if approval.status == StaffApprovalStatus.EXECUTED:
        return _("%(action)s: done (%(result)s).") % {"action": label, "result": approval.result}
    return _("%(action)s: not carried out (%(result)s).") % {"action": label, "result": approval.result}


# -- accounts -----------------------------------------------------------------------------------------------


def contain_account(request: HttpRequest, *, action: object, user: Any, reason: object) -> Outcome:
    """Lock ``user``'s account, end its sessions or force a password reset (``action`` one of
    :data:`~authguard.console.approvals.ACCOUNT_CONTAINMENT`), through the four-eyes flow.

    Raises :class:`~authguard.console.approvals.ApprovalError` (``invalid`` for another action or no
    account, ``permission``, ``staff_passkey_required``...).
    """
    if action not in {str(a) for a in approvals.ACCOUNT_CONTAINMENT}:
        raise approvals.ApprovalError(_("Unknown staff action."), code="invalid")
    approval = approvals.request_action(request, action=str(action), target=user, reason=reason)
    return Outcome(approval, describe_outcome(approval))


def force_password_reset(user: Any) -> tuple[int, int]:
    """Replace ``user``'s password with a random one nobody knows, then end every session and API token;
    returns (sessions, tokens) ended. The account's factors are untouched.

    Not an *unusable* password: Django's password reset sends no mail to an account without a usable one,
    and the portal's password reset is exactly the customer's way back. Written with an UPDATE, not
    ``save()``: the password-change hook (:func:`authguard.login.flow.password_changed`) would also revoke the
    factors added during a cooling-off and tell the customer their password was *changed*; here the desk's
    own message says what happened and what to do.
    """
    from authguard.login import lockout

    model = type(user)
    # SECURITY: a fresh random secret, hashed like any password: the old one (the thief's) no longer works.
    secret = make_password(secrets.token_urlsafe(48))
    updated = model._default_manager.filter(pk=user.pk).update(password=secret)
    if not updated:
        raise approvals.ApprovalError(_("The account no longer exists."), code="closed")
    user.refresh_from_db(fields=["password"])
    return lockout.end_all_access(user)


# -- network blocks ------------------------------------------------------------------------------------------


def block_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The checked values of a block request: ``network`` (canonical), ``kind``, ``hours``, ``wide``.

    Raises :class:`~authguard.console.approvals.ApprovalError` (``invalid``) with a message for staff.
    """
    if not isinstance(payload, dict):
        raise approvals.ApprovalError(
            _("A network block needs a network and a number of hours."), code="invalid"
        )
    try:
        network, kind = networks.parse_block_target(payload.get("network"))
    except ValueError as exc:
        raise approvals.ApprovalError(str(exc), code="invalid") from None
    raw_hours = payload.get("hours")
    hours = raw_hours if isinstance(raw_hours, int) and not isinstance(raw_hours, bool) else None
    if isinstance(raw_hours, str) and raw_hours.strip().isascii() and raw_hours.strip().isdigit():
        hours = int(raw_hours.strip()[:6])
    limit = max_block_hours()
    if hours is None or not 1 <= hours <= limit:
        raise approvals.ApprovalError(_("Block for 1 to %(max)d hours.") % {"max": limit}, code="invalid")
    wide = kind == "asn" or int(network.rsplit("/", 1)[1]) < (24 if ":" not in network else 48)
    return {"network": network, "kind": kind, "hours": hours, "wide": wide}


def request_block(request: HttpRequest, *, network: object, hours: object, reason: object) -> Outcome:
    """Ask to block ``network`` (a CIDR or ``AS<number>``) for ``hours`` hours, through the four-eyes flow.
    The hours count from when the block takes effect (after the second approval)."""
    approval = approvals.request_action(
        request,
        action=StaffAction.BLOCK_NETWORK,
        reason=reason,
        payload={"network": network, "hours": hours},
    )
    return Outcome(approval, describe_outcome(approval))


def request_end_block(request: HttpRequest, *, block_id: object, reason: object) -> Outcome:
    """Ask to end an active block early, through the four-eyes flow."""
    raw = str(block_id)
    block = NetworkBlock.objects.filter(pk=int(raw)).first() if raw.isdigit() and len(raw) < 19 else None
    if block is None:
        raise approvals.ApprovalError(_("There is no such network block."), code="not_found")
    approval = approvals.request_action(
        request, action=StaffAction.END_NETWORK_BLOCK, target=block, reason=reason
    )
    return Outcome(approval, describe_outcome(approval))


def create_block(approval: StaffApproval, *, approved_by: Any = None) -> NetworkBlock:
    """Write the block of an approved ``block_network`` request (in the flow's transaction); the cached
    blocks are dropped once it commits."""
    values = block_payload(approval.payload)
    now = timezone.now()
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
    now = timezone.now()
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


def active_blocks_for_console() -> list[NetworkBlock]:
    """The blocks in force, newest first, for the network lists page."""
    return list(NetworkBlock.active(now=timezone.now()).select_related("created_by", "approved_by")[:500])


__all__ = [
    "DEFAULT_MAX_BLOCK_HOURS",
    "Outcome",
    "active_blocks_for_console",
    "block_payload",
    "contain_account",
    "create_block",
    "describe_outcome",
    "end_block",
    "force_password_reset",
    "max_block_hours",
    "request_block",
    "request_end_block",
]
