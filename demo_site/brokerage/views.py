"""The brokerage's HTML pages. Thin: parse the request, call :mod:`.services`, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

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
    """Order entry: a placed order redirects to the history; a refused one says why and changes nothing."""
    if request.method == "POST":
        form = OrderForm(request.POST)
        if form.is_valid():
            try:
                order = services.place_order(request.user, **form.cleaned_data)
            except services.OrderRejected as rejected:
                form.add_rejection(rejected)
            else:
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
    """The customer's orders, newest first."""
    return render(request, "brokerage/orders.html", {"orders": services.order_history(request.user)[:200]})


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
    """Security settings: passkeys and authenticator apps (filled in by authguard's work)."""
    return render(request, "brokerage/security.html")
