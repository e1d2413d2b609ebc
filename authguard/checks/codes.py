"""The stable ids of authguard's system checks (``authguard.E0xx`` errors, ``authguard.W0xx`` warnings)."""

from __future__ import annotations

__all__ = ["FACTOR_THROTTLE_INVALID", "IDENTITY_PROOFING_HOOK_INVALID", "Codes"]


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
    PASSWORD_CHANGE_UNGUARDED = "authguard.W012"
    PASSWORD_RESET_UNAWARE = "authguard.W013"
    SESSION_TIMEOUTS_INVALID = "authguard.E018"
    STEP_UP_METHODS_INVALID = "authguard.E019"
    SESSION_TIMEOUTS_LONG = "authguard.W018"
    # -- order guard (owner: orders) --
    ORDER_RULES_INVALID = "authguard.E020"
    ORDER_HOOK_MISSING = "authguard.E021"
    ORDER_HOOK_INVALID = "authguard.E022"
    CONFIRMATION_METHODS_INVALID = "authguard.E023"
    CONFIRMATION_SECONDS_INVALID = "authguard.E024"
    ORDER_PRICE_TOLERANCE_INVALID = "authguard.E025"
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
    DRF_UNJUDGED_AUTHENTICATION = "authguard.W112"
    PAGE_CACHE_BELOW_AUTHGUARD = "authguard.W113"
    # -- order guard v2: exposure over days (owner: orders): E120-E129 / W120-W129 --
    ORDER_EXPOSURE_MISSING = "authguard.W120"
    # Logged at run time, once per process (not by ``check``): an instrument without a long-run daily value.
    ORDER_BASELINE_MISSING = "authguard.W121"
    # Logged at run time, once per process: a ``place`` callable that cannot take the guard's approval.
    ORDER_PLACE_WITHOUT_APPROVAL = "authguard.W122"
    # Logged at run time, once per process: portfolio holdings without their instrument's data.
    ORDER_HOLDING_INSTRUMENT_MISSING = "authguard.W123"
    # Logged at run time, once per process: an instrument without a long-run price (reference_price).
    ORDER_REFERENCE_PRICE_MISSING = "authguard.W124"
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
    AXES_AFTER_THROTTLE_BACKEND = "authguard.W175"
    # -- clocks (owner: faults; issue 15): E180-E189 / W180-W189 --
    CLOCK_SETTINGS_INVALID = "authguard.E180"
    CLOCK_SKEWED = "authguard.W180"
    # -- factor lifecycle: throttle and identity proofing (owner: factors): E100-E109 --
    FACTOR_THROTTLE_INVALID = "authguard.E100"
    IDENTITY_PROOFING_HOOK_INVALID = "authguard.E101"


# Declared outside Codes when they were added (so the registry, and the guide's check of it, missed them);
# kept importable under these names.
FACTOR_THROTTLE_INVALID = Codes.FACTOR_THROTTLE_INVALID
IDENTITY_PROOFING_HOOK_INVALID = Codes.IDENTITY_PROOFING_HOOK_INVALID
