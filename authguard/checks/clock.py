"""Clocks: ``AUTHGUARD_CLOCK`` and this node's clock against the database's (:mod:`authguard.clock`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from authguard import clock
from authguard.checks.codes import Codes
from authguard.conf import app_settings

CLOCK_OPTIONS = ("measure_seconds", "tolerance_seconds", "max_round_trip_seconds")

#: The largest ``tolerance_seconds`` accepted. Two nodes within the tolerance are not corrected, so every
#: freshness and "from the future" rule accepts times up to twice it ahead (authguard.clock): a tolerance of a
#: few minutes would stretch a step-up's freshness, an idle limit and a token's lifetime by that much.
MAX_TOLERANCE_SECONDS = 60


@register(Tags.security)
def check_clock_settings(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """``AUTHGUARD_CLOCK`` holds only its three options, each a number >= 0, and ``tolerance_seconds`` at most
    :data:`MAX_TOLERANCE_SECONDS`."""
    given = getattr(settings, "AUTHGUARD_CLOCK", None) or {}
    wrong = (
        [repr(given)]
        if not isinstance(given, dict)
        else [
            f"{key}={value!r}"
            for key, value in given.items()
            if key not in CLOCK_OPTIONS
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < 0
            # SECURITY: twice the tolerance is accepted as "now" by every freshness rule.
            or (key == "tolerance_seconds" and value > MAX_TOLERANCE_SECONDS)
        ]
    )
    if not wrong:
        return []
    return [
        Error(
            f"AUTHGUARD_CLOCK is invalid: {', '.join(wrong)}.",
            hint="A dict of "
            + ", ".join(CLOCK_OPTIONS)
            + f", each a number of seconds >= 0; tolerance_seconds at most {MAX_TOLERANCE_SECONDS}.",
            id=Codes.CLOCK_SETTINGS_INVALID,
        )
    ]


@register(Tags.database)
def check_clock_skew(
    app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """This node's clock against the database server's (``manage.py check --database default``, and
    ``migrate``): a warning when they differ by more than the tolerance. One query, PostgreSQL only."""
    if not databases or "default" not in databases or check_clock_settings(None):
        return []
    measured = clock.measure()
    if measured is None or not measured.correction:
        return []
    return [
        Warning(
            f"This node's clock is {-measured.offset:+.1f} s off the database server's.",
            hint="authguard corrects its expiries, windows and elapsed times to the database's clock (above "
            f"{app_settings.CLOCK['tolerance_seconds']:g} s), but other code on this node does not: fix the "
            "node's time synchronisation (NTP/chrony).",
            id=Codes.CLOCK_SKEWED,
        )
    ]
