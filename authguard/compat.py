"""Old dotted paths that keep working: a module-level ``__getattr__`` (PEP 562) forwarding to the new home.

Settings, stored policies and portals name paths that predate the feature packages (for example
``authguard.risk_signals.DeviceCookie``, ``authguard.login.ThrottleBackend``,
``authguard.orders.submit_order``).
A forwarding module imports its home only when such a name is asked for, so importing a submodule never
imports the whole package, and nothing inside authguard goes through one (tests/test_architecture.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

_MISSING = object()


def forward_to(module: str, *homes: str) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``module`` (its ``__name__``): a name it lacks is looked up in ``homes``, in
    order (the modules the old one was split into).

    For a package, a name that is one of its submodules is that submodule (``from package import module``
    asks the package's ``__getattr__`` before importing it).
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        spec = getattr(sys.modules.get(module), "__spec__", None)
        if spec is not None and spec.submodule_search_locations is not None:  # a package
            submodule = f"{module}.{name}"
            if importlib.util.find_spec(submodule) is not None:
                return importlib.import_module(submodule)
        for home in homes:
            found = getattr(importlib.import_module(home), name, _MISSING)
            if found is not _MISSING:
                return found
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
