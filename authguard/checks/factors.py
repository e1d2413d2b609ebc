"""Second factors and step-up: WebAuthn, session timeouts, step-up methods, factor limits, the factor
lifecycle's throttle and identity-proofing hook."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from authguard.checks.base import conf_defaults, hook_import_error
from authguard.checks.codes import Codes
from authguard.conf import app_settings
from authguard.validators import origins_problem, sqlite_without_immediate_transactions


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
    problem = origins_problem(origins, rp_id if isinstance(rp_id, str) else None)
    if problem:
        errors.append(
            Error(
                f"AUTHGUARD_WEBAUTHN_ORIGINS is invalid: {problem}.",
                hint='List the exact origins, e.g. ["https://broker.example.jp"] (http only for localhost).',
                id=Codes.WEBAUTHN_ORIGINS_INVALID,
            )
        )
    return errors


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
    idle = getattr(settings, "AUTHGUARD_SESSION_IDLE_SECONDS", conf_defaults.SESSION_IDLE_SECONDS)
    absolute = getattr(settings, "AUTHGUARD_SESSION_ABSOLUTE_SECONDS", conf_defaults.SESSION_ABSOLUTE_SECONDS)
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
    methods = getattr(settings, "AUTHGUARD_STEP_UP_METHODS", conf_defaults.STEP_UP_METHODS)
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


@register(Tags.security)
def check_factors(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The factor settings are whole numbers in range, and the cache can mark WebAuthn challenges spent."""
    messages: list[CheckMessage] = []
    for name, low, high in (
        ("AUTHGUARD_AUTHENTICATOR_FAILURE_LIMIT", 1, NIST_FAILURE_LIMIT),
        ("AUTHGUARD_FACTOR_COOLING_OFF_HOURS", 0, 24 * 365),
        ("AUTHGUARD_UNVOUCHED_FACTOR_DAYS", 0, 365),
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
                    id=Codes.FACTOR_THROTTLE_INVALID,
                )
            )
    hook = getattr(settings, "AUTHGUARD_IDENTITY_PROOFING_HOOK", None)
    if hook:
        exc = hook_import_error(hook)
        if exc is not None:
            messages.append(
                Error(
                    f"AUTHGUARD_IDENTITY_PROOFING_HOOK cannot be imported: {hook!r} ({exc}).",
                    hint="A dotted path to a function (request, user) -> bool.",
                    id=Codes.IDENTITY_PROOFING_HOOK_INVALID,
                )
            )
    return messages


@register(Tags.security, Tags.urls)
def check_password_change_view(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The URL named ``password_change`` (Django's ``auth.urls`` name) is not Django's own view unguarded.

    A password change ends the customer's other sessions and revokes her factors still cooling off
    (:func:`authguard.login.flow.password_changed`, whichever view saved the password), so it must be her
    decision: :class:`authguard.views.PasswordChangeView` first asks for a fresh verification with a factor
    she had before any cooling-off. Django's own view lets a password-only session change it.
    """
    # Deferred: checks register before the URLconf and the views (which import models) may load.
    from django.contrib.auth.views import PasswordChangeView as DjangoPasswordChangeView

    from authguard.views import PasswordChangeView  # deferred, as above

    if not _djangos_own_view("password_change", DjangoPasswordChangeView, PasswordChangeView):
        return []
    return [
        Warning(
            "The password_change URL is Django's PasswordChangeView: a session signed in with the "
            "password alone can change the password, ending the customer's sessions.",
            hint='Route it to authguard.views.PasswordChangeView: path("password/change/", '
            'authguard.views.PasswordChangeView.as_view(), name="password_change").',
            id=Codes.PASSWORD_CHANGE_UNGUARDED,
        )
    ]


@register(Tags.security, Tags.urls)
def check_password_reset_view(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The URL named ``password_reset`` is not Django's own view: during the cooling-off of an e-mail change
    Django's form mails the reset link to the new address only (maybe the thief's), and the customer's
    request with her own address finds nothing (:mod:`authguard.login.password_reset`)."""
    from django.contrib.auth.views import PasswordResetView as DjangoPasswordResetView  # deferred, as above

    from authguard.login.password_reset import PasswordResetForm  # deferred, as above

    view_class = _djangos_own_view("password_reset", DjangoPasswordResetView, None)
    if view_class is None or issubclass(getattr(view_class, "form_class", object), PasswordResetForm):
        return []
    return [
        Warning(
            "The password_reset URL uses Django's PasswordResetForm: after an e-mail change the reset link "
            "goes to the new address only, and the customer's own address finds nothing.",
            hint="Route it to authguard.login.password_reset.PasswordResetView (or give your view "
            "form_class=authguard.login.password_reset.PasswordResetForm).",
            id=Codes.PASSWORD_RESET_UNAWARE,
        )
    ]


def _djangos_own_view(url_name: str, django_view: type, ours: type | None) -> type | None:
    """The view class of ``url_name`` when it is (a subclass of) ``django_view`` and not of ``ours``."""
    from django.urls import resolve, reverse  # deferred: the URLconf may not load before the checks

    try:
        view = resolve(reverse(url_name)).func
    except Exception:  # no such URL, or a URLconf that does not load (its own error)
        return None
    view_class = getattr(view, "view_class", None)
    if not isinstance(view_class, type) or not issubclass(view_class, django_view):
        return None
    if ours is not None and issubclass(view_class, ours):
        return None
    return view_class
