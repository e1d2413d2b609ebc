"""The incident report: everything that happened to one account, oldest first, as sentences."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from authguard.choices import Action
from authguard.console.reports.base import DateRange, _iso
from authguard.console.reports.factor_history import _factor_entries
from authguard.console.reports.timeline import INCIDENT_COLUMNS, TimelineEntry, _Window
from authguard.models import (
    AccountLock,
    Feedback,
    GuardedOrder,
    HeldOrder,
    KnownDevice,
    LoginEvent,
    Notification,
    StaffApproval,
)
from authguard.notifications.messages import KINDS
from authguard.risk.event_categories import (
    DENIED,
    DENIED_WITHOUT_PASSWORD,
    LOCKED,
    PASSKEY_SIGN_IN,
    RESCORED_PENDING,
    RESCORED_STEP_UP_FAILED,
    RESCORED_STEPPED_UP,
    SIGNED_IN,
    STEP_UP_FAILED,
    STEP_UP_PENDING,
    STEPPED_UP,
    THROTTLED,
    WRONG_PASSWORD,
    categorize,
)


def incident_timeline(user: Any, span: DateRange | None = None) -> list[TimelineEntry]:
    """Everything recorded about ``user`` in ``span`` (default: all of it), oldest first.

    Logins include failed attempts typed with the account's name. Factors removed or replaced since stay,
    marked so (from the ``factor_added``/``factor_removed`` notifications, which outlive the devices).
    About a dozen queries in all.
    """
    within = _Window(*span.bounds()) if span else _Window(None, None)
    events = within.filter(
        LoginEvent.objects.filter(Q(user=user) | Q(user__isnull=True, username=user.get_username()))
    )
    lock = AccountLock.objects.filter(user=user).first()
    entries: list[TimelineEntry] = [
        _login_entry(event, lock) for event in events.order_by("created_at", "pk")
    ]
    entries += _factor_entries(user, within)
    entries += _lock_entries(lock, within)
    entries += _order_entries(user, within)
    entries += _notification_entries(user, within)
    entries += _staff_entries(user, within)
    entries.sort(key=lambda e: e.at)
    return entries


def _was_locked(lock: AccountLock | None, at: datetime) -> bool:
    """Whether the account's last lock covered ``at`` (only the last lock period is kept)."""
    if lock is None or lock.locked_at is None or at < lock.locked_at:
        return False
    return lock.unlocked_at is None or lock.unlocked_at <= lock.locked_at or at < lock.unlocked_at


def _login_sentence(event: LoginEvent, code: str, lock: AccountLock | None) -> str:
    """What one login event was, as a sentence an investigator reads without knowing the codes."""
    asked = event.action == Action.STEP_UP
    if code == SIGNED_IN:
        return _("Signed in with the password; the risk check let it in without a second factor.")
    if code == PASSKEY_SIGN_IN:
        if asked:
            return _(
                "Signed in with a passkey; the risk check asked for a second factor and the passkey was it."
            )
        return _("Signed in with a passkey.")
    if code == STEPPED_UP:
        return _("Right password; asked for a second factor, and passed step-up.")
    if code == STEP_UP_FAILED:
        return _("Right password; asked for a second factor, and failed step-up.")
    if code == STEP_UP_PENDING:
        return _("Right password; asked for a second factor, which was never given.")
    if code == RESCORED_STEPPED_UP:
        return _(
            "The signed-in session was used from another network or browser; it was asked for a second "
            "factor again, and passed step-up."
        )
    if code == RESCORED_STEP_UP_FAILED:
        return _(
            "The signed-in session was used from another network or browser; it was asked for a second "
            "factor again, and failed step-up."
        )
    if code == RESCORED_PENDING:
        return _(
            "The signed-in session was used from another network or browser; it was held until a second "
            "factor is given, and none was."
        )
    if code == DENIED:
        if _was_locked(lock, event.created_at):
            return _("Right password, but the sign-in was refused: the account was locked.")
        if asked:
            return _(
                "Right password, but the sign-in was refused: the risk check asked for a second factor "
                "and the account had none."
            )
        return _("Right password, but the sign-in was refused: the risk was too high.")
    if code == DENIED_WITHOUT_PASSWORD:
        if _was_locked(lock, event.created_at):
            return _("A sign-in was refused: the account was locked (no password was checked).")
        return _(
            "Refused by the risk check without a password: a passkey sign-in, or a signed-in session used "
            "from another network or browser, which was then ended."
        )
    if code == LOCKED:
        if event.password_ok:
            return _("Right password, but the sign-in was refused: the account was locked.")
        return _("A sign-in was refused: the account was locked (no password was checked).")
    if code == WRONG_PASSWORD:
        if event.user_id is None:
            return _("Failed login: wrong password, or no account had this name then.")
        return _("Failed login: wrong password.")
    if code == THROTTLED:
        return _("A sign-in was refused unchecked: too many attempts in a short time.")
    return _("Login event recorded as %(outcome)s.") % {"outcome": event.get_outcome_display()}


#: The timeline kind of each category: a step-up, a re-checked session, or a sign-in attempt.
_CATEGORY_KIND = {
    STEPPED_UP: "step_up",
    STEP_UP_FAILED: "step_up",
    STEP_UP_PENDING: "step_up",
    RESCORED_STEPPED_UP: "session",
    RESCORED_STEP_UP_FAILED: "session",
    RESCORED_PENDING: "session",
}


def _login_entry(event: LoginEvent, lock: AccountLock | None = None) -> TimelineEntry:
    code = categorize(event.password_ok, event.outcome, event.action)
    summary = _login_sentence(event, code, lock)
    if event.feedback == Feedback.FRAUD:
        summary += " " + _("An analyst marked it as confirmed fraud.")
    elif event.feedback == Feedback.LEGITIMATE:
        summary += " " + _("An analyst marked it as legitimate.")
    network = " ".join(part for part in (f"AS{event.asn}" if event.asn else "", event.as_org) if part)
    return TimelineEntry(
        at=event.created_at,
        kind=_CATEGORY_KIND.get(code, "login"),
        summary=summary,
        place=", ".join(p for p in (event.city, event.country) if p),
        network=network,
        ip=event.ip or "",
        device=event.device_summary,
        score=event.score,
        reasons=tuple(event.reasons or ()),
        detail=_("decision: %(action)s") % {"action": event.get_action_display()},
        reference=f"login event {event.pk}",
        category=code,
    )


def _lock_entries(lock: AccountLock | None, within: _Window) -> list[TimelineEntry]:
    if lock is None:
        return []
    entries = []
    for at, summary, detail in (
        (lock.locked_at, _("The account was locked."), lock.locked_reason),
        (lock.unlocked_at, _("The account was unlocked."), lock.unlock_reason),
    ):
        if at is not None and within.contains(at):
            entries.append(TimelineEntry(at=at, kind="lock", summary=summary, detail=detail))
    return entries


#: An order's side as people read it (stored as the code "buy" or "sell").
ORDER_SIDES = {"buy": pgettext_lazy("order side", "buy"), "sell": pgettext_lazy("order side", "sell")}


def _order_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    """The order guard's ledger (every order placed or held) and each held order's confirmation or close."""
    entries: list[TimelineEntry] = []
    ledger = (
        within.filter(GuardedOrder.objects.filter(user=user)).select_related("held").order_by("created_at")
    )
    for order in ledger:
        held = getattr(order, "held", None)
        entries.append(
            TimelineEntry(
                at=order.created_at,
                kind="order",
                summary=_("order %(side)s %(quantity)s %(symbol)s: %(status)s")
                % {
                    "side": ORDER_SIDES.get(order.side, order.side),
                    "quantity": order.quantity,
                    "symbol": order.symbol,
                    "status": order.get_status_display(),
                },
                reasons=tuple(order.reasons or ()),
                detail="; ".join(
                    part
                    for part in (
                        f"{order.amount} {order.currency}",
                        _("from a risky session") if order.risky_session else "",
                        _("illiquid instrument") if order.illiquid else "",
                        held.summary if held is not None else "",
                    )
                    if part
                ),
                reference=f"ledger {order.pk}" + (f", held order {held.pk}" if held is not None else ""),
            )
        )
        if held is not None:
            entries += _held_entries(held, within)
    return entries


def _held_entries(held: HeldOrder, within: _Window) -> list[TimelineEntry]:
    ref = f"held order {held.pk}" + (f", portal order {held.portal_ref}" if held.portal_ref else "")
    if held.result_ref:
        ref += f", execution {held.result_ref}"
    out = []
    if held.confirmed_at and held.status == HeldOrder.Status.CONFIRMED and within.contains(held.confirmed_at):
        out.append(
            TimelineEntry(
                at=held.confirmed_at,
                kind="order",
                summary=_("held order confirmed with %(method)s and executed")
                % {"method": held.confirmed_method},
                detail=held.confirmed_device,
                reference=ref,
            )
        )
    elif held.closed_at and held.status != HeldOrder.Status.CONFIRMED and within.contains(held.closed_at):
        out.append(
            TimelineEntry(
                at=held.closed_at,
                kind="order",
                summary=_("held order %(status)s") % {"status": held.get_status_display()},
                detail=held.failure,
                reference=ref,
            )
        )
    return out


def _notification_entries(user: Any, within: _Window) -> list[TimelineEntry]:

    entries = []
    for row in within.filter(Notification.objects.filter(user=user, staff=False)).order_by("created_at"):
        kind = KINDS.get(row.kind)
        subject = str(kind.subject) if kind is not None else row.kind
        entries.append(
            TimelineEntry(
                at=row.created_at,
                kind="notification",
                summary=_("Message to the customer “%(subject)s”: %(status)s.")
                % {"subject": subject, "status": row.get_status_display()},
                detail=row.to_email,
                reference=f"notification {row.pk} ({row.kind})",
            )
        )
    return entries


def _staff_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    """What staff did about this account in the console (admin log): orders released or cancelled,
    devices revoked, the account unlocked, and every four-eyes request, approval, rejection and execution
    (:class:`~authguard.models.StaffApproval`), with their reasons."""

    targets = Q()
    for model, ids in (
        (HeldOrder, HeldOrder.objects.filter(user=user).values_list("pk", flat=True)),
        (KnownDevice, KnownDevice.objects.filter(user=user).values_list("pk", flat=True)),
        (AccountLock, [user.pk]),
        (StaffApproval, StaffApproval.objects.filter(customer=user).values_list("pk", flat=True)),
    ):
        targets |= Q(
            content_type=ContentType.objects.get_for_model(model), object_id__in=[str(pk) for pk in ids]
        )
    rows = within.filter(LogEntry.objects.filter(targets).select_related("user"), "action_time")
    return [
        TimelineEntry(
            at=row.action_time,
            kind="staff",
            summary=_("staff %(who)s: %(what)s")
            % {"who": row.user.get_username(), "what": row.get_change_message()},
            reference=f"{row.content_type.model} {row.object_id}",
        )
        for row in rows.order_by("action_time")
    ]


def timeline_rows(entries: Sequence[TimelineEntry]) -> Iterator[list[str]]:
    """CSV rows of an incident timeline (header first), times in ISO 8601 in the site's time zone."""
    yield list(INCIDENT_COLUMNS)
    for e in entries:
        yield [
            _iso(e.at),
            e.kind,
            e.summary,
            e.place,
            e.network,
            e.ip,
            e.device,
            "" if e.score is None else str(e.score),
            " ".join(e.reasons),
            e.detail,
            e.reference,
            e.status,
        ]
