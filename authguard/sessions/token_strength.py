"""The strength of an API token: when and how its holder last proved a second factor.

The token counterpart of a browser session's step-up state (:mod:`authguard.sessions.state`): a token obtained
through a step-up counts as strongly verified, by that method, for ``max_age`` seconds. Kept in the cache
under a digest of the token key (never the key itself); an unreadable entry is no strength.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from authguard import clock

logger = logging.getLogger(__name__)

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
    try:
        cache.set(_strength_key(token_key), value, STRENGTH_TTL_SECONDS)
    except Exception:
        # The token still works; it only has to step up again for what demands a fresh factor.
        logger.exception("authguard: could not record a token's strong verification")


def token_strength(token_key: str) -> Strength | None:
    """The token's last strong verification, or None (never, expired from the cache, or unreadable)."""
    try:
        value = cache.get(_strength_key(token_key))
    except Exception:
        logger.exception("authguard: could not read a token's strong verification")
        return None  # SECURITY: unknown strength is no strength
    if not isinstance(value, dict):
        return None
    try:
        return Strength(at=float(value["t"]), method=str(value["m"]), device_id=value.get("d"))
    except (KeyError, TypeError, ValueError):
        return None


def forget_token_strength(token_key: str) -> None:
    """Drop a token's strong verification (the token was revoked)."""
    try:
        cache.delete(_strength_key(token_key))
    except Exception:
        logger.exception("authguard: could not drop a token's strong verification")
