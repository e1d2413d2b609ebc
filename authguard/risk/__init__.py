"""Login risk: the request's context, the evidence, the signals, the policy and the score.

``context`` (request → :class:`LoginContext`), ``history``/``profile``/``velocity``/``networks`` (evidence),
``signals`` (the pluggable NAME/OPTIONS signals), ``engine`` (findings → score), ``policy`` (thresholds →
decision), ``replay``/``backtest``/``import_history`` (the same scoring over stored logins).
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.risk.engine")
