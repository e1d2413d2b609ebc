"""An API token is bound to where it was issued, as a browser session is to where it was verified.

A verified browser session whose network (ASN), country, browser family or place changes materially is
scored again (:mod:`authguard.sessions.rescoring`); a token is the same sign-in, so a copy of it replayed
from another network or by another client is scored again too. The binding is kept beside the token's last use
(:class:`~authguard.models.TokenActivity`). A re-score the engine allows moves the binding there; any other
outcome ends the token, and its holder signs in again (risk-scored, stepped up): a bearer token cannot be
held mid-request for a second factor the way a browser session is.

The device cookie is not part of a token's binding: an API client need not keep a cookie jar.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from django.http import HttpRequest

from authguard.choices import Action, Outcome
from authguard.conf import app_settings
from authguard.login import flow as login_flow
from authguard.models import TokenActivity
from authguard.sessions.places import is_material_change
from authguard.sessions.state import current_binding
from authguard.sessions.token_activity import _digest

logger = logging.getLogger(__name__)

Verdict = Literal["same", "allowed", "reported", "ended"]


def binding_of(request: HttpRequest) -> dict[str, Any]:
    """The context of ``request`` as a token's binding keeps it (no device cookie)."""
    return {**current_binding(request), "dev": None}


def note_bound(*, token_key: str, binding: dict[str, Any]) -> None:
    """Bind the token ``token_key`` (its activity row exists: written at issue) to ``binding``."""
    TokenActivity.objects.filter(token_digest=_digest(token_key)).update(binding=binding)


def check(request: HttpRequest, *, user: Any, token: Any) -> Verdict:
    """Compare ``request`` with the context ``token`` of ``user`` is bound to.

    ``"same"``: no material change (another address of the same network, nearby); ``"allowed"``: a material
    change the risk engine allowed (rebound here); ``"reported"``: ``"step_up"`` is report-only, the re-score
    was recorded and the token rebound; ``"ended"``: the re-score asked for a step-up or refused, recorded as
    a refused sign-in: the caller ends the token.

    SECURITY: the token a customer's app got at home, copied by an infostealer and replayed by a script on a
    hosting network abroad, was served for up to a day with no re-score (red team, round fourteen).
    """
    digest = _digest(token.key)
    bound = TokenActivity.objects.filter(token_digest=digest).values_list("binding", flat=True).first()
    now = binding_of(request)
    if not bound:
        # Issued before tokens were bound (they live a day at most): bound where first used from now on.
        TokenActivity.objects.filter(token_digest=digest).update(binding=now)
        return "same"
    if not is_material_change(bound, now):
        return "same"
    # Scored, never learned: the token's new context has not proved anything.
    scored = login_flow.score_request(request, username=user.get_username(), user=user)
    assessment, ctx = scored.assessment, scored.context
    if assessment.action == Action.ALLOW:
        TokenActivity.objects.filter(token_digest=digest).update(binding=now)
        return "allowed"
    if app_settings.report_only("step_up"):
        reported = login_flow.with_report_only(assessment, "step_up", "end_session", rescored=True)
        login_flow.record_event(ctx, user, reported, password_ok=False, outcome=Outcome.SIGNED_IN)
        TokenActivity.objects.filter(token_digest=digest).update(binding=now)
        logger.warning(
            "authguard REPORT-ONLY step_up user=%s ip=%s re-scored API token would have ended: %s",
            user.pk,
            ctx.ip,
            assessment.explain(),
        )
        return "reported"
    login_flow.record_event(ctx, user, assessment, password_ok=False, outcome=Outcome.REFUSED)
    logger.warning(
        "authguard API token ended on re-score user=%s ip=%s %s", user.pk, ctx.ip, assessment.explain()
    )
    return "ended"
