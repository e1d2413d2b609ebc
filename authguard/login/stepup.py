"""Step-up: the one flow that verifies a pending session (or signs in with a passkey) with a second factor.

The HTML views, the JSON API and the DRF step-up endpoints all call :func:`complete_step_up` after the
factor itself was verified (:mod:`authguard.factors`); :func:`complete_passwordless_login` is the same for a
discoverable passkey sign-in, and :func:`note_strong_verification` for a re-verification in a verified
session (before a factor change or a sensitive action).

Only a phishing-resistant verification (a passkey that is not cooling off, outside an account cooling-off)
remembers the browser and teaches the risk profile; a TOTP or recovery code buys the one session it was
typed into, nothing that lasts (battery case 56).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.db import transaction
from django.http import HttpRequest
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy

from authguard import clock
from authguard.choices import Action, Outcome
from authguard.conf import app_settings
from authguard.exceptions import AuthguardError
from authguard.factors.methods import (
    account_cooling_off,
    factor_cooling_off,
    remembers_device,
    step_up_methods,
)
from authguard.factors.recovery import verify_recovery_code
from authguard.factors.totp import verify_totp
from authguard.login import flow as login_flow
from authguard.login import lockout
from authguard.models import KnownDevice, LoginEvent
from authguard.notifications.outbox import notify_signed_in
from authguard.risk.context import build_context, client_info
from authguard.risk.engine import Assessment
from authguard.risk.findings import Finding
from authguard.risk.history import DatabaseHistory, trusted_until
from authguard.sessions import device_generations
from authguard.sessions.pending import (
    MAX_POSTED_CONTEXTS,
    SCORED_KEYS,
    point_at_event,
    posted_contexts,
    posted_event_id,
    scored_context,
    scored_event_id,
)
from authguard.sessions.records import signed_in_unless_ended
from authguard.sessions.state import (
    _bind,
    _new_state,
    _save,
    current_binding,
    event_id,
    is_pending,
    is_verified,
    mark_strong,
    mark_verified,
    note_step_up_failure,
    raw_state,
    set_stepped_up,
)

logger = logging.getLogger(__name__)


class StepUpUnavailable(AuthguardError):
    """This step-up cannot happen: the account is locked (``code="locked"``), the step-up is posted from a
    context a sign-in would be refused from (``code="refused"``; both answered like any refusal, the
    pending login ends) or the method is not one the user has and the portal accepts
    (``code="method_unavailable"``)."""

    default_code = "method_unavailable"
    default_message = gettext_lazy("This way of confirming it is you is not available.")


#: The :class:`StepUpUnavailable` codes every front end answers as a refusal, ending the pending login.
REFUSED = frozenset({"locked", "refused"})


#: How long a pending login's own score stands for a step-up from its very context (then it is scored again).
SCORE_FRESH_SECONDS = 60


def check_step_up_allowed(
    user: Any,
    *,
    method: str,
    request: HttpRequest,
    carries_factor: bool = True,
    methods: Collection[str] | None = None,
) -> None:
    """Raise :class:`StepUpUnavailable` unless ``user`` may step up with ``method`` now, in ``request``'s
    pending session (:func:`refused_where_posted`).

    Every front end asks here first (the HTML pages, the JSON API, DRF's step-up exchange), so the lock
    check, the place check and the method check are one rule. ``request`` is required, so that a new front
    end cannot skip the place check by leaving it out. ``carries_factor``: false for a request that verifies
    nothing (a passkey's options): the place is judged where the factor is posted. ``methods``: the user's
    :func:`step_up_methods`, when the caller has just read them (they are not read twice).
    """
    # SECURITY: a locked account gets no further guesses, whatever the front end (fail closed).
    if lockout.is_locked_fail_closed(user):
        raise StepUpUnavailable(gettext_lazy("This action is not possible right now."), code="locked")
    # A method the user lacks verifies nothing: answered before the place is scored and recorded (red team,
    # round thirty-one: forty such posts wrote forty events).
    if method not in (step_up_methods(user) if methods is None else methods):
        raise StepUpUnavailable()
    if carries_factor and refused_where_posted(request, user=user):
        raise StepUpUnavailable(gettext_lazy("This action is not possible right now."), code="refused")


def refused_where_posted(request: HttpRequest, *, user: Any) -> bool:
    """Whether ``request``'s pending session is being stepped up from a context a sign-in is refused from.

    SECURITY: the sign-in was scored where the password was posted, but :func:`complete_step_up` verifies
    and binds the session where the factor is posted. A phishing kit scored in Osaka must not finish from a
    Tor exit or a hosting network abroad (red team, round twenty-five). The step-up is scored as a sign-in
    from where it is posted, unless it comes from the very context its login (or the session's re-score)
    was scored in, within :data:`SCORE_FRESH_SECONDS` of that score. A ``deny`` refuses it and is recorded
    as ``refused``; the step-up itself answers anything milder. This follows battery case 61: never more
    gently than a fresh sign-in.
    """
    if request.method != "POST":
        return False  # a page or options fetched: nothing is verified by it, so nothing is judged
    stored = raw_state(request)
    state = stored or {}  # an unreadable state is judged, never waved through
    if is_verified(state):
        return False
    # SECURITY: judged by the login's own score only in the very context it was scored in (the same
    # address, device cookie and browser: a script, her copied cookie, or a Tor exit on the kit's own network
    # nearby was "no move", round twenty-six), only while that score is fresh (a network the desk blocked
    # since, or her PC back in use elsewhere), and only where a login was scored at all (a websocket
    # sign-in adopted by its first request has no event: round twenty-seven).
    scored_in = scored_context(state)
    scored_at = scored_in.get("at", state.get("t"))
    fresh = isinstance(scored_at, (int, float)) and clock.timestamp() - scored_at <= SCORE_FRESH_SECONDS
    here = current_binding(request)
    same = _where_it_was_scored(here, scored_in, user=user)
    scored_event = scored_event_id(state)
    if same and fresh and scored_event is not None:
        _point_at(request, stored, scored_event)
        return False
    scored = login_flow.score_request(request, username=user.get_username(), user=user)
    assessment, denied = scored.assessment, scored.assessment.action == Action.DENY
    if denied and not app_settings.report_only("login"):
        login_flow.record_event(
            scored.context, user, assessment, password_ok=False, rescore=True, outcome=Outcome.REFUSED
        )
        logger.warning(
            "authguard step-up refused where posted user=%s ip=%s %s",
            user.pk,
            scored.context.ip,
            assessment.explain(),
        )
        return True
    # Her own slow step-up from the login's context: the login's event records this very context, so none
    # is written. SECURITY: nowhere else. A step-up where the session was bound before its re-score was
    # exempted too (round twenty-eight), but any move on her network rebinds the session, so the thief's copy
    # moved to his address stepped up there unrecorded, and the re-score's event (hers, held) named nobody's
    # step-up (red team, round thirty). Each such step-up gets its own event, hers at home included.
    if same and scored_event is not None and not denied:
        _point_at(request, stored, scored_event)
        return False
    # One event per context a step-up is posted from: posted again there, it is the same attempt.
    if (posted := posted_event_id(state, here)) is not None and not denied:
        _point_at(request, stored, posted, posted=here)
        return False
    if posted_contexts(state) >= MAX_POSTED_CONTEXTS and not app_settings.report_only("login"):
        # SECURITY: one pending sign-in stepped up from more places than a customer is at: a copy cycling user
        # agents wrote an event at each post and flooded her sign-in history (red team, round thirty-two).
        login_flow.record_event(
            scored.context,
            user,
            _too_many_places(assessment),
            password_ok=False,
            rescore=True,
            outcome=Outcome.REFUSED,
        )
        logger.warning("authguard step-up refused: too many places user=%s ip=%s", user.pk, scored.context.ip)
        return True
    if denied:  # rollout: recorded as it would have been decided, not enforced
        assessment = login_flow.with_report_only(assessment, "login", "deny", rescored=True)
    # The context the session will live in is recorded as the re-score it is, and the step-up marks that
    # event passed: its reasons reach the console and the order guard, as a session re-score's do (red team,
    # round twenty-eight: a step-up from another network left no trace of it).
    event = login_flow.record_event(
        scored.context, user, assessment, password_ok=False, rescore=True, outcome=Outcome.RESCORED
    )
    _point_at(request, stored, event.pk, posted=here)
    return False


def _too_many_places(assessment: Assessment) -> Assessment:
    """``assessment`` refused for a step-up posted from more than :data:`MAX_POSTED_CONTEXTS` places."""
    finding = Finding(
        "step_up_too_many_places",
        10,  # the points make it a reason; the refusal is the rule's
        gettext_lazy("A step-up tried from too many places"),
        {"contexts": MAX_POSTED_CONTEXTS},
    )
    return Assessment(assessment.score, Action.DENY, (*assessment.findings, finding))


def _point_at(request: HttpRequest, stored: Any, event: int, *, posted: Any = None) -> None:
    """Point the pending session's ``e`` at ``event`` (recorded where ``posted``; None: the scored context).

    SECURITY: a step-up is booked on the event of the context it is posted from, whatever was posted before:
    a thief's post from his address (a wrong code, or none) pointed ``e`` at his event, and her step-up at
    home then marked *his* event passed; her mistyped code at home, then his relayed one from his held
    context, booked his takeover as hers (red team, round thirty-one)."""
    if stored is not None and point_at_event(stored, event, posted=posted):
        _save(request, stored)


def verify_step_up_code(request: HttpRequest, *, user: Any, method: str, code: object) -> Any:
    """Check a typed code (``totp`` or ``recovery_code``) of ``user``: the device, or None when wrong.

    A wrong code, a throttled attempt or any refusal marks the pending login event ``step_up_failed`` (the
    exception is re-raised: ``Throttled`` says when to try again).
    """
    check = verify_totp if method == "totp" else verify_recovery_code
    try:
        # SECURITY: the user is the session's own (server-side state); nothing posted names a user.
        device = check(user, code, request=request)
    except AuthguardError:
        note_step_up_failure(request)
        raise
    if device is None:
        note_step_up_failure(request)
    return device


def finish_step_up(request: HttpRequest, *, device: Any, method: str) -> None:
    """A factor passed in this session: complete a pending session's step-up, or note a re-verification."""
    if is_pending(request):
        complete_step_up(request, user=request.user, device=device, method=method)
    else:
        note_strong_verification(request, device=device, method=method)


def complete_step_up(request: HttpRequest, *, user: Any, device: Any, method: str) -> None:
    """The pending session's user passed a second factor: verify the session.

    Rotates the session key, records the device with django-otp, marks the login event ``step_up_passed``
    and rebinds the session to this request's context. Only when :func:`remembers_device` (a passkey,
    nothing cooling off) does it also learn the login into the user's profile, trust the device cookie
    for ``AUTHGUARD_TRUSTED_DEVICE_DAYS`` and reset the account's failure run: a TOTP or recovery code is
    good for this session only.
    """
    # SECURITY: only the session's own user; the caller's ``user`` must be request.user (no id from input).
    if user is None or getattr(request.user, "pk", None) != user.pk:
        raise PermissionError("step-up for another user than the session's")
    state = raw_state(request) or _new_state(status="pending", decision=None, new_device=True)
    ctx = build_context(request, username=user.get_username(), user=user)
    history = DatabaseHistory()
    remember = remembers_device(user, device=device, method=method)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: a failure here must not break the step-up itself
                if remember:
                    history.learn(ctx, history.evidence(ctx))
                    history.trust_device(ctx, trusted_until(ctx))
                else:
                    history.note_device(ctx)  # listed for the customer to see; nothing learned or trusted
                note_factor_verified(
                    user, device=device, device_hash=ctx.device_hash, label=ctx.client.summary
                )
        except Exception:
            logger.exception("authguard: could not learn a stepped-up login")
        pending_event = event_id(state)
        event = LoginEvent.objects.filter(pk=pending_event, user=user).first() if pending_event else None
        if event is not None:
            event.outcome = Outcome.STEP_UP_PASSED
            event.save(update_fields=["outcome"])
            notify_signed_in(event)
    mark_verified(state)
    _bind(request, state)
    if remember:
        # SECURITY: only a verification a thief cannot relay ends the account's failure run. Before the
        # renewal: the lock's row before the account's, as a failure lock takes them (review, round 48).
        _lockout_success(user)
    mark_strong(request, state, device=device, method=method)
    logger.info("authguard step-up passed user=%s method=%s remembered=%s", user.pk, method, remember)


def note_strong_verification(request: HttpRequest, *, device: Any, method: str) -> None:
    """A verified session's user proved a factor again (before a factor change or a sensitive action)."""
    state = raw_state(request)
    if state is None or not is_verified(state):
        raise PermissionError("re-verification outside a verified session")
    if remembers_device(request.user, device=device, method=method):
        _lockout_success(request.user)  # before the renewal: the lock's row first (complete_step_up)
    here = device_generations.presented(request)[0]
    label = client_info(request.META.get("HTTP_USER_AGENT")).summary
    note_factor_verified(request.user, device=device, device_hash=here, label=label)
    mark_strong(request, state, device=device, method=method)


def note_factor_verified(user: Any, *, device: Any, device_hash: str | None, label: str) -> None:
    """A factor of ``user`` (``device``) verified a step-up or a re-verification on the browser
    ``device_hash`` (``label``): the first such verification starts the browser's month of standing for
    vouching a new factor (``KnownDevice.factor_verified_at``, ``factors.lifecycle.session_vouched``).

    SECURITY: not a factor still cooling off, nor during an account cooling-off (the thief's own new factor
    proves nothing of hers); a relayed code counts, so a thief's browser needs two relayed codes a month
    apart. Before, the month counted from a sign-in the password alone allowed: a browser he parked for a
    month, then one relayed code, vouched for his passkey (red team, round sixty-eight)."""
    if not device_hash or device is None or factor_cooling_off(device) or account_cooling_off(user):
        return
    now = clock.now()
    rows = KnownDevice.objects.filter(user_id=user.pk, cookie_hash=device_hash)
    if rows.filter(factor_verified_at__isnull=True, revoked_at__isnull=True).update(factor_verified_at=now):
        return
    # A browser's first session (its row is written at its second sign-in): listed now, learned later; her
    # verification there is kept (red team, round seventy: the way the docs give was lost).
    defaults = {"label": label[:200], "first_seen_at": now, "last_seen_at": now, "factor_verified_at": now}
    rows.get_or_create(user_id=user.pk, cookie_hash=device_hash, defaults=defaults)


def _where_it_was_scored(here: dict[str, Any], scored: dict[str, Any], *, user: Any) -> bool:
    """Whether ``here`` is the context ``scored`` (:data:`~authguard.sessions.pending.SCORED_KEYS`).

    A sign-in scored without a device cookie (a token client's, whose answer issues one) is the same client
    when it presents a cookie the account does not know; one of the account's own browsers' cookies is
    not: her copy, posted on the kit's address after a cookieless sign-in (red team, round twenty-six).
    """
    if any(here.get(key) != scored.get(key) for key in SCORED_KEYS if key != "dev"):
        return False
    if here.get("dev") == scored.get("dev"):
        return True
    return scored.get("dev") is None and not (
        here.get("dev") and KnownDevice.objects.filter(user_id=user.pk, cookie_hash=here["dev"]).exists()
    )


def _session_backend() -> str:
    """The first authentication backend that can restore users from a session."""
    for path in settings.AUTHENTICATION_BACKENDS:
        if hasattr(import_string(path), "get_user"):
            return path
    raise RuntimeError("no authentication backend can restore sessions")


def complete_passwordless_login(request: HttpRequest, *, user: Any, device: Any) -> login_flow.LoginResult:
    """Sign ``user`` in after a verified discoverable passkey assertion (``device`` is their passkey).

    The login is scored and recorded like a password login (as ``passkey_login``, ``password_ok`` false)
    and learned; the passkey is the strong verification, so the session is verified with ``strong_at`` now
    and the device cookie is remembered, unless the passkey or the account is cooling off
    (:func:`remembers_device`). A locked account or a ``deny`` score signs nothing in.
    """
    if device is None or device.user_id != user.pk or not user.is_active:
        return login_flow.LoginResult("denied")
    checked_at = clock.timestamp()  # what an ending since is measured from (signed_in_unless_ended)
    if lockout.is_locked_fail_closed(user):
        return login_flow.LoginResult("denied")
    scored = login_flow.score_request(request, username=user.get_username(), user=user)
    ctx, history, assessment, evidence = scored.context, scored.history, scored.assessment, scored.evidence
    reported = assessment.action == Action.DENY and app_settings.report_only("login")
    if assessment.action == Action.DENY and not reported:
        login_flow.record_event(ctx, user, assessment, password_ok=False, outcome="refused")
        return login_flow.LoginResult("denied")
    if reported:
        # Rollout: the refusal is recorded, not enforced; the login teaches nothing (below).
        assessment = login_flow.with_report_only(assessment, "login", "deny", passkey=True)
        logger.warning("authguard REPORT-ONLY passkey login user=%s would have been refused", user.pk)
    new_device = evidence is None or not evidence.device.known
    # SECURITY: a sign-in the policy would have refused (report-only) is neither learned nor remembered.
    remember = not reported and remembers_device(user, device=device, method="passkey")
    with transaction.atomic():
        event = login_flow.record_event(
            ctx, user, assessment, password_ok=False, outcome=Outcome.PASSKEY_LOGIN
        )
        if remember and evidence is not None:
            history.learn(ctx, evidence)
        if remember:
            history.trust_device(ctx, trusted_until(ctx))
            note_factor_verified(user, device=device, device_hash=ctx.device_hash, label=ctx.client.summary)
    decision = login_flow.LoginDecision(assessment, event.pk)
    # SECURITY: the decision is set before login(), so the user_logged_in receiver does not score it as a
    # password login; Django's login() rotates the session key.
    setattr(request, login_flow.DECISION_ATTR, decision)
    auth_login(request, user, backend=_session_backend())
    state = _new_state(status="verified", decision=decision, new_device=new_device)
    set_stepped_up(state, assessment.action != Action.ALLOW)
    _bind(request, state)
    if remember:
        _lockout_success(user)  # before the renewal: the lock's row first (complete_step_up)
    mark_strong(request, state, device=device, method="passkey", signed_in_now=True)
    # SECURITY: the desk's lock (her "sign out everywhere") that read the records after the lock check above
    # and before this session's record: his passkey's sign-in outlived it (red team, round fifty-one).
    if not signed_in_unless_ended(request, user, started_at=checked_at):
        return login_flow.LoginResult("denied")
    return login_flow.LoginResult("ok", user=user)


def _lockout_success(user: Any) -> None:
    try:
        lockout.record_success(user)
    except Exception:
        logger.exception("authguard: could not reset the lockout counter")
