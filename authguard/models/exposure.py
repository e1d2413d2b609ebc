"""exposure models (see the package docstring of authguard.models)."""

from __future__ import annotations

__all__: list[str] = []
