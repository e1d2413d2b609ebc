"""The audit record of a login or a re-score: :func:`record_event` writes one :class:`LoginEvent`;
:func:`record_wrong_password` writes a wrong password's and counts it towards the account lock."""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.db import router

from authguard import durable
from authguard.login import lockout
from authguard.models import LoginEvent, Outcome
from authguard.notifications import outbox
from authguard.risk.context import LoginContext
from authguard.risk.engine import Assessment

logger = logging.getLogger(__name__)

#: The length of ``LoginEvent.username`` (150): a longer login name (an e-mail address) is stored cut.
_USERNAME_COLUMN: int = LoginEvent._meta.get_field("username").max_length or 150


def record_event(
    ctx: LoginContext,
    user: Any,
    assessment: Assessment,
    *,
    password_ok: bool,
    outcome: str,
    rescore: bool = False,
) -> LoginEvent:
    """Write the audit record of one login (or mid-session re-score) with its explained decision.

    ``rescore``: the event of a signed-in session's or API token's re-score
    (:mod:`authguard.sessions.rescoring`, :mod:`authguard.sessions.token_binding`), whose ``password_ok`` is
    false like a wrong password's. SECURITY: the order guard reads it as a change of the account's context (a
    hijacked session stepped up with a relayed code, red team round nineteen); a stranger's wrong password or
    an attempt on a locked account, whose events do not carry it, never is one.
    """
    geo = ctx.geo
    event = LoginEvent.objects.create(
        created_at=ctx.time,
        user=user,
        # A copy for the console, cut to the column (150): ``user`` names the account whatever its length.
        username=ctx.username[:_USERNAME_COLUMN],
        password_ok=password_ok,
        rescore=rescore,
        ip=ctx.ip,
        country=geo.country or "",
        city=(geo.city or "")[:100],
        asn=geo.asn,
        as_org=(geo.as_org or "")[:200],
        user_agent=ctx.client.raw,
        device_summary=ctx.client.summary[:200],
        device_hash=ctx.device_hash or "",
        score=assessment.score,
        action=assessment.action,
        reasons=assessment.reasons,
        findings=[f.as_dict() for f in assessment.findings],
        outcome=outcome,
    )
    # Whatever the outcome (signed in, held, refused, a re-score): a copy of the customer's device cookie
    # means their computer leaks its browser data, and only they can clean it.
    outbox.notify_copied_cookie(event)
    # SECURITY: the audit record and its warning outlive the view's rollback (a portal's login view raising
    # its own 401 for a step-up, or on a refusal, under ATOMIC_REQUESTS: red team, round forty-two), under
    # the same id, which a held session's state names.
    durable.outlive_rollback(functools.partial(_write_again, event), using=router.db_for_write(LoginEvent))
    return event


def _write_again(event: LoginEvent) -> None:
    event.save(force_insert=True)
    outbox.notify_copied_cookie(event)


def record_wrong_password(ctx: LoginContext, user: Any, assessment: Assessment) -> None:
    """Write a wrong password's event and count it towards ``user``'s lock (when the name is an account);
    both outlive the view's rollback (:func:`authguard.durable.outlive_rollback`: SimpleJWT's, dj-rest-auth's
    and DRF's own token serializers raise on a wrong password, and DRF rolls the view's transaction back
    under ``ATOMIC_REQUESTS``; red team, round forty-one)."""
    record_event(ctx, user, assessment, password_ok=False, outcome=Outcome.BAD_PASSWORD)
    if user is not None:
        try:
            lockout.record_failure(user, kind=lockout.PASSWORD)
        except Exception:
            logger.exception("authguard: could not count a failure towards the lockout")


__all__ = ["record_event", "record_wrong_password"]
