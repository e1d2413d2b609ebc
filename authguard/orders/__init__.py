"""The order guard: rules (``rules``), exposure over days (``exposure``), holds and confirmations
bound to the exact order (``guard``, ``batch``) and their pages (``views``).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# Compatibility: names that lived in ``authguard.orders`` before the package split resolve lazily (PEP 562)
# so importing a submodule never imports the whole package.
_HOME = "authguard.orders.guard"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # a submodule (``from package import module``)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
