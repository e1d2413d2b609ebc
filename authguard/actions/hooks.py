"""The portal's executor of held actions, named by ``AUTHGUARD_ACTION_EXECUTOR``: an object with
``execute(action) -> str`` that carries out the *stored* canonical action, and ``release(action, *,
status)`` that closes the portal's copy of an action that will never be carried out.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from authguard.actions.errors import ActionsMisconfigured
from authguard.conf import app_settings
from authguard.models import HeldAction


class Executor(Protocol):
    """What ``AUTHGUARD_ACTION_EXECUTOR`` names."""

    def execute(self, action: HeldAction) -> str:
        """Carry out the held action's stored canonical action (read it with :func:`stored_action`); return
        the portal's reference. Raise :class:`ActionNotExecutable` to refuse (its writes are undone)."""

    def release(self, action: HeldAction, *, status: str) -> None:
        """The held action was cancelled, expired or failed: close the portal's copy of it."""


# -- settings and hooks -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _import(path: str) -> Any:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ActionsMisconfigured(f"authguard actions: cannot import {path!r} ({exc})") from exc


def _executor() -> Executor:
    path = app_settings.ACTION_EXECUTOR
    if not path:
        raise ActionsMisconfigured(
            "AUTHGUARD_ACTION_EXECUTOR is not set: held actions cannot be carried out."
        )
    target = _import(path)
    return target() if isinstance(target, type) else target


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("AUTHGUARD_ACTION"):
        _import.cache_clear()


setting_changed.connect(_settings_changed)


__all__ = ["Executor"]
