"""The order guard: rules (``rules``), exposure over days (``exposure``), holds and confirmations
bound to the exact order (``guard``, ``batch``) and their pages (``views``).
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.orders.guard")
