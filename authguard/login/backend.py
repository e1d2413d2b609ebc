"""``authguard.login.ThrottleBackend``: the authentication backend that throttles and locks every password
check, whichever view (HTML, admin, API) calls ``authenticate`` or ``aauthenticate``.

The scoring flow is :mod:`authguard.login.flow`; this backend only decides, before Django's own backends
check a password, whether that check may happen at all.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from authguard.login import admin_door, attempt
from authguard.login.attempt import user_by_name
from authguard.login.flow import (
    LOCKED_ATTR,
    PASSED_ATTR,
    THROTTLED_ATTR,
    _is_locked,
    _release_throttle,
    throttle_attempt,
)
from authguard.risk.velocity import release_in_flight, take_in_flight
from authguard.sessions.records import note_sign_in_started


class ThrottleBackend:
    """Put first in ``AUTHENTICATION_BACKENDS``: refuses every login of a throttled IP or account, and of a
    locked account.

    Raising ``PermissionDenied`` stops Django's backend chain, so no password is checked while throttled
    or locked, whichever view (HTML, admin, API) called ``authenticate``: a locked account's answer is the
    same for a right and a wrong password (battery case 59).
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **kwargs: Any) -> None:
        note_sign_in_started(request)  # SECURITY: a portal's own login view: before the lock read below
        typed = username or kwargs.get(get_user_model().USERNAME_FIELD)
        name = typed if isinstance(typed, str) else ""
        # password_login looked the account up a moment ago: not looked up again.
        checked, account = attempt.take_unlocked(request, name)  # SECURITY: the whole name, never cut
        if not checked and name:
            account = user_by_name(name)
        # SECURITY: the account's throttle slot and in-flight place are keyed on the account found, however
        # the portal passes the name (``username=``, ``email=``: one bucket for every customer before, red
        # team round thirty-five) and however it is spelled (round thirty-six: attempt.account_key).
        key = attempt.account_key(account, name)
        if request is not None and not throttle_attempt(request, key):
            setattr(request, THROTTLED_ATTR, True)  # the failed-login receiver records it as throttled
            raise PermissionDenied("throttled")
        place = take_in_flight(cache, request, username=key) if request is not None and name else "taken"
        if place == "busy" and request is not None:
            # SECURITY: another check of this account is still in flight: refused unchecked, with the
            # throttle's answer, a right password as a wrong one (round thirty-five).
            _release_throttle(request)
            setattr(request, THROTTLED_ATTR, True)
            raise PermissionDenied("throttled")
        # SECURITY: read after the place is taken, always: a check that ended while this one waited (round
        # thirty-six), or between password_login's reading and this place, may have locked the account; the
        # reading noted before the place let a right password be checked and answered apart (round 37a).
        if name and _is_locked(account):
            if request is not None:
                _release_throttle(request)  # refused unchecked: no failure to count
                release_in_flight(cache, request)
                setattr(request, LOCKED_ATTR, True)  # recorded as refused, counted nowhere
            raise PermissionDenied("locked")
        if request is not None:
            setattr(request, PASSED_ATTR, True)  # on to the password check: a failure now is a wrong password
            # SECURITY: at the admin login a customer's password is checked here and refused either way,
            # the right one recorded and scored (the admin form refused it without a trace, red team 34a).
            admin_door.check_customer(request, account if name else None, kwargs.get("password"))
        return None

    async def aauthenticate(
        self, request: HttpRequest | None, username: str | None = None, **kwargs: Any
    ) -> None:
        """:meth:`authenticate` for Django's ``aauthenticate()``: an async login view without it failed with
        an ``AttributeError`` (a 500), and removing the backend to get past it removed every throttle and
        lock check (red team, round thirty-five)."""
        return await sync_to_async(self.authenticate)(request, username, **kwargs)

    # No get_user(): this backend never signs anyone in, so Django must not pick it to restore sessions.
