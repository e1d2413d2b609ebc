"""The security console's door: staff reach the Django admin only after a passkey check in this session.

A phished staff password is the shortest way to a brokerage's customers (issue 10, battery case 60): the
console releases held orders, revokes factors and unlocks accounts. Staff sign in like customers (the login
is scored by the risk engine, a risky one steps up), and then:

* :class:`StaffPasskeyMiddleware` answers every admin page (any ``AdminSite``: the URL's application
  namespace is ``admin``) of a staff session without a fresh passkey verification with a page that sends the
  staff member to the passkey step-up and back, instead of the page asked for. Place it after
  ``authguard.middleware.AuthguardMiddleware`` (system check ``authguard.W140``).
* :func:`console_access` says whether this session may use the console and, if not, why; the flows of
  :mod:`authguard.console.approvals` ask it again themselves (they never rely on the middleware alone).

What counts: the session's last strong verification (:func:`authguard.sessions.state.session_state`) was a
passkey, less than ``AUTHGUARD_CONSOLE_PASSKEY_SECONDS`` ago, with a confirmed passkey of this staff member
that is neither disabled nor registered less than ``AUTHGUARD_CONSOLE_NEW_PASSKEY_HOURS`` ago nor cooling
off. A password, a TOTP code or a recovery code never opens the console: they can be relayed by a phishing
page, a passkey cannot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib import admin
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from authguard import clock
from authguard.conf import app_settings
from authguard.factors.inventory import disabled_device_ids, factor_confirmed_at, factor_is_cooling_off
from authguard.models import PasskeyDevice
from authguard.sessions import state as sessions_state
from authguard.sessions.middleware import safe_next, wants_json

logger = logging.getLogger(__name__)

#: Admin views a staff session without a passkey check may still reach: signing out.
EXEMPT_VIEWS = frozenset({"logout"})
#: The django-otp session key naming the device of the session's last verification.
OTP_DEVICE_SESSION_KEY = "otp_device_id"

Why = Literal["ok", "not_staff", "no_passkey", "not_verified", "stale", "new_passkey"]


@dataclass(frozen=True)
class ConsoleAccess:
    """Whether a session may use the security console, and why not."""

    why: Why
    has_passkey: bool = False

    @property
    def ok(self) -> bool:
        return self.why == "ok"


def _usable_passkeys(user: AbstractBaseUser) -> list[Any]:
    """The staff member's confirmed passkeys that the failure limit has not disabled (two queries)."""

    disabled = disabled_device_ids(user)
    devices = PasskeyDevice.objects.filter(user=user, confirmed=True).order_by("pk")
    return [device for device in devices if device.persistent_id not in disabled]


def _verifying_passkey(request: HttpRequest, passkeys: list[Any]) -> Any:
    """The passkey (of ``passkeys``) that made the session's last strong verification, or None."""
    device_id = request.session.get(OTP_DEVICE_SESSION_KEY)
    return next((device for device in passkeys if device.persistent_id == device_id), None)


def _cooling_off(device: Any) -> bool:

    try:
        return bool(factor_is_cooling_off(device))
    except Exception:
        # SECURITY: a cooling-off that cannot be read counts as cooling off (fail closed).
        logger.exception("authguard console: cooling-off state unavailable")
        return True


def _registered_at(device: Any) -> Any:
    """When the passkey was confirmed (the factor lifecycle's record), else when it was created."""

    try:
        return factor_confirmed_at(device)
    except Exception:
        logger.exception("authguard console: factor age unavailable")
        return None


def console_access(request: HttpRequest) -> ConsoleAccess:
    """Whether this request's session may use the security console (see the module docstring).

    Never raises for a malformed session: anything unreadable answers ``not_verified`` (fail closed).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff or not user.is_active:
        return ConsoleAccess("not_staff")
    passkeys = _usable_passkeys(user)
    if not passkeys:
        return ConsoleAccess("no_passkey")
    state = sessions_state.session_state(request)
    if state is None or state.status != "verified" or state.strong_method != "passkey":
        return ConsoleAccess("not_verified", has_passkey=True)
    if state.strong_at is None:
        return ConsoleAccess("not_verified", has_passkey=True)
    age = (clock.now() - state.strong_at).total_seconds()
    # A time slightly ahead of this node's clock (another web node's) is a verification of just now: the
    # time is written by the server, never taken from the client.
    if age > app_settings.CONSOLE_PASSKEY_SECONDS:
        return ConsoleAccess("stale", has_passkey=True)
    device = _verifying_passkey(request, passkeys)
    if device is None:
        # SECURITY: the passkey that verified the session was removed or disabled since: check again.
        return ConsoleAccess("not_verified", has_passkey=True)
    registered = _registered_at(device)
    too_new = registered is None or registered > clock.now() - timedelta(
        hours=app_settings.CONSOLE_NEW_PASSKEY_HOURS
    )
    if too_new or _cooling_off(device):
        # SECURITY: a passkey registered just now may be the thief's, enrolled with the phished password.
        return ConsoleAccess("new_passkey", has_passkey=True)
    return ConsoleAccess("ok", has_passkey=True)


def is_console_request(request: HttpRequest) -> bool:
    """Whether ``request`` resolved to a view of a Django admin site (any ``AdminSite`` instance)."""
    match = getattr(request, "resolver_match", None)
    return match is not None and "admin" in match.app_names


def passkey_required_response(request: HttpRequest, access: ConsoleAccess) -> HttpResponse:
    """The answer to a console request without a passkey check: a page that sends staff to the passkey
    step-up and back to ``request``'s page (403, never cached), or JSON for a JSON client."""

    next_url = safe_next(request, request.get_full_path()) if request.method in ("GET", "HEAD") else None
    verify_url = reverse("authguard:step-up-passkey")
    if next_url:
        verify_url += "?next=" + quote(next_url, safe="/")
    if wants_json(request):
        response: HttpResponse = JsonResponse(
            {"status": "step_up_required", "methods": ["passkey"], "reason": access.why}, status=403
        )
    else:
        response = TemplateResponse(
            request,
            "admin/authguard/staff_passkey_required.html",
            {
                "site_header": admin.site.site_header,
                "site_title": admin.site.site_title,
                "title": admin.site.site_title,
                "access": access,
                "verify_url": verify_url,
                "enroll_url": reverse("authguard:security-passkey"),
                "logout_url": _logout_url(),
                "new_passkey_hours": app_settings.CONSOLE_NEW_PASSKEY_HOURS,
            },
            status=403,
        )
    add_never_cache_headers(response)
    return response


def _logout_url() -> str:
    try:
        return reverse("admin:logout")
    except Exception:
        return ""


class StaffPasskeyMiddleware:
    """Hold staff sessions without a fresh passkey check at a "verify with your passkey" page on every admin
    page (``authguard.W140`` when missing). Place it after ``AuthguardMiddleware``.

    Customers (not staff) and anonymous visitors pass: the admin itself sends them to its login page.
    """

    # Sync and async capable (the work is in process_view, which Django adapts to either mode), so a stack
    # with authguard's middleware runs fully async under ASGI.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return await self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if not is_console_request(request):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return None
        match = request.resolver_match
        if match is not None and match.url_name in EXEMPT_VIEWS:
            return None
        access = console_access(request)
        if access.ok:
            return None
        # SECURITY: a staff password (or a relayed one-time code) alone reaches no console page (case 60).
        logger.info("authguard console: staff %s held at the passkey check (%s)", user.pk, access.why)
        return passkey_required_response(request, access)


__all__ = [
    "ConsoleAccess",
    "StaffPasskeyMiddleware",
    "console_access",
    "is_console_request",
    "passkey_required_response",
]
