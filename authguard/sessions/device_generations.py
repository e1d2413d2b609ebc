"""Which generation of a browser's device cookie is current: a cookie left behind is a copy.

Every sign-in and step-up re-issues the device cookie with the same device id and a new *generation* (its
issue time in milliseconds, signed with the id: :func:`authguard.risk.context.new_device_cookie`). The next
request of the verified session that presents it *confirms* it (:func:`check_session`): the account's
:class:`~authguard.models.KnownDevice` row keeps the newest confirmed generation, when it was confirmed, and
the one before it. The customer's browser moves on with every sign-in; a copy of its cookie jar (infostealer
malware) stays at the generation it was taken at. So a device cookie older than the newest generation its
browser confirmed since is a copy, or the browser lost its newest cookie:

* one generation behind (``left_behind`` 1): a copy taken before the customer's last sign-in, or a browser
  that crashed before it wrote its newest cookie to disk: ``device_cookie_behind`` (points, no floor);
* further behind (2): no crash loses two sign-ins' cookies: ``device_cookie_superseded``, a step-up at least,
  and the customer is told.

This is refresh-token rotation with reuse detection (OAuth 2.0 Security BCP, RFC 9700) applied to the device
cookie, and per account: a thief's own account signed in with the copy moves only its own row. Whoever uses
a copy first, the other side is caught next: the thief at his sign-in (or his copied session within
:data:`CHECK_SECONDS`) when the customer signed in since the theft; otherwise the customer's browser, whose
sign-in or session is then held at step-up, which she passes and the thief (without her passkey) does not,
and which moves the generation on past the thief's.

The replay has no live cookies (``LoginContext.device_generation`` is None there): nothing here applies.
It sits low, beside :mod:`~authguard.sessions.device_activity`: the risk history reads it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.http import HttpRequest

from authguard.conf import app_settings
from authguard.models import KnownDevice
from authguard.risk.context import device_cookie_generation, device_hash, device_id_from_cookie

logger = logging.getLogger(__name__)

#: A generation confirmed this recently does not yet leave the one before it behind: requests the browser
#: sent before it took the new cookie (another tab, a slow upload) arrive with the old one.
GRACE_SECONDS = 60
#: A verified session's cookie is compared with its browser's newest generation at most this often (one
#: indexed query): a copied session lives at most this long after the customer signs in again.
CHECK_SECONDS = 60

CURRENT, BEHIND, SUPERSEDED = 0, 1, 2


def left_behind_sql(devices_table: str) -> str:
    """A scalar subquery: how far the presented generation is behind (0, 1, 2; NULL without a row), with
    :func:`left_behind_params`. The risk history asks it in the statement that reads the profile, so a
    sign-in costs no query more (issue 15). SECURITY: ``devices_table`` is the model's own quoted name;
    every value is a parameter."""
    return (
        "(SELECT CASE WHEN cookie_generation IS NULL OR %s >= cookie_generation"  # noqa: S608
        " OR cookie_generation_at > %s THEN 0"
        " WHEN previous_generation IS NULL OR %s >= previous_generation THEN 1 ELSE 2 END"
        f" FROM {devices_table} WHERE user_id = %s AND cookie_hash = %s AND revoked_at IS NULL)"
    )


def left_behind_params(ctx: Any, user: Any, connection: Any) -> list[Any]:
    """The parameters of :func:`left_behind_sql` for a login context (no row without a live cookie)."""
    generation = ctx.device_generation
    live = generation is not None and bool(ctx.device_hash)
    grace_start = connection.ops.adapt_datetimefield_value(ctx.time - timedelta(seconds=GRACE_SECONDS))
    return [generation or 0, grace_start, generation or 0, user, ctx.device_hash if live else ""]


def judge(row: tuple[int | None, datetime | None, int | None] | None, generation: int, now: datetime) -> int:
    """:func:`left_behind_sql` in Python: ``row`` is ``(cookie_generation, cookie_generation_at,
    previous_generation)`` of the account's device, or None."""
    if row is None:
        return CURRENT
    newest, confirmed_at, previous = row
    if newest is None or generation >= newest:
        return CURRENT
    if confirmed_at is not None and confirmed_at > now - timedelta(seconds=GRACE_SECONDS):
        return CURRENT
    if previous is None or generation >= previous:
        return BEHIND
    return SUPERSEDED


def left_behind(*, user_id: Any, device_hash: str, generation: int, now: datetime) -> int:
    """How far ``generation`` of the device is behind its newest confirmed one for the account."""
    row = (
        KnownDevice.objects.filter(user_id=user_id, cookie_hash=device_hash, revoked_at__isnull=True)
        .values_list("cookie_generation", "cookie_generation_at", "previous_generation")
        .first()
    )
    return judge(row, generation, now)


def confirm(*, user_id: Any, device_hash: str, generation: int, now: datetime) -> bool:
    """The account's verified session presented ``generation`` of the device's cookie: it is the newest
    (one conditional UPDATE; an older or equal one changes nothing). Returns whether a row moved on."""
    newer = Q(cookie_generation__isnull=True) | Q(cookie_generation__lt=generation)
    # One statement: the database moves the newest to ``previous`` and sets the new one atomically, so two
    # racing confirmations keep the order of their generations.
    moved = KnownDevice.objects.filter(newer, user_id=user_id, cookie_hash=device_hash).update(
        previous_generation=F("cookie_generation"), cookie_generation=generation, cookie_generation_at=now
    )
    return moved > 0


def note_issued(state: dict[str, Any], generation: int | None, now: float) -> None:
    """The session's browser was given ``generation`` in this response: its next request confirms it."""
    state["dg"] = generation
    state["dgc"] = False
    state["dgt"] = now


def check_session(
    request: HttpRequest, state: dict[str, Any], *, device: str | None, generation: int | None, now: float
) -> tuple[bool, bool]:
    """For a verified session's request presenting ``device`` (its hash) at ``generation``: confirm the
    generation the session was given, and at most every :data:`CHECK_SECONDS` ask whether the cookie was
    left behind. Returns ``(state changed, left behind)``."""
    if device is None or generation is None or device != (state.get("b") or {}).get("dev"):
        return False, False  # no cookie, or another one: the binding re-scores that change itself
    user_id = request.user.pk
    at = datetime.fromtimestamp(now, tz=timezone.utc)
    changed = False
    issued = state.get("dg")
    if isinstance(issued, int) and not state.get("dgc") and generation >= issued:
        try:
            with transaction.atomic():
                confirm(user_id=user_id, device_hash=device, generation=generation, now=at)
        except DatabaseError:
            # Only this evidence is lost: the older generation stays the newest one, nothing is held.
            logger.exception("authguard: could not confirm a device cookie generation")
        state["dgc"] = True
        changed = True
    last = state.get("dgt")
    if isinstance(last, (int, float)) and 0 <= now - last < CHECK_SECONDS:
        return changed, False
    state["dgt"] = now
    try:
        with transaction.atomic():  # a savepoint: a failure leaves a portal's request transaction usable
            behind = left_behind(user_id=user_id, device_hash=device, generation=generation, now=at)
    except DatabaseError:
        # SECURITY: a comparison that cannot be made holds the session (fail closed); it re-scores.
        logger.exception("authguard: could not compare a device cookie generation")
        behind = SUPERSEDED
    if behind and state.get("dgr") == generation:
        return True, False  # already re-scored for this very cookie (and reported: report-only)
    return True, behind > CURRENT


def note_reported(state: dict[str, Any], generation: int | None) -> None:
    """Report-only carried a left-behind session on: its re-score is not repeated for the same cookie."""
    state["dgr"] = generation


def presented(request: HttpRequest) -> tuple[str | None, int | None]:
    """``(device hash, generation)`` of the request's device cookie, each None when absent or forged."""
    raw = request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME)
    return device_hash(device_id_from_cookie(raw)), device_cookie_generation(raw)
