"""authguard's middleware: keeps the device cookie and turns refused logins into the right answer."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from .conf import app_settings
from .context import device_id_from_cookie, new_device_cookie
from .login import DECISION_ATTR
from .policy import Action


class AuthguardMiddleware:
    """Place after ``AuthenticationMiddleware`` (system check ``authguard.E006``).

    * Issues the long-lived device cookie to browsers that have none (or a forged one), so the next login
      from this browser is recognised.
    * When a login in this request was refused, replaces the login view's success redirect with authguard's
      generic "refused" page. JSON views answer for themselves (see :func:`authguard.login.password_login`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision = getattr(request, DECISION_ATTR, None)
        if (
            decision is not None
            and decision.assessment.action != Action.ALLOW
            and isinstance(response, HttpResponseRedirect)
        ):
            response = HttpResponseRedirect(reverse("authguard:denied"))
        self._keep_device_cookie(request, response)
        return response

    @staticmethod
    def _keep_device_cookie(request: HttpRequest, response: HttpResponse) -> None:
        name = app_settings.DEVICE_COOKIE_NAME
        if device_id_from_cookie(request.COOKIES.get(name)) is not None:
            return
        # SECURITY: HttpOnly keeps scripts (and XSS) away from it; the server stores only its keyed hash.
        response.set_cookie(
            name,
            new_device_cookie(),
            max_age=app_settings.DEVICE_COOKIE_AGE,
            httponly=True,
            secure=request.is_secure(),
            samesite="Lax",
        )
