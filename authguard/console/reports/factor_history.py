"""An incident report's sign-in methods: the devices still there, and from the notifications those removed or
replaced since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.console.reports.base import _iso, _iso_text
from authguard.console.reports.timeline import _STATUS_SENTENCES, TimelineEntry, _Window
from authguard.factors.inventory import FACTOR_LABELS
from authguard.models import (
    FactorKind,
    FactorRecord,
    Notification,
    PasskeyDevice,
    RecoveryCodeDevice,
)
from authguard.notifications.messages import defang_name

# -- factors: the devices still there, and from the notifications those removed or replaced since ----------


#: A factor's kind as sentences name it.
_FACTOR_NOUNS: dict[str, Any] = {
    FactorKind.PASSKEY: gettext_lazy("passkey"),
    FactorKind.TOTP: gettext_lazy("authenticator app (TOTP)"),
    FactorKind.RECOVERY_CODE: gettext_lazy("set of recovery codes"),
}
#: Notifications and the record of one change are written within moments of each other.
_SAME_CHANGE = timedelta(seconds=5)


@dataclass
class _Factor:
    kind: str
    name: str
    added_at: datetime | None
    reference: str = ""
    detail: str = ""
    removed_at: datetime | None = None
    removed_how: str = ""  # "customer" | "staff" | "replaced" | "disabled" | "unknown"


def _factor_kinds_by_label() -> dict[str, str]:
    """Every translation of each factor label, to its kind (notifications store the label as sent)."""

    labels: dict[str, str] = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            labels.update({str(label).casefold(): kind for kind, label in FACTOR_LABELS.items()})
    return labels


def _factor_history(user: Any) -> list[_Factor]:
    """Every factor the account ever had that authguard recorded: the devices it has now (with their
    records) and, from the ``factor_added``/``factor_removed`` notifications, those removed or replaced."""

    records = {r.device_id: r for r in FactorRecord.objects.filter(user=user)}
    factors: list[_Factor] = []
    for model, kind in (
        (TOTPDevice, FactorKind.TOTP),
        (PasskeyDevice, FactorKind.PASSKEY),
        (RecoveryCodeDevice, FactorKind.RECOVERY_CODE),
    ):
        for device in model.objects.filter(user=user).order_by("created_at", "pk"):
            record = records.get(device.persistent_id)
            factor = _Factor(
                kind=kind,
                name=device.name,
                added_at=record.enrolled_at if record is not None else device.created_at,
                reference=device.persistent_id,
                detail=_record_detail(record) if record is not None else "",
            )
            if record is not None and record.disabled_at is not None:
                factor.removed_at, factor.removed_how = record.disabled_at, "disabled"
            elif not device.confirmed and record is None:
                continue  # an enrollment begun and never finished: never a factor
            factors.append(factor)

    kinds = _factor_kinds_by_label()
    notes = Notification.objects.filter(
        user=user, staff=False, kind__in=("factor_added", "factor_removed")
    ).order_by("created_at", "pk")
    seen: list[tuple[tuple[str, str, str], datetime]] = []
    for note in notes:
        context = note.context if isinstance(note.context, dict) else {}
        label = str(context.get("factor") or "")
        factor_kind: str = kinds.get(label.casefold(), "")
        name = str(context.get("name") or "")
        key = (note.kind, factor_kind or label, name)
        # One change may notify two addresses (after an e-mail change): count it once.
        if any(k == key and abs(at - note.created_at) <= _SAME_CHANGE for k, at in seen):
            continue
        seen.append((key, note.created_at))
        if note.kind == "factor_added":
            _note_added(factors, factor_kind or label, name, note, defang_name)
        else:
            how = "replaced" if context.get("replaced") else "customer"
            how = "staff" if context.get("by_staff") else how
            _note_removed(factors, factor_kind or label, name, note, defang_name, how=how)
    return factors


def _same(factor: _Factor, kind: str, name: str, defang: Any) -> bool:
    return factor.kind == kind and defang(factor.name) == name


def _note_added(factors: list[_Factor], kind: str, name: str, note: Notification, defang: Any) -> None:
    if kind == FactorKind.RECOVERY_CODE:
        # A new set of recovery codes invalidates the earlier set without a removal of its own: say so.
        for factor in factors:
            if (
                factor.kind == kind
                and factor.removed_how == "unknown"
                and factor.added_at is not None
                and factor.added_at < note.created_at - _SAME_CHANGE
            ):
                factor.removed_at, factor.removed_how = note.created_at, "replaced"
    for factor in factors:
        if (
            _same(factor, kind, name, defang)
            and factor.added_at is not None
            and abs(factor.added_at - note.created_at) <= _SAME_CHANGE
        ):
            return  # a factor still there (or disabled): its record tells more than the notification
    cooling = note.context.get("cooling_off_until") if isinstance(note.context, dict) else None
    factors.append(
        _Factor(
            kind=kind,
            name=name,
            added_at=note.created_at,
            reference=f"notification {note.pk}",
            detail=_("cooling off until %(time)s") % {"time": _iso_text(cooling)} if cooling else "",
            removed_how="unknown",  # until a removal or a later set says more, it is simply gone
        )
    )


def _note_removed(
    factors: list[_Factor], kind: str, name: str, note: Notification, defang: Any, *, how: str
) -> None:
    for factor in factors:
        if (
            factor.removed_how == "disabled"
            and _same(factor, kind, name, defang)
            and abs(factor.removed_at - note.created_at) <= _SAME_CHANGE  # type: ignore[operator]
        ):
            return  # the notice of a factor disabled after failures: its record already says so
    for factor in factors:
        if (
            _same(factor, kind, name, defang)
            and factor.added_at
            and factor.added_at <= note.created_at
            and (factor.removed_at is None and factor.removed_how == "unknown")
        ):
            factor.removed_at, factor.removed_how = note.created_at, how
            return
    # A removal of a factor added before the notifications kept (retention) or outside authguard's flows.
    factors.append(
        _Factor(
            kind=kind,
            name=name,
            added_at=None,
            reference=f"notification {note.pk}",
            removed_at=note.created_at,
            removed_how=how,
        )
    )


def _record_detail(record: FactorRecord) -> str:
    return "; ".join(
        part
        for part in (
            record.enrolled_via and _("authorised by %(how)s") % {"how": record.enrolled_via},
            _("from a low-risk session")
            if record.enrolled_low_risk
            else _("from a session that was not low-risk"),
            record.cooling_off_until
            and _("cooling off until %(time)s") % {"time": _iso(record.cooling_off_until)},
        )
        if part
    )


#: A factor's ``removed_how`` as the status its timeline rows carry.
_FACTOR_STATUS = {
    "": "",
    "customer": "removed",
    "staff": "removed",
    "unknown": "removed",
    "replaced": "replaced",
    "disabled": "disabled",
}


def _factor_entries(user: Any, within: _Window) -> list[TimelineEntry]:
    """Each factor's addition and, for those gone, its removal, replacement or disabling.

    A factor removed since keeps its ``added`` row, marked ``removed`` (or ``replaced``, ``disabled``):
    the thief's passkey the customer removed is evidence, and must not vanish from the report.
    """
    entries: list[TimelineEntry] = []
    for factor in _factor_history(user):
        noun = _FACTOR_NOUNS.get(factor.kind, factor.kind)
        what = {"noun": noun, "name": factor.name}
        status = _FACTOR_STATUS[factor.removed_how]
        if factor.added_at is not None and within.contains(factor.added_at):
            if factor.kind == FactorKind.RECOVERY_CODE:
                summary = _("A new set of recovery codes was issued.")
            else:
                summary = _("New %(noun)s added: “%(name)s”.") % what
            if factor.removed_at is not None:
                summary += " " + str(_STATUS_SENTENCES[status]) % {"time": _iso_text(factor.removed_at)}
            elif factor.removed_how == "unknown":
                summary += " " + _("(No longer on the account; when it was removed was not recorded.)")
            entries.append(
                TimelineEntry(
                    at=factor.added_at,
                    kind="factor",
                    summary=summary,
                    detail=factor.detail,
                    reference=factor.reference,
                    status=status,
                )
            )
        if factor.removed_at is not None and within.contains(factor.removed_at):
            sentences = {
                "customer": _("The %(noun)s “%(name)s” was removed by the customer."),
                "staff": _("The %(noun)s “%(name)s” was removed by the security desk."),
                "disabled": _("The %(noun)s “%(name)s” was disabled after repeated failures."),
            }
            if factor.kind == FactorKind.RECOVERY_CODE:
                sentences.update(
                    customer=_("A set of recovery codes was removed by the customer."),
                    staff=_("A set of recovery codes was removed by the security desk."),
                    replaced=_(
                        "The earlier set of recovery codes was replaced by a new set; "
                        "those codes no longer work."
                    ),
                )
            entries.append(
                TimelineEntry(
                    at=factor.removed_at,
                    kind="factor",
                    summary=sentences.get(factor.removed_how, sentences["customer"]) % what,
                    reference=factor.reference,
                    status=status,
                )
            )
    return entries
