"""Two holders taking turns with a desktop browser's session, told by its address blocks (red team, rounds
sixty-two to seventy-seven; docs/step-up.md, "Rounds sixty-two to sixty-five, seventy-five and
seventy-seven").

A desktop browser does not go back and forth between lines or networks; a copy of her whole cookie jar,
replayed with her user agent from a clean line of her ISP in her city, and she do. The blocks a session used
(``ad``: a network's IPv4 /22 or IPv6 /64, when it was last seen at each, whether she proved herself there)
are kept by :func:`authguard.sessions.places.place_binding`; this module reads them, and keeps one number of
its own in the session state: ``ar``, when the session last came back to a precisely placed block through
one she never proved herself at (a first return), kept for the session's whole life.
"""

from __future__ import annotations

from typing import Any

from authguard.sessions.places import MAX_SESSION_ADDRESSES, _precise, address_key, addresses_seen, desktop

#: A desktop session back at an address block it used, with another block between used at most this many
#: seconds ago, is held: two holders taking turns (:func:`returned_address`).
RETURN_SECONDS = 1800
#: ...and the block it is back at was left at most this many seconds ago (a laptop taken to the office on
#: the train and home in the evening has left home for the day). A second return within it is held
#: wherever it is back at; a second return to a block she never proved herself at is held at any time in
#: the session, left however long ago: a copy keeping her session alive from its block takes its turns
#: hours apart without the session ever idling (red team, round seventy-seven).
LEFT_SECONDS = 7200


def returned_address(
    state: dict[str, Any], now: dict[str, Any], at: float, *, left_at: float | None = None
) -> dict[str, int] | None:
    """Evidence that a desktop browser's session is back at an address block it used before
    (:func:`~authguard.sessions.places.address_key`), having been since at another block of the same IP
    version (a return), and the block was left at most ``LEFT_SECONDS`` ago and a block between was used
    within ``RETURN_SECONDS`` (``seconds`` since then, ``addresses``: blocks between), or it is the session's
    second return (``returns``): within ``LEFT_SECONDS`` of the first, or at any time to a block she never
    proved herself at (a precisely placed one, when left more than ``LEFT_SECONDS`` ago); or that a new block
    would push out of its memory one used within ``RETURN_SECONDS``; else None. ``left_at``: when it was
    last seen at the block it leaves. A return to a precisely placed block is noted in ``state`` (``ar``),
    held or not; back at one left more than ``LEFT_SECONDS`` ago, only through a block she never proved
    herself at (her visit home between the copy's turns hours apart), and held only at a block she never
    proved herself at: her laptop home in the evening after a day at the office is never held.

    SECURITY: a copy of her whole jar replayed with her user agent from another address of her ISP in her
    city changes nothing that matters (:func:`~authguard.sessions.places.is_material_change`: ``"moved"``)
    and took turns with her, never re-scored (red team, round sixty-two); from another ISP in her city each
    turn was re-scored and allowed (her browser, her city: round sixty-five). A desktop browser does not go
    back and forth between networks or lines within minutes; two holders do. Counted between, whatever their
    network or placement: every block but an anonymous one on another network than the block returned to (a
    VPN she switches on and off; a residential proxy of her own ISP counts). Not counted: one line's IPv4
    address and IPv6 /64 (a dual-stack browser alternates them), addresses of one IPv4 /22 (an office's NAT
    pool; so a copy on her own /22 is not told apart), and blocks where she proved it was her in this session
    (an allowed sign-in or a passed step-up): she steps up at most once at each, a thief never can. A return
    to a block GeoIP does not place within 150 km is held only as a second return (a laptop on a carrier's
    CGNAT pool alone is never held; her phone's hotspot between her home's Wi-Fi turns is held once, so she
    proves herself there once). Phones and tablets are left out: they go from Wi-Fi to mobile data and back
    all day, and a carrier's CGNAT exits alternate within minutes."""
    if not isinstance(state.get("b"), dict) or not desktop(now.get("br")):
        return None
    here = address_key(now)
    if here is None:
        return None
    seen = addresses_seen(state)
    if left_at is not None and seen:
        seen[-1][1] = max(seen[-1][1], min(left_at, at))
    index = next((i for i, e in enumerate(seen[:-1]) if e[0] == here), None)
    if index is None:
        # SECURITY: a new block that would push out one she never proved herself at, used within the
        # window, is one more holder: nothing is forgotten that a copy could push out (red team, round
        # sixty-five: her home, reached by an allowed re-score, went first, and her return was a first sight).
        if len(seen) >= MAX_SESSION_ADDRESSES:
            dropped = next((e for e in seen[:-1] if not e[2]), None)
            if dropped is not None and at - dropped[1] <= RETURN_SECONDS:
                return {"seconds": max(0, round(at - dropped[1])), "addresses": len(seen)}
        return None
    if now.get("x"):
        return None
    version = ":" in here
    between = [
        e for e in seen[index + 1 :] if (":" in e[0]) == version and (not e[3] or e[4] == now.get("asn"))
    ]
    proved_between = all(e[2] for e in between)
    if not between or (seen[index][2] and proved_between):
        return None
    seconds, precise = max(0, round(min(at - e[1] for e in between))), _precise(now.get("pl"))
    if at - seen[index][1] > LEFT_SECONDS:
        back = {"seconds": seconds, "addresses": len(between), "returns": 2}
        return _long_return(state, seen[index], at, back, precise=precise, proved_between=proved_between)
    earlier = _when(state.get("ar"))
    if precise:
        state["ar"] = round(at)  # SECURITY: the first return, remembered for the second (round seventy-five)
    # SECURITY: counted from his turn, not from when she left: a copy used after her half-hour pause, with
    # her return five minutes later, was never a return (round sixty-five).
    if precise and any(at - e[1] <= RETURN_SECONDS for e in between):
        return {"seconds": seconds, "addresses": len(between)}
    # SECURITY: a second return within two hours is two holders however long the pauses: a copy that acted
    # only after her session had been quiet for 31 minutes took turns with her all session, every turn of
    # each more than half an hour after the other's, never held (red team, round seventy-five). To a block
    # she never proved herself at, at any time in the session: a copy keeping her session alive from its
    # block between her visits hours apart came back to it more than two hours after each return (round
    # seventy-seven).
    if earlier is not None and (at - earlier <= LEFT_SECONDS or not seen[index][2]):
        return {"seconds": seconds, "addresses": len(between), "returns": 2}
    return None


def _when(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _long_return(
    state: dict[str, Any],
    block: list[Any],
    at: float,
    back: dict[str, int],
    *,
    precise: bool,
    proved_between: bool,
) -> dict[str, int] | None:
    """Back at a precisely placed ``block`` left more than ``LEFT_SECONDS`` ago (``back``: the evidence): her
    laptop home in the evening after a day at the office is never held. It is the session's first return
    (``ar``) when a block between is one she never proved herself at, and a second return, held, when
    ``block`` is one she never proved herself at and the session came back to a block before."""
    if not precise:
        return None  # a carrier's block: her phone's tethering on the train, morning and evening
    if not block[2] and _when(state.get("ar")) is not None:
        # SECURITY: the copy that kept her session alive from its block, back at it after her visit of more
        # than two hours (which it waited out), is a second return (red team, round seventy-seven).
        return back
    if not proved_between:
        # SECURITY: her visit back at her block hours after she left it, the session kept alive meanwhile
        # from one she never proved herself at, is a first return: his next turn is the second (round
        # seventy-seven: each of her visits came more than two hours after the last, so none was a return,
        # his turns were each a first return more than two hours after the last, four sells placed).
        state["ar"] = round(at)
    return None
