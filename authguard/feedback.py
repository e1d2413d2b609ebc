"""Deprecated location, kept working: use :mod:`authguard.risk.feedback`.

``AUTHGUARD_SIGNALS`` may name ``authguard.feedback.ConfirmedFraudNetworks``.
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.risk.feedback")
