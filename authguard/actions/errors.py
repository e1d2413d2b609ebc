"""What :mod:`authguard.actions.flow` raises on purpose: refusals of the request, and the confirmation
failures (the held-item confirmation's own, :mod:`authguard.orders.confirmation`, worded for actions).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard.exceptions import AuthguardError
from authguard.orders import confirmation as held_items


class ActionError(AuthguardError):
    """Base of what :mod:`authguard.actions.flow` raises on purpose; ``http_status`` is the API's answer."""

    http_status = 400


class ActionInvalid(ActionError):
    """The action's ``params`` are malformed; ``errors`` maps each field to its messages. Nothing was held."""

    http_status = 400
    default_code = "invalid"
    default_message = gettext_lazy("The request is not valid.")

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: Mapping[str, list[str]] | None = None,
    ) -> None:
        errors = {key: [str(m) for m in value] for key, value in (errors or {}).items()}
        if message is None and errors:
            message = " ".join(m for messages in errors.values() for m in messages)
        super().__init__(message, code=code)
        self.errors: dict[str, list[str]] = errors


class ActionRefused(ActionError):
    """The action cannot be asked for now (payee on hold, no way to confirm, too many waiting)."""

    http_status = 403
    default_code = "refused"
    default_message = gettext_lazy("This cannot be done from your account right now.")


class UnknownPayee(ActionRefused):
    """The destination is not a bank account registered for this customer (or it was removed)."""

    default_code = "unknown_payee"
    default_message = gettext_lazy("This bank account is not registered for your account.")


class PayeeOnHold(ActionRefused):
    """The destination was registered or changed too recently to receive money; ``available_at`` says when."""

    default_code = "payee_on_hold"

    def __init__(self, *, available_at: datetime) -> None:
        local = timezone.localtime(available_at)
        super().__init__(
            _(
                "For your protection, a newly registered or changed bank account can receive money only from "
                "%(when)s."
            )
            % {"when": local.strftime("%Y-%m-%d %H:%M")}
        )
        self.available_at = available_at


class NoConfirmationMethod(ActionRefused):
    """The customer has no factor that may confirm this action (no passkey, or only factors cooling off)."""

    default_code = "no_method"
    default_message = gettext_lazy(
        "This needs your passkey, and your account has none that can confirm it yet. Add a passkey in your "
        "security settings (a passkey added today can confirm this only after the waiting period), or "
        "contact us."
    )


# The confirmation failures are the order guard's, with wording for actions: one hierarchy, so whatever
# answers a held order's ConfirmationError (http_status, code, retry_after) answers a held action's too.
class ConfirmationError(ActionError, held_items.ConfirmationError):
    """A confirmation attempt failed; ``http_status`` is the API's answer."""


class ConfirmationNotFound(held_items.ConfirmationNotFound, ConfirmationError):
    """No such pending action for this customer in this session (also for another session's)."""

    default_message = gettext_lazy("There is nothing of yours waiting for confirmation under this link.")


class ConfirmationGone(held_items.ConfirmationGone, ConfirmationError):
    """The action's confirmation expired, was cancelled, or was already used."""

    default_message = gettext_lazy("This is no longer waiting for confirmation.")


class ConfirmationInvalid(held_items.ConfirmationInvalid, ConfirmationError):
    """The passkey or code did not verify, the method is not allowed, or the factor is cooling off."""


class ConfirmationThrottled(held_items.ConfirmationThrottled, ConfirmationError):
    """The factor's back-off refuses attempts for now: 429 ``throttled`` (``retry_after`` seconds)."""


class ActionNotExecutable(AuthguardError):
    """Raised by the portal's executor: the stored action can no longer be carried out (funds, account...)."""

    default_code = "not_executable"
    default_message = gettext_lazy("This can no longer be carried out.")


class ActionsMisconfigured(ImproperlyConfigured):
    """``AUTHGUARD_ACTION_EXECUTOR`` is missing or does not import."""
