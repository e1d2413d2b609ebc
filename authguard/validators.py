"""Pure validators of authguard's settings and stored values, shared by the system checks and the code that
accepts the same values at run time (the policy editor, the replay, the console).

Each ``*_problem`` function says what is wrong in a sentence fragment, or returns None when the value is
valid, so a value the settings would refuse is refused in the same words everywhere.

Layer L0: it imports only Django, the standard library and :mod:`authguard.conf`.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps

from authguard.conf import DEFAULT_THRESHOLDS

__all__ = [
    "OTP_APPS",
    "invalid_networks",
    "missing_otp_apps",
    "network_list_entry_ok",
    "origins_problem",
    "sqlite_without_immediate_transactions",
    "thresholds_problem",
]

#: django-otp's apps: authguard's models, factors and console import their models (``TOTPDevice``).
OTP_APPS = ("django_otp", "django_otp.plugins.otp_totp")


#: Unicode categories never shown to a customer: controls, format characters (bidi overrides, zero-width
#: joiners) and lone surrogates.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
#: Letters every renderer draws as a blank (the Hangul fillers, letters of no sound): shown as a space.
#: "0120<U+3164>987<U+3164>654" is "0120 987 654" on her screen (red team, round seventy-six).
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
#: Unicode's default ignorable code points that are no format characters (the combining grapheme joiner,
#: Khmer's inherent vowels, variation selectors, the reserved ones): drawn as nothing, so never shown.
_IGNORABLE = (
    (0x034F, 0x034F),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2060, 0x206F),
    (0xFE00, 0xFE0F),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _drawn_as_nothing(char: str) -> bool:
    code = ord(char)
    return unicodedata.category(char) in INVISIBLE_CATEGORIES or any(
        low <= code <= high for low, high in _IGNORABLE
    )


def visible_text(value: object) -> str:
    """``value`` as one line of NFC text without control, format or other default ignorable characters, its
    blank letters (:data:`BLANK_LETTERS`) spaces, whitespace collapsed.

    SECURITY: a name someone else chose (a passkey's, a device's) is shown to the customer on her security
    page and in her mail; a right-to-left override or a zero-width character would make it read as one of
    hers (red team, 2026-12-05).
    """
    text = unicodedata.normalize("NFC", str(value))
    text = "".join(" " if c in BLANK_LETTERS else c for c in text if c.isspace() or not _drawn_as_nothing(c))
    return " ".join(text.split())


def missing_otp_apps() -> list[str]:
    """The django-otp apps authguard needs that are not installed (E007, and the console's import guard)."""
    return [app for app in OTP_APPS if not apps.is_installed(app)]


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


def invalid_networks(entries: Iterable[Any]) -> list[str]:
    """The ``repr`` of every entry that is not an IP network (CIDR or address)."""
    bad = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError):
            bad.append(repr(entry))
    return bad


def network_list_entry_ok(entry: Any) -> bool:
    """Whether ``entry`` is a valid allow/deny-list entry: a CIDR, ``AS<number>`` or a country code."""
    if not isinstance(entry, str):
        return False
    if entry.upper().startswith("AS") and entry[2:].isascii() and entry[2:].isdigit():
        return True
    if len(entry) == 2 and entry.isalpha():
        return True
    return not invalid_networks([entry])


def origins_problem(origins: Any, rp_id: str | None) -> str | None:
    """Say what is wrong with a list of WebAuthn origins for the RP ID ``rp_id``, or None when valid."""
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


def sqlite_without_immediate_transactions(databases: dict[str, dict[str, Any]]) -> list[str]:
    """The aliases of SQLite databases whose ``OPTIONS`` lack ``"transaction_mode": "IMMEDIATE"``."""
    return [
        alias
        for alias, database in databases.items()
        if str(database.get("ENGINE", "")).endswith("sqlite3")
        and str((database.get("OPTIONS") or {}).get("transaction_mode", "")).upper() != "IMMEDIATE"
    ]
