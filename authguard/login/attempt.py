"""The user and the lock check of one password attempt, fetched once (issue 15).

:func:`authguard.login.flow.password_login` looks the user up and asks whether the account is locked
before it calls Django's ``authenticate``; :class:`authguard.login.backend.ThrottleBackend` would ask the
same two questions again a moment later, for the same name, in the same request. The first answer is
noted on the request (:func:`note_unlocked`) and taken, once, by the backend (:func:`take_unlocked`).

SECURITY: only "not locked" is noted, and only for the attempt that is about to reach the backend: the
backend takes the note back whatever it decides, so no later attempt of the request reuses it. A lock
that lands between the two is the same race as one landing between the backend's check and the password
check: the login flow asks again before any session is granted (``after_password_login``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import BadRequest
from django.db.models import Exists, OuterRef, Subquery
from django.http import HttpRequest

from authguard.login import lockout
from authguard.models import AccountLock
from authguard.risk.context import login_name_limit

logger = logging.getLogger(__name__)

# The username whose account password_login found unlocked for the attempt it is about to make.
UNLOCKED_ATTR = "_authguard_checked_unlocked"


def user_by_name(username: str) -> Any:
    """The user named ``username`` (through the user manager's ``get_by_natural_key``), or None.

    SECURITY: looked up by the whole name, never a cut copy (a long address cut to 150 characters reached
    no account, so its failures locked nothing, red team 34a); a name longer than any account's is nobody.
    """
    if not username or len(username) > login_name_limit():
        return None
    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        return None


def user_and_lock(username: str) -> tuple[Any, bool]:
    """The user named ``username`` (or None) and whether the account is locked, fail closed.

    One query (the user with its lock row) when the user manager looks users up as Django's does; any
    other manager, or any error, takes the two queries of :func:`user_by_name` and
    :func:`authguard.login.lockout.is_locked_fail_closed`.
    """
    if not username or len(username) > login_name_limit():
        return None, False
    model = get_user_model()
    manager = model._default_manager
    if type(manager).get_by_natural_key is not BaseUserManager.get_by_natural_key:
        user = user_by_name(username)  # a portal's own lookup (case-insensitive e-mail...): asked as it is
        return user, lockout.is_locked_fail_closed(user)
    locks = AccountLock.objects.filter(user_id=OuterRef("pk"), locked_at__isnull=False)
    try:
        row = (
            manager.filter(**{model.USERNAME_FIELD: username})
            .annotate(
                _authguard_locked=Exists(locks),
                _authguard_unlock_due=Subquery(locks.values("unlock_due_at")[:1]),
            )
            .get()
        )
    except model.DoesNotExist:
        return None, False
    except Exception:
        user = user_by_name(username)
        return user, lockout.is_locked_fail_closed(user)
    locked = row.__dict__.pop("_authguard_locked")
    due = row.__dict__.pop("_authguard_unlock_due")
    try:
        return row, lockout.locked_with_due(row, locked=bool(locked), due=due)
    except Exception:
        # SECURITY: as is_locked_fail_closed: a lock state that cannot be settled refuses.
        logger.exception("authguard: lockout state unavailable")
        return row, True


class MalformedCredentials(BadRequest):
    """A login name or password no password check can read: Django answers 400 (``BadRequest``)."""


def readable(value: object) -> bool:
    """Whether ``value`` is a credential string the database and the hasher can take: encodable as UTF-8 (a
    lone surrogate, ``"\\ud800"``, is valid JSON and is not) and without NUL (PostgreSQL refuses it)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def note_unlocked(request: HttpRequest, username: str) -> None:
    """The attempt about to be made for ``username`` was found not locked (see the module docstring)."""
    setattr(request, UNLOCKED_ATTR, username)


def take_unlocked(request: HttpRequest | None, name: str) -> bool:
    """Whether this attempt for ``name`` was just found not locked; the note is taken back either way."""
    if request is None:
        return False
    noted = getattr(request, UNLOCKED_ATTR, None)
    setattr(request, UNLOCKED_ATTR, None)
    return noted is not None and noted == name
