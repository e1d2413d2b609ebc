"""Deprecated location, kept working: use :mod:`authguard.orders.rules`.

Policies store rule NAMEs such as ``authguard.order_rules.Liquidation``; they keep loading.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = "authguard.orders.rules"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
