"""Password logins: one scoring flow for every entry point, throttling and account locks.

``flow`` (score and record a login), ``backend`` (:class:`ThrottleBackend`), ``lockout`` (locks that fail
closed), ``receivers`` (Django's login signals).
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.login.flow", "authguard.login.backend")
