"""The pending session's score: the context it was scored in (``sc``), the event of that score (``se``),
and the event a step-up marks passed or failed (``e``, recorded where posted: ``ep``). Part of the session
state of :mod:`authguard.sessions.state`, whose dict only these functions and that module read."""

from __future__ import annotations

import ipaddress
from typing import Any

from authguard.sessions.state import Json, _now, bound_context

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


#: The most contexts a pending session's step-up may be posted from (each one event): past it, the step-up is
#: refused (:func:`authguard.login.stepup.refused_where_posted`).
MAX_POSTED_CONTEXTS = 3


def _posted(state: Json) -> list[list[Any]]:
    """``ep``: ``[ip, dev, br, event]`` of each context a step-up was posted from in this pending period."""
    kept = state.get("ep")
    return [list(e) for e in kept if isinstance(e, list) and len(e) == 4] if isinstance(kept, list) else []


def _key(context: Json) -> list[Any]:
    return [context.get(key) for key in SCORED_KEYS]


def _block(ip: Any) -> str | None:
    """The /24 of an IPv4 address, the /64 of an IPv6 one; None for anything else."""
    try:
        address = ipaddress.ip_address(ip)
    except (TypeError, ValueError):
        return None
    return str(ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 64}", strict=False))


def _one_context(listed: list[Any], here: list[Any]) -> bool:
    """Whether a listed context (``[ip, dev, br]``) is ``here``'s: the same device cookie and browser, at the
    same address or another of its /24 (/64).

    An office's or a carrier's proxy pool hands each connection another address of one block: her three
    mistyped codes through it were three places, and her right fourth one was refused as "too many places"
    (red team, round thirty-five). Another block, cookie or browser is still another context."""
    if listed[1:] != here[1:]:
        return False
    return listed[0] == here[0] or (_block(listed[0]) is not None and _block(listed[0]) == _block(here[0]))


def point_at_event(state: Json, event_id: int, *, posted: Json | None = None) -> bool:
    """Point ``e`` (the event a step-up marks passed or failed) at ``event_id``, recorded for a step-up
    posted in ``posted``'s context (listed in ``ep``; None: the scored event). Whether anything changed."""
    # SECURITY: a state from before ``se`` keeps its scored event before ``e`` moves: her step-up at home then
    # booked the thief's event (red team, round thirty-two).
    state.setdefault("se", state.get("e"))
    changed = state.get("e") != event_id
    state["e"] = event_id
    if posted is not None:
        listed = _posted(state)
        if not any(_one_context(entry[:3], _key(posted)) for entry in listed):
            state["ep"] = [*listed, [*_key(posted), event_id]]
            changed = True
    return changed


def posted_event_id(state: Json, here: Json) -> int | None:
    """The event recorded for a step-up posted in ``here``'s context (its address or block, device cookie,
    browser: :func:`_one_context`) in this pending period, else None."""
    return next((entry[3] for entry in _posted(state) if _one_context(entry[:3], _key(here))), None)


def posted_contexts(state: Json) -> int:
    """How many contexts a step-up was posted from in this pending period (besides the scored one)."""
    return len(_posted(state))


def scored_context(state: Json) -> Json:
    """The context the pending login (or the session's re-score) was scored in: ``ip``, ``dev``, ``br``
    (and ``at``, when a re-score)."""
    scored = state.get("sc")
    return scored if isinstance(scored, dict) else bound_context(state)
