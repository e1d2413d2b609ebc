"""Sessions: the account lock's windows, the throttle backend's place, server-side sessions, and Device
Bound Session Credentials."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import NoReverseMatch, reverse

from authguard.checks.base import MIDDLEWARE_PATH, conf_defaults
from authguard.checks.codes import Codes
from authguard.conf import app_settings

THROTTLE_BACKEND_PATH = "authguard.login.ThrottleBackend"
#: django-axes' backends: they may (and should) come before authguard's (docs/integration.md, django-axes).
AXES_BACKENDS = frozenset({"axes.backends.AxesStandaloneBackend", "axes.backends.AxesBackend"})
#: Django's per-site cache: the middlewares that store answers (W113).
UPDATE_CACHE_PATHS = frozenset(
    {"django.middleware.cache.UpdateCacheMiddleware", "django.middleware.cache.CacheMiddleware"}
)


@register(Tags.security)
def check_locks(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The lock's failure window and the self-service unlock's waiting period are whole hours; the throttle
    backend comes first (after django-axes' only), so a locked account's password is never checked (same
    answer for right and wrong); sessions are server-side, and a per-site cache sees authguard's answers as
    private (W113)."""
    messages: list[CheckMessage] = []
    for name, allow_none in (("LOCKOUT_FAILURE_WINDOW_HOURS", False), ("UNLOCK_WAIT_HOURS", True)):
        value = getattr(settings, "AUTHGUARD_" + name, getattr(conf_defaults, name))
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24 * 30:
            messages.append(
                Error(
                    f"AUTHGUARD_{name} is invalid: {value!r}.",
                    hint="Use a whole number of hours from 1 to 720"
                    + (" (or None to turn the self-service unlock with codes off)." if allow_none else "."),
                    id=Codes.LOCK_SETTINGS_INVALID,
                )
            )
    backends = list(getattr(settings, "AUTHENTICATION_BACKENDS", []))
    position = backends.index(THROTTLE_BACKEND_PATH) if THROTTLE_BACKEND_PATH in backends else None
    if position is None or any(backend not in AXES_BACKENDS for backend in backends[:position]):
        messages.append(
            Warning(
                f"{THROTTLE_BACKEND_PATH} is not the first of AUTHENTICATION_BACKENDS.",
                hint="Put it first: it refuses throttled attempts and locked accounts before any password is "
                "checked, so a locked account answers the same for a right and a wrong password.",
                id=Codes.THROTTLE_BACKEND_NOT_FIRST,
            )
        )
    if position is not None and AXES_BACKENDS.intersection(backends[position + 1 :]):
        messages.append(
            Warning(
                f"django-axes' backend comes after {THROTTLE_BACKEND_PATH} in AUTHENTICATION_BACKENDS.",
                hint="Put axes first: authguard then tells an attempt axes refused (no password checked) "
                "from a wrong password; in this order each refusal counts towards authguard's account lock.",
                id=Codes.AXES_AFTER_THROTTLE_BACKEND,
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    below = middleware[middleware.index(MIDDLEWARE_PATH) :] if MIDDLEWARE_PATH in middleware else []
    for cache_middleware in UPDATE_CACHE_PATHS.intersection(below):
        messages.append(
            Warning(
                f"{cache_middleware} comes after {MIDDLEWARE_PATH} in MIDDLEWARE.",
                hint="Put it first, as Django's docs do: authguard marks every answer to a signed-in session "
                "private, which only a cache middleware listed before it sees; below it, a customer's pages "
                "are cached and served to a copy of her cookies that authguard holds.",
                id=Codes.PAGE_CACHE_BELOW_AUTHGUARD,
            )
        )
    if _signed_cookie_sessions(getattr(settings, "SESSION_ENGINE", "")):
        messages.append(
            Warning(
                "Sessions stored in signed cookies cannot be ended from the server.",
                hint="A lock, a password reset or a re-score that ends a session would leave the cookie "
                "valid: use a server-side SESSION_ENGINE (db, cache or cached_db).",
                id=Codes.SESSIONS_CANNOT_BE_ENDED,
            )
        )
    return messages


#: The keys of ``AUTHGUARD_DBSC`` and the accepted range of each number.
DBSC_NUMBER_RANGES = {
    "BOUND_COOKIE_AGE": (60, 3600),
    "CHALLENGE_SECONDS": (10, 600),
    "SESSION_DAYS": (1, 400),
}


DBSC_KEYS = frozenset({"ENABLED", "BOUND_COOKIE_NAME", *DBSC_NUMBER_RANGES})


def dbsc_problem(raw: Any) -> str | None:
    """What is wrong with an ``AUTHGUARD_DBSC`` value, or None (E160)."""
    if not isinstance(raw, dict):
        return "it must be a dict"
    unknown = sorted(str(key) for key in raw if key not in DBSC_KEYS)
    if unknown:
        return f"unknown keys {unknown}"
    if "ENABLED" in raw and not isinstance(raw["ENABLED"], bool):
        return "ENABLED must be True or False"
    for key, (low, high) in DBSC_NUMBER_RANGES.items():
        if key in raw and (
            isinstance(raw[key], bool) or not isinstance(raw[key], int) or not low <= raw[key] <= high
        ):
            return f"{key} must be a whole number from {low} to {high}"
    name = raw.get("BOUND_COOKIE_NAME", conf_defaults.DBSC["BOUND_COOKIE_NAME"])
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        return "BOUND_COOKIE_NAME must be a non-empty cookie name of letters, digits, _ and -"
    taken = {
        app_settings.DEVICE_COOKIE_NAME,
        getattr(settings, "SESSION_COOKIE_NAME", "sessionid"),
        getattr(settings, "CSRF_COOKIE_NAME", "csrftoken"),
    }
    if name in taken:
        return "BOUND_COOKIE_NAME must differ from the device, session and CSRF cookie names"
    return None


#: DRF authentication classes that sign a request in without authguard judging it: a password checked on
#: every request, unscored, or a token never re-checked where it is used.
UNJUDGED_DRF_AUTHENTICATION = frozenset(
    {"rest_framework.authentication.BasicAuthentication", "rest_framework.authentication.TokenAuthentication"}
)
#: DRF's own default when ``DEFAULT_AUTHENTICATION_CLASSES`` is not set.
DRF_DEFAULT_AUTHENTICATION = (
    "rest_framework.authentication.SessionAuthentication",
    "rest_framework.authentication.BasicAuthentication",
)


@register(Tags.security)
def check_drf_authentication(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """DRF's ``DEFAULT_AUTHENTICATION_CLASSES`` name no scheme authguard does not judge (its default names
    ``BasicAuthentication``). :class:`authguard.drf.NotPending` refuses such requests whatever the view."""
    if "rest_framework" not in settings.INSTALLED_APPS:
        return []
    configured = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_AUTHENTICATION_CLASSES")
    classes = DRF_DEFAULT_AUTHENTICATION if configured is None else configured
    unjudged = [name for name in classes if isinstance(name, str) and name in UNJUDGED_DRF_AUTHENTICATION]
    if not unjudged:
        return []
    return [
        Warning(
            f"REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES names {', '.join(unjudged)}"
            + (" (DRF's default)" if configured is None else "")
            + ".",
            hint="Use rest_framework.authentication.SessionAuthentication and "
            "authguard.drf.TokenAuthentication only: BasicAuthentication checks the password on every "
            "request without any scoring, and DRF's own TokenAuthentication never re-checks where a token is "
            "used (docs/drf.md). authguard.drf.NotPending refuses requests signed in by either.",
            id=Codes.DRF_UNJUDGED_AUTHENTICATION,
        )
    ]


@register(Tags.security)
def check_dbsc(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """E160: ``AUTHGUARD_DBSC`` is malformed. E161: DBSC is on but its endpoints are not mounted. W160: DBSC
    is on but session cookies may travel over plain HTTP (browsers run DBSC on HTTPS only)."""
    raw = getattr(settings, "AUTHGUARD_DBSC", {})
    problem = dbsc_problem(raw)
    if problem:
        return [
            Error(
                f"AUTHGUARD_DBSC is invalid: {problem}.",
                hint='Use {"ENABLED": bool, "BOUND_COOKIE_NAME": str, "BOUND_COOKIE_AGE": 60-3600, '
                '"CHALLENGE_SECONDS": 10-600, "SESSION_DAYS": 1-400}.',
                id=Codes.DBSC_SETTINGS_INVALID,
            )
        ]
    if not raw.get("ENABLED"):
        return []
    messages: list[CheckMessage] = []
    try:
        reverse("authguard:dbsc_register")
        reverse("authguard:dbsc_refresh")
    except NoReverseMatch:
        messages.append(
            Error(
                "AUTHGUARD_DBSC is on but the DBSC endpoints are not mounted.",
                hint="Include authguard.sessions.dbsc_views.urlpatterns in the authguard URL namespace.",
                id=Codes.DBSC_URLS_MISSING,
            )
        )
    if not getattr(settings, "SESSION_COOKIE_SECURE", False):
        messages.append(
            Warning(
                "AUTHGUARD_DBSC is on but SESSION_COOKIE_SECURE is False.",
                hint="Browsers run DBSC on HTTPS (and localhost) only; serve the portal over HTTPS.",
                id=Codes.DBSC_WITHOUT_HTTPS,
            )
        )
    return messages


def _signed_cookie_sessions(engine: str) -> bool:
    """Whether ``SESSION_ENGINE`` keeps sessions in signed cookies (Django's engine, or one built on it)."""
    from django.contrib.sessions.backends import signed_cookies

    try:
        store = import_module(engine).SessionStore
    except Exception:
        return engine == "django.contrib.sessions.backends.signed_cookies"
    return isinstance(store, type) and issubclass(store, signed_cookies.SessionStore)
