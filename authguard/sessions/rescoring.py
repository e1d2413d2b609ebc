"""Mid-session re-scoring: a verified session whose request context changed materially is scored again.

Called by the middleware for every request of a verified session (:func:`check_binding`); the session state
and its binding live in :mod:`authguard.sessions.state`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from authguard.choices import Action, Outcome
from authguard.conf import app_settings
from authguard.factors.methods import step_up_methods
from authguard.login import flow as login_flow
from authguard.risk.context import LoginContext
from authguard.risk.engine import Assessment, combined_score
from authguard.risk.findings import STEP_UP_FLOOR, Finding
from authguard.risk.history import DatabaseHistory, Evidence
from authguard.risk.policy import current_policy
from authguard.risk.signals_network import ImpossibleTravel
from authguard.sessions import device_binding, device_generations, pending
from authguard.sessions import state as sessions_state
from authguard.sessions.address_returns import returned_address
from authguard.sessions.places import in_two_places, known_seen, returned_browser, went_back
from authguard.sessions.state import (
    _fingerprint,
    _request_parts,
    _save,
    current_binding,
    is_material_change,
)

logger = logging.getLogger(__name__)

#: The finding of such a session's re-score (a step-up at least) and its points.
SESSION_IN_TWO_PLACES = "session_in_two_places"
TWO_PLACES_POINTS = 10
#: The finding of a session back in a browser it left for another (a step-up at least).
SESSION_IN_TWO_BROWSERS = "session_in_two_browsers"
#: The finding of a session back at an address of its network it left minutes ago (a step-up at least).
SESSION_AT_TWO_ADDRESSES = "session_at_two_addresses"


def check_binding(request: HttpRequest, state: dict[str, Any], *, last_seen: float | None = None) -> str:
    """Compare this request's context with the one the verified session is bound to (``last_seen``: the
    session's last activity before this request, when it was last seen where it is bound).

    Returns ``"same"`` (nothing to do), ``"moved"`` (another IP in the same network: rebound), ``"allowed"``
    (a material change the risk engine allowed: rebound), ``"reported"`` (``"step_up"`` is report-only: a
    risky re-score recorded with a ``report_only`` finding, the session rebound and carried on, no longer
    low-risk), ``"pending"`` (scored ``step_up``, or back where it was minutes ago from far away,
    :func:`in_two_places`: the session must step up again; logged as a ``rescored`` login event) or
    ``"ended"`` (scored ``deny``, or ``step_up`` for a user with no factor to step up with: what a fresh
    login from there would be refused; logged as ``refused``). The caller signs an ended session out.

    A move is material (:func:`~authguard.sessions.state.is_material_change`) also against the session's
    anchor, where it was last verified or re-scored, so short hops add up (``"allowed"`` and ``"reported"``
    move the anchor; ``"moved"`` never does).

    SECURITY: a re-scored session is never treated more gently than a fresh sign-in (battery case 61): a
    context a fresh login would be refused from must not be one relayed code away from the account.
    """
    ip, ua, cookie = _request_parts(request)
    fingerprint = _fingerprint(ip, ua, cookie)
    # SECURITY: a DBSC-bound session's request without its bound cookie is a copy of the session cookie
    # wherever it comes from: re-scored, and the context's missing proof holds it (device_binding_missing).
    proof_missing = sessions_state.bound_proof_missing(request, state)
    if proof_missing and device_binding.binding_released(state["db"]):
        # The binding ended (revoked, expired; not replaced): nothing is left to prove. One query, only here.
        state.pop("db", None)
        _save(request, state)
        proof_missing = False
    # SECURITY: a device cookie its own browser has moved on from (a later sign-in) is a copy, whatever
    # else this request matches: the copied session is re-scored and held (device_generations).
    device, generation = device_generations.presented(request)
    changed, left_behind = device_generations.check_session(
        request, state, device=device, generation=generation, now=sessions_state._now()
    )
    if changed:
        _save(request, state)
    held = proof_missing or left_behind
    if not held and sessions_state.same_fingerprint(state, fingerprint):
        return "same"
    now = current_binding(request)
    back = returned_address(state, now, sessions_state._now(), left_at=last_seen)
    if not held and back is None and not is_material_change(sessions_state.bound_context(state), now, state):
        sessions_state.rebind(state, now, fingerprint, left_at=last_seen)
        _save(request, state)
        return "moved"
    twice = in_two_places(state, now, sessions_state._now(), left_at=last_seen)
    assessment, ctx = _rescore(request, history=seen_history(state, last_seen))
    if twice is not None:
        assessment = _held_in_two_places(assessment, twice)
    if left_behind:
        assessment = _held_left_behind(assessment)
    if back is not None:
        assessment = _held_at_two_addresses(assessment, back)
    assessment = held_in_two_browsers(
        assessment, state=state, bound=sessions_state.bound_context(state), now=now
    )
    if proof_missing:
        # SECURITY: whatever device cookie this request sends (none, or a fresh one, so that the context sees
        # no binding), the session's own binding is alive and unproven: a step-up at least.
        assessment = _held_without_proof(assessment)
    state["r"] = True  # re-scored once: the session's context changed since its sign-in
    if assessment.action == Action.ALLOW:
        sessions_state.rebind(state, now, fingerprint, rescored="allowed", left_at=last_seen)
        _save(request, state)
        return "allowed"
    no_factor = not step_up_methods(request.user)
    if app_settings.report_only("step_up"):
        # Rollout: record what would have happened, carry the session on (rebound, no longer low-risk).
        would_have = "end_session" if assessment.action == Action.DENY or no_factor else "step_up"
        reported = login_flow.with_report_only(assessment, "step_up", would_have, rescored=True)
        login_flow.record_event(
            ctx, request.user, reported, password_ok=False, rescore=True, outcome=Outcome.SIGNED_IN
        )
        sessions_state.rebind(state, now, fingerprint, rescored="reported", left_at=last_seen)
        if left_behind:
            device_generations.note_reported(state, device, generation)
        _save(request, state)
        logger.warning(
            "authguard REPORT-ONLY step_up user=%s ip=%s re-scored session would have %s: %s",
            request.user.pk,
            ctx.ip,
            would_have,
            assessment.explain(),
        )
        return "reported"
    if assessment.action == Action.DENY or no_factor:
        login_flow.record_event(
            ctx, request.user, assessment, password_ok=False, rescore=True, outcome=Outcome.REFUSED
        )
        logger.warning(
            "authguard session ended on re-score user=%s ip=%s %s",
            request.user.pk,
            ctx.ip,
            assessment.explain(),
        )
        return "ended"
    event = login_flow.record_event(
        ctx, request.user, assessment, password_ok=False, rescore=True, outcome=Outcome.RESCORED
    )
    # SECURITY: a session carried to another network, device or browser proves nothing by itself. The
    # re-score's event is the one a later step-up marks passed.
    pending.back_to_pending(state, event_id=event.pk, scored=now)
    _save(request, state)
    logger.warning(
        "authguard session re-scored user=%s ip=%s event=%s %s",
        request.user.pk,
        ctx.ip,
        event.pk,
        assessment.explain(),
    )
    return "pending"


def _rescore(request: HttpRequest, *, history: DatabaseHistory | None = None) -> tuple[Any, LoginContext]:
    user = request.user
    # Scored, never learned: the session's new context has not proved anything.
    scored = login_flow.score_request(request, username=user.get_username(), user=user, history=history)
    return scored.assessment, scored.context


def seen_history(state: dict[str, Any], last_seen: float | None) -> DatabaseHistory | None:
    """The history a re-score of a session (or an API token, whose state has the same places) is scored
    with: travel measured from where it was last seen (:func:`_seen_places`); None: the account's own."""
    seen = _seen_places(state, last_seen)
    return _SeenHistory(seen) if seen else None


def _seen_places(state: dict[str, Any], last_seen: float | None) -> list[dict[str, Any]]:
    """Each place the session provably was at (precise, non-anonymous) and when it was last seen there, in
    the shape of a profile's last sign-in (:attr:`authguard.risk.profile.Profile.last`), the last one last.
    SECURITY: not the bound place: an anonymous one (a cloud VM's) is never a starting point for travel, and
    an unplaced one has none, so a first hop through either measured Singapore from her sign-in again (red
    team, round forty-eight)."""
    if last_seen is None:
        return []
    return [
        {"t": seen, "lat": place[0], "lon": place[1], "acc": place[2], "asn": asn, "anon": False}
        for place, asn, seen in known_seen(state, last_seen=last_seen)
    ]


class _SeenHistory(DatabaseHistory):
    """The account's history, its last sign-in replaced by where the session was last seen when that is
    later. SECURITY: travel was measured from her sign-in: a copy of her live jar replayed from Singapore a
    minute after her call from Tokyo was held five hours into her session and let in at seven (5,300 km in
    seven hours is possible; in a minute it is not; red team, round forty-seven)."""

    def __init__(self, seen: list[dict[str, Any]]) -> None:
        super().__init__()
        self.seen = seen

    def evidence(self, ctx: LoginContext) -> Evidence:
        evidence = super().evidence(ctx)
        last = evidence.profile.last
        # SECURITY: a later sign-in of another browser at a place that proves nothing (anonymous, unplaced)
        # is no starting point for travel (ImpossibleTravel skips it): the session's own place is (round 49).
        placeless = not last or last.get("lat") is None or bool(last.get("anon"))
        if placeless or float(last.get("t") or 0) < self.seen[-1]["t"]:
            _measure_from_the_farthest(evidence, self.seen)
        return evidence


def _measure_from_the_farthest(evidence: Evidence, seen: list[dict[str, Any]]) -> None:
    """Make ``evidence``'s last sign-in the session's place that gives the travel rule (the policy's
    :class:`~authguard.risk.signals_network.ImpossibleTravel`) the most points, the latest among equals.

    SECURITY: measured from the session's latest place only, a copy of her jar chose where travel began: one
    call through an address of her ISP that GeoIP places 225 km off with a 100 km radius (no material move,
    never scored, yet a precise place) made his Osaka, a minute after her call from Tokyo, no travel at all
    (red team, round fifty-two). Every place the session was seen at is a place it left in its own time."""
    base, last = evidence.profile.data, evidence.profile.last or {}
    rules = [signal for signal in current_policy().signals if isinstance(signal, ImpossibleTravel)]

    def points(place: dict[str, Any]) -> int:
        evidence.profile.data = {**base, "last": {**last, **place}}
        return sum(finding.score for rule in rules for finding in rule.evaluate(evidence))

    chosen, most = seen[-1], points(seen[-1])
    for place in reversed(seen[:-1]):
        if (score := points(place)) > most:
            chosen, most = place, score
    evidence.profile.data = {**base, "last": {**last, **chosen}}


def _held_in_two_places(assessment: Assessment, evidence: dict[str, int]) -> Assessment:
    """The re-score of a session in two places: a step-up at least, however low it scored."""
    # SECURITY: a thief replaying the whole cookie jar from a place the customer also uses scores low there
    # (her history); going back and forth with her live session is what gives him away (ping-pong).
    finding = Finding(
        SESSION_IN_TWO_PLACES,
        TWO_PLACES_POINTS,
        # The wording of device_in_two_places, already translated: the same browser data, two places.
        _("This browser was in use too far from here minutes ago"),
        {**evidence, STEP_UP_FLOOR: True},
    )
    return _at_least_step_up(assessment, finding)


def _held_at_two_addresses(assessment: Assessment, evidence: dict[str, int]) -> Assessment:
    """The re-score of a session back at an address of its network it left minutes ago: a step-up at least."""
    # SECURITY: a copy of her whole jar from another address of her ISP in her city is no material change;
    # taking turns with her is what gives it away (red team, round sixty-two). Her step-up renews the
    # session key, which ends the copy.
    return _held_for_the_session(
        assessment,
        SESSION_AT_TWO_ADDRESSES,
        _("This session was in use from another address minutes ago"),
        evidence=evidence,
    )


def held_in_two_browsers(
    assessment: Assessment, *, state: dict[str, Any], bound: dict[str, Any], now: dict[str, Any]
) -> Assessment:
    """``assessment`` held at a step-up at least when two browsers hold the session (or token) bound to
    ``bound`` in ``state``: its browser went back a release (:func:`~authguard.sessions.places.went_back`),
    or it is back in a browser it left for another (:func:`~authguard.sessions.places.returned_browser`).
    The one rule for a browser session's re-score and an API token's."""
    if went_back(bound, now):
        assessment = _held_went_back(assessment)
    if returned_browser(state, bound, now):
        assessment = _held_in_two_browsers(assessment)
    return assessment


def _held_went_back(assessment: Assessment) -> Assessment:
    """The re-score of a session whose browser went back a release: a step-up at least."""
    # SECURITY: after a copy's newer release, her own older browser's request was re-scored against the
    # device's memory (its release at sign-in), found nothing and was allowed; the two went on side by side,
    # neither ever held (red team, round twenty-nine). One session that showed a release and then an older
    # one is two browsers, as one back at a place it left minutes ago is two holders.
    return _held_for_the_session(
        assessment,
        "device_user_agent_backwards",
        _("This device's browser is older than, or not the same as, the one it used before"),
    )


def _held_in_two_browsers(assessment: Assessment) -> Assessment:
    """The re-score of a session back in a browser it left for another: a step-up at least."""
    # SECURITY: her Chrome on Windows and the thief's copy in Chrome on a Mac took turns in one session, each
    # turn another browser, re-scored and allowed, none ever held, so the copy lived beside her session until
    # her next sign-in (red team, round thirty). A browser's cookies never move to another OS and back: as a
    # session back at a place it left (session_in_two_places), it is two holders. Her step-up in each browser
    # vouches for both (an Android tablet flipping to its desktop site).
    return _held_for_the_session(
        assessment, SESSION_IN_TWO_BROWSERS, _("Another browser has been using this session too")
    )


def _held_without_proof(assessment: Assessment) -> Assessment:
    """The re-score of a DBSC-bound session's request without its bound cookie: a step-up at least."""
    return _held_for_the_session(
        assessment,
        "device_binding_missing",
        _("A device cookie bound to a device key, presented without that key's proof"),
    )


def _held_left_behind(assessment: Assessment) -> Assessment:
    """The re-score of a session whose device cookie its browser has moved on from: a step-up at least."""
    return _held_for_the_session(
        assessment,
        "device_cookie_superseded",
        _("A copy of this browser's cookie, which the browser itself has since replaced"),
    )


def _held_for_the_session(
    assessment: Assessment, code: str, label: Any, *, evidence: dict[str, Any] | None = None
) -> Assessment:
    """``assessment`` with the session's own ``code`` finding (and its ``evidence``), a step-up at least;
    unchanged when the context judged the same thing already (with its own floor)."""
    if code in assessment.reasons:
        return assessment
    # The floor decides; the points make it a reason.
    finding = Finding(
        code, TWO_PLACES_POINTS, label, {**(evidence or {}), STEP_UP_FLOOR: True, "session": True}
    )
    return _at_least_step_up(assessment, finding)


def _at_least_step_up(assessment: Assessment, finding: Finding) -> Assessment:
    """``assessment`` with ``finding`` (which asks for a step-up whatever its points), scored by the engine's
    one rule (:func:`~authguard.risk.engine.combined_score`); a refusal stays one."""
    thresholds = current_policy().thresholds
    findings = (*assessment.findings, finding)
    score = combined_score(findings, thresholds)
    action = Action.DENY if assessment.action == Action.DENY else thresholds.decide(score)
    return Assessment(score, action, findings)
