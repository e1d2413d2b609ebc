"""The decision on a request scored while part of its evidence lived in a cache that could not be read.

:func:`authguard.login.flow.score_request` applies :func:`fail_safe` to every enforced score (sign-ins,
passkey sign-ins, session and token re-scores): the velocity and throttle counters, and where a verified
session last used the device cookie (:mod:`authguard.sessions.device_activity`), live in the cache.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from authguard.choices import Action
from authguard.conf import app_settings
from authguard.risk.engine import Assessment
from authguard.risk.findings import Finding
from authguard.risk.signals_network import haversine_km

logger = logging.getLogger(__name__)

# Set when the throttle's counters could not be used for this request's attempt (cache down or hung).
THROTTLE_UNAVAILABLE_ATTR = "_authguard_throttle_unavailable"
#: The finding added to a login decided while the velocity or throttle counters were unavailable.
COUNTERS_UNAVAILABLE = "counters_unavailable"
#: How near the account's last sign-in a known device must be while its activity cannot be read (km, after
#: both accuracy radii).
LAST_PLACE_KM = 30


def _at_its_last_place(evidence: Any) -> bool:
    """Whether the account's last successful sign-in was this device cookie, on this network (ASN), at this
    place: while the device's activity cannot be read, the only known device that needs no step-up."""
    ctx = evidence.ctx
    last = evidence.profile.data.get("last") or {}
    geo = ctx.geo
    if not ctx.device_hash or last.get("dev") != ctx.device_hash[:20] or last.get("asn") != geo.asn:
        return False
    if geo.latitude is None or last.get("lat") is None:
        return False
    apart = haversine_km(last["lat"], last["lon"], geo.latitude, geo.longitude)
    return apart - (last.get("acc") or 0) - (geo.accuracy_km or 0) <= LAST_PLACE_KM


def fail_safe(request: HttpRequest, assessment: Assessment, evidence: Any) -> Assessment:
    """The decision on a scored request (a sign-in, a re-score) when the velocity or throttle counters, or
    the device cookie's activity, were unavailable.

    SECURITY: fail safe, not fail shut. A login from a known device whose other signals add no more than
    ``AUTHGUARD_COUNTERS_UNAVAILABLE_MAX_SCORE`` keeps its "allow" (the customer at home is not locked out
    by a Redis outage); every other "allow" becomes a step-up (never allowed on missing data). While the
    device's activity cannot be read, that known device must also be where the account last signed in
    with it (same network, same place): a copy of her cookie at her office while she was active at home was
    allowed, which ``device_in_two_places`` steps up with the cache up (red team, round seventy-two).
    Step-ups and denials stand. Either way the decision records a ``counters_unavailable`` finding (score
    0). Evidence that could not be gathered at all (``None``) was stepped up by :func:`risk.score_login`.
    """
    velocity = getattr(evidence, "velocity", None)
    no_activity = bool(getattr(getattr(evidence, "ctx", None), "device_activity_unavailable", False))
    missing = (
        getattr(request, THROTTLE_UNAVAILABLE_ATTR, False)
        or (velocity is not None and not velocity.available)
        or no_activity
    )
    if not missing or evidence is None:
        return assessment
    added = sum(f.score for f in assessment.findings if f.score > 0)
    low_risk = evidence.device.known and added <= app_settings.COUNTERS_UNAVAILABLE_MAX_SCORE
    if low_risk and no_activity:
        low_risk = _at_its_last_place(evidence)
    action = assessment.action
    if action == Action.ALLOW and not low_risk:
        action = Action.STEP_UP
    finding = Finding(
        COUNTERS_UNAVAILABLE,
        0,
        gettext_lazy(
            "The sign-in counters could not be read; only a low-risk sign-in from a known device passes"
        ),
        {"low_risk": bool(low_risk), "was": str(assessment.action), "device_activity": not no_activity},
    )
    # One line per login decided without counters (the finding scores 0, so explain() leaves it out).
    logger.info("authguard: login decided without counters: %s -> %s", assessment.action, action)
    return Assessment(assessment.score, action, (*assessment.findings, finding))


__all__ = ["COUNTERS_UNAVAILABLE", "THROTTLE_UNAVAILABLE_ATTR", "fail_safe"]
