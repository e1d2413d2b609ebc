"""The one event taxonomy: what a recorded login event was (see :func:`categorize`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext_lazy

from authguard.choices import Action
from authguard.models import (
    LoginEvent,
    Outcome,
)

# -- the event taxonomy ----------------------------------------------------------------------------------
#
# One table says what a recorded LoginEvent *was*; the dashboard, the incident timeline and the backtest
# all read it, so they never tell three different stories. A LoginEvent's ``password_ok`` is false for
# passkey sign-ins and mid-session re-scores as well as for wrong passwords, so no figure may be drawn
# from ``password_ok`` alone: it is always read together with ``outcome`` (and ``action``), here.

SIGNED_IN = "signed_in"
PASSKEY_SIGN_IN = "passkey_sign_in"
STEPPED_UP = "stepped_up"
STEP_UP_FAILED = "step_up_failed"
STEP_UP_PENDING = "step_up_pending"
RESCORED_STEPPED_UP = "rescored_stepped_up"
RESCORED_STEP_UP_FAILED = "rescored_step_up_failed"
RESCORED_PENDING = "rescored_pending"
DENIED = "denied"
DENIED_WITHOUT_PASSWORD = "denied_without_password"
LOCKED = "locked"
WRONG_PASSWORD = "wrong_password"
THROTTLED = "throttled"
OTHER = "other"


@dataclass(frozen=True)
class Category:
    """What one kind of recorded event was, and where each report counts it.

    ``series``: the dashboard's stack (``allow`` password sign-ins let in, ``passkey``, ``step_up`` any
    second-factor request, ``deny``, ``locked``, ``bad_password``, ``throttled``, ``other``).
    ``step_up``: how a step-up ended (an :class:`~authguard.models.Outcome` code) for the step-up figures.
    ``verified``: a first factor (the password, a passkey, or a signed-in session) was verified and the
    attempt scored on it, so the backtest replays it as a sign-in (``password_ok`` true in the replay line).
    ``replayed``: the backtest replays it (wrong passwords too: they feed the velocity signals).
    ``got_in``: the attempt ended signed in (or with its session kept).
    """

    code: str
    label: Any
    series: str
    step_up: str = ""
    verified: bool = False
    replayed: bool = False
    got_in: bool = False


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category(
            SIGNED_IN,
            gettext_lazy("signed in with the password"),
            "allow",
            verified=True,
            replayed=True,
            got_in=True,
        ),
        Category(
            PASSKEY_SIGN_IN,
            gettext_lazy("signed in with a passkey"),
            "passkey",
            verified=True,
            replayed=True,
            got_in=True,
        ),
        Category(
            STEPPED_UP,
            gettext_lazy("password, then passed step-up"),
            "step_up",
            Outcome.STEP_UP_PASSED,
            verified=True,
            replayed=True,
            got_in=True,
        ),
        Category(
            STEP_UP_FAILED,
            gettext_lazy("password, then failed step-up"),
            "step_up",
            Outcome.STEP_UP_FAILED,
            verified=True,
            replayed=True,
        ),
        Category(
            STEP_UP_PENDING,
            gettext_lazy("password, step-up never completed"),
            "step_up",
            Outcome.STEP_UP_PENDING,
            verified=True,
            replayed=True,
        ),
        Category(
            RESCORED_STEPPED_UP,
            gettext_lazy("session re-checked, passed step-up"),
            "step_up",
            Outcome.STEP_UP_PASSED,
            verified=True,
            replayed=True,
            got_in=True,
        ),
        Category(
            RESCORED_STEP_UP_FAILED,
            gettext_lazy("session re-checked, failed step-up"),
            "step_up",
            Outcome.STEP_UP_FAILED,
            verified=True,
            replayed=True,
        ),
        Category(
            RESCORED_PENDING,
            gettext_lazy("session re-checked, step-up never completed"),
            "step_up",
            Outcome.STEP_UP_PENDING,
            verified=True,
            replayed=True,
        ),
        Category(DENIED, gettext_lazy("right password, refused"), "deny", verified=True, replayed=True),
        Category(
            DENIED_WITHOUT_PASSWORD,
            gettext_lazy("passkey sign-in or session refused"),
            "deny",
            verified=True,
            replayed=True,
        ),
        Category(LOCKED, gettext_lazy("refused: account locked"), "locked"),
        Category(WRONG_PASSWORD, gettext_lazy("wrong password"), "bad_password", replayed=True),
        Category(THROTTLED, gettext_lazy("throttled (not checked)"), "throttled"),
        Category(OTHER, gettext_lazy("other"), "other"),
    )
}

#: The dashboard's stacks, in drawing order.
SERIES = ("allow", "passkey", "step_up", "deny", "locked", "bad_password", "throttled", "other")

_PASSWORD_OUTCOMES = {
    Outcome.SIGNED_IN: SIGNED_IN,
    Outcome.STEP_UP_PASSED: STEPPED_UP,
    Outcome.STEP_UP_FAILED: STEP_UP_FAILED,
    Outcome.STEP_UP_PENDING: STEP_UP_PENDING,
}
# Without a password a step-up outcome can only be a re-scored session's: a passkey sign-in is verified
# by its passkey and never held at step-up (authguard.sessions.stepup).
_SESSION_OUTCOMES = {
    Outcome.STEP_UP_PASSED: RESCORED_STEPPED_UP,
    Outcome.STEP_UP_FAILED: RESCORED_STEP_UP_FAILED,
    Outcome.RESCORED: RESCORED_PENDING,
}


def categorize(password_ok: bool, outcome: str, action: str) -> str:
    """The :data:`CATEGORIES` code of an event with these ``LoginEvent`` fields.

    ``refused`` is split by what was verified: with the right password it is a risk refusal (``denied``)
    unless the score allowed it, which only a locked account refuses (``locked``); without one it is a
    passkey sign-in or a moved session the risk engine refused (``denied_without_password``), or, when
    the score allowed it, an attempt on a locked account whose password was never checked (``locked``).
    """
    if outcome == Outcome.BAD_PASSWORD:
        return WRONG_PASSWORD
    if outcome == Outcome.THROTTLED:
        return THROTTLED
    if outcome == Outcome.PASSKEY_LOGIN:
        return PASSKEY_SIGN_IN
    if outcome == Outcome.REFUSED:
        if action == Action.ALLOW:
            return LOCKED
        return DENIED if password_ok else DENIED_WITHOUT_PASSWORD
    table = _PASSWORD_OUTCOMES if password_ok else _SESSION_OUTCOMES
    return table.get(outcome, OTHER)  # type: ignore[call-overload]


def category_of(event: LoginEvent) -> Category:
    """The :class:`Category` of one recorded event."""
    return CATEGORIES[categorize(event.password_ok, event.outcome, event.action)]


def category_q(codes: Iterable[str]) -> Q:
    """A filter matching exactly the events of the categories ``codes`` (the same table, in SQL)."""
    wanted = set(codes)
    query = Q(pk__in=[])
    for password_ok in (True, False):
        for outcome in Outcome.values:
            actions = [a for a in Action.values if categorize(password_ok, outcome, a) in wanted]
            if len(actions) == len(Action.values):
                query |= Q(password_ok=password_ok, outcome=outcome)
            elif actions:
                query |= Q(password_ok=password_ok, outcome=outcome, action__in=actions)
    return query


def codes_where(**flags: Any) -> list[str]:
    """The category codes whose :class:`Category` attributes equal ``flags`` (``verified=True``...)."""
    return [c.code for c in CATEGORIES.values() if all(getattr(c, k) == v for k, v in flags.items())]


#: The category codes of each dashboard stack.
SERIES_CODES: dict[str, list[str]] = {key: codes_where(series=key) for key in SERIES}
