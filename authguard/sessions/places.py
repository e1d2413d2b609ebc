"""Where a session has been: the places of its binding, its anchor, its last places and the places where the
customer proved it was her, and the two rules built on them (issue 13, red team of 2026-12-04).

* **Material moves** (:func:`is_material_change`): another network, country, device cookie or browser, or a
  place provably ``MATERIAL_MOVE_KM`` from the bound place or from the *anchor*, where the session was last
  verified or re-scored. The anchor stays put on non-material moves, so short hops add up (creeping), and a
  coarse or unplaced hop keeps the last precise place (no wildcard); a binding with no precise place at all
  (it reached its network at a coarse address) is compared with the session's last precise place.
* **Two places at once** (:func:`in_two_places`): back at a place it left minutes ago, from a place provably
  ``SAME_PLACE_KM`` away (a whole cookie jar replayed from another city while the customer uses it), or
  back from a place provably ``MATERIAL_MOVE_KM`` away sooner than ``MAX_KMH`` allows (faster than a train).

The compact keys, in the session state of :mod:`authguard.sessions.state`: ``b["pl"]`` the bound place
``[lat, lon, accuracy]``, ``an`` the anchor ``[lat, lon, accuracy, asn]``, ``h`` the recent places
(:func:`_kept_places`) ``[since, asn, lat, lon, accuracy, anonymous, seen]``, and ``vp`` up to three vouched
places
``[lat, lon, accuracy]``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from authguard import clock
from authguard.risk.geoip import Geo, geolocate
from authguard.risk.networks import HOSTING_ASNS
from authguard.risk.signals_network import apart_km

#: A session whose address moved at least this far (both GeoIP accuracy radii subtracted) is re-scored even
#: on the same network: the customer's own national ISP is where a thief's residential proxy sits. Far
#: enough that one line's IPv4 and IPv6 addresses, placed apart in one region, are no move.
MATERIAL_MOVE_KM = 150
#: A place with a radius this large (a mobile carrier, a country's centroid) proves no move: no reference.
COARSE_KM = MATERIAL_MOVE_KM
SAME_PLACE_KM = 30  # closer (radii subtracted) is one place, as DeviceCookie's ``device_city_min_km``
#: A session back at a place from one provably ``MATERIAL_MOVE_KM`` away, sooner after it was last seen
#: there than this speed allows, was in two places (DeviceCookie's ``device_max_kmh``): faster than any train;
#: a flight used just before boarding and again on landing (Sapporo to Tokyo) is the journey it holds.
MAX_KMH = 400


def place_of(geo: Geo) -> list[float] | None:
    """``[lat, lon, accuracy]`` of a GeoIP answer, or None when it has no coordinates."""
    if geo.latitude is None or geo.longitude is None:
        return None
    return [geo.latitude, geo.longitude, geo.accuracy_km or 0]


def _precise(place: Any) -> bool:
    return isinstance(place, list) and len(place) == 3 and None not in place and place[2] < COARSE_KM


def apart(a: list[Any] | None, b: list[Any] | None) -> float | None:  # :func:`apart_km` of two places
    return apart_km(a[0], a[1], a[2], b[0], b[1], b[2]) if a and b and len(a) == len(b) == 3 else None


def _bound_place(bound: dict[str, Any]) -> list[float] | None:
    return bound["pl"] if "pl" in bound else place_of(geolocate(bound.get("ip")))  # saved before ``pl``


def anchor(state: dict[str, Any]) -> list[Any] | None:
    """``[lat, lon, acc, asn]``, the precise place the session was last verified or re-scored at, if any."""
    return value if isinstance(value := state.get("an"), list) and len(value) == 4 else None


def is_material_change(
    bound: dict[str, Any], now: dict[str, Any], state: dict[str, Any] | None = None
) -> bool:
    """Whether ``now`` differs from ``bound`` in what matters: network (ASN), country, device cookie (or
    its absence), browser family, or a place provably ``MATERIAL_MOVE_KM`` from the bound one, from the
    ``state``'s :func:`anchor` (same ASN) or, when the bound place is not precise, from the session's
    :func:`last_place`. Another IP of the ASN placed nearby or coarsely is not, unless one of the two is an
    anonymous network (``x``: a Tor exit, VPN, proxy or hosting address) and the other is not."""
    if any(bound.get(key) != now.get(key) for key in ("asn", "cc", "dev")):
        return True
    if not _same_browser(bound, now, state):
        return True
    # SECURITY: a Tor exit on the kit's own ISP in its own city was "no move" (red team, round twenty-six).
    if bool(bound.get("x")) != bool(now.get("x")):
        return True
    if bound.get("ip") == now.get("ip"):
        return False
    # SECURITY: a whole cookie jar replayed through the victim's own ISP in another city (issue 13), or
    # creeping there by shorter hops: the anchor stays put on non-material moves, so they add up.
    here, kept = _bound_place(now), _bound_place(bound)
    anchored = anchor(state) if state else None
    references = [kept, anchored[:3] if anchored and anchored[3] == now.get("asn") else None]
    if state and _precise(here) and not _precise(kept):
        # SECURITY: a binding that reached this network at an unplaced or coarse address (a re-score there
        # knew nothing of where) is no wildcard for the network's precise places: they are compared with
        # where the session last provably was (red team, round nineteen: a copy hopping through such an
        # address of her ISP made her next call from home, 400 km from his, no move, never checked).
        references.append(last_place(state))
    return any((km := apart(ref, here)) is not None and km >= MATERIAL_MOVE_KM for ref in references)


def _same_browser(bound: dict[str, Any], now: dict[str, Any], state: dict[str, Any] | None = None) -> bool:
    """Whether ``now``'s browser is the bound one: family|OS|device type, or the family alone against a
    binding written before round twenty-seven (the family only), so an upgrade re-scores no session; or
    two browsers she vouched for in this session (``state``'s ``bs``: her tablet's own and desktop site)."""
    kept, here = bound.get("br"), now.get("br")
    if isinstance(kept, str) and isinstance(here, str) and "|" not in kept:
        return kept == here.split("|", 1)[0]
    # Her tablet flipping to its desktop site asked for a step-up at every flip: a re-score is never learned,
    # so the engine met the other user agent anew each time (round thirty-one, a cost). Once she stepped up
    # in each, the two are one browser for the session; a thief's browser is never vouched without a step-up
    # of its own.
    if kept != here and not (state is not None and _both_vouched(state, kept, here)):
        return False
    # SECURITY: an older release than the bound one is a copy, as the engine's device_user_agent_backwards
    # says at sign-in: her live session replayed from the thief's older Chromium was "the same Chrome" and
    # kept her step-up (red team, round twenty-eight). A release that does not parse against one that does
    # is older too (round twenty-nine: ``Version/18`` against her Safari 18.1).
    change = release_change(now.get("rel"), bound.get("rel"))
    if change == "older":
        return False
    # SECURITY: a newer one is her browser's update only where the session is bound: an update restarts
    # her browser where it runs. The thief's newer Chromium from another address of her network was "her
    # update" and never re-scored (round twenty-nine).
    return change == "same" or same_line(now.get("ip"), bound.get("ip"))


def _release(value: Any) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in str(value).split("."))
    except ValueError:
        return None


def release_change(release: Any, than: Any) -> str:
    """How browser release ``release`` ("120", "18.1") compares with the bound ``than``: ``"older"``,
    ``"newer"`` or ``"same"``. A bound release that does not parse (a binding written before ``rel``)
    proves nothing: ``"same"``; one that parses, against one that does not, is ``"older"``."""
    bound = _release(than)
    if bound is None:
        return "same"
    here = _release(release)
    if here is None or here < bound:
        return "older"
    return "newer" if here > bound else "same"


def went_back(bound: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether the session's browser is the bound one at an older release than the session's own: two
    browsers hold it (browsers update forwards), whatever the device remembers from its sign-in."""
    kept = bound.get("br")
    return (
        isinstance(kept, str)
        and kept == now.get("br")
        and release_change(now.get("rel"), bound.get("rel")) == "older"
    )


def same_line(a: Any, b: Any) -> bool:
    """What may be one customer's line: :func:`same_address`, or one address of each family (a dual-stack
    line's IPv4 address and its IPv6 /64; the move between them is judged by network and place, as any).

    Her update reaching the site over her line's IPv6 side while the session was bound on the IPv4 side was
    re-scored (red team, round thirty, a cost). A thief gains nothing from it that her exact user agent does
    not give him on her network nearby already (docs/step-up.md, known limits)."""
    pair = _addresses(a, b)
    return pair is not None and (pair[0].version != pair[1].version or _one_address(*pair))


def same_address(a: Any, b: Any) -> bool:
    """One address: the same IPv4 address, or the same IPv6 /64 (its privacy addresses rotate)."""
    pair = _addresses(a, b)
    return pair is not None and pair[0].version == pair[1].version and _one_address(*pair)


def _addresses(a: Any, b: Any) -> tuple[Any, Any] | None:
    try:
        return ipaddress.ip_address(str(a)), ipaddress.ip_address(str(b))
    except ValueError:
        return None


def _one_address(first: Any, second: Any) -> bool:
    if first.version == 4:
        return bool(first == second)
    return int(first) >> 64 == int(second) >> 64  # one /64


def anonymous(geo: Geo) -> bool:
    """A VPN, Tor, a public or residential proxy or a hosting network: a place that says nothing of its
    user's. SECURITY: a copy of her jar moved onto a listed residential proxy of her ISP in her city was "no
    move" and kept her low-risk session, where a fresh sign-in there is scored ``residential_proxy`` (red
    team, round forty-nine; round twenty-six's Tor exit, again)."""
    return bool(
        geo.anonymous_vpn
        or geo.tor_exit
        or geo.public_proxy
        or geo.residential_proxy
        or geo.hosting
        or geo.asn in HOSTING_ASNS
    )


def place_binding(
    state: dict[str, Any],
    binding: dict[str, Any],
    *,
    verified: bool,
    vouched: bool = False,
    left_at: float | None = None,
) -> None:
    """Bind ``state`` to ``binding``, noting the place in ``h``. ``verified`` (or re-scored) here: the anchor
    moves here; otherwise it stays (a session without one takes its first precise place). ``vouched``: the
    customer proved it is her here (an allowed sign-in or a passed step-up): the place joins ``vp``.
    ``left_at``: when the session was last seen before this request (its last activity): the place it
    leaves for a new one was last seen then."""
    bound = state.get("b")
    previous = dict(bound) if isinstance(bound, dict) else {}
    kept = _bound_place(previous) if previous else None
    if previous.get("asn") == binding.get("asn") and _precise(kept) and not _precise(binding.get("pl")):
        # SECURITY: an unplaced or coarse hop on the same network keeps the last precise place, so the next
        # hop is compared with it, not with a place that proves nothing (the placeless wildcard).
        binding = {**binding, "pl": kept}
    if "an" not in state and previous:  # saved before anchors: anchored where it was bound
        state["an"] = [*kept, previous.get("asn")] if kept and _precise(kept) else None
    place: Any = binding.get("pl")
    if verified or (state.get("an") is None and _precise(place)):
        state["an"] = [*place, binding.get("asn")] if _precise(place) else None
    state["b"], seen, geo = binding, places(state), geolocate(binding.get("ip"))  # (cached: just looked up)
    hidden = anonymous(geo)
    where: list[Any] = place_of(geo) or [None, None, None]
    at = round(clock.timestamp())
    _note_address(state, binding, at=at, vouched=vouched, hidden=hidden, left_at=left_at)
    entry = [at, binding.get("asn"), *where, int(hidden), at]
    if not seen or not _same_place(seen[-1], entry):
        if seen and left_at is not None:
            seen[-1][6] = max(seen[-1][6], round(min(left_at, at)))  # last seen there: when it left
        state["h"] = _kept_places([*seen, entry])  # a new place, not another address of the same one
    if vouched and not hidden and _precise(entry[2:5]) and not _vouched_place(state, entry[2:5]):
        state["vp"] = [*_vouched_places(state), entry[2:5]][-3:]
    if "bs" not in state and previous:
        # A session from before ``bs``: the browser it leaves was shown, unvouched (red team, round
        # thirty-two: her return after the copy's turn was a first sight, allowed, never asked to step up).
        _note_browser(state, previous.get("br"), vouched=False)
    _note_browser(state, binding.get("br"), vouched=vouched)


# The address blocks a session used (``ad``), for the rule of :mod:`authguard.sessions.address_returns`.

#: The most address blocks a session remembers (each its newest visit).
MAX_SESSION_ADDRESSES = 8
#: The IPv4 prefix of a block: an office's NAT pool hands each connection another address of its block,
#: and such pools span a few /24s.
IPV4_BLOCK = 22


def address_key(binding: dict[str, Any]) -> str | None:
    """The block a binding's address is one of (:mod:`authguard.sessions.address_returns`): its network (ASN)
    and an IPv4 /22 (an office's NAT pool) or an IPv6 /64 (privacy addresses rotate)."""
    try:
        address = ipaddress.ip_address(str(binding.get("ip")))
    except ValueError:
        return None
    prefix = IPV4_BLOCK if address.version == 4 else 64
    return f"{binding.get('asn')}|{ipaddress.ip_network(f'{address}/{prefix}', strict=False)}"


def addresses_seen(state: dict[str, Any]) -> list[list[Any]]:
    """``[block, seen, vouched, anonymous, asn]`` of each address block of the session, the current one
    last: ``seen`` when it was last seen there (until it left)."""
    value = state.get("ad")
    return [list(e) for e in value if isinstance(e, list) and len(e) == 5] if isinstance(value, list) else []


def _note_address(
    state: dict[str, Any],
    binding: dict[str, Any],
    *,
    at: float,
    vouched: bool,
    hidden: bool,
    left_at: float | None,
) -> None:
    key = address_key(binding)
    if key is None:
        return
    seen = addresses_seen(state)
    if seen and seen[-1][0] == key:
        seen[-1][2] = int(bool(seen[-1][2]) or vouched)
        state["ad"] = seen
        return
    if seen and left_at is not None:
        seen[-1][1] = max(seen[-1][1], round(min(left_at, at)))  # last seen there: when it left
    earlier = [e for e in seen if e[0] == key]
    was_vouched = bool(earlier and earlier[0][2])
    kept = [e for e in seen if e[0] != key]
    kept.append([key, round(at), int(was_vouched or vouched), int(hidden), binding.get("asn")])
    # SECURITY: past the limit, the oldest block she never proved herself at goes first: a copy hopping
    # through eight blocks must not push her own out, or her return would be a first sight.
    while len(kept) > MAX_SESSION_ADDRESSES:
        drop = next((i for i, e in enumerate(kept[:-1]) if not e[2]), 0)
        kept.pop(drop)
    state["ad"] = kept


def desktop(browser: Any) -> bool:
    return isinstance(browser, str) and browser.rsplit("|", 1)[-1] == "desktop"


#: The most browsers a session remembers having shown without her vouching for them. Past it, every
#: browser new to the session is held as one more holder (:func:`returned_browser`): nothing is forgotten.
MAX_SESSION_BROWSERS = 8


def _session_browsers(state: dict[str, Any]) -> list[list[Any]]:
    """``bs``: the browsers (``br``) the session has shown, oldest first, each ``[br, vouched]``."""
    kept = state.get("bs")
    return [list(e) for e in kept if isinstance(e, list) and len(e) == 2] if isinstance(kept, list) else []


def _unvouched(seen: list[list[Any]]) -> int:
    return sum(1 for entry in seen if not entry[1])


def _note_browser(state: dict[str, Any], browser: Any, *, vouched: bool) -> None:
    if not isinstance(browser, str) or "|" not in browser:
        return  # a binding written before ``br`` held OS and device type: nothing to tell apart
    seen = _session_browsers(state)
    entry = next((e for e in seen if e[0] == browser), None)
    if entry is None and (vouched or _unvouched(seen) < MAX_SESSION_BROWSERS):
        seen.append([browser, int(vouched)])
    elif entry is not None and vouched:
        entry[1] = 1
    state["bs"] = seen


def _both_vouched(state: dict[str, Any], kept: Any, here: Any) -> bool:
    vouched = {e[0] for e in _session_browsers(state) if e[1]}
    return kept in vouched and here in vouched


def returned_browser(state: dict[str, Any], bound: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether ``now``'s browser (family|OS|device type) is one the session showed before it moved to the
    bound one: two browsers hold it, taking turns, unless she vouched for both in this session (an allowed
    sign-in or a passed step-up in each). Also any browser new to a session that has shown
    ``MAX_SESSION_BROWSERS`` she never vouched for."""
    here, kept = now.get("br"), bound.get("br")
    if not isinstance(here, str) or here == kept:
        return False
    listed = _session_browsers(state)
    seen = {e[0]: e[1] for e in listed}
    if here not in seen:
        # SECURITY: a copy sending eight builds of other OSes flushed both holders out of the list, and took
        # his turns beside her unheld (red team, round thirty-one). A full list forgets nothing: one more
        # browser is one more holder.
        return "|" in here and _unvouched(listed) >= MAX_SESSION_BROWSERS
    return not (seen[here] and seen.get(kept))


#: The most distinct places kept (each the newest visit of a place left within ``TWO_PLACES_SECONDS``).
MAX_RECENT_PLACES = 16


def _kept_places(seen: list[list[Any]]) -> list[list[Any]]:
    """The places to remember: every place of the session's life, each once (its newest visit as precise,
    :func:`_covers`), at most ``MAX_RECENT_PLACES``; over that, :func:`_forgotten` first.

    SECURITY: not the last three alone: a copy hopping on to two more places of the same network nearby (no
    material move, so never scored) pushed her place out of them, then went back and forth with her live
    session unseen (red team, round sixteen); nor the oldest of the window: hops filling it pushed both her
    and his latest places out (round seventeen). One entry per place, and one for all the unplaced or
    coarse addresses of a network (round nineteen: two unplaced addresses, alternated, filled the list).
    Not only what was left within ``TWO_PLACES_SECONDS``: a return from 400 km is too fast for an hour, and
    two free hops nearby a quarter of an hour after each of his arrivals dropped her place before her return
    (round twenty). Only many distinct places far apart, each bought and scored, could push hers out.
    """
    kept: list[list[Any]] = []
    for entry in seen:
        kept = [k for k in kept if not _covers(entry, k)]
        kept.append(entry)
    while len(kept) > MAX_RECENT_PLACES:
        kept.remove(_forgotten(kept))
    return kept


def _covers(newer: list[Any], older: list[Any]) -> bool:
    """Whether ``newer`` is a newer visit of ``older``'s place (:func:`_same_place`) that says where it was
    at least as precisely. SECURITY: "the same place" subtracts both radii; a copy's hops through addresses
    of her ISP placed 100 and 140 km off with 100 km radii each replaced the place before, her precise one
    first, and travel was measured from the last of them (red team, round fifty-three)."""
    return _same_place(newer, older) and _as_precise(newer, older)


def _as_precise(newer: list[Any], older: list[Any]) -> bool:
    """Whether ``newer`` says where it was at least as precisely as ``older`` (any entry does when ``older``
    is unplaced or coarse)."""
    return not (_precise(older[2:5]) and newer[4] > older[4])


def _forgotten(kept: list[list[Any]]) -> list[Any]:
    """The entry to forget first, never one of the last three nor the last that says where the session was:
    one that says nothing (unplaced, coarse, anonymous), then one within ``MATERIAL_MOVE_KM`` of a newer place
    that says where it was (a hop nearby adds nothing a far return could be measured against), then the
    oldest."""
    known = [i for i, entry in enumerate(kept) if _known(entry)]
    spared = {len(kept) - 3, len(kept) - 2, len(kept) - 1, *known[-1:]}
    candidates = [entry for i, entry in enumerate(kept) if i not in spared]
    near = [
        entry
        for i, entry in enumerate(kept)
        if i not in spared and any(_near_and_as_precise(kept[j], entry) for j in known if j > i)
    ]
    return next((entry for entry in candidates if not _known(entry)), None) or (near or candidates)[0]


def _near_and_as_precise(newer: list[Any], older: list[Any]) -> bool:
    """``newer`` (a known place) is within ``MATERIAL_MOVE_KM`` of ``older`` and says where it was at least as
    precisely: ``older`` adds nothing a far return could be measured against (:func:`_covers`, round 53)."""
    km = apart(older[2:5], newer[2:5])
    return km is not None and km < MATERIAL_MOVE_KM and _as_precise(newer, older)


def _known(entry: list[Any]) -> bool:  # an entry that says where its user was: precise, not anonymous
    return _precise(entry[2:5]) and not entry[5]


def _same_place(a: list[Any], b: list[Any]) -> bool:
    """Two entries of one network, both anonymous or both not, both precise and under ``SAME_PLACE_KM`` apart,
    or both unplaced or coarse (neither proves where it was, so neither can ever be the reference of a
    rule)."""
    if a[1] != b[1] or bool(a[5]) != bool(b[5]):
        # SECURITY: a flagged address (a proxy, a VPS in the ISP's data centre) next to his place replaced it
        # with an entry no rule reads, and the copy went back and forth with her unseen (round twenty-two).
        return False
    if not _precise(a[2:5]) or not _precise(b[2:5]):
        # SECURITY: an unknown distance is not "the same place" when one of the two is precise: her place
        # reached after an unplaced hop must be noted, or it is no reference for the next return (round
        # nineteen), nor its time for how fast the session moved.
        return not _precise(a[2:5]) and not _precise(b[2:5])
    km = apart(a[2:5], b[2:5])
    return km is not None and km < SAME_PLACE_KM


def places(state: dict[str, Any]) -> list[list[Any]]:
    """The session's places, the current one last: ``[since, asn, lat, lon, acc, anonymous, seen]``, ``since``
    when it arrived there and ``seen`` when it was last seen there before it left (``since`` until it left;
    entries kept before round twenty-one have no ``seen``: ``since``)."""
    value = state.get("h")
    entries = (
        [p for p in value if isinstance(p, list) and len(p) in (6, 7)] if isinstance(value, list) else []
    )
    return [[*p, p[0]] if len(p) == 6 else list(p) for p in entries]


def last_place(state: dict[str, Any]) -> list[Any] | None:
    """``[lat, lon, accuracy]`` of the session's last precise, non-anonymous place: where it last provably
    was (a VPN's exit or a mobile carrier's region says nothing of its user's)."""
    known = [entry[2:5] for entry in places(state) if _known(entry)]
    return known[-1] if known else None


def known_seen(state: dict[str, Any], *, last_seen: float) -> list[tuple[list[Any], Any, float]]:
    """``(place, asn, when)`` of each precise, non-anonymous place of the session, the last one last, and when
    it was last seen there (``last_seen``, the session's last activity, for the place where it is now). An
    anonymous or unplaced address says nothing of where its user went."""
    entries = places(state)
    last = len(entries) - 1
    return [
        (entry[2:5], entry[1], max(entry[6], last_seen) if i == last else entry[6])
        for i, entry in enumerate(entries)
        if _known(entry)
    ]


def _vouched_places(state: dict[str, Any]) -> list[list[Any]]:
    value = state.get("vp")
    return [p for p in value if _precise(p)] if isinstance(value, list) else []


def _vouched_place(state: dict[str, Any], place: list[Any]) -> bool:
    """Whether ``place`` is not provably ``SAME_PLACE_KM`` from a place the customer proved it was her."""
    return any((km := apart(p, place)) is None or km < SAME_PLACE_KM for p in _vouched_places(state))


#: A session back at a place it left this few seconds ago, from a place provably ``SAME_PLACE_KM`` away, was
#: in two places at once (DeviceCookie's ``device_in_two_places_seconds``).
TWO_PLACES_SECONDS = 900


def in_two_places(
    state: dict[str, Any], now: dict[str, Any], at: float, *, left_at: float | None = None
) -> dict[str, int] | None:
    """Evidence that the session is back at a place it was at, having been since at a place ``there``
    provably ``SAME_PLACE_KM`` from it: either it left the place at most ``TWO_PLACES_SECONDS`` ago
    (``seconds`` since it left, ``km``), or ``there`` is provably ``MATERIAL_MOVE_KM`` away and it was last
    seen there too recently to be back by now at ``MAX_KMH`` (``seconds`` since then, ``km``, ``kmh``, the
    lowest speed it could have come back at; a minute at least, as DeviceCookie's ``device_moved``); else
    None. ``left_at``: when the session was last seen before this request (at the place it leaves now).

    Precise, non-anonymous places only: a customer toggling her VPN, or Wi-Fi and a coarsely placed mobile
    carrier, alternates too. Only on a material move: one line's IPv4 and IPv6 addresses alternate. Two
    places where she signed in or passed a step-up in this session are both hers (a dual-stack line whose
    IPv6 is on another network and placed apart): she steps up at most once at each, a thief never can.
    Only a return: a single move faster than a train is an exit switched on as often as a copy (her
    employer's VPN, which GeoIP does not name), which the engine scores (``impossible_travel``,
    ``device_moved``); going back and forth at that speed is two holders.

    SECURITY: the window alone let a copy used from 400 km away twenty minutes after each of her calls be
    re-scored and allowed at every move (red team, round nineteen): from 400 km, no one is back in an hour.
    Measured from when it was last seen there, not from when it arrived: a copy used in blocks of an hour, a
    minute after her last call of each, was "392 km/h" (round twenty-one).
    """
    here, seen = now.get("pl"), places(state)
    if not isinstance(here, list) or not _precise(here):
        return None
    if left_at is not None and seen:
        seen[-1][6] = max(seen[-1][6], min(left_at, at))  # the place it leaves now was last seen then
    for i, entry in enumerate(seen[:-1]):
        place, anon = entry[2:5], entry[5]
        left_ago, same = at - seen[i + 1][0], apart(place, here)
        # A place is where it is, whatever network reaches it (round twenty: a copy alternating two networks
        # at its place was never "back").
        if anon or not _precise(place) or same is None or same >= SAME_PLACE_KM:
            continue
        for later in seen[i + 1 :]:
            there, there_anon = later[2:5], later[5]
            km = apart(there, here)
            if there_anon or not _precise(there) or km is None or km < SAME_PLACE_KM:
                continue
            seconds = max(at - later[6], 60)
            too_fast = km >= MATERIAL_MOVE_KM and km * 3600 / seconds > MAX_KMH
            if left_ago > TWO_PLACES_SECONDS and not too_fast:
                continue
            if _vouched_place(state, here) and _vouched_place(state, there):
                continue  # SECURITY: only where she proved it was her, never where a re-score let him in
            if left_ago <= TWO_PLACES_SECONDS:
                return {"seconds": max(0, round(left_ago)), "km": round(km)}
            return {"seconds": round(seconds), "km": round(km), "kmh": round(km * 3600 / seconds)}
    return None
