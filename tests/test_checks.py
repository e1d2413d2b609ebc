"""authguard's system checks fire with their stable ids on bad settings."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from authguard.checks import Codes


def ids(**kwargs) -> set[str]:
    return {m.id for m in run_checks(tags=["security"]) if m.id and m.id.startswith("authguard.")}


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
    from authguard.order_rules import rules_problem

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
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if not app.startswith("django_otp")]
    assert Codes.OTP_NOT_INSTALLED in ids()


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


def test_migrations_are_complete(db):
    from io import StringIO

    from django.core.management import call_command

    call_command("makemigrations", "authguard", "--check", "--dry-run", stdout=StringIO())


def test_sqlite_without_immediate_transactions_is_w011():
    from authguard.checks import sqlite_without_immediate_transactions

    assert Codes.SQLITE_NOT_IMMEDIATE not in ids()  # the test settings use IMMEDIATE (or PostgreSQL)
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}
    databases = {
        "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "test"},
        "plain": sqlite,
        "deferred": {**sqlite, "OPTIONS": {"transaction_mode": "DEFERRED"}},
        "immediate": {**sqlite, "OPTIONS": {"transaction_mode": "immediate", "timeout": 20}},
    }
    assert sqlite_without_immediate_transactions(databases) == ["plain", "deferred"]
