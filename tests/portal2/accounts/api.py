"""Portal two's REST API (Django REST framework): session and token authentication, authguard's permission
classes, and order entry through the order guard."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authguard.drf import Answer, NotPending, StepUpRequired, TokenAuthentication, read_body
from authguard.orders.guard import OrderDenied, confirmation_json

from . import trading
from .models import Order


class PortalView(APIView):
    """The portal's API base: browser sessions and authguard's token authentication, never pending."""

    authentication_classes = [SessionAuthentication, TokenAuthentication]
    permission_classes = [NotPending]


class Portfolio(PortalView):
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(
            {
                "status": "ok",
                "email": request.user.get_username(),
                "holdings": trading.holdings_of(request.user),
            }
        )


class Orders(PortalView):
    """``GET``: the customer's orders. ``POST {"side", "symbol", "quantity"}``: 201 placed · 202 held with
    ``confirmation`` · 400 invalid · 403 denied."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rows = Order.objects.filter(account__user_id=request.user.pk).order_by("pk")
        return Response(
            {
                "status": "ok",
                "orders": [
                    {
                        "order_id": o.pk,
                        "side": o.side,
                        "symbol": o.symbol,
                        "quantity": o.quantity,
                        "status": o.status,
                    }
                    for o in rows
                ],
            }
        )

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            data = read_body(request)
            draft = trading.validate(request.user, data)
            order, held = trading.submit(request._request, request.user, draft)
        except trading.OrderInvalid as error:
            return Response({"status": "invalid", "errors": error.errors}, status=400)
        except Answer as error:  # a malformed body: authguard.drf's own 4xx
            return error.response()
        except OrderDenied:
            return Response({"status": "denied", "message": "This order cannot be placed."}, status=403)
        if held is None:
            return Response({"status": "placed", "order_id": order.pk}, status=201)
        return Response(
            {"status": "held", "order_id": order.pk, "confirmation": confirmation_json(held)}, status=202
        )


class Withdraw(PortalView):
    """A sensitive call: a fresh second factor (``@step_up_required`` for DRF)."""

    permission_classes = [StepUpRequired]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"status": "ok"})
