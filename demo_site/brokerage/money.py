"""Money out of the demo brokerage: bank-account registration and cash withdrawals, guarded by authguard.

Both go through :func:`authguard.actions.flow.guard`: a registration is held until the customer confirms it
with
the passkey bound to exactly that account, and a withdrawal until the customer confirms exactly that amount
to exactly that account. A newly registered bank account receives nothing during
``AUTHGUARD_NEW_PAYEE_HOLD_HOURS`` (authguard refuses the withdrawal), whatever was confirmed. Nothing moves
before the confirmation: the portal keeps a ``pending`` bank account or a ``held`` withdrawal, and
:class:`MoneyExecutor` (``AUTHGUARD_ACTION_EXECUTOR``) carries the *stored* action out once, under the
account's row lock.

The HTML pages (``/money/``, ``/money/bank-accounts/add/``), the JSON API (``GET``/``POST
/api/bank-accounts``, ``GET``/``POST /api/withdrawals``) and authguard's confirmation all call the same
functions below. JSON answers: 202 ``held`` with ``confirmation: {id, kind, summary, methods, expires_at,
url}``; 400 ``invalid`` with ``errors``; 403 ``refused`` with a ``code`` (``payee_on_hold``, ``no_method``,
``unknown_payee``...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from authguard.actions import flow as actions
from authguard.models import ActionKind, HeldAction

from .api import ApiError, answer, invalid, json_view, read_json_object
from .models import (
    Account,
    BankAccount,
    BankAccountStatus,
    BankAccountType,
    Withdrawal,
    WithdrawalStatus,
)

#: Largest withdrawal in one request (yen); the account's cash is the real limit.
MAX_WITHDRAWAL = Decimal("100000000000")
BANK_FIELDS = ("bank_code", "bank_name", "branch_code", "account_type", "account_number", "holder_name")
WITHDRAWAL_FIELDS = frozenset({"bank_account_id", "amount"})
#: Whole yen as digits, with or without thousands separators: ``500000`` or ``500,000``.
_YEN_RE = re.compile(r"[0-9]{1,15}|[0-9]{1,3}(,[0-9]{3}){1,4}")


class MoneyRejected(Exception):
    """The request was refused before anything was held; ``errors`` per field (a form's shape)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = {key: [str(m) for m in value] for key, value in errors.items()}
        super().__init__(" ".join(m for value in self.errors.values() for m in value))


@dataclass(frozen=True)
class Requested:
    """What a request did: the portal's pending row and authguard's held action (``None``: not guarded)."""

    row: BankAccount | Withdrawal
    held: HeldAction | None


def _account(user: AbstractBaseUser | AnonymousUser, *, lock: bool = False) -> Account:
    query = Account.objects.select_for_update() if lock else Account.objects
    account = query.filter(user_id=user.pk).first() if user.pk is not None else None
    if account is None:
        raise MoneyRejected({"account": [_("This user has no trading account.")]})
    return account


# -- reading ------------------------------------------------------------------------------------------------


def bank_accounts(user: AbstractBaseUser | AnonymousUser) -> list[BankAccount]:
    """The customer's bank accounts (registered and pending), newest first, with ``available_at`` set: when
    each can first receive money (``None``: not registered)."""
    rows = list(
        BankAccount.objects.filter(account__user_id=user.pk).exclude(status=BankAccountStatus.CANCELLED)
    )
    for row in rows:
        payee = (
            actions.payee_for(user=user, ref=str(row.pk)) if row.status == BankAccountStatus.ACTIVE else None
        )
        row.available_at = actions.payee_available_at(payee) if payee is not None else None  # type: ignore[attr-defined]
    return rows


def withdrawals(user: AbstractBaseUser | AnonymousUser) -> list[Withdrawal]:
    """The customer's withdrawals, newest first (held ones past their time are expired first)."""
    actions.pending_actions(user)  # expires what is due, so no row shows "held" forever
    return list(Withdrawal.objects.filter(account__user_id=user.pk).select_related("bank_account")[:200])


def pending(user: AbstractBaseUser | AnonymousUser) -> dict[str, HeldAction]:
    """The customer's pending held actions by id (for the confirm links)."""
    return {str(held.pk): held for held in actions.pending_actions(user)}


# -- asking -------------------------------------------------------------------------------------------------


def _clean_bank(data: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    clean: dict[str, str] = {}
    for key in sorted(set(data) - set(BANK_FIELDS)):
        errors[str(key)[:40]] = [_("Unknown field.")]
    for name in BANK_FIELDS:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = [_("This field is required.")]
        else:
            clean[name] = value.strip()
    # The demo keeps Japanese account numbers: exactly seven digits.
    number = clean.get("account_number", "")
    if "account_number" in clean and not (len(number) == 7 and number.isascii() and number.isdigit()):
        errors["account_number"] = [_("Enter the seven digits of the account number.")]
    if errors:
        raise MoneyRejected(errors)
    try:
        canonical = actions.clean_params(
            kind=ActionKind.BANK_ACCOUNT_ADD, params={"account": "0", "payee": "0", **clean}
        )
    except actions.ActionInvalid as exc:
        raise MoneyRejected(exc.errors) from None
    # Stored as authguard will compare them when the confirmed action is carried out (spaces squeezed,
    # Unicode normalised): the customer's confirmation must match what the portal keeps.
    return {name: canonical[name] for name in BANK_FIELDS}


def request_bank_account(request: HttpRequest, *, data: dict[str, Any]) -> Requested:
    """Ask to register a bank account: stored ``pending``, held by authguard until the customer's passkey
    confirms exactly these details. Raises :class:`MoneyRejected` or
    :class:`authguard.actions.flow.ActionRefused`."""
    user = request.user
    clean = _clean_bank(data)
    with transaction.atomic():
        account = _account(user, lock=True)
        bank = BankAccount.objects.create(account=account, status=BankAccountStatus.PENDING, **clean)
        outcome = actions.guard(
            request,
            kind=ActionKind.BANK_ACCOUNT_ADD,
            params={"account": str(account.pk), "payee": str(bank.pk), **clean},
            portal_ref=str(bank.pk),
            perform=lambda: _activate(bank),
        )
        if isinstance(outcome, actions.Held):
            bank.confirmation_id = str(outcome.action.pk)
            bank.save(update_fields=["confirmation_id"])
            return Requested(bank, outcome.action)
    bank.refresh_from_db()
    return Requested(bank, None)


def _amount(value: object) -> Decimal:
    # SECURITY: whole yen only, from an int or a string of digits; floats and bools are refused, not rounded.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MoneyRejected({"amount": [_("Enter the amount in whole yen.")]})
    text = str(value).strip()
    if not _YEN_RE.fullmatch(text):
        raise MoneyRejected({"amount": [_("Enter the amount in whole yen.")]})
    try:
        amount = Decimal(text.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise MoneyRejected({"amount": [_("Enter the amount in whole yen.")]}) from None
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise MoneyRejected({"amount": [_("Enter the amount in whole yen.")]})
    if amount < 1 or amount > MAX_WITHDRAWAL:
        raise MoneyRejected(
            {"amount": [_("Enter an amount from ¥1 to ¥%(max)s.") % {"max": f"{MAX_WITHDRAWAL:,}"}]}
        )
    return amount.quantize(Decimal("0.01"))


def request_withdrawal(request: HttpRequest, *, bank_account_id: object, amount: object) -> Requested:
    """Ask to withdraw ``amount`` yen to one of the customer's registered bank accounts: stored ``held``, held
    by authguard until the customer's passkey confirms exactly that amount to exactly that account.

    Raises :class:`MoneyRejected` (bad input, not enough cash, not the customer's account) or
    :class:`authguard.actions.flow.ActionRefused` (the account is in its new-payee hold, no passkey, ...).
    """
    user = request.user
    value = _amount(amount)
    if isinstance(bank_account_id, bool) or not isinstance(bank_account_id, int | str):
        raise MoneyRejected({"bank_account_id": [_("Choose one of your bank accounts.")]})
    with transaction.atomic():
        account = _account(user, lock=True)
        bank = (
            BankAccount.objects.filter(
                pk=int(bank_account_id), account=account, status=BankAccountStatus.ACTIVE
            ).first()
            if re.fullmatch(r"[0-9]{1,11}", str(bank_account_id))  # ASCII digits: "²".isdigit() is True
            else None
        )
        if bank is None:
            raise MoneyRejected({"bank_account_id": [_("Choose one of your registered bank accounts.")]})
        if value > account.cash:
            raise MoneyRejected(
                {
                    "amount": [
                        _("Not enough cash: the account has ¥%(cash)s.") % {"cash": f"{account.cash:,.0f}"}
                    ]
                }
            )
        row = Withdrawal.objects.create(
            account=account, bank_account=bank, amount=value, status=WithdrawalStatus.HELD
        )
        outcome = actions.guard(
            request,
            kind=ActionKind.WITHDRAWAL,
            params={
                "account": str(account.pk),
                "payee": str(bank.pk),
                "amount": str(value),
                "currency": "JPY",
            },
            portal_ref=str(row.pk),
            perform=lambda: _pay(row),
        )
        if isinstance(outcome, actions.Held):
            row.confirmation_id = str(outcome.action.pk)
            row.save(update_fields=["confirmation_id"])
            return Requested(row, outcome.action)
    row.refresh_from_db()
    return Requested(row, None)


# -- carrying out (AUTHGUARD_ACTION_EXECUTOR) ------------------------------------------------------------


def _activate(bank: BankAccount) -> str:
    bank.status = BankAccountStatus.ACTIVE
    bank.activated_at = timezone.now()
    bank.save(update_fields=["status", "activated_at"])
    return str(bank.pk)


def _pay(row: Withdrawal) -> str:
    """Pay a held withdrawal out of the account's cash, under the account's row lock (cash re-checked)."""
    account = Account.objects.select_for_update().get(pk=row.account_id)
    if account.cash < row.amount:
        raise actions.ActionNotExecutable(_("Not enough cash for this withdrawal any more."))
    account.cash -= row.amount
    account.save(update_fields=["cash"])
    now = timezone.now()
    Withdrawal.objects.filter(pk=row.pk).update(status=WithdrawalStatus.COMPLETED, executed_at=now)
    return str(row.pk)


class MoneyExecutor:
    """``AUTHGUARD_ACTION_EXECUTOR``: carries out a confirmed withdrawal or bank-account registration from
    authguard's *stored* action; the portal's pending copy must still describe exactly that action."""

    def execute(self, action: HeldAction) -> str:
        stored = actions.stored_action(action)
        params = stored["params"]
        if action.kind == ActionKind.WITHDRAWAL:
            row = (
                Withdrawal.objects.select_for_update()
                .select_related("account", "bank_account")
                .filter(pk=int(action.portal_ref or 0))
                .first()
            )
            # SECURITY: the portal's copy must be the withdrawal the customer confirmed, or nothing moves.
            if (
                row is None
                or row.status != WithdrawalStatus.HELD
                or row.account.user_id != action.user_id
                or str(row.account_id) != params["account"]
                or str(row.bank_account_id) != params["payee"]
                or row.amount != Decimal(params["amount"])
                or row.bank_account.status != BankAccountStatus.ACTIVE
            ):
                raise actions.ActionNotExecutable(_("The withdrawal does not match the one you confirmed."))
            digest = actions.payee_digest(user=row.account.user, details=_details(row.bank_account))
            if digest != stored["payee"]["digest"]:
                raise actions.ActionNotExecutable(_("The bank account was changed after you confirmed."))
            return _pay(row)
        if action.kind == ActionKind.BANK_ACCOUNT_ADD:
            bank = (
                BankAccount.objects.select_for_update()
                .select_related("account")
                .filter(pk=int(action.portal_ref or 0))
                .first()
            )
            if (
                bank is None
                or bank.status != BankAccountStatus.PENDING
                or bank.account.user_id != action.user_id
                or str(bank.pk) != params["payee"]
                or any(getattr(bank, name) != params[name] for name in BANK_FIELDS)
            ):
                raise actions.ActionNotExecutable(_("The bank account does not match the one you confirmed."))
            return _activate(bank)
        raise actions.ActionNotExecutable(_("The demo portal cannot carry this out."))

    def release(self, action: HeldAction, *, status: str) -> None:
        reason = action.failure or str(HeldAction.Status(status).label)
        ref = int(action.portal_ref) if action.portal_ref.isascii() and action.portal_ref.isdigit() else 0
        if action.kind == ActionKind.WITHDRAWAL:
            new = {
                HeldAction.Status.EXPIRED: WithdrawalStatus.EXPIRED,
                HeldAction.Status.FAILED: WithdrawalStatus.FAILED,
            }.get(status, WithdrawalStatus.CANCELLED)
            Withdrawal.objects.filter(pk=ref, status=WithdrawalStatus.HELD).update(
                status=new, status_reason=reason[:200]
            )
        elif action.kind == ActionKind.BANK_ACCOUNT_ADD:
            BankAccount.objects.filter(pk=ref, status=BankAccountStatus.PENDING).update(
                status=BankAccountStatus.CANCELLED
            )


action_executor = MoneyExecutor()


def _details(bank: BankAccount) -> dict[str, str]:
    return {name: getattr(bank, name) for name in BANK_FIELDS}


# -- JSON API -----------------------------------------------------------------------------------------------


def _bank_json(bank: BankAccount) -> dict[str, Any]:
    return {
        "bank_account_id": bank.pk,
        "bank_code": bank.bank_code,
        "bank_name": bank.bank_name,
        "branch_code": bank.branch_code,
        "account_type": bank.account_type,
        "account_number": bank.masked_number,
        "holder_name": bank.holder_name,
        "status": bank.status,
        "available_at": getattr(bank, "available_at", None),
    }


def _withdrawal_json(row: Withdrawal) -> dict[str, Any]:
    return {
        "withdrawal_id": row.pk,
        "bank_account_id": row.bank_account_id,
        "amount": row.amount,
        "status": row.status,
        "created_at": row.created_at,
        "executed_at": row.executed_at,
    }


def _held_answer(held: HeldAction, **fields: Any) -> HttpResponse:
    return answer("held", 202, confirmation=actions.action_json(held), **fields)


def _refused(exc: actions.ActionError) -> ApiError:
    extra: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, actions.PayeeOnHold):
        extra["available_at"] = exc.available_at
    if isinstance(exc, actions.ActionInvalid):
        return invalid(exc.errors or {"body": [exc.message]})
    return ApiError(exc.http_status, "refused", exc.message, **extra)


@json_view("GET", "POST")
def api_bank_accounts(request: HttpRequest) -> HttpResponse:
    """``GET /api/bank-accounts``: the customer's bank accounts. ``POST`` ``{bank_code, bank_name,
    branch_code, account_type, account_number, holder_name}``: 202 ``held`` until confirmed with the
    passkey."""
    if request.method == "GET":
        return answer("ok", bank_accounts=[_bank_json(b) for b in bank_accounts(request.user)])
    data = read_json_object(request)
    try:
        requested = request_bank_account(request, data=data)
    except MoneyRejected as rejected:
        raise invalid(rejected.errors) from None
    except actions.ActionError as exc:
        raise _refused(exc) from None
    bank = requested.row
    assert isinstance(bank, BankAccount)
    if requested.held is not None:
        return _held_answer(requested.held, bank_account=_bank_json(bank))
    return answer("ok", 201, bank_account=_bank_json(bank))


@json_view("GET", "POST")
def api_withdrawals(request: HttpRequest) -> HttpResponse:
    """``GET /api/withdrawals``: the customer's withdrawals and cash. ``POST`` ``{"bank_account_id": int,
    "amount": "500000"}``: 202 ``held`` until confirmed with the passkey; 403 ``refused`` with ``code``
    ``payee_on_hold`` (and ``available_at``) for an account registered too recently."""
    if request.method == "GET":
        cash = Account.objects.filter(user_id=request.user.pk).values_list("cash", flat=True).first()
        return answer("ok", cash=cash, withdrawals=[_withdrawal_json(w) for w in withdrawals(request.user)])
    data = read_json_object(request)
    unknown = sorted(set(data) - WITHDRAWAL_FIELDS)
    if unknown:
        raise invalid({key[:40]: [_("Unknown field.")] for key in unknown})
    try:
        requested = request_withdrawal(
            request, bank_account_id=data.get("bank_account_id"), amount=data.get("amount")
        )
    except MoneyRejected as rejected:
        raise invalid(rejected.errors) from None
    except actions.ActionError as exc:
        raise _refused(exc) from None
    row = requested.row
    assert isinstance(row, Withdrawal)
    if requested.held is not None:
        return _held_answer(requested.held, withdrawal=_withdrawal_json(row))
    return answer("ok", 201, withdrawal=_withdrawal_json(row))


# -- HTML pages ---------------------------------------------------------------------------------------------


class WithdrawalForm(forms.Form):
    """Cash to one of the customer's registered bank accounts."""

    bank_account = forms.TypedChoiceField(label=gettext_lazy("To bank account"), coerce=int)
    amount = forms.IntegerField(label=gettext_lazy("Amount (¥)"), min_value=1, max_value=int(MAX_WITHDRAWAL))

    def __init__(self, *args: Any, accounts: list[BankAccount], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bank_account"].choices = [
            (b.pk, str(b) + f" {b.holder_name}") for b in accounts if b.status == BankAccountStatus.ACTIVE
        ]


class BankAccountForm(forms.Form):
    """A Japanese bank account: bank and branch codes, account type and number, holder name."""

    bank_code = forms.RegexField(label=gettext_lazy("Bank code (4 digits)"), regex=r"^\d{4}$", max_length=4)
    bank_name = forms.CharField(label=gettext_lazy("Bank name"), max_length=60)
    branch_code = forms.RegexField(
        label=gettext_lazy("Branch code (3 digits)"), regex=r"^\d{3}$", max_length=3
    )
    account_type = forms.ChoiceField(label=gettext_lazy("Account type"), choices=BankAccountType.choices)
    account_number = forms.RegexField(
        label=gettext_lazy("Account number (7 digits)"), regex=r"^\d{7}$", max_length=7
    )
    holder_name = forms.CharField(
        label=gettext_lazy("Account holder (as registered at the bank)"), max_length=60
    )


def _add_errors(form: forms.Form, errors: dict[str, list[str]]) -> None:
    for field, messages_ in errors.items():
        name = {"bank_account_id": "bank_account"}.get(field, field)
        form.add_error(name if name in form.fields else None, ValidationError(messages_))


def _confirm_url(held: HeldAction) -> str:
    try:
        return reverse("authguard:action-confirm", args=[held.pk])
    except NoReverseMatch:  # pragma: no cover - authguard's URLs are mounted in the demo
        return reverse("brokerage:money")


@require_http_methods(["GET", "POST"])
@login_required
def money(request: HttpRequest) -> HttpResponse:
    """``/money/``: cash, bank accounts (and when each can receive money), withdrawals; POST a withdrawal."""
    accounts = bank_accounts(request.user)
    status = 200
    if request.method == "POST":
        form = WithdrawalForm(request.POST, accounts=accounts)
        if form.is_valid():
            try:
                requested = request_withdrawal(
                    request,
                    bank_account_id=form.cleaned_data["bank_account"],
                    amount=form.cleaned_data["amount"],
                )
            except MoneyRejected as rejected:
                _add_errors(form, rejected.errors)
            except actions.ActionInvalid as exc:
                _add_errors(form, exc.errors or {"amount": [exc.message]})
            except actions.ActionError as exc:
                form.add_error(None, exc.message)
            else:
                if requested.held is not None:
                    messages.warning(
                        request, _("Confirm the withdrawal with your passkey. Nothing has moved yet.")
                    )
                    return redirect(_confirm_url(requested.held))
                messages.success(request, _("The withdrawal was paid."))
                return redirect("brokerage:money")
        status = 400
    else:
        form = WithdrawalForm(accounts=accounts)
    account = Account.objects.filter(user_id=request.user.pk).first()
    waiting = pending(request.user)
    rows = withdrawals(request.user)
    for row in [*accounts, *rows]:
        held = waiting.get(row.confirmation_id)
        row.confirm_url = actions.action_url(held) if held is not None else None  # type: ignore[union-attr]
    context = {
        "form": form,
        "cash": account.cash if account else Decimal(0),
        "bank_accounts": accounts,
        "withdrawals": rows,
        "hold_hours": actions.hold_hours(),
        "now": timezone.now(),
    }
    return render(request, "brokerage/money_overview.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def add_bank_account(request: HttpRequest) -> HttpResponse:
    """``/money/bank-accounts/add/``: register a bank account (held until confirmed with the passkey)."""
    status = 200
    if request.method == "POST":
        form = BankAccountForm(request.POST)
        if form.is_valid():
            try:
                requested = request_bank_account(request, data=dict(form.cleaned_data))
            except MoneyRejected as rejected:
                _add_errors(form, rejected.errors)
            except actions.ActionError as exc:
                form.add_error(None, exc.message)
            else:
                if requested.held is not None:
                    messages.warning(
                        request,
                        _("Confirm the new bank account with your passkey. It is not registered yet."),
                    )
                    return redirect(_confirm_url(requested.held))
                messages.success(request, _("The bank account was registered."))
                return redirect("brokerage:money")
        status = 400
    else:
        form = BankAccountForm()
    return render(
        request,
        "brokerage/money_bank_account.html",
        {"form": form, "hold_hours": actions.hold_hours()},
        status=status,
    )
