"""Deprecated location, kept working: use :mod:`authguard.sessions.decorators`.

Portals import ``step_up_required`` and ``step_up_exempt`` from here.
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.sessions.decorators")
