"""The login flow: score every password login, record it, and act on the decision.

Every login through Django's ``authenticate``/``login`` reaches :func:`after_password_login` (through the
``user_logged_in`` receiver) and every failure reaches :func:`after_failed_login`, whether it came from
an HTML form, a JSON API or the admin. :func:`password_login` gives API views the same decision as a
plain result.

A throttled attempt is refused before its password is checked (:class:`ThrottleBackend`), with an atomic
check-and-increment so parallel guesses cannot overrun the limit. When the counters cannot be read (the cache
is down or hung), logins fail *safe*, not shut: one that is low-risk on every other signal still passes and
every other one is stepped up (:func:`fail_safe`, ``docs/faults.md``).

A locked account is refused before its password is checked (:class:`ThrottleBackend`), so the answer is
the same for a right and a wrong password and says how to get back in (:func:`locked_message`,
:class:`LockAwareAuthenticationForm`). A password-only sign-in never resets the account's failure run.

:func:`password_changed` (also called by a receiver whenever a user's password hash changes, whichever
view did it) ends the user's sessions and revokes the factors added during a cooling-off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard import clock
from authguard.choices import Action
from authguard.conf import app_settings
from authguard.factors import methods as factor_methods
from authguard.factors import removal
from authguard.factors.throttles import ESTABLISHED_DEVICE_DAYS
from authguard.login import admin_door, attempt, lockout
from authguard.login.attempt import MalformedCredentials as MalformedCredentials
from authguard.login.attempt import user_by_name as _user_by_name
from authguard.login.events import record_event as record_event
from authguard.login.events import record_wrong_password
from authguard.login.fail_safe import COUNTERS_UNAVAILABLE as COUNTERS_UNAVAILABLE
from authguard.login.fail_safe import THROTTLE_UNAVAILABLE_ATTR as THROTTLE_UNAVAILABLE_ATTR
from authguard.login.fail_safe import fail_safe as fail_safe
from authguard.login.report_only import REPORT_ONLY as REPORT_ONLY
from authguard.login.report_only import report_only_finding as report_only_finding
from authguard.login.report_only import with_report_only
from authguard.models import Outcome
from authguard.notifications import outbox
from authguard.notifications.outbox import notify_customer
from authguard.risk.addresses import client_ip
from authguard.risk.context import LoginContext, build_context
from authguard.risk.engine import Assessment, score_login
from authguard.risk.findings import Finding
from authguard.risk.history import DatabaseHistory, Evidence
from authguard.risk.legacy_device import settle_fork
from authguard.risk.velocity import (
    CountersUnavailable,
    Reservation,
    peek_throttle,
    release_in_flight,
    release_password_check,
    reserve_password_check,
)
from authguard.sessions import device_generations, records
from authguard.sessions import state as sessions_state
from authguard.sessions.state import DECISION_ATTR as DECISION_ATTR
from authguard.sessions.state import revoke_api_tokens

logger = logging.getLogger(__name__)

# Set by ThrottleBackend when it refused an attempt without checking the password.
THROTTLED_ATTR = "_authguard_throttled"
# Set by ThrottleBackend when it refused an attempt on a locked account without checking the password.
LOCKED_ATTR = "_authguard_locked"
# Set by ThrottleBackend when it let an attempt on to the password check; taken back by the failed-login flow.
PASSED_ATTR = "_authguard_passed_throttle"
# Set by the failed-login flow when a backend before ThrottleBackend (django-axes...) refused the attempt.
REFUSED_UPSTREAM_ATTR = "_authguard_refused_upstream"
# The throttle slots this request's attempts hold (list of velocity.Reservation), given back on success.
RESERVATIONS_ATTR = "_authguard_throttle_slots"
#: The finding of a throttled event that a backend listed before ThrottleBackend refused (evidence ``by``).
REFUSED_UPSTREAM = "refused_before_password_check"


@dataclass(frozen=True)
class LoginDecision:
    """authguard's decision on the login that just happened in this request."""

    assessment: Assessment
    event_id: int | None
    #: What the login flow made of it: ``ok``, ``step_up_required`` or ``denied``.
    status: str = "denied"
    #: For ``step_up_required``: the methods the user can step up with.
    methods: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoginResult:
    """What happened to a password login.

    ``status`` is one of ``ok`` (fully signed in), ``step_up_required`` (signed in but unverified; see
    ``methods``), ``denied``, ``locked`` (the account is locked; the password was not checked, so a right
    and a wrong one get this same answer), ``invalid`` (unknown user or wrong password, indistinguishable)
    and ``throttled``.
    """

    status: str
    methods: list[str] = field(default_factory=list)
    user: AbstractBaseUser | None = None


@dataclass(frozen=True)
class Scored:
    """A live request scored: its context, the assessment, the evidence and the history that scored it."""

    context: LoginContext
    assessment: Assessment
    evidence: Evidence | None
    history: DatabaseHistory


def score_request(
    request: HttpRequest,
    *,
    username: str,
    user: Any,
    history: DatabaseHistory | None = None,
    enforced: bool = True,
) -> Scored:
    """Score a live request for ``user`` (or for the ``username`` typed, ``user`` None when unknown).

    The one place a request is scored: password logins (passed, failed, throttled, locked), the passkey
    sign-in and the step-up's place check (:mod:`authguard.login.stepup`), a session's and a token's
    re-score (:mod:`authguard.sessions.rescoring`, :mod:`authguard.sessions.token_binding`) all call it;
    replay scores stored contexts with :func:`authguard.risk.engine.score_login` directly.

    SECURITY: an ``enforced`` score (the default; False only to record an outcome decided otherwise: a failed,
    throttled or locked attempt) goes through :func:`fail_safe`: a copied token re-scored while Redis was
    down was allowed where its counters would have ended it (red team, round seventy-one).
    """
    ctx = build_context(request, username=username, user=user)
    history = history or DatabaseHistory()
    assessment, evidence = score_login(ctx, history)
    if enforced:
        assessment = fail_safe(request, assessment, evidence)
    return Scored(ctx, assessment, evidence, history)


def is_throttled(request: HttpRequest, username: str) -> bool:
    """True when this IP or this account had too many failed logins in the last hour (a read-only look).

    The login flow does not use it: :func:`throttle_attempt` checks and counts in one atomic step. With
    the counters unreachable this answers False; the login flow then fails safe (docs/faults.md).
    """
    limits = app_settings.LOGIN_THROTTLE
    key = attempt.account_key(_user_by_name(username) if username else None, username or "")
    try:
        user_failures, ip_failures = peek_throttle(
            cache, username=key, ip=client_ip(request), timestamp=clock.timestamp()
        )
    except CountersUnavailable:
        return False
    return ip_failures >= limits["ip_failures"] or user_failures >= limits["user_failures"]


def throttle_attempt(request: HttpRequest, username: str) -> bool:
    """Take this attempt's slot in the throttle before its password is checked; False: refuse it unchecked.

    SECURITY: one atomic increment per counter decides, so N parallel wrong passwords reach the password
    check at most ``AUTHGUARD_LOGIN_THROTTLE`` times. The slot is given back when the password is right
    (:func:`after_password_login`) or the attempt is refused after all; a wrong password keeps it. When
    the counters cannot be used the attempt goes on, marked, and :func:`fail_safe` steps it up unless it
    is low-risk on every other signal: an outage neither opens the door nor shuts everyone out.
    """
    limits = app_settings.LOGIN_THROTTLE
    reservation = reserve_password_check(
        cache,
        username=username or "",
        ip=client_ip(request),
        timestamp=clock.timestamp(),
        user_limit=limits["user_failures"],
        ip_limit=limits["ip_failures"],
    )
    if not reservation.available:
        setattr(request, THROTTLE_UNAVAILABLE_ATTR, True)
    if reservation.keys:
        held: list[Reservation] = getattr(request, RESERVATIONS_ATTR, None) or []
        held.append(reservation)
        setattr(request, RESERVATIONS_ATTR, held)
    return reservation.allowed


def _release_throttle(request: HttpRequest) -> None:
    """Give back the throttle slots this request holds: its password was right, or it was not checked."""
    held: list[Reservation] = getattr(request, RESERVATIONS_ATTR, None) or []
    setattr(request, RESERVATIONS_ATTR, [])
    for reservation in held:
        release_password_check(cache, reservation)


def _throttle_backend_installed() -> bool:
    return THROTTLE_BACKEND in getattr(settings, "AUTHENTICATION_BACKENDS", ())


def password_login(request: HttpRequest, *, username: str, password: str) -> LoginResult:
    """Authenticate ``username``/``password``, sign the user in, and report authguard's decision.

    ``ok``: signed in and verified. ``step_up_required``: signed in as *pending* (the middleware lets the
    session reach only the step-up pages and API until a second factor passes); ``methods`` says which.
    ``denied``: nothing is signed in (risky beyond step-up, or risky with no factor to step up with), and
    the answer says nothing more. ``locked``: a locked account, refused before the password is checked.
    Raises :class:`MalformedCredentials` (Django answers 400) for a name or password no check can read.
    """
    if not (attempt.readable(username) and attempt.readable(password)):
        # SECURITY: refused before a throttle slot is taken: a lone surrogate made the hasher raise after
        # ThrottleBackend took one, and ten such 500s throttled the customer silently (red team 34a).
        raise MalformedCredentials(_("The login name or password contains characters that cannot be read."))
    records.note_sign_in_started(request)  # SECURITY: before any lock read (records.record_sign_in)
    found, locked = attempt.user_and_lock(username)
    if not _throttle_backend_installed() and not throttle_attempt(
        request, attempt.account_key(found, username)
    ):
        # Without ThrottleBackend (checks.py warns), this API still throttles before the password check.
        _record_throttled(request, username)
        return LoginResult("throttled")
    if locked:
        # SECURITY: the password is not checked, so the answer cannot tell a right one from a wrong one.
        _release_throttle(request)
        _record_locked(request, username)
        return LoginResult("locked")
    attempt.note_unlocked(request, username, found)  # ThrottleBackend need not ask again for this attempt
    user = authenticate(request, username=username, password=password)
    attempt.take_unlocked(request, username)  # taken back, whichever backends ran
    if user is None:
        # Refused unchecked by ThrottleBackend, or by a backend before it (django-axes).
        if getattr(request, THROTTLED_ATTR, False) or getattr(request, REFUSED_UPSTREAM_ATTR, False):
            return LoginResult("throttled")
        if getattr(request, LOCKED_ATTR, False):
            return LoginResult("locked")
        return LoginResult("invalid")
    login(request, user)
    decision: LoginDecision | None = getattr(request, DECISION_ATTR, None)
    # SECURITY: ended by an ending it raced (records.record_sign_in): a portal minting its own credential on
    # "ok" (a JWT pair) handed one out after her reset (red team, round fifty-one). Fail closed, too, when
    # the receiver did not run (disconnected?).
    if decision is None or request.session.session_key in sessions_state.ENDED_SESSIONS.get():
        logout(request)
        return LoginResult("denied")
    if decision.status == "ok":
        return LoginResult("ok", user=user)
    if decision.status == "step_up_required":
        return LoginResult("step_up_required", methods=list(decision.methods), user=user)
    return LoginResult("denied")


def step_up_methods(user: Any) -> list[str]:
    """The second factors this user could step up with (see
    :func:`authguard.factors.methods.step_up_methods`)."""
    return factor_methods.step_up_methods(user)


#: Findings that say the device cookie presented is a copy (or may be): such a login is never learned.
COPIED_COOKIE_FINDINGS = device_generations.LEFT_BEHIND_CODES | {
    "device_in_two_places",
    "device_binding_missing",
}


def _copied(assessment: Assessment) -> bool:
    return any(code in COPIED_COOKIE_FINDINGS for code in assessment.reasons)


def after_password_login(request: HttpRequest, user: Any) -> LoginDecision:
    """Score a login that just passed the password check, record it, and enforce the decision.

    Allowed: the session is verified. Step-up: the session stays signed in as pending, unless the user has
    no factor to step up with (refused). Deny or a locked account: signed out again at once.

    With ``"login"`` in ``AUTHGUARD_REPORT_ONLY`` a step-up or a refusal is recorded (the event keeps the
    decided ``action`` and gets a ``report_only`` finding with ``would_have``), logged, and not enforced: the
    session is verified, but not low-risk, and the login teaches the profile nothing. A locked account is
    refused all the same: the lock is not a risk decision.
    """
    # SECURITY: before any lock read, kept when a door stamped earlier: a portal's own login() (no
    # authenticate()) measured an ending from after its scoring and outlived the desk's lock (round 57).
    records.note_sign_in_started(request)
    _release_throttle(request)  # the password was right: this attempt is no failure
    release_in_flight(cache, request)
    scored = score_request(request, username=user.get_username(), user=user)  # fail_safe applied
    ctx, history, evidence, assessment = scored.context, scored.history, scored.evidence, scored.assessment
    try:
        history.record_attempt(ctx, failed=False)
    except CountersUnavailable:
        pass  # logged where it failed; the decision above already accounts for missing counters
    except Exception:
        logger.exception("authguard: could not count a login attempt")
    action = assessment.action
    methods: list[str] = factor_methods.step_up_methods(user) if action == Action.STEP_UP else []
    locked = _locked_after_check(user, evidence)
    if locked:
        status, outcome = "denied", Outcome.REFUSED
    elif action == Action.ALLOW:
        status, outcome = "ok", Outcome.SIGNED_IN
    elif action == Action.STEP_UP and methods:
        status, outcome = "step_up_required", Outcome.STEP_UP_PENDING
    else:
        # SECURITY: deny, or step-up for a user with no factor to step up with: fail closed.
        status, outcome = "denied", Outcome.REFUSED
    reported = False
    if status != "ok" and not locked and app_settings.report_only("login"):
        # Rollout: record what would have happened, act on nothing (check W170 says so on every check).
        would_have = "step_up" if status == "step_up_required" else "deny"
        no_factor = action == Action.STEP_UP and not methods
        assessment = with_report_only(
            assessment, "login", would_have, methods=list(methods), no_factor=no_factor
        )
        status, outcome, reported = "ok", Outcome.SIGNED_IN, True
        logger.warning(
            "authguard REPORT-ONLY login user=%s ip=%s would have %s%s: %s",
            user.pk,
            ctx.ip,
            would_have,
            " (no factor to step up with)" if no_factor else "",
            assessment.explain(),
        )
    with transaction.atomic():
        event = record_event(ctx, user, assessment, password_ok=True, outcome=outcome)
        if evidence is not None and evidence.fork:
            settle_fork(ctx, evidence.fork)  # a second holder of the portal's cookie: once
        # SECURITY: a login the policy would have stepped up or refused teaches the profile nothing, nor
        # does a copy of a cookie let in (round thirty-two: an allowed copy taught her profile his network,
        # and his next browser there was hers).
        if status == "ok" and evidence is not None and not reported and not _copied(assessment):
            history.learn(ctx, evidence)
        if status == "ok":
            # A new browser or country that was allowed still tells the customer (outbox, same transaction).
            outbox.notify_signed_in(event, country_known=evidence is not None and evidence.country_known())
    decision = LoginDecision(assessment, event.pk, status=status, methods=tuple(methods))
    setattr(request, DECISION_ATTR, decision)
    new_device = evidence is None or not evidence.device.known
    if status == "ok":
        # SECURITY: no reset of the account's failure run here: a password is what a thief has (issue 10).
        sessions_state.begin_verified(request, user=user, decision=decision, new_device=new_device)
    elif status == "step_up_required":
        # SECURITY: signed in, but the middleware holds the session at step-up until a factor passes.
        sessions_state.begin_pending(request, user=user, decision=decision, new_device=new_device)
    else:
        # SECURITY: nothing stays signed in; the answer is the generic "denied".
        logout(request)
        setattr(request, DECISION_ATTR, decision)
    logger.info("authguard login user=%s ip=%s %s -> %s", user.pk, ctx.ip, assessment.explain(), status)
    return decision


def after_failed_login(
    request: HttpRequest | None, credentials: dict[str, Any], *, from_authenticate: bool = False
) -> None:
    """Record and count a failed password login (it feeds the velocity signals and the account lock).

    An attempt :class:`~authguard.login.backend.ThrottleBackend` refused is recorded as ``throttled`` and
    counted nowhere: its password was never checked. So is a failure of Django's ``authenticate()``
    (``from_authenticate``) whose backend chain stopped before ThrottleBackend (django-axes' ``AxesBackend``
    refusing a locked-out client raises ``PermissionDenied``), with a :data:`REFUSED_UPSTREAM` finding.
    The account's check in flight is given back once the failure is counted (the next one sees it).
    """
    if request is None:
        return
    try:
        _after_failed_login(request, credentials, from_authenticate=from_authenticate)
    finally:
        release_in_flight(cache, request, when_committed=True)  # SECURITY: once the lock is visible (37a)


def _after_failed_login(
    request: HttpRequest, credentials: dict[str, Any], *, from_authenticate: bool
) -> None:
    username_field = get_user_model().USERNAME_FIELD
    # SECURITY: the whole name: a long address cut to 150 characters reached no account (red team 34a).
    username = str(credentials.get("username") or credentials.get(username_field) or "")
    passed = getattr(request, PASSED_ATTR, False)
    setattr(request, PASSED_ATTR, False)  # one mark per attempt: the next authenticate() sets its own
    if getattr(request, THROTTLED_ATTR, False):
        # SECURITY: no wrong password; counted, a Redis outage would lock out who retries (case 45).
        _record_throttled(request, username)
        return
    if getattr(request, LOCKED_ATTR, False):
        _record_locked(request, username)  # refused unchecked: neither a right nor a wrong password
        return
    customer = admin_door.take_refused(request)
    if customer is not None:
        _release_throttle(request)  # the password was right: no failure, as for any refused right password
        admin_door.record_refused(
            customer, score_request(request, username=username, user=customer, enforced=False)
        )
        return
    if from_authenticate and not passed and _throttle_backend_installed():
        # SECURITY: stopped before ThrottleBackend, before any password check: counted, axes' refusals of
        # a guesser's IP would lock the customer (issue 14, 7). A portal's own password check still counts.
        setattr(request, REFUSED_UPSTREAM_ATTR, True)
        _record_throttled(request, username, upstream=True)
        return
    user = _user_by_name(username)
    scored = score_request(request, username=username, user=user, enforced=False)
    ctx, history, assessment = scored.context, scored.history, scored.assessment
    try:
        history.record_attempt(ctx, failed=True)
    except CountersUnavailable:
        pass  # logged where it failed; the account lock below lives in the database and still counts
    except Exception:
        logger.exception("authguard: could not count a failed login")
    record_wrong_password(ctx, user, assessment)  # SECURITY: outlives the view's rollback (round 41)


def _record_throttled(request: HttpRequest, username: str, *, upstream: bool = False) -> None:
    user = _user_by_name(username)
    scored = score_request(request, username=username, user=user, enforced=False)
    assessment = scored.assessment
    if upstream:  # who refused, for the console: django-axes marks every request its backend looked at
        by = "django-axes" if hasattr(request, "axes_updated") else "another authentication backend"
        text = gettext_lazy("Refused by another authentication backend before the password check")
        finding = Finding(REFUSED_UPSTREAM, 0, text, {"by": by})
        assessment = Assessment(assessment.score, assessment.action, (*assessment.findings, finding))
    record_event(scored.context, user, assessment, password_ok=False, outcome=Outcome.THROTTLED)


def _record_locked(request: HttpRequest, username: str) -> None:
    user = _user_by_name(username)
    scored = score_request(request, username=username, user=user, enforced=False)
    record_event(scored.context, user, scored.assessment, password_ok=False, outcome=Outcome.REFUSED)


def locked_message() -> str:
    """What a locked account is told, whatever password was typed: why, and every way back in."""
    ways = [_("use your passkey (“Unlock with a passkey” on the sign-in page)")]
    if app_settings.UNLOCK_WAIT_HOURS is not None:
        ways.append(
            _(
                "or enter a code from your authenticator app and one of your recovery codes; the account "
                "is then unlocked after %(hours)s hours unless you cancel"
            )
            % {"hours": app_settings.UNLOCK_WAIT_HOURS}
        )
    ways.append(_("or call our customer support desk"))
    return _(
        "This account is locked after repeated failed attempts, and all its sessions were signed out. "
        "To unlock it, %(ways)s."
    ) % {"ways": ", ".join(ways)}


def _is_locked(user: Any) -> bool:
    """Whether ``authguard.login.lockout`` (when installed) has locked this account."""
    return lockout.is_locked_fail_closed(user)


def _locked_after_check(user: Any, evidence: Evidence | None) -> bool:
    """:func:`_is_locked` after the password check, from the lock the evidence read with the profile."""
    lock = evidence.account_lock if evidence is not None else None
    if lock is None:
        return _is_locked(user)
    try:
        return lockout.locked_with_due(user, locked=lock[0], due=lock[1])
    except Exception:
        logger.exception("authguard: lockout state unavailable")
        return True


THROTTLE_BACKEND = "authguard.login.ThrottleBackend"


class LockAwareAuthenticationForm(AuthenticationForm):
    """Django's login form, telling a locked account (whatever password was typed) how to get back in, and
    a throttled attempt (by authguard or django-axes) to wait, instead of "wrong username or password"."""

    def get_invalid_login_error(self) -> forms.ValidationError:
        request = self.request
        if request is not None and getattr(request, LOCKED_ATTR, False):
            return forms.ValidationError(locked_message(), code="locked")
        # Throttled, refused by a backend before ThrottleBackend, or just locked out by django-axes (flag).
        flags = (THROTTLED_ATTR, REFUSED_UPSTREAM_ATTR, "axes_locked_out")
        if request is not None and any(getattr(request, flag, False) is True for flag in flags):
            return forms.ValidationError(
                _("Too many sign-in attempts. Please wait and try again."), code="throttled"
            )
        return super().get_invalid_login_error()


# -- password changes ------------------------------------------------------------------------------------


def password_changed(user: Any, *, request: HttpRequest | None = None) -> int:
    """A user's password was changed or reset: end their sessions, revoke the factors added during a
    cooling-off, and tell them. Returns the number of sessions ended.

    Called by :mod:`authguard.login.receivers` whenever a saved user's password hash changed (Django's
    ``PasswordChangeView``, ``PasswordResetConfirmView``, ``set_password()`` and ``save()``...); portals
    that write the hash some other way (``QuerySet.update``) call it themselves. With ``request`` (a
    signed-in request of this very user, e.g. a password change form), that session is kept; every other
    one ends. Idempotent per password: a second call for the same hash ends what is left and notifies once.
    """
    keep = None
    session = getattr(request, "session", None) if request is not None else None
    if session is not None and getattr(getattr(request, "user", None), "pk", None) == user.pk:
        keep = session.session_key
    # SECURITY: a month's keys end (an intrusion's); older ones stay, as at the failure lock (review, r40).
    since = clock.now() - timedelta(days=ESTABLISHED_DEVICE_DAYS)
    ended = sessions_state.end_all_sessions(user=user, keep=keep, bound_since=since)
    if keep is not None:
        sessions_state.note_kept_through_ending(request)  # type: ignore[arg-type]
    revoke_api_tokens(user)
    # SECURITY: counted as a removal (it revokes what cools off): every session, the kept one included,
    # changes a factor next only after a new verification.
    kept = request if keep is not None else None
    revoked = removal.revoke_factors_added_in_cooling_off(
        user, reason="password_reset", request=kept, password_changed=True
    )
    digest = salted_hmac(
        "authguard.login.password_changed", str(user.password), algorithm="sha256"
    ).hexdigest()[:16]
    try:
        with transaction.atomic():
            notify_customer(
                user,
                "password_changed",
                context={"account": user.get_username(), "time": clock.now(), "revoked": revoked},
                dedupe_key=f"password:{digest}",
            )
    except Exception:
        logger.exception("authguard: could not queue the password-change notification")
    logger.warning(
        "authguard: password of user %s changed; %s session(s) ended, %s factor(s) revoked",
        user.pk,
        ended,
        revoked,
    )
    return ended


__all__ = [
    "LockAwareAuthenticationForm",
    "LoginDecision",
    "LoginResult",
    "MalformedCredentials",
    "after_failed_login",
    "after_password_login",
    "fail_safe",
    "is_throttled",
    "locked_message",
    "password_changed",
    "password_login",
    "record_event",
    "report_only_finding",
    "step_up_methods",
    "throttle_attempt",
    "with_report_only",
]
