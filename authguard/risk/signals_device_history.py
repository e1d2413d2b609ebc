"""What an account's history says about its browsers: whether a login's browser is new to it, whether its
devices all came from ``import-history``, how often one browser of it lost its cookie, and where the client of
an account whose sign-ins never carried a device cookie (an app without a cookie jar) was used.

Read by the device cookie signal (:class:`~authguard.risk.signals_device.DeviceCookie`) and the statistical
model (:mod:`authguard.risk.signals_profile`), which must agree on what a new browser is.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from django.utils.translation import gettext_lazy as _

from authguard.conf import app_settings
from authguard.risk.findings import Finding
from authguard.risk.history import Evidence
from authguard.risk.profile import Profile
from authguard.risk.signals_network import apart_km
from authguard.risk.useragent import ClientInfo


def new_browser(evidence: Evidence) -> bool:
    """Whether the login's browser is new to an account with history: its device cookie (or none) is not one
    of the account's (known, or remembered after a second factor), and the login presents a device cookie,
    or the account's sign-ins carry them, or its client class (browser or app family, OS and device type)
    is one the account never signed in with.

    A login *without* a cookie, of a client class the account signed in with, on an account whose sign-ins
    never carried one (an app without a cookie jar: OkHttp's and Flutter's default, a plain
    ``requests.post``; or a log imported without device ids) is the account's habit: a missing cookie says
    nothing there. SECURITY: a login that *presents* one there is a browser the account never used, the
    newest thing about it; it was no finding at all, so a thief with only her password signed in from his
    own browser on another ISP in another city at 8 points, unannounced, and her app's familiar network
    lowered his score (red team, round seventy-four). SECURITY: so is a login without one of a client class
    the account never showed: a browser always has the cookie before it signs in (the login page and the
    JSON API's CSRF answer hand it out), so one without it dropped it; the thief who deleted it in his
    desktop Chrome signed into her iPhone-app-only account the same way, at 8 points (round seventy-seven).
    Her app updating keeps its class (versions are not part of it).
    """
    device, profile = evidence.device, evidence.profile
    if device.known or device.trusted or profile.logins == 0:
        return False
    if device.presented or profile.total("dev") > 0:
        return True
    return not known_client_class(profile, evidence.ctx.client)


def cookieless_client(evidence: Evidence) -> bool:
    """A login without a device cookie, of a client class the account signed in with, on an account with
    history whose sign-ins never carried one: the account's app without a cookie jar (or a copy of its user
    agent, which only the network, place and hour tell apart)."""
    device, profile = evidence.device, evidence.profile
    return (
        not (device.presented or device.known or device.trusted)
        and profile.logins > 0
        and profile.total("dev") == 0
        and known_client_class(profile, evidence.ctx.client)
    )


@functools.lru_cache(maxsize=1024)
def _class_pattern(browser: str, os_name: str, device_type: str) -> re.Pattern[str]:
    """The profile's ``uac`` values of one client class: ``"<family> <release>|<OS> <version>|<type>"``
    (:func:`~authguard.risk.profile.feature_values`), whatever the release and OS version."""
    return re.compile(
        rf"{re.escape(browser)} [^ |]*\|{re.escape(os_name)}(?: [^ |]+)?\|{re.escape(device_type)}"
    )


def known_client_class(profile: Profile, client: ClientInfo) -> bool:
    """Whether the account signed in within the horizon with this client class: the same browser or app
    family, OS and device type (the comparison :func:`shed_cookies` makes), any version of them. Read from
    the profile's ``uac`` values (at most ``MAX_VALUES``), so an account's history needs nothing new."""
    pattern = _class_pattern(client.browser, client.os, client.device_type)
    values = profile.data.get("f", {}).get("uac") or {}
    return any(pattern.fullmatch(value) and profile.count("uac", value) for value in values)


def cookieless_client_elsewhere(evidence: Evidence, options: dict[str, Any]) -> list[Finding]:
    """Her cookie-less app (:func:`cookieless_client`) on a network (ASN) or in a city the account never
    signed in from: what :class:`~authguard.risk.signals_device.DeviceCookie` scores for a known device
    there (``device_new_network`` at its full points, ``device_new_city``; any but a desktop class cut to
    ``portable_factor``, as a phone's), the account standing for the device the profile cannot tell apart.

    SECURITY: the thief who sends her app's exact user agent without a cookie is told apart from her only by
    network, place and hour: from KDDI in Osaka her phone app's user agent scored 0, no reason at all (red
    team, round seventy-seven). Now it scores what a known phone's copied cookie there does (11, allowed,
    unannounced: a phone on a new network is her everyday), with the reasons her sign-in history, the
    console and the order guard's trust over time read (``CONTEXT_CHANGE_REASONS``); a desktop class there
    gets 45 from the two, a step-up. No known-device discount either: there is no device to give one to.
    """
    profile, ctx, o = evidence.profile, evidence.ctx, options
    if profile.lifetime_logins < o["account_min_logins"]:
        return []  # an account too new to have habits (as for a known device)
    features, geo = ctx.features, ctx.geo
    # Full points only for a desktop class: an app's user agent that names no device (Flutter's
    # "Dart/3.3 (dart:io)" is device type "other") is most likely a phone's, which changes networks all day.
    factor = 1.0 if ctx.client.device_type == "desktop" else o["portable_factor"]
    findings = []
    if profile.count("asn", features["asn"]) == 0 and o["device_new_network"]:
        findings.append(
            Finding(
                "device_new_network",
                max(1, round(o["device_new_network"] * factor)),
                _("A known device on a network it never signed in from"),
                {"asn": geo.asn, "account_network": False, "cookieless_client": True},
            )
        )
    last = profile.last
    # Far from the account's last sign-in as well (a neighbouring city's GeoIP name is no move); a place
    # either side cannot tell is far.
    apart = apart_km(
        last.get("lat"), last.get("lon"), last.get("acc"), geo.latitude, geo.longitude, geo.accuracy_km
    )
    if (
        features["city"] != "?"
        and o["device_new_city"] > 0
        and profile.count("city", features["city"]) == 0
        and (apart is None or apart >= o["device_city_min_km"])
    ):
        findings.append(
            Finding(
                "device_new_city",
                max(1, round(o["device_new_city"] * factor)),
                _("A known device in a city it never signed in from"),
                {"city": geo.place, "cookieless_client": True},
            )
        )
    if profile.logins < o["account_min_logins"]:
        # A thin horizon: a reason the order guard reads, at one point each (as for a known device).
        findings = [Finding(f.code, min(f.score, 1), f.reason, f.evidence) for f in findings]
    return findings


def only_imported_devices(profile: Profile) -> bool:
    """Whether every device the profile remembers came from ``import-history`` (the portal's old device ids,
    never authguard cookies): until the account's first authguard cookie, its customer's own browser with a
    new cookie looks exactly like a copied user agent, so that finding waits (``new_device`` does not)."""
    imported = profile.data.get("imp")
    if not imported or app_settings.LEGACY_DEVICE_COOKIE:
        # With the portal's own device cookie read, the customer's browser is its imported device
        # (authguard.risk.legacy_device): one without it is no more the customer's own than on day 180.
        return False
    devices = profile.data.get("dv") or {}
    return all(entry and entry[0] <= imported for entry in devices.values())


def shed_cookies(profile: Profile, client: ClientInfo, now: float, days: int) -> int:
    """How many distinct device cookies of this browser (family, OS and device type) the account learned
    within ``days`` before ``now``: the profile's remembered devices (``"dv"``, at most ``MAX_DEVICES``)."""
    since = now - days * 86400
    return sum(
        1
        for entry in (profile.data.get("dv") or {}).values()
        if len(entry) == 8
        and entry[0] >= since
        and entry[1] == client.browser
        and entry[3] == client.os
        and entry[4] == client.device_type
    )
