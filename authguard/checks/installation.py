"""Installation: authguard's and django-otp's middleware and apps, and a cache shared between processes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from authguard.checks.base import AUTH_MIDDLEWARE_PATH, MIDDLEWARE_PATH
from authguard.checks.codes import Codes
from authguard.validators import missing_otp_apps

OTP_MIDDLEWARE_PATH = "django_otp.middleware.OTPMiddleware"


#: Cache backends that keep their data in one process (or none at all).
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.security)
def check_installation(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if MIDDLEWARE_PATH not in middleware or (
        AUTH_MIDDLEWARE_PATH in middleware
        and middleware.index(MIDDLEWARE_PATH) < middleware.index(AUTH_MIDDLEWARE_PATH)
    ):
        errors.append(
            Error(
                f"{MIDDLEWARE_PATH} must be in MIDDLEWARE, after {AUTH_MIDDLEWARE_PATH}.",
                hint="Without it, risky sessions are not held at step-up.",
                id=Codes.MIDDLEWARE_MISSING,
            )
        )
    missing = missing_otp_apps()
    if missing:
        errors.append(
            Error(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in INSTALLED_APPS.",
                hint='Add "django_otp" and "django_otp.plugins.otp_totp" before "authguard".',
                id=Codes.OTP_NOT_INSTALLED,
            )
        )
    if MIDDLEWARE_PATH in middleware and (
        OTP_MIDDLEWARE_PATH not in middleware
        or AUTH_MIDDLEWARE_PATH not in middleware
        or middleware.index(OTP_MIDDLEWARE_PATH) < middleware.index(AUTH_MIDDLEWARE_PATH)
    ):
        # SECURITY: step-up verifies the session through django-otp (``django_otp.login``); without its
        # middleware (or before the user is known) ``request.user.is_verified()`` does not exist, so the
        # portal's ``otp_required`` views cannot see a step-up, and the session keeps naming a removed device.
        errors.append(
            Error(
                f"{OTP_MIDDLEWARE_PATH} must be in MIDDLEWARE, after {AUTH_MIDDLEWARE_PATH}.",
                hint=f"Place it after AuthenticationMiddleware and before {MIDDLEWARE_PATH}: it tells the "
                "portal which factor verified the session (request.user.is_verified()) and drops the "
                "verification of a device that was removed.",
                id=Codes.OTP_MIDDLEWARE_MISSING,
            )
        )
    return errors


@register(Tags.security)
def check_shared_cache(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """W004: throttles, velocity counters and spent challenges live in the default cache. A per-process
    cache counts per worker: with 4 workers, 73 of 100 guesses passed a limit of 20 (issue 14)."""
    if settings.DEBUG:
        return []  # runserver: one process
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    try:
        klass = import_string(backend)
    except ImportError:
        return []  # Django itself refuses to start with a cache it cannot import
    per_process = tuple(import_string(path) for path in PER_PROCESS_CACHES)
    if not (isinstance(klass, type) and issubclass(klass, per_process)):
        return []
    return [
        Warning(
            f"The default cache {backend} is not shared between processes: each worker counts login "
            "attempts, throttles and velocity on its own.",
            hint="Use a shared cache as the default: Redis (django.core.cache.backends.redis.RedisCache), "
            "Memcached, or the database cache.",
            id=Codes.CACHE_PER_PROCESS,
        )
    ]
