"""Settings of the demo brokerage portal.

Reads ``AUTHGUARD_GEOIP_PATH``, ``DATABASE_URL``, ``REDIS_URL`` and ``CELERY_BROKER_URL`` from the
environment (CONTRACTS section 2). Without them it runs on SQLite under ``var/``, with an in-process cache
and Celery tasks run eagerly, so ``make demo`` needs no server of any kind.
"""

from __future__ import annotations

import os
from pathlib import Path

import django
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DEMO_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the demo's SQLite database and GeoIP files live here

# The demo runs on a developer's machine only; a real deployment sets DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-key-3c9f1e0b7a5d4c2e8f6a1b0d9c7e5f3a")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "authguard",
    "demo_site.brokerage",
]

MIDDLEWARE = [
    # Demo only: the login page's "sign in as if from..." switch. It removes itself unless DEBUG is on.
    "demo_site.brokerage.demo_place.DemoPlaceMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "authguard.middleware.AuthguardMiddleware",
    # The security console (Django admin) opens only after a passkey check of the staff session.
    "authguard.console.guard.StaffPasskeyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "demo_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_url(url: str) -> dict:
    import dj_database_url

    # Persistent connections are checked once per request before use: after a database restart or failover
    # each worker reconnects instead of failing its first request on a dead connection (docs/faults.md).
    database = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if database["ENGINE"] == "django.db.backends.postgresql":
        # The demo talks to PostgreSQL directly (no transaction-mode pooler), so authguard's hot statements
        # may be prepared on the server (authguard.statements); Django's own queries keep client-side binding.
        database.setdefault("OPTIONS", {})["prepare_threshold"] = 5
    return database


DATABASES = {
    "default": _database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "demo.sqlite3",
        # SECURITY: take the write lock at BEGIN so parallel verifications queue instead of racing.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}

REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # A hung Redis must cost a login a fraction of a second, not the OS's TCP timeout (docs/faults.md):
        # authguard's circuit breaker then skips the cache until it answers again.
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "authguard-demo"}
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
# With no broker the demo runs every task in the web process, right after the transaction commits.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TIMEZONE = "Asia/Tokyo"

AUTHENTICATION_BACKENDS = [
    # SECURITY: first, so a throttled IP or account is refused before any password is checked.
    "authguard.login.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "demo_site" / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "brokerage:portfolio"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# JSON answers for CSRF failures under /api/ (HTML elsewhere), so API clients always get JSON.
CSRF_FAILURE_VIEW = "demo_site.brokerage.api.csrf_failure"

# Django 6.1 configures mail with MAILERS (EMAIL_BACKEND is deprecated there and refused beside it).
_mail_backend = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _mail_backend}}
else:
    EMAIL_BACKEND = _mail_backend
DEFAULT_FROM_EMAIL = "security@demo-broker.example"

# -- authguard ---------------------------------------------------------------------------------------
AUTHGUARD_GEOIP_PATH = os.environ.get("AUTHGUARD_GEOIP_PATH", str(VAR_DIR / "geoip"))
AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
AUTHGUARD_WEBAUTHN_RP_NAME = "Demo Securities"
AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
# Demo only: your own machine plays the reverse proxy, so `curl -H "X-Forwarded-For: 203.0.113.1"` signs in
# "from a VPS in Singapore" (docs/demo.md). A deployment lists its real load balancers here, never loopback
# on a machine where users run code.
AUTHGUARD_TRUSTED_PROXIES = os.environ.get("AUTHGUARD_TRUSTED_PROXIES", "127.0.0.1/32,::1/128").split(",")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        # Django's own console handler writes only while DEBUG is on, and its mail_admins handler needs
        # ADMINS: without this one a 500 under DJANGO_DEBUG=0 (gunicorn, a deployment) leaves no line
        # anywhere (docs/faults.md). With DEBUG on, Django's handler writes it, once.
        "errors": {"class": "logging.StreamHandler", "level": "ERROR", "filters": ["require_debug_false"]},
    },
    "loggers": {
        "authguard": {"handlers": ["console"], "level": "INFO"},
        "django.request": {"handlers": ["errors"], "level": "INFO"},
    },
}

# -- step-up and factors (owner: stepup, factors) ---------------------------------------------------------
# A session waiting for step-up may also sign out through the JSON API.
AUTHGUARD_PENDING_ALLOWED_VIEWS = ["logout", "set_language", "brokerage:api-logout"]

# -- order guard (owner: orders) ---------------------------------------------------------------------------
# The portal's hooks: how authguard values a portfolio, looks up an instrument and executes a held order.
AUTHGUARD_ORDER_PORTFOLIO = "demo_site.brokerage.services.guard_portfolio"
AUTHGUARD_ORDER_INSTRUMENT = "demo_site.brokerage.services.guard_instrument"
AUTHGUARD_ORDER_EXECUTOR = "demo_site.brokerage.services.held_order_executor"
# Executes confirmed sensitive actions (withdrawals, bank-account registration): docs/sensitive-actions.md.
AUTHGUARD_ACTION_EXECUTOR = "demo_site.brokerage.money.action_executor"
AUTHGUARD_CONFIRMATION_SECONDS = 300

# -- notifications, Celery beat, operations (owner: ops, console) --------------------------------------------
# The periodic tasks (authguard.tasks: the outbox's retry, expiries, retention, the heartbeat) and the broker
# timeouts (a broker outage must not stall a login; docs/faults.md) are authguard's defaults, applied by
# authguard.celery.make_app in demo_site/celery.py. `make worker` (celery worker --beat) runs them when
# REDIS_URL is set. A CELERY_* setting here would override the matching default; so would an entry of a
# CELERY_BEAT_SCHEDULE named like one of authguard's (the demo sets none).
AUTHGUARD_EVENT_RETENTION_DAYS = int(os.environ.get("AUTHGUARD_EVENT_RETENTION_DAYS", "400"))

# -- staff console: passkey step-up and four eyes (owner: staff) ---------------------------------------------
# The defaults, spelled out: every release of a held order, factor revocation, unlock, policy change and
# network block (or its early end) needs a second staff member's approval; locking an account, ending its
# sessions and forcing a password reset are immediate (docs/staff-approvals.md).
AUTHGUARD_FOUR_EYES = {
    "ACTIONS": [
        "release_order",
        "revoke_factor",
        "unlock_account",
        "change_policy",
        "block_network",
        "end_network_block",
    ],
    "MIN_SEVERITY": 0,
    "EXPIRY_HOURS": 24,
}
# Demo only: a passkey the demo's security desk registers opens the console at once. A deployment keeps the
# default (24 hours), so a passkey a thief registers with a phished staff password waits while staff are told.
AUTHGUARD_CONSOLE_NEW_PASSKEY_HOURS = 0
# Every demo visitor's browser is new to the demo's accounts, so a factor added in it would cool off for two
# weeks (docs/factor-lifecycle.md, "Vouched and unvouched factors"): off here, so the demo's passkeys confirm
# held orders and open the console at once. A real portal keeps the default, 14.
AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 0
