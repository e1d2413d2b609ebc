"""Login risk: the request's context, the evidence, the signals, the policy and the score.

``context`` (request → :class:`LoginContext`), ``history``/``profile``/``velocity``/``networks`` (evidence),
``signals`` (the pluggable NAME/OPTIONS signals), ``engine`` (findings → score), ``policy`` (thresholds →
decision), ``replay``/``backtest``/``import_history`` (the same scoring over stored logins).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# Compatibility: names that lived in ``authguard.risk`` before the package split resolve lazily (PEP 562)
# so importing a submodule never imports the whole package.
_HOME = "authguard.risk.engine"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # a submodule (``from package import module``)
    try:
        return getattr(importlib.import_module(_HOME), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
