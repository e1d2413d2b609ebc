"""The statistical model: how familiar a login's network and browser are, for the account and site-wide.

One of the built-in risk signals (all listed in :mod:`authguard.risk.signals`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from django.utils.translation import gettext_lazy as _

from authguard.risk.findings import Finding, RiskSignal
from authguard.risk.history import Evidence
from authguard.risk.profile import IP_LEVELS, UA_LEVELS, device_memory
from authguard.risk.signals_device import _shared_network, user_agent_change
from authguard.risk.signals_device_history import new_browser

_TOTAL = {level: f"#{level}" for level in (*IP_LEVELS, *UA_LEVELS)}
_DISTINCT = {level: f"~{level}" for level in (*IP_LEVELS, *UA_LEVELS)}

# Reasons of the findings nearly every login carries, made once (a lazy string costs a little each time).
_UNFAMILIAR = _("Network and browser are unusual for this account")
_FAMILIAR = _("Network and browser match this account's history")
_FAMILIAR_NEW_BROWSER = _("The network matches this account's history, but not the browser: no discount")


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


def _new_browser(evidence: Evidence) -> bool:
    """A browser new to the account (:func:`~authguard.risk.signals_device_history.new_browser`: what
    :class:`~authguard.risk_signals.DeviceCookie` calls a new device, also the first browser on an account
    only ever signed into by an app without a cookie jar), or the copy of a DBSC-bound device's cookie
    presented without its key's proof (worse than a new device)."""
    return evidence.ctx.dbsc == "bound_missing_proof" or new_browser(evidence)


def _copy_elsewhere(evidence: Evidence) -> bool:
    """A device cookie one or more generations behind the one its browser now holds (a copy, or a crash that
    lost the newest), away from every address the account signed in from.

    SECURITY: a copy one sign-in old (``device_cookie_behind``) was excused "at home", but the familiar part
    of the login (her ISP, her city, her hour: what a targeted proxy matches) paid for it wherever the site's
    population made her network rare: her phone's copy from her ISP 830 km away was allowed (red team, round
    thirty-two). Only her own address excuses it, as a browser that crashed at home."""
    device, features = evidence.device, evidence.ctx.features
    # SECURITY: a VPN's or proxy's exit she used is no address of hers: the thief rents the same one (red
    # team, round thirty-three).
    shared = _shared_network(evidence.ctx.geo)
    return device.left_behind >= 1 and (shared or evidence.profile.count("ip", features["ip"]) == 0)


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
        "new_device_can_lower": False,
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
        if (
            points < 0
            and not self.options["new_device_can_lower"]
            and (_new_browser(evidence) or _copy_elsewhere(evidence))
        ):
            # SECURITY: the familiar part of a login with a browser the account never used is its network,
            # place and hour, which a targeted thief picks to match (a proxy on the customer's ISP in the
            # customer's city at the customer's usual hour: low and slow); it must not offset the browser.
            facts = {"likelihood_ratio": round(ratio, 4), "new_device": True}
            return [Finding("familiar_login", 0, _FAMILIAR_NEW_BROWSER, facts)]
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
