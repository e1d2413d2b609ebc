"""Where a DBSC binding goes after its registration: moved by its key's refresh onto a device cookie its own
browser was given, or ended with the access it came with (docs/dbsc.md).

A refresh signed by the registered key may come with another device cookie than the bound one: her browser
given a new device id after a copy of its old one was used (round thirty-four). It moves the binding only
onto a cookie the binding's own browser was given (:func:`may_move`), never onto another browser of the
account: a thief's key registered on his own browser, refreshed with her copied device cookie, had made her
browser "the copy" (red team, round thirty-seven).

The ending doors (the desk's containment, a password change or reset, "sign out everywhere", "forget this
browser") end the account's bindings with the rest (:func:`end_bindings`), each with its own end reason: a
key registered during an intrusion must not outlive it.

Low in the layering (models, the bound cookie, the request's session): :mod:`~.state` ends bindings with the
sessions, :mod:`~.dbsc` records and checks the moves.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.db.models import Q
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from authguard import clock
from authguard.models import DbscSession, KnownDevice, LoginEvent
from authguard.sessions import device_binding

#: Django session key of the move a refresh may make: ``{"b": <binding id>, "to": <device cookie hash>}``,
#: the new device cookie issued to this session's browser while it proved the binding.
SESSION_MOVE_KEY = "_authguard_dbsc_move"

#: End reasons (``DbscSession.end_reason``) of the doors that end bindings with the access they came with.
#: The desk's containment (end the sessions, lock the account, force a password reset).
ACCESS_ENDED = "access_ended"
#: Every session of the account ended by a password change or reset (``state.end_all_sessions``).
SESSIONS_ENDED = "sessions_ended"
#: The customer signed out every other session: every binding but her current browser's.
SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
#: The customer forgot a remembered browser: the bindings on its device cookie and those registered on it.
DEVICE_FORGOTTEN = "device_forgotten"

#: A new device cookie issued this long before the binding's registration still counts as issued after it
#: (nodes whose clocks disagree).
ISSUED_LEEWAY_SECONDS = 60


# -- moves ---------------------------------------------------------------------------------------------------


def note_issued(
    request: HttpRequest, *, user_id: Any, presented: str | None, issued: str | None, bound_ok: bool
) -> None:
    """A verified sign-in or step-up of ``user_id`` presented the device cookie ``presented`` and was given
    ``issued`` (a new device id: the old one was left behind or retired). When the request proved the
    binding of ``presented`` (``bound_ok``: its fresh bound cookie; or a cookie this session was given
    while it proved it), remember in the session that the binding may move to ``issued``
    (:func:`issued_to_binding`).

    SECURITY: only the binding of the very cookie presented, proved by this request: the issued cookie is the
    presented id's next holder, never another browser's (red team, round thirty-seven)."""
    if not presented or not issued or presented == issued or not hasattr(request, "session"):
        return
    presented_id = device_binding.presented_session_id(request)
    if presented_id is None:
        return
    if not bound_ok:
        # A second new id before the first move (her browser re-issued twice within one bound cookie's
        # minutes): the chain goes on from the cookie this session was given for the same binding.
        earlier = request.session.get(SESSION_MOVE_KEY)
        if not (
            isinstance(earlier, dict)
            and earlier.get("b") == presented_id
            and earlier.get("to") == presented
            and DbscSession.objects.filter(
                session_id=presented_id, user_id=user_id, ended_at__isnull=True, expires_at__gt=clock.now()
            ).exists()
        ):
            return
    request.session[SESSION_MOVE_KEY] = {"b": presented_id, "to": issued}


def issued_to_binding(request: HttpRequest, session: DbscSession) -> str | None:
    """The device cookie (hash) the refreshing request's own signed-in session of the binding's account
    recorded as issued to ``session``'s browser (:func:`note_issued`), or None."""
    django_session = getattr(request, "session", None)
    if django_session is None or str(django_session.get(SESSION_KEY)) != str(session.user_id):
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or str(user.pk) != str(session.user_id):
        return None
    move = django_session.get(SESSION_MOVE_KEY)
    if (
        not isinstance(move, dict)
        or not isinstance(move.get("to"), str)
        or move.get("b") != session.session_id
    ):
        return None
    return str(move["to"])


def forget_issued(request: HttpRequest) -> None:
    """The move was made (or is moot): the session forgets it."""
    django_session = getattr(request, "session", None)
    if django_session is not None and SESSION_MOVE_KEY in django_session:
        del django_session[SESSION_MOVE_KEY]


def may_move(
    session: DbscSession,
    *,
    device_cookie_hash: str,
    generation: int | None,
    issued_to: str | None,
    now: datetime,
) -> bool:
    """Whether a refresh signed by ``session``'s key may move the binding onto ``device_cookie_hash`` (the
    refreshing request's device cookie, of ``generation``; ``issued_to``: :func:`issued_to_binding`).

    Yes when the cookie was issued to this binding's own browser as it proved the binding (recorded in the
    refreshing session), or when the cookie has no history in the account at all (no browser row, not even
    a forgotten one, no login event) and was issued after the binding's registration: a new id her browser
    was given and has not signed in with yet. Never onto a cookie with an active binding of the account.

    SECURITY: the same rules as a registration's (``dbsc._check_bindable``) for the target: a cookie the
    account used before may have two holders, and a key proves only its own browser. A thief's key
    registered on his own browser, refreshed with her copied device cookie, had moved onto her device id
    and made her own browser "the copy" at every sign-in (red team, round thirty-seven)."""
    user_id = session.user_id
    occupied = (
        DbscSession.objects.select_for_update()
        .filter(user_id=user_id, device_hash=device_cookie_hash, ended_at__isnull=True, expires_at__gt=now)
        .exclude(pk=session.pk)
    )
    if occupied.exists():
        return False
    if issued_to is not None and constant_time_compare(issued_to, device_cookie_hash):
        return True
    issued_after = session.created_at - timedelta(seconds=ISSUED_LEEWAY_SECONDS)
    if generation is None or generation < int(issued_after.timestamp() * 1000):
        return False
    used = (
        KnownDevice.objects.filter(user_id=user_id, cookie_hash=device_cookie_hash).exists()
        or LoginEvent.objects.filter(user_id=user_id, device_hash=device_cookie_hash).exists()
    )
    return not used


# -- endings -------------------------------------------------------------------------------------------------


def end_bindings(
    *,
    user_id: Any,
    reason: str,
    device_cookie_hash: str | None = None,
    keep: Collection[str] = (),
    registered_since: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """End the active bindings of the account ``user_id`` (only the device ``device_cookie_hash``'s when
    given, those registered on it included: :func:`of_device`; only those registered since
    ``registered_since`` when given), but those ``keep`` names (a device cookie hash or a binding id), with
    ``reason``; how many ended. Call it in the transaction of the rest of the ending. The browser learns it
    at its next refresh (404) and drops its key; a session it bound carries on without the bound cookie
    (``device_binding.binding_released``)."""
    rows = DbscSession.objects.filter(user_id=user_id, ended_at__isnull=True)
    if registered_since is not None:
        rows = rows.filter(created_at__gte=registered_since)
    if device_cookie_hash is not None:
        rows = rows.filter(of_device(device_cookie_hash))
    kept = [value for value in keep if value]
    if kept:
        rows = rows.exclude(device_hash__in=kept).exclude(session_id__in=kept)
    return rows.update(ended_at=now or clock.now(), end_reason=reason[:40])


def end_device_binding(*, device_cookie_hash: str, reason: str, now: datetime | None = None) -> int:
    """End every active DBSC session of a device (:func:`of_device`), whichever account's (e.g. the device
    was revoked); returns how many ended. The browser learns it at its next refresh (404) and drops its
    key."""
    return (
        DbscSession.objects.filter(ended_at__isnull=True)
        .filter(of_device(device_cookie_hash))
        .update(ended_at=now or clock.now(), end_reason=reason[:40])
    )


def of_device(device_cookie_hash: str) -> Q:
    """The bindings of the device cookie ``device_cookie_hash``: those now on it, and those registered on it
    wherever their key's refreshes moved them since.

    SECURITY: a binding ends with the browser it was registered on. A key may move its binding onto a
    device cookie new to the account (:func:`may_move`: her browser's new id, before it signs in with it),
    so a thief's key registered on his browser and then refreshed with a fresh cookie of the site's was
    bound to no browser she could see; "forget this browser", ending only the forgotten cookie's, left it
    alive for its 400 days (red team, round forty-one). Chosen over refusing such a move without a
    signed-in session: her own browser signed out before its refresh moves that way (round thirty-four)."""
    return Q(device_hash=device_cookie_hash) | Q(registered_device_hash=device_cookie_hash)
