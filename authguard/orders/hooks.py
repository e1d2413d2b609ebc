"""The portal's hooks of the order guard, named by dotted paths in settings.

``AUTHGUARD_ORDER_PORTFOLIO`` (``user -> PortfolioSnapshot``), ``AUTHGUARD_ORDER_INSTRUMENT``
(``symbol -> InstrumentInfo | None``) and ``AUTHGUARD_ORDER_EXECUTOR`` (an :class:`Executor`: ``execute(held)
-> str`` executes a held order's *stored* canonical order, ``release(held, *, status)`` closes the portal's
copy of an order that will never execute).
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy

from authguard.conf import app_settings
from authguard.exceptions import AuthguardError
from authguard.models import HeldOrder


class Executor(Protocol):
    """What ``AUTHGUARD_ORDER_EXECUTOR`` names."""

    def execute(self, held: HeldOrder) -> str:
        """Execute the held order's stored canonical order, as a limit order at the price it was checked at
        (:func:`~authguard.orders.approval.stored_approval`, filling where its ``fills_at(price)``); return
        the portal's reference. Raise :class:`OrderNotExecutable` to refuse, e.g. when the price has left
        the band (nothing the executor wrote is kept)."""

    def release(self, held: HeldOrder, *, status: str) -> None:
        """The held order was cancelled, expired or failed: close the portal's copy of it."""


class OrderNotExecutable(AuthguardError):
    """Raised by the portal's executor: the stored order can no longer be executed (funds, holdings...)."""

    default_code = "not_executable"
    default_message = gettext_lazy("This order can no longer be executed.")


class GuardMisconfigured(ImproperlyConfigured):
    """A portal hook setting is missing or does not import."""


@functools.lru_cache(maxsize=8)
def _import(path: str) -> Any:
    try:
        return import_string(path)
    except ImportError as exc:
        raise GuardMisconfigured(f"authguard order guard: cannot import {path!r} ({exc})") from exc


def _hook(name: str) -> Any:
    path = getattr(app_settings, name)
    if not path:
        raise GuardMisconfigured(f"AUTHGUARD_{name} is not set: the order guard needs the portal's hook.")
    return _import(path)


def _executor() -> Executor:
    target = _hook("ORDER_EXECUTOR")
    return target() if isinstance(target, type) else target


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("AUTHGUARD_ORDER_"):
        _import.cache_clear()


setting_changed.connect(_settings_changed)


__all__ = ["Executor", "GuardMisconfigured", "OrderNotExecutable"]
