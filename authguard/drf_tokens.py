"""API tokens as sessions (:mod:`authguard.drf`): issued one per sign-in and revoked with the account's
sessions.

:func:`_issue_token` gives every token login (and every passed step-up of one) a new token, ending the one the
account had; :func:`revoke_tokens` ends them all when the account's sessions end (a password change or reset,
a lock, "sign out everywhere else", the desk). ``authguard.drf.TokenAuthentication`` ends one past the
absolute lifetime or the idle limit of a browser session (:mod:`authguard.sessions.token_activity`).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from authguard import clock
from authguard.exceptions import Throttled
from authguard.sessions import token_activity, token_binding, token_devices
from authguard.sessions.state import TOKEN_ATTR, api_access_revoked
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


def _issue_token(user: Any, *, request: HttpRequest) -> str:
    """A new token for every login; the one the account had, and its strength, end here.

    SECURITY: DRF keeps one token per user. Handing out the existing one (``get_or_create``) gave a thief's
    password-only login the customer's token, which then became as strong as her next passkey step-up, and
    gave her login his (red team, 2026-12-04). A login elsewhere signs the previous holder out instead.
    The token is bound to ``request``'s context (:mod:`authguard.sessions.token_binding`), and the answer
    moves the client's device cookie on (:mod:`authguard.sessions.token_devices`).
    """
    # The cookie the previous token's answer carried, presented now, is the client's newest (before that
    # token goes: its state names the generation).
    for previous in Token.objects.filter(user=user).values_list("key", flat=True):
        token_devices.confirm(request, user_id=user.pk, token_key=previous)
    bound = token_binding.issued_state(
        request, vouched=token_binding.vouched_before(request, user=user, now=clock.timestamp())
    )
    for _attempt in range(3):
        try:
            with transaction.atomic():
                revoke_tokens(user)
                token = Token.objects.create(user=user)
                now = clock.now()
                # auto_now_add is this node's clock; the lifetime counts on authguard's (the database's).
                Token.objects.filter(pk=token.pk).update(created=now)
                token_activity.note_issued(token_key=token.key, now=now)
                token_binding.note_bound(token_key=token.key, state=bound)
                setattr(request, TOKEN_ATTR, (token.key, user.pk))
                return str(token.key)
        except IntegrityError:
            continue  # a concurrent login of the same account created one in between: replace it
    raise Throttled(_("Too many sign-ins at once. Please try again."), retry_after=1)
