"""Deprecated location, kept working: use :mod:`authguard.console.admin`.

Django's admin autodiscovery imports ``authguard.admin``; importing it registers the console.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = "authguard.console.admin"
importlib.import_module(_HOME)  # registers the console's ModelAdmins


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
