"""The plain summary of a sensitive action ("Withdraw ¥500,000 to Mizuho Bank (0001) 123 ****567 YAMADA
HANAKO."), kept with the held action and rendered in the reader's language, and its JSON form.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard.actions.payees import payee_label
from authguard.models import ActionKind, HeldAction
from authguard.notifications.lures import strip_lures
from authguard.notifications.messages import user_language


def summary_for(user: Any, data: Mapping[str, Any]) -> str:
    """``data`` rendered in the language authguard writes to ``user`` in: a notice tells the customer in her
    language, not in the language of the browser that asked (perhaps the thief's)."""
    with translation.override(user_language(user)):
        return str(render_summary(data))


def summary_data(kind: str, params: Mapping[str, Any], *, payee: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the plain summary shows, kept so the page renders it in the reader's language."""
    data: dict[str, Any] = {"kind": kind}
    if kind == ActionKind.WITHDRAWAL:
        data.update(
            amount=params["amount"], currency=params["currency"], payee=(payee or {}).get("label", "")
        )
    elif kind == ActionKind.BANK_ACCOUNT_ADD:
        data.update(payee=payee_label(params, full=True))
    elif kind == ActionKind.BANK_ACCOUNT_CHANGE:
        data.update(payee=payee_label(params, full=True), old=(payee or {}).get("label", ""))
    elif kind == ActionKind.SECURITIES_TRANSFER_OUT:
        data.update(
            symbol=params["symbol"],
            quantity=params["quantity"],
            broker=params["broker_name"],
            broker_code=params["broker_code"],
            branch=params["branch_code"],
            number=params["account_number"],
        )
    elif kind == ActionKind.CONTACT_CHANGE:
        data.update(field=params["field"], value=params["value"])
    return data


def format_money(amount: Decimal | str, currency: str) -> str:
    """``¥500,000`` / ``500,000円`` for yen, ``12,345.00 USD`` otherwise, in the active language."""
    value = Decimal(amount)
    if currency != "JPY":
        return f"{value:,.2f} {currency}"
    whole = value.quantize(Decimal(1), ROUND_HALF_UP)
    if (translation.get_language() or "").startswith("ja"):
        return f"{whole:,}円"
    return f"¥{whole:,}"


_CONTACT_FIELDS = {
    "email": gettext_lazy("e-mail address"),
    "phone": gettext_lazy("phone number"),
    "address": gettext_lazy("postal address"),
}


def render_summary(data: Mapping[str, Any]) -> str:
    """The plain summary in the active language, e.g. "Withdraw ¥500,000 to Mizuho Bank (0001) 123 ****567
    YAMADA HANAKO." Every number and account the customer's passkey will confirm is in it."""
    kind = data.get("kind")
    if kind == ActionKind.WITHDRAWAL:
        return _("Withdraw %(amount)s to %(payee)s.") % {
            "amount": format_money(data["amount"], data["currency"]),
            "payee": data["payee"],
        }
    if kind == ActionKind.BANK_ACCOUNT_ADD:
        return _("Register the bank account %(payee)s to receive withdrawals.") % {"payee": data["payee"]}
    if kind == ActionKind.BANK_ACCOUNT_CHANGE:
        return _("Change the bank account %(old)s to %(payee)s.") % {
            "old": data["old"],
            "payee": data["payee"],
        }
    if kind == ActionKind.SECURITIES_TRANSFER_OUT and "broker" in data:
        # Each number named by what it is, so no two of them read as one phone number.
        return _(
            "Transfer %(quantity)s shares of %(symbol)s out to %(broker)s (broker code %(broker_code)s), "
            "branch %(branch)s, account %(number)s."
        ) % {
            "quantity": f"{int(data['quantity']):,}",
            "symbol": data["symbol"],
            "broker": data["broker"],
            "broker_code": data["broker_code"],
            "branch": data["branch"],
            "number": data["number"],
        }
    if kind == ActionKind.SECURITIES_TRANSFER_OUT:  # stored before round fifty-seven: free text
        return _("Transfer %(quantity)s shares of %(symbol)s out to %(destination)s.") % {
            "quantity": f"{int(data['quantity']):,}",
            "symbol": data["symbol"],
            "destination": strip_lures(data["destination"]),
        }
    if kind == ActionKind.CONTACT_CHANGE:
        return _("Change your %(field)s to %(value)s.") % {
            "field": _CONTACT_FIELDS.get(str(data.get("field")), data.get("field")),
            "value": data["value"],
        }
    return str(data)


def action_url(held: HeldAction) -> str | None:
    """The confirmation page of ``held`` (``None`` when the portal has not mounted authguard's URLs)."""
    try:
        return reverse("authguard:action-confirm", args=[held.pk])
    except NoReverseMatch:
        return None


def action_json(held: HeldAction) -> dict[str, Any]:
    """``{id, kind, summary, methods, expires_at, url}``, as a held order's ``confirmation`` is shaped."""
    return {
        "id": str(held.pk),
        "kind": held.kind,
        "summary": render_summary(held.summary_data) if held.summary_data else held.summary,
        "methods": list(held.methods),
        "expires_at": held.expires_at,
        "status": held.status,
        "url": action_url(held),
    }
