"""The user and the lock check of one password attempt, fetched once (issue 15).

:func:`authguard.login.flow.password_login` looks the user up and asks whether the account is locked
before it calls Django's ``authenticate``; :class:`authguard.login.backend.ThrottleBackend` would ask the
same two questions again a moment later, for the same name, in the same request. The first answer is
noted on the request (:func:`note_unlocked`) and taken, once, by the backend (:func:`take_unlocked`).

SECURITY: only "not locked" is noted, and only for the attempt that is about to reach the backend: the
backend takes the note back whatever it decides, so no later attempt of the request reuses it. The note
saves the backend the user lookup, never the lock: the backend reads the lock again once it holds the
account's one check in flight (``velocity.take_in_flight``), because a failure that ended between the two
may have locked the account, and a right password checked there was answered apart from a wrong one (red
team, round thirty-seven).
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


def note_unlocked(request: HttpRequest, username: str, user: Any = None) -> None:
    """The attempt about to be made for ``username`` (the account ``user``, or None) was found not locked (see
    the module docstring)."""
    setattr(request, UNLOCKED_ATTR, (username, user))


def take_unlocked(request: HttpRequest | None, name: str) -> tuple[bool, Any]:
    """``(whether this attempt for name was just found not locked, the account it found)``; the note is
    taken back either way."""
    if request is None:
        return False, None
    noted = getattr(request, UNLOCKED_ATTR, None)
    setattr(request, UNLOCKED_ATTR, None)
    if isinstance(noted, tuple) and len(noted) == 2 and noted[0] == name:
        return True, noted[1]
    return False, None


def account_key(user: Any, name: str) -> str:
    """What an attempt's throttle slot and in-flight place are keyed on: the account found (its primary key),
    or, for a name that finds no account, the name as typed. Two namespaces: no typed name is an account's
    key.

    SECURITY: keyed on the lower-cased typed name, spellings of one account that the database folds
    (PostgreSQL's ``UPPER()`` finds ``alıce`` for ``alice``) had places of their own and a burst of them
    outran the lock, and a name of nobody that lower-cases to hers (``HANAKO`` on a portal whose names are
    case-sensitive, a Kelvin sign) filled her slot and throttled her silently (red team, round thirty-six).
    """
    pk = getattr(user, "pk", None)
    return f"account:{pk}" if pk is not None else f"name:{name}"
