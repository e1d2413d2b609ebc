"""Settings of a portal that runs django-axes next to authguard (tests/test_axes.py, in its own process).

The test settings plus axes as its documentation sets it up: ``AxesStandaloneBackend`` first in
``AUTHENTICATION_BACKENDS`` (before authguard's ``ThrottleBackend``) and ``AxesMiddleware`` last. Axes is
not added to the main test settings: its receivers would see every login of the whole suite.
``AUTHGUARD_TEST_AXES_APP_FIRST=1`` lists axes before authguard in ``INSTALLED_APPS``, so its
``user_login_failed`` receiver runs before authguard's (the default order is authguard's first).
"""

import os

from tests.settings import *  # noqa: F403

_axes_first = os.environ.get("AUTHGUARD_TEST_AXES_APP_FIRST") == "1"
_at = INSTALLED_APPS.index("authguard") + (0 if _axes_first else 1)  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS[:_at], "axes", *INSTALLED_APPS[_at:]]  # noqa: F405

AUTHENTICATION_BACKENDS = [
    # axes first (its documentation says so): a client it locked out is refused before anything else runs.
    "axes.backends.AxesStandaloneBackend",
    "authguard.login.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
MIDDLEWARE = [*MIDDLEWARE, "axes.middleware.AxesMiddleware"]  # noqa: F405

AXES_FAILURE_LIMIT = 3
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_COOLOFF_TIME = 1  # hours
# One client address for both: authguard's, behind the trusted proxies (docs/integration.md).
AXES_CLIENT_IP_CALLABLE = "authguard.risk.addresses.client_ip"
AUTHGUARD_LOCKOUT_FAILURES = 5

# Its own test database on a shared PostgreSQL server (the outer test process holds the suite's).
if DATABASES["default"].get("TEST", {}).get("NAME"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["TEST"]["NAME"] + "_axes"}  # noqa: F405
