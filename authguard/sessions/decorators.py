"""Decorators for portal views: demand a fresh second factor, or exempt a view from the step-up hold.

Example::

    from authguard.sessions.decorators import step_up_required

    @login_required
    @step_up_required(max_age=300)
    def withdraw(request): ...

Both decorate ``async def`` views as well: the wrapper is then a coroutine function that runs the same
checks (their session and database reads in Django's thread for sync code) before awaiting the view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from functools import wraps
from typing import Any, TypeVar, overload

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from authguard.conf import app_settings
from authguard.factors import inventory
from authguard.factors import methods as factor_methods
from authguard.sessions import state as sessions_state
from authguard.sessions.middleware import EXEMPT_ATTR, step_up_answer, wants_json

View = TypeVar("View", bound=Callable[..., Any])

logger = logging.getLogger(__name__)


def step_up_exempt(view: View) -> View:
    """Let a session that waits for step-up reach this view (like Django's ``login_not_required``).

    Use it for pages a password-only session may see: a help page, a public price list. Never for
    anything that shows or changes account data.
    """

    if iscoroutinefunction(view):

        @wraps(view)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await view(*args, **kwargs)

        setattr(async_wrapper, EXEMPT_ATTR, True)
        return async_wrapper  # type: ignore[return-value]

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    setattr(wrapper, EXEMPT_ATTR, True)
    return wrapper  # type: ignore[return-value]


def _cooling_off_answer(request: HttpRequest) -> HttpResponse:
    """403 ``step_up_required``/``cooling_off`` (JSON) or the re-verify page with a message (HTML)."""
    message = _(
        "The security method you confirmed with was added too recently. Confirm it is you with one you had "
        "before."
    )
    if wants_json(request):
        response = JsonResponse(
            {
                "status": "step_up_required",
                "code": "cooling_off",
                "message": message,
                "methods": factor_methods.step_up_methods(request.user),
            },
            status=403,
        )
        add_never_cache_headers(response)
        return response
    from django.contrib import messages

    messages.error(request, message)
    return step_up_answer(request, http_status=403, reverify=True)


def _reported(request: HttpRequest, would_have: str) -> bool:
    """With ``"step_up"`` in ``AUTHGUARD_REPORT_ONLY``: log what this view would have demanded and let the
    request through (True). Otherwise False: the caller enforces."""
    if not app_settings.report_only("step_up"):
        return False
    logger.warning(
        "authguard REPORT-ONLY step_up user=%s path=%s would have asked for %s",
        getattr(getattr(request, "user", None), "pk", None),
        request.path,
        would_have,
    )
    return True


@overload
def step_up_required(view: View, /) -> View: ...
@overload
def step_up_required(
    *, max_age: int | None = None, methods: Collection[str] | None = None
) -> Callable[[View], View]: ...
def step_up_required(
    view: Any = None, /, *, max_age: int | None = None, methods: Collection[str] | None = None
) -> Any:
    """Demand a strong verification (passkey, TOTP or recovery code; or one of ``methods``) in this session
    within ``max_age`` seconds (default ``AUTHGUARD_STEP_UP_FRESH_SECONDS``).

    Anonymous: the login page (HTML) or 401 ``login_required`` (JSON). Pending: the step-up chooser or 401
    ``step_up_required``. Verified but not freshly: the re-verify page or 403 ``step_up_required``. Either
    way with ``next`` pointing back here, and with the methods the user can use in JSON.

    A verification with a factor that is still cooling off (added during the account's cooling-off,
    :mod:`authguard.factors.lifecycle`) does not count: 403 ``step_up_required`` with ``code``
    ``cooling_off`` (JSON), or the re-verify page with a message (HTML).

    With ``"step_up"`` in ``AUTHGUARD_REPORT_ONLY`` the last two are logged (``REPORT-ONLY``) and the view
    runs; anonymous and pending sessions are refused all the same.
    """

    def refusal(request: HttpRequest) -> HttpResponse | None:
        """The answer that stops this request before the view, or None to let it through."""
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            if wants_json(request):
                response = JsonResponse(
                    {"status": "login_required", "message": _("Sign in first.")}, status=401
                )
                add_never_cache_headers(response)
                return response
            return redirect_to_login(request.get_full_path())
        if sessions_state.is_pending(request):
            # Held by the login decision (enforced, or this session would not be pending): never waved on.
            return step_up_answer(request, http_status=401)
        # SECURITY: a session verified long ago (or by a weaker method) must prove a factor again.
        if not sessions_state.has_fresh_verification(request, max_age=max_age, methods=methods):
            if _reported(request, "reverify"):
                return None
            return step_up_answer(request, http_status=403, reverify=True)
        if inventory.verified_by_cooling_off_factor(request):
            if _reported(request, "cooling_off"):
                return None
            # SECURITY: a factor added during the cooling-off (maybe the thief's) proves nothing yet.
            return _cooling_off_answer(request)
        return None

    def decorator(func: View) -> View:
        if iscoroutinefunction(func):
            # An async view: the checks read the session, the user and the factors (sync ORM calls), so
            # they run in Django's sync thread; the view itself is awaited here, never returned unawaited.
            @wraps(func)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                refused = await sync_to_async(refusal)(request)
                if refused is not None:
                    return refused
                return await func(request, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refused = refusal(request)
            if refused is not None:
                return refused
            return func(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if view is not None:
        return decorator(view)
    return decorator
