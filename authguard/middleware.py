"""Deprecated location, kept working: use :mod:`authguard.sessions.middleware`.

``MIDDLEWARE`` settings name ``authguard.middleware.AuthguardMiddleware``.
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.sessions.middleware")
