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
from authguard.risk.velocity import take_in_flight


class ThrottleBackend:
    """Put first in ``AUTHENTICATION_BACKENDS``: refuses every login of a throttled IP or account, and of a
    locked account.

    Raising ``PermissionDenied`` stops Django's backend chain, so no password is checked while throttled
    or locked, whichever view (HTML, admin, API) called ``authenticate``: a locked account's answer is the
    same for a right and a wrong password (battery case 59).
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **kwargs: Any) -> None:
        # SECURITY: the account's throttle is keyed on the login name however the portal passes it
        # (``username=`` or the user model's field, ``email=``): keyed on ``username`` alone, every e-mail
        # sign-in shared one bucket, and ten wrong passwords an hour for made-up names throttled every
        # customer of the site (red team, round thirty-five).
        name = username or kwargs.get(get_user_model().USERNAME_FIELD)
        if request is not None and not throttle_attempt(request, name if isinstance(name, str) else ""):
            setattr(request, THROTTLED_ATTR, True)  # the failed-login receiver records it as throttled
            raise PermissionDenied("throttled")
        checked = isinstance(name, str) and attempt.take_unlocked(request, name)  # SECURITY: never cut
        if isinstance(name, str) and name and not checked and _is_locked(user_by_name(name)):
            if request is not None:
                _release_throttle(request)  # refused unchecked: no failure to count
                setattr(request, LOCKED_ATTR, True)  # recorded as refused, counted nowhere
            raise PermissionDenied("locked")
        if (
            request is not None
            and isinstance(name, str)
            and name
            and not take_in_flight(cache, request, username=name)
        ):
            # SECURITY: another check of this account is in flight: a burst of parallel guesses read "not
            # locked" together and outran the lock (red team, round thirty-five). Refused unchecked, with the
            # throttle's answer, a right password as a wrong one.
            _release_throttle(request)
            setattr(request, THROTTLED_ATTR, True)
            raise PermissionDenied("throttled")
        if request is not None:
            setattr(request, PASSED_ATTR, True)  # on to the password check: a failure now is a wrong password
            # SECURITY: at the admin login a customer's password is checked here and refused either way,
            # the right one recorded and scored (the admin form refused it without a trace, red team 34a).
            admin_door.check_customer(request, name, kwargs.get("password"))
        return None

    async def aauthenticate(
        self, request: HttpRequest | None, username: str | None = None, **kwargs: Any
    ) -> None:
        """:meth:`authenticate` for Django's ``aauthenticate()``: an async login view without it failed with
        an ``AttributeError`` (a 500), and removing the backend to get past it removed every throttle and
        lock check (red team, round thirty-five)."""
        return await sync_to_async(self.authenticate)(request, username, **kwargs)

    # No get_user(): this backend never signs anyone in, so Django must not pick it to restore sessions.
