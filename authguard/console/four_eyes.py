"""The four-eyes rules every staff action follows: who may ask and approve what, at which severity, with
which reason; the refusal (:class:`ApprovalError`) and the audit line (:func:`audit`).

The flow itself is :mod:`authguard.console.approvals`; the concrete actions are
:mod:`authguard.console.staff_actions`.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard.audit import audit as audit
from authguard.conf import app_settings
from authguard.console.guard import console_access
from authguard.exceptions import AuthguardError
from authguard.models import (
    StaffAction,
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


def require_permission(user: Any, action: str, target_id: str) -> None:
    if not user.has_perm(required_permission(action, target_id=target_id)):
        raise ApprovalError(_("You do not have the permission for this staff action."), code="permission")


def reason_text(raw: object, *, required: bool = True) -> str:
    text = " ".join(str(raw or "").split()) if isinstance(raw, str) else ""
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        # SECURITY (availability): NUL reached PostgreSQL and a lone surrogate the page (a 500; round 39).
        raise ApprovalError(_("The reason contains characters that cannot be stored."), code="invalid")
    if not text and not required:
        return ""
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise ApprovalError(
            _("Give a reason of %(min)d to %(max)d characters.") % {"min": REASON_MIN, "max": REASON_MAX},
            code="invalid",
        )
    return text


# -- audit and notifications -------------------------------------------------------------------------------


# -- carrying out ------------------------------------------------------------------------------------------


class NotDone(Exception):
    """The owner's function refused or found nothing to do: the approval is ``failed`` with ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def could_not(exc: Exception) -> NotDone:
    """A failure of the session store, the cache or the database while containing: nothing was written (the
    executor's savepoint is undone), and the desk is told to try again."""
    logger.exception("authguard: a containment action could not be carried out")
    return NotDone(_("It could not be carried out (%(error)s); try again.") % {"error": type(exc).__name__})
