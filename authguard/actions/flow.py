"""Sensitive actions beyond orders: hold them until the customer confirms with a passkey bound to the action.

A portal describes a withdrawal, a bank-account registration or change, a transfer of securities out or a
contact change as a ``kind`` and its ``params``, and submits it through :func:`guard`::

    outcome = actions.guard(request, kind="withdrawal", portal_ref=str(withdrawal.pk),
                            params={"account": "42", "payee": "7", "amount": "500000", "currency": "JPY"})
    if isinstance(outcome, actions.Held):
        return JsonResponse({"status": "held", "confirmation": outcome.as_json()}, status=202)

The confirmation works as a held order's does (dynamic linking): the exact canonical action JSON and its
SHA-256 ``digest`` are stored with a random ``nonce``, and the passkey challenge is ``sha256(nonce ||
digest)``, so an assertion confirms this action and no other. A confirmation is single use, expires
(``AUTHGUARD_ACTION_CONFIRMATION_SECONDS``), is bound to the session that asked for it, is refused for a
factor in its cooling-off (or one confirmed during the account's cooling-off, see
:mod:`authguard.factors.lifecycle`) and for a factor newer than the action, and carries the action out
exactly once, under row locks, through the portal's executor (``AUTHGUARD_ACTION_EXECUTOR``: an object with
``execute(action) -> str`` that carries out the *stored* canonical action, and ``release(action, *,
status)`` that closes the portal's copy of an action that will never be carried out).

**New-payee hold.** Every bank account that can receive money is a
:class:`~authguard.models.RegisteredPayee` with the time it was registered or last changed (written by
authguard itself when a ``bank_account_add`` or ``bank_account_change`` is carried out, or by
:func:`register_payee` for the accounts a portal had before). A withdrawal to a payee registered less than
``AUTHGUARD_NEW_PAYEE_HOLD_HOURS`` ago is refused (:class:`PayeeOnHold`) when asked and again when carried
out, whatever was confirmed.

**Methods.** A passkey. TOTP only where ``AUTHGUARD_ACTION_CONFIRMATION_METHODS`` lists it and the customer
has no usable passkey; never under the ``jsda-2025`` preset. A customer with no usable method is refused
with a clear message (:class:`NoConfirmationMethod`) and nothing is held.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Generic, Protocol, TypeVar

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import transaction
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard.conf import app_settings
from authguard.exceptions import AuthguardError, InvalidCredential, Throttled
from authguard.models import ActionKind, HeldAction, RegisteredPayee
from authguard.orders import guard as orders

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Version of the canonical action JSON (a row of another version is refused, not parsed).
CANONICAL_VERSION = 1
#: Session key of the random token that binds held actions to the session that asked for them. It survives
#: the key rotation of a step-up (``cycle_key``); no other session (nor a new login) ever has it.
BINDING_SESSION_KEY = "_authguard_action_binding"
#: Most actions one customer may have waiting at once; more are refused (no flood of notices).
MAX_PENDING = 5
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


# -- exceptions ---------------------------------------------------------------------------------------------


class ActionError(AuthguardError):
    """Base of what :mod:`authguard.actions.flow` raises on purpose; ``http_status`` is the API's answer."""

    http_status = 400


class ActionInvalid(ActionError):
    """The action's ``params`` are malformed; ``errors`` maps each field to its messages. Nothing was held."""

    http_status = 400
    default_code = "invalid"
    default_message = gettext_lazy("The request is not valid.")

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: Mapping[str, list[str]] | None = None,
    ) -> None:
        errors = {key: [str(m) for m in value] for key, value in (errors or {}).items()}
        if message is None and errors:
            message = " ".join(m for messages in errors.values() for m in messages)
        super().__init__(message, code=code)
        self.errors: dict[str, list[str]] = errors


class ActionRefused(ActionError):
    """The action cannot be asked for now (payee on hold, no way to confirm, too many waiting)."""

    http_status = 403
    default_code = "refused"
    default_message = gettext_lazy("This cannot be done from your account right now.")


class UnknownPayee(ActionRefused):
    """The destination is not a bank account registered for this customer (or it was removed)."""

    default_code = "unknown_payee"
    default_message = gettext_lazy("This bank account is not registered for your account.")


class PayeeOnHold(ActionRefused):
    """The destination was registered or changed too recently to receive money; ``available_at`` says when."""

    default_code = "payee_on_hold"

    def __init__(self, *, available_at: datetime) -> None:
        local = timezone.localtime(available_at)
        super().__init__(
            _(
                "For your protection, a newly registered or changed bank account can receive money only from "
                "%(when)s."
            )
            % {"when": local.strftime("%Y-%m-%d %H:%M")}
        )
        self.available_at = available_at


class NoConfirmationMethod(ActionRefused):
    """The customer has no factor that may confirm this action (no passkey, or only factors cooling off)."""

    default_code = "no_method"
    default_message = gettext_lazy(
        "This needs your passkey, and your account has none that can confirm it yet. Add a passkey in your "
        "security settings (a passkey added today can confirm this only after the waiting period), or "
        "contact us."
    )


# The confirmation failures are the order guard's, with wording for actions: one hierarchy, so whatever
# answers a held order's ConfirmationError (http_status, code, retry_after) answers a held action's too.
class ConfirmationError(ActionError, orders.ConfirmationError):
    """A confirmation attempt failed; ``http_status`` is the API's answer."""


class ConfirmationNotFound(orders.ConfirmationNotFound, ConfirmationError):
    """No such pending action for this customer in this session (also for another session's)."""

    default_message = gettext_lazy("There is nothing of yours waiting for confirmation under this link.")


class ConfirmationGone(orders.ConfirmationGone, ConfirmationError):
    """The action's confirmation expired, was cancelled, or was already used."""

    default_message = gettext_lazy("This is no longer waiting for confirmation.")


class ConfirmationInvalid(orders.ConfirmationInvalid, ConfirmationError):
    """The passkey or code did not verify, the method is not allowed, or the factor is cooling off."""


class ConfirmationThrottled(orders.ConfirmationThrottled, ConfirmationError):
    """The factor's back-off refuses attempts for now: 429 ``throttled`` (``retry_after`` seconds)."""


class ActionNotExecutable(AuthguardError):
    """Raised by the portal's executor: the stored action can no longer be carried out (funds, account...)."""

    default_code = "not_executable"
    default_message = gettext_lazy("This can no longer be carried out.")


class ActionsMisconfigured(ImproperlyConfigured):
    """``AUTHGUARD_ACTION_EXECUTOR`` is missing or does not import."""


# -- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed(Generic[T]):
    """The kind is not guarded (``AUTHGUARD_ACTION_GUARDED_KINDS``): ``perform()`` returned ``result``."""

    kind: str
    result: T


@dataclass(frozen=True)
class Held:
    """The action waits for the customer's confirmation; nothing was carried out."""

    action: HeldAction

    def as_json(self) -> dict[str, Any]:
        """``{id, kind, summary, methods, expires_at, url}``: the ``confirmation`` of a 202 ``held``."""
        return action_json(self.action)


@dataclass(frozen=True)
class Confirmed:
    """The action was confirmed and carried out exactly once; ``result_ref`` is the portal's reference."""

    action: HeldAction
    result_ref: str


class Executor(Protocol):
    """What ``AUTHGUARD_ACTION_EXECUTOR`` names."""

    def execute(self, action: HeldAction) -> str:
        """Carry out the held action's stored canonical action (read it with :func:`stored_action`); return
        the portal's reference. Raise :class:`ActionNotExecutable` to refuse (its writes are undone)."""

    def release(self, action: HeldAction, *, status: str) -> None:
        """The held action was cancelled, expired or failed: close the portal's copy of it."""


# -- settings and hooks -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _import(path: str) -> Any:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ActionsMisconfigured(f"authguard actions: cannot import {path!r} ({exc})") from exc


def _executor() -> Executor:
    path = app_settings.ACTION_EXECUTOR
    if not path:
        raise ActionsMisconfigured(
            "AUTHGUARD_ACTION_EXECUTOR is not set: held actions cannot be carried out."
        )
    target = _import(path)
    return target() if isinstance(target, type) else target


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("AUTHGUARD_ACTION"):
        _import.cache_clear()


setting_changed.connect(_settings_changed)


def guarded_kinds() -> frozenset[str]:
    """The kinds held for confirmation (all of them by default, and always under the JSDA preset)."""
    return frozenset(app_settings.ACTION_GUARDED_KINDS)


# -- params: one schema per kind -------------------------------------------------------------------------

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
            or any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in text)
        ):
            raise ValueError(
                _("Enter 1 to %(max)s characters without control characters.") % {"max": max_length}
            )
        return text

    return check


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
    "bank_name": _text(60),
    "branch_code": _digits(3, 3),
    "account_type": _choice("ordinary", "current", "savings"),
    "account_number": _digits(1, 8),
    "holder_name": _text(60),
}

#: The params of each kind: field name -> check (returns the canonical value or raises ``ValueError``).
KIND_PARAMS: dict[str, dict[str, _FieldCheck]] = {
    ActionKind.WITHDRAWAL: {"account": _ref, "payee": _ref, "amount": _amount, "currency": _currency},
    ActionKind.BANK_ACCOUNT_ADD: _BANK_ACCOUNT,
    ActionKind.BANK_ACCOUNT_CHANGE: _BANK_ACCOUNT,
    ActionKind.SECURITIES_TRANSFER_OUT: {
        "account": _ref,
        "symbol": _text(16),
        "quantity": _quantity,
        "destination": _text(120),
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


# -- payees -------------------------------------------------------------------------------------------------


def payee_digest(*, user: Any, details: Mapping[str, Any]) -> str:
    """A keyed digest of a bank account's :data:`PAYEE_DETAILS` (executors compare their copy with it)."""
    values = {name: str(details.get(name, "")) for name in PAYEE_DETAILS}
    values["user"] = str(user.pk)
    return salted_hmac("authguard.actions.payee", canonical_json(values), algorithm="sha256").hexdigest()


def payee_label(details: Mapping[str, Any]) -> str:
    """``Mizuho Bank (0001) 123 ****567 YAMADA HANAKO``: the account as summaries show it."""
    number = str(details.get("account_number", ""))
    masked = "*" * max(len(number) - 3, 0) + number[-3:]
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
    return _write_payee(
        user=user, params=clean, at=registered_at or timezone.now(), source=source, action=None
    )


def remove_payee(*, user: Any, ref: str) -> bool:
    """The portal removed this bank account: it receives nothing from now on. False if it was unknown."""
    return bool(
        RegisteredPayee.objects.filter(user_id=user.pk, ref=str(ref), removed_at__isnull=True).update(
            removed_at=timezone.now()
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


# -- canonical form, digest, challenge ------------------------------------------------------------------


def canonical_json(data: Mapping[str, Any]) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def action_digest(canonical: str) -> str:
    """SHA-256 (hex) of the canonical action."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def challenge_for(held: HeldAction) -> bytes:
    """The WebAuthn challenge of a held action: ``sha256(nonce || digest)`` (dynamic linking).

    The nonce is renewed by every :func:`confirmation_options`, so each attempt signs a new challenge that
    still names this exact action; the nonce of the successful attempt stays on the row with the assertion.
    """
    return hashlib.sha256(bytes.fromhex(held.nonce) + bytes.fromhex(held.digest)).digest()


def stored_action(held: HeldAction) -> dict[str, Any]:
    """The held action's canonical action, after checking it still hashes to its digest.

    Executors read the action from here, never from the client. Raises :class:`ConfirmationInvalid` for a
    row whose canonical action was changed after it was held.
    """
    changed = ConfirmationInvalid(_("This was changed after it was asked for."), code="action_changed")
    # SECURITY: recomputed on every use: a changed action voids the confirmation.
    if not secrets.compare_digest(action_digest(held.canonical), held.digest):
        raise changed
    try:
        data = json.loads(held.canonical)
    except ValueError:
        raise changed from None
    if (
        not isinstance(data, dict)
        or data.get("v") != CANONICAL_VERSION
        or data.get("type") != "action"
        or data.get("confirmation") != str(held.pk)
        or data.get("kind") != held.kind
        or data.get("user") != str(held.user_id)
    ):
        raise changed
    return data


def _session_binding(request: HttpRequest | None, *, create: bool) -> str | None:
    session = getattr(request, "session", None)
    if session is None:
        return None
    token = session.get(BINDING_SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        if not create:
            return None
        token = secrets.token_urlsafe(32)
        session[BINDING_SESSION_KEY] = token
    return hashlib.sha256(token.encode()).hexdigest()


# -- methods ------------------------------------------------------------------------------------------------


def _may_confirm(user: Any, device: Any) -> bool:
    from authguard.factors.lifecycle import may_confirm_sensitive

    return may_confirm_sensitive(user, device)


def confirmation_methods(user: Any) -> list[str]:
    """How ``user`` may confirm a sensitive action now: ``["passkey"]``, ``["totp"]`` or none.

    SECURITY: a passkey, whenever the customer has one; TOTP only where the setting allows it and the customer
    has no usable passkey (a code can be relayed by a phishing page, a passkey cannot), never under the JSDA
    preset. Factors in their cooling-off are not counted at all.
    """
    from authguard.factors.base import totp_device
    from authguard.factors.passkeys import usable_passkeys

    allowed = app_settings.ACTION_CONFIRMATION_METHODS
    if "passkey" in allowed and any(_may_confirm(user, device) for device in usable_passkeys(user)):
        return ["passkey"]
    if "totp" in allowed:
        totp = totp_device(user)
        if totp is not None and _may_confirm(user, totp):
            return ["totp"]
    return []


# -- asking for an action -----------------------------------------------------------------------------------


def lock_customer(user: Any) -> None:
    """``SELECT ... FOR UPDATE`` on the customer's row: one sensitive action of theirs at a time."""
    model = get_user_model()
    model._default_manager.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


def guard(
    request: HttpRequest | None,
    *,
    kind: str,
    params: Mapping[str, Any],
    portal_ref: str = "",
    perform: Callable[[], T] | None = None,
    user: Any = None,
    now: datetime | None = None,
) -> Allowed[T] | Held:
    """Ask for a sensitive action: hold it for the customer's confirmation (or, for a kind the settings do not
    guard, carry it out now with ``perform()``).

    ``params`` are checked against the kind's schema (:data:`KIND_PARAMS`); ``portal_ref`` is the portal's
    reference of its own pending copy (e.g. a withdrawal's primary key), given back to the executor. Runs in
    one transaction under the customer's row lock: call it inside the portal's transaction that wrote the
    pending copy, so a refusal leaves nothing behind. Raises :class:`ActionInvalid` (400),
    :class:`UnknownPayee`, :class:`PayeeOnHold`, :class:`NoConfirmationMethod`, :class:`ActionRefused` (403).
    """
    user = user if user is not None else getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        raise ActionRefused(_("Sign in first."), code="login_required")
    clean = clean_params(kind=kind, params=params)
    if not isinstance(portal_ref, str) or len(portal_ref) > 64:
        raise ValueError("portal_ref must be a string of at most 64 characters")
    now = now or timezone.now()
    guarded = kind in guarded_kinds()
    with transaction.atomic():
        lock_customer(user)
        _expire_for(user, now=now)
        payee = _payee_snapshot(user, kind, clean, now=now)
        if not guarded:
            if perform is None:
                raise ActionsMisconfigured(f"{kind} is not guarded: pass perform= to carry it out.")
            result = perform()
            _carried_out(user, kind, clean, action=None, now=now, payee=payee)
            return Allowed(kind, result)
        _executor()  # SECURITY: fail closed before holding anything the portal could never carry out
        if (
            HeldAction.objects.filter(user_id=user.pk, status=HeldAction.Status.PENDING).count()
            >= MAX_PENDING
        ):
            raise ActionRefused(
                _("Too many requests are waiting for your confirmation. Confirm or cancel them first."),
                code="too_many_pending",
            )
        methods = confirmation_methods(user)
        if not methods:
            raise NoConfirmationMethod()
        held = _create_held(request, user=user, kind=kind, params=clean, payee=payee, methods=methods,
                            portal_ref=portal_ref, now=now)  # fmt: skip
        _notify_customer(
            user,
            "action_held",
            context={"summary": render_summary(held.summary_data), "time": now, "expires": held.expires_at},
            dedupe_key=f"action-held:{held.pk}",
        )
    logger.info("authguard action held user=%s kind=%s id=%s", user.pk, kind, held.pk)
    return Held(held)


def _create_held(
    request: HttpRequest | None,
    *,
    user: Any,
    kind: str,
    params: dict[str, Any],
    payee: dict[str, Any] | None,
    methods: list[str],
    portal_ref: str,
    now: datetime,
) -> HeldAction:
    held_id = uuid.uuid4()
    canonical = canonical_json(
        {
            "v": CANONICAL_VERSION,
            "type": "action",
            "confirmation": str(held_id),
            "user": str(user.pk),
            "kind": kind,
            "params": params,
            "payee": payee,
            "portal_ref": portal_ref,
            "held_at": now.isoformat(),
        }
    )
    data = summary_data(kind, params, payee=payee)
    binding = _session_binding(request, create=True)
    return HeldAction.objects.create(
        id=held_id,
        user=user,
        kind=kind,
        canonical=canonical,
        digest=action_digest(canonical),
        nonce=secrets.token_hex(16),
        # SECURITY: no session, no binding anyone could satisfy: such an action can only be cancelled.
        session_binding=binding or "",
        methods=methods,
        summary=render_summary(data),
        summary_data=data,
        status=HeldAction.Status.PENDING,
        created_at=now,
        expires_at=now + timedelta(seconds=app_settings.ACTION_CONFIRMATION_SECONDS),
        portal_ref=portal_ref,
    )


# -- summaries ------------------------------------------------------------------------------------------


def summary_data(kind: str, params: Mapping[str, Any], *, payee: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the plain summary shows, kept so the page renders it in the reader's language."""
    data: dict[str, Any] = {"kind": kind}
    if kind == ActionKind.WITHDRAWAL:
        data.update(
            amount=params["amount"], currency=params["currency"], payee=(payee or {}).get("label", "")
        )
    elif kind == ActionKind.BANK_ACCOUNT_ADD:
        data.update(payee=payee_label(params))
    elif kind == ActionKind.BANK_ACCOUNT_CHANGE:
        data.update(payee=payee_label(params), old=(payee or {}).get("label", ""))
    elif kind == ActionKind.SECURITIES_TRANSFER_OUT:
        data.update(symbol=params["symbol"], quantity=params["quantity"], destination=params["destination"])
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
    if kind == ActionKind.SECURITIES_TRANSFER_OUT:
        return _("Transfer %(quantity)s shares of %(symbol)s out to %(destination)s.") % {
            "quantity": f"{int(data['quantity']):,}",
            "symbol": data["symbol"],
            "destination": data["destination"],
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


# -- confirming -------------------------------------------------------------------------------------------


def _parse_id(action_id: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(action_id))
    except (ValueError, TypeError, AttributeError):
        raise ConfirmationNotFound() from None


def owned_action(request: HttpRequest, action_id: object) -> HeldAction:
    """The signed-in customer's held action ``action_id`` in any state, from any of their sessions (to show or
    cancel it). Raises :class:`ConfirmationNotFound` for anyone else's or a malformed id."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise ConfirmationNotFound()
    held = HeldAction.objects.filter(pk=_parse_id(action_id), user_id=user.pk).first()
    if held is None:
        raise ConfirmationNotFound()
    return held


def pending_for(request: HttpRequest, action_id: object) -> HeldAction:
    """The held action ``action_id`` of the signed-in customer *in this session*, still pending.

    Raises :class:`ConfirmationNotFound` (unknown, another customer's, another session's) or
    :class:`ConfirmationGone` (confirmed, cancelled, expired: an expired one is closed here, on read).
    """
    held = owned_action(request, action_id)
    binding = _session_binding(request, create=False)
    # SECURITY: only the session that asked for the action may confirm it; others cannot even see it exists.
    if not binding or not held.session_binding or not secrets.compare_digest(binding, held.session_binding):
        raise ConfirmationNotFound()
    if held.status != HeldAction.Status.PENDING:
        raise ConfirmationGone()
    if held.expires_at <= timezone.now():
        _close(held.pk, HeldAction.Status.EXPIRED)
        raise ConfirmationGone(_("This expired before it was confirmed."), code="expired")
    return held


def confirmation_options(request: HttpRequest, *, action_id: object) -> dict[str, Any]:
    """WebAuthn request options whose challenge is ``sha256(nonce || digest)`` of this held action."""
    from authguard.factors.passkeys import authentication_options

    held = pending_for(request, action_id)
    if "passkey" not in held.methods:
        raise ConfirmationInvalid(_("This cannot be confirmed with a passkey."), code="method")
    stored_action(held)
    # A fresh nonce per attempt: every challenge is single use, and a failed try must not burn the action.
    held.nonce = secrets.token_hex(16)
    HeldAction.objects.filter(pk=held.pk, status=HeldAction.Status.PENDING).update(nonce=held.nonce)
    try:
        return authentication_options(
            request, purpose=f"action:{held.pk}", user=request.user, challenge=challenge_for(held)
        )
    except InvalidCredential as exc:
        raise ConfirmationInvalid(exc.message, code=exc.code) from None


def _signed_challenge(credential: object) -> bytes | None:
    """The challenge inside the assertion's ``clientDataJSON``, or ``None`` when unreadable."""
    from authguard.factors.passkeys import b64url_decode

    try:
        if isinstance(credential, str):
            credential = json.loads(credential)
        raw = credential["response"]["clientDataJSON"]  # type: ignore[index]
        client_data = json.loads(b64url_decode(raw, max_chars=8 * 1024))
        return b64url_decode(client_data["challenge"], max_chars=256)
    except (InvalidCredential, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def confirm_with_passkey(request: HttpRequest, *, action_id: object, credential: object) -> Confirmed:
    """Confirm with the customer's passkey and carry the stored action out exactly once."""
    from authguard.factors.base import note_account_failure
    from authguard.factors.passkeys import verify_authentication

    held = pending_for(request, action_id)
    if "passkey" not in held.methods:
        raise ConfirmationInvalid(_("This cannot be confirmed with a passkey."), code="method")
    stored_action(held)
    if not isinstance(credential, dict | str):
        raise ConfirmationInvalid(code="malformed")
    # SECURITY: dynamic linking: the signed challenge must be the one derived from this exact action.
    signed = _signed_challenge(credential)
    if signed is None or not secrets.compare_digest(signed, challenge_for(held)):
        raise ConfirmationInvalid(_("This passkey response is not for this request."), code="challenge")
    try:
        device = verify_authentication(
            request, purpose=f"action:{held.pk}", credential=credential, user=request.user
        )
    except InvalidCredential as exc:
        # Like a failed step-up, a failed confirmation counts towards the account's lock.
        note_account_failure(request.user, kind="passkey")
        raise ConfirmationInvalid(exc.message, code=exc.code) from None
    _require_may_confirm(request.user, device, held)
    evidence = json.loads(credential) if isinstance(credential, str) else credential
    return _execute(request.user, held.pk, method="passkey", device=device, assertion=evidence)


def confirm_with_totp(request: HttpRequest, *, action_id: object, code: object) -> Confirmed:
    """Confirm with a TOTP code, only where this action's ``methods`` allow it (never under the preset)."""
    from authguard.factors.base import verify_totp

    held = pending_for(request, action_id)
    if "totp" not in held.methods or app_settings.JSDA:
        raise ConfirmationInvalid(_("This must be confirmed with your passkey."), code="method")
    stored_action(held)
    if not isinstance(code, str) or not code.strip().isdigit() or len(code.strip()) > 10:
        raise ConfirmationInvalid(_("Enter the code from your authenticator app."), code="malformed")
    try:
        device = verify_totp(request.user, code.strip())
    except Throttled as exc:
        raise ConfirmationThrottled(exc.message, code=exc.code, retry_after=exc.retry_after) from None
    except AuthguardError as exc:
        raise ConfirmationInvalid(exc.message, code=exc.code) from None
    if device is None:
        raise ConfirmationInvalid(_("The code is not correct."), code="wrong_code")
    _require_may_confirm(request.user, device, held)
    return _execute(request.user, held.pk, method="totp", device=device, assertion=None)


def _require_may_confirm(user: Any, device: Any, held: HeldAction) -> None:
    """SECURITY: the factor is not cooling off (its own, or the account's with a factor confirmed during it),
    and the customer had it before the action was asked for: whoever holds a hijacked session must not add a
    factor of their own and confirm with it."""
    from authguard.factors.lifecycle import factor_confirmed_at

    if not _may_confirm(user, device):
        raise ConfirmationInvalid(
            _(
                "This passkey or authenticator was added too recently to confirm this. "
                "Use one you had before."
            ),
            code="cooling_off",
        )
    confirmed = factor_confirmed_at(device)
    if confirmed is None or confirmed >= held.created_at:
        raise ConfirmationInvalid(
            _("Confirm with a passkey or authenticator you had before this was asked for."),
            code="factor_too_new",
        )


def _execute(user: Any, held_id: uuid.UUID, *, method: str, device: Any, assertion: Any) -> Confirmed:
    """Under the customer's and the held action's row locks: recheck, mark used, carry out once."""
    failure: AuthguardError | None = None
    with transaction.atomic():
        lock_customer(user)
        held = HeldAction.objects.select_for_update().select_related("user").get(pk=held_id)
        now = timezone.now()
        # SECURITY: single use: whoever takes the lock second finds it no longer pending.
        if held.status != HeldAction.Status.PENDING:
            raise ConfirmationGone()
        data: dict[str, Any] = {}
        if held.expires_at <= now:
            _close_locked(held, HeldAction.Status.EXPIRED, now=now)
            failure = ConfirmationGone(_("This expired before it was confirmed."), code="expired")
        else:
            try:
                data = stored_action(held)  # SECURITY: rechecked under the lock
                _recheck_payee(held, data, now=now)
            except (ConfirmationInvalid, PayeeOnHold) as exc:
                _close_locked(held, HeldAction.Status.FAILED, now=now, reason=exc.message)
                failure = exc
        if failure is None:
            held.confirmed_at = now
            held.confirmed_method = method
            held.confirmed_device = str(getattr(device, "persistent_id", ""))[:255]
            held.assertion = assertion
            try:
                with transaction.atomic():  # the executor's writes are undone if it refuses
                    ref = _executor().execute(held)
            except ActionNotExecutable as exc:
                _close_locked(held, HeldAction.Status.FAILED, now=now, reason=exc.message)
                failure = ConfirmationInvalid(exc.message, code="not_executable")
            else:
                held.status = HeldAction.Status.CONFIRMED
                held.closed_at = now
                held.result_ref = "" if ref is None else str(ref)[:64]
                held.save()
                _carried_out(
                    held.user, held.kind, data["params"], action=held, now=now, payee=data.get("payee")
                )
    if failure is not None:
        raise failure
    logger.info("authguard action %s (%s) confirmed with %s", held.pk, held.kind, method)
    return Confirmed(held, held.result_ref)


def _carried_out(
    user: Any,
    kind: str,
    params: Mapping[str, Any],
    *,
    action: HeldAction | None,
    now: datetime,
    payee: Mapping[str, Any] | None,
) -> None:
    """After the portal carried an action out: payees start their hold, contact changes a cooling-off, and the
    customer is told."""
    if kind in PAYEE_KINDS:
        _write_payee(user=user, params=params, at=now, source="confirmed", action=action)
    if kind == ActionKind.CONTACT_CHANGE:
        from django.contrib.auth import get_user_model

        from authguard.factors.lifecycle import note_contact_changed

        # SECURITY: a changed contact is what a thief does before he acts: new factors wait again, and
        # notices keep going to the previous e-mail address until the cooling-off ends. ``user`` was loaded
        # before the portal's executor ran, so it still holds the old address unless it was this instance
        # the executor changed.
        old_email = ""
        if params["field"] == "email":
            held_email = str(getattr(user, get_user_model().get_email_field_name(), "") or "")
            old_email = held_email if held_email != params["value"] else ""
        note_contact_changed(user, old_email=old_email, reason=REASON_CONTACT_CHANGED, at=now)
    data = action.summary_data if action is not None else summary_data(kind, params, payee=payee)
    _notify_customer(
        user,
        "action_done",
        context={"summary": render_summary(data), "time": now},
        dedupe_key=f"action-done:{action.pk}" if action is not None else None,
    )


# -- closing ----------------------------------------------------------------------------------------------


def _close_locked(held: HeldAction, status: str, *, now: datetime, reason: str = "") -> None:
    held.status = status
    held.closed_at = now
    held.failure = str(reason)[:300]
    held.save(
        update_fields=[
            "status",
            "closed_at",
            "failure",
            "confirmed_at",
            "confirmed_method",
            "confirmed_device",
            "assertion",
        ]
    )
    try:
        _executor().release(held, status=status)
    except ActionsMisconfigured:
        logger.error("authguard: held action %s closed, but no executor can release it", held.pk)


def _close(held_id: uuid.UUID, status: str, *, reason: str = "") -> bool:
    """Close a pending held action (cancelled, expired, failed) under its lock; False if not pending."""
    with transaction.atomic():
        held = HeldAction.objects.select_for_update().filter(pk=held_id).first()
        if held is None or held.status != HeldAction.Status.PENDING:
            return False
        _close_locked(held, status, now=timezone.now(), reason=reason)
    return True


def _expire_for(user: Any, *, now: datetime) -> int:
    """Expire the customer's own held actions past their time (there is no need for a periodic task)."""
    due = list(
        HeldAction.objects.filter(
            user_id=user.pk, status=HeldAction.Status.PENDING, expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    return sum(1 for pk in due if _close(pk, HeldAction.Status.EXPIRED))


def cancel(request: HttpRequest, *, action_id: object) -> None:
    """The customer cancels a held action (from any of their sessions). Raises if it is not pending."""
    held = owned_action(request, action_id)
    if not _close(held.pk, HeldAction.Status.CANCELLED):
        raise ConfirmationGone()
    logger.info("authguard action %s cancelled by the customer", held.pk)


def staff_cancel(held: HeldAction, *, by: Any, reason: str) -> bool:
    """Cancel a pending held action for the security desk; False if it was no longer pending. There is no
    staff release: only the customer's own factor confirms a sensitive action.

    Who and why go to the admin log; the customer is told that the security desk cancelled the request.
    SECURITY: staff names and internal notes never reach the customer's pages or mail.
    """
    from authguard.console.approvals import audit

    now = timezone.now()
    with transaction.atomic():
        if not _close(held.pk, HeldAction.Status.CANCELLED):
            return False
        audit(by, held, f"cancelled: {reason}")
        _notify_customer(
            held.user,
            "staff_action",
            context={
                "action": "cancel_action",
                "stage": "executed",
                "what": str(held.summary)[:120],
                "four_eyes": False,
                "time": now,
            },
            dedupe_key=f"staff:cancel_action:{held.pk}",
        )
    return True


def expire_due(*, now: datetime | None = None) -> int:
    """Expire every pending held action past its ``expires_at``; return how many (periodic task, optional:
    actions also expire when read and when their customer asks for another)."""
    now = now or timezone.now()
    due = list(
        HeldAction.objects.filter(status=HeldAction.Status.PENDING, expires_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    return sum(1 for pk in due if _close(pk, HeldAction.Status.EXPIRED))


def pending_actions(user: Any) -> list[HeldAction]:
    """The customer's actions waiting for confirmation (expired ones are closed first)."""
    if user is None or getattr(user, "pk", None) is None:
        return []
    _expire_for(user, now=timezone.now())
    return list(
        HeldAction.objects.filter(user_id=user.pk, status=HeldAction.Status.PENDING).order_by("created_at")
    )


# -- notifications ------------------------------------------------------------------------------------------


def _notify_customer(user: Any, kind: str, *, context: dict[str, Any], dedupe_key: str | None) -> None:
    """Tell the customer (and, during a cooling-off after an e-mail change, the previous address too)."""
    from authguard.notifications.outbox import notify_customer

    notify_customer(user, kind, context=context, dedupe_key=dedupe_key)


__all__ = [
    "ActionError",
    "ActionInvalid",
    "ActionKind",
    "ActionNotExecutable",
    "ActionRefused",
    "ActionsMisconfigured",
    "Allowed",
    "ConfirmationError",
    "ConfirmationGone",
    "ConfirmationInvalid",
    "ConfirmationNotFound",
    "ConfirmationThrottled",
    "Confirmed",
    "Executor",
    "Held",
    "KINDS",
    "KIND_PARAMS",
    "NoConfirmationMethod",
    "PayeeOnHold",
    "UnknownPayee",
    "action_digest",
    "action_json",
    "action_url",
    "cancel",
    "challenge_for",
    "clean_params",
    "confirm_with_passkey",
    "confirm_with_totp",
    "confirmation_methods",
    "confirmation_options",
    "expire_due",
    "guard",
    "guarded_kinds",
    "hold_hours",
    "owned_action",
    "payee_available_at",
    "payee_digest",
    "payee_for",
    "pending_actions",
    "pending_for",
    "register_payee",
    "remove_payee",
    "render_summary",
    "staff_cancel",
    "stored_action",
]
