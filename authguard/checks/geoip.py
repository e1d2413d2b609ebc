"""GeoIP: the folder of MaxMind databases, and the databases this process serves from."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from authguard.checks.codes import Codes
from authguard.conf import app_settings
from authguard.risk.geoip import DEFAULT_GEOIP_RECHECK_SECONDS, geoip_status
from authguard.risk.geoip_files import REQUIRED_GEOIP_DATABASES

GEOIP_FILENAMES = {
    "city": ("GeoIP2-City.mmdb", "GeoLite2-City.mmdb"),
    "asn": ("GeoLite2-ASN.mmdb", "GeoIP2-ISP.mmdb"),
    "anonymous": ("GeoIP2-Anonymous-IP.mmdb",),
}


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


#: A GeoIP database built longer ago than this is stale: MaxMind ships City and ASN weekly, and networks
#: move (a stale database places new VPN ranges and re-allocated blocks wrongly).
GEOIP_MAX_AGE_DAYS = 30


@register(Tags.security)
def check_geoip_files(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """The GeoIP databases this process serves from: missing, unreadable or older than 30 days.

    Complements :func:`check_geoip` (folder unset, missing or empty), which stays silent here. Reads the
    same status as the console (:func:`authguard.risk.geoip.geoip_status`), loading the databases if needed.
    """
    messages: list[CheckMessage] = []
    recheck = getattr(settings, "AUTHGUARD_GEOIP_RECHECK_SECONDS", DEFAULT_GEOIP_RECHECK_SECONDS)
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
