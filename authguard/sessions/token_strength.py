"""The strength of an API token: when and how its holder last proved a second factor.

The token counterpart of a browser session's step-up state (:mod:`authguard.sessions.state`): a token obtained
through a step-up counts as strongly verified, by that method, for ``max_age`` seconds. Kept in the cache
under a digest of the token key (never the key itself); an unreadable entry is no strength.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from authguard import clock
from authguard.resilience import guarded_cache_call

#: How long the cache keeps a token's strong verification (seconds); ``max_age`` decides within it.
STRENGTH_TTL_SECONDS = 3600


_STRENGTH_PREFIX = "authguard:drf:strong:"


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
        return Strength(at=float(value["t"]), method=str(value["m"]), device_id=value.get("d"))
    except (KeyError, TypeError, ValueError):
        return None


def forget_token_strength(token_key: str) -> None:
    """Drop a token's strong verification (the token was revoked)."""
    # Best effort: the token itself is revoked (gone from the database): a strength left behind names nothing.
    guarded_cache_call(cache.delete, _strength_key(token_key), what="token strength", default=None)
