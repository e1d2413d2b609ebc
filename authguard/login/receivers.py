"""Receivers that connect authguard to Django's authentication signals and to the user model.

Connected in :meth:`authguard.apps.AuthguardConfig.ready`, so every login path that uses Django's
``authenticate``/``login`` (HTML forms, JSON APIs, the admin) is scored and recorded, and every password
change that saves the user (Django's password change and reset views, ``set_password()`` then ``save()``,
the admin) ends the user's sessions and revokes the factors added during a cooling-off
(:func:`authguard.login.flow.password_changed`).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.backends.signals import connection_created
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest

from authguard import clock
from authguard.login import flow as login
from authguard.login import last_login, requestless

# Imported for its receiver: a saved PolicyVersion is put in force by authguard.risk.policy.
from authguard.risk import policy as _policy  # noqa: F401
from authguard.sessions import state as sessions_state

logger = logging.getLogger(__name__)

#: Instance attribute set before a save that changes the password hash, read after it.
_CHANGED_ATTR = "_authguard_password_changed"
#: The ``sender`` of ``user_login_failed`` when Django's ``authenticate()``/``aauthenticate()`` sends it.
AUTHENTICATE_SENDER = "django.contrib.auth"


@receiver(user_logged_in, dispatch_uid="authguard.score_login")
def score_successful_login(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    if request is None:
        # SECURITY: a websocket login or a script: nothing to score it with, so its session is held for a
        # step-up when authguard meets it (red team, 2026-12-05).
        requestless.note_sign_in(user)
        last_login.stamp(sender, user)
        return
    # Not an HTTP request: a test client's force_login() (every WSGI/ASGI request carries REQUEST_METHOD).
    # Or the login was already decided in this request.
    if "REQUEST_METHOD" not in request.META:
        last_login.stamp(sender, user)
        return
    _rotate_a_kept_session_key(request)
    if getattr(request, sessions_state.DECISION_ATTR, None) is not None:
        last_login.stamp(sender, user)
        return
    decision = login.after_password_login(request, user)
    # A refused login is no login: `last_login` (which the portal may show the customer as "your last
    # sign-in") keeps the customer's own (issue 14, item 7).
    if decision.status != "denied":
        last_login.stamp(sender, user)


def _rotate_a_kept_session_key(request: HttpRequest) -> None:
    """A new session key on every sign-in (ASVS 7.2.4), also when the same user signs in again through a
    live session, where Django's ``login()`` keeps the key it came with."""
    session = getattr(request, "session", None)
    previous = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if session is None or not previous or session.session_key != previous:
        return
    # SECURITY: a copy of that session cookie (an infostealer takes the whole jar) must not survive the
    # customer's new sign-in, nor share the thief's re-login, which restarts the session's timeouts.
    session.cycle_key()
    sessions_state.forget_session(previous)  # the new key is recorded when the login is decided


@receiver(user_login_failed, dispatch_uid="authguard.record_failed_login")
def record_failed_login(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if request is None:
        requestless.note_failure(credentials)  # SECURITY: counts towards the lock like a form's failure
        return
    # Only a failure of Django's backend chain can have stopped before ThrottleBackend (django-axes).
    login.after_failed_login(request, credentials, from_authenticate=sender == AUTHENTICATE_SENDER)


def password_hash_changes(instance: Any, *, update_fields: Any) -> bool:
    """Whether saving ``instance`` (an existing user) changes its password hash.

    ``set_password()`` leaves the raw password on the instance until it is saved: that is a change.
    Django's own re-hash at login (a new hasher, more iterations) clears it first and saves only the
    ``password`` field: not a change. A full save is compared with the stored hash.
    """
    if getattr(instance, "_password", None) is not None:
        return True
    if update_fields is not None:
        return False
    stored = type(instance)._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    return stored is not None and stored != instance.password


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="authguard.password_change_check")
def note_password_change(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw or instance._state.adding or instance.pk is None:
        return  # fixtures, and new users (whose first password is no change)
    setattr(instance, _CHANGED_ATTR, password_hash_changes(instance, update_fields=update_fields))


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="authguard.password_changed")
def act_on_password_change(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    if created or not getattr(instance, _CHANGED_ATTR, False):
        return
    setattr(instance, _CHANGED_ATTR, False)
    # SECURITY: a password change or reset ends every session (the thief's too) and revokes the factors
    # added during a cooling-off (battery case 58). Not swallowed: a reset that cannot end the sessions
    # must not look like it succeeded.
    login.password_changed(instance)


# The correction of authguard.clock: measured on a new database connection, at most once a minute per process.
connection_created.connect(clock.measure_on_connect, dispatch_uid="authguard.clock")
