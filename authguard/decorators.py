"""Deprecated location, kept working: use :mod:`authguard.sessions.decorators`.

Portals import ``step_up_required`` and ``step_up_exempt`` from here.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = "authguard.sessions.decorators"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
