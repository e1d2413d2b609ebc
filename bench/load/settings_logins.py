"""The demo's settings for ``python -m bench.load logins``: what gunicorn serves there.

The same as :mod:`demo_site.settings` (``DATABASE_URL``, ``REDIS_URL`` from the environment as the demo
reads them) but for two things, both bench-only:

* ``PASSWORD_HASHERS``: MD5 first, so a login's cost is authguard's and Django's, not PBKDF2's (about
  300 ms of CPU per login at Django 5.2's iteration count, which would hide everything else). Never deploy it.
* :class:`bench.load.querycount.QueryCountMiddleware` first in ``MIDDLEWARE``: every answer carries the
  number of SQL statements its request ran.
"""

import os as _os

from demo_site.settings import *  # noqa: F403
from demo_site.settings import MIDDLEWARE as _demo_middleware

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MIDDLEWARE = ["bench.load.querycount.QueryCountMiddleware", *_demo_middleware]

# ``--fold-seconds 0`` (a control run): fold population counts inside every login's transaction, as before
# issue 15, to show what the lock sampler sees when every login updates the same rows.
if _os.environ.get("BENCH_POPULATION_FOLD_SECONDS"):
    AUTHGUARD_POPULATION_FOLD_SECONDS = int(_os.environ["BENCH_POPULATION_FOLD_SECONDS"])
