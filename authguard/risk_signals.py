"""Deprecated location, kept working: use :mod:`authguard.risk.signals`.

Policies store signal NAMEs such as ``authguard.risk_signals.DeviceCookie``; they keep loading.
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.risk.signals")
