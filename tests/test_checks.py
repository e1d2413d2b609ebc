"""authguard's system checks fire with their stable ids on bad settings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import run_checks

from authguard.checks import Codes

REPO = Path(__file__).resolve().parents[1]

# Django 6.1's model checks (run_checks() without tags) ask the database whether it supports JSONField.
pytestmark = pytest.mark.django_db


def ids(**kwargs) -> set[str]:
    return {m.id for m in run_checks(tags=["security"]) if m.id and m.id.startswith("authguard.")}


@pytest.fixture(autouse=True)
def _debug_as_the_demo_runs(settings):
    """Check the settings as the demo runs them, with DEBUG on. pytest turns DEBUG off, which would add the
    deployment warnings (W003 no GeoIP, W004 a per-process cache) to every "passes" below; their own tests
    turn it off again."""
    settings.DEBUG = True


def test_demo_settings_pass_every_check():
    assert ids() == set()


@pytest.mark.parametrize(
    "value",
    [
        {"step_up": 80, "deny": 40},
        {"step_up": "40", "deny": 90},
        {"step_up": 40, "deny": 101},
        {"step_up": -1, "deny": 90},
        {"step_up": True, "deny": 90},
        {"stepup": 40},
        [40, 90],
    ],
)
def test_bad_thresholds_are_e001(settings, value):
    settings.AUTHGUARD_THRESHOLDS = value
    assert Codes.THRESHOLDS_INVALID in ids()


@pytest.mark.parametrize(
    "value",
    [
        "authguard.risk_signals.Velocity",
        [{"NAME": "authguard.risk_signals.DoesNotExist"}],
        [{"OPTIONS": {}}],
        [{"NAME": "authguard.risk_signals.Velocity", "OPTIONS": {"no_such_option": 1}}],
        [{"NAME": "authguard.risk_signals.Velocity", "OPTIONS": {"ip_failures": "ten"}}],
        [{"NAME": "authguard.risk_signals.Velocity", "OPTIONS": []}],
        [{"NAME": "authguard.risk_signals.StatisticalModel", "OPTIONS": {"ip_weights": [1, 1, 1, 1]}}],
        [{"NAME": "authguard.risk_signals.Velocity", "OPTION": {}}],
        # A class that builds fine from its OPTIONS but is not a risk signal: it would fail every login.
        [{"NAME": "collections.OrderedDict", "OPTIONS": {"a": 1}}],
        [{"NAME": 5}],
    ],
)
def test_bad_risk_signals_are_e002(settings, value):
    settings.AUTHGUARD_RISK_SIGNALS = value
    assert Codes.RISK_SIGNALS_INVALID in ids()


def test_risk_signal_and_order_rule_lists_share_one_validator_that_checks_the_base_class():
    from authguard.checks import risk_signals_problem
    from authguard.orders.rules import rules_problem

    signal = {"NAME": "authguard.risk_signals.Velocity"}
    rule = {"NAME": "authguard.order_rules.MassLiquidation"}
    assert risk_signals_problem([signal]) is None
    assert risk_signals_problem((signal,)) is None  # a tuple in settings is a list too
    assert (
        risk_signals_problem([rule])
        == "entry 0: authguard.order_rules.MassLiquidation is not a subclass of RiskSignal"
    )
    assert rules_problem([rule]) is None
    assert (
        rules_problem([signal]) == "entry 0: authguard.risk_signals.Velocity is not a subclass of OrderRule"
    )


def test_valid_custom_risk_signals_pass(settings):
    settings.AUTHGUARD_RISK_SIGNALS = [
        {"NAME": "authguard.risk_signals.ImpossibleTravel", "OPTIONS": {"max_kmh": 500}}
    ]
    assert Codes.RISK_SIGNALS_INVALID not in ids()


@pytest.mark.parametrize("value", [["10.0.0.0/33"], ["not-an-ip"], "10.0.0.0/8", [None]])
def test_bad_trusted_proxies_are_e003(settings, value):
    settings.AUTHGUARD_TRUSTED_PROXIES = value
    assert Codes.TRUSTED_PROXIES_INVALID in ids()


def test_missing_rp_id_is_e004(settings):
    del settings.AUTHGUARD_WEBAUTHN_RP_ID
    assert Codes.WEBAUTHN_RP_ID_MISSING in ids()


@pytest.mark.parametrize(
    "origins",
    [
        [],
        None,
        ["http://broker.example.jp"],
        ["localhost:8000"],
        ["https://evil.example"],
        ["http://localhost:8000/path"],
    ],
)
def test_bad_origins_are_e005(settings, origins):
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = origins
    assert Codes.WEBAUTHN_ORIGINS_INVALID in ids()


def test_https_origin_within_rp_id_passes(settings):
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "broker.example.jp"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["https://broker.example.jp", "https://www.broker.example.jp:8443"]
    assert ids() == set()


def test_missing_or_misplaced_middleware_is_e006(settings):
    middleware = list(settings.MIDDLEWARE)
    middleware.remove("authguard.middleware.AuthguardMiddleware")
    settings.MIDDLEWARE = middleware
    assert Codes.MIDDLEWARE_MISSING in ids()
    settings.MIDDLEWARE = ["authguard.middleware.AuthguardMiddleware", *middleware]
    assert Codes.MIDDLEWARE_MISSING in ids()


def test_missing_django_otp_is_e007(settings):
    installed = list(settings.INSTALLED_APPS)
    settings.INSTALLED_APPS = [app for app in installed if not app.startswith("django_otp")]
    assert Codes.OTP_NOT_INSTALLED in ids()
    settings.INSTALLED_APPS = [app for app in installed if app != "django_otp.plugins.otp_totp"]
    assert Codes.OTP_NOT_INSTALLED in ids()  # authguard's factors and console need TOTPDevice too


OTP_SETTINGS = """
SECRET_KEY = "e007-" + "x" * 45
INSTALLED_APPS = [
    {admin}"django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "authguard",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "authguard.middleware.AuthguardMiddleware",
]
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
ROOT_URLCONF = "e007_urls"
AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
"""


def _fresh_check(tmp_path: Path, *, admin: bool) -> subprocess.CompletedProcess[str]:
    """``django.setup()`` and ``manage.py check`` in a new process whose settings lack django-otp (in this
    process the apps are loaded already, so only a new one shows what a portal would meet)."""
    (tmp_path / "e007_settings.py").write_text(
        OTP_SETTINGS.format(admin='"django.contrib.admin", ' if admin else "")
    )
    (tmp_path / "e007_urls.py").write_text("urlpatterns = []\n")
    script = """
        import django
        from django.core.management import call_command

        django.setup()
        call_command("check")
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "e007_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_e007_reaches_a_portal_without_django_otp(tmp_path):
    """Issue 14: "E007 cannot fire". Without the admin it always could (the check runs); with the admin,
    Django stopped first on "TOTPDevice doesn't declare an explicit app_label" while importing
    authguard.console.admin. The console now refuses first, naming E007 and the fix."""
    without_admin = _fresh_check(tmp_path, admin=False)
    assert without_admin.returncode != 0
    assert "(authguard.E007) django_otp and django_otp.plugins.otp_totp are not in INSTALLED_APPS" in (
        without_admin.stderr
    )
    with_admin = _fresh_check(tmp_path, admin=True)
    assert with_admin.returncode != 0
    last_line = with_admin.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: authguard.E007: django_otp")
    assert "explicit app_label" not in with_admin.stderr


OTP_MIDDLEWARE = "django_otp.middleware.OTPMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def test_missing_or_misplaced_otp_middleware_is_e009(settings):
    installed = list(settings.MIDDLEWARE)
    without = [m for m in installed if m != OTP_MIDDLEWARE]
    settings.MIDDLEWARE = without
    assert Codes.OTP_MIDDLEWARE_MISSING in ids()
    # Before AuthenticationMiddleware it finds no user and does nothing.
    settings.MIDDLEWARE = [OTP_MIDDLEWARE, *without]
    assert Codes.OTP_MIDDLEWARE_MISSING in ids()
    settings.MIDDLEWARE = installed
    assert Codes.OTP_MIDDLEWARE_MISSING not in ids()
    # Without authguard's middleware E006 says what is wrong; E009 is about authguard's step-up state.
    settings.MIDDLEWARE = [m for m in without if m != "authguard.middleware.AuthguardMiddleware"]
    assert Codes.OTP_MIDDLEWARE_MISSING not in ids() and Codes.MIDDLEWARE_MISSING in ids()


@pytest.mark.parametrize("entries", [["ASX"], ["JPN"], ["300.1.1.1/8"], [42], "JP"])
def test_bad_network_lists_are_e008(settings, entries):
    settings.AUTHGUARD_NETWORK_DENYLIST = entries
    assert Codes.NETWORK_LIST_INVALID in ids()


def test_good_network_lists_pass(settings):
    settings.AUTHGUARD_NETWORK_DENYLIST = ["AS14061", "KP", "198.51.100.0/24", "2001:db8::/32"]
    assert ids() == set()


def test_geoip_path_warnings(settings, tmp_path, geoip_dir):
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path / "nope")
    assert Codes.GEOIP_PATH_MISSING in ids()
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path)
    assert Codes.GEOIP_NO_DATABASES in ids()
    settings.AUTHGUARD_GEOIP_PATH = str(geoip_dir)
    assert ids() == set()


@pytest.mark.parametrize("path", [None, ""])
def test_geoip_unset_in_production_is_w003(settings, geoip_dir, path):
    settings.DEBUG = False
    settings.AUTHGUARD_GEOIP_PATH = path
    assert Codes.GEOIP_UNSET in ids()
    settings.DEBUG = True  # runserver on a developer's machine: unknown places are expected
    assert Codes.GEOIP_UNSET not in ids()
    settings.DEBUG = False
    if path is None:
        settings.GEOIP_PATH = str(geoip_dir)  # Django's own setting is read when authguard's is None
        assert not ids() & {Codes.GEOIP_UNSET, Codes.GEOIP_PATH_MISSING, Codes.GEOIP_NO_DATABASES}
        del settings.GEOIP_PATH
    settings.AUTHGUARD_GEOIP_PATH = str(geoip_dir)
    assert not ids() & {Codes.GEOIP_UNSET, Codes.GEOIP_PATH_MISSING, Codes.GEOIP_NO_DATABASES}


class PortalLocMemCache(LocMemCache):
    """A portal's own cache class that still keeps its data in one process."""


@pytest.mark.parametrize(
    ("backend", "per_process"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", True),
        ("django.core.cache.backends.dummy.DummyCache", True),
        ("tests.test_checks.PortalLocMemCache", True),
        ("django.core.cache.backends.redis.RedisCache", False),
        ("django.core.cache.backends.memcached.PyMemcacheCache", False),
        ("django.core.cache.backends.db.DatabaseCache", False),
        ("django.core.cache.backends.filebased.FileBasedCache", False),
    ],
)
def test_a_per_process_cache_in_production_is_w004(settings, backend, per_process):
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "authguard-checks"}}
    assert (Codes.CACHE_PER_PROCESS in ids()) is per_process
    settings.DEBUG = True  # runserver: one process, its counters are the only ones
    assert Codes.CACHE_PER_PROCESS not in ids()


def test_the_test_settings_in_production_would_warn_about_geoip_and_the_cache(settings):
    """The test settings have no GeoIP and (without the Redis leg) a LocMem cache: right for tests, what
    W003 and W004 are for in production. ``manage.py check`` runs them with the demo's DEBUG (on)."""
    settings.DEBUG = False
    on_redis = settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    expected = {Codes.GEOIP_UNSET} | (set() if on_redis else {Codes.CACHE_PER_PROCESS})
    assert ids() == expected


def test_migrations_are_complete(db):
    from io import StringIO

    from django.core.management import call_command

    call_command("makemigrations", "authguard", "--check", "--dry-run", stdout=StringIO())


def test_sqlite_without_immediate_transactions_is_w011():
    from authguard.validators import sqlite_without_immediate_transactions

    assert Codes.SQLITE_NOT_IMMEDIATE not in ids()  # the test settings use IMMEDIATE (or PostgreSQL)
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}
    databases = {
        "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "test"},
        "plain": sqlite,
        "deferred": {**sqlite, "OPTIONS": {"transaction_mode": "DEFERRED"}},
        "immediate": {**sqlite, "OPTIONS": {"transaction_mode": "immediate", "timeout": 20}},
    }
    assert sqlite_without_immediate_transactions(databases) == ["plain", "deferred"]


# -- rollout (report-only) and Celery: E170-E171, W170-W174 (issue 14; more in test_report_only.py and
# test_celery_helpers.py) --------------------------------------------------------------------------------


def test_report_only_parts_are_w170_and_unknown_parts_e170(settings):
    settings.AUTHGUARD_REPORT_ONLY = ["login"]
    assert Codes.REPORT_ONLY_ON in ids() and Codes.REPORT_ONLY_INVALID not in ids()
    settings.AUTHGUARD_REPORT_ONLY = ["withdrawals"]
    assert Codes.REPORT_ONLY_INVALID in ids() and Codes.REPORT_ONLY_ON not in ids()


def test_report_only_sign_in_under_the_preset_is_e171(settings):
    settings.AUTHGUARD_PRESET = "jsda-2025"
    settings.AUTHGUARD_REPORT_ONLY = ["orders"]
    assert Codes.REPORT_ONLY_UNDER_PRESET not in ids() and Codes.REPORT_ONLY_ON in ids()
    settings.AUTHGUARD_REPORT_ONLY = ["step_up"]
    assert Codes.REPORT_ONLY_UNDER_PRESET in ids() and Codes.REPORT_ONLY_ON not in ids()


def test_celery_checks_run_only_with_deploy(settings):
    from celery import Celery

    from demo_site.celery import app as demo_app

    Celery("portal-without-config")  # not eager, no broker, no schedule: current in this process
    try:
        deploy = {m.id for m in run_checks(include_deployment_checks=True)}
        assert {Codes.CELERY_NO_BROKER, Codes.CELERY_SCHEDULE_INCOMPLETE} <= deploy
        assert not {Codes.CELERY_NO_BROKER, Codes.CELERY_SCHEDULE_INCOMPLETE} & ids()
    finally:
        demo_app.set_current()


def test_new_check_ids_are_unique():
    values = [v for k, v in vars(Codes).items() if not k.startswith("_")]
    assert len(values) == len(set(values))


AXES = "axes.backends.AxesStandaloneBackend"
THROTTLE = "authguard.login.ThrottleBackend"
MODEL = "django.contrib.auth.backends.ModelBackend"


@pytest.mark.parametrize(
    ("backends", "expected"),
    [
        ([THROTTLE, MODEL], set()),
        ([AXES, THROTTLE, MODEL], set()),  # docs/integration.md: axes first, then authguard's
        ([MODEL, THROTTLE], {Codes.THROTTLE_BACKEND_NOT_FIRST}),
        ([THROTTLE, AXES, MODEL], {Codes.AXES_AFTER_THROTTLE_BACKEND}),
        ([MODEL, THROTTLE, AXES], {Codes.THROTTLE_BACKEND_NOT_FIRST, Codes.AXES_AFTER_THROTTLE_BACKEND}),
    ],
)
def test_the_throttle_backend_comes_first_but_after_django_axes(settings, backends, expected) -> None:
    """W110 and W175: authguard's throttle backend first, only django-axes' before it (an axes refusal is
    then told from a wrong password: tests/test_axes.py)."""
    settings.AUTHENTICATION_BACKENDS = backends
    ids = {
        message.id
        for message in run_checks()
        if message.id in (Codes.THROTTLE_BACKEND_NOT_FIRST, Codes.AXES_AFTER_THROTTLE_BACKEND)
    }
    assert ids == expected
