"""Which generation of a browser's device cookie is current: a cookie left behind is a copy.

Every verified sign-in and step-up re-issues the device cookie with the same device id and a new
*generation* (its issue time in milliseconds, signed with the id:
:func:`authguard.risk.context.new_device_cookie`). The next request of the verified session that
presents it *confirms* it (:func:`check_session`): the
account's :class:`~authguard.models.KnownDevice` row keeps the newest confirmed generation, when it was
confirmed, and the one before it. The customer's browser moves on with every sign-in; a copy of its cookie jar
(infostealer malware) stays at the generation it was taken at. A device cookie older than the newest
generation any account confirmed for that device id since is a copy, or the browser lost its newest cookie:

* one generation behind (``left_behind`` 1): a copy taken before the customer's last sign-in, or a browser
  that crashed before it wrote its newest cookie to disk: ``device_cookie_behind`` (points, no floor);
* further behind (2): ``device_cookie_superseded``, a step-up at least, and the customer is told.

A browser sign-in the engine learns also notes, on the row, the generation it gave (``issued_generation``,
the oldest not presented since): a cookie older than it, shown over a minute after, is one behind too. That
is the copy that throws away each new cookie its sign-ins are given and signs in again before its session's
own check (:func:`check_session`) would see it (red team, round sixty-four). API token clients may pin their
cookie and are not noted (``LoginContext.token_client``).

A cookie left behind means two holders of one device id, and either may be the thief (he signs in first,
her browser falls behind). So the device id is *retired* the moment one is presented (:func:`retire`):
every cookie of that id is superseded from then on, and the next verified sign-in or step-up of each holder
gets a new device id (a new browser to the engine), never the next generation of the old one. A thief
cannot launder an old copy through an account of his own, nor keep the customer's established browser.

This is refresh-token rotation with reuse detection (OAuth 2.0 Security BCP, RFC 9700) applied to the device
cookie. The replay has no live cookies (``LoginContext.device_generation`` is None there): nothing here
applies. It sits low, beside :mod:`~authguard.sessions.device_activity`: the risk history reads it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import BigIntegerField, Case, DateTimeField, F, Q, Subquery, Value, When
from django.http import HttpRequest

from authguard.conf import app_settings
from authguard.models import KnownDevice, LoginEvent, TokenActivity
from authguard.risk.context import device_cookie_parts, device_hash
from authguard.sessions import device_binding

logger = logging.getLogger(__name__)

#: A generation confirmed this recently does not yet leave the one before it behind: requests the browser
#: sent before it took the new cookie (another tab, a slow upload) arrive with the old one.
GRACE_SECONDS = 60
#: The same for a sign-in: only two of her browser's sign-ins sent at once (two tabs, a double submit), the
#: second judged after the first's page confirmed its cookie. SECURITY: seconds, not the minute: a copy one
#: sign-in old timed into her minute was re-issued a sibling of her newest cookie (round sixty-four).
SIGN_IN_GRACE_SECONDS = 10
#: A verified session's cookie is compared with its browser's newest generation at most this often (one
#: indexed query): a copied session lives at most this long after the customer signs in again.
CHECK_SECONDS = 60

CURRENT, BEHIND, SUPERSEDED = 0, 1, 2

#: The generation a retired device id's rows hold: every cookie of the id is below it, and no
#: confirmation moves past it (a retired id is never current again).
RETIRED = 2**62
#: Two generations issued this close are siblings (two sign-ins of one browser in flight at once, whose
#: answers may arrive in either order), never a copy and its successor.
_SIBLING_MS = GRACE_SECONDS * 1000


def left_behind_sql(devices_table: str) -> str:
    """A scalar subquery: how far a sign-in's presented generation is behind (0, 1, 2; NULL without a row),
    over every account's row of the device id (the grace only on the judging account's own row), with
    :func:`left_behind_params`: :func:`judge` with a sign-in's grace (:data:`SIGN_IN_GRACE_SECONDS`). The
    risk history asks it in the statement that reads the profile, so a sign-in costs no query more (issue
    15). SECURITY: ``devices_table`` is the model's own quoted name, the constants are integers; every value
    is a parameter."""
    # Where the row says "current": one behind all the same if a newer generation given over a minute ago
    # was never presented (``issued_generation``).
    current = f"CASE WHEN issued_generation < %s AND %s < issued_generation - {_SIBLING_MS} THEN 1 ELSE 0 END"
    return (
        f"(SELECT MAX(CASE WHEN cookie_generation >= {RETIRED} THEN CASE WHEN previous_generation"  # noqa: S608
        f" IS NOT NULL AND %s >= previous_generation - {_SIBLING_MS} THEN 1 ELSE 2 END"
        f" WHEN cookie_generation IS NULL THEN {current}"
        f" WHEN %s >= cookie_generation - {_SIBLING_MS} THEN {current}"
        " WHEN cookie_generation_at > %s AND user_id = %s AND (previous_generation IS NULL"
        f" OR %s >= previous_generation - {_SIBLING_MS}) THEN {current}"
        " WHEN previous_generation IS NULL OR %s >= previous_generation THEN 1 ELSE 2 END)"
        f" FROM {devices_table} WHERE cookie_hash = %s)"
    )


def left_behind_params(ctx: Any, connection: Any, user: Any) -> list[Any]:
    """The parameters of :func:`left_behind_sql` for a login context (no row without a live cookie) of the
    account ``user`` (its id as the database takes it)."""
    generation = ctx.device_generation
    live = generation is not None and bool(ctx.device_hash)
    grace = connection.ops.adapt_datetimefield_value(ctx.time - timedelta(seconds=SIGN_IN_GRACE_SECONDS))
    presented = generation or 0
    given = (_ms(ctx.time) - _SIBLING_MS, presented)  # given before this, and not reached by it
    return [
        *(presented, *given, presented, *given, grace, user, presented, *given, presented),
        ctx.device_hash if live else "",
    ]


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


#: ``(cookie_generation, cookie_generation_at, previous_generation, whether the row is the judging
#: account's own, issued_generation)`` of a row of the device id.
Row = tuple[int | None, datetime | None, int | None, bool, int | None]


def judge(rows: list[Row], generation: int, now: datetime, *, grace: float = GRACE_SECONDS) -> int:
    """How far ``generation`` is behind, over the device id's rows (:data:`Row`), one per account; with the
    ``grace`` seconds of a session's requests (a sign-in's: :data:`SIGN_IN_GRACE_SECONDS`,
    :func:`left_behind_sql`)."""
    return max((_judge_row(row, generation, now, grace) for row in rows), default=CURRENT)


def _judge_row(row: Row, generation: int, now: datetime, grace: float) -> int:
    judged = _judge_confirmed(row, generation, now, grace)
    issued = row[4]
    # SECURITY: a sign-in over a minute ago was given a newer cookie that no request presented since: this
    # older one is a copy that threw it away and signed in again before its session's check (round 64), or
    # a browser that lost that answer: one behind, whichever session or sign-in asks.
    if judged == CURRENT and issued is not None and issued < _ms(now) - _SIBLING_MS:
        return BEHIND if generation < issued - _SIBLING_MS else CURRENT
    return judged


def _judge_confirmed(row: Row, generation: int, now: datetime, grace: float) -> int:
    newest, confirmed_at, previous, own, _issued = row
    if newest is not None and newest >= RETIRED:
        # The newest cookie when the id was retired is one holder's, perhaps the customer's: behind, not a
        # copy (she is not stepped up, or refused without a factor, for what the other holder did).
        sibling = previous is not None and generation >= previous - _SIBLING_MS
        return BEHIND if sibling else SUPERSEDED
    if newest is None or generation >= newest - _SIBLING_MS:
        return CURRENT
    # SECURITY: the grace covers the one cookie before the newest (requests sent before the browser took
    # its new cookie), never an older one: a copy three sign-ins old shown in the minute after her sign-in
    # would otherwise be current, and re-issued as her browser's sibling (red team, round eight). And only
    # for the account whose row it is: her browser's requests in flight are her account's; the copy one
    # sign-in old shown to another account in that minute is a copy (round nine). And seconds only for a
    # sign-in (SIGN_IN_GRACE_SECONDS): a copy one sign-in old timed into her minute was re-issued a sibling
    # of her newest cookie, the two holders never behind each other until her next sign-in (round 64).
    fresh = own and confirmed_at is not None and confirmed_at > now - timedelta(seconds=grace)
    if fresh and (previous is None or generation >= previous - _SIBLING_MS):
        return CURRENT
    if previous is None or generation >= previous:
        return BEHIND
    return SUPERSEDED


def left_behind(*, device_hash: str, generation: int, now: datetime, user_id: Any) -> int:
    """How far ``generation`` of the device id is behind the newest one any account confirmed, judged for
    the account ``user_id`` (the grace minute counts on its own row only)."""
    rows = KnownDevice.objects.filter(cookie_hash=device_hash).values_list(
        "cookie_generation", "cookie_generation_at", "previous_generation", "user_id", "issued_generation"
    )
    return judge([(*row[:3], row[3] == user_id, row[4]) for row in rows], generation, now)


def holds_newest(*, newest: int | None, previous: int | None, generation: int) -> bool:
    """Whether ``generation`` is the cookie an account's row of its device id (``cookie_generation``
    ``newest``, ``previous_generation`` ``previous``) holds as its newest, within sibling distance: the newest
    confirmed generation, or, once the id is retired, the one that was newest then (the browser that moved
    on, not the copy left behind). A row that never confirmed a generation (a browser from before
    generations) holds only a cookie from before generations (generation 0).

    SECURITY: retiring the id (anyone can, by presenting an old copy once, even from an account of his own)
    must not make the customer's own browser a stranger (red team, round six); nor may a generation issued
    on another account's row of the same id, newer than hers, pass for hers (a current copy laundered
    through the thief's own account: round seven). Hence "within sibling distance", never "at least".
    """
    if newest is None:
        # SECURITY: not "nothing to compare": a copy from before generations, shown once to the thief's own
        # account, carries a generation his row issued (red team, round eight).
        return generation == 0
    anchor = previous if newest >= RETIRED else newest
    return anchor is not None and abs(generation - anchor) <= _SIBLING_MS


def retire(*, device_hash: str, now: datetime) -> None:
    """A cookie of this device id was left behind: two holders, either may be the thief. From now on the
    newest cookie of the id is behind and every older one superseded, with no grace; each holder's next
    verified sign-in or step-up gets a new id. (``previous_generation`` keeps the newest at retirement.)
    The API tokens issued with the id end."""
    # SECURITY: a row that never confirmed a generation (a browser from before generations) is retired too:
    # NULL is not "< RETIRED", and such a row would stay current for good (red team, round eight).
    live = Q(cookie_generation__lt=RETIRED) | Q(cookie_generation__isnull=True)
    KnownDevice.objects.filter(live, cookie_hash=device_hash).update(
        previous_generation=F("cookie_generation"), cookie_generation=RETIRED, cookie_generation_at=now
    )
    # SECURITY: an API token issued to a holder of the id is a session of it: its activity goes, so its
    # next call ends it (a token without its row ends: sessions.token_binding), with its cookie or without
    # (round thirty-five). "tdv" is sessions.token_devices.DEVICE_KEY (that module imports this one).
    TokenActivity.objects.filter(binding__tdv=device_hash).delete()


def confirm(*, user_id: Any, device_hash: str, generation: int, now: datetime) -> bool:
    """The account's verified session presented ``generation`` of the device's cookie: it is the newest
    (one conditional UPDATE; an older or equal one, or a retired id, changes nothing). Returns whether a
    row moved on."""
    newer = Q(cookie_generation__isnull=True) | Q(cookie_generation__lt=generation)
    # One statement: the database moves the newest to ``previous`` and sets the new one atomically, so two
    # racing confirmations keep the order of their generations. The generation given is presented now.
    moved = KnownDevice.objects.filter(newer, user_id=user_id, cookie_hash=device_hash).update(
        previous_generation=F("cookie_generation"),
        cookie_generation=generation,
        cookie_generation_at=now,
        issued_generation=Case(
            When(_given_reached(generation), then=Value(None)),
            default=F("issued_generation"),
            output_field=BigIntegerField(),
        ),
    )
    return moved > 0


def _given_reached(generation: int) -> Q:
    """The row's generation given (``issued_generation``) is ``generation`` or older, within sibling
    distance: a browser presenting ``generation`` took it."""
    return Q(issued_generation__lte=generation + _SIBLING_MS)


def forget_given(*, device_hash: str, event_id: int | None, now: datetime) -> None:
    """The sign-in of login event ``event_id`` gave its browser no new cookie after all (a session ended as it
    signed in, a portal view that signed it out): forget the generation its learning noted as given
    (:func:`keep_given`), or the browser's next sign-in would be one behind. Only that account's row, and
    only a value noted within the minute (too young to have judged anything): older evidence stays."""
    if event_id is None:
        return
    account = LoginEvent.objects.filter(pk=event_id).values("user_id")[:1]
    KnownDevice.objects.filter(
        cookie_hash=device_hash, user_id=Subquery(account), issued_generation__gte=_ms(now) - _SIBLING_MS
    ).update(issued_generation=None)


def given_generation(ctx: Any) -> int | None:
    """The generation (at least) that the answer to a learned browser sign-in presenting a live cookie gives
    it (the cookie is issued after the view: :mod:`~authguard.sessions.device_cookie`). None for the replay
    (no live cookies) and for API token clients, which may pin their cookie and would be left behind by their
    own sign-ins."""
    if ctx.device_generation is None or ctx.token_client:
        return None
    return max(_ms(ctx.time), ctx.device_generation + 1)


def keep_given(ctx: Any, given: int) -> dict[str, Case]:
    """The fields of the risk history's update of the row (the statement it sends anyway) for a learned
    browser sign-in that presented ``ctx.device_generation`` and is given ``given``: ``issued_generation``
    becomes ``given``, unless the row holds an older generation given that this cookie has not reached (the
    oldest no request presented). A cookie that reaches it is confirmed, as a session's request would.

    SECURITY: confirmed, not only cleared: a copy signing in every 55 s with the cookie its previous sign-in
    was given (never presented by a request) cleared the evidence each time and moved nothing, so her older
    generation stayed current beside it for good (red team, round sixty-seven)."""
    presented = ctx.device_generation
    taken = Q(issued_generation__isnull=True) | _given_reached(presented)
    reached = _given_reached(presented) & (
        Q(cookie_generation__isnull=True) | Q(cookie_generation__lt=presented)
    )
    big: Any = BigIntegerField()
    # As :func:`confirm`: the newest moves to ``previous``. PostgreSQL and SQLite read the old row on every
    # right-hand side; MySQL reads the assignments before it, hence this order (what ``reached`` reads last).
    return {
        "previous_generation": Case(
            When(reached, then=F("cookie_generation")), default=F("previous_generation"), output_field=big
        ),
        "cookie_generation_at": Case(
            When(reached, then=Value(ctx.time)),
            default=F("cookie_generation_at"),
            output_field=DateTimeField(),
        ),
        "cookie_generation": Case(
            When(reached, then=Value(presented)), default=F("cookie_generation"), output_field=big
        ),
        "issued_generation": Case(
            When(taken, then=Value(given)), default=F("issued_generation"), output_field=big
        ),
    }


def note_issued(state: dict[str, Any], generation: int | None, now: float) -> None:
    """The session's browser was given ``generation`` in this response: its next request confirms it."""
    state["dg"] = generation
    state["dgc"] = False
    state["dgt"] = now


#: The findings that say a sign-in presented a cookie left behind (:mod:`authguard.risk.signals_device`).
LEFT_BEHIND_CODES = frozenset({"device_cookie_behind", "device_cookie_superseded"})


def check_session(
    request: HttpRequest, state: dict[str, Any], *, device: str | None, generation: int | None, now: float
) -> tuple[bool, bool]:
    """For a verified session's request presenting ``device`` (its hash) at ``generation``: confirm the
    generation the session was given, and at most every :data:`CHECK_SECONDS` ask whether the cookie was
    left behind (then its id is retired). Returns ``(state changed, hold the session)``."""
    if device is None or generation is None or device != (state.get("b") or {}).get("dev"):
        # SECURITY: a session that was given a cookie generation (its sign-in or step-up bound it to the
        # device), asked without it (dropped, or swapped for a fresh one), is a copied session cookie
        # shedding the evidence: held like a cookie left behind, whether or not it confirmed the generation
        # yet (red team, round thirty-six: the thief dropped the cookie his sign-in was given before any
        # other request, and her next sign-in retired nothing).
        hold = bool(state.get("dgc")) or isinstance(state.get("dg"), int)
        return False, hold and not _reported(state, device, generation)
    at = datetime.fromtimestamp(now, tz=timezone.utc)
    changed = False
    issued = state.get("dg")
    # SECURITY: the session was given a newer generation than this one, a minute ago or more: its browser
    # took it (the session cookie came in the same answer), so this is a copy that threw the new cookie away
    # to keep presenting hers, which then stayed current for good and her browser never fell behind (red
    # team, round sixty-three). Judged at once, as a cookie left behind: held, and the id retired.
    shed = isinstance(issued, int) and generation < issued - _SIBLING_MS and now * 1000 - issued > _SIBLING_MS
    if isinstance(issued, int) and not state.get("dgc") and generation >= issued:
        try:
            with transaction.atomic():
                confirm(user_id=request.user.pk, device_hash=device, generation=generation, now=at)
        except DatabaseError:
            # Only this evidence is lost: the older generation stays the newest one, nothing is held.
            logger.exception("authguard: could not confirm a device cookie generation")
        state["dgc"] = True
        changed = True
    last = state.get("dgt")
    if not shed and isinstance(last, (int, float)) and 0 <= now - last < CHECK_SECONDS:
        return changed, False
    state["dgt"] = now
    try:
        with transaction.atomic():  # a savepoint: a failure leaves a portal's request transaction usable
            behind = (
                SUPERSEDED
                if shed
                else left_behind(device_hash=device, generation=generation, now=at, user_id=request.user.pk)
            )
            if behind and not unproven_copy_of_bound(request, device=device, user_id=request.user.pk):
                retire(device_hash=device, now=at)
    except DatabaseError:
        # SECURITY: a comparison that cannot be made holds the session (fail closed); it re-scores.
        logger.exception("authguard: could not compare a device cookie generation")
        behind = SUPERSEDED
    return True, behind > CURRENT and not _reported(state, device, generation)


def _reported(state: dict[str, Any], device: str | None, generation: int | None) -> bool:
    """Report-only already carried this session on for this very cookie: no re-score at every request."""
    return app_settings.report_only("step_up") and state.get("dgr") == f"{device}:{generation}"


def note_reported(state: dict[str, Any], device: str | None, generation: int | None) -> None:
    """Report-only carried a held session on: its re-score is not repeated for the same cookie."""
    state["dgr"] = f"{device}:{generation}"


def reissued_id(
    *, device_id: str, device: str, generation: int | None, decision: Any, now: datetime, user_id: Any
) -> str | None:
    """The id a verified sign-in's or step-up's re-issued cookie carries: ``device_id`` (the next
    generation), or None (a new id) when the presented cookie was left behind or its id retired.

    A sign-in's decision already judged the cookie (its findings); a step-up asks (one query)."""
    if decision is not None:
        behind = bool(LEFT_BEHIND_CODES & set(decision.assessment.reasons))
    else:
        behind = (
            left_behind(device_hash=device, generation=generation or 0, now=now, user_id=user_id) > CURRENT
        )
    # SECURITY: never the next generation of a copy: that would make it current again (a laundered copy).
    return None if behind else device_id


def unproven_copy_of_bound(
    request: HttpRequest, *, device: str, user_id: Any, by_passkey: bool = False
) -> bool:
    """Whether the request's device cookie (``device``) is a DBSC-bound browser's of ``user_id`` presented
    without its key's proof, in a session not verified with a passkey (``by_passkey``: a passkey re-binds
    the used cookie instead, :mod:`~authguard.sessions.device_binding`). One query, with DBSC on."""
    if by_passkey:
        return False
    binding = device_binding.device_binding_state(request, device_cookie_hash=device, user_id=user_id)
    return binding == "bound_missing_proof"


def retire_if_left_behind(request: HttpRequest, *, device: str, decision: Any, now: datetime) -> None:
    """A sign-in (any outcome) presented a cookie left behind: retire its id (:func:`retire`), unless it is a
    copy of a DBSC-bound browser's cookie that its missing proof tells apart (:func:`unproven_copy_of_bound`).

    SECURITY: either holder of a retired id may be the thief, so both lose it; a bound browser's holder is
    known by its key, and her browser of months kept losing its id and its standing to a copy's sign-in
    (red team, round forty-seven)."""
    if decision is None or not LEFT_BEHIND_CODES & set(decision.assessment.reasons):
        return
    if not unproven_copy_of_bound(request, device=device, user_id=getattr(request.user, "pk", None)):
        retire(device_hash=device, now=now)


def presented(request: HttpRequest) -> tuple[str | None, int | None]:
    """``(device hash, generation)`` of the request's device cookie, each None when absent or forged."""
    # One signature check per request (this runs for every request of a verified session).
    parts = device_cookie_parts(request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME))
    return (device_hash(parts[0]), parts[1]) if parts else (None, None)
