"""The built-in risk signals. Each is pure: it reads an :class:`~authguard.risk.history.Evidence` and returns
findings with a stable code, a score contribution and a translatable reason.

Default contributions are tuned on ``bench/detection`` (see docs/benchmarks-detection.md); every one is
an ``OPTIONS`` entry so a portal can retune it without code.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from django.utils.translation import gettext_lazy as _

from authguard.risk.context import LoginContext
from authguard.risk.engine import STEP_UP_FLOOR, Finding, RiskSignal
from authguard.risk.history import Evidence
from authguard.risk.networks import (
    ActiveBlocks,
    BlocksUnavailable,
    active_blocks,
    configured_lists,
    hosting_asns,
)
from authguard.risk.profile import IP_LEVELS, UA_LEVELS, DeviceMemory, Profile, device_memory, major_version

_TOTAL = {level: f"#{level}" for level in (*IP_LEVELS, *UA_LEVELS)}
_DISTINCT = {level: f"~{level}" for level in (*IP_LEVELS, *UA_LEVELS)}

# Reasons of the findings nearly every login carries, made once (a lazy string costs a little each time).
_UNFAMILIAR = _("Network and browser are unusual for this account")
_FAMILIAR = _("Network and browser match this account's history")
_KNOWN_DEVICE = _("A browser this account signed in from before")
_ANONYMOUS_REASONS = {
    "tor": _("Signed in through the Tor network"),
    "public_proxy": _("Signed in through a public proxy"),
    "hosting": _("Signed in from a hosting or cloud network, not a home or mobile connection"),
    "vpn": _("Signed in through a VPN"),
    "residential_proxy": _("Signed in through a residential proxy"),
}


def _smoothing_steps(
    levels: tuple[str, ...], weights: Iterable[float]
) -> tuple[tuple[str, float, str, str], ...]:
    """(level, weight, total key, distinct key) of a hierarchy, from the coarsest level to the finest."""
    steps = [
        (level, float(w), _TOTAL[level], _DISTINCT[level]) for level, w in zip(levels, weights, strict=True)
    ]
    return tuple(reversed(steps))


def _smoothed_probability(
    population: Callable[[str, int], int],
    steps: tuple[tuple[str, float, str, str], ...],
    value_keys: dict[str, str],
) -> float:
    """p(x) = sum_l w_l * p^(x_l) with p^(v) = c_v/(N+M) (1/(N+M) when unseen), M = the distinct values at
    the coarser levels plus one: walk from the coarsest level to the finest, accumulating M."""
    total = 0.0
    m = 1
    for level, weight, total_key, distinct_key in steps:
        c = population(value_keys[level], 0)
        total += weight * (c if c > 0 else 1) / (population(total_key, 0) + m)
        m += population(distinct_key, 0)
    return total


class StatisticalModel(RiskSignal):
    """Freeman et al., "Who are you? A statistical approach to measuring user authenticity" (NDSS 2016).

    The login's likelihood ratio of attack over legitimate use is::

        S = p(u|A)/p(u|L) * prod_k p(x_k|A) / p(x_k|u,L)

    over two hierarchical features: the network (IP, /24 prefix, ASN, country) and the client (user agent,
    browser and version, OS and version, device type). Without labelled attacks, p(x_k|A) is the smoothed
    population estimate p(x_k) = sum_l w_l * p^(x_l), with p^(v) = c_v/(N+M) (1/(N+M) when unseen) and M the
    number of distinct values at the coarser levels plus one. p(x_k|u,L) = sum_l w_l * c_u(x_l)/n_u is not
    smoothed; when the value is unseen at every level it is p(x_k)/4, which caps that feature's ratio at 4.
    p(u|A) = 1/|U| and p(u|L) = n_u/N. The score contribution is ``points_per_doubling * log2(S)``, clamped.
    """

    defaults = {
        "ip_weights": [0.35, 0.25, 0.3, 0.1],
        "ua_weights": [0.5387, 0.2680, 0.1882, 0.0051],
        "points_per_doubling": 4.0,
        "min_points": -20,
        "max_points": 40,
        "user_agent_can_lower": False,
        "browser_update_neutral": True,
        "rare_country_share": 0.01,
        "rare_country_min_population": 500,
        "rare_country_without_history": 25,
    }

    def __init__(self, **options):
        super().__init__(**options)
        for key, levels in (("ip_weights", IP_LEVELS), ("ua_weights", UA_LEVELS)):
            weights = self.options[key]
            if len(weights) != len(levels) or abs(sum(weights) - 1) > 1e-6 or min(weights) < 0:
                raise ValueError(f"{key} needs {len(levels)} non-negative weights summing to 1")
        # Per hierarchy, built once: its smoothing steps (coarsest level first), its (level, weight) pairs,
        # and whether its ratio may fall below 1. Scoring a login then formats no key.
        self._hierarchies = tuple(
            (
                _smoothing_steps(levels, self.options[key]),
                tuple(zip(levels, map(float, self.options[key]), strict=True)),
                # SECURITY: a user agent is a header the attacker writes; copying the victim's must not help.
                levels is UA_LEVELS and not self.options["user_agent_can_lower"],
            )
            for key, levels in (("ip_weights", IP_LEVELS), ("ua_weights", UA_LEVELS))
        )

    def likelihood_ratio(self, evidence: Evidence) -> float | None:
        """S for this login, or None when the user has no history (p(u|L) would be 0)."""
        profile = evidence.profile
        n_user = profile.total("dtype")
        if n_user == 0:
            return None
        ctx = evidence.ctx
        values, value_keys = ctx.features, ctx.population_value_keys
        count = profile.count
        population = evidence.population.get
        n_all = population("#dtype", 0)
        users = population("#users", 0)
        ratio = (n_all / (users * n_user)) if n_all and users else 1.0
        # A known device cookie whose browser is the same or a newer version of the one it last sent is a
        # browser update, not a new client: the user-agent feature is left out (ratio 1).
        skip_client = (
            self.options["browser_update_neutral"]
            and evidence.device.known
            and user_agent_change(device_memory(profile, values["dev"]), evidence) in ("same", "update")
        )
        for steps, weighted_levels, at_least_one in self._hierarchies:
            if at_least_one and skip_client:
                continue
            p_global = _smoothed_probability(population, steps, value_keys)
            p_user = 0.0
            for level, weight in weighted_levels:
                p_user += weight * count(level, values[level])
            p_user /= n_user
            if p_user == 0:
                p_user = p_global / 4
            feature_ratio = p_global / p_user
            if at_least_one and feature_ratio < 1.0:
                feature_ratio = 1.0
            ratio *= feature_ratio
        return ratio

    @staticmethod
    def population_probability(
        evidence: Evidence, levels: tuple[str, ...], weights: list[float], values: dict[str, str | None]
    ) -> float:
        """p(x) = sum_l w_l * p^(x_l), smoothed with M = distinct values at coarser levels + 1
        (what :meth:`likelihood_ratio` computes for each hierarchy)."""
        value_keys = {level: f"{level}:{values[level]}" for level in levels}
        return _smoothed_probability(evidence.population.get, _smoothing_steps(levels, weights), value_keys)

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        ratio = self.likelihood_ratio(evidence)
        if ratio is None:
            return self._without_history(evidence)
        points = self.options["points_per_doubling"] * math.log2(max(ratio, 1e-300))
        points = round(max(self.options["min_points"], min(self.options["max_points"], points)))
        if points > 0:
            return [Finding("unfamiliar_login", points, _UNFAMILIAR, {"likelihood_ratio": round(ratio, 4)})]
        return [Finding("familiar_login", points, _FAMILIAR, {"likelihood_ratio": round(ratio, 4)})]

    def _without_history(self, evidence: Evidence) -> list[Finding]:
        """No history to compare with: only the population can speak. A country almost nobody signs in
        from (or an unknown one) is risk for an account with no recent history."""
        total = evidence.population_count("#cc")
        if total < self.options["rare_country_min_population"]:
            return []  # too few logins site-wide to call any country rare
        country = evidence.ctx.features["cc"]
        share = evidence.population_count(f"cc:{country}") / total
        if share >= self.options["rare_country_share"]:
            return []
        return [
            Finding(
                "rare_country",
                self.options["rare_country_without_history"],
                _("A country this site's customers rarely sign in from, and no recent history to compare"),
                {"country": country, "share": round(share, 4)},
            )
        ]


def user_agent_change(memory: DeviceMemory | None, evidence: Evidence) -> str | None:
    """How this login's parsed user agent relates to the one the same device cookie last sent.

    ``None`` when nothing is remembered, ``"same"`` (same family, major version, OS and device type),
    ``"update"`` (a newer major version of the same browser on the same OS and device type: a real browser
    update), ``"backwards"`` (an older major version) or ``"sideways"`` (another browser family, OS or
    device type). A browser cookie never moves to an older browser or another OS; a stolen one replayed
    with the user agent of the day it was stolen does.
    """
    if memory is None:
        return None
    client = evidence.ctx.client
    if client.browser != memory.browser or client.os != memory.os or client.device_type != memory.dtype:
        return "sideways"
    major = major_version(client.browser_version)
    if major == memory.major:
        return "same"
    return "update" if major > memory.major else "backwards"


def _only_imported_devices(profile: Profile) -> bool:
    """Whether every device the profile remembers came from ``import-history`` (the portal's old device ids,
    never authguard cookies): until the account's first authguard cookie, its customer's own browser with a
    new cookie looks exactly like a copied user agent, so that finding waits (``new_device`` does not)."""
    imported = profile.data.get("imp")
    if not imported:
        return False
    devices = profile.data.get("dv") or {}
    return all(entry and entry[0] <= imported for entry in devices.values())


class DeviceCookie(RiskSignal):
    """Known, remembered or new browser, recognised by authguard's long-lived device cookie.

    The cookie is evidence, not identity: infostealer malware copies it with the rest of the browser's
    cookies. A known device counts as known only where it fits its own past: a network (ASN) or city this
    device never signed in from (once the account has ``account_min_logins`` sign-ins), a user agent that
    went backwards or sideways for this cookie, a cookie whose last legitimate use was long ago, or a
    device that would have moved faster than ``device_max_kmh`` since its last use each add risk; a new
    network or city also cancels the known-device discount (a remembered device gets only
    ``remembered_device_elsewhere``).

    A new browser is mild risk on a network (ASN) the account uses, more on one it never used.
    A login *without* the cookie but with the user agent of one of the account's browsers (the exact
    string, or a near copy: same browser family and major version, OS and device type), from a /24 the
    account never used, is the signature of an attacker replaying the victim's user agent (the user
    agent is easy to copy; the HttpOnly cookie is not), even on the victim's own ISP.
    """

    defaults = {
        "new_device": 25,
        "new_device_new_network": 15,
        "copied_user_agent": 30,
        "known_device": -10,
        "remembered_device": -25,
        "remembered_device_elsewhere": -10,
        "account_min_logins": 2,
        "device_new_network": 35,
        "device_new_network_known_to_account": 0,
        "device_new_city": 10,
        "portable_factor": 0.25,
        "device_city_min_km": 30,
        "device_user_agent_backwards": 40,
        "device_user_agent_sideways": 40,
        "stale_device_days": 60,
        "stale_device": 5,
        "device_max_kmh": 400,
        "device_min_km": 150,
        "device_moved": 10,
        "device_binding_missing": 60,
    }

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        device, profile = evidence.device, evidence.profile
        if evidence.ctx.dbsc == "bound_missing_proof":
            # SECURITY: the cookie of a device bound to a key (DBSC) without the proof that key gives: it was
            # copied off the device (an infostealer). No discount for a known device, and a step-up at least.
            return [
                Finding(
                    "device_binding_missing",
                    self.options["device_binding_missing"],
                    _("A device cookie bound to a device key, presented without that key's proof"),
                    {STEP_UP_FLOOR: True},
                )
            ]
        if device.known or device.trusted:
            return self._known(evidence)
        if profile.logins == 0:
            return []  # nothing to compare with; AccountContext reports the missing history
        if profile.total("dev") == 0:
            # This account's logins never carried a device cookie (an API client, or a log without them):
            # a missing cookie says nothing here.
            return []
        findings = [
            Finding(
                "new_device",
                self.options["new_device"],
                _("A browser never seen on this account"),
                {"cookie_presented": device.presented},
            )
        ]
        features = evidence.ctx.features
        if profile.count("asn", features["asn"]) == 0:
            findings.append(
                Finding(
                    "new_device_new_network",
                    self.options["new_device_new_network"],
                    _("A new browser on a network this account never used"),
                )
            )
        if (
            profile.count("prefix", features["prefix"]) == 0
            and (profile.count("ua", features["ua"]) > 0 or profile.count("uac", features["uac"]) > 0)
            and not _only_imported_devices(profile)
        ):
            findings.append(
                Finding(
                    "copied_user_agent",
                    self.options["copied_user_agent"],
                    _("The browser signature of one of this account's devices, without its cookie"),
                    {"exact": profile.count("ua", features["ua"]) > 0},
                )
            )
        return findings

    def _known(self, evidence: Evidence) -> list[Finding]:
        """A device cookie this account used before (or remembered): check that it fits its own past."""
        o, profile, features = self.options, evidence.profile, evidence.ctx.features
        findings = self._elsewhere(evidence)
        if evidence.device.trusted:
            points = o["remembered_device_elsewhere"] if findings else o["remembered_device"]
            findings.append(
                Finding("remembered_device", points, _("A device remembered after a second-factor check"))
            )
        elif not findings:
            findings.append(Finding("known_device", o["known_device"], _KNOWN_DEVICE))
        memory = device_memory(profile, features["dev"])
        change = user_agent_change(memory, evidence)
        # user_agent_change answers None without a memory; the test narrows it for the type checker.
        if memory is not None and change in ("backwards", "sideways"):
            findings.append(
                Finding(
                    f"device_user_agent_{change}",
                    o[f"device_user_agent_{change}"],
                    _("This device's browser is older than, or not the same as, the one it used before"),
                    {
                        "was": f"{memory.browser} {memory.major} {memory.os}",
                        "now": evidence.ctx.client.summary,
                    },
                )
            )
        if memory is None:
            return findings
        ctx = evidence.ctx
        idle_days = (ctx.timestamp - memory.t) / 86400
        if idle_days >= o["stale_device_days"]:
            findings.append(
                Finding(
                    "stale_device",
                    o["stale_device"],
                    _("This device had not signed in for a long time"),
                    {"days": round(idle_days)},
                )
            )
        geo = ctx.geo
        if (
            memory.lat is not None
            and memory.lon is not None
            and geo.latitude is not None
            and geo.longitude is not None
            and not geo.anonymous_vpn
        ):
            distance = haversine_km(memory.lat, memory.lon, geo.latitude, geo.longitude)
            effective = max(0.0, distance - (memory.acc or 0) - (geo.accuracy_km or 0))
            hours = max((ctx.timestamp - memory.t) / 3600, 1 / 60)
            if effective >= o["device_min_km"] and effective / hours > o["device_max_kmh"]:
                findings.append(
                    Finding(
                        "device_moved",
                        o["device_moved"],
                        _("The same device signed in from a distant place too shortly before"),
                        {"km": round(effective), "hours": round(hours, 2)},
                    )
                )
        return findings

    def _far(self, evidence: Evidence) -> bool:
        """Whether the login is at least ``device_city_min_km`` from the device's last place, after
        subtracting both accuracy radii (a block located at the region's big city is not a move)."""
        memory = device_memory(evidence.profile, evidence.ctx.features["dev"])
        geo = evidence.ctx.geo
        if (
            memory is None
            or memory.lat is None
            or memory.lon is None
            or geo.latitude is None
            or geo.longitude is None
        ):
            return True
        distance = haversine_km(memory.lat, memory.lon, geo.latitude, geo.longitude)
        effective = distance - (memory.acc or 0) - (geo.accuracy_km or 0)
        return effective >= self.options["device_city_min_km"]

    def _elsewhere(self, evidence: Evidence) -> list[Finding]:
        """A known device on a network (ASN) or in a city this device never signed in from."""
        profile, features, o = evidence.profile, evidence.ctx.features, self.options
        if (
            not evidence.device.known
            or profile.total("dasn") == 0
            or profile.logins < o["account_min_logins"]
        ):
            # A remembered device the profile never learned, a profile from before per-device memory, or an
            # account too new to have habits (its second sign-in, from the office, is not a stolen cookie).
            return []
        findings = []
        # Phones and tablets change networks all day (mobile data, wifi): their new places count less.
        factor = o["portable_factor"] if evidence.ctx.client.device_type in ("mobile", "tablet") else 1.0
        if profile.count("dasn", features["dasn"]) == 0:
            # A network another of the account's devices uses (the home line the phone also uses) is a
            # small step; one the account never used is where a stolen cookie is replayed from.
            account_network = profile.count("asn", features["asn"]) > 0
            points = o["device_new_network_known_to_account" if account_network else "device_new_network"]
            if points:
                findings.append(
                    Finding(
                        "device_new_network",
                        round(points * factor),
                        _("A known device on a network it never signed in from"),
                        {"asn": evidence.ctx.geo.asn, "account_network": account_network},
                    )
                )
        if features["city"] != "?" and profile.count("dcity", features["dcity"]) == 0 and self._far(evidence):
            findings.append(
                Finding(
                    "device_new_city",
                    round(o["device_new_city"] * factor),
                    _("A known device in a city it never signed in from"),
                    {"city": evidence.ctx.geo.place},
                )
            )
        return findings


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


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
        if not 0 <= elapsed <= self.options["minutes"] * 60 or last.get("asn") == ctx.geo.asn:
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
            if abs(ctx.timestamp - time.time()) <= BLOCKS_LIVE_SECONDS:
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
            if idle_days >= self.options["dormant_days"]:
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
