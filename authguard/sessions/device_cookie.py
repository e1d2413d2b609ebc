"""Issuing the long-lived device cookie (``AUTHGUARD_DEVICE_COOKIE_NAME``) after the view: to a browser
without one where a sign-in is near, and its next generation at each sign-in or step-up that leaves the
session verified (:mod:`~authguard.sessions.device_generations`). Called by
:class:`~authguard.sessions.middleware.AuthguardMiddleware`.
"""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse

from authguard import clock
from authguard.conf import app_settings
from authguard.risk.context import device_cookie_parts, device_hash, new_device_cookie
from authguard.sessions import device_generations, token_devices
from authguard.sessions import state as sessions_state
from authguard.sessions.state import BOUND_ATTR, DECISION_ATTR, TOKEN_ATTR


def verified_in_this_request(request: HttpRequest) -> bool:
    """Whether this request bound a session (a sign-in, a step-up) that is verified at its end."""
    session = getattr(request, "session", None)
    if not getattr(request, BOUND_ATTR, False) or session is None or SESSION_KEY not in session:
        return False
    state = sessions_state.raw_state(request)
    return isinstance(state, dict) and sessions_state.is_verified(state)


def keep(request: HttpRequest, response: HttpResponse) -> None:
    """Issue the device cookie to a browser without one, and its next generation at each sign-in or step-up
    that leaves the session verified (the request bound it)."""
    name = app_settings.DEVICE_COOKIE_NAME
    parts = device_cookie_parts(request.COOKIES.get(name))  # one signature check, every request
    device_id, generation = parts if parts else (None, None)
    decision = getattr(request, DECISION_ATTR, None)
    device = device_hash(device_id)
    if device is not None and decision is not None:
        # SECURITY: a sign-in of any outcome that presented a cookie left behind retires its id.
        device_generations.retire_if_left_behind(request, device=device, decision=decision, now=clock.now())
    # SECURITY: every verified sign-in moves the browser's cookie on to a new generation; a copy stays
    # behind, and the next sign-in or session check recognises it (authguard.sessions.device_generations).
    # Never a pending one: a thief held at step-up for his copy would sign in again with a fresh cookie.
    # An API token handed out in this request is a verified sign-in too (its session is private).
    token = getattr(request, TOKEN_ATTR, None)
    if device_id is not None and not (token is not None or verified_in_this_request(request)):
        if device is not None and decision is not None:
            # A sign-in the engine learned noted the generation this answer would give; it gives none (a
            # session ended as it signed in, a portal that signed it out): nothing was given.
            device_generations.forget_given(device_hash=device, event_id=decision.event_id, now=clock.now())
        return
    if device_id is not None and device is not None:
        user_id = token[1] if token is not None else request.user.pk
        # SECURITY: nor a copy of her DBSC-bound browser's cookie that a relayable code verified: given her
        # id's next generation, it left her own browser behind, which lost its id, its standing and its
        # binding to a new id (red team, round forty-seven). It keeps the cookie it came with, a copy.
        by_passkey = (sessions_state.raw_state(request) or {}).get("sm") == "passkey"
        if device_generations.unproven_copy_of_bound(
            request, device=device, user_id=user_id, by_passkey=by_passkey
        ):
            return
        device_id = device_generations.reissued_id(
            device_id=device_id,
            device=device,
            generation=generation,
            decision=decision,
            now=clock.now(),
            user_id=user_id,
        )
    value = new_device_cookie(device_id, after=generation)
    # SECURITY: HttpOnly keeps scripts (and XSS) away from it; the server stores only its keyed hash.
    response.set_cookie(
        name,
        value,
        max_age=app_settings.DEVICE_COOKIE_AGE,
        httponly=True,
        secure=request.is_secure(),
        samesite="Lax",
    )
    # A session bound in this very request (a login without a device cookie) is bound to this one.
    sessions_state.bind_issued_device_cookie(request, value)
    if token is not None:  # the client's next presentation of it confirms it
        token_devices.note_issued(token_key=token[0], cookie_value=value)
