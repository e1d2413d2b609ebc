"""Which session keys belong to which account (``SessionRecord``): what "sign out everywhere", the lock, a
password change and the desk end (:func:`authguard.sessions.state.end_all_sessions`).

A key is recorded when a sign-in starts its session (:func:`record_session`) and moved whenever the session's
key is renewed (:func:`renew_record`: authguard's step-up, a portal's own ``cycle_key()``). A renewal and an
ending of the account's sessions both take the account's row lock (:func:`lock_account`), so a key renewed
while her "sign out everywhere" runs on another node is either moved before the ending reads the records
(and ended with them) or finds its old key's record gone (and ends itself).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.http import HttpRequest

from authguard import clock, durable
from authguard.conf import app_settings
from authguard.models import AccountSecurity, SessionRecord
from authguard.resilience import NO_ANSWER, guarded_cache_call
from authguard.risk.addresses import client_ip
from authguard.risk.geoip import geolocate
from authguard.risk.useragent import client_info

logger = logging.getLogger(__name__)

#: Session keys ended (deleted from the store) while this request ran: the middleware then also drops the
#: request's own session instead of writing it back.
ENDED_SESSIONS: ContextVar[frozenset[str]] = ContextVar("authguard_ended_sessions", default=frozenset())

#: Seconds, beyond two web nodes' clock disagreement (:func:`ending_skew_seconds`), a sign-in may seem to
#: follow an ending that came after it: the sign-in request's own time between stamping the session and
#: writing its record, which the ending may read and delete in between.
ENDING_MARGIN_SECONDS = 10

#: Sent to end every API credential of a user (``user``) with their sessions (a lock, a password change or
#: reset): each API front end revokes its own and returns how many it ended (:mod:`authguard.drf` does,
#: connected at app ready when DRF's token app is installed).
api_access_revoked = Signal()


def lock_account(user_pk: Any) -> None:
    """``SELECT ... FOR UPDATE`` on the user's row (inside a transaction): one renewal or ending of the
    account's session records at a time."""
    users = get_user_model()._default_manager
    users.select_for_update().filter(pk=user_pk).values_list("pk", flat=True).first()


def _fields(request: HttpRequest, user: Any) -> dict[str, Any]:
    return {
        "user_id": user.pk,
        "place": geolocate(client_ip(request)).place[:120],
        "device_summary": client_info(request.META.get("HTTP_USER_AGENT")).summary[:200],
    }


def _current_key(request: HttpRequest) -> str | None:
    if request.session.session_key is None:
        request.session.save()
    return request.session.session_key


def record_session(request: HttpRequest, user: Any, *, new_key: bool = False) -> None:
    """Remember that this request's session key belongs to ``user`` (a sign-in, an adopted session).

    ``new_key``: Django's ``login()`` has just created this key, so it has no record yet: one ``INSERT``
    instead of ``update_or_create``'s locked read, savepoint and transaction (issue 15). Should a record
    exist after all, the insert fails on the unique key and the record is updated as before; inside a
    transaction (``ATOMIC_REQUESTS``), where a failed insert would break it, it is always updated."""
    key = _current_key(request)
    try:
        fields = _fields(request, user)
        if new_key and key is not None and not transaction.get_connection().in_atomic_block:
            try:
                SessionRecord.objects.create(session_key=key, **fields)
                return
            except IntegrityError:
                pass  # a record for this key after all: update it below
        SessionRecord.objects.update_or_create(session_key=key, defaults=fields)
        # SECURITY: a login view answering with an exception under ATOMIC_REQUESTS rolls the record back and
        # keeps the session: unrecorded, no ending knew of it, and its renewal found no record (round 46).
        records = SessionRecord.objects
        durable.outlive_rollback(lambda: records.update_or_create(session_key=key, defaults=fields))
    except Exception:
        logger.exception("authguard: could not record a session")


#: When this request's sign-in began its checks, before its first look at the account's lock
#: (:func:`note_sign_in_started`).
SIGN_IN_STARTED_ATTR = "_authguard_sign_in_started"


def note_sign_in_started(request: HttpRequest | None) -> None:
    """Stamp the start of this request's sign-in (``password_login``, ``ThrottleBackend``), before any lock
    read: what :func:`record_sign_in` measures an ending from. The request's first stamp stays.

    SECURITY: stamped after the scoring, a sign-in held up between its lock check and its record (its
    event's foreign key waits on the user row an ending holds until it commits) read an ending that came
    after its lock check as one before it, and kept its session on the locked account (red team, round 52).
    """
    if request is not None and not isinstance(getattr(request, SIGN_IN_STARTED_ATTR, None), float):
        setattr(request, SIGN_IN_STARTED_ATTR, clock.timestamp())


def record_sign_in(request: HttpRequest, user: Any, *, started_at: Any) -> None:
    """:func:`record_session` for the key Django's ``login()`` has just created, of a sign-in whose checks
    began at ``started_at``, or earlier when the request stamped its start (:func:`note_sign_in_started`):
    its session ends here when an ending of the account's sessions came meanwhile
    (:func:`unless_ended_since`)."""
    record_session(request, user, new_key=True)
    stamped = getattr(request, SIGN_IN_STARTED_ATTR, None)
    if isinstance(stamped, float) and isinstance(started_at, (int, float)):
        started_at = min(started_at, stamped)
    signed_in_unless_ended(request, user, started_at=started_at)


def signed_in_unless_ended(request: HttpRequest, user: Any, *, started_at: Any) -> bool:
    """The session this request signed ``user`` in with, recorded, ends when an ending of the account's
    sessions came since ``started_at`` (:func:`unless_ended_since`); False then."""
    return not unless_ended_since(user.pk, started_at, partial(_end_session, request.session.session_key))


def _end_session(key: str | None) -> None:
    """End the session ``key`` as an ending does: dropped by the middleware if it is this request's, gone
    from the store and the records; never one an ending kept (:data:`_RACED`)."""
    if not key:
        return
    ENDED_SESSIONS.set(ENDED_SESSIONS.get() | frozenset([key]))
    _RACED.set((*_RACED.get()[-63:], key))
    try:
        import_module(settings.SESSION_ENGINE).SessionStore(session_key=key).delete()
        forget_session(key)
    except Exception:
        logger.exception("authguard: could not delete a sign-in's session that raced an ending")


#: Sessions a sign-in's own check ended (:func:`unless_ended_since`). SECURITY: a portal's ``cycle_key()``
#: after its ``login()`` renewed such a key, and the renewal counted it as the session its own request's
#: ending kept (``_move``): the session outlived the lock it raced (review, round fifty-one).
_RACED: ContextVar[tuple[str, ...]] = ContextVar("authguard_raced_sessions", default=())


def renew_record(
    request: HttpRequest,
    user: Any,
    *,
    previous: str | None,
    signed_in_at: float | None = None,
    kept_at: float | None = None,
) -> bool:
    """The session's key was renewed from ``previous``: move its record to the new key. False when the
    session was ended meanwhile (``previous`` has no record any more and the account's sessions were ended
    since ``signed_in_at``, the session's sign-in time, and after ``kept_at``, when an ending kept this
    session), or the move failed: the caller ends the session.

    SECURITY: her "sign out everywhere" on another node read the records while this request renewed the
    key; the new key, recorded after that read, outlived it (round forty-six). Under the account's lock the
    old key's record is either still there (her ending comes after and finds the new one) or gone. Gone
    without an ending since the sign-in (the retention prune deleted it after a portal's middleware above
    authguard renewed the key), the session is not ended (round forty-seven).
    """
    key = _current_key(request)
    if not previous or previous == key or key is None:
        record_session(request, user)
        return True
    try:
        fields = _fields(request, user)
        move = partial(_move, user.pk, previous, key, fields, (signed_in_at, kept_at))
        moved = move()
    except Exception:
        logger.exception("authguard: could not move a session's record")
        return False  # fail closed: a key no ending would know of is not kept
    if not moved:
        logger.warning("authguard: a renewed session of user %s had been ended; ending it", user.pk)
        return False
    # SECURITY: a step-up view then answering with an exception under ATOMIC_REQUESTS rolled the move back
    # and kept the session (a cache engine): its new key was never recorded, nor ended (round 47).
    durable.outlive_rollback(partial(_move_again, move, key, previous, fields))
    return True


def _move(user_pk: Any, previous: str, key: str, fields: dict[str, Any], times: tuple[Any, Any]) -> bool:
    with transaction.atomic():
        lock_account(user_pk)
        # Ended by this very request, the record is gone too: a password change ends every session, then
        # Django's update_session_auth_hash() renews the changer's key (the session Django keeps).
        moved = (
            SessionRecord.objects.filter(session_key=previous).delete()[0]
            or (previous in ENDED_SESSIONS.get() and previous not in _RACED.get())
            or not _ended_since(user_pk, *times)
        )
        if moved:
            SessionRecord.objects.update_or_create(session_key=key, defaults=fields)
    return bool(moved)


def _move_again(move: Callable[[], bool], key: str, previous: str, fields: dict[str, Any]) -> None:
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    # SECURITY: a database session store's renewal was rolled back with the move: the old key lives on with
    # its restored record (round forty-eight: moving the record onto the new key left his live old key
    # unrecorded). A cached_db store has both: the old key in the database, the new one in the cache; each
    # keeps a record, so an ending ends whichever the browser holds (review, round forty-eight).
    if store.exists(previous):
        if store.exists(key):
            SessionRecord.objects.update_or_create(session_key=key, defaults=fields)
        return
    if store.exists(key) and not move():  # ended meanwhile: so is the session the rollback kept
        store.delete(key)


def ending_skew_seconds() -> float:
    """How long before a sign-in an ending may seem to come and still have ended it: two nodes' clocks, each
    within :mod:`authguard.clock`'s tolerance of the database's (uncorrected within it), and
    :data:`ENDING_MARGIN_SECONDS`.

    SECURITY, both ways: too short, a thief's copy signed in on a node whose clock runs ahead of the ending
    node's outlives her ending when the prune races it; too long (it was five minutes), her own sign-in a
    minute after her password reset read the reset as its end and signed her out (red team, round 49)."""
    return 2 * float(app_settings.CLOCK["tolerance_seconds"]) + ENDING_MARGIN_SECONDS


def _ended_since(user_pk: Any, signed_in_at: Any, kept_at: Any) -> bool:
    """Whether the account's sessions were ended after a sign-in at ``signed_in_at`` (None: unknown, so
    yes; within :func:`ending_skew_seconds` before it: two nodes' clocks) and after ``kept_at`` (the ending
    that kept this session, and any before it, are not its end)."""
    at = _ending_time(user_pk)  # (unreadable: infinity, ended)
    if at is None:
        return False
    if isinstance(kept_at, (int, float)) and at <= kept_at:
        return False
    return not isinstance(signed_in_at, (int, float)) or at >= signed_in_at - ending_skew_seconds()


def note_ended(user_pk: Any) -> None:
    """The account's sessions end now (inside the ending's transaction, under :func:`lock_account`), and
    sign-ins in flight are told at once (:func:`unless_ended_since`), before the ending reads the records."""
    now = clock.now()
    AccountSecurity.objects.update_or_create(user_id=user_pk, defaults={"sessions_ended_at": now})
    _OWN_ENDINGS.set((*_OWN_ENDINGS.get()[-7:], (user_pk, now.timestamp())))
    # Through the cache's breaker: a hung cache costs an ending one socket timeout at most, never a 500.
    guarded_cache_call(
        cache.set,
        _ending_mark(user_pk),
        now.timestamp(),
        ENDING_MARK_SECONDS,
        what="the ending mark",
        default=None,
    )


#: The last endings this thread of work made: a sign-in after one of them (Django's ``post_reset_login``
#: signs her in right after her reset ended every session) follows it, it did not race it.
_OWN_ENDINGS: ContextVar[tuple[tuple[Any, float], ...]] = ContextVar("authguard_own_endings", default=())


#: How long an ending's mark stays in the cache: longer than a sign-in takes from its checks to its record.
ENDING_MARK_SECONDS = 600


def _ending_mark(user_pk: Any) -> str:
    return f"authguard:sessions-ended:{user_pk}"


def unless_ended_since(user_pk: Any, started_at: Any, end: Callable[[], object]) -> bool:
    """A sign-in that started at ``started_at`` wrote its session's record or its API token: ``end`` it when
    an ending of the account's sessions came since (within :func:`ending_skew_seconds`); True when it was
    ended here. Checked now, and again once the request's transaction commits (``ATOMIC_REQUESTS``).

    SECURITY: a sign-in past its lock check when the desk's lock (or her "sign out everywhere", her reset)
    read the records wrote its record, or its token, after them: it outlived the ending (red team, round
    fifty). The ending marks the cache before it reads the records; the sign-in reads the mark after its
    record is written (committed): one of the two sees the other. A mark it cannot read fails closed
    (the database's ending time); a mark the ending could not write is only logged."""

    def ended() -> bool:
        # A hung or failing cache (its breaker open): the database's ending time, not a login held up.
        at = guarded_cache_call(cache.get, _ending_mark(user_pk), what="the ending mark", default=NO_ANSWER)
        if at is NO_ANSWER:
            at = _ending_time(user_pk)
        late = not isinstance(started_at, (int, float)) or (
            isinstance(at, (int, float))
            and at >= started_at - ending_skew_seconds()
            and (user_pk, at) not in _OWN_ENDINGS.get()
        )
        if late:
            logger.warning("authguard: a sign-in of user %s raced an ending of its sessions: ended", user_pk)
            try:
                end()
            except Exception:  # (after the commit too: no 500 for what the login already answered)
                logger.exception("authguard: could not end a sign-in that raced an ending")
        return late

    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(ended)
    return ended()


def _ending_time(user_pk: Any) -> float | None:
    try:
        row = AccountSecurity.objects.filter(user_id=user_pk)
        at = row.values_list("sessions_ended_at", flat=True).first()
    except Exception:
        logger.exception("authguard: no ending time readable")
        return float("inf")  # fail closed: ended
    return at.timestamp() if at is not None else None


def forget_session(session_key: str | None) -> None:
    """Drop the record of a session that was signed out."""
    if session_key:
        SessionRecord.objects.filter(session_key=session_key).delete()


def revoke_api_tokens(user: Any) -> int:
    """End every API token of ``user`` that an installed front end issued; returns how many ended."""
    return sum(int(result or 0) for _receiver, result in api_access_revoked.send(sender=None, user=user))
