"""Sensitive actions beyond orders (withdrawals, bank accounts, transfers out, contact changes),
held until a passkey bound to the exact action confirms them (``flow``).
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.actions.flow")
