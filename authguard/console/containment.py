"""Containment by the security desk (issue 16): lock an account, end its sessions, force a password reset,
block a network for some hours.

Every one of them is a staff action of the one four-eyes flow (:mod:`authguard.console.approvals`): the
console's pages and admin actions call :func:`contain_account`, :func:`request_block` and
:func:`request_end_block`, which call :func:`~authguard.console.approvals.request_action`; the flow checks
the passkey session and the permission, records and audits the action, tells the customer (never staff
names or notes) and, when ``AUTHGUARD_FOUR_EYES`` asks for it, waits for a second staff member.

What the flow's executors need beyond the owners' functions (the forced password reset and the network
block records) lives with them in :mod:`authguard.console.staff_actions`, re-exported here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from authguard import clock
from authguard.console import approvals, four_eyes
from authguard.console.staff_actions import (
    DEFAULT_MAX_BLOCK_HOURS as DEFAULT_MAX_BLOCK_HOURS,
)
from authguard.console.staff_actions import block_payload as block_payload
from authguard.console.staff_actions import create_block as create_block
from authguard.console.staff_actions import end_block as end_block
from authguard.console.staff_actions import force_password_reset as force_password_reset
from authguard.console.staff_actions import max_block_hours as max_block_hours
from authguard.models import NetworkBlock, StaffAction, StaffApproval, StaffApprovalStatus

logger = logging.getLogger(__name__)


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
    :data:`~authguard.console.four_eyes.ACCOUNT_CONTAINMENT`), through the four-eyes flow.

    Raises :class:`~authguard.console.four_eyes.ApprovalError` (``invalid`` for another action or no
    account, ``permission``, ``staff_passkey_required``...).
    """
    if action not in {str(a) for a in four_eyes.ACCOUNT_CONTAINMENT}:
        raise four_eyes.ApprovalError(_("Unknown staff action."), code="invalid")
    approval = approvals.request_action(request, action=str(action), target=user, reason=reason)
    return Outcome(approval, describe_outcome(approval))


# -- network blocks ------------------------------------------------------------------------------------------


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
    block = (
        NetworkBlock.objects.filter(pk=int(raw)).first()
        if raw.isascii() and raw.isdigit() and len(raw) < 19
        else None
    )
    if block is None:
        raise four_eyes.ApprovalError(_("There is no such network block."), code="not_found")
    approval = approvals.request_action(
        request, action=StaffAction.END_NETWORK_BLOCK, target=block, reason=reason
    )
    return Outcome(approval, describe_outcome(approval))


def active_blocks_for_console() -> list[NetworkBlock]:
    """The blocks in force, newest first, for the network lists page."""
    return list(NetworkBlock.active(now=clock.now()).select_related("created_by", "approved_by")[:500])


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
