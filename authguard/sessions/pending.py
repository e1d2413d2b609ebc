"""The pending session's score: the context it was scored in (``sc``), the event of that score (``se``),
and the event a step-up marks passed or failed (``e``, recorded where posted: ``ep``). Part of the session
state of :mod:`authguard.sessions.state`, whose dict only these functions and that module read."""

from __future__ import annotations

from typing import Any

from authguard.sessions.state import Json, _now, bound_context, event_id

#: What a step-up must share with the context its pending login was scored in to be judged by that score.
SCORED_KEYS = ("ip", "dev", "br")


def back_to_pending(state: dict[str, Any], *, event_id: int, scored: Json) -> None:
    """A re-score asked for a step-up: pending again, no strong verification, bound to the re-score's
    event; ``scored``: the binding it was scored in (``sc``, where its step-up is not scored again)."""
    state.update(s="pending", st=None, sm=None, lr=False, e=event_id, se=event_id)
    state.pop("ep", None)
    state["sc"] = {**{key: scored.get(key) for key in SCORED_KEYS}, "at": _now()}


def scored_event_id(state: Json) -> int | None:
    """The event of the score the pending session is judged by (its login's, or the re-score's that put it
    back): the one a step-up from that very context passes. ``e`` may name another since: a step-up posted
    elsewhere is recorded where posted (:func:`point_at_event`)."""
    value = state.get("se", state.get("e"))
    return value if isinstance(value, int) else None


def point_at_event(state: Json, event_id: int, *, posted: Json | None = None) -> bool:
    """Point ``e`` (the event a step-up marks passed or failed) at ``event_id``, recorded for a step-up
    posted in ``posted``'s context (``ep``; None: the scored context). Whether anything changed."""
    where = {key: posted.get(key) for key in SCORED_KEYS} if posted is not None else None
    if state.get("e") == event_id and state.get("ep") == where:
        return False
    state["e"] = event_id
    if where is None:
        state.pop("ep", None)
    else:
        state["ep"] = where
    return True


def posted_event_id(state: Json, here: Json) -> int | None:
    """``e``, when it was recorded for a step-up posted in ``here``'s very context (address, device cookie,
    browser), else None."""
    where = state.get("ep")
    if isinstance(where, dict) and all(where.get(key) == here.get(key) for key in SCORED_KEYS):
        return event_id(state)
    return None


def scored_context(state: Json) -> Json:
    """The context the pending login (or the session's re-score) was scored in: ``ip``, ``dev``, ``br``
    (and ``at``, when a re-score)."""
    scored = state.get("sc")
    return scored if isinstance(scored, dict) else bound_context(state)
