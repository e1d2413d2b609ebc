"""Sign-ins Django reports without a request: a websocket login (Django Channels' ``login(scope, user)``), a
portal's own script, ``authenticate()`` called with no request.

Nothing can score them (no address, no browser, no device cookie), so authguard fails closed instead of
trusting them (red team, 2026-12-05):

* a successful one is remembered on the account (:func:`note_sign_in`); from then on a session of that
  account authguard finds without its state is held for a step-up instead of being adopted as verified
  (:func:`authguard.sessions.state.adopt`), however long it was kept unused;
* a failed one counts towards the account lock (:func:`note_failure`), as a wrong password through a form
  does; without a request it cannot be throttled per address.

Sign customers in through a request (:mod:`authguard.login.flow`) and none of this applies. Sessions made by
``Client.force_login()`` in tests carry a request and are adopted as before.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model

from authguard import clock
from authguard.login import lockout
from authguard.login.attempt import user_by_name
from authguard.models import AccountSecurity
from authguard.risk.context import login_name_limit

logger = logging.getLogger(__name__)


def note_sign_in(user: Any) -> None:
    """Remember that ``user`` was signed in without a request, just now."""
    if getattr(user, "pk", None) is None:
        return
    AccountSecurity.objects.update_or_create(user_id=user.pk, defaults={"unscored_login_at": clock.now()})
    logger.warning("authguard: user %s signed in without a request; the session will be stepped up", user.pk)


def note_failure(credentials: dict[str, Any]) -> bool:
    """Count a failed ``authenticate()`` without a request towards the account lock; True if it locked.

    A locked account's refusal is not counted (its password was never checked: ThrottleBackend refused it).
    """
    field = get_user_model().USERNAME_FIELD
    username = credentials.get("username") or credentials.get(field)
    # SECURITY: the user model's limit, not 150: a longer e-mail address is a login name too (red team 34a).
    if not isinstance(username, str) or not username or len(username) > login_name_limit():
        return False
    user = user_by_name(username)
    if user is None or lockout.is_locked_fail_closed(user):
        return False
    try:
        return lockout.record_failure(user, kind=lockout.PASSWORD)
    except Exception:
        logger.exception("authguard: could not count a failed sign-in without a request")
        return False


__all__ = ["note_failure", "note_sign_in"]
