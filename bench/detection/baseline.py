"""Baseline B0 of ``risk-model.md``: step up a login from a new device or a new country.

It reads the same GeoIP City database as the system under test, learns under the replay command's rule
(only from a correct password that was allowed, or stepped up and passed), and writes the replay's output
format, so the scorer treats it exactly like authguard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geoip2.database
import geoip2.errors

from authguard.testing import CITY_FILENAME


def run_b0(events: Sequence[dict], geoip: str | Path) -> list[dict]:
    """Score ``events`` (replay input lines, in order) with B0; returns the replay output lines."""
    path = Path(geoip) / CITY_FILENAME
    reader = geoip2.database.Reader(str(path)) if path.exists() else None
    countries: dict[str, str] = {}
    known_devices: dict[str, set[str]] = {}
    known_countries: dict[str, set[str]] = {}
    out = []
    try:
        for n, event in enumerate(events, start=1):
            ip, user = event["ip"], event["user"]
            if ip not in countries:
                try:
                    countries[ip] = (reader.city(ip).country.iso_code if reader else None) or "unknown"
                except geoip2.errors.AddressNotFoundError:
                    countries[ip] = "unknown"
            country, device = countries[ip], event["device_id"]
            reasons = []
            if device is None or device not in known_devices.get(user, ()):
                reasons.append("new_device")
            if country not in known_countries.get(user, ()):
                reasons.append("new_country")
            action = "step_up" if reasons else "allow"
            out.append(
                {"line": n, "user": user, "score": 50 * len(reasons), "action": action, "reasons": reasons}
            )
            if event["password_ok"] and (action == "allow" or event["second_factor_ok"]):
                if device is not None:
                    known_devices.setdefault(user, set()).add(device)
                known_countries.setdefault(user, set()).add(country)
    finally:
        if reader is not None:
            reader.close()
    return out
