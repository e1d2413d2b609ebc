"""authguard's exceptions: precise, coded, and safe to show to the user.

Every exception carries a stable machine-readable ``code`` (what API clients and tests match on) and a
translated human ``message`` (what the user reads). Neither ever contains a secret, a stack trace or
anything taken verbatim from the request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

if TYPE_CHECKING:
    # Only the type checker needs it: django-stubs-ext ships with django-stubs, not with the app.
    from django_stubs_ext import StrOrPromise


class AuthguardError(Exception):
    """Base class of everything authguard raises on purpose."""

    #: Stable machine-readable code; subclasses and call sites narrow it.
    default_code: str = "error"
    default_message: StrOrPromise = _("The request could not be completed.")

    def __init__(self, message: StrOrPromise | None = None, *, code: str | None = None) -> None:
        self.code: str = code or self.default_code
        self.message: str = str(message if message is not None else self.default_message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidCredential(AuthguardError):
    """A WebAuthn credential, TOTP code or recovery code was malformed or did not verify.

    ``code`` says why, e.g. ``"malformed"``, ``"challenge"``, ``"origin"``, ``"unknown_credential"``,
    ``"wrong_user"``, ``"sign_count"``, ``"backup_flags"``, ``"user_verification"``, ``"wrong_code"``.
    """

    default_code = "invalid"
    default_message = _("The verification failed.")


#: :class:`InvalidCredential` codes that say nothing about who answered: the server could not check the
#: answer (the cache that records spent challenges is down). The attempt is refused, but it does not count
#: towards the account lock.
NOT_THE_CUSTOMERS_FAILURE = frozenset({"unavailable"})


class StepUpRequired(AuthguardError):
    """The session must first pass (or freshly repeat) a strong verification with an existing factor."""

    default_code = "step_up_required"
    default_message = _("Please confirm it is you with one of your security keys or codes first.")

    def __init__(
        self,
        message: StrOrPromise | None = None,
        *,
        code: str | None = None,
        methods: Sequence[str] = (),
    ) -> None:
        super().__init__(message, code=code)
        #: The methods the user can verify with now (``[]``: none, e.g. a first factor from a risky session).
        self.methods: list[str] = list(methods)


class Throttled(AuthguardError):
    """Too many failed attempts: this factor refuses verification for now (or for good, until re-bound)."""

    default_code = "throttled"
    default_message = _("Too many attempts. Please wait a moment and try again.")

    def __init__(
        self, message: StrOrPromise | None = None, *, code: str | None = None, retry_after: int | None = None
    ) -> None:
        """``retry_after``: whole seconds until the factor takes an attempt again, when the throttle knows
        (it becomes the HTTP ``Retry-After`` header); without a ``message`` the default one names it."""
        if message is None and retry_after is not None:
            message = wait_message(retry_after)
        super().__init__(message, code=code)
        self.retry_after: int | None = retry_after


def wait_message(seconds: int) -> str:
    """The translated message for a wait of ``seconds``: "Too many attempts. Please wait 3 seconds and try
    again." (minutes from one minute on, hours from one hour on; always rounded up)."""
    if seconds < 60:
        count = max(1, seconds)
        text = ngettext(
            "Too many attempts. Please wait %(count)d second and try again.",
            "Too many attempts. Please wait %(count)d seconds and try again.",
            count,
        )
    elif seconds < 3600:
        count = math.ceil(seconds / 60)
        text = ngettext(
            "Too many attempts. Please wait %(count)d minute and try again.",
            "Too many attempts. Please wait %(count)d minutes and try again.",
            count,
        )
    else:
        count = math.ceil(seconds / 3600)
        text = ngettext(
            "Too many attempts. Please wait %(count)d hour and try again.",
            "Too many attempts. Please wait %(count)d hours and try again.",
            count,
        )
    return text % {"count": count}


class SessionEnded(PermissionDenied):
    """The session was ended ("sign out everywhere", a lock, the desk) while this request renewed its key
    (a step-up): the request is refused (403) and the browser is signed out."""

    code = "session_ended"

    def __init__(self) -> None:
        super().__init__(str(_("This session was signed out. Sign in again.")))
