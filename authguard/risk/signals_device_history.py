"""What an account's history says about its browsers: whether a login's browser is new to it, whether its
devices all came from ``import-history``, and how often one browser of it lost its cookie.

Read by the device cookie signal (:class:`~authguard.risk.signals_device.DeviceCookie`) and the statistical
model (:mod:`authguard.risk.signals_profile`), which must agree on what a new browser is.
"""

from __future__ import annotations

from authguard.conf import app_settings
from authguard.risk.history import Evidence
from authguard.risk.profile import Profile
from authguard.risk.useragent import ClientInfo


def new_browser(evidence: Evidence) -> bool:
    """Whether the login's browser is new to an account with history: its device cookie (or none) is not one
    of the account's (known, or remembered after a second factor), and either the login presents a device
    cookie or the account's sign-ins carry them.

    A login *without* a cookie on an account whose sign-ins never carried one (an app without a cookie jar:
    OkHttp's and Flutter's default, a plain ``requests.post``; or a log imported without device ids) is the
    account's habit: a missing cookie says nothing there. SECURITY: a login that *presents* one there is a
    browser the account never used, the newest thing about it; it was no finding at all, so a thief with
    only her password signed in from his own browser on another ISP in another city at 8 points, unannounced,
    and her app's familiar network lowered his score (red team, round seventy-four).
    """
    device, profile = evidence.device, evidence.profile
    if device.known or device.trusted or profile.logins == 0:
        return False
    return device.presented or profile.total("dev") > 0


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
