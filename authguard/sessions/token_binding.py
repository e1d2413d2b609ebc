"""An API token is bound to where it was issued, as a browser session is to where it was verified.

A verified browser session whose network (ASN), country, browser family or place changes materially is
scored again (:mod:`authguard.sessions.rescoring`); a token is the same sign-in, so a copy of it replayed
from another network or by another client is scored again too, by the same rules and the same state: the
binding, the anchor (where it was last issued or re-scored, so short hops add up), its recent places and
the places where the customer proved it was her (the issuing sign-in), kept beside the token's last use
(:class:`~authguard.models.TokenActivity`), with a version ``v`` so that two calls in flight never write
over each other's (compare-and-set). A re-score the engine allows moves the binding there; a token
back at a place it left minutes ago from far away (:func:`~authguard.sessions.places.in_two_places`) or
any other outcome ends the token, and its holder signs in again (risk-scored, stepped up): a bearer token
cannot be held mid-request for a second factor the way a browser session is.

The device cookie is not part of a token's binding: an API client need not keep a cookie jar (one that does
has its cookie moved on per token: :mod:`authguard.sessions.token_devices`). A token issued to a request that
presented a fresh DBSC bound cookie is tied to that binding (``db``), as a session is
(:func:`authguard.sessions.state.bound_proof_missing`): each call must carry a fresh bound cookie of it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from authguard import clock
from authguard.choices import Action, Outcome
from authguard.conf import app_settings
from authguard.login import flow as login_flow
from authguard.models import LoginEvent, TokenActivity
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.risk.geoip import geolocate
from authguard.sessions import device_binding, token_activity
from authguard.sessions.places import (
    MATERIAL_MOVE_KM,
    _precise,
    anonymous,
    apart,
    in_two_places,
    is_material_change,
    place_binding,
    place_of,
    places,
)
from authguard.sessions.rescoring import (
    _held_for_the_session,
    _held_in_two_places,
    _held_without_proof,
    held_in_two_browsers,
    seen_history,
)
from authguard.sessions.state import (
    _fingerprint,
    _request_parts,
    bound_proof_missing,
    current_binding,
    rebind,
)
from authguard.sessions.token_activity import Activity, _digest, write_binding
from authguard.sessions.token_strength import STRENGTH_DROPPED, forget_token_strength

logger = logging.getLogger(__name__)

Verdict = Literal["same", "allowed", "reported", "ended"]

#: The key of the token's state that holds the DBSC binding its sign-in proved (the session state's key).
BOUND_KEY = "db"


def binding_of(request: HttpRequest) -> dict[str, Any]:
    """The context of ``request`` as a token's binding keeps it (no device cookie)."""
    return {**current_binding(request), "dev": None}


def _fingerprint_of(request: HttpRequest) -> str:
    ip, ua, _cookie = _request_parts(request)
    return _fingerprint(ip, ua, None)


def vouched_before(request: HttpRequest, *, user: Any, now: float) -> list[Any]:
    """The precise places near this request (under ``MATERIAL_MOVE_KM``: one region) where this browser or
    app, by its device cookie, signed ``user`` in within a token's lifetime (allowed, or stepped up and
    passed), newest last: a dual-stack line's other side, where she proved it was her.

    SECURITY: nothing without a device cookie (a user agent is copied with the token: red team, round
    seventeen), and nothing far away: a commuter's office, where her app signed in yesterday, must not
    excuse a copy going back and forth between it and her home (round seventeen)."""
    ip, _ua, cookie = _request_parts(request)
    device = device_hash(device_id_from_cookie(cookie))
    here = place_of(geolocate(ip))
    if not device or not here or not _precise(here):
        return []
    since = datetime.fromtimestamp(now - app_settings.SESSION_ABSOLUTE_SECONDS, tz=dt_timezone.utc)
    ips = (
        LoginEvent.objects.filter(
            user_id=user.pk,
            created_at__gte=since,
            password_ok=True,
            outcome__in=(Outcome.SIGNED_IN, Outcome.STEP_UP_PASSED),
            device_hash=device,
        )
        .order_by("-created_at")
        .values_list("ip", flat=True)[:10]
    )
    vouched: list[Any] = []
    for ip in ips:
        geo = geolocate(ip)
        place = place_of(geo)
        km = apart(place, here) if place else None
        near = km is not None and km < MATERIAL_MOVE_KM
        if place and not anonymous(geo) and _precise(place) and near and place not in vouched:
            vouched.append(place)
    return list(reversed(vouched[:3]))


def issued_state(request: HttpRequest, *, vouched: list[Any] | None = None) -> dict[str, Any]:
    """The binding state of a token issued to ``request``: bound, anchored and vouched for there (the sign-in
    or step-up that issued it is where the customer proved it was her), with the places ``vouched`` for the
    account's sign-ins of the token's lifetime (:func:`vouched_before`).

    A customer whose IPv6 is another network placed apart from her IPv4 signs in on both sides as her app
    flips between them: each place she signed in at stays hers, as in a browser session, or every return
    ended her new token (red team, round sixteen).
    """
    state: dict[str, Any] = {"vp": list(vouched or [])[-3:]} if vouched else {}
    binding = binding_of(request)
    place_binding(state, binding, verified=True, vouched=True)
    state["k"] = _fingerprint_of(request)
    if binding.get("cc"):
        state["ic"] = binding["cc"]  # the country it was issued in (token_new_country)
    if device_binding.enabled():
        presented = device_binding.presented_session_id(request)
        if presented is not None:
            # SECURITY: a sign-in that showed a fresh bound cookie (``bound_ok`` on her known browser) is
            # tied to that binding, as a session is (sessions.state._bind): the copied jar's token outlived
            # the copied bound cookie by hours (red team, round forty-one).
            state[BOUND_KEY] = presented
    return state


def note_bound(*, token_key: str, state: dict[str, Any]) -> None:
    """Keep ``state`` (:func:`issued_state`) for the token ``token_key`` (its activity row exists)."""
    TokenActivity.objects.filter(token_digest=_digest(token_key)).update(binding=state)


def _state(stored: Any) -> dict[str, Any]:
    # Round fourteen kept the bare binding (``{"asn": ...}``): read it as a state bound there.
    if isinstance(stored, dict) and "b" not in stored and "asn" in stored:
        return {"b": stored}
    return dict(stored) if isinstance(stored, dict) else {}


def check(request: HttpRequest, *, user: Any, token: Any, activity: Activity | None) -> Verdict:
    """Compare ``request`` with the state ``token`` of ``user`` is bound to.

    ``"same"``: the same request context, or no material change (another address of the same network
    nearby: rebound, the anchor kept); ``"allowed"``: a material change the risk engine allowed (rebound and
    anchored here); ``"reported"``: ``"step_up"`` is report-only, the re-score was recorded and the token
    rebound; ``"ended"``: the token has no activity row (``activity``, its row as
    :func:`.token_activity.read` found it, is ``None``: revoked by a call in flight beside this one), is
    in two places at once, or its re-score asked for a step-up or refused (recorded as a refused sign-in):
    the caller ends the token.

    The state is written only if no call wrote it since it was read (its version ``v``, compare-and-set):
    otherwise it is read again and this call checked again, once, against what the other call left.

    SECURITY: the token a customer's app got at home, copied by an infostealer and replayed by a script on a
    hosting network abroad, was served for up to a day with no re-score (red team, round fourteen); a copy
    alternating with her app between her home and a place her history knows was allowed at every move
    (round fifteen). A call of hers that read the state before a copy's slower re-score and wrote it after
    erased the copy's place: the next return was no return (round nineteen).
    """
    if activity is None:
        # SECURITY: no row: the token was revoked by a call in flight beside this one (it had loaded the
        # token before the delete), or issued before activity was kept: ended either way (round fifteen).
        return "ended"
    verdict = _check_once(request, user=user, token=token, activity=activity, last_try=False)
    if verdict is None:  # another call wrote the state since it was read: checked against what it left
        activity = token_activity.read(token=token)
        if activity is None:
            return "ended"
        verdict = _check_once(request, user=user, token=token, activity=activity, last_try=True)
    return verdict or "ended"  # (the last try always answers)


def _check_once(
    request: HttpRequest, *, user: Any, token: Any, activity: Activity, last_try: bool
) -> Verdict | None:
    """:func:`check` against the state ``activity`` holds; None when another call wrote the state in between
    (not on the ``last_try``: a third call in flight at once keeps its place, this one is answered
    unwritten)."""
    state, fingerprint = _state(activity.binding), _fingerprint_of(request)
    version = state.get("v")
    # When the token was last used before this call (to the minute): where it is bound, it was seen then.
    left_at = activity.last_used_at.timestamp()

    cache_kept = False  # a strength this call dropped that the cache may still hold (its delete failed)

    def drop_strength() -> None:
        nonlocal cache_kept
        # SECURITY: the drop is kept with the move, in the database (token_strength reads it): the cache's
        # delete is skipped while Redis is down, and the strength counted again once it was back (round 71).
        state[STRENGTH_DROPPED] = clock.timestamp()
        cache_kept = not forget_token_strength(token.key)

    def written() -> bool:
        if write_binding(token.key, state, version):
            return True
        # SECURITY: a drop neither written nor deleted from the cache (a third call in flight, Redis down)
        # would leave the strength standing: the token ends instead (fail closed).
        return last_try and not cache_kept

    now = binding_of(request)
    if not state:
        # Issued before tokens were bound (they live a day at most): bound where first used from now on.
        rebind(state, now, fingerprint, rescored="allowed")
        return "same" if written() else None
    # SECURITY: a token whose sign-in proved a DBSC binding, called without a fresh bound cookie of it, is a
    # copy (the jar's bound cookie lasts minutes): re-scored wherever it comes from, a step-up at least, so
    # it ends (red team, round forty-one), as a session without its proof is held (sessions.rescoring).
    proof_missing = bound_proof_missing(request, state)
    if proof_missing and device_binding.binding_released(state[BOUND_KEY]):
        # The binding ended (revoked, expired; not replaced): nothing is left to prove. One query, only here.
        state.pop(BOUND_KEY, None)
        if state.get("k") == fingerprint:
            return "same" if written() else None
        proof_missing = False
    if not proof_missing and state.get("k") == fingerprint:
        return "same"
    bound = state.get("b")
    if not proof_missing and not is_material_change(bound if isinstance(bound, dict) else {}, now, state):
        # SECURITY: as a session's (sessions.state.rebind): the step-up stays at its address (round 24).
        if rebind(state, now, fingerprint, left_at=left_at):
            drop_strength()
        return "same" if written() else None
    twice = in_two_places(state, now, clock.timestamp(), left_at=left_at)
    # Scored, never learned: the token's new context has not proved anything.
    # SECURITY: travel from where the token was last seen, not from its sign-in (round forty-eight).
    history = seen_history(state, left_at)
    scored = login_flow.score_request(request, username=user.get_username(), user=user, history=history)
    assessment, ctx = scored.assessment, scored.context
    if twice is not None:
        # SECURITY: back where it was minutes ago from far away: two holders of one token (ping-pong).
        assessment = _held_in_two_places(assessment, twice)
    kept = bound if isinstance(bound, dict) else {}
    # SECURITY: the session's rules for two holders hold for a token too: a copy taking turns with her app
    # in another browser or OS, or from an older release, was served all day (red team, round thirty-two).
    assessment = held_in_two_browsers(assessment, state=state, bound=kept, now=now)
    if proof_missing:
        assessment = _held_without_proof(assessment)
    # A token issued before ``ic`` was kept: the country it is bound in (round thirty-three).
    issued_in = state.get("ic") or kept.get("cc")
    abroad = bool(issued_in and now.get("cc") and now.get("cc") != issued_in)
    if abroad and not (now.get("x") and _exit_seen(state, now, user=user)):
        # SECURITY: a token carries no device cookie, so its re-score abroad saw no device to compare: her
        # app's copy replayed from a home line in Los Angeles half an hour after her use in Tokyo scored 38,
        # allowed (round thirty-two). Another country than the one it was issued in ends the token; her app
        # signs in again there. Only an exit of her VPN this token already used is left to the engine's
        # re-score (and her app back home from it): a first use abroad through a VPN exit was the thief's
        # better choice (round thirty-three).
        assessment = _held_for_the_session(
            assessment, "token_new_country", _("A token used in another country than where it was issued")
        )
    if assessment.action == Action.ALLOW:
        # SECURITY: the token's step-up holds where it was made, not for a copy re-scored elsewhere.
        if rebind(state, now, fingerprint, rescored="allowed", left_at=left_at):
            drop_strength()
        return "allowed" if written() else None
    if app_settings.report_only("step_up"):
        if rebind(state, now, fingerprint, rescored="reported", left_at=left_at):
            drop_strength()
        if not written():
            return None  # recorded by the check against the newer state, once
        reported = login_flow.with_report_only(assessment, "step_up", "end_session", rescored=True)
        login_flow.record_event(
            ctx, user, reported, password_ok=False, rescore=True, outcome=Outcome.SIGNED_IN
        )
        logger.warning(
            "authguard REPORT-ONLY step_up user=%s ip=%s re-scored API token would have ended: %s",
            user.pk,
            ctx.ip,
            assessment.explain(),
        )
        return "reported"
    login_flow.record_event(ctx, user, assessment, password_ok=False, rescore=True, outcome=Outcome.REFUSED)
    logger.warning(
        "authguard API token ended on re-score user=%s ip=%s %s", user.pk, ctx.ip, assessment.explain()
    )
    return "ended"


#: How far back a sign-in of the account through an anonymous exit vouches for that exit's network.
EXIT_SEEN_DAYS = 90


def _exit_seen(state: dict[str, Any], now: dict[str, Any], *, user: Any) -> bool:
    """Whether ``now``'s anonymous network (its ASN) is one this token used before, or the account signed in
    through (allowed, or a passed step-up) within :data:`EXIT_SEEN_DAYS`: her VPN, switched on and off."""
    asn = now.get("asn")
    if asn is None:
        return False
    if any(isinstance(entry, list) and len(entry) > 1 and entry[1] == asn for entry in places(state)):
        return True
    since = clock.now() - timedelta(days=EXIT_SEEN_DAYS)
    return LoginEvent.objects.filter(
        user_id=user.pk,
        asn=asn,
        created_at__gte=since,
        password_ok=True,
        outcome__in=(Outcome.SIGNED_IN, Outcome.STEP_UP_PASSED),
    ).exists()
