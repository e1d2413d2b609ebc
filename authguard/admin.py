"""Deprecated location, kept working: use :mod:`authguard.console.admin`.

Django's admin autodiscovery imports ``authguard.admin``; importing it registers the console.
"""

from __future__ import annotations

from authguard.compat import forward_to
from authguard.console import admin as _console_admin  # noqa: F401  (registers the console's ModelAdmins)

__getattr__ = forward_to(__name__, "authguard.console.admin")
