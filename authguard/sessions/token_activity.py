"""An API token is a session: how long it may live, and how long it may sit unused.

A browser session is signed out after ``AUTHGUARD_SESSION_IDLE_SECONDS`` unused (NIST SP 800-63B AAL2: at most
an hour) and ``AUTHGUARD_SESSION_ABSOLUTE_SECONDS`` after its sign-in however active (24 hours). An API token
issued by :mod:`authguard.drf` is the same sign-in, so it ends by the same two limits, both on authguard's
clock (corrected to the database's: docs/faults.md). DRF's ``Token`` has no "last used" field:
:class:`~authguard.models.TokenActivity` keeps it, written at issue and at most once a minute while the token
is used (:data:`TOUCH_SECONDS`), so a busy client costs one indexed read per call (its binding comes with
it) and a write a minute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from authguard import clock
from authguard.conf import app_settings
from authguard.models import TokenActivity

#: A token's last use is written at most this often: its idle time is known to within a minute.
TOUCH_SECONDS = 60


def _digest(token_key: str) -> str:
    # SECURITY: the key is a bearer secret; only its digest is kept here.
    return hashlib.sha256(token_key.encode()).hexdigest()


def note_issued(*, token_key: str, now: datetime) -> None:
    """A token was just issued: it was last used now."""
    TokenActivity.objects.update_or_create(token_digest=_digest(token_key), defaults={"last_used_at": now})


def forget(*, token_keys: Collection[str]) -> None:
    """The tokens were revoked: their activity names nothing any more."""
    TokenActivity.objects.filter(token_digest__in=[_digest(key) for key in token_keys]).delete()


class Activity(NamedTuple):
    """A token's activity row: its last use and the state it is bound to (:mod:`.token_binding`)."""

    last_used_at: datetime
    binding: Any


def read(*, token: Any) -> Activity | None:
    """The activity row of ``token``, in one indexed read; ``None`` when it has none (revoked by a call in
    flight, or issued before activity was kept)."""
    row = TokenActivity.objects.filter(token_digest=_digest(token.key)).values_list("last_used_at", "binding")
    found = row.first()
    return Activity(*found) if found is not None else None


def binding_of(token_key: str) -> Any:
    """The binding state kept for ``token_key`` (None when it has no activity row): one indexed read."""
    found = TokenActivity.objects.filter(token_digest=_digest(token_key)).values_list("binding").first()
    return found[0] if found is not None else None


def ended(*, token: Any, activity: Activity | None) -> bool:
    """Whether ``token`` (DRF's ``Token``: ``key``, ``created``) has ended: older than the absolute session
    lifetime, unused for longer than a session may be idle, or either time dated in the future beyond the
    clock tolerance. ``activity`` is its row as :func:`read` found it. A token that has not ended is noted as
    used now (a write at most once a minute).

    SECURITY: a token without an activity row (issued before this table existed) counts as idle since it
    was created: it ends rather than living on unmeasured. A last use from the future (written by a node
    whose clock ran ahead) ends it too: kept, it would stretch the idle limit by the skew (red team, round
    ten), as a sign-in time from the future would stretch the absolute one.
    """
    now, digest = clock.now(), _digest(token.key)
    age = (now - token.created).total_seconds()
    if age > app_settings.SESSION_ABSOLUTE_SECONDS or clock.is_from_the_future(age):
        return True
    last = activity.last_used_at if activity is not None else token.created
    idle = (now - last).total_seconds()
    if idle > app_settings.SESSION_IDLE_SECONDS or clock.is_from_the_future(idle):
        return True
    if idle >= TOUCH_SECONDS:
        # A conditional write: concurrent calls of one client write once, and never move the time back.
        # SECURITY: never a row for a token whose row is gone: revoked by a call in flight beside this one
        # (red team, round fifteen: it came back with an empty binding, bound to the thief's network).
        TokenActivity.objects.filter(token_digest=digest, last_used_at__lt=now).update(last_used_at=now)
    return False


def write_binding(token_key: str, state: dict[str, Any], version: Any) -> bool:
    """Write the binding state ``state`` (:mod:`.token_binding`) for ``token_key`` if its stored version is
    still ``version`` (``None``: a state from before versions, or none), as version ``version + 1``; whether
    it was written. One conditional ``UPDATE``, on SQLite and PostgreSQL alike (a JSON key lookup)."""
    rows = TokenActivity.objects.filter(token_digest=_digest(token_key))
    seen = version if isinstance(version, int) else None
    rows = rows.filter(binding__v=seen) if seen is not None else rows.filter(binding__v__isnull=True)
    state["v"] = (seen or 0) + 1
    return rows.update(binding=state) == 1
