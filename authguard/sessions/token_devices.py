"""An API client's device cookie moves on at every token sign-in, as a browser's does at every sign-in.

:mod:`~authguard.sessions.device_generations` re-issues a browser's device cookie at each verified sign-in
and confirms the new generation at the session's next request; a copy of the cookie jar taken before then
falls behind (``device_cookie_superseded``). A token sign-in runs in a private session the middleware does
not bind, so the same is kept in the token's own state (:class:`~authguard.models.TokenActivity`): the
answer that hands out a token re-issues the client's device cookie and notes it here (:func:`note_issued`),
and the client's next presentation of that generation, with the token on an API call or at its next token
sign-in, confirms it (:func:`confirm`). A token is a session of that device id: when the id is retired (a
cookie of it left behind: two holders, :func:`.device_generations.retire`), the token ends, as a browser
session of the id is held (red team, round thirty-five: the thief's token got with a current copy of her
browser's cookie outlived her sign-in that retired the id).

SECURITY: confirming at issue was tried and not shipped: a client that pins one cookie value instead of
keeping its jar (docs/drf.md allows it) would then be taken for a copy of itself at its third sign-in. A
generation becomes the newest only when a client shows it holds it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, transaction
from django.http import HttpRequest

from authguard import clock
from authguard.risk.context import device_cookie_parts, device_hash
from authguard.sessions import device_generations
from authguard.sessions.token_activity import binding_of, write_binding

logger = logging.getLogger(__name__)

#: The key of the token's state that holds ``[device hash, generation]`` issued with it, until confirmed.
ISSUED_KEY = "tdg"
#: The key of the token's state that holds the hash of the device id its answer carried, for its life.
DEVICE_KEY = "tdv"


def note_issued(*, token_key: str, cookie_value: str) -> None:
    """The answer that issued ``token_key`` carries the device cookie ``cookie_value``: the client's next
    presentation of it confirms its generation. (The token is new: no call of it can be in flight.)"""
    parts = device_cookie_parts(cookie_value)
    if parts is None:
        return
    stored = binding_of(token_key)
    state = dict(stored) if isinstance(stored, dict) else {}
    state[ISSUED_KEY] = [device_hash(parts[0]), parts[1]]
    # Kept for the token's life: retiring this device id ends the token (device_generations.retire).
    state[DEVICE_KEY] = state[ISSUED_KEY][0]
    write_binding(token_key, state, state.get("v"))


def confirm(request: HttpRequest, *, user_id: Any, token_key: str, state: Any = None) -> None:
    """If ``request`` presents the device cookie generation issued with ``token_key`` (or a newer one of the
    same device), it is the device's newest for the account ``user_id``
    (:func:`.device_generations.confirm`). ``state`` is the token's binding state when the caller read it
    already; otherwise it is read here (one query)."""
    if state is None:
        state = binding_of(token_key)
    issued = state.get(ISSUED_KEY) if isinstance(state, dict) else None
    if not (isinstance(issued, list) and len(issued) == 2 and isinstance(issued[1], int)):
        return
    device, generation = device_generations.presented(request)
    # SECURITY: only the generation this token's answer carried, or a later one of the same device id: an
    # older cookie (a copy, or a client that pinned its first cookie) confirms nothing.
    if device is None or generation is None or device != issued[0] or generation < issued[1]:
        return
    try:
        with transaction.atomic():  # a savepoint: a failure leaves a portal's request transaction usable
            device_generations.confirm(
                user_id=user_id, device_hash=device, generation=generation, now=clock.now()
            )
    except DatabaseError:
        # Only this evidence is lost: the older generation stays the newest one.
        logger.exception("authguard: could not confirm an API client's device cookie generation")
        return
    confirmed = {key: value for key, value in state.items() if key != ISSUED_KEY}
    # Compare-and-set: a call that moved the binding since keeps its state; the next call confirms (again:
    # the confirmation itself changes nothing twice).
    write_binding(token_key, confirmed, state.get("v"))
