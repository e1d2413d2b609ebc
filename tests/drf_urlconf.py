"""The demo's URLs plus a portal's Django REST framework API, the way brokerages write them: DRF's token
endpoint swapped for authguard's, and account views behind authguard's permission classes, for
:mod:`tests.test_drf` (issue 14, item 1)."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework import authentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authguard.drf import NotPending, StepUpRequired, TokenAuthentication

AUTH = [authentication.SessionAuthentication, TokenAuthentication]


class Portfolio(APIView):
    """Read access to the account: signed in and past step-up."""

    authentication_classes = AUTH
    permission_classes = [NotPending]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"status": "ok", "user": request.user.get_username()})


class Withdraw(APIView):
    """A sensitive action: a fresh second factor, any method (``@step_up_required``)."""

    authentication_classes = AUTH
    permission_classes = [StepUpRequired]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"status": "ok"})


class AddPayee(APIView):
    """A passkey within two minutes only (``@step_up_required(methods=["passkey"], max_age=120)``)."""

    authentication_classes = AUTH
    permission_classes = [StepUpRequired.require(methods=["passkey"], max_age=120)]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"status": "ok"})


urlpatterns = [
    path("api/auth/", include("authguard.drf")),
    path("drf/portfolio", Portfolio.as_view(), name="drf-portfolio"),
    path("drf/withdraw", Withdraw.as_view(), name="drf-withdraw"),
    path("drf/payees", AddPayee.as_view(), name="drf-payees"),
    path("", include("demo_site.urls")),
]
