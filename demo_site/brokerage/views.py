"""The brokerage's HTML pages. Thin: parse the request, call :mod:`.services`, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from authguard.actions import flow as actions
from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential, Throttled
from authguard.login import lockout, unlocking
from authguard.orders.guard import OrderDenied, confirmation_json, pending_orders

from . import services
from .forms import CancelUnlockForm, OrderForm, UnlockWithCodesForm


@require_safe
@login_required
def portfolio(request: HttpRequest) -> HttpResponse:
    """Cash, holdings and their yen values, and first whatever waits for the customer's confirmation (held
    orders and held requests), so that nothing held is forgotten until it expires."""
    held_orders = [
        {"held": held, "summary": confirmation_json(held)["summary"]} for held in pending_orders(request.user)
    ]
    return render(
        request,
        "brokerage/portfolio.html",
        {
            "portfolio": services.portfolio(request.user),
            "fx_usd_jpy": services.USD_JPY,
            "held_orders": held_orders,
            "held_actions": actions.pending_actions(request.user),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def trade(request: HttpRequest) -> HttpResponse:
    """Order entry through authguard's order guard: a placed order redirects to the history, a held one to
    its confirmation page, and a refused one says why and changes nothing."""
    if request.method == "POST":
        form = OrderForm(request.POST)
        if form.is_valid():
            try:
                submitted = services.submit_order(request, **form.cleaned_data)
            except services.OrderRejected as rejected:
                form.add_rejection(rejected)
            except OrderDenied as denied:
                form.add_error(None, denied.message)
            else:
                order = submitted.order
                if submitted.confirmation is not None:
                    messages.warning(
                        request,
                        _("Order %(id)s is on hold until you confirm it: %(summary)s")
                        % {"id": order.pk, "summary": confirmation_json(submitted.confirmation)["summary"]},
                    )
                    return redirect("authguard:confirm", submitted.confirmation.pk)
                messages.success(
                    request,
                    _("Order %(id)s placed: %(side)s %(quantity)s × %(symbol)s at %(price)s.")
                    % {
                        "id": order.pk,
                        "side": order.get_side_display(),
                        "quantity": f"{order.quantity:,}",
                        "symbol": order.instrument.symbol,
                        "price": services.format_money(order.price, order.currency),
                    },
                )
                return redirect("brokerage:orders")
    else:
        # Links such as "Sell" on the portfolio page preselect the side and instrument.
        form = OrderForm(
            initial={"side": request.GET.get("side", "buy"), "symbol": request.GET.get("symbol", "")}
        )
    return render(
        request,
        "brokerage/trade.html",
        {"form": form, "portfolio": services.portfolio(request.user), "fx_usd_jpy": services.USD_JPY},
    )


@require_safe
@login_required
def orders(request: HttpRequest) -> HttpResponse:
    """The customer's orders, newest first; held ones link to their confirmation and can be cancelled."""
    rows = list(services.order_history(request.user)[:200])
    confirmations = services.pending_confirmations(request.user, rows)
    for order in rows:
        order.confirmation = confirmations.get(order.pk)  # type: ignore[attr-defined]
    return render(request, "brokerage/orders.html", {"orders": rows})


@require_safe
@login_required
def instruments(request: HttpRequest) -> HttpResponse:
    """What the portal trades, with prices and average daily volumes."""
    return render(
        request,
        "brokerage/instruments.html",
        {"instruments": services.list_instruments(), "fx_usd_jpy": services.USD_JPY},
    )


@require_safe
@login_required
def security(request: HttpRequest) -> HttpResponse:
    """Security settings live in authguard (passkeys, authenticator apps, devices): redirect there."""
    try:
        return redirect(reverse("authguard:security"))
    except NoReverseMatch:
        return render(request, "brokerage/security.html")


# -- a locked account's ways back in (no sign-in: the account is locked) ------------------------------------


def _user_named(username: str) -> object | None:
    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        return None


@never_cache
@require_http_methods(["GET", "POST"])
def unlock_with_codes(request: HttpRequest) -> HttpResponse:
    """A locked customer without a passkey: an authenticator code plus a recovery code ask for the unlock,
    which takes effect after ``AUTHGUARD_UNLOCK_WAIT_HOURS`` unless the customer cancels it."""
    form = UnlockWithCodesForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid() and app_settings.UNLOCK_WAIT_HOURS is None:
        # SECURITY: the way is off for everyone (the JSDA preset): one answer for every name, none looked up
        # (red team, round thirteen: 403 for a customer, 400 for nobody); a malformed form is still a 400
        # first, as the API answers it (round fourteen).
        form.add_error(
            None, _("This account cannot be unlocked this way. Use your passkey or call customer support.")
        )
        status = 403
    elif request.method == "POST":
        status = 400
        if form.is_valid():
            user = _user_named(form.cleaned_data["username"])
            try:
                if user is None:
                    raise InvalidCredential(
                        code="wrong_code"
                    )  # SECURITY: unknown users look like wrong codes
                pending = unlocking.request_unlock_with_codes(
                    user,
                    totp_code=form.cleaned_data["totp_code"],
                    recovery_code=form.cleaned_data["recovery_code"],
                    request=request,
                )
            except lockout.NotLocked:
                form.add_error(None, _("This account is not locked. You can sign in."))
                status = 409
            except lockout.UnlockUnavailable:
                form.add_error(
                    None,
                    _("This account cannot be unlocked this way. Use your passkey or call customer support."),
                )
                status = 403
            except Throttled as error:
                form.add_error(None, error.message)
                status = 429
            except InvalidCredential:
                form.add_error(None, _("The codes are not correct, or this account is not locked."))
            else:
                messages.success(
                    request,
                    _(
                        "Your account will be unlocked at %(time)s. We sent you a message with a reference "
                        "to cancel this if it was not you."
                    )
                    % {"time": formats.date_format(pending.due_at, "DATETIME_FORMAT")},
                )
                return redirect("login")
    return render(
        request,
        "registration/unlock_codes.html",
        {"form": form, "wait_hours": app_settings.UNLOCK_WAIT_HOURS},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def cancel_unlock(request: HttpRequest) -> HttpResponse:
    """Cancel a waiting unlock with the reference from the message; the account stays locked."""
    form = CancelUnlockForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            user = _user_named(form.cleaned_data["username"])
            try:
                if user is None:
                    raise InvalidCredential(code="wrong_reference")
                unlocking.cancel_unlock_request(user, reference=form.cleaned_data["reference"])
            except InvalidCredential:
                form.add_error("reference", _("That reference is not correct."))
            else:
                messages.success(request, _("The unlock was cancelled. Your account stays locked."))
                return redirect("login")
    return render(request, "registration/unlock_cancel.html", {"form": form}, status=status)
