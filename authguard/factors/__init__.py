"""Second factors: TOTP and recovery codes (``base``), passkeys (``passkeys``, py_webauthn) and
the one lifecycle every factor goes through (``lifecycle``).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# Compatibility: names that lived in ``authguard.factors`` before the package split resolve lazily (PEP 562)
# so importing a submodule never imports the whole package.
_HOME = "authguard.factors.base"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # a submodule (``from package import module``)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
