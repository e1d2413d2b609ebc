"""The security console in the Django admin: pages, admin registrations (``admin``), reports,
the staff passkey guard, four-eyes approvals, containment and the policy editor.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# Compatibility: names that lived in ``authguard.console`` before the package split resolve lazily (PEP 562)
# so importing a submodule never imports the whole package.
_HOME = "authguard.console.pages"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # a submodule (``from package import module``)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
