"""The built-in risk signals. Each is pure: it reads an :class:`~authguard.risk.history.Evidence` and returns
findings with a stable code, a score contribution and a translatable reason.

Default contributions are tuned on ``bench/detection`` (see docs/benchmarks-detection.md); every one is
an ``OPTIONS`` entry so a portal can retune it without code.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.utils.translation import gettext_lazy as _

from authguard.risk.context import LoginContext
from authguard.risk.findings import STEP_UP_FLOOR, Finding, RiskSignal
from authguard.risk.history import Evidence
from authguard.risk.networks import hosting_asns

# The signals of the other families; every built-in signal stays importable from here, the module stored
# policies and settings name (through the ``authguard.risk_signals`` shim).
from authguard.risk.signals_device import DeviceCookie as DeviceCookie
from authguard.risk.signals_device import user_agent_change as user_agent_change
from authguard.risk.signals_network import BLOCKS_LIVE_SECONDS as BLOCKS_LIVE_SECONDS
from authguard.risk.signals_network import AnonymousNetwork as AnonymousNetwork
from authguard.risk.signals_network import ImpossibleTravel as ImpossibleTravel
from authguard.risk.signals_network import NetworkHop as NetworkHop
from authguard.risk.signals_network import NetworkLists as NetworkLists
from authguard.risk.signals_network import haversine_km as haversine_km
from authguard.risk.signals_profile import StatisticalModel as StatisticalModel


class Velocity(RiskSignal):
    """Failed logins in the last hour: on this account, from this IP or its network, and site-wide.

    Many usernames from one IP is credential stuffing. A surge of failures site-wide (``site_surge`` times
    the last 24 hours' hourly average, and at least ``site_failures``) is a botnet or a password spray
    spread over many addresses: while it lasts, every login carries a little more risk. The surge is
    relative, so the same setting fits a small portal and a large one.
    """

    defaults = {
        "user_failures": 5,
        "user_failures_score": 15,
        "ip_failures": 10,
        "ip_failures_score": 20,
        "ip_users": 5,
        "ip_users_score": 30,
        "network_failures": 30,
        "network_failures_score": 15,
        "site_failures": 30,
        "site_surge": 5.0,
        "site_failures_score": 15,
    }
    _checks = (
        ("user_failures", _("Many failed sign-ins on this account in the last hour")),
        ("ip_failures", _("Many failed sign-ins from this address in the last hour")),
        ("ip_users", _("Many different accounts tried from this address")),
        ("network_failures", _("Many failed sign-ins from this network")),
    )

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        counts, o = evidence.velocity, self.options
        findings = []
        for name, reason in self._checks:
            value = getattr(counts, name)
            if value >= o[name]:
                findings.append(Finding(f"velocity_{name}", o[f"{name}_score"], reason, {"count": value}))
        hourly_average = counts.site_failures_day / 24
        if counts.site_failures >= max(o["site_failures"], o["site_surge"] * hourly_average):
            findings.append(
                Finding(
                    "velocity_site_failures",
                    o["site_failures_score"],
                    _("A wave of failed sign-ins across the site"),
                    {"count": counts.site_failures, "hourly_average": round(hourly_average, 1)},
                )
            )
        return findings


class UnusualHour(RiskSignal):
    """A sign-in at an hour this account almost never signs in (local time of ``TIME_ZONE``)."""

    defaults = {"min_history": 20, "max_share": 0.02, "score": 10}

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        profile = evidence.profile
        if profile.total("hour") < self.options["min_history"]:
            return []
        hour = int(evidence.ctx.features["hour"])  # the site's local hour, as the profile counts it
        share = profile.hour_share(hour)
        if share > self.options["max_share"]:
            return []
        return [
            Finding(
                "unusual_hour",
                self.options["score"],
                _("An hour this account rarely signs in"),
                {"hour": hour, "share": round(share, 3)},
            )
        ]


class AutomationClient(RiskSignal):
    """Headless browsers, command-line tools and scripting libraries, or no user agent at all."""

    defaults = {"score": 35}

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        client = evidence.ctx.client
        if not client.automation:
            return []
        return [
            Finding(
                "automation_client",
                self.options["score"],
                _("An automated client, not a person's browser"),
                {"browser": client.browser},
            )
        ]


#: Addresses of the portal's own network (never "an unknown place" to the first-login policy).
_INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def _internal_address(ip: str | None) -> bool:
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in net for net in _INTERNAL_NETWORKS if net.version == address.version)


class AccountContext(RiskSignal):
    """The account's own state: no history yet, dormant for months, password changed since last sign-in,
    or a second factor added or removed in the last ``factor_change_days`` (a phisher's second move).

    The first-login policy (issue 13, "the first day"): an account with no history has nothing to be
    familiar with, so a first sign-in from outside ``home_countries``, from an address no GeoIP database
    knows, or through a hosting or anonymising network is stepped up at least (``first_login_elsewhere``:
    a few points and the step-up floor), never allowed as low-risk. A portal that
    imports its old sign-in logs first (``manage.py authguard import-history``) gives its customers a
    history, and this policy then applies only to accounts that truly have none.
    """

    defaults = {
        "no_history": 20,
        "first_login_elsewhere": 5,
        "home_countries": ["JP"],
        "dormant_days": 120,
        "dormant": 20,
        "password_changed": 15,
        "factor_change_days": 7,
        "factor_changed": 15,
    }

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        profile, ctx = evidence.profile, evidence.ctx
        findings = []
        if profile.logins == 0:
            findings.append(
                Finding(
                    "no_history", self.options["no_history"], _("No recent sign-in history to compare with")
                )
            )
            where = self._elsewhere(ctx)
            if where:
                # SECURITY: with nothing learned yet, a first sign-in from abroad, an unknown place or a
                # hosting/anonymising network is exactly what a thief's first sign-in looks like.
                findings.append(
                    Finding(
                        "first_login_elsewhere",
                        self.options["first_login_elsewhere"],
                        _("A first sign-in from abroad, an unknown place or a hosting network"),
                        {"where": where, "country": ctx.geo.country, STEP_UP_FLOOR: True},
                    )
                )
        last = profile.last
        if last:
            idle_days = (ctx.timestamp - last["t"]) / 86400
            # SECURITY: idle for longer than the profile remembers (no sign-in left in the horizon, one on
            # record) is dormant too: otherwise an account 91-119 days idle was scored like one on its
            # first day, and a new browser on a clean home line was allowed (red team, 2026-12-05).
            if idle_days >= self.options["dormant_days"] or profile.logins == 0:
                findings.append(
                    Finding(
                        "dormant_account",
                        self.options["dormant"],
                        _("The account had not been used for months"),
                        {"days": round(idle_days)},
                    )
                )
        old = profile.fingerprint.get("pw")
        if old and ctx.account.get("pw") and old != ctx.account["pw"]:
            findings.append(
                Finding(
                    "password_changed",
                    self.options["password_changed"],
                    _("The password changed since the last sign-in"),
                )
            )
        changed = profile.data.get("sec")
        if changed and 0 <= ctx.timestamp - changed <= self.options["factor_change_days"] * 86400:
            findings.append(
                Finding(
                    "factor_changed",
                    self.options["factor_changed"],
                    _("A sign-in factor was added or removed recently"),
                    {"days_ago": round((ctx.timestamp - changed) / 86400, 1)},
                )
            )
        return findings

    def _elsewhere(self, ctx: LoginContext) -> str:
        """Why a first sign-in is not from where the portal's customers are: ``abroad``, ``unknown``,
        ``hosting`` or ``anonymous`` (empty: a home-country consumer network)."""
        geo = ctx.geo
        if geo.tor_exit or geo.public_proxy or geo.anonymous_vpn or geo.residential_proxy:
            return "anonymous"
        if geo.hosting or (geo.asn is not None and geo.asn in hosting_asns(())):
            return "hosting"
        if geo.country is None:
            # The portal's own network (loopback, RFC 1918, link-local: a health check, an internal client
            # or a proxy not yet configured) is no place a thief signs in from; every other address no
            # database can place is.
            return "" if _internal_address(ctx.ip) else "unknown"
        home = {str(code).upper() for code in self.options["home_countries"] or []}
        if home and geo.country.upper() not in home:
            return "abroad"
        return ""
