"""API tokens as sessions (:mod:`authguard.drf`): issued one per sign-in, revoked with the account's sessions,
and ended by a session's limits.

:func:`_issue_token` gives every token login (and every passed step-up of one) a new token, ending the one the
account had; :func:`revoke_tokens` ends them all when the account's sessions end (a password change or reset,
a lock, "sign out everywhere else", the desk); :class:`TokenAuthentication` (name it in
``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`` as ``authguard.drf.TokenAuthentication``) refuses a
locked account's token and ends one past the absolute lifetime or the idle limit of a browser session
(:mod:`authguard.sessions.token_activity`).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from authguard import clock
from authguard.exceptions import Throttled
from authguard.login import lockout
from authguard.sessions import token_activity
from authguard.sessions.state import api_access_revoked
from authguard.sessions.token_strength import forget_token_strength

#: DRF's keys are 40 hexadecimal characters; anything else is refused before the database sees it.
TOKEN_KEY_LENGTH = 40


@receiver(api_access_revoked, dispatch_uid="authguard.drf.revoke_tokens")
def _revoke_on_access_ended(sender: Any, *, user: Any, **kwargs: Any) -> int:
    return revoke_tokens(user)


def revoke_tokens(user: Any) -> int:
    """Delete every DRF token of ``user`` and their strong verifications; return how many there were.

    SECURITY: :func:`authguard.login.flow.password_changed` calls it, so a password change or reset ends a
    thief's API token as it ends his sessions.
    """
    keys = list(Token.objects.filter(user=user).values_list("key", flat=True))
    for key in keys:
        forget_token_strength(key)
    Token.objects.filter(key__in=keys).delete()
    token_activity.forget(token_keys=keys)
    return len(keys)


def _issue_token(user: Any) -> str:
    """A new token for every login; the one the account had, and its strength, end here.

    SECURITY: DRF keeps one token per user. Handing out the existing one (``get_or_create``) gave a thief's
    password-only login the customer's token, which then became as strong as her next passkey step-up, and
    gave her login his (red team, 2026-12-04). A login elsewhere signs the previous holder out instead.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                revoke_tokens(user)
                token = Token.objects.create(user=user)
                now = clock.now()
                # auto_now_add is this node's clock; the lifetime counts on authguard's (the database's).
                Token.objects.filter(pk=token.pk).update(created=now)
                token_activity.note_issued(token_key=token.key, now=now)
                return str(token.key)
        except IntegrityError:
            continue  # a concurrent login of the same account created one in between: replace it
    raise Throttled(_("Too many sign-ins at once. Please try again."), retry_after=1)


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, refusing the tokens of locked accounts (a lock ends every session; a
    token is one) and ending a token past a browser session's absolute lifetime or idle limit. Use it
    instead of DRF's in ``DEFAULT_AUTHENTICATION_CLASSES``."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        # A key no token can have (a NUL byte, which PostgreSQL refuses with an error; too long; not ASCII)
        # is refused as an invalid token, not carried to the database (red team, round ten: a 500).
        if not (0 < len(key) <= TOKEN_KEY_LENGTH and key.isascii() and key.isalnum()):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = super().authenticate_credentials(key)
        if token_activity.ended(token=token):
            # SECURITY: a token is a session: a relayed-code sign-in must not buy weeks of access, nor a
            # token put aside for a day.
            Token.objects.filter(pk=token.pk).delete()
            token_activity.forget(token_keys=[token.key])
            raise exceptions.AuthenticationFailed(_("Your session has ended. Sign in again."))
        # SECURITY: fail closed: a lock state that cannot be read refuses the token too.
        if lockout.is_locked_fail_closed(user):
            raise exceptions.AuthenticationFailed(_("This action is not possible right now."))
        return user, token
