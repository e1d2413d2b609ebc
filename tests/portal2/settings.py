"""Settings of the second test portal (``--ds=tests.portal2.settings``), written from scratch: nothing is
imported from ``demo_site``.

SQLite in memory by default; ``AUTHGUARD_TEST_DB=postgres`` with ``AUTHGUARD_TEST_DATABASE_URL`` (and
``AUTHGUARD_TEST_PG_NAME`` for the test database's name) runs on PostgreSQL, and
``AUTHGUARD_TEST_REDIS_URL`` puts the cache on Redis, as ``tests/settings.py`` reads them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import django

HERE = Path(__file__).resolve().parent

SECRET_KEY = "portal2-tests-only-" + "k" * 40
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework",
    "rest_framework.authtoken",
    "authguard",
    "tests.portal2.accounts",
]
AUTH_USER_MODEL = "portal2_accounts.User"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "authguard.middleware.AuthguardMiddleware",
    "authguard.console.guard.StaffPasskeyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.portal2.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_url(url: str) -> dict[str, Any]:
    import dj_database_url

    return dict(dj_database_url.parse(url, conn_max_age=0))


_pg_url = os.environ.get("AUTHGUARD_TEST_DATABASE_URL", "")
if os.environ.get("AUTHGUARD_TEST_DB") == "postgres":
    if not _pg_url:
        raise RuntimeError("AUTHGUARD_TEST_DB=postgres needs AUTHGUARD_TEST_DATABASE_URL")
    DATABASES = {"default": _database_from_url(_pg_url)}
    # Parallel runs on one server each name their own test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("AUTHGUARD_TEST_PG_NAME", "test_portal2")}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.gettempdir(), "authguard-portal2-tests.sqlite3"),
            # SECURITY: the write lock at BEGIN, as authguard's order guard expects of SQLite.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            "TEST": {"NAME": None},
        }
    }

_redis_url = os.environ.get("AUTHGUARD_TEST_REDIS_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_url}
    if _redis_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "authguard-portal2"}
}

AUTHENTICATION_BACKENDS = [
    "authguard.login.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en"
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

if django.VERSION >= (6, 1):  # MAILERS replaces EMAIL_BACKEND there
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "security@portal2.example"
LOGGING = {"version": 1, "disable_existing_loggers": False}

# The portal's Celery app (tests.portal2.celery, loaded by the accounts app) runs tasks in-process here.
CELERY_BROKER_URL = ""
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

# The portal's API views name authguard.drf's classes themselves (accounts/api.py); naming them here, as
# docs/drf.md shows, works too (tests/portal2/test_drf_tokens.py loads those defaults in a fresh process).
# No BasicAuthentication anywhere: it checks passwords unscored.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

# -- authguard ------------------------------------------------------------------------------------------
# The tests build their own GeoIP databases and point here per test (the ``geoip`` fixture).
AUTHGUARD_GEOIP_PATH = None
AUTHGUARD_TRUSTED_PROXIES: list[str] = []
AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
AUTHGUARD_WEBAUTHN_RP_NAME = "Portal Two Securities"
AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
AUTHGUARD_PENDING_ALLOWED_VIEWS = ["logout", "api-logout"]
AUTHGUARD_ORDER_PORTFOLIO = "tests.portal2.accounts.trading.guard_portfolio"
AUTHGUARD_ORDER_INSTRUMENT = "tests.portal2.accounts.trading.guard_instrument"
AUTHGUARD_ORDER_EXECUTOR = "tests.portal2.accounts.trading.executor"
AUTHGUARD_CONSOLE_NEW_PASSKEY_HOURS = 24
