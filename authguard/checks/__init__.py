"""Django system checks for authguard's settings, each with a stable id.

A misconfigured security app must refuse to start rather than run open, so most problems are errors.
Run them with ``python manage.py check``; every id is tested in ``tests/test_checks.py``.

One module per subject; importing this package (``apps.AuthguardConfig.ready`` does) registers every check.
The ids are in :mod:`authguard.checks.codes`; the value validators that run-time code shares with the checks
are in :mod:`authguard.validators` and :mod:`authguard.plugins`.
"""

from __future__ import annotations

from authguard.checks import installation  # noqa: F401  (registers E007 and the installation checks)
from authguard.checks.codes import FACTOR_THROTTLE_INVALID as FACTOR_THROTTLE_INVALID
from authguard.checks.codes import IDENTITY_PROOFING_HOOK_INVALID as IDENTITY_PROOFING_HOOK_INVALID
from authguard.checks.codes import Codes as Codes
from authguard.checks.installation import check_installation as check_installation
from authguard.checks.installation import check_shared_cache as check_shared_cache
from authguard.validators import missing_otp_apps

# SECURITY: without django-otp the factor modules cannot even be imported (its TOTPDevice model has no app):
# only the installation checks register, so `manage.py check` reports E007 instead of crashing.
if not missing_otp_apps():
    from authguard.checks import (  # noqa: F401  (imported to register their checks)
        actions,
        celery,
        clock,
        console,
        factors,
        geoip,
        operations,
        orders,
        risk,
        sessions,
    )
    from authguard.checks.actions import check_actions as check_actions
    from authguard.checks.celery import check_celery as check_celery
    from authguard.checks.console import check_staff_console as check_staff_console
    from authguard.checks.console import four_eyes_problem as four_eyes_problem
    from authguard.checks.factors import check_factor_lifecycle as check_factor_lifecycle
    from authguard.checks.factors import check_factors as check_factors
    from authguard.checks.factors import check_step_up as check_step_up
    from authguard.checks.factors import check_webauthn as check_webauthn
    from authguard.checks.geoip import check_geoip as check_geoip
    from authguard.checks.geoip import check_geoip_files as check_geoip_files
    from authguard.checks.operations import check_operations as check_operations
    from authguard.checks.operations import check_preset as check_preset
    from authguard.checks.operations import check_report_only as check_report_only
    from authguard.checks.orders import check_order_exposure as check_order_exposure
    from authguard.checks.orders import check_order_guard as check_order_guard
    from authguard.checks.risk import check_network_lists as check_network_lists
    from authguard.checks.risk import check_risk_signals as check_risk_signals
    from authguard.checks.risk import check_thresholds as check_thresholds
    from authguard.checks.risk import check_trusted_proxies as check_trusted_proxies
    from authguard.checks.risk import risk_signals_problem as risk_signals_problem
    from authguard.checks.sessions import check_dbsc as check_dbsc
    from authguard.checks.sessions import check_locks as check_locks
    from authguard.checks.sessions import dbsc_problem as dbsc_problem

# Moved to authguard.validators / authguard.plugins (issue 12); kept importable from here for portals.
from authguard.plugins import plugin_list_problem as plugin_list_problem
from authguard.validators import (
    sqlite_without_immediate_transactions as sqlite_without_immediate_transactions,
)
from authguard.validators import thresholds_problem as thresholds_problem
