"""Test settings: the demo portal's settings with fast, isolated overrides.

``AUTHGUARD_TEST_DB=postgres`` with ``AUTHGUARD_TEST_DATABASE_URL`` runs the suite on PostgreSQL;
``AUTHGUARD_TEST_REDIS_URL`` puts the cache on Redis (CONTRACTS section 1).
"""

import importlib.util
import os
import tempfile

import django

from demo_site.settings import *  # noqa: F403
from demo_site.settings import _database_from_url

_pg_url = os.environ.get("AUTHGUARD_TEST_DATABASE_URL", "")
if os.environ.get("AUTHGUARD_TEST_DB") == "postgres":
    if not _pg_url:
        raise RuntimeError("AUTHGUARD_TEST_DB=postgres needs AUTHGUARD_TEST_DATABASE_URL")
    DATABASES = {"default": _database_from_url(_pg_url)}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Parallel runs on one server (developers' helpers, say) each name their own test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("AUTHGUARD_TEST_PG_NAME", "test_authguard")}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.gettempdir(), "authguard-tests.sqlite3"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            "TEST": {"NAME": None},
        }
    }

_redis_url = os.environ.get("AUTHGUARD_TEST_REDIS_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_url}
    if _redis_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "authguard-tests"}
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if django.VERSION >= (6, 1):  # MAILERS replaces EMAIL_BACKEND there
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_BROKER_URL = ""
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
# Tests build their own GeoIP databases; none is read unless a test points here.
AUTHGUARD_GEOIP_PATH = None
LANGUAGE_CODE = "en"
# The contract's default (CONTRACTS section 2): X-Forwarded-For is ignored unless a test trusts a proxy.
AUTHGUARD_TRUSTED_PROXIES: list[str] = []
LOGGING = {"version": 1, "disable_existing_loggers": False}
# The staff console's documented default (the demo opens it to a new desk passkey at once).
AUTHGUARD_CONSOLE_NEW_PASSKEY_HOURS = 24
# The unvouched-factor rule's default (the demo switches it off: every visitor's browser is new).
AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 14
# Population counts folded with each login (as the replay's fold_every=0): a test's logins see the ones before
# it, as they did before issue 15. The snapshot rule of the default (900 s) has its own tests
# (test_risk_history).
AUTHGUARD_POPULATION_FOLD_SECONDS = 0

# Django REST framework for authguard.drf's tests (tests/test_drf.py); the suite runs without it too.
if importlib.util.find_spec("rest_framework") is not None:
    INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework", "rest_framework.authtoken"]  # noqa: F405
    # As docs/drf.md says: never DRF's default BasicAuthentication (authguard.W112).
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "rest_framework.authentication.SessionAuthentication",
            "authguard.drf.TokenAuthentication",
        ]
    }
