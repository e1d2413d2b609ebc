"""Load ``[{"NAME": "dotted.path", "OPTIONS": {...}}]`` plug-in lists, the shape of Django's
``AUTH_PASSWORD_VALIDATORS``.

Risk signals (``AUTHGUARD_RISK_SIGNALS``, stored policies' shadow signals) and order rules
(``AUTHGUARD_ORDER_RULES``) are such lists. This module is the one place that imports, type-checks and
builds an entry, and the one place that says what is wrong with a list (the system checks ``authguard.E002``
and ``E020``, the replay and the policy editor all ask :func:`plugin_list_problem`), so an entry the checks
accept is an entry the loader builds.

Layer L0: it imports only Django and the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

__all__ = [
    "ENTRY_KEYS",
    "PluginEntryError",
    "PluginError",
    "PluginImportError",
    "PluginOptionsError",
    "PluginTypeError",
    "build_plugin",
    "build_plugins",
    "plugin_class",
    "plugin_list_problem",
]

T = TypeVar("T")

#: The keys an entry may have; ``OPTIONS`` is optional (default ``{}``).
ENTRY_KEYS = frozenset({"NAME", "OPTIONS"})


class PluginError(ImproperlyConfigured):
    """An entry of a plug-in list cannot be built. ``str(error)`` is a sentence fragment naming the entry
    (``"entry 2: cannot import 'x.Y' (...)"``), the form the system checks print after ``is invalid:``."""

    def __init__(self, message: str, *, index: int | None = None, name: Any = None, reason: str = "") -> None:
        super().__init__(message)
        #: The position of the entry in its list (None: a single entry).
        self.index = index
        #: The entry's ``NAME`` as given (None when it has none).
        self.name = name
        #: The underlying error's text (an ImportError's, or the constructor's), "" when there is none.
        self.reason = reason


class PluginEntryError(PluginError, TypeError):
    """The entry is not a ``{"NAME": str, "OPTIONS": dict}`` mapping."""


class PluginImportError(PluginError, ImportError):
    """The entry's ``NAME`` does not import."""


class PluginTypeError(PluginError, TypeError):
    """The entry's ``NAME`` imports something that is not a subclass of the expected base class."""


class PluginOptionsError(PluginError, ValueError):
    """The class refused the entry's ``OPTIONS`` (its constructor raised ``TypeError`` or ``ValueError``)."""


def _entry(index: int | None) -> str:
    return "entry" if index is None else f"entry {index}"


def plugin_class(name: str, *, base: type[T], index: int | None = None) -> type[T]:
    """Import the class ``name`` names and check that it subclasses ``base``.

    Raises :class:`PluginImportError` when it does not import, :class:`PluginTypeError` when it is not a
    subclass of ``base``.
    """
    where = _entry(index)
    try:
        klass = import_string(name)
    except ImportError as exc:
        raise PluginImportError(
            f"{where}: cannot import {name!r} ({exc})", index=index, name=name, reason=str(exc)
        ) from exc
    if not (isinstance(klass, type) and issubclass(klass, base)):
        raise PluginTypeError(f"{where}: {name} is not a subclass of {base.__name__}", index=index, name=name)
    return klass


def build_plugin(entry: Mapping[str, Any], *, base: type[T], index: int | None = None) -> T:
    """Build one ``{"NAME": ..., "OPTIONS": {...}}`` entry: an instance of ``base`` given its options.

    Raises a :class:`PluginError` subclass saying what is wrong: :class:`PluginEntryError` (shape),
    :class:`PluginImportError`, :class:`PluginTypeError` or :class:`PluginOptionsError`.
    """
    where = _entry(index)
    if not isinstance(entry, dict) or "NAME" not in entry:
        raise PluginEntryError(f"{where} must be a dict with a 'NAME'", index=index)
    name = entry["NAME"]
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise PluginEntryError(f"{where} has unknown keys {sorted(unknown)}", index=index, name=name)
    options = entry.get("OPTIONS", {})
    if not isinstance(options, dict):
        raise PluginEntryError(f"{where}: 'OPTIONS' must be a dict", index=index, name=name)
    if not isinstance(name, str):
        raise PluginEntryError(f"{where}: 'NAME' must be a dotted path", index=index, name=name)
    klass = plugin_class(name, base=base, index=index)
    try:
        return klass(**options)
    except (TypeError, ValueError) as exc:
        raise PluginOptionsError(
            f"{where}: {name} rejects its OPTIONS ({exc})", index=index, name=name, reason=str(exc)
        ) from exc


def build_plugins(config: Iterable[Mapping[str, Any]], *, base: type[T]) -> tuple[T, ...]:
    """Build every entry of a plug-in list, in order (see :func:`build_plugin` for the errors raised)."""
    return tuple(build_plugin(entry, base=base, index=index) for index, entry in enumerate(config))


def plugin_list_problem(raw: Any, *, base: type) -> str | None:
    """Say what is wrong with a ``[{"NAME": ..., "OPTIONS": {...}}]`` plug-in list, or None when valid.

    Each ``NAME`` must import a subclass of ``base`` that accepts its ``OPTIONS`` (each entry is built
    once, so a typo in an option is caught here rather than at the first login or order).
    """
    if not isinstance(raw, list | tuple):
        return "it must be a list"
    try:
        build_plugins(raw, base=base)
    except PluginError as exc:
        return str(exc)
    return None
