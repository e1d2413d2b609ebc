"""Typed, lazily read settings.

Every setting is read from ``django.conf.settings`` with the ``AUTHGUARD_`` prefix at the moment it is
used, so ``override_settings`` and the pytest ``settings`` fixture just work, and nothing is ever written
back into ``django.conf.settings``. Validation lives in :mod:`authguard.checks`, with stable ids.

Use it as ``from authguard.conf import app_settings`` and read ``app_settings.THRESHOLDS``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from authguard.choices import ActionKind

#: The built-in login risk signals, in the order their findings are reported.
DEFAULT_RISK_SIGNALS: list[dict[str, Any]] = [
    {"NAME": "authguard.risk_signals.NetworkLists", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.StatisticalModel", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.DeviceCookie", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.ImpossibleTravel", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.NetworkHop", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.AnonymousNetwork", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.Velocity", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.UnusualHour", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.AutomationClient", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.AccountContext", "OPTIONS": {}},
]

#: The order guard's default rules (``AUTHGUARD_ORDER_RULES``); stored policies name them by these paths.
DEFAULT_ORDER_RULES: list[dict[str, Any]] = [
    {"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.IlliquidBuy", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.Pivot", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.RiskySession", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.Campaign", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.Exposure", "OPTIONS": {}},
]

#: The value of ``AUTHGUARD_PRESET`` that turns on the JSDA 2025 guideline preset.
PRESET_JSDA_2025 = "jsda-2025"

#: ``AUTHGUARD_ORDER_PRICE_TOLERANCE``'s default: an order fills up to 1 % beyond the price the guard checked
#: (a buy above it, a sell below it). One tick of a TSE stock priced ¥100 or more is at most 1 % (¥1 ticks up
#: to ¥3,000), and a liquid stock moves less than that in the seconds between a quote and its fill; a gang's
#: lift or crash of a thin stock is tens of per cent or more (docs/order-guard.md).
DEFAULT_ORDER_PRICE_TOLERANCE = Decimal("0.01")
#: The largest tolerance ``authguard.E025`` accepts: beyond it the band is a market order in all but name.
MAX_ORDER_PRICE_TOLERANCE = Decimal("0.05")


def order_price_tolerance(raw: Any) -> Decimal | None:
    """``raw`` as a price tolerance (a number from 0 to :data:`MAX_ORDER_PRICE_TOLERANCE`), or ``None``."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    if not value.is_finite() or not 0 <= value <= MAX_ORDER_PRICE_TOLERANCE:
        return None
    return value


#: The parts of authguard that ``AUTHGUARD_REPORT_ONLY`` can run report-only (docs/integration.md): the
#: login decision, the step-up demanded after sign-in (re-scored sessions, ``@step_up_required``), and the
#: order guard. Sensitive actions (withdrawals, bank accounts) have no report-only mode: money leaving the
#: account is never waved through on a trial basis.
REPORT_ONLY_PARTS = frozenset({"login", "step_up", "orders"})
#: Parts the JSDA 2025 preset always enforces, whatever ``AUTHGUARD_REPORT_ONLY`` says: the guidelines make
#: multi-factor authentication at sign-in mandatory, so a "would have stepped up" is not an option there.
PRESET_ENFORCED_PARTS = frozenset({"login", "step_up"})

#: Score (0..100) at or above which a login is stepped up, and at or above which it is denied.
DEFAULT_THRESHOLDS: dict[str, int] = {"step_up": 40, "deny": 100}


class AppSettings:
    """The ``AUTHGUARD_*`` settings with their defaults, read on every access."""

    prefix = "AUTHGUARD_"

    def _setting(self, name: str, default: Any) -> Any:
        return getattr(settings, self.prefix + name, default)

    # -- request context ---------------------------------------------------------------------------
    @property
    def TRUSTED_PROXIES(self) -> list[str]:
        """CIDRs of reverse proxies whose ``X-Forwarded-For`` is believed. Empty: the header is ignored."""
        return list(self._setting("TRUSTED_PROXIES", []))

    @property
    def GEOIP_PATH(self) -> str | None:
        """Folder of MaxMind-format databases; falls back to Django's ``GEOIP_PATH``."""
        path = self._setting("GEOIP_PATH", None)
        if path is None:
            path = getattr(settings, "GEOIP_PATH", None)
        return str(path) if path else None

    @property
    def DEVICE_COOKIE_NAME(self) -> str:
        return self._setting("DEVICE_COOKIE_NAME", "authguard_device")

    @property
    def DEVICE_COOKIE_AGE(self) -> int:
        """Lifetime of the device cookie in seconds (default two years)."""
        return int(self._setting("DEVICE_COOKIE_AGE", 2 * 365 * 24 * 3600))

    @property
    def LEGACY_DEVICE_COOKIE(self) -> str | None:
        """Name of the portal's own long-lived device cookie, whose value is the ``device_id`` of the sign-in
        log given to ``import-history`` (default None: off). A browser whose authguard device cookie the
        account does not know yet, presenting this cookie with an id the import learned for that account, is
        judged as that imported device (docs/interfaces.md, "Operator commands besides the replay")."""
        return self._setting("LEGACY_DEVICE_COOKIE", None) or None

    # -- risk engine ---------------------------------------------------------------------------------
    @property
    def RISK_SIGNALS(self) -> list[dict[str, Any]]:
        """``[{"NAME": dotted.path, "OPTIONS": {...}}, ...]``, like ``AUTH_PASSWORD_VALIDATORS``."""
        return self._setting("RISK_SIGNALS", DEFAULT_RISK_SIGNALS)

    @property
    def THRESHOLDS(self) -> dict[str, int]:
        """``{"step_up": int, "deny": int}`` on the 0..100 score."""
        return {**DEFAULT_THRESHOLDS, **self._setting("THRESHOLDS", {})}

    @property
    def PROFILE_HORIZON_DAYS(self) -> int:
        """History older than this is forgotten by the user profile (Wiefling et al.: 6 months suffice)."""
        return int(self._setting("PROFILE_HORIZON_DAYS", 180))

    @property
    def NETWORK_ALLOWLIST(self) -> list[str]:
        """IP networks (CIDR), ``AS<number>`` and two-letter country codes that lower risk."""
        return list(self._setting("NETWORK_ALLOWLIST", []))

    @property
    def NETWORK_DENYLIST(self) -> list[str]:
        """IP networks (CIDR), ``AS<number>`` and two-letter country codes that are denied outright."""
        return list(self._setting("NETWORK_DENYLIST", []))

    @property
    def LOGIN_THROTTLE(self) -> dict[str, int]:
        """Failed logins in the last hour after which every attempt is refused with 429 ``throttled``."""
        return {"ip_failures": 20, "user_failures": 10, **self._setting("LOGIN_THROTTLE", {})}

    # -- faults: cache and broker outages (issue 15; docs/faults.md) ---------------------------------------
    @property
    def CIRCUIT_BREAKER(self) -> dict[str, float]:
        """``{"failures": 3, "reset_seconds": 30}``: after this many consecutive failures of the cache (or
        the broker) a process skips it for ``reset_seconds``, then tries one call
        (:mod:`authguard.resilience`)."""
        options: dict[str, float] = {"failures": 3, "reset_seconds": 30.0}
        options.update(self._setting("CIRCUIT_BREAKER", {}) or {})
        return options

    @property
    def COUNTERS_UNAVAILABLE_MAX_SCORE(self) -> int:
        """While the velocity or throttle counters cannot be read, a password login is allowed only from a
        known device and when its other signals add at most this much risk (default 0: none); every other
        login is stepped up, never allowed on the missing data (fail safe, not fail shut)."""
        return int(self._setting("COUNTERS_UNAVAILABLE_MAX_SCORE", 0))

    @property
    def BROKER_PUBLISH_SECONDS(self) -> float:
        """The longest a request waits for the Celery broker to take an outbox row (default 1 s); after that
        the row stays ``pending`` for the periodic retry task."""
        return float(self._setting("BROKER_PUBLISH_SECONDS", 1.0))

    @property
    def CLOCK(self) -> dict[str, float]:
        """``{"measure_seconds": 60, "tolerance_seconds": 2, "max_round_trip_seconds": 0.5}``: how often a
        process measures its clock against the database's, the offset below which no correction is made,
        and the slowest measurement still used (:mod:`authguard.clock`; docs/faults.md)."""
        options: dict[str, float] = {
            "measure_seconds": 60.0,
            "tolerance_seconds": 2.0,
            "max_round_trip_seconds": 0.5,
        }
        options.update(self._setting("CLOCK", {}) or {})
        return options

    @property
    def TRUSTED_DEVICE_DAYS(self) -> int:
        """How long a device cookie counts as remembered after a successful step-up."""
        return int(self._setting("TRUSTED_DEVICE_DAYS", 30))

    # -- WebAuthn relying party ----------------------------------------------------------------------
    @property
    def WEBAUTHN_RP_ID(self) -> str | None:
        return self._setting("WEBAUTHN_RP_ID", None)

    @property
    def WEBAUTHN_RP_NAME(self) -> str:
        return self._setting("WEBAUTHN_RP_NAME", "authguard")

    @property
    def WEBAUTHN_ORIGINS(self) -> list[str]:
        return list(self._setting("WEBAUTHN_ORIGINS", []))

    @property
    def WEBAUTHN_CHALLENGE_SECONDS(self) -> int:
        """How long a WebAuthn challenge stays usable (WebAuthn's recommended ceiling: 300 s)."""
        return min(int(self._setting("WEBAUTHN_CHALLENGE_SECONDS", 300)), 300)

    # -- preset: one setting for the JSDA's 2025 guidelines ----------------------------------------------
    @property
    def PRESET(self) -> str | None:
        """``None`` or ``"jsda-2025"``: passkeys only for step-up and confirmations, automatic lock."""
        return self._setting("PRESET", None)

    @property
    def JSDA(self) -> bool:
        """Whether the JSDA 2025 preset is on."""
        return self.PRESET == PRESET_JSDA_2025

    # -- rollout: report-only parts (owner: integration; issue 14) -----------------------------------------
    @property
    def REPORT_ONLY(self) -> frozenset[str]:
        """The parts (:data:`REPORT_ONLY_PARTS`) that decide and record but act on nothing (default none).

        SECURITY: fail closed. A value that is not a list, tuple or set of strings counts as empty (every
        part enforced; check ``authguard.E170`` says why), unknown names are ignored, and under the JSDA
        preset the parts of :data:`PRESET_ENFORCED_PARTS` are always enforced (check ``authguard.E171``).
        """
        raw = self._setting("REPORT_ONLY", ())
        if not isinstance(raw, list | tuple | set | frozenset):
            return frozenset()
        parts = frozenset(p for p in raw if isinstance(p, str)) & REPORT_ONLY_PARTS
        if self.JSDA:
            parts -= PRESET_ENFORCED_PARTS
        return parts

    def report_only(self, part: str) -> bool:
        """Whether ``part`` (``"login"``, ``"step_up"``, ``"orders"``) runs report-only now."""
        return part in self.REPORT_ONLY

    # -- population counts (issue 15) ------------------------------------------------------------------
    @property
    def POPULATION_FOLD_SECONDS(self) -> int:
        """How old the population counts scoring reads may get: logins append, a fold adds them once per
        period (default 900 s; 0 folds after every login). The replay folds on the same period of the
        log's own time (docs/operations-scale.md)."""
        return max(0, int(self._setting("POPULATION_FOLD_SECONDS", 900)))

    # -- Celery (owner: integration; issue 14) ------------------------------------------------------------
    @property
    def CELERY_HEARTBEAT_STALE_SECONDS(self) -> int:
        """The ``authguard.heartbeat`` task runs every minute from :func:`authguard.celery.beat_schedule`;
        older than this (default 600 s) and check ``authguard.W173`` says no beat or worker is running."""
        return int(self._setting("CELERY_HEARTBEAT_STALE_SECONDS", 600))

    # -- step-up and factors (owner: stepup, factors) ----------------------------------------------------
    @property
    def STEP_UP_METHODS(self) -> list[str]:
        """Second factors accepted at step-up, in preference order. The JSDA preset keeps only passkeys."""
        if self.JSDA:
            return ["passkey"]
        return list(self._setting("STEP_UP_METHODS", ["passkey", "totp", "recovery_code"]))

    @property
    def STEP_UP_FRESH_SECONDS(self) -> int:
        """How recent a strong verification must be to add, remove or replace a factor or change the email."""
        return int(self._setting("STEP_UP_FRESH_SECONDS", 300))

    @property
    def FACTOR_COOLING_OFF_HOURS(self) -> int:
        """Length of the account's cooling-off (docs/factor-lifecycle.md): after a factor is added, a
        recovery-code set minted or a contact changed, factors confirmed since cannot confirm orders or
        sensitive actions, unlock, remove older factors or satisfy ``step_up_required`` for this many
        hours."""
        return int(self._setting("FACTOR_COOLING_OFF_HOURS", 24))

    @property
    def UNVOUCHED_FACTOR_DAYS(self) -> int:
        """How long a factor enrolled from a session that proved no more than a password and a relayable
        code, on a device the account has not used for long, stays cooling off (docs/factor-lifecycle.md);
        0 switches the rule off (such a factor is treated as before: the account's cooling-off only)."""
        return int(self._setting("UNVOUCHED_FACTOR_DAYS", 14))

    @property
    def AUTHENTICATOR_FAILURE_LIMIT(self) -> int:
        """Consecutive failures after which an authenticator is disabled until re-bound (NIST SP 800-63B)."""
        return int(self._setting("AUTHENTICATOR_FAILURE_LIMIT", 100))

    @property
    def SESSION_IDLE_SECONDS(self) -> int:
        """A signed-in session unused for this long is signed out (NIST SP 800-63B AAL2: at most 1 hour)."""
        return int(self._setting("SESSION_IDLE_SECONDS", 3600))

    @property
    def SESSION_ABSOLUTE_SECONDS(self) -> int:
        """A signed-in session older than this is signed out, however active (AAL2: at most 24 hours)."""
        return int(self._setting("SESSION_ABSOLUTE_SECONDS", 86400))

    @property
    def LOGOUT_URL(self) -> str:
        """Where the "sign out" buttons of authguard's pages post to: a URL name or a path (default
        ``"logout"``, Django's usual name). A name that resolves to no URL leaves the button out (logged);
        a session waiting for step-up may always reach this URL."""
        return str(self._setting("LOGOUT_URL", "logout") or "")

    @property
    def EMAIL_CHANGE(self) -> bool:
        """Whether authguard's own e-mail change (security page and ``api/email``) is on (default). Off: its
        pages and endpoints refuse with a message (``email_change_off``), for portals that change the address
        their own way."""
        return bool(self._setting("EMAIL_CHANGE", True))

    @property
    def PENDING_ALLOWED_VIEWS(self) -> list[str]:
        """URL names (``namespace:name``) a session waiting for step-up may reach besides authguard's own
        step-up pages and API: signing out and switching language. Portals add their own logout API here."""
        return list(self._setting("PENDING_ALLOWED_VIEWS", ["logout", "set_language"]))

    # -- order guard (owner: orders) -----------------------------------------------------------------------
    @property
    def CONFIRMATION_METHODS(self) -> list[str]:
        """Factors that may confirm a held order. A customer who has a passkey must use it (orders.py)."""
        if self.JSDA:
            return ["passkey"]
        return list(self._setting("CONFIRMATION_METHODS", ["passkey", "totp"]))

    @property
    def CONFIRMATION_TOTP_WITH_PASSKEY(self) -> bool:
        """Whether a customer who has a passkey may still confirm with TOTP (default no: passkey only)."""
        return bool(self._setting("CONFIRMATION_TOTP_WITH_PASSKEY", False)) and not self.JSDA

    @property
    def CONFIRMATION_SECONDS(self) -> int:
        """How long a held order waits for its confirmation before it expires (default 5 minutes)."""
        return int(self._setting("CONFIRMATION_SECONDS", 300))

    @property
    def ORDER_RULES(self) -> list[dict[str, Any]]:
        """The order guard's rules, ``[{"NAME": dotted.path, "OPTIONS": {...}}]`` like the risk signals."""
        return self._setting("ORDER_RULES", DEFAULT_ORDER_RULES)

    @property
    def ORDER_PRICE_TOLERANCE(self) -> Decimal:
        """How far beyond the checked price an order may fill, as a share of it (default 0.01: 1 %): a buy at
        most ``limit x (1 + tolerance)``, a sell at least ``limit x (1 - tolerance)``
        (:meth:`authguard.orders.approval.Approval.fills_at`). ``authguard.E025`` checks it."""
        tolerance = order_price_tolerance(
            self._setting("ORDER_PRICE_TOLERANCE", DEFAULT_ORDER_PRICE_TOLERANCE)
        )
        # SECURITY: an invalid value (E025) fills at the exact checked price, never with a wider band.
        return Decimal(0) if tolerance is None else tolerance

    @property
    def ORDER_PORTFOLIO(self) -> str | None:
        """Dotted path of the portal's ``portfolio(user) -> PortfolioSnapshot`` hook."""
        return self._setting("ORDER_PORTFOLIO", None)

    @property
    def ORDER_INSTRUMENT(self) -> str | None:
        """Dotted path of the portal's ``instrument(symbol) -> InstrumentInfo | None`` hook."""
        return self._setting("ORDER_INSTRUMENT", None)

    @property
    def ORDER_EXECUTOR(self) -> str | None:
        """Dotted path of the portal's executor: ``execute(held) -> str``, ``release(held, status=...)``."""
        return self._setting("ORDER_EXECUTOR", None)

    # -- notifications, lockout, operations (owner: ops, console) ---------------------------------------
    @property
    def LOCKOUT_FAILURES(self) -> int | None:
        """Consecutive authentication failures that lock an account (``None``: off; the preset forces 10)."""
        value = self._setting("LOCKOUT_FAILURES", 10)
        if value is None and self.JSDA:
            return 10
        return None if value is None else int(value)

    @property
    def UNLOCK_METHODS(self) -> list[str]:
        """Strong factors whose fresh verification lets a locked customer unlock their own account."""
        if self.JSDA:
            return ["passkey"]
        return list(self._setting("UNLOCK_METHODS", ["passkey"]))

    @property
    def STEP_UP_FAILURE_BURST(self) -> int:
        """Failed second-factor attempts within an hour after which the customer is warned (once an hour)."""
        return int(self._setting("STEP_UP_FAILURE_BURST", 3))

    @property
    def NOTIFICATION_MAX_ATTEMPTS(self) -> int:
        """Sending attempts after which an outbox row is given up (``failed``, logged as an error)."""
        return int(self._setting("NOTIFICATION_MAX_ATTEMPTS", 12))

    @property
    def NOTIFICATION_STAFF_PERMISSION(self) -> str:
        """Staff users with this permission receive security alerts (none: ``settings.ADMINS``)."""
        return self._setting("NOTIFICATION_STAFF_PERMISSION", "authguard.view_loginevent")

    @property
    def EVENT_RETENTION_DAYS(self) -> int:
        """Login events (and sent notifications) older than this are deleted by the periodic prune task."""
        return int(self._setting("EVENT_RETENTION_DAYS", 400))

    # -- locks, sessions, password reset (owner: sessions) ----------------------------------------------
    @property
    def LOCKOUT_FAILURE_WINDOW_HOURS(self) -> int:
        """A run of failures restarts when its last failure is older than this (default 24 hours).

        Only a passkey (or an unlock) resets the run early; a password-only sign-in never does, so a thief
        with the password cannot keep guessing second factors by signing in again between guesses.
        """
        return int(self._setting("LOCKOUT_FAILURE_WINDOW_HOURS", 24))

    @property
    def UNLOCK_WAIT_HOURS(self) -> int | None:
        """The waiting period of the self-service unlock with an authenticator code plus a recovery code
        (default 24 hours; the customer is notified and can cancel meanwhile). ``None`` turns that way back
        off (the passkey and the desk remain); the JSDA preset turns it off."""
        value = self._setting("UNLOCK_WAIT_HOURS", 24)
        if value is None or self.JSDA:
            return None
        return int(value)

    # -- factor lifecycle (owner: factors; issue 10) -------------------------------------------------------
    @property
    def FACTOR_THROTTLE(self) -> dict[str, int]:
        """Back-off of second-factor failures from sessions that could not be the customer's: free failures
        per ``session``, ``network`` (IPv4 /24, IPv6 /56) and ``account`` before each further one doubles the
        wait, up to ``max_delay`` seconds; counts are forgotten after ``window`` seconds without a failure."""
        options = {"session": 5, "network": 10, "account": 10, "max_delay": 3600, "window": 86400}
        options.update(self._setting("FACTOR_THROTTLE", {}) or {})
        return {key: int(value) for key, value in options.items()}

    @property
    def IDENTITY_PROOFING_HOOK(self) -> str | None:
        """Dotted path of ``hook(request, user) -> bool``: the portal's identity proofing (eKYC, a desk call)
        vouches for this session, so a disabled factor may be bound again. ``None``: only another passkey
        or the desk re-binds a disabled factor."""
        value = self._setting("IDENTITY_PROOFING_HOOK", None)
        return str(value) if value else None

    # -- staff console: passkey step-up and four eyes (owner: staff; issue 10) ----------------------------
    @property
    def CONSOLE_PASSKEY_SECONDS(self) -> int:
        """How long a staff session's passkey verification opens the security console (Django admin) before
        the staff member must touch their passkey again (default 4 hours)."""
        return int(self._setting("CONSOLE_PASSKEY_SECONDS", 4 * 3600))

    @property
    def CONSOLE_NEW_PASSKEY_HOURS(self) -> int:
        """A staff passkey registered less than this many hours ago does not open the console yet (default
        24): a thief who phished a staff password and registered his own passkey waits while the staff
        member is told."""
        return int(self._setting("CONSOLE_NEW_PASSKEY_HOURS", 24))

    @property
    def FOUR_EYES(self) -> dict[str, Any]:
        """Staff actions that need a second staff member's approval: ``{"ACTIONS": [...], "MIN_SEVERITY":
        int, "EXPIRY_HOURS": int}``. ``ACTIONS`` names any of ``release_order``, ``revoke_factor``,
        ``unlock_account``, ``change_policy``, ``block_network``, ``end_network_block``, ``lock_account``,
        ``end_sessions``, ``force_password_reset`` (default the first six: what gives access back or acts
        beyond one account; the three containment actions on one account only take access away, and minutes
        matter during an attack); an action of at least ``MIN_SEVERITY`` (1 low .. 4 critical, as held
        orders; default 0: every one) needs the approval; an unapproved request expires after
        ``EXPIRY_HOURS`` (default 24)."""
        options: dict[str, Any] = {
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
        options.update(self._setting("FOUR_EYES", {}) or {})
        return options

    @property
    def NETWORK_BLOCK_MAX_HOURS(self) -> int:
        """The longest network block the security console accepts, in hours (default 168, a week); a longer
        need is a deny-list entry in the settings, reviewed like any other change."""
        try:
            return max(1, int(self._setting("NETWORK_BLOCK_MAX_HOURS", 168)))
        except (TypeError, ValueError):
            return 168

    # -- sensitive actions: withdrawals, bank accounts, transfers out, contacts (owner: actions; issue 11)
    @property
    def ACTION_EXECUTOR(self) -> str | None:
        """Dotted path of the portal's action executor: ``execute(action) -> str`` carries out a confirmed
        held action from its stored canonical form; ``release(action, *, status)`` closes one that never
        will be."""
        value = self._setting("ACTION_EXECUTOR", None)
        return str(value) if value else None

    @property
    def ACTION_CONFIRMATION_METHODS(self) -> list[str]:
        """Factors that may confirm a sensitive action (default a passkey only). ``"totp"`` added here lets a
        customer *without* a usable passkey confirm with a code; the JSDA preset keeps only passkeys."""
        if self.JSDA:
            return ["passkey"]
        return list(self._setting("ACTION_CONFIRMATION_METHODS", ["passkey"]))

    @property
    def ACTION_CONFIRMATION_SECONDS(self) -> int:
        """How long a held sensitive action waits for its confirmation before it expires (default 300 s)."""
        return int(self._setting("ACTION_CONFIRMATION_SECONDS", 300))

    @property
    def ACTION_GUARDED_KINDS(self) -> list[str]:
        """Kinds of sensitive action held for confirmation (default all: ``withdrawal``,
        ``bank_account_add``, ``bank_account_change``, ``securities_transfer_out``, ``contact_change``).
        The JSDA preset guards all of them."""
        if self.JSDA:
            return list(ActionKind.values)
        return list(self._setting("ACTION_GUARDED_KINDS", ActionKind.values))

    @property
    def NEW_PAYEE_HOLD_HOURS(self) -> int:
        """A bank account registered or changed less than this long ago receives no money, whatever is
        confirmed (default 72 hours)."""
        return int(self._setting("NEW_PAYEE_HOLD_HOURS", 72))

    # -- Device Bound Session Credentials (owner: dbsc; issue 13) -----------------------------------------
    @property
    def DBSC(self) -> dict[str, Any]:
        """Device Bound Session Credentials (docs/dbsc.md), off by default: ``{"ENABLED": bool,
        "BOUND_COOKIE_NAME": str, "BOUND_COOKIE_AGE": seconds (default 600: the short-lived bound cookie),
        "CHALLENGE_SECONDS": seconds a registration or refresh challenge stays usable (default 300),
        "SESSION_DAYS": days a device binding lasts after its last proof (default 400, Chrome's longest
        cookie lifetime)}``. Validated by check E160."""
        options: dict[str, Any] = {
            "ENABLED": False,
            "BOUND_COOKIE_NAME": "authguard_bound",
            "BOUND_COOKIE_AGE": 600,
            "CHALLENGE_SECONDS": 300,
            "SESSION_DAYS": 400,
        }
        options.update(self._setting("DBSC", {}) or {})
        return options


app_settings = AppSettings()
