"""The risk signals in words: labels, descriptions and typed options, for the policy editor and messages.

:func:`describe_signal` names a configured (or shadow) signal and its options as an admin reads them; the
policy's validation (:func:`authguard.risk.policy.signal_problem`) words its messages with it, and the
policy editor types its fields by :attr:`OptionInfo.kind`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

#: Kinds of signal options, as the policy editor types its fields.
INT, FLOAT, BOOL, INT_LIST, FLOAT_LIST, TEXT_LIST = (
    "int",
    "float",
    "bool",
    "int_list",
    "float_list",
    "text_list",
)

#: Bounds of the usual kinds of options: points on the 0..100 score, a share, a count, a distance.
_POINTS = (-100, 100)
_SHARE = (0, 1)
_COUNT = (0, None)
#: An autonomous system number (32 bits; 0 is reserved and no network's).
_ASN = (1, 2**32 - 1)


@dataclass(frozen=True)
class OptionInfo:
    """One option of a risk signal, in words: its key (``OPTIONS``), label, kind, default and bounds."""

    key: str
    label: str
    kind: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class SignalInfo:
    """A risk signal in words: its dotted path (the internal key only), name, one-sentence description and
    options (in the order of its ``defaults``)."""

    name: str
    label: str
    description: str
    options: tuple[OptionInfo, ...]


# (name, description, {option: (label, bounds)}); labels are translated when described.
_SIGNALS: dict[str, tuple[Any, Any, dict[str, tuple[Any, tuple[float | None, float | None] | None]]]] = {
    "authguard.risk_signals.NetworkLists": (
        _("Allow and deny lists"),
        _("Networks, providers and countries your team put on the allow list or the deny list."),
        {
            "deny_score": (_("Points for a network on the deny list"), _POINTS),
            "allow_score": (_("Points for a network on the allow list"), _POINTS),
        },
    ),
    "authguard.risk_signals.StatisticalModel": (
        _("Familiar network and browser"),
        _("Compares the network and browser of a sign-in with the account's history and with everyone's."),
        {
            "ip_weights": (_("Weights of address, /24 network, provider and country"), _SHARE),
            "ua_weights": (_("Weights of browser signature, browser, system and device type"), _SHARE),
            "points_per_doubling": (_("Points each time a sign-in is twice as unlikely"), (0, 100)),
            "min_points": (_("Fewest points (a very familiar sign-in)"), _POINTS),
            "max_points": (_("Most points (a very unusual sign-in)"), _POINTS),
            "user_agent_can_lower": (_("A familiar browser signature may lower the score"), None),
            "new_device_can_lower": (_("A familiar network may lower the score of a new browser"), None),
            "browser_update_neutral": (_("A browser update on a known device is not unusual"), None),
            "rare_country_share": (_("Share of sign-ins below which a country is rare"), _SHARE),
            "rare_country_min_population": (
                _("Sign-ins site-wide before any country counts as rare"),
                _COUNT,
            ),
            "rare_country_without_history": (
                _("Points for a rare country on an account with no history"),
                _POINTS,
            ),
        },
    ),
    "authguard.risk_signals.DeviceCookie": (
        _("Known browser"),
        _("Knows the browsers an account used before by their device cookie; checks they fit their past."),
        {
            "new_device": (_("Points for a browser never seen on the account"), _POINTS),
            "young_account_logins": (_("Sign-ins up to which an account counts as young"), _COUNT),
            "new_device_young_account": (
                _("Points for a browser never seen on a young account (not through a shared network)"),
                _POINTS,
            ),
            "new_device_new_network": (_("More points when that browser is on a new network"), _POINTS),
            "new_device_known_address": (
                _("Points added when that browser is at an address the account uses"),
                _POINTS,
            ),
            "new_device_new_fixed_address": (
                _("More points when that browser is at a new fixed-line address of a known network"),
                _POINTS,
            ),
            "fixed_line_max_km": (
                _("GeoIP accuracy radius under which an address is a fixed line (km)"),
                _COUNT,
            ),
            "copied_user_agent": (_("Points for a copied browser signature without the cookie"), _POINTS),
            "cookie_shedding_browsers": (
                _("Learned cookies of one browser that make a new one its habit (0: off)"),
                _COUNT,
            ),
            "cookie_shedding_days": (_("Days over which those cookies are counted"), _COUNT),
            "copied_user_agent_shedding": (
                _("Points for a new cookie in a browser that keeps losing its cookie"),
                # At least 1: a finding without points is not among the reasons the factor cooling-off and
                # the order guard read.
                (1, 100),
            ),
            "known_device": (_("Points for a known browser"), _POINTS),
            "remembered_device": (_("Points for a remembered browser"), _POINTS),
            "remembered_device_elsewhere": (_("Points for a remembered browser in a new place"), _POINTS),
            "account_min_logins": (_("Sign-ins before new networks count against a browser"), _COUNT),
            "device_new_network": (_("Points for a known browser on a network it never used"), _POINTS),
            # At least 1, as copied_user_agent_shedding: the order guard reads only findings with points.
            "device_new_network_known_to_account": (_("Points when the account used that network"), (1, 100)),
            "device_new_city": (_("Points for a known browser in a new city"), _POINTS),
            "settled_device_moved": (
                _("More points when a computer seen in one city only is on a fixed line in another"),
                _POINTS,
            ),
            "portable_factor": (_("Share of the new-city points for a phone or tablet"), _SHARE),
            "device_city_min_km": (_("Distance before a city counts as new (km)"), _COUNT),
            "device_user_agent_backwards": (
                _("Points when a known browser reports an older version"),
                _POINTS,
            ),
            "device_user_agent_sideways": (
                _("Points when a known browser reports another browser or system"),
                _POINTS,
            ),
            "device_user_agent_backwards_step_up": (
                _("Always step up a known browser that reports an older version"),
                None,
            ),
            "stale_device_days": (_("Days unused before a known browser is stale"), _COUNT),
            "stale_device": (_("Points for a stale known browser"), _POINTS),
            "device_max_kmh": (_("Fastest believable speed of a known browser (km/h)"), _COUNT),
            "device_min_km": (_("Shortest move checked for a known browser (km)"), _COUNT),
            "device_moved": (_("Points for a known browser that moved too fast"), _POINTS),
            "device_binding_missing": (
                _("Points for a device-bound cookie without its key's proof"),
                _POINTS,
            ),
            "device_cookie_behind": (
                _("Points for a browser cookie one sign-in older than its browser's"),
                _POINTS,
            ),
            "device_cookie_superseded": (
                _("Points for a browser cookie two or more sign-ins older than its browser's"),
                _POINTS,
            ),
            "device_in_two_places": (
                _("Points for a browser cookie in use too far away minutes before"),
                _POINTS,
            ),
            "device_in_two_places_seconds": (
                _("Seconds a session's use of a browser cookie counts as moments ago"),
                _COUNT,
            ),
        },
    ),
    "authguard.risk_signals.ImpossibleTravel": (
        _("Impossible travel"),
        _("Flags a sign-in too far from the previous one to have travelled in the time between."),
        {
            "max_kmh": (_("Fastest believable travel (km/h)"), _COUNT),
            "min_km": (_("Shortest jump checked (km)"), _COUNT),
            "score": (_("Points for impossible travel"), _POINTS),
            "unknown_hours": (_("Hours in which an address nobody can place counts"), _COUNT),
            "unknown_score": (_("Points for a move that cannot be checked"), _POINTS),
        },
    ),
    "authguard.risk_signals.NetworkHop": (
        _("Network hop"),
        _("Flags a new browser on another network minutes after the last sign-in, as a phishing relay does."),
        {
            "minutes": (_("Minutes after the last sign-in"), _COUNT),
            "score": (_("Points for a network hop"), _POINTS),
        },
    ),
    "authguard.risk_signals.AnonymousNetwork": (
        _("Anonymous and hosting networks"),
        _("Adds risk for Tor, proxies, VPNs, cloud hosting and addresses no database knows."),
        {
            "tor": (_("Points for Tor"), _POINTS),
            "public_proxy": (_("Points for a public proxy"), _POINTS),
            "hosting": (_("Points for a hosting or cloud network"), _POINTS),
            "vpn": (_("Points for a VPN"), _POINTS),
            "residential_proxy": (_("Points for a residential proxy"), _POINTS),
            "unknown": (_("Points for an address no database knows"), _POINTS),
            "habitual_share": (_("Share of the account's sign-ins that makes a network habitual"), _SHARE),
            "habitual_factor": (_("Share of the points kept on a habitual network"), _SHARE),
            "extra_hosting_asns": (_("More hosting networks (AS numbers)"), _ASN),
        },
    ),
    "authguard.risk_signals.Velocity": (
        _("Failed sign-ins"),
        _("Counts the last hour's failed sign-ins on the account, from the address or network, site-wide."),
        {
            "user_failures": (_("Failures on one account before they count"), _COUNT),
            "user_failures_score": (_("Points for failures on one account"), _POINTS),
            "ip_failures": (_("Failures from one address before they count"), _COUNT),
            "ip_failures_score": (_("Points for failures from one address"), _POINTS),
            "ip_users": (_("Accounts tried from one address before they count"), _COUNT),
            "ip_users_score": (_("Points for many accounts from one address"), _POINTS),
            "network_failures": (_("Failures from one network before they count"), _COUNT),
            "network_failures_score": (_("Points for failures from one network"), _POINTS),
            "site_failures": (_("Failures across the site before a wave counts"), _COUNT),
            "site_surge": (_("Times the usual hourly failures that make a wave"), _COUNT),
            "site_failures_score": (_("Points during a wave"), _POINTS),
        },
    ),
    "authguard.risk_signals.UnusualHour": (
        _("Unusual hour"),
        _("Flags a sign-in at an hour the account almost never signs in."),
        {
            "min_history": (_("Sign-ins before hours are compared"), _COUNT),
            "max_share": (_("Share of sign-ins below which an hour is unusual"), _SHARE),
            "score": (_("Points for an unusual hour"), _POINTS),
        },
    ),
    "authguard.risk_signals.AutomationClient": (
        _("Automated clients"),
        _("Flags headless browsers, command-line tools, scripts and sign-ins without a browser signature."),
        {"score": (_("Points for an automated client"), _POINTS)},
    ),
    "authguard.risk_signals.AccountContext": (
        _("Account state"),
        _("The account itself: no history yet, unused for months, a new password or a changed factor."),
        {
            "no_history": (_("Points for an account with no history"), _POINTS),
            "first_login_elsewhere": (
                _("Points for a first sign-in from abroad or a hosting network"),
                _POINTS,
            ),
            "home_countries": (_("Home countries (two-letter codes)"), None),
            "dormant_days": (_("Days unused before an account is dormant"), _COUNT),
            "dormant": (_("Points for a dormant account"), _POINTS),
            "password_changed": (_("Points for a password changed since the last sign-in"), _POINTS),
            "factor_change_days": (_("Days a changed sign-in factor counts as recent"), _COUNT),
            "factor_changed": (_("Points for a recently changed sign-in factor"), _POINTS),
        },
    ),
    "authguard.feedback.ConfirmedFraudNetworks": (
        _("Networks with confirmed fraud"),
        _("Adds risk for a network where analysts confirmed fraud on other accounts."),
        {
            "days": (_("Days of confirmed fraud to look back on"), _COUNT),
            "embargo_hours": (_("Hours before a confirmation counts"), _COUNT),
            "min_accounts": (_("Accounts with fraud before a network counts"), _COUNT),
            "prefix_score": (_("Points for such a network"), _POINTS),
            "min_asn_accounts": (_("Accounts with fraud before a provider counts"), _COUNT),
            "min_asn_fraud_share": (_("Share of fraud before a provider counts"), _SHARE),
            "asn_score": (_("Points for such a provider"), _POINTS),
            "max_score": (_("Most points in all"), _POINTS),
        },
    ),
}

#: Options whose default is an empty list: what their items are.
_EMPTY_LIST_KINDS = {"extra_hosting_asns": INT_LIST}


def _kind(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, list | tuple):
        if not value:
            return _EMPTY_LIST_KINDS.get(key, TEXT_LIST)
        if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            return INT_LIST
        if all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
            return FLOAT_LIST
        return TEXT_LIST
    return TEXT_LIST


def _plain(text: str) -> str:
    """A docstring's first sentence without reStructuredText markup (signals this module does not know)."""
    text = re.sub(r":[a-z]+:`~?([^`]*)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = text.replace("``", "").replace("`", "")
    first = " ".join(text.strip().split("\n\n", 1)[0].split())
    return first.split(". ", 1)[0].rstrip(".") + "." if first else ""


def describe_signal(name: str) -> SignalInfo:
    """A configured (or shadow) signal in words, from its dotted path (which it never shows).

    Signals of other packages are named after their class ("UnusualHour" -> "Unusual hour") and described
    by the first sentence of their docstring, markup removed.
    """
    try:
        klass: Any = import_string(name)
    except ImportError:
        klass = None
    defaults: dict[str, Any] = dict(getattr(klass, "defaults", {}) or {})
    known = _SIGNALS.get(name)
    class_name = name.rsplit(".", 1)[-1]
    if known is not None:
        label, description, option_words = str(known[0]), str(known[1]), known[2]
    else:
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", class_name)
        label = str(getattr(klass, "verbose_name", "") or words[:1].upper() + words[1:].lower())
        description = _plain(getattr(klass, "__doc__", "") or "")
        option_words = {}
    options = []
    for key, default in defaults.items():
        words_bounds = option_words.get(key)
        option_label = str(words_bounds[0]) if words_bounds else key.replace("_", " ").capitalize()
        bounds = words_bounds[1] if words_bounds and words_bounds[1] else (None, None)
        options.append(OptionInfo(key, option_label, _kind(default, key), default, bounds[0], bounds[1]))
    return SignalInfo(name=name, label=label, description=description, options=tuple(options))
