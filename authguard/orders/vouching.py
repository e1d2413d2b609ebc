"""Thin-stock buys the customer never vouched for: what the exposure rule's long count reads (issue 8).

The month's illiquid budget (``Exposure.max_illiquid_share`` within ``slow_horizon_hours``) rolls: a thief
whose browser the engine let in, who keeps to it and buys just under the month's share every month, filled a
third of her portfolio with the gang's stock in a quarter without one hold (red team, round fifty-five). What
rolls for him must not roll for a session she has not vouched for. So a buy of a thin stock from a session
that no passkey verified (:func:`session_vouched`) also counts every thin buy since her last confirmation of
a held order the count itself held, up to ``Exposure.unvouched_days`` back (:func:`thin_since_confirmation`):
only her factor, on a hold that showed her the count, starts it again (not the desk's release).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.http import HttpRequest

from authguard import statements
from authguard.choices import GuardStatus
from authguard.conf import app_settings
from authguard.factors.methods import PHISHING_RESISTANT_METHODS, remembers_device
from authguard.models import GuardedOrder, HeldOrder, KnownDevice, OrderDayTotal
from authguard.orders import rollup
from authguard.orders.exposure import _as_datetime, _money
from authguard.orders.exposure_rules import UNVOUCHED_FINDING
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.sessions.device_generations import RETIRED
from authguard.sessions.state import raw_state, session_state

#: The long count's finding: a hold that had it showed her the count.
FINDING = UNVOUCHED_FINDING
#: ``HeldOrder.confirmed_method`` of the desk's release (:func:`authguard.orders.held.staff_release`).
STAFF_METHOD = "staff"
#: ``GuardedOrder.device_hash`` of the rows from before the browser was kept: any browser's confirmation.
LEGACY_DEVICE = "*"


@dataclass(frozen=True)
class UnvouchedThin:
    """The thin-stock buys (weighted by illiquidity, as ``GuardedOrder.illiquid_amount``) placed or held
    since ``since``: the later of ``days`` ago and the customer's last confirmation of a held order."""

    since: datetime
    amount: Decimal
    days: int
    #: Whether ``since`` is a confirmation (else it is ``days`` ago).
    confirmed: bool
    #: The order's own session is vouched for: the count does not apply to it (and was not read), and the
    #: ledger marks its row so that the count never reads it (``GuardedOrder.vouched``).
    vouched: bool = False
    #: For a sell (:mod:`authguard.orders.long_sells`): every buy placed since ``since``, in full.
    bought: Decimal = Decimal(0)


def session_vouched(request: HttpRequest | None) -> bool:
    """Whether the order's session was verified with a factor a phishing page cannot relay (a passkey) that
    may vouch for the browser (:func:`~authguard.factors.methods.remembers_device`: not the thief's own new
    passkey while it cools off, not during the account's cooling-off).

    SECURITY: no request, no authguard state, no OTP device on the request (an API token, a portal without
    ``OTPMiddleware``) or a relayable code is no vouching: the long count applies (fail closed).
    """
    if request is None:
        return False
    state = session_state(request)
    if state is None or state.strong_method not in PHISHING_RESISTANT_METHODS:
        return False
    user = getattr(request, "user", None)
    device = getattr(user, "otp_device", None)
    return remembers_device(user, device=device, method=state.strong_method)


#: The UTC day of a timestamp, per database (the rolled-up days are UTC days).
_UTC_DAY = {
    "postgresql": "CAST(({}) AT TIME ZONE 'UTC' AS DATE)",
    "sqlite": "date(({}))",
}


def placing_device(request: HttpRequest | None) -> str:
    """The keyed hash of the request's device cookie, as the ledger keeps it (``""`` without one, and for a
    browser session that has not confirmed the device cookie generation it was given)."""
    if request is None:
        return ""
    state = raw_state(request)
    if state is not None and isinstance(state.get("dg"), int) and not state.get("dgc"):
        # SECURITY: a session given a new generation that it never presented kept the old one: a copy of
        # her current cookie that threw its own away placed his buys inside the minute before that is held,
        # with her browser's hash, and never showed again; her confirmation forgave them (red team, round
        # sixty-four). Her browser's first request after a sign-in confirms its new cookie.
        return ""
    return device_hash(device_id_from_cookie(request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME))) or ""


def forgiving_confirmations() -> tuple[str, str, str]:
    """The SQL both long counts (thin buys here, sells in :mod:`authguard.orders.long_sells`) share:
    ``confirmations``, the customer's own confirmations of a hold of the count within the window (``FROM``
    text, six parameters: the user, the confirmed status, the window's start and end, the staff method, the
    finding's ``LIKE`` pattern); ``mine``, the latest of them from this request's browser (those six, then
    the browser twice); ``forgiven``, whether one from the ledger row ``g``'s own browser came after it."""
    q = connection.ops.quote_name
    ledger = q(GuardedOrder._meta.db_table)
    held = q(HeldOrder._meta.db_table)
    # SECURITY: only the models' own (quoted) table names are formatted in; every value is a parameter.
    # Only her own factor on a hold that showed her this count restarts it (not the desk's release: red team,
    # round fifty-eight), and only for the buys of the browser she confirmed from: the thief sized his fills
    # so that her own weekly buy was held by the count, and her confirmation forgave his buys (round 59).
    confirmations = (
        f"{held} h JOIN {ledger} c ON c.id = h.guarded_id WHERE h.user_id = %s AND h.status = %s"  # noqa: S608
        " AND h.confirmed_at > %s AND h.confirmed_at <= %s AND h.confirmed_method <> %s"
        " AND CAST(h.reasons AS TEXT) LIKE %s"
    )
    # SECURITY: a row without a browser ("": a token client without a cookie jar, a portal's own call) is
    # forgiven by no confirmation: "" = "" made every such order one browser, and her app's confirmation
    # forgave his token's buys (review, round fifty-nine).
    # SECURITY: a device id retired as held by two (:mod:`authguard.sessions.device_generations`) was no one
    # browser: a copy's buys carried her browser's hash, and her confirmation before the retirement forgave
    # them (red team, round sixty-four). Its rows are forgiven by nothing, whenever the retirement came.
    retired = (
        f"EXISTS (SELECT 1 FROM {q(KnownDevice._meta.db_table)} k WHERE k.user_id = c.user_id"  # noqa: S608
        f" AND k.cookie_hash = c.device_hash AND k.cookie_generation >= {RETIRED})"
    )
    mine = (
        f"SELECT MAX(h.confirmed_at) FROM {confirmations} AND c.device_hash = %s AND %s <> ''"  # noqa: S608
        f" AND NOT {retired}"
    )
    forgiven = (
        f"SELECT 1 FROM {confirmations} AND h.confirmed_at >= g.created_at"  # noqa: S608
        f" AND ((c.device_hash = g.device_hash AND g.device_hash <> '' AND NOT {retired})"
        f" OR g.device_hash = '{LEGACY_DEVICE}')"
    )
    return confirmations, mine, forgiven


@functools.lru_cache(maxsize=4)
def _sums_sql(vendor: str) -> str:
    """The account's weighted thin buys no passkey vouched for, each counted unless a confirmation of a hold
    of this count from its own browser came after it, in one statement: the ledger rows (never rolled up),
    the days rolled up before the browser was kept (every browser's confirmation restarts those), and the
    latest such confirmation from this request's browser."""
    q = connection.ops.quote_name
    ledger = q(GuardedOrder._meta.db_table)
    days = q(OrderDayTotal._meta.db_table)
    # SECURITY: only the models' own (quoted) table names are formatted in; every value is a parameter.
    confirmations, mine, forgiven = forgiving_confirmations()
    anyone = f"SELECT MAX(h.confirmed_at) FROM {confirmations}"  # noqa: S608
    day_of_any = _UTC_DAY.get(vendor, "CAST(({}) AS DATE)").format(anyone)
    # The confirmation's row first: PostgreSQL types a UNION's columns pair by pair from the left, and two
    # bare NULLs first would make the third column text.
    return (
        f"SELECT 'last', NULL, ({mine})"  # noqa: S608
        f" UNION ALL SELECT 'ledger', SUM(g.illiquid_amount), NULL FROM {ledger} g"
        " WHERE g.user_id = %s AND g.created_at >= %s AND NOT g.rolled AND NOT g.vouched AND g.side = 'buy'"
        f" AND g.status IN (%s, %s) AND NOT EXISTS ({forgiven})"
        f" UNION ALL SELECT 'days', SUM(unvouched_illiquid_amount), NULL FROM {days}"  # noqa: S608
        f" WHERE user_id = %s AND day >= %s AND symbol = '' AND (day >= {day_of_any} OR ({anyone}) IS NULL)"
    )


def vouched_buy(*, now: datetime, days: int) -> UnvouchedThin:
    """What a thin buy from a vouched session carries: no count (none was read)."""
    return UnvouchedThin(since=now, amount=Decimal(0), days=days, confirmed=False, vouched=True)


def thin_since_confirmation(user: Any, *, now: datetime, days: int, device: str = "") -> UnvouchedThin:
    """The account's thin-stock buys from sessions no passkey vouched for (``GuardedOrder.vouched`` false)
    within ``days``, less those of each browser that its own confirmation of a hold of this count came after
    (one statement, whatever the history). ``since`` is the later of ``days`` ago and the last such
    confirmation from ``device`` (the order's browser, :func:`placing_device`).

    The days rolled up before the browser was kept (migration ``0033``) count from the last confirmation
    from any browser, whole from the day it falls in: they can only count more, never miss a buy."""
    start = now - timedelta(days=days)
    uid = statements.user_id(user.pk)
    adapt = connection.ops.adapt_datetimefield_value
    held = [uid, HeldOrder.Status.CONFIRMED, adapt(start), adapt(now), STAFF_METHOD, f"%{FINDING}%"]
    params = [*held, device, device]
    params += [uid, adapt(start), GuardStatus.PLACED, GuardStatus.HELD, *held]
    params += [uid, connection.ops.adapt_datefield_value(rollup.day_start(start).date()), *held, *held]
    total = Decimal(0)
    confirmed_at: datetime | None = None
    for part, value, when in statements.fetch_all(_sums_sql(connection.vendor), params):
        if part == "last":
            confirmed_at = None if when is None else _as_datetime(when)
        else:
            total += _money(value)
    since = confirmed_at or start
    return UnvouchedThin(since=since, amount=total, days=days, confirmed=confirmed_at is not None)


__all__ = ["UnvouchedThin", "placing_device", "session_vouched", "thin_since_confirmation", "vouched_buy"]
