"""Deprecated location, kept working: use :mod:`authguard.risk.signals`.

Policies store signal NAMEs such as ``authguard.risk_signals.DeviceCookie``; they keep loading.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = "authguard.risk.signals"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
