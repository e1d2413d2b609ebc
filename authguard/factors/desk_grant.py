"""The customer desk's re-binding grant: a customer who lost every usable factor binds one again, once.

The desk (a staff user, after the portal's own approvals and identity checks) calls :func:`grant_rebind`: the
grant holds for ``hours`` (72 by default) and comes with a one-time **desk code** that the desk gives the
customer through the contact it has on file (a letter to the registered address, a call back to the
registered number), never to whoever phoned. In a signed-in session she enters it (:func:`redeem_code`, the
HTML page and ``POST api/rebind-code``), and that session may bind one factor
(:func:`authguard.factors.lifecycle.require_strong_rebind`); the enrollment uses the grant up.

SECURITY: without the code, the grant sat on the account, and an account without a usable factor signs in
with the password alone: a browser of the thief's own, parked a month after one relayed code, took the
grant she had asked for (red team, round seventy-one; rounds seventy and 2026-12-05 had tied it to a browser
of a month, which a relayed code satisfies). The code reaches her out of band, after the grant was given:
a password and a relayed authenticator code do not give it to him. It is still a secret she types into a
page, so a phishing page that asks for it can relay it (a known limit, round seventy-two: the factor he
binds is then unvouched, fourteen days, and she is told). A session may enter five wrong codes, the grant
fifty in all (then it is withdrawn); a wrong code tells her at once.
"""

from __future__ import annotations

import functools
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from authguard import clock, durable
from authguard.audit import audit
from authguard.exceptions import InvalidCredential, Throttled
from authguard.factors.inventory import security_row
from authguard.models import AccountSecurity
from authguard.notifications.outbox import notify_customer, request_context
from authguard.sessions import state as sessions_state

logger = logging.getLogger(__name__)

#: How long a grant holds unless the desk says otherwise.
DESK_REBIND_HOURS = 72
#: Wrong desk codes one session may enter (then it is refused, the grant kept for her).
DESK_CODE_SESSION_TRIES = 5
#: Wrong desk codes in all after which the grant is withdrawn (the desk gives a new one): 50 guesses at a
#: 50-bit code.
DESK_CODE_TRIES = 50
#: The desk code's alphabet: Crockford's base 32 (no I, L, O or U to misread); 10 characters, 50 bits.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
#: Where a session keeps the code it was given (its hash): only that session may use the grant.
SESSION_KEY = "_authguard_desk_code"
#: The wrong desk codes this session entered.
SESSION_TRIES_KEY = "_authguard_desk_code_tries"
_READ_AS_DIGITS = str.maketrans("OIL", "011")
#: What a grant that opens nothing more leaves on the account's row (used up, withdrawn).
_CLOSED: dict[str, Any] = {"rebind_granted_until": None, "rebind_code_hash": "", "rebind_code_failures": 0}


@dataclass(frozen=True)
class DeskGrant:
    """What :func:`grant_rebind` gives the desk: until when the grant holds, and the one-time code (shown
    once, stored only as a hash) to hand to the customer through the contact on file."""

    until: datetime
    code: str


class InvalidDeskCode(InvalidCredential):
    """The desk code was wrong, or no grant is open for it."""

    default_code = "wrong_code"


def _hash(user: Any, code: str) -> str:
    return salted_hmac("authguard.desk-code", f"{user.pk}:{code}", algorithm="sha256").hexdigest()


def normalize_code(value: object) -> str:
    """The code as typed, folded: full-width characters (a Japanese input method), spaces and hyphens, case,
    and the letters Crockford reads as digits (O as 0, I and L as 1)."""
    if not isinstance(value, str) or len(value) > 64:
        return ""
    folded = unicodedata.normalize("NFKC", value).upper()
    folded = folded.translate(_READ_AS_DIGITS)
    return "".join(ch for ch in folded if ch in CODE_ALPHABET)


def grant_rebind(user: Any, *, by_staff: Any, hours: int = DESK_REBIND_HOURS) -> DeskGrant:
    """The desk's path (the admin calls it, after its own approvals): let ``user`` bind a factor again,
    once, within ``hours``, from a session that enters the returned code. A new grant replaces an open one
    (and its code). The factor bound this way cools off like any new one, and the customer is told (the
    notice carries no code: her mailbox may be the thief's)."""
    if by_staff is None or not getattr(by_staff, "is_staff", False):
        raise PermissionError("only staff may grant a re-binding")
    until = clock.now() + timedelta(hours=hours)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    row = security_row(user)
    with transaction.atomic():
        AccountSecurity.objects.filter(pk=row.pk).update(
            rebind_granted_until=until,
            rebind_granted_by=by_staff,
            rebind_code_hash=_hash(user, code),
            rebind_code_failures=0,
        )
        # SECURITY: recorded and told at once, as everything the desk does to an account: a grant given on
        # the thief's phone call left no audit line and said nothing to her until his factor was bound with
        # it (red team, round thirty-three).
        audit(by_staff, row, f"granted a re-binding of a sign-in method until {until.isoformat()}")
        notify_customer(user, "rebind_granted", context={"until": until, "time": clock.now()})
    logger.warning("authguard re-binding granted user=%s staff=%s until=%s", user.pk, by_staff.pk, until)
    return DeskGrant(until=until, code=f"{code[:5]}-{code[5:]}")


def open_grant_until(user: Any) -> datetime | None:
    """Until when the desk's grant for ``user`` holds, or None without an open one (a grant given before
    desk codes existed has no code and opens nothing: the desk grants again)."""
    return (
        AccountSecurity.objects.filter(user_id=user.pk, rebind_granted_until__gt=clock.now())
        .exclude(rebind_code_hash="")
        .values_list("rebind_granted_until", flat=True)
        .first()
    )


def _session_tries(request: HttpRequest, grant: str) -> int:
    """The wrong codes this session entered for the grant whose code hash starts with ``grant``."""
    noted = request.session.get(SESSION_TRIES_KEY)
    if isinstance(noted, dict) and noted.get("g") == grant and isinstance(noted.get("n"), int):
        return int(noted["n"])
    return 0


def _count_wrong_code(user: Any, grant: str, context: dict[str, Any]) -> bool:
    """Count a wrong code against the grant whose code hash starts with ``grant`` (if it is still the open
    one), withdraw it at :data:`DESK_CODE_TRIES`, and tell her at the first and at the withdrawal; True when
    this withdrew it. Its own transaction under the row's lock; run again after the view when a portal's
    transaction rolled it back (:func:`authguard.durable.outlive_rollback`)."""
    with transaction.atomic():
        row = security_row(user, lock=True)
        if not row.rebind_code_hash or not row.rebind_code_hash.startswith(grant):
            return False  # withdrawn or replaced meanwhile: nothing of this grant to count
        first = row.rebind_code_failures == 0
        withdrawn = row.rebind_code_failures + 1 >= DESK_CODE_TRIES
        if withdrawn:
            AccountSecurity.objects.filter(pk=row.pk).update(**_CLOSED)
            logger.warning("authguard desk code: too many wrong codes, grant withdrawn user=%s", user.pk)
        else:
            AccountSecurity.objects.filter(pk=row.pk).update(
                rebind_code_failures=F("rebind_code_failures") + 1
            )
        if first or withdrawn:
            notify_customer(
                user,
                "desk_code_wrong",
                context={**context, "withdrawn": withdrawn},
                dedupe_key=f"desk-code-wrong:{user.pk}:{grant}:{'withdrawn' if withdrawn else 'first'}",
            )
    return withdrawn


def redeem_code(request: HttpRequest, *, user: Any, code: object) -> datetime:
    """Enter the desk code in this signed-in session: from now on the session may use the grant (until the
    returned time). Raises :class:`InvalidDeskCode` (wrong code, or no grant open) and
    :class:`~authguard.exceptions.Throttled` (this session entered too many wrong codes for this grant, or
    the grant was withdrawn for too many in all).

    SECURITY: a wrong code tells her at once (someone with her password is at it: her first sign that it
    leaked), and the tries are counted per session (and per grant: a new grant's code is taken in the
    session that mistyped the last one) before they count against the grant: five wrong codes from the
    thief had withdrawn her grant with nobody told (red team, round seventy-two). The grant's count
    outlives a portal's rollback (a view under ``ATOMIC_REQUESTS`` that lets the refusal propagate)."""
    typed = normalize_code(code)
    with transaction.atomic():
        row = security_row(user, lock=True)
        now = clock.now()
        if row.rebind_granted_until is None or row.rebind_granted_until <= now or not row.rebind_code_hash:
            raise InvalidDeskCode(_("There is no open permission from our desk for this account."))
        grant = row.rebind_code_hash[:12]
        tries = _session_tries(request, grant)
        if tries >= DESK_CODE_SESSION_TRIES:
            raise Throttled(
                _("Too many wrong codes. Please contact our customer desk again."), code="desk_code_tries"
            )
        # SECURITY: compared under the row's lock, so parallel guesses each count.
        right = len(typed) == CODE_LENGTH and constant_time_compare(_hash(user, typed), row.rebind_code_hash)
        if right:
            request.session[SESSION_KEY] = row.rebind_code_hash
            request.session.pop(SESSION_TRIES_KEY, None)
    if not right:
        request.session[SESSION_TRIES_KEY] = {"g": grant, "n": tries + 1}
        context = {"time": now, **request_context(request)}
        count = functools.partial(_count_wrong_code, user, grant, context)
        withdrawn = count()
        durable.outlive_rollback(count, using=router.db_for_write(AccountSecurity))
        if withdrawn:
            raise Throttled(
                _("Too many wrong codes. Please contact our customer desk again."), code="grant_withdrawn"
            )
        raise InvalidDeskCode(_("This is not the code our desk gave you."))
    logger.info("authguard desk code entered user=%s", user.pk)
    return row.rebind_granted_until


def desk_granted(request: HttpRequest, *, user: Any) -> bool:
    """Whether this verified session entered the code of the desk's grant for ``user`` that still holds
    (consumed by the enrollment, :func:`consume`)."""
    state = sessions_state.session_state(request)
    if state is None or state.status != "verified":
        return False
    entered = request.session.get(SESSION_KEY)
    if not isinstance(entered, str) or not entered:
        return False
    held = (
        AccountSecurity.objects.filter(user_id=user.pk, rebind_granted_until__gt=clock.now())
        .values_list("rebind_code_hash", flat=True)
        .first()
    )
    # SECURITY: the code of *this* grant: one entered for a grant since withdrawn or replaced opens nothing.
    return held is not None and held != "" and constant_time_compare(entered, held)


def consume(request: HttpRequest | None, *, row: AccountSecurity) -> bool:
    """Use the grant up for a factor bound through it, on the account's security ``row`` the enrollment
    holds locked: only if it is still the open grant whose code this session entered. False otherwise (the
    enrollment is refused).

    SECURITY: checked again under the row's lock: a registration and an app confirmation in parallel, from
    the session that entered the code, had both passed :func:`desk_granted` and bound two factors; and a
    grant the desk gave meanwhile is not the one this session's code opened (review, round seventy-two)."""
    entered = request.session.get(SESSION_KEY) if request is not None else None
    if not isinstance(entered, str) or not entered:
        return False
    used = AccountSecurity.objects.filter(
        pk=row.pk, rebind_code_hash=entered, rebind_granted_until__gt=clock.now()
    ).update(**_CLOSED)
    return bool(used)


def withdraw_rebind_grant(user: Any) -> bool:
    """End an open re-binding grant of ``user`` (the desk's containment calls this); True if one was open.

    SECURITY: a grant given on a phone call the desk later judged to be the thief's must not outlive the
    containment that followed: he would sign in again and bind his passkey through it (red team,
    2026-12-05). A grant given after the containment, once the desk has checked who calls, is a new one.
    """
    withdrawn = AccountSecurity.objects.filter(user_id=user.pk, rebind_granted_until__gt=clock.now()).update(
        **_CLOSED, rebind_granted_by=None
    )
    return bool(withdrawn)


__all__ = [
    "CODE_LENGTH",
    "DESK_CODE_SESSION_TRIES",
    "DESK_CODE_TRIES",
    "DESK_REBIND_HOURS",
    "DeskGrant",
    "InvalidDeskCode",
    "consume",
    "desk_granted",
    "grant_rebind",
    "normalize_code",
    "open_grant_until",
    "redeem_code",
    "withdraw_rebind_grant",
]
