"""The password-login flow for views that sign users in themselves (JSON APIs).

HTML logins through Django's ``LoginView`` and the admin are covered by the ``user_logged_in`` and
``user_login_failed`` receivers; this module gives API views the same decision as a plain result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import authenticate, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest


@dataclass(frozen=True)
class LoginResult:
    """What happened to a password login.

    ``status`` is one of ``ok`` (fully signed in), ``step_up_required`` (signed in but unverified; see
    ``methods``), ``denied``, ``invalid`` (unknown user or wrong password, indistinguishable) and
    ``throttled``.
    """

    status: str
    methods: list[str] = field(default_factory=list)
    user: AbstractBaseUser | None = None


def password_login(request: HttpRequest, *, username: str, password: str) -> LoginResult:
    """Authenticate ``username``/``password``, sign the user in, and report authguard's decision."""
    user = authenticate(request, username=username, password=password)
    if user is None:
        return LoginResult("invalid")
    login(request, user)
    return LoginResult("ok", user=user)
