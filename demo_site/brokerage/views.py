"""The brokerage's HTML pages. Thin: parse the request, call :mod:`.services`, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from authguard.orders import OrderDenied, confirmation_json

from . import services
from .forms import OrderForm


@require_safe
@login_required
def portfolio(request: HttpRequest) -> HttpResponse:
    """Cash, holdings and their yen values."""
    return render(
        request,
        "brokerage/portfolio.html",
        {"portfolio": services.portfolio(request.user), "fx_usd_jpy": services.USD_JPY},
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
