"""Deprecated location, kept working: use :mod:`authguard.orders.rules`.

Policies store rule NAMEs such as ``authguard.order_rules.Liquidation``; they keep loading.
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.orders.rules")
