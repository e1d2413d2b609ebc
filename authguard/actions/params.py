"""The params of each kind of sensitive action: one schema per kind (:data:`KIND_PARAMS`), checked by
:func:`clean_params` before anything is held.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from authguard.actions.errors import ActionInvalid
from authguard.models import ActionKind
from authguard.notifications.lures import has_lure
from authguard.validators import INVISIBLE_CATEGORIES

#: Largest amount of money one action may move (the demo's columns hold 16 integer digits).
MAX_AMOUNT = Decimal("1000000000000")
#: Largest quantity of one transfer of securities.
MAX_QUANTITY = 10_000_000_000
#: The kinds, in the order the docs list them.
KINDS: tuple[str, ...] = tuple(ActionKind.values)
#: Kinds that move money or securities out of the account.
OUTFLOW_KINDS = frozenset({ActionKind.WITHDRAWAL, ActionKind.SECURITIES_TRANSFER_OUT})
#: Kinds that register or change a payee (carried out: the payee's hold starts again).
PAYEE_KINDS = frozenset({ActionKind.BANK_ACCOUNT_ADD, ActionKind.BANK_ACCOUNT_CHANGE})
#: The fields of a bank account that make it the same payee (the digest covers exactly these).
PAYEE_DETAILS = ("bank_code", "branch_code", "account_type", "account_number", "holder_name")
#: Cooling-off reason of a contact change carried out (see ``lifecycle.start_cooling_off``).
REASON_CONTACT_CHANGED = "contact_changed"


_REF_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_AMOUNT_RE = re.compile(r"[0-9]{1,16}(\.[0-9]{1,2})?")
_FieldCheck = Callable[[object], Any]


def _ref(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not _REF_RE.fullmatch(value):
        raise ValueError(_("Use a reference of 1 to 64 letters, digits or ._:-"))
    return value


def _text(max_length: int) -> _FieldCheck:
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(_("Enter text."))
        text = unicodedata.normalize("NFC", " ".join(value.split()))
        # SECURITY: no control or format characters (bidi overrides would disguise the summary).
        if (
            not text
            or len(text) > max_length
            or any(unicodedata.category(c) in INVISIBLE_CATEGORIES for c in text)
        ):
            raise ValueError(
                _("Enter 1 to %(max)s characters without control characters.") % {"max": max_length}
            )
        return text

    return check


def _name(max_length: int) -> _FieldCheck:
    """:func:`_text` for a name shown back to the customer (a bank's, an account holder's): no phone
    number or domain name in it.

    SECURITY: a thief registering a bank account named "みずほ銀行 ご本人でない場合は当社 0120-987-654
    へ" put his desk's number into her genuine "a request is on hold" mail (red team, round fifty-four):
    the customer who did not ask for it is exactly the one who calls.
    """
    text_check = _text(max_length)

    def check(value: object) -> str:
        text = text_check(value)
        if has_lure(text):
            raise ValueError(_("A name cannot contain a phone number or a web address."))
        return text

    return check


_SECURITY_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,11}")


def _security_code(value: object) -> str:
    """A security's code as exchanges write it ("7203", "130A", "BRK.B"): never free text.

    SECURITY: a free-text symbol carried "TEL0120987654" into her genuine hold notice (red team, round
    fifty-eight); a code that reads as a phone number is refused too."""
    if not isinstance(value, str) or not _SECURITY_CODE_RE.fullmatch(value) or has_lure(value):
        raise ValueError(_("Enter the security's code: up to 12 letters, digits, dots or hyphens."))
    return value


def _digits(low: int, high: int) -> _FieldCheck:
    def check(value: object) -> str:
        # Leading zeros matter (bank code 0001): digits come as a string, never as a number.
        if (
            not isinstance(value, str)
            or not value.isascii()
            or not value.isdigit()
            or not low <= len(value) <= high
        ):
            if low == high:
                raise ValueError(_("Enter exactly %(count)s digits.") % {"count": low})
            raise ValueError(_("Enter %(low)s to %(high)s digits.") % {"low": low, "high": high})
        return value

    return check


def _choice(*options: str) -> _FieldCheck:
    def check(value: object) -> str:
        if not isinstance(value, str) or value not in options:
            raise ValueError(_("Choose one of: %(options)s.") % {"options": ", ".join(options)})
        return value

    return check


def _amount(value: object) -> str:
    # SECURITY: a float is not an exact amount of money, and a bool is not a number at all.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(_("Enter the amount as a whole number or a decimal string."))
    text = str(value).strip()
    # Plain digits with at most two decimals: no exponents, signs, spaces or other spellings of a number.
    if not _AMOUNT_RE.fullmatch(text):
        raise ValueError(_("Enter the amount as a whole number or a decimal string."))
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(_("Enter the amount as a whole number or a decimal string.")) from None
    if (
        not amount.is_finite()
        or amount <= 0
        or amount > MAX_AMOUNT
        or amount != amount.quantize(Decimal("0.01"))
    ):
        raise ValueError(_("Enter an amount above zero with at most two decimal places."))
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY_RE.fullmatch(value):
        raise ValueError(_("Enter a three-letter currency code such as JPY."))
    return value


def _quantity(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_QUANTITY:
        raise ValueError(_("Enter the quantity as a whole number above zero."))
    return value


_BANK_ACCOUNT: dict[str, _FieldCheck] = {
    "account": _ref,
    "payee": _ref,
    "bank_code": _digits(4, 4),
    "bank_name": _name(60),
    "branch_code": _digits(3, 3),
    "account_type": _choice("ordinary", "current", "savings"),
    "account_number": _digits(1, 8),
    "holder_name": _name(60),
}

#: The params of each kind: field name -> check (returns the canonical value or raises ``ValueError``).
KIND_PARAMS: dict[str, dict[str, _FieldCheck]] = {
    ActionKind.WITHDRAWAL: {"account": _ref, "payee": _ref, "amount": _amount, "currency": _currency},
    ActionKind.BANK_ACCOUNT_ADD: _BANK_ACCOUNT,
    ActionKind.BANK_ACCOUNT_CHANGE: _BANK_ACCOUNT,
    # SECURITY: the receiving account in fields, as a bank account's, not one free text: a free-text
    # destination held the other broker's account number, so his desk's number in it could not be told from
    # it and reached her genuine hold notice (red team, round fifty-four; fields since round fifty-seven).
    ActionKind.SECURITIES_TRANSFER_OUT: {
        "account": _ref,
        "symbol": _security_code,
        "quantity": _quantity,
        "broker_code": _digits(4, 5),
        "broker_name": _name(60),
        "branch_code": _digits(3, 3),
        "account_number": _digits(1, 8),
    },
    ActionKind.CONTACT_CHANGE: {
        "account": _ref,
        "field": _choice("email", "phone", "address"),
        "value": _text(200),
    },
}


def clean_params(*, kind: object, params: object) -> dict[str, Any]:
    """The canonical params of an action of ``kind``; raises :class:`ActionInvalid` with errors per field.

    Every field of the kind is required; unknown fields are refused (never ignored), so nothing the customer
    did not see can ride along.
    """
    if not isinstance(kind, str) or kind not in KIND_PARAMS:
        raise ActionInvalid(
            _("Unknown kind of action."), code="unknown_kind", errors={"kind": [_("Unknown kind of action.")]}
        )
    if not isinstance(params, Mapping):
        raise ActionInvalid(code="malformed", errors={"params": [_("Send the details as an object.")]})
    spec = KIND_PARAMS[kind]
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key in sorted(set(params) - set(spec), key=str):
        errors[str(key)[:40]] = [_("Unknown field.")]
    if kind == ActionKind.SECURITIES_TRANSFER_OUT and "destination" in params:
        # The free-text field of before round fifty-seven: say what replaced it.
        errors["destination"] = [
            _("Send the receiving account as broker_code, broker_name, branch_code and account_number.")
        ]
    for name, check in spec.items():
        if name not in params:
            errors[name] = [_("This field is required.")]
            continue
        try:
            clean[name] = check(params[name])
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ActionInvalid(code="invalid_params", errors=errors)
    return clean
