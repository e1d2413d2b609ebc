"""The strength of an API token: when and how its holder last proved a second factor.

The token counterpart of a browser session's step-up state (:mod:`authguard.sessions.state`): a token obtained
through a step-up counts as strongly verified, by that method, for ``max_age`` seconds. Kept in the cache
under a digest of the token key (never the key itself); an unreadable entry is no strength. A move of the
token drops its strength (:mod:`authguard.sessions.token_binding`) in the cache and, durably, in the token's
binding state (:data:`STRENGTH_DROPPED`): a strength noted no later than the last drop is no strength.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from authguard import clock
from authguard.resilience import guarded_cache_call
from authguard.sessions.token_activity import binding_of

#: How long the cache keeps a token's strong verification (seconds); ``max_age`` decides within it.
STRENGTH_TTL_SECONDS = 3600


_STRENGTH_PREFIX = "authguard:drf:strong:"
#: The key of a token's binding state (``TokenActivity.binding``) that holds when its strength was last
#: dropped (a move, a re-score): written with the move, compare-and-set, whatever the cache does.
STRENGTH_DROPPED = "sd"


@dataclass(frozen=True)
class Strength:
    """When and how the holder of a token last proved a second factor."""

    at: float
    method: str
    device_id: str | None


def _strength_key(token_key: str) -> str:
    return _STRENGTH_PREFIX + hashlib.sha256(token_key.encode()).hexdigest()


def note_token_strength(token_key: str, *, method: str, device: Any) -> None:
    """Record that the holder of ``token_key`` just proved ``method`` with ``device``."""
    value = {"t": clock.timestamp(), "m": method, "d": getattr(device, "persistent_id", None)}
    # Fail safe: unrecorded, the token still works; it only has to step up again for what demands a fresh
    # factor.
    guarded_cache_call(
        cache.set, _strength_key(token_key), value, STRENGTH_TTL_SECONDS, what="token strength", default=None
    )


def token_strength(token_key: str) -> Strength | None:
    """The token's last strong verification, or None (never, expired from the cache, or unreadable)."""
    # SECURITY: unknown strength (the cache down, hung, its breaker open) is no strength.
    value = guarded_cache_call(cache.get, _strength_key(token_key), what="token strength", default=None)
    if not isinstance(value, dict):
        return None
    try:
        strength = Strength(at=float(value["t"]), method=str(value["m"]), device_id=value.get("d"))
    except (KeyError, TypeError, ValueError):
        return None
    # SECURITY: a move made while the cache was down dropped the strength in the database only: the cache's
    # copy counted again once it was back (red team, round seventy-one). One indexed read, only when there is
    # a strength. Not provably after the drop (two nodes' clocks disagree by up to twice the tolerance): none.
    dropped = strength_dropped_at(binding_of(token_key))
    if dropped is not None and not clock.is_from_the_future(dropped - strength.at):
        return None
    return strength


def strength_dropped_at(stored: Any) -> float | None:
    """When the token whose binding state is ``stored`` last had its strength dropped, or None."""
    value = stored.get(STRENGTH_DROPPED) if isinstance(stored, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def forget_token_strength(token_key: str) -> bool:
    """Drop a token's strong verification; whether the cache took the delete.

    Best effort: a revoked token is gone from the database, so a strength left behind names nothing; a live
    token's drop (a move) is also recorded in its binding state, which :func:`authguard.drf.StepUpRequired`
    reads (:func:`authguard.sessions.token_binding.strength_dropped_at`)."""
    failed = object()
    done = guarded_cache_call(cache.delete, _strength_key(token_key), what="token strength", default=failed)
    return done is not failed
