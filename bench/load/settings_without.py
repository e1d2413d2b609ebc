"""The demo's settings without authguard's middleware: the "B" server of ``python -m bench.load``.

Identical to :mod:`demo_site.settings` in every setting but ``MIDDLEWARE``, from which exactly
:data:`removed_middleware` is removed (``tests/test_bench_load.py`` checks both halves of that sentence).
Never deploy this: without the middleware, a password-only or replayed session is not sent to step-up.
"""

from demo_site.settings import *  # noqa: F403
from demo_site.settings import MIDDLEWARE as _demo_middleware

#: The one entry this module removes (lower case: Django and authguard read only upper-case settings).
removed_middleware = "authguard.middleware.AuthguardMiddleware"

if removed_middleware not in _demo_middleware:  # the comparison would measure nothing
    raise RuntimeError(f"{removed_middleware} is not in demo_site.settings.MIDDLEWARE")

MIDDLEWARE = [entry for entry in _demo_middleware if entry != removed_middleware]
