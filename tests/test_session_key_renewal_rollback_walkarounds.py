"""Red team round forty-seven: the record move of a step-up (``sessions.records.renew_record``, round
forty-six) is written in the view's transaction. Round forty-six made a *sign-in's* record outlive the
view's rollback (``record_session`` with ``durable.outlive_rollback``); the *renewal's* move has no such
second write.

docs/faults.md: a portal's own step-up endpoint built on ``verify_step_up_code`` and ``finish_step_up``
(DRF, as docs/drf.md suggests for its app) answers errors with exceptions, and DRF's exception handler marks
the view's transaction for rollback under ``ATOMIC_REQUESTS``. The portal keeps sessions in the cache
(Redis in production: a server-side engine, as authguard.W111 asks), which no rollback touches.

Thief: her password and one relayed TOTP code (a phishing kit), as in the round-46 renewal tests.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from django.urls import include, path
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authguard.decorators import step_up_exempt
from authguard.login import stepup
from authguard.models import SessionRecord

from .conftest import HANAKO_PASSWORD, IP_OSAKA, OrderApi, of_long_standing, totp_token
from .factor_scenarios import old_totp
from .test_session_key_renewal_portals_walkarounds import _her_sign_out_everywhere


class ConfirmWithdrawal(APIView):
    """The portal's app endpoint "withdraw cash, confirmed with your authenticator code": the three
    documented step-up functions, then the withdrawal itself, whose checks raise ``ValidationError``."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]  # a pending session is signed in: it must reach this view

    def post(self, request: Request) -> Response:
        http = request._request
        try:
            stepup.check_step_up_allowed(request.user, method="totp", request=http)
        except stepup.StepUpUnavailable as refused:
            raise exceptions.PermissionDenied(str(refused.message)) from None
        device = stepup.verify_step_up_code(
            http, user=request.user, method="totp", code=request.data.get("code")
        )
        if device is None:
            raise exceptions.ValidationError({"code": ["That code is not correct."]})
        stepup.finish_step_up(http, device=device, method="totp")
        try:
            amount = Decimal(str(request.data.get("amount")))
        except InvalidOperation:
            raise exceptions.ValidationError({"amount": ["Enter an amount."]}) from None
        if not amount.is_finite() or amount <= 0:
            raise exceptions.ValidationError({"amount": ["Enter an amount."]})
        return Response({"status": "ok", "withdrawn": str(amount)})


urlpatterns = [
    path("app/withdraw", step_up_exempt(ConfirmWithdrawal.as_view())),
    path("", include("demo_site.urls")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]


@pytest.fixture
def portal(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # Redis in production (W111)
    settings.AUTHGUARD_LOCKOUT_FAILURES = None


def _thief_steps_up_through(hanako: Any, totp_factory: Any, amount: str) -> OrderApi:
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    # The relayed code, and an amount the withdrawal's own check refuses (a blank one).
    thief.post("/app/withdraw", {"code": totp_token(hanako.totp), "amount": amount})
    assert thief.client.session.get("_authguard", {}).get("s") == "verified"
    return thief


@pytest.mark.usefixtures("portal", "atomic_requests")
def test_a_step_up_whose_view_then_raises_outlives_her_sign_out_everywhere(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: "sign out everywhere else" ends the thief's session however the view that stepped it up
    answered.

    The thief signs in with her password (held) and posts her relayed code to the portal's withdrawal
    endpoint with a blank amount. ``finish_step_up`` verifies his session under a new key and moves the
    record to it; the amount check then raises ``ValidationError`` and DRF rolls the view's transaction back:
    the old key's record is back, the new key's is gone. The cache kept the new key, verified. She signs in
    at home, sees an Osaka sign-in she does not know and signs out everywhere else: the record names a key
    that no longer exists; his is never ended."""
    thief = _thief_steps_up_through(hanako, totp_factory, amount="")
    his_key = thief.client.cookies["sessionid"].value
    # Fixed: the move is written again after the view's rollback (durable.outlive_rollback).
    assert SessionRecord.objects.filter(session_key=his_key).exists()
    clock.shift(10 * 60)
    _her_sign_out_everywhere(hanako)
    clock.shift(60)
    after = thief.get("/api/portfolio")
    assert after.status_code != 200, after.content[:120]


@pytest.mark.usefixtures("portal", "atomic_requests")
def test_held_a_step_up_whose_view_answers_is_ended_by_her_sign_out_everywhere(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The control: the same step-up with a valid amount commits the move; her sign-out ends his session."""
    thief = _thief_steps_up_through(hanako, totp_factory, amount="1000")
    clock.shift(10 * 60)
    _her_sign_out_everywhere(hanako)
    clock.shift(60)
    assert thief.get("/api/portfolio").status_code != 200
