"""Where a login comes from: impossible travel, network hops, anonymous networks and the allow/deny lists.

Built-in risk signals (all listed in :mod:`authguard.risk.signals`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timezone

from django.utils.translation import gettext_lazy as _

from authguard import clock
from authguard.risk.findings import STEP_UP_FLOOR, Finding, RiskSignal
from authguard.risk.history import Evidence
from authguard.risk.networks import (
    ActiveBlocks,
    BlocksUnavailable,
    active_blocks,
    configured_lists,
    hosting_asns,
)

_ANONYMOUS_REASONS = {
    "tor": _("Signed in through the Tor network"),
    "public_proxy": _("Signed in through a public proxy"),
    "hosting": _("Signed in from a hosting or cloud network, not a home or mobile connection"),
    "vpn": _("Signed in through a VPN"),
    "residential_proxy": _("Signed in through a residential proxy"),
}


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def apart_km(
    lat1: float | None,
    lon1: float | None,
    acc1: float | None,
    lat2: float | None,
    lon2: float | None,
    acc2: float | None,
) -> float | None:
    """How far apart two GeoIP places provably are: the distance minus both accuracy radii (negative when
    the circles overlap), or None when either place is unknown."""
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return None
    return haversine_km(lat1, lon1, lat2, lon2) - (acc1 or 0) - (acc2 or 0)


class ImpossibleTravel(RiskSignal):
    """Faster than ``max_kmh`` since the last successful login, after subtracting both accuracy radii.

    Jumps under ``min_km`` are GeoIP noise (mobile carriers exit far from the user); anonymising networks
    are never used as the starting point. An address no database can place, within ``unknown_hours`` of a
    sign-in from a known place, cannot be checked: it adds ``unknown_score`` (``unverifiable_travel``), so
    an unplaceable address is no way around this signal.
    """

    defaults = {"max_kmh": 900, "min_km": 100, "score": 30, "unknown_hours": 6, "unknown_score": 15}

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        last, geo = evidence.profile.last, evidence.ctx.geo
        if not last or last.get("lat") is None or last.get("anon"):
            return []
        if geo.latitude is None or geo.longitude is None:  # GeoIP places with both or neither
            hours = (evidence.ctx.timestamp - last["t"]) / 3600
            if geo.country is None and 0 <= hours <= self.options["unknown_hours"]:
                return [
                    Finding(
                        "unverifiable_travel",
                        self.options["unknown_score"],
                        _("A sign-in from an unknown place shortly after one from a known place"),
                        {"hours": round(hours, 2), "from": last.get("cc")},
                    )
                ]
            return []
        distance = haversine_km(last["lat"], last["lon"], geo.latitude, geo.longitude)
        effective = max(0.0, distance - (last.get("acc") or 0) - (geo.accuracy_km or 0))
        if effective < self.options["min_km"]:
            return []
        hours = max((evidence.ctx.timestamp - last["t"]) / 3600, 1 / 60)
        speed = effective / hours
        if speed <= self.options["max_kmh"]:
            return []
        return [
            Finding(
                "impossible_travel",
                self.options["score"],
                _("Too far from the last sign-in to have travelled in the time between"),
                {
                    "km": round(effective),
                    "hours": round(hours, 2),
                    "kmh": round(speed),
                    "from": last.get("cc"),
                    "to": geo.country,
                },
            )
        ]


class NetworkHop(RiskSignal):
    """A new browser signing in from another network minutes after the account's last sign-in.

    The signature of a real-time phishing relay: the victim signs in on the phishing page, and the relay
    replays the credentials from its own infrastructure within seconds.
    """

    defaults = {"minutes": 10, "score": 25}

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        last, ctx = evidence.profile.last, evidence.ctx
        if not last or evidence.device.known or evidence.device.trusted:
            return []
        elapsed = ctx.timestamp - last["t"]
        # SECURITY: a last sign-in "in the future" (a node whose clock ran ahead wrote it) counts as minutes
        # ago, never as long ago: negative elapsed time is suspicious (docs/faults.md, clocks).
        if elapsed > self.options["minutes"] * 60 or last.get("asn") == ctx.geo.asn:
            return []
        return [
            Finding(
                "network_hop",
                self.options["score"],
                _("A new browser on another network minutes after the last sign-in"),
                {"seconds": round(elapsed), "from_asn": last.get("asn"), "to_asn": ctx.geo.asn},
            )
        ]


class AnonymousNetwork(RiskSignal):
    """Tor, VPNs, proxies and hosting networks (GeoIP2 Anonymous-IP flags and a built-in hosting ASN list).

    The strongest matching flag counts. A network this account habitually signs in from (a VPN user's own
    provider) counts ``habitual_factor`` as much.
    """

    defaults = {
        "tor": 50,
        "public_proxy": 35,
        "hosting": 30,
        "vpn": 25,
        "residential_proxy": 25,
        "unknown": 10,
        "habitual_share": 0.2,
        "habitual_factor": 0.4,
        "extra_hosting_asns": [],
    }

    def __init__(self, **options):
        super().__init__(**options)
        self._hosting = hosting_asns(self.options["extra_hosting_asns"])

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        geo = evidence.ctx.geo
        flags = {
            "tor": geo.tor_exit,
            "public_proxy": geo.public_proxy,
            "hosting": geo.hosting or (geo.asn is not None and geo.asn in self._hosting),
            "vpn": geo.anonymous_vpn,
            "residential_proxy": geo.residential_proxy,
        }
        matched = [name for name, on in flags.items() if on]
        if not matched:
            if geo.country is None and geo.asn is None:
                # No database knows this address (or none is installed): not knowing is itself a risk.
                return [
                    Finding(
                        "unknown_network",
                        self.options["unknown"],
                        _("Where this sign-in comes from cannot be determined"),
                        {"ip": evidence.ctx.ip},
                    )
                ]
            return []
        strongest = max(matched, key=lambda name: self.options[name])
        points = self.options[strongest]
        profile = evidence.profile
        total = profile.total("asn")
        habitual = total and profile.count("asn", str(geo.asn) if geo.asn is not None else None) / total
        if habitual and habitual >= self.options["habitual_share"]:
            points = round(points * self.options["habitual_factor"])
        return [
            Finding(
                f"anonymous_{strongest}",
                points,
                _ANONYMOUS_REASONS[strongest],
                {"flags": matched, "asn": geo.asn, "as_org": geo.as_org},
            )
        ]


#: How far a login's time may be from the clock for the security desk's network blocks to apply to it.
BLOCKS_LIVE_SECONDS = 300


class NetworkLists(RiskSignal):
    """Admin allow and deny lists of IP networks, ASNs and countries, and the security desk's network blocks.

    The lists are ``AUTHGUARD_NETWORK_ALLOWLIST`` and ``AUTHGUARD_NETWORK_DENYLIST``. A block the desk added
    in the console (:class:`authguard.models.NetworkBlock`, until its end) counts as the deny list: the
    same ``denylisted_network`` finding and score, with the block's end in the evidence. The blocks cost one
    cache read per login (:func:`authguard.risk.networks.active_blocks`).

    SECURITY: if the blocks cannot be read (the database failed), the last blocks this process read (up to
    an hour old) still deny, and the login is stepped up (``network_blocks_unavailable``): a block that
    cannot be checked is not assumed away, and an outage of one table does not refuse every customer.

    Blocks are the state of *now*: a login more than ``BLOCKS_LIVE_SECONDS`` away from the clock (the
    replay and backtests of past logins) is scored without them, and reads nothing.
    """

    defaults = {"deny_score": 100, "allow_score": -30}

    def _denied(self, entry: str, **evidence: object) -> Finding:
        return Finding(
            "denylisted_network",
            self.options["deny_score"],
            _("The network is on the deny list"),
            {"entry": entry, **evidence},
        )

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        allow, deny = configured_lists()
        ctx = evidence.ctx
        if deny:
            denied = deny.match(ip=ctx.ip, asn=ctx.geo.asn, country=ctx.geo.country)
            if denied:
                return [self._denied(denied)]
        findings: list[Finding] = []
        blocks: ActiveBlocks | None = None
        try:
            # A replayed login of the past is scored without today's blocks: they were not in force then.
            if abs(ctx.timestamp - clock.timestamp()) <= BLOCKS_LIVE_SECONDS:
                blocks = active_blocks()
        except BlocksUnavailable as exc:
            blocks = exc.last_known
            findings.append(
                Finding(
                    "network_blocks_unavailable",
                    0,
                    _("The security desk's network blocks could not be read"),
                    {STEP_UP_FLOOR: True, "last_known": blocks is not None},
                )
            )
        if blocks:
            blocked = blocks.match(ip=ctx.ip, asn=ctx.geo.asn, now=ctx.timestamp)
            if blocked:
                entry, until = blocked
                until_text = datetime.fromtimestamp(until, tz=timezone.utc).isoformat(timespec="seconds")
                return [*findings, self._denied(entry, blocked_until=until_text)]
        if allow:
            allowed = allow.match(ip=ctx.ip, asn=ctx.geo.asn, country=ctx.geo.country)
            if allowed:
                findings.append(
                    Finding(
                        "allowlisted_network",
                        self.options["allow_score"],
                        _("The network is on the allow list"),
                        {"entry": allowed},
                    )
                )
        return findings
