"""authguard's vocabulary: every enumeration the package stores, decides or shows, defined once.

A login goes through four words in four places; they are different things, not synonyms:

* :class:`Action` is what the risk *policy* decides for a score: ``allow``, ``step_up`` or ``deny``.
* :class:`Outcome` is what *happened* to the login, stored on its ``LoginEvent``: ``signed_in``,
  ``step_up_pending``, ``step_up_passed``, ``refused``... (a ``step_up`` decision becomes ``step_up_pending``,
  then ``step_up_passed`` or ``step_up_failed``).
* A session's *status* (:data:`authguard.sessions.state.Status`) is ``pending`` until step-up, then
  ``verified``.
* The JSON API answers a login with ``ok``, ``step_up_required`` or ``denied`` (docs/interfaces.md).

A second factor is a *factor* everywhere (:class:`FactorKind`: ``passkey``, ``totp``, ``recovery_code``);
django-otp calls its model a *device*, and a step-up *method* is the factor kind used.

This module imports nothing of authguard: models, settings checks and every feature package read it.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = [
    "Action",
    "ActionKind",
    "FactorKind",
    "Feedback",
    "GuardStatus",
    "NetworkBlockKind",
    "NotificationStatus",
    "Outcome",
    "StaffAction",
    "StaffApprovalStatus",
]


class Action(models.TextChoices):
    """What authguard decides for a login: the risk policy's answer to a score."""

    ALLOW = "allow", _("allow")
    STEP_UP = "step_up", _("step up")
    DENY = "deny", _("deny")


class Outcome(models.TextChoices):
    """What happened after a login was scored."""

    SIGNED_IN = "signed_in", _("signed in")
    STEP_UP_PENDING = "step_up_pending", _("waiting for step-up")
    STEP_UP_PASSED = "step_up_passed", _("passed step-up")
    STEP_UP_FAILED = "step_up_failed", _("failed step-up")
    REFUSED = "refused", _("refused")
    BAD_PASSWORD = "bad_password", _("wrong password or unknown user")
    THROTTLED = "throttled", _("throttled")
    RESCORED = "rescored", _("re-scored mid-session: back to step-up")
    PASSKEY_LOGIN = "passkey_login", _("signed in with a passkey")


class Feedback(models.TextChoices):
    """An analyst's verdict on a login event."""

    FRAUD = "fraud", _("confirmed fraud")
    LEGITIMATE = "legitimate", _("legitimate")


class FactorKind(models.TextChoices):
    """The kinds of second factor authguard manages."""

    PASSKEY = "passkey", _("passkey")
    TOTP = "totp", _("authenticator app")
    RECOVERY_CODE = "recovery_code", _("recovery codes")


class GuardStatus(models.TextChoices):
    """Where a guarded order stands. Placed and held orders count against the rolling window."""

    PLACED = "placed", _("placed")
    HELD = "held", _("held for confirmation")
    CANCELLED = "cancelled", _("cancelled")
    EXPIRED = "expired", _("expired")
    FAILED = "failed", _("could not be executed")


class NotificationStatus(models.TextChoices):
    """Where an outbox row is in its life."""

    PENDING = "pending", _("waiting to be sent")
    SENDING = "sending", _("being sent")
    SENT = "sent", _("sent")
    FAILED = "failed", _("gave up")
    SKIPPED = "skipped", _("nothing to send (no address)")


class ActionKind(models.TextChoices):
    """The sensitive actions authguard guards."""

    WITHDRAWAL = "withdrawal", _("cash withdrawal")
    BANK_ACCOUNT_ADD = "bank_account_add", _("bank account registration")
    BANK_ACCOUNT_CHANGE = "bank_account_change", _("bank account change")
    SECURITIES_TRANSFER_OUT = "securities_transfer_out", _("transfer of securities out")
    CONTACT_CHANGE = "contact_change", _("contact details change")


class StaffAction(models.TextChoices):
    """The staff actions that can need a second staff member's approval (``AUTHGUARD_FOUR_EYES``)."""

    RELEASE_ORDER = "release_order", _("release (execute) a held order")
    REVOKE_FACTOR = "revoke_factor", _("revoke a customer's sign-in method")
    UNLOCK_ACCOUNT = "unlock_account", _("unlock an account")
    CHANGE_POLICY = "change_policy", _("change the risk policy")
    # Containment (issue 16): take access away at once; their undo (unlock, end a block) keeps four eyes.
    LOCK_ACCOUNT = "lock_account", _("lock an account")
    END_SESSIONS = "end_sessions", _("end every session of an account")
    FORCE_PASSWORD_RESET = "force_password_reset", _("force a password reset")
    BLOCK_NETWORK = "block_network", _("block a network")
    END_NETWORK_BLOCK = "end_network_block", _("end a network block")


class StaffApprovalStatus(models.TextChoices):
    """Where a staff action stands."""

    PENDING = "pending", _("waiting for a second approval")
    EXECUTED = "executed", _("approved and carried out")
    REJECTED = "rejected", _("rejected")
    EXPIRED = "expired", _("expired without approval")
    FAILED = "failed", _("approved, but could not be carried out")
    WITHDRAWN = "withdrawn", _("withdrawn by the requester")


class NetworkBlockKind(models.TextChoices):
    """What a block names: an IP network, or an autonomous system (every address it announces)."""

    CIDR = "cidr", _("IP network")
    ASN = "asn", _("autonomous system (ASN)")
