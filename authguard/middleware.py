"""Deprecated location, kept working: use :mod:`authguard.sessions.middleware`.

``MIDDLEWARE`` settings name ``authguard.middleware.AuthguardMiddleware``.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = "authguard.sessions.middleware"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
