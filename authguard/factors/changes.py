"""One change per verification: what one verification of a session may change of the account's factors.

A relayed code is one verification. With it a thief may make **one** change of the customer's factors (add
his passkey, or remove her factor that is still cooling off), which she is told of and can undo, never a
chain (remove hers and add his; add his and remove hers). The rule (red team, rounds fifteen to nineteen):

* A verification may be spent on **one removal**, or on **additions** (adding after adding stays one
  verification: a new customer's app, then her recovery codes), never on both.
* A removal needs a verification made after the account's last change of its factors, by any session; an
  addition needs one made after the account's last *removal* (a password change or reset counts as one).
* A verification with a factor that is cooling off changes nothing, unless the account has no factor that
  is not and this one is its oldest (a new customer's first app adds her passkey): the thief's own new
  passkey must not re-verify his session and keep adding.
* A fresh verification with a trusted passkey (not cooling off) passes all of this; a session may take
  back a factor it added itself (:func:`added_in_this_session`).

"After" is counted, never timed: :class:`~authguard.models.AccountSecurity` keeps a count of the account's
changes (``factors_changes``); a session notes the count when it verifies (``fc`` in its state, with the
verification's own id ``fv``: :func:`authguard.sessions.state.mark_strong`); each change increments it under
the row's lock in the change's transaction, with the verifications it spent (``factors_spent``). Wall-clock
times written by two web nodes a second apart made one verification "after" a change made a moment later
(red team, round nineteen).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from authguard import clock
from authguard.exceptions import StepUpRequired
from authguard.factors import methods as factor_methods
from authguard.factors.inventory import (
    factor_confirmed_at,
    factor_is_cooling_off,
    may_confirm_sensitive,
    security_row,
    session_device,
    user_factors,
)
from authguard.models import AccountSecurity, PasskeyDevice
from authguard.sessions import state as sessions_state

#: How many spent verifications the account row remembers: more than one session makes changes in a day.
SPENT_KEPT = 8

ADDED, REMOVED = "added", "removed"


def fresh_trusted_passkey(request: HttpRequest, *, user: Any) -> bool:
    """Whether this session was just verified (``AUTHGUARD_STEP_UP_FRESH_SECONDS``) with a passkey of
    ``user`` that may confirm sensitive things (not cooling off, nor added in the account's cooling-off)."""
    verifier = session_device(request)
    return (
        sessions_state.has_fresh_verification(request, methods=["passkey"])
        and isinstance(verifier, PasskeyDevice)
        and may_confirm_sensitive(user, verifier)
    )


def _refuse(user: Any) -> StepUpRequired:
    return StepUpRequired(
        _("Confirm it is you again with a security method you had before, then make the next change."),
        code="step_up_required",
        methods=factor_methods.step_up_methods(user),
    )


#: How a change was authorised without a verification of the session, so that no count applies: the account's
#: first factor from a low-risk session (it never had one to protect), the desk's re-binding grant and the
#: portal's identity proofing (each vouches for the session on its own, and the customer has nothing left to
#: verify with: red team, round twenty, locked her out for good).
UNCOUNTED_VIA = frozenset({"low_risk_first_factor", "staff", "identity_proofing"})


def require_verified_since_change(
    request: HttpRequest,
    *,
    user: Any,
    removing: bool,
    lock: bool = False,
    via: str | None = None,
    adding: Any = None,
) -> None:
    """Raise :class:`~authguard.exceptions.StepUpRequired` unless this session's last verification may make
    this change (a removal with ``removing``, else an addition): the rules of this module. ``lock``: read
    under the row's lock, inside the change's transaction, so that two requests in flight make one change.
    ``via``: how :func:`~authguard.factors.lifecycle.require_can_change_factors` (or the re-binding rule)
    authorised it; one of :data:`UNCOUNTED_VIA` is not counted against. ``adding``: the factor being added,
    already saved (it is not one of the account's factors yet when judging the verifier).

    SECURITY: chained, one relayed code removed her new recovery codes or app and put his in their place
    (red team, round fifteen; sixteen: through a password change), added his passkey first and then removed
    hers (seventeen), was passed by two requests at once (eighteen), made two changes across web nodes a
    second apart, added his after she re-added what he removed, or let his own cooling-off passkey keep
    adding so that her removal of it was always too late (nineteen); a session verified before her removal
    added after her addition, and sessions verified with his own recovery codes added once the set was
    replaced (twenty).
    """
    row = security_row(user, lock=lock)
    if via in UNCOUNTED_VIA or fresh_trusted_passkey(request, user=user):
        return
    state = sessions_state.raw_state(request) or {}
    verifier = session_device(request)
    # SECURITY: the thief's own new passkey re-verified his session and added one more each time she
    # verified to remove it (round nineteen); where every factor of hers cooled off (her app the desk just
    # bound again), it added one every day and outwaited her (round twenty-one). A factor cooling off changes
    # nothing unless it is the account's oldest and none is established (a new customer's first app adds her
    # passkey). A verifier gone since was removed or replaced, which is counted as a removal: the count below
    # refuses the session that verified with it.
    cooling = verifier is not None and factor_is_cooling_off(verifier)
    if cooling and not _oldest_of_new(verifier, user, adding):
        raise _refuse(user)
    if row.factors_changes == 0 and not row.factors_changed_how:
        return  # nothing was ever changed from a session: any one change
    verified_at = state.get("fc") if isinstance(state.get("fc"), int) else None
    mine = dict(_spent(row)).get(str(state["fv"])) if state.get("fv") else None
    if removing:
        # A removal: a verification after the account's last change of any kind, spent on nothing yet.
        if verified_at == row.factors_changes and mine is None:
            return
    elif verified_at is not None and verified_at >= row.factors_removed_count and mine != REMOVED:
        # An addition: a verification after the account's last removal, not spent on a removal (adding after
        # adding, hers or this session's, stays one verification).
        return
    raise _refuse(user)


def _oldest_of_new(verifier: Any, user: Any, adding: Any = None) -> bool:
    """Whether ``verifier`` is the oldest of ``user``'s factors, and none of them is established (``adding``,
    saved before its record, would count as established: it is left out)."""
    skip = getattr(adding, "persistent_id", None)
    factors = [d for d in user_factors(user) if d.persistent_id != skip]
    if any(not factor_is_cooling_off(d) for d in factors):
        return False
    dated = [(factor_confirmed_at(d), d.persistent_id) for d in factors]
    dated = [(at, pid) for at, pid in dated if at is not None]
    return bool(dated) and min(dated)[1] == verifier.persistent_id


def _spent(row: AccountSecurity) -> list[tuple[str, str]]:
    value = row.factors_spent
    return (
        [(v[0], v[1]) for v in value if isinstance(v, list) and len(v) == 2]
        if isinstance(value, list)
        else []
    )


def count_change(request: HttpRequest | None, *, user: Any, removed: bool, added: str | None = None) -> None:
    """Count a change of ``user``'s factors (``removed``: a removal, or a password change or reset, which
    revokes what cools off; else an addition, ``added`` its persistent id) and the verification of
    ``request``'s session it spent. Call it inside the change's transaction, after
    :func:`require_verified_since_change` with ``lock`` (or :func:`lock_for_change`); ``request`` None: staff,
    a reset by e-mail: no session of hers spent anything, but every session's next change counts from here."""
    how = REMOVED if removed else ADDED
    state = sessions_state.raw_state(request) if request is not None else None
    row = security_row(user, lock=True)
    spent = _spent(row)
    if state is not None and state.get("fv"):
        previous = dict(spent).get(state["fv"])
        spent = [s for s in spent if s[0] != state["fv"]]
        spent.append((state["fv"], REMOVED if REMOVED in (how, previous) else how))
    count = row.factors_changes + 1  # under the row's lock: nobody counts in between
    AccountSecurity.objects.filter(pk=row.pk).update(
        factors_changes=count,
        factors_removed_count=count if removed else row.factors_removed_count,
        factors_changed_at=clock.now(),
        factors_changed_how=how,
        factors_spent=[list(s) for s in spent[-SPENT_KEPT:]],
    )
    if state is not None and added:
        state["af"] = [*state.get("af", [])[-4:], added]
        sessions_state._save(request, state)  # type: ignore[arg-type]


def lock_for_change(user: Any) -> None:
    """Take the account row's lock in the caller's transaction: a change made without a session (a password
    reset, the desk) waits for an enrollment in flight to commit, and one that comes after it sees the
    count this change increments (red team, round nineteen: a passkey registration that passed its checks
    before her reset committed after the reset had revoked what cools off)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_for_change needs a transaction")
    security_row(user, lock=True)


def added_in_this_session(request: HttpRequest | None, device: Any) -> bool:
    """Whether this session added ``device`` (:func:`count_change`): it may take it back."""
    state = sessions_state.raw_state(request) if request is not None else None
    added = state.get("af") if state is not None else None
    return isinstance(added, list) and device.persistent_id in added


__all__ = [
    "added_in_this_session",
    "fresh_trusted_passkey",
    "lock_for_change",
    "count_change",
    "require_verified_since_change",
]
