"""Receivers that connect authguard to Django's authentication signals.

Connected in :meth:`authguard.apps.AuthguardConfig.ready`, so every login path that uses Django's
``authenticate``/``login`` (HTML forms, JSON APIs, the admin) is scored and recorded.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from . import login


@receiver(user_logged_in, dispatch_uid="authguard.score_login")
def score_successful_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    # Not an HTTP request: a script, or a test client's force_login() (every WSGI/ASGI request carries
    # REQUEST_METHOD). Or the login was already decided in this request.
    if request is None or "REQUEST_METHOD" not in request.META:
        return
    if getattr(request, login.DECISION_ATTR, None) is not None:
        return
    login.after_password_login(request, user)


@receiver(user_login_failed, dispatch_uid="authguard.record_failed_login")
def record_failed_login(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    login.after_failed_login(request, credentials)
