"""What several check modules share: the middleware paths, conf's defaults, and small value tests."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from authguard.conf import AppSettings

__all__ = [
    "AUTH_MIDDLEWARE_PATH",
    "MIDDLEWARE_PATH",
    "conf_defaults",
    "hook_import_error",
]

MIDDLEWARE_PATH = "authguard.middleware.AuthguardMiddleware"
AUTH_MIDDLEWARE_PATH = "django.contrib.auth.middleware.AuthenticationMiddleware"


class _ConfDefaults(AppSettings):
    """:class:`authguard.conf.AppSettings` as if no ``AUTHGUARD_*`` setting were set and no preset on.

    The checks read a setting's default from here, so a default changed in conf.py is checked with its new
    value (the checks used to repeat each default, and went on validating the old one).
    """

    def _setting(self, name: str, default: Any) -> Any:
        return default

    @property
    def PRESET(self) -> str | None:
        return None


#: conf's defaults, e.g. ``conf_defaults.CONFIRMATION_SECONDS``.
conf_defaults = _ConfDefaults()


def hook_import_error(path: str) -> ImportError | None:
    """Why the dotted path of a callable hook is unusable (an ImportError), or None when it is fine."""
    try:
        if not callable(import_string(path)):
            raise ImportError("not callable")
    except ImportError as exc:
        return exc
    return None
