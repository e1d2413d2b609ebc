"""Django system checks for authguard's settings, each with a stable id.

A misconfigured security app must refuse to start rather than run open, so most problems are errors.
Run them with ``python manage.py check``; every id is tested in ``tests/test_checks.py``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from authguard.conf import DEFAULT_THRESHOLDS, app_settings


class Codes:
    """The stable ids of authguard's checks. Never renumber: operators silence them by id."""

    THRESHOLDS_INVALID = "authguard.E001"
    RISK_SIGNALS_INVALID = "authguard.E002"
    TRUSTED_PROXIES_INVALID = "authguard.E003"
    WEBAUTHN_RP_ID_MISSING = "authguard.E004"
    WEBAUTHN_ORIGINS_INVALID = "authguard.E005"
    MIDDLEWARE_MISSING = "authguard.E006"
    OTP_NOT_INSTALLED = "authguard.E007"
    NETWORK_LIST_INVALID = "authguard.E008"
    OTP_MIDDLEWARE_MISSING = "authguard.E009"
    GEOIP_PATH_MISSING = "authguard.W001"
    GEOIP_NO_DATABASES = "authguard.W002"
    GEOIP_UNSET = "authguard.W003"
    CACHE_PER_PROCESS = "authguard.W004"
    # Reserved ranges: step-up and factors E010-E019/W010-W019, order guard E020-E029/W020-W029,
    # notifications, lockout, policy and preset E030-E039/W030-W039.
    # -- step-up and factors (owner: stepup, factors) --
    FACTOR_SETTINGS_INVALID = "authguard.E010"
    CHALLENGE_CACHE_UNSAFE = "authguard.W010"
    SQLITE_NOT_IMMEDIATE = "authguard.W011"
    SESSION_TIMEOUTS_INVALID = "authguard.E018"
    STEP_UP_METHODS_INVALID = "authguard.E019"
    SESSION_TIMEOUTS_LONG = "authguard.W018"
    # -- order guard (owner: orders) --
    ORDER_RULES_INVALID = "authguard.E020"
    ORDER_HOOK_MISSING = "authguard.E021"
    ORDER_HOOK_INVALID = "authguard.E022"
    CONFIRMATION_METHODS_INVALID = "authguard.E023"
    CONFIRMATION_SECONDS_INVALID = "authguard.E024"
    # -- notifications, lockout, policy, preset (owner: ops, console) --
    # console (JSDA preset): E035-E039 / W035-W039; ops keeps E030-E034 / W030-W034.
    LOCKOUT_INVALID = "authguard.E030"
    UNLOCK_METHODS_INVALID = "authguard.E031"
    OPERATIONS_NUMBER_INVALID = "authguard.E032"
    NOTIFICATION_LANGUAGE_INVALID = "authguard.E033"
    PRESET_UNKNOWN = "authguard.E035"
    PRESET_METHODS_OVERRIDDEN = "authguard.W035"
    PRESET_LOCKOUT_OVERRIDDEN = "authguard.W036"
    PRESET_OTP_PLUGINS = "authguard.W037"
    # -- staff console: passkey step-up and four eyes (owner: staff): E140-E149 / W140-W149 --
    FOUR_EYES_INVALID = "authguard.E140"
    CONSOLE_SETTINGS_INVALID = "authguard.E141"
    STAFF_MIDDLEWARE_MISSING = "authguard.W140"
    # -- sensitive actions (owner: actions): E130-E139 / W130-W139 --
    ACTION_EXECUTOR_INVALID = "authguard.E130"
    ACTION_METHODS_INVALID = "authguard.E131"
    ACTION_KINDS_INVALID = "authguard.E132"
    ACTION_NUMBER_INVALID = "authguard.E133"
    # -- locks, sessions, password reset (owner: sessions): E110-E119 / W110-W119 --
    LOCK_SETTINGS_INVALID = "authguard.E110"
    THROTTLE_BACKEND_NOT_FIRST = "authguard.W110"
    SESSIONS_CANNOT_BE_ENDED = "authguard.W111"
    # -- order guard v2: exposure over days (owner: orders): E120-E129 / W120-W129 --
    ORDER_EXPOSURE_MISSING = "authguard.W120"
    # -- GeoIP files and retention (owner: scale): E150-E159 / W150-W159 --
    GEOIP_FILE_SETTINGS_INVALID = "authguard.E150"
    GEOIP_DATABASE_MISSING = "authguard.W150"
    GEOIP_DATABASE_UNREADABLE = "authguard.W151"
    GEOIP_DATABASE_STALE = "authguard.W152"
    # -- Device Bound Session Credentials (owner: dbsc): E160-E169 / W160-W169 --
    DBSC_SETTINGS_INVALID = "authguard.E160"
    DBSC_URLS_MISSING = "authguard.E161"
    DBSC_WITHOUT_HTTPS = "authguard.W160"
    # -- rollout (report-only) and Celery (owner: integration; issue 14): E170-E179 / W170-W179 --
    REPORT_ONLY_INVALID = "authguard.E170"
    REPORT_ONLY_UNDER_PRESET = "authguard.E171"
    REPORT_ONLY_ON = "authguard.W170"
    CELERY_NO_BROKER = "authguard.W171"
    CELERY_APP_IGNORES_SETTINGS = "authguard.W172"
    CELERY_NO_HEARTBEAT = "authguard.W173"
    CELERY_SCHEDULE_INCOMPLETE = "authguard.W174"


GEOIP_FILENAMES = {
    "city": ("GeoIP2-City.mmdb", "GeoLite2-City.mmdb"),
    "asn": ("GeoLite2-ASN.mmdb", "GeoIP2-ISP.mmdb"),
    "anonymous": ("GeoIP2-Anonymous-IP.mmdb",),
}

MIDDLEWARE_PATH = "authguard.middleware.AuthguardMiddleware"
AUTH_MIDDLEWARE_PATH = "django.contrib.auth.middleware.AuthenticationMiddleware"
OTP_MIDDLEWARE_PATH = "django_otp.middleware.OTPMiddleware"
#: django-otp's apps: authguard's models, factors and console import their models (``TOTPDevice``).
OTP_APPS = ("django_otp", "django_otp.plugins.otp_totp")
#: Cache backends that keep their data in one process (or none at all).
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def missing_otp_apps() -> list[str]:
    """The django-otp apps authguard needs that are not installed (E007, and the console's import guard)."""
    from django.apps import apps

    return [app for app in OTP_APPS if not apps.is_installed(app)]


@register(Tags.security)
def check_thresholds(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "AUTHGUARD_THRESHOLDS", {})
    problem = thresholds_problem(raw)
    if problem:
        return [
            Error(
                f"AUTHGUARD_THRESHOLDS is invalid: {problem}.",
                hint='Use {"step_up": int, "deny": int} with 0 <= step_up <= deny <= 100.',
                id=Codes.THRESHOLDS_INVALID,
            )
        ]
    return []


def thresholds_problem(raw: Any) -> str | None:
    """Say what is wrong with a thresholds mapping, or None when it is valid.

    Shared by the system check and the run-time policy editor so both refuse the same values.
    """
    if not isinstance(raw, dict):
        return "it must be a dict"
    unknown = set(raw) - {"step_up", "deny"}
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    merged = {**DEFAULT_THRESHOLDS, **raw}
    for key in ("step_up", "deny"):
        value = merged.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{key!r} must be an integer"
        if not 0 <= value <= 100:
            return f"{key!r} must be between 0 and 100"
    if merged["step_up"] > merged["deny"]:
        return "'step_up' must not exceed 'deny'"
    return None


@register(Tags.security)
def check_risk_signals(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "AUTHGUARD_RISK_SIGNALS", None)
    if raw is None:
        return []
    problem = risk_signals_problem(raw)
    if problem:
        return [
            Error(
                f"AUTHGUARD_RISK_SIGNALS is invalid: {problem}.",
                hint='Use a list of {"NAME": "dotted.path.Signal", "OPTIONS": {...}}.',
                id=Codes.RISK_SIGNALS_INVALID,
            )
        ]
    return []


def plugin_list_problem(raw: Any, *, base: type) -> str | None:
    """Say what is wrong with a ``[{"NAME": ..., "OPTIONS": {...}}]`` plug-in list, or None when valid.

    Each ``NAME`` must import a subclass of ``base`` that accepts its ``OPTIONS`` (each entry is built
    once, so a typo in an option is caught here rather than at the first login or order).
    """
    if not isinstance(raw, list | tuple):
        return "it must be a list"
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or "NAME" not in entry:
            return f"entry {index} must be a dict with a 'NAME'"
        unknown = set(entry) - {"NAME", "OPTIONS"}
        if unknown:
            return f"entry {index} has unknown keys {sorted(unknown)}"
        options = entry.get("OPTIONS", {})
        if not isinstance(options, dict):
            return f"entry {index}: 'OPTIONS' must be a dict"
        if not isinstance(entry["NAME"], str):
            return f"entry {index}: 'NAME' must be a dotted path"
        try:
            klass = import_string(entry["NAME"])
        except ImportError as exc:
            return f"entry {index}: cannot import {entry['NAME']!r} ({exc})"
        if not (isinstance(klass, type) and issubclass(klass, base)):
            return f"entry {index}: {entry['NAME']} is not a subclass of {base.__name__}"
        try:
            klass(**options)
        except (TypeError, ValueError) as exc:
            return f"entry {index}: {entry['NAME']} rejects its OPTIONS ({exc})"
    return None


def risk_signals_problem(raw: Any) -> str | None:
    """Say what is wrong with a risk-signal list (import and construct each), or None when valid."""
    from authguard.risk.engine import RiskSignal

    return plugin_list_problem(raw, base=RiskSignal)


@register(Tags.security)
def check_trusted_proxies(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "AUTHGUARD_TRUSTED_PROXIES", [])
    bad = _invalid_networks(raw) if isinstance(raw, list | tuple) else [repr(raw)]
    if bad:
        return [
            Error(
                f"AUTHGUARD_TRUSTED_PROXIES holds entries that are not IP networks: {', '.join(bad)}.",
                hint='Use a list of CIDRs such as ["10.0.0.0/8", "2001:db8::/32"].',
                id=Codes.TRUSTED_PROXIES_INVALID,
            )
        ]
    return []


@register(Tags.security)
def check_network_lists(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in ("NETWORK_ALLOWLIST", "NETWORK_DENYLIST"):
        raw = getattr(settings, "AUTHGUARD_" + name, [])
        bad = (
            [repr(raw)]
            if not isinstance(raw, list | tuple)
            else [repr(e) for e in raw if not _list_entry_ok(e)]
        )
        if bad:
            errors.append(
                Error(
                    f"AUTHGUARD_{name} holds invalid entries: {', '.join(bad)}.",
                    hint='Entries are CIDRs ("203.0.113.0/24"), ASNs ("AS64500") or country codes ("JP").',
                    id=Codes.NETWORK_LIST_INVALID,
                )
            )
    return errors


def _list_entry_ok(entry: Any) -> bool:
    if not isinstance(entry, str):
        return False
    if entry.upper().startswith("AS") and entry[2:].isdigit():
        return True
    if len(entry) == 2 and entry.isalpha():
        return True
    return not _invalid_networks([entry])


def _invalid_networks(entries: Iterable[Any]) -> list[str]:
    bad = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError):
            bad.append(repr(entry))
    return bad


@register(Tags.security)
def check_webauthn(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    rp_id = app_settings.WEBAUTHN_RP_ID
    if not rp_id or not isinstance(rp_id, str):
        errors.append(
            Error(
                "AUTHGUARD_WEBAUTHN_RP_ID is not set.",
                hint='Set it to your site\'s registrable domain, e.g. "broker.example.jp" (or "localhost").',
                id=Codes.WEBAUTHN_RP_ID_MISSING,
            )
        )
    origins = getattr(settings, "AUTHGUARD_WEBAUTHN_ORIGINS", None)
    problem = _origins_problem(origins, rp_id if isinstance(rp_id, str) else None)
    if problem:
        errors.append(
            Error(
                f"AUTHGUARD_WEBAUTHN_ORIGINS is invalid: {problem}.",
                hint='List the exact origins, e.g. ["https://broker.example.jp"] (http only for localhost).',
                id=Codes.WEBAUTHN_ORIGINS_INVALID,
            )
        )
    return errors


def _origins_problem(origins: Any, rp_id: str | None) -> str | None:
    if not origins or not isinstance(origins, list | tuple):
        return "it must be a non-empty list"
    for origin in origins:
        if not isinstance(origin, str):
            return f"{origin!r} is not a string"
        parts = urlsplit(origin)
        host = parts.hostname or ""
        if parts.scheme not in ("https", "http") or not host or parts.path not in ("", "/"):
            return f"{origin!r} is not an origin (scheme://host[:port])"
        # SECURITY: WebAuthn over plain http is only meaningful on a developer's own machine.
        if parts.scheme == "http" and host != "localhost":
            return f"{origin!r} uses http on a host other than localhost"
        if rp_id and not (host == rp_id or host.endswith("." + rp_id)):
            return f"{origin!r} is not within the RP ID {rp_id!r}"
    return None


@register(Tags.security)
def check_installation(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if MIDDLEWARE_PATH not in middleware or (
        AUTH_MIDDLEWARE_PATH in middleware
        and middleware.index(MIDDLEWARE_PATH) < middleware.index(AUTH_MIDDLEWARE_PATH)
    ):
        errors.append(
            Error(
                f"{MIDDLEWARE_PATH} must be in MIDDLEWARE, after {AUTH_MIDDLEWARE_PATH}.",
                hint="Without it, risky sessions are not held at step-up.",
                id=Codes.MIDDLEWARE_MISSING,
            )
        )
    missing = missing_otp_apps()
    if missing:
        errors.append(
            Error(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in INSTALLED_APPS.",
                hint='Add "django_otp" and "django_otp.plugins.otp_totp" before "authguard".',
                id=Codes.OTP_NOT_INSTALLED,
            )
        )
    if MIDDLEWARE_PATH in middleware and (
        OTP_MIDDLEWARE_PATH not in middleware
        or AUTH_MIDDLEWARE_PATH not in middleware
        or middleware.index(OTP_MIDDLEWARE_PATH) < middleware.index(AUTH_MIDDLEWARE_PATH)
    ):
        # SECURITY: step-up verifies the session through django-otp (``django_otp.login``); without its
        # middleware (or before the user is known) ``request.user.is_verified()`` does not exist, so the
        # portal's ``otp_required`` views cannot see a step-up, and the session keeps naming a removed device.
        errors.append(
            Error(
                f"{OTP_MIDDLEWARE_PATH} must be in MIDDLEWARE, after {AUTH_MIDDLEWARE_PATH}.",
                hint=f"Place it after AuthenticationMiddleware and before {MIDDLEWARE_PATH}: it tells the "
                "portal which factor verified the session (request.user.is_verified()) and drops the "
                "verification of a device that was removed.",
                id=Codes.OTP_MIDDLEWARE_MISSING,
            )
        )
    return errors


@register(Tags.security)
def check_geoip(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    path = app_settings.GEOIP_PATH
    if path is None:
        if settings.DEBUG:
            return []
        # Not an error (a location nobody knows is risk, never a refusal), but silent: every login then
        # scores ``unknown_network`` and steps up more often than it should.
        return [
            Warning(
                "AUTHGUARD_GEOIP_PATH is not set: every login's place and network are 'unknown'.",
                hint="Point AUTHGUARD_GEOIP_PATH (or GEOIP_PATH) at a folder with GeoLite2 City and ASN "
                "from MaxMind, kept up to date.",
                id=Codes.GEOIP_UNSET,
            )
        ]
    if not os.path.isdir(path):
        return [
            Warning(
                f"AUTHGUARD_GEOIP_PATH {path!r} is not a folder.",
                hint="Geolocation signals will report 'unknown', which steps more logins up.",
                id=Codes.GEOIP_PATH_MISSING,
            )
        ]
    names = [name for names in GEOIP_FILENAMES.values() for name in names]
    if not any(os.path.exists(os.path.join(path, name)) for name in names):
        return [
            Warning(
                f"AUTHGUARD_GEOIP_PATH {path!r} holds none of {', '.join(names)}.",
                hint="Download GeoLite2 City and ASN from MaxMind into that folder.",
                id=Codes.GEOIP_NO_DATABASES,
            )
        ]
    return []


@register(Tags.security)
def check_shared_cache(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """W004: throttles, velocity counters and spent challenges live in the default cache. A per-process
    cache counts per worker: with 4 workers, 73 of 100 guesses passed a limit of 20 (issue 14)."""
    if settings.DEBUG:
        return []  # runserver: one process
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    try:
        klass = import_string(backend)
    except ImportError:
        return []  # Django itself refuses to start with a cache it cannot import
    per_process = tuple(import_string(path) for path in PER_PROCESS_CACHES)
    if not (isinstance(klass, type) and issubclass(klass, per_process)):
        return []
    return [
        Warning(
            f"The default cache {backend} is not shared between processes: each worker counts login "
            "attempts, throttles and velocity on its own.",
            hint="Use a shared cache as the default: Redis (django.core.cache.backends.redis.RedisCache), "
            "Memcached, or the database cache.",
            id=Codes.CACHE_PER_PROCESS,
        )
    ]


# -- step-up and factors (owner: stepup, factors) ------------------------------------------------------------

STEP_UP_METHOD_NAMES = ("passkey", "totp", "recovery_code")
#: NIST SP 800-63B-4 AAL2 session limits (SHOULD): idle at most 1 hour, overall at most 24 hours.
AAL2_IDLE_SECONDS = 3600
AAL2_ABSOLUTE_SECONDS = 86400


def _whole_seconds(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@register(Tags.security)
def check_step_up(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """Session timeouts are positive whole seconds with idle <= absolute (warned beyond NIST AAL2); the
    step-up methods are a non-empty list of known methods."""
    messages: list[CheckMessage] = []
    idle = getattr(settings, "AUTHGUARD_SESSION_IDLE_SECONDS", AAL2_IDLE_SECONDS)
    absolute = getattr(settings, "AUTHGUARD_SESSION_ABSOLUTE_SECONDS", AAL2_ABSOLUTE_SECONDS)
    if not (_whole_seconds(idle) and _whole_seconds(absolute)) or idle > absolute:
        messages.append(
            Error(
                f"AUTHGUARD_SESSION_IDLE_SECONDS={idle!r} / AUTHGUARD_SESSION_ABSOLUTE_SECONDS={absolute!r} "
                "are invalid.",
                hint="Use positive whole seconds, the idle timeout no longer than the absolute one.",
                id=Codes.SESSION_TIMEOUTS_INVALID,
            )
        )
    elif idle > AAL2_IDLE_SECONDS or absolute > AAL2_ABSOLUTE_SECONDS:
        messages.append(
            Warning(
                "Session timeouts are longer than NIST SP 800-63B recommends for AAL2 (idle 1 h, 24 h).",
                hint="Lower AUTHGUARD_SESSION_IDLE_SECONDS / AUTHGUARD_SESSION_ABSOLUTE_SECONDS.",
                id=Codes.SESSION_TIMEOUTS_LONG,
            )
        )
    methods = getattr(settings, "AUTHGUARD_STEP_UP_METHODS", list(STEP_UP_METHOD_NAMES))
    if (
        not isinstance(methods, list | tuple)
        or not methods
        or not all(isinstance(m, str) and m in STEP_UP_METHOD_NAMES for m in methods)
    ):
        messages.append(
            Error(
                f"AUTHGUARD_STEP_UP_METHODS is invalid: {methods!r}.",
                hint='Use a non-empty list of "passkey", "totp" and "recovery_code", best first.',
                id=Codes.STEP_UP_METHODS_INVALID,
            )
        )
    return messages


#: NIST SP 800-63B-4 3.2.2: no more than 100 consecutive failed attempts on one authenticator.
NIST_FAILURE_LIMIT = 100
#: WebAuthn's recommended ceiling for a challenge's life (authguard caps the setting there too).
MAX_CHALLENGE_SECONDS = 300


def sqlite_without_immediate_transactions(databases: dict[str, dict[str, Any]]) -> list[str]:
    """The aliases of SQLite databases whose ``OPTIONS`` lack ``"transaction_mode": "IMMEDIATE"``."""
    return [
        alias
        for alias, database in databases.items()
        if str(database.get("ENGINE", "")).endswith("sqlite3")
        and str((database.get("OPTIONS") or {}).get("transaction_mode", "")).upper() != "IMMEDIATE"
    ]


@register(Tags.security)
def check_factors(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The factor settings are whole numbers in range, and the cache can mark WebAuthn challenges spent."""
    messages: list[CheckMessage] = []
    for name, low, high in (
        ("AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT", 1, NIST_FAILURE_LIMIT),
        ("AUTHGUARD_FACTOR_COOLING_OFF_HOURS", 0, 24 * 365),
        ("AUTHGUARD_WEBAUTHN_CHALLENGE_SECONDS", 30, MAX_CHALLENGE_SECONDS),
    ):
        if not hasattr(settings, name):
            continue
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            messages.append(
                Error(
                    f"{name} is invalid: {value!r}.",
                    hint=f"Use a whole number from {low} to {high}.",
                    id=Codes.FACTOR_SETTINGS_INVALID,
                )
            )
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    if backend.endswith(".DummyCache"):
        messages.append(
            Warning(
                "The default cache is a DummyCache: two parallel requests of one session could both use one "
                "WebAuthn challenge.",
                hint="Use Redis (or another shared cache) as the default cache.",
                id=Codes.CHALLENGE_CACHE_UNSAFE,
            )
        )
    for alias in sqlite_without_immediate_transactions(settings.DATABASES):
        # A code is still never accepted twice (verification locks the device row), but the losers of a
        # race answer 500 "database is locked" instead of waiting their turn (battery case 48).
        messages.append(
            Warning(
                f"The SQLite database {alias!r} does not use immediate transactions: parallel factor "
                'verifications fail with "database is locked".',
                hint='Set DATABASES[...]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}, '
                "or use PostgreSQL.",
                id=Codes.SQLITE_NOT_IMMEDIATE,
            )
        )
    return messages


# -- order guard (owner: orders) ---------------------------------------------------------------------------


ORDER_HOOKS = ("ORDER_PORTFOLIO", "ORDER_INSTRUMENT", "ORDER_EXECUTOR")


@register(Tags.security)
def check_order_guard(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The order rules import and accept their OPTIONS; the portal hooks are set and import; the
    confirmation settings make sense. Hooks are only required once the guard is configured at all."""
    from authguard.orders.rules import rules_problem

    errors: list[CheckMessage] = []
    raw = getattr(settings, "AUTHGUARD_ORDER_RULES", None)
    if raw is not None:
        problem = rules_problem(raw)
        if problem:
            errors.append(
                Error(
                    f"AUTHGUARD_ORDER_RULES is invalid: {problem}.",
                    hint='Use a list of {"NAME": "dotted.path.OrderRule", "OPTIONS": {...}}.',
                    id=Codes.ORDER_RULES_INVALID,
                )
            )
    configured = [name for name in ORDER_HOOKS if getattr(settings, "AUTHGUARD_" + name, None)]
    if configured:
        for name in ORDER_HOOKS:
            path = getattr(settings, "AUTHGUARD_" + name, None)
            if not path:
                errors.append(
                    Error(
                        f"AUTHGUARD_{name} is not set, but other order-guard hooks are.",
                        hint="The order guard needs all three hooks: portfolio, instrument and executor.",
                        id=Codes.ORDER_HOOK_MISSING,
                    )
                )
                continue
            try:
                target = import_string(path) if isinstance(path, str) else None
            except ImportError as exc:
                target, reason = None, str(exc)
            else:
                reason = "it must be a dotted path"
            if target is None or not _hook_shape_ok(name, target):
                why = reason if target is None else "wrong shape"
                errors.append(
                    Error(
                        f"AUTHGUARD_{name} {path!r} is not usable: {why}.",
                        hint="Portfolio and instrument hooks are callables; an executor has execute() and "
                        "release().",
                        id=Codes.ORDER_HOOK_INVALID,
                    )
                )
    methods = getattr(settings, "AUTHGUARD_CONFIRMATION_METHODS", ["passkey", "totp"])
    if not isinstance(methods, list | tuple) or not methods or not set(methods) <= {"passkey", "totp"}:
        errors.append(
            Error(
                f"AUTHGUARD_CONFIRMATION_METHODS is invalid: {methods!r}.",
                hint='Use a non-empty list of "passkey" and "totp".',
                id=Codes.CONFIRMATION_METHODS_INVALID,
            )
        )
    seconds = getattr(settings, "AUTHGUARD_CONFIRMATION_SECONDS", 300)
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 30 <= seconds <= 3600:
        errors.append(
            Error(
                f"AUTHGUARD_CONFIRMATION_SECONDS is invalid: {seconds!r}.",
                hint="Use a whole number of seconds from 30 to 3600 (default 300).",
                id=Codes.CONFIRMATION_SECONDS_INVALID,
            )
        )
    return errors


def _hook_shape_ok(name: str, target: Any) -> bool:
    if name != "ORDER_EXECUTOR":
        return callable(target)
    return callable(getattr(target, "execute", None)) and callable(getattr(target, "release", None))


# -- notifications, lockout, policy, preset (owner: ops, console) -------------------------------------------


#: django-otp plugins whose codes the JSDA 2025 preset refuses (mailed and SMS codes, static lists).
PRESET_REFUSED_OTP_APPS = (
    "django_otp.plugins.otp_email",
    "django_otp.plugins.otp_hotp",
    "django_otp.plugins.otp_static",
)


@register(Tags.security)
def check_preset(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The JSDA 2025 preset: a mistyped name, and settings it overrides or that work against it."""
    from authguard.conf import PRESET_JSDA_2025

    preset = getattr(settings, "AUTHGUARD_PRESET", None)
    if preset is None:
        return []
    if preset != PRESET_JSDA_2025:
        # SECURITY: a typo must not silently leave the regulatory preset off.
        return [
            Error(
                f"AUTHGUARD_PRESET is {preset!r}, which is not a preset.",
                hint=f'Use None or "{PRESET_JSDA_2025}".',
                id=Codes.PRESET_UNKNOWN,
            )
        ]
    messages: list[CheckMessage] = []
    for name in ("STEP_UP_METHODS", "CONFIRMATION_METHODS", "UNLOCK_METHODS"):
        value = getattr(settings, "AUTHGUARD_" + name, None)
        if value is not None and list(value) != ["passkey"]:
            messages.append(
                Warning(
                    f"AUTHGUARD_{name} is {list(value)!r}, but the {PRESET_JSDA_2025} preset accepts "
                    "passkeys only.",
                    hint=f"The preset uses ['passkey']; remove AUTHGUARD_{name} to silence this.",
                    id=Codes.PRESET_METHODS_OVERRIDDEN,
                )
            )
    if getattr(settings, "AUTHGUARD_LOCKOUT_FAILURES", 10) is None:
        messages.append(
            Warning(
                f"AUTHGUARD_LOCKOUT_FAILURES is None, but the {PRESET_JSDA_2025} preset requires "
                "automatic lock.",
                hint="The preset locks after 10 consecutive failures; set a number to choose another limit.",
                id=Codes.PRESET_LOCKOUT_OVERRIDDEN,
            )
        )
    installed = [app for app in PRESET_REFUSED_OTP_APPS if app in settings.INSTALLED_APPS]
    if installed:
        messages.append(
            Warning(
                f"{', '.join(installed)} installed with the {PRESET_JSDA_2025} preset.",
                hint="authguard refuses their codes for step-up and confirmations, but other django-otp "
                "views (an OTP admin login, say) would accept them: remove them unless something needs them.",
                id=Codes.PRESET_OTP_PLUGINS,
            )
        )
    return messages


@register(Tags.security)
def check_operations(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The account lock, the unlock methods, the notification and retention numbers, the language hook."""
    messages: list[CheckMessage] = []
    lockout = getattr(settings, "AUTHGUARD_LOCKOUT_FAILURES", 10)
    if lockout is not None and (isinstance(lockout, bool) or not isinstance(lockout, int) or lockout < 1):
        # SECURITY: a lock limit that cannot be read would leave accounts open to unlimited guessing.
        messages.append(
            Error(
                f"AUTHGUARD_LOCKOUT_FAILURES is {lockout!r}.",
                hint="Use a positive integer (consecutive failures that lock an account), or None: no lock.",
                id=Codes.LOCKOUT_INVALID,
            )
        )
    methods = getattr(settings, "AUTHGUARD_UNLOCK_METHODS", ["passkey"])
    if not isinstance(methods, list | tuple) or not set(methods) <= {"passkey", "totp"}:
        messages.append(
            Error(
                f"AUTHGUARD_UNLOCK_METHODS is {methods!r}.",
                hint='Use a list of "passkey" and/or "totp" (default ["passkey"]).',
                id=Codes.UNLOCK_METHODS_INVALID,
            )
        )
    for name in ("EVENT_RETENTION_DAYS", "NOTIFICATION_MAX_ATTEMPTS", "STEP_UP_FAILURE_BURST"):
        value = getattr(settings, "AUTHGUARD_" + name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            messages.append(
                Error(
                    f"AUTHGUARD_{name} is {value!r}.",
                    hint="Use a positive integer.",
                    id=Codes.OPERATIONS_NUMBER_INVALID,
                )
            )
    hook = getattr(settings, "AUTHGUARD_NOTIFICATION_LANGUAGE", None)
    if hook:
        try:
            if not callable(import_string(hook)):
                raise ImportError("not callable")
        except ImportError as exc:
            messages.append(
                Error(
                    f"AUTHGUARD_NOTIFICATION_LANGUAGE cannot be imported: {hook!r} ({exc}).",
                    hint="A dotted path to a function user -> language code or None.",
                    id=Codes.NOTIFICATION_LANGUAGE_INVALID,
                )
            )
    return messages


# -- staff console: passkey step-up and four eyes (owner: staff) ---------------------------------------------

STAFF_MIDDLEWARE_PATH = "authguard.console.guard.StaffPasskeyMiddleware"
FOUR_EYES_ACTIONS = frozenset(
    {
        "release_order",
        "revoke_factor",
        "unlock_account",
        "change_policy",
        "block_network",
        "end_network_block",
        "lock_account",
        "end_sessions",
        "force_password_reset",
    }
)


def four_eyes_problem(raw: Any) -> str | None:
    """Say what is wrong with ``AUTHGUARD_FOUR_EYES``, or None when it is valid."""
    if not isinstance(raw, dict):
        return "it must be a dict"
    unknown = set(raw) - {"ACTIONS", "MIN_SEVERITY", "EXPIRY_HOURS"}
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    actions = raw.get("ACTIONS", list(FOUR_EYES_ACTIONS))
    if not isinstance(actions, list | tuple) or not set(actions) <= FOUR_EYES_ACTIONS:
        return f"ACTIONS must be a list of {sorted(FOUR_EYES_ACTIONS)}"
    severity = raw.get("MIN_SEVERITY", 0)
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 4:
        return "MIN_SEVERITY must be an integer from 0 to 4"
    hours = raw.get("EXPIRY_HOURS", 24)
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
        return "EXPIRY_HOURS must be a positive integer"
    return None


@register(Tags.security)
def check_staff_console(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    problem = four_eyes_problem(getattr(settings, "AUTHGUARD_FOUR_EYES", {}))
    if problem:
        messages.append(
            Error(
                f"AUTHGUARD_FOUR_EYES is invalid: {problem}.",
                hint='Use {"ACTIONS": [...], "MIN_SEVERITY": 0..4, "EXPIRY_HOURS": int}.',
                id=Codes.FOUR_EYES_INVALID,
            )
        )
    for name in ("CONSOLE_PASSKEY_SECONDS", "CONSOLE_NEW_PASSKEY_HOURS"):
        value = getattr(settings, "AUTHGUARD_" + name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            messages.append(
                Error(
                    f"AUTHGUARD_{name} is {value!r}.",
                    hint="Use a whole number (seconds or hours), 0 or more.",
                    id=Codes.CONSOLE_SETTINGS_INVALID,
                )
            )
    from django.apps import apps

    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    if apps.is_installed("django.contrib.admin") and STAFF_MIDDLEWARE_PATH not in middleware:
        messages.append(
            Warning(
                "The security console (Django admin) opens without a passkey check of the staff session.",
                hint=f"Add {STAFF_MIDDLEWARE_PATH!r} to MIDDLEWARE after {MIDDLEWARE_PATH!r}.",
                id=Codes.STAFF_MIDDLEWARE_MISSING,
            )
        )
    elif (
        STAFF_MIDDLEWARE_PATH in middleware
        and MIDDLEWARE_PATH in middleware
        and middleware.index(STAFF_MIDDLEWARE_PATH) < middleware.index(MIDDLEWARE_PATH)
    ):
        messages.append(
            Warning(
                f"{STAFF_MIDDLEWARE_PATH} is placed before {MIDDLEWARE_PATH}.",
                hint="Place it after AuthguardMiddleware, which holds sessions waiting for step-up first.",
                id=Codes.STAFF_MIDDLEWARE_MISSING,
            )
        )
    return messages


# -- factor lifecycle: throttle and identity proofing (owner: factors; ids E100-E109) ------------------------

FACTOR_THROTTLE_INVALID = "authguard.E100"
IDENTITY_PROOFING_HOOK_INVALID = "authguard.E101"
FACTOR_THROTTLE_KEYS = frozenset({"session", "network", "account", "max_delay", "window"})


@register(Tags.security)
def check_factor_lifecycle(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """``AUTHGUARD_FACTOR_THROTTLE`` (positive whole numbers, known keys) and
    ``AUTHGUARD_IDENTITY_PROOFING_HOOK`` (an importable callable)."""
    messages: list[CheckMessage] = []
    raw = getattr(settings, "AUTHGUARD_FACTOR_THROTTLE", None)
    if raw is not None:
        bad = not isinstance(raw, dict) or any(
            key not in FACTOR_THROTTLE_KEYS
            or isinstance(value, bool)
            or not isinstance(value, int)
            or value < 1
            for key, value in raw.items()
        )
        if bad:
            messages.append(
                Error(
                    f"AUTHGUARD_FACTOR_THROTTLE is {raw!r}.",
                    hint=f"A dict of positive integers with keys among {sorted(FACTOR_THROTTLE_KEYS)}.",
                    id=FACTOR_THROTTLE_INVALID,
                )
            )
    hook = getattr(settings, "AUTHGUARD_IDENTITY_PROOFING_HOOK", None)
    if hook:
        try:
            if not callable(import_string(hook)):
                raise ImportError("not callable")
        except ImportError as exc:
            messages.append(
                Error(
                    f"AUTHGUARD_IDENTITY_PROOFING_HOOK cannot be imported: {hook!r} ({exc}).",
                    hint="A dotted path to a function (request, user) -> bool.",
                    id=IDENTITY_PROOFING_HOOK_INVALID,
                )
            )
    return messages


# -- sensitive actions (owner: actions) ------------------------------------------------------------------


@register(Tags.security)
def check_actions(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The action executor imports and has ``execute`` and ``release``; the methods, kinds and numbers make
    sense. No executor at all is fine for a portal that guards no sensitive action (``guard()`` then refuses
    with ``ActionsMisconfigured``)."""
    from authguard.models import ActionKind

    messages: list[CheckMessage] = []
    path = getattr(settings, "AUTHGUARD_ACTION_EXECUTOR", None)
    if path:
        try:
            target = import_string(path) if isinstance(path, str) else None
        except ImportError:
            target = None
        if target is None or not all(
            callable(getattr(target, name, None)) for name in ("execute", "release")
        ):
            messages.append(
                Error(
                    f"AUTHGUARD_ACTION_EXECUTOR {path!r} is not usable.",
                    hint="A dotted path to an object (or class) with execute(action) and "
                    "release(action, *, status).",
                    id=Codes.ACTION_EXECUTOR_INVALID,
                )
            )
    methods = getattr(settings, "AUTHGUARD_ACTION_CONFIRMATION_METHODS", ["passkey"])
    if not isinstance(methods, list | tuple) or not methods or not set(methods) <= {"passkey", "totp"}:
        messages.append(
            Error(
                f"AUTHGUARD_ACTION_CONFIRMATION_METHODS is invalid: {methods!r}.",
                hint='Use a non-empty list of "passkey" and "totp" (default ["passkey"]).',
                id=Codes.ACTION_METHODS_INVALID,
            )
        )
    kinds = getattr(settings, "AUTHGUARD_ACTION_GUARDED_KINDS", ActionKind.values)
    if not isinstance(kinds, list | tuple) or not set(kinds) <= set(ActionKind.values):
        messages.append(
            Error(
                f"AUTHGUARD_ACTION_GUARDED_KINDS is invalid: {kinds!r}.",
                hint=f"Use a list of {sorted(ActionKind.values)}.",
                id=Codes.ACTION_KINDS_INVALID,
            )
        )
    for name, low, high in (("ACTION_CONFIRMATION_SECONDS", 30, 3600), ("NEW_PAYEE_HOLD_HOURS", 0, 24 * 90)):
        value = getattr(settings, "AUTHGUARD_" + name, None)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            messages.append(
                Error(
                    f"AUTHGUARD_{name} is invalid: {value!r}.",
                    hint=f"Use a whole number from {low} to {high}.",
                    id=Codes.ACTION_NUMBER_INVALID,
                )
            )
    return messages


# -- locks, sessions, password reset (owner: sessions) -------------------------------------------------------

THROTTLE_BACKEND_PATH = "authguard.login.ThrottleBackend"


@register(Tags.security)
def check_locks(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The lock's failure window and the self-service unlock's waiting period are whole hours; the throttle
    backend comes first, so a locked account's password is never checked (same answer for right and wrong)."""
    messages: list[CheckMessage] = []
    for name, allow_none in (("LOCKOUT_FAILURE_WINDOW_HOURS", False), ("UNLOCK_WAIT_HOURS", True)):
        value = getattr(settings, "AUTHGUARD_" + name, 24)
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24 * 30:
            messages.append(
                Error(
                    f"AUTHGUARD_{name} is invalid: {value!r}.",
                    hint="Use a whole number of hours from 1 to 720"
                    + (" (or None to turn the self-service unlock with codes off)." if allow_none else "."),
                    id=Codes.LOCK_SETTINGS_INVALID,
                )
            )
    backends = list(getattr(settings, "AUTHENTICATION_BACKENDS", []))
    if not backends or backends[0] != THROTTLE_BACKEND_PATH:
        messages.append(
            Warning(
                f"{THROTTLE_BACKEND_PATH} is not the first of AUTHENTICATION_BACKENDS.",
                hint="Put it first: it refuses throttled attempts and locked accounts before any password is "
                "checked, so a locked account answers the same for a right and a wrong password.",
                id=Codes.THROTTLE_BACKEND_NOT_FIRST,
            )
        )
    if getattr(settings, "SESSION_ENGINE", "") == "django.contrib.sessions.backends.signed_cookies":
        messages.append(
            Warning(
                "Sessions stored in signed cookies cannot be ended from the server.",
                hint="A lock, a password reset or a re-score that ends a session would leave the cookie "
                "valid: use a server-side SESSION_ENGINE (db, cache or cached_db).",
                id=Codes.SESSIONS_CANNOT_BE_ENDED,
            )
        )
    return messages


# -- order guard v2: exposure over days (owner: orders) ------------------------------------------------------


@register(Tags.security)
def check_order_exposure(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """W120: a custom ``AUTHGUARD_ORDER_RULES`` without :class:`authguard.order_rules.Exposure` judges orders
    in 24-hour windows only, which a patient attacker walks around over days (issue 11)."""
    from authguard.orders.rules import Exposure, rules_problem

    raw = getattr(settings, "AUTHGUARD_ORDER_RULES", None)
    if raw is None or not raw or rules_problem(raw) is not None:
        return []  # the default list has it; an empty list turns the guard off; E020 reports a broken one
    from authguard.orders.rules import build_rules

    if any(isinstance(rule, Exposure) for rule in build_rules(raw)):
        return []
    return [
        Warning(
            "AUTHGUARD_ORDER_RULES has no authguard.order_rules.Exposure rule.",
            hint="Without it the order guard sums orders over 24 hours only: selling up to the limit every "
            "day, buying a thin stock first in chunks, or waiting for the window to roll all go through. Add "
            '{"NAME": "authguard.order_rules.Exposure", "OPTIONS": {}}.',
            id=Codes.ORDER_EXPOSURE_MISSING,
        )
    ]


# -- Device Bound Session Credentials (owner: dbsc) ----------------------------------------------------------

#: The keys of ``AUTHGUARD_DBSC`` and the accepted range of each number.
DBSC_NUMBER_RANGES = {
    "BOUND_COOKIE_AGE": (60, 3600),
    "CHALLENGE_SECONDS": (10, 600),
    "SESSION_DAYS": (1, 400),
}
DBSC_KEYS = frozenset({"ENABLED", "BOUND_COOKIE_NAME", *DBSC_NUMBER_RANGES})


def dbsc_problem(raw: Any) -> str | None:
    """What is wrong with an ``AUTHGUARD_DBSC`` value, or None (E160)."""
    if not isinstance(raw, dict):
        return "it must be a dict"
    unknown = sorted(str(key) for key in raw if key not in DBSC_KEYS)
    if unknown:
        return f"unknown keys {unknown}"
    if "ENABLED" in raw and not isinstance(raw["ENABLED"], bool):
        return "ENABLED must be True or False"
    for key, (low, high) in DBSC_NUMBER_RANGES.items():
        if key in raw and (
            isinstance(raw[key], bool) or not isinstance(raw[key], int) or not low <= raw[key] <= high
        ):
            return f"{key} must be a whole number from {low} to {high}"
    name = raw.get("BOUND_COOKIE_NAME", "authguard_bound")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        return "BOUND_COOKIE_NAME must be a non-empty cookie name of letters, digits, _ and -"
    taken = {
        app_settings.DEVICE_COOKIE_NAME,
        getattr(settings, "SESSION_COOKIE_NAME", "sessionid"),
        getattr(settings, "CSRF_COOKIE_NAME", "csrftoken"),
    }
    if name in taken:
        return "BOUND_COOKIE_NAME must differ from the device, session and CSRF cookie names"
    return None


@register(Tags.security)
def check_dbsc(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """E160: ``AUTHGUARD_DBSC`` is malformed. E161: DBSC is on but its endpoints are not mounted. W160: DBSC
    is on but session cookies may travel over plain HTTP (browsers run DBSC on HTTPS only)."""
    raw = getattr(settings, "AUTHGUARD_DBSC", {})
    problem = dbsc_problem(raw)
    if problem:
        return [
            Error(
                f"AUTHGUARD_DBSC is invalid: {problem}.",
                hint='Use {"ENABLED": bool, "BOUND_COOKIE_NAME": str, "BOUND_COOKIE_AGE": 60-3600, '
                '"CHALLENGE_SECONDS": 10-600, "SESSION_DAYS": 1-400}.',
                id=Codes.DBSC_SETTINGS_INVALID,
            )
        ]
    if not raw.get("ENABLED"):
        return []
    from django.urls import NoReverseMatch, reverse

    messages: list[CheckMessage] = []
    try:
        reverse("authguard:dbsc_register")
        reverse("authguard:dbsc_refresh")
    except NoReverseMatch:
        messages.append(
            Error(
                "AUTHGUARD_DBSC is on but the DBSC endpoints are not mounted.",
                hint="Include authguard.sessions.dbsc_views.urlpatterns in the authguard URL namespace.",
                id=Codes.DBSC_URLS_MISSING,
            )
        )
    if not getattr(settings, "SESSION_COOKIE_SECURE", False):
        messages.append(
            Warning(
                "AUTHGUARD_DBSC is on but SESSION_COOKIE_SECURE is False.",
                hint="Browsers run DBSC on HTTPS (and localhost) only; serve the portal over HTTPS.",
                id=Codes.DBSC_WITHOUT_HTTPS,
            )
        )
    return messages


# -- GeoIP files and retention (owner: scale) --

#: A GeoIP database built longer ago than this is stale: MaxMind ships City and ASN weekly, and networks
#: move (a stale database places new VPN ranges and re-allocated blocks wrongly).
GEOIP_MAX_AGE_DAYS = 30


@register(Tags.security)
def check_geoip_files(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The GeoIP databases this process serves from: missing, unreadable or older than 30 days.

    Complements :func:`check_geoip` (folder unset, missing or empty), which stays silent here. Reads the
    same status as the console (:func:`authguard.risk.context.geoip_status`), loading the databases if needed.
    """
    messages: list[CheckMessage] = []
    recheck = getattr(settings, "AUTHGUARD_GEOIP_RECHECK_SECONDS", 30)
    if isinstance(recheck, bool) or not isinstance(recheck, int | float) or recheck < 0:
        messages.append(
            Error(
                f"AUTHGUARD_GEOIP_RECHECK_SECONDS={recheck!r} is invalid.",
                hint="Seconds between two checks of the GeoIP files for a replacement: a number >= 0 "
                "(default 30).",
                id=Codes.GEOIP_FILE_SETTINGS_INVALID,
            )
        )
    snapshot_dir = getattr(settings, "AUTHGUARD_GEOIP_SNAPSHOT_DIR", None)
    if snapshot_dir is not None and not isinstance(snapshot_dir, str | os.PathLike):
        messages.append(
            Error(
                f"AUTHGUARD_GEOIP_SNAPSHOT_DIR={snapshot_dir!r} is not a path.",
                hint="A folder only this user can write to, or None for <tmp>/authguard-geoip-<uid>.",
                id=Codes.GEOIP_FILE_SETTINGS_INVALID,
            )
        )
    path = app_settings.GEOIP_PATH
    names = [name for group in GEOIP_FILENAMES.values() for name in group]
    if messages or not path or not os.path.isdir(path):
        return messages
    if not any(os.path.exists(os.path.join(path, name)) for name in names):
        return messages  # W002 says so
    from authguard.risk.context import REQUIRED_GEOIP_DATABASES, geoip_status

    for status in geoip_status(path):
        if not status.ok and not status.serving and status.error.startswith("missing"):
            if status.kind in REQUIRED_GEOIP_DATABASES:
                messages.append(
                    Warning(
                        f"The GeoIP {status.kind} database is missing from {path!r}.",
                        hint="Without it every login's "
                        + ("place" if status.kind == "city" else "network")
                        + " is 'unknown', which steps more logins up and hides travel and network hops. "
                        "Install it (GeoLite2 or GeoIP2) and keep it updated.",
                        id=Codes.GEOIP_DATABASE_MISSING,
                    )
                )
        elif not status.ok:
            messages.append(
                Warning(
                    f"The GeoIP {status.kind} database {status.error}.",
                    hint=(
                        "The copy loaded before keeps serving until a good file replaces it."
                        if status.serving
                        else "Its lookups answer 'unknown' until a good file replaces it."
                    )
                    + " Replace it atomically: write the new file next to it and rename it over.",
                    id=Codes.GEOIP_DATABASE_UNREADABLE,
                )
            )
        age = status.age_days
        if status.serving and age is not None and age > GEOIP_MAX_AGE_DAYS:
            built = status.built_at.date().isoformat() if status.built_at else "?"
            messages.append(
                Warning(
                    f"The GeoIP {status.kind} database {status.path} was built {int(age)} days ago "
                    f"({built}).",
                    hint=f"Update it at least every {GEOIP_MAX_AGE_DAYS} days (MaxMind's geoipupdate, "
                    "weekly); stale data places re-allocated networks and new VPN ranges wrongly.",
                    id=Codes.GEOIP_DATABASE_STALE,
                )
            )
    return messages


# -- rollout (report-only) and Celery (owner: integration; issue 14) -----------------------------------------


@register(Tags.security)
def check_report_only(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """``AUTHGUARD_REPORT_ONLY``: invalid (E170), refused under the JSDA preset (E171), and, loudly, in force
    (W170) on every ``check``, deploy or not, for as long as any part acts on nothing."""
    from authguard.conf import PRESET_ENFORCED_PARTS, REPORT_ONLY_PARTS

    raw = getattr(settings, "AUTHGUARD_REPORT_ONLY", ())
    messages: list[CheckMessage] = []
    if not isinstance(raw, list | tuple | set | frozenset) or not all(isinstance(p, str) for p in raw):
        return [
            Error(
                f"AUTHGUARD_REPORT_ONLY is {raw!r}; every part is enforced.",
                hint=f"A list of part names, some of {sorted(REPORT_ONLY_PARTS)} (default []).",
                id=Codes.REPORT_ONLY_INVALID,
            )
        ]
    unknown = sorted(set(raw) - REPORT_ONLY_PARTS)
    if unknown:
        messages.append(
            Error(
                f"AUTHGUARD_REPORT_ONLY names unknown parts {unknown}; they are enforced.",
                hint=f"Parts: {sorted(REPORT_ONLY_PARTS)}. Sensitive actions (withdrawals, bank accounts) "
                "have no report-only mode.",
                id=Codes.REPORT_ONLY_INVALID,
            )
        )
    refused = sorted(set(raw) & PRESET_ENFORCED_PARTS) if app_settings.JSDA else []
    if refused:
        messages.append(
            Error(
                f"AUTHGUARD_REPORT_ONLY lists {refused} under the jsda-2025 preset; they are enforced "
                "anyway.",
                hint="The JSDA 2025 guidelines make multi-factor authentication at sign-in mandatory: roll "
                "out in report-only mode before turning the preset on, or remove these parts.",
                id=Codes.REPORT_ONLY_UNDER_PRESET,
            )
        )
    parts = sorted(app_settings.REPORT_ONLY)
    if parts:
        # SECURITY: a trial mode that is forgotten is an open door; it is named on every check.
        messages.append(
            Warning(
                f"authguard runs REPORT-ONLY for {parts}: their decisions are recorded and logged, and "
                "nothing is enforced (no step-up, no refusal, no hold).",
                hint="For the first weeks of a rollout only (docs/integration.md). Remove the parts from "
                "AUTHGUARD_REPORT_ONLY to enforce them.",
                id=Codes.REPORT_ONLY_ON,
            )
        )
    return messages


def _shared_cache() -> bool:
    """Whether the default cache is shared between processes (a worker's heartbeat is visible here)."""
    from django.core.cache import caches
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache

    try:
        backend = caches["default"]
    except Exception:
        return False
    return not isinstance(backend, LocMemCache | DummyCache)


@register(Tags.security, deploy=True)
def check_celery(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """``check --deploy``: authguard's tasks have a broker (W171), publish through an app that reads Django's
    ``CELERY_*`` settings (W172), have their periodic tasks scheduled (W174), and beat and a worker ran the
    heartbeat recently (W173). Nothing to say when the tasks run eagerly (no broker, in-process)."""
    from authguard.celery import heartbeat_status, publishing_app

    try:
        app = publishing_app()
    except Exception as exc:  # a broken Celery configuration must not hide the other checks
        return [
            Warning(
                f"authguard could not read its Celery app: {exc!r}.",
                hint="See docs/integration.md, 'Celery'.",
                id=Codes.CELERY_APP_IGNORES_SETTINGS,
            )
        ]
    if app.eager:
        return []
    messages: list[CheckMessage] = []
    if app.settings_broker_url and app.broker_url != app.settings_broker_url:
        broker = app.broker_url or "Celery's default, amqp://localhost"
        messages.append(
            Warning(
                f"CELERY_BROKER_URL is set, but authguard's tasks publish through the Celery app "
                f"{app.main!r}, which does not read it (its broker: {broker}).",
                hint="Create the portal's app with authguard.celery.make_app('myportal') in "
                "myportal/celery.py and import it in myportal/__init__.py (docs/integration.md, 'Celery').",
                id=Codes.CELERY_APP_IGNORES_SETTINGS,
            )
        )
    elif not app.broker_url:
        messages.append(
            Warning(
                "authguard's Celery tasks are not run eagerly and no broker is set: notifications would be "
                "published to Celery's default amqp://localhost.",
                hint="Set CELERY_BROKER_URL (Redis: pip install 'authguard[redis]'), or "
                "CELERY_TASK_ALWAYS_EAGER = True on a single host without a broker.",
                id=Codes.CELERY_NO_BROKER,
            )
        )
    if not app.schedule_complete:
        messages.append(
            Warning(
                "The Celery app's beat_schedule lacks authguard's periodic tasks: notifications the broker "
                "missed are never retried, held orders and actions expire only when read, nothing is pruned.",
                hint="Use authguard.celery.make_app() or configure(app), or merge authguard.celery."
                "beat_schedule() into yours (a database scheduler: add its entries there and silence this).",
                id=Codes.CELERY_SCHEDULE_INCOMPLETE,
            )
        )
    if _shared_cache():
        status = heartbeat_status()
        if status.stale and not status.unknown:
            since = (
                f"for {status.minutes} minutes"
                if status.minutes is not None
                else "since the cache was last cleared (never, on a new install)"
            )
            messages.append(
                Warning(
                    f"No Celery worker has run authguard.heartbeat from beat {since}.",
                    hint="Run `celery -A myportal worker` and `celery -A myportal beat` "
                    "(docs/integration.md). Without them failed mails are never retried and nothing "
                    "expires or is pruned.",
                    id=Codes.CELERY_NO_HEARTBEAT,
                )
            )
    return messages
