"""``last_login`` is stamped after authguard's decision, so a refused login never becomes "your last sign-in".

Django's auth app connects ``update_last_login`` to ``user_logged_in`` in its ``ready()``; that receiver runs
before authguard's and would stamp refused logins too. :func:`take_over` disconnects it and authguard's login
receiver calls :func:`stamp` once the login is let in. Imports nothing of django-otp:
``AuthguardConfig.ready`` calls it before anything else, also when the registry is populated again
(``override_settings(INSTALLED_APPS=...)`` runs every ``ready()`` once more, and Django's receiver with it).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in

#: Whether Django's own ``update_last_login`` receiver was disconnected by :func:`take_over`.
_taken_over = False


def take_over() -> None:
    """Disconnect Django's receiver when it is connected under its usual ``dispatch_uid``; otherwise nothing
    changes (a portal that disconnected it on purpose keeps its choice, and nobody stamps twice)."""
    global _taken_over
    if user_logged_in.disconnect(dispatch_uid="update_last_login"):
        _taken_over = True


def stamp(sender: Any, user: AbstractBaseUser) -> None:
    """Set ``last_login`` as Django would have, when authguard took that over and the model has the field."""
    if _taken_over and hasattr(user, "last_login"):
        update_last_login(sender, user)  # type: ignore[arg-type]  # any user model with last_login
