"""Registered payees and the new-payee hold: every bank account that can receive money is a
:class:`~authguard.models.RegisteredPayee` with the time it was registered or last changed; a
withdrawal to one registered less than ``AUTHGUARD_NEW_PAYEE_HOLD_HOURS`` ago is refused
(:class:`PayeeOnHold`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from authguard import clock
from authguard.actions.errors import ActionInvalid, ConfirmationInvalid, PayeeOnHold, UnknownPayee
from authguard.actions.params import PAYEE_DETAILS, clean_params
from authguard.conf import app_settings
from authguard.models import ActionKind, HeldAction, RegisteredPayee
from authguard.orders.confirmation import canonical_json


def payee_digest(*, user: Any, details: Mapping[str, Any]) -> str:
    """A keyed digest of a bank account's :data:`PAYEE_DETAILS` (executors compare their copy with it)."""
    values = {name: str(details.get(name, "")) for name in PAYEE_DETAILS}
    values["user"] = str(user.pk)
    return salted_hmac("authguard.actions.payee", canonical_json(values), algorithm="sha256").hexdigest()


def payee_label(details: Mapping[str, Any], *, full: bool = False) -> str:
    """``Mizuho Bank (0001) 123 ****567 YAMADA HANAKO``: the account as summaries show it.

    ``full``: with the whole account number, for an account being added or changed to: the customer's
    passkey confirms exactly that number, and a mule account whose number ends in the same three digits
    as hers must not read as hers (red team, 2026-12-05). It was typed in the same session.
    """
    number = str(details.get("account_number", ""))
    masked = number if full else "*" * max(len(number) - 3, 0) + number[-3:]
    return " ".join(
        part
        for part in (
            str(details.get("bank_name", "")),
            f"({details.get('bank_code', '')})",
            str(details.get("branch_code", "")),
            masked,
            str(details.get("holder_name", "")),
        )
        if part and part != "()"
    )[:200]


def hold_hours() -> int:
    """``AUTHGUARD_NEW_PAYEE_HOLD_HOURS``."""
    return app_settings.NEW_PAYEE_HOLD_HOURS


def payee_available_at(payee: RegisteredPayee) -> datetime:
    """When ``payee`` may first receive money (its registration or last change, plus the hold)."""
    return payee.registered_at + timedelta(hours=hold_hours())


def payee_for(*, user: Any, ref: str) -> RegisteredPayee | None:
    """The customer's registered payee with the portal's reference ``ref`` (removed ones: ``None``)."""
    return RegisteredPayee.objects.filter(user_id=user.pk, ref=str(ref), removed_at__isnull=True).first()


def register_payee(
    *,
    user: Any,
    ref: str,
    details: Mapping[str, Any],
    registered_at: datetime | None = None,
    source: str = "imported",
) -> RegisteredPayee:
    """Tell authguard about a bank account the portal already had (registered before authguard guarded it).

    ``registered_at`` is when the customer registered it; the new-payee hold runs from then. A portal calls
    this once per existing account (a data migration, a management command); new accounts are registered by
    confirming a ``bank_account_add`` action, never through this function from a customer's request.
    """
    clean = clean_params(
        kind=ActionKind.BANK_ACCOUNT_ADD,
        params={"account": "-", "payee": ref, "bank_name": details.get("bank_name", "-"), **dict(details)},
    )
    return _write_payee(user=user, params=clean, at=registered_at or clock.now(), source=source, action=None)


def remove_payee(*, user: Any, ref: str) -> bool:
    """The portal removed this bank account: it receives nothing from now on. False if it was unknown."""
    return bool(
        RegisteredPayee.objects.filter(user_id=user.pk, ref=str(ref), removed_at__isnull=True).update(
            removed_at=clock.now()
        )
    )


def _write_payee(
    *, user: Any, params: Mapping[str, Any], at: datetime, source: str, action: HeldAction | None
) -> RegisteredPayee:
    payee, _created = RegisteredPayee.objects.update_or_create(
        user_id=user.pk,
        ref=str(params["payee"]),
        defaults={
            "details_digest": payee_digest(user=user, details=params),
            "label": payee_label(params),
            # SECURITY: a registration or a change of details starts the new-payee hold again.
            "registered_at": at,
            "source": source,
            "action": action,
            "removed_at": None,
        },
    )
    return payee


def _payee_snapshot(
    user: Any, kind: str, params: Mapping[str, Any], *, now: datetime
) -> dict[str, Any] | None:
    """For a withdrawal: the registered payee it pays (ref, digest, label), after the hold check. For a
    change: the payee it changes. Raises :class:`UnknownPayee` / :class:`PayeeOnHold`."""
    if kind == ActionKind.WITHDRAWAL:
        payee = payee_for(user=user, ref=params["payee"])
        if payee is None:
            raise UnknownPayee()
        available = payee_available_at(payee)
        if available > now:
            # SECURITY: a new payee receives nothing during its hold, whatever is confirmed (battery case 54).
            raise PayeeOnHold(available_at=available)
        return {"ref": payee.ref, "digest": payee.details_digest, "label": payee.label}
    if kind == ActionKind.BANK_ACCOUNT_CHANGE:
        payee = payee_for(user=user, ref=params["payee"])
        if payee is None:
            raise UnknownPayee()
        return {"ref": payee.ref, "digest": payee.details_digest, "label": payee.label}
    if kind == ActionKind.BANK_ACCOUNT_ADD and payee_for(user=user, ref=params["payee"]) is not None:
        raise ActionInvalid(
            _("This bank account is already registered."),
            code="payee_exists",
            errors={"payee": [_("This bank account is already registered.")]},
        )
    return None


def _recheck_payee(held: HeldAction, data: Mapping[str, Any], *, now: datetime) -> None:
    """SECURITY: under the locks, the payee is still the one confirmed, still registered, past its hold."""
    snapshot = data.get("payee")
    if not snapshot:
        return
    payee = payee_for(user=held.user, ref=snapshot["ref"])
    if payee is None or not secrets.compare_digest(payee.details_digest, str(snapshot["digest"])):
        raise ConfirmationInvalid(
            _("The bank account was changed or removed after this was asked for."), code="payee_changed"
        )
    if held.kind == ActionKind.WITHDRAWAL and payee_available_at(payee) > now:
        raise PayeeOnHold(available_at=payee_available_at(payee))
