"""Red team round forty-two (a): under ``ATOMIC_REQUESTS`` a portal's own step-up endpoint that answers a
wrong second factor with an exception rolls back every count authguard keeps against guessing it.

docs/step-up.md: "Every front end (the HTML pages, the JSON API, DRF's step-up exchange) steps up through
the same three functions of ``authguard.login.stepup``": ``check_step_up_allowed``, ``verify_step_up_code``
and ``finish_step_up``; docs/drf.md names them for django-ninja and SimpleJWT front ends, and
docs/factor-lifecycle.md hands ``factors.verify_totp(user, code, request=request)`` to portals ("pass the
request: throttling and the NIST count need it"). A portal's mobile API (DRF) does exactly that and, as
DRF views do, answers a wrong code with ``ValidationError``: DRF's exception handler marks the view's
transaction for rollback (``set_rollback``) and every count of the failure goes with it: the factor
throttle's scopes (``FactorThrottle``, in the database), the account lock's run (``AccountLock``), the
factor's own NIST count (``FactorRecord``) and django-otp's back-off. Round forty-one kept a wrong
*password* through that rollback; a wrong *code* was not kept. Fixed: the lock's count
(``lockout.record_failure``), the factor throttle's scopes (``throttles.note_throttle_failure``) and the
NIST count (``base.record_factor_failure``) are written again after the view when its rollback undid them
(``durable.outlive_rollback``, which reads Django's commit hooks to tell).

The thief has only her password (phished). His sign-in from a VPS is held for step-up; he then guesses her
six-digit authenticator code at the portal's endpoint without limit: no throttle, no lock, no notice.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import include, path
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authguard.conf import app_settings
from authguard.decorators import step_up_exempt
from authguard.exceptions import Throttled
from authguard.login import lockout, stepup
from authguard.models import AccountLock, FactorThrottle

from .conftest import IP_SG_VPS, UA_CHROME_WIN, api_post, totp_token, wrong_code


class PortalStepUpTotp(APIView):
    """The portal's own step-up endpoint for its app, written with the three documented functions; a wrong
    code is a ``ValidationError`` and a throttled one DRF's ``Throttled``, as DRF views answer."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]  # a pending session is signed in: it must reach this view

    def post(self, request: Request) -> Response:
        http = request._request
        try:
            stepup.check_step_up_allowed(request.user, method="totp", request=http)
        except stepup.StepUpUnavailable as refused:
            raise exceptions.PermissionDenied(str(refused.message)) from None
        try:
            device = stepup.verify_step_up_code(
                http, user=request.user, method="totp", code=request.data.get("code")
            )
        except Throttled as throttled:
            raise exceptions.Throttled(wait=throttled.retry_after) from None
        if device is None:
            raise exceptions.ValidationError({"code": ["That code is not correct."]})
        stepup.finish_step_up(http, device=device, method="totp")
        return Response({"status": "ok"})


urlpatterns = [
    path("app/step-up/totp", step_up_exempt(PortalStepUpTotp.as_view())),
    path("", include("demo_site.urls")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]


@pytest.fixture
def thief(alice_with_totp: Any, browser_at: Any) -> Any:
    """The thief's browser on a VPS in Singapore, signed in with her phished password: held for step-up."""
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    client.sign_in("alice")
    assert client.session["_authguard"]["s"] == "pending"
    return client


def _guess(client: Any, code: str) -> Any:
    return client.post("/app/step-up/totp", {"code": code}, content_type="application/json")


@pytest.mark.usefixtures("atomic_requests")
@pytest.mark.battery(2)
def test_wrong_codes_answered_by_an_exception_still_throttle_and_lock(
    thief: Any, alice_with_totp: Any, clock: Any
) -> None:
    """Secure: wrong authenticator codes posted to a portal's own step-up endpoint built on
    ``verify_step_up_code`` are throttled and lock the account after ``AUTHGUARD_LOCKOUT_FAILURES``, whether
    the view answers them with a response or with an exception that rolls its transaction back.

    The thief posts 30 wrong codes, a minute apart (past each back-off a stranger's failures would earn).
    Each is answered 400 by DRF, which rolls the view's transaction back."""
    alice = alice_with_totp
    answers = []
    for _ in range(30):
        answers.append(_guess(thief, wrong_code(alice.totp)).status_code)
        clock.shift(60)
    lock = AccountLock.objects.filter(user=alice).first()
    throttles = list(FactorThrottle.objects.values_list("key", "failures"))
    assert lockout.is_locked(alice), (
        f"answers: {answers}; lock failures counted: {lock.failures if lock else 0} of "
        f"{app_settings.LOCKOUT_FAILURES}; factor throttle scopes: {throttles}"
    )
    # And the right code, relayed or guessed at last, finishes nothing on the locked account.
    assert _guess(thief, totp_token(alice.totp)).status_code == 403
    assert thief.session.get("_authguard", {}).get("s") != "verified"  # the lock ended his session


@pytest.mark.usefixtures("atomic_requests")
def test_held_authguards_own_step_up_api_counts_under_atomic_requests(
    thief: Any, alice_with_totp: Any, clock: Any
) -> None:
    """The control: authguard's own JSON step-up answers a wrong code with a response, so the view's
    transaction commits: the same 30 guesses lock the account."""
    alice = alice_with_totp
    for _ in range(30):
        api_post(thief, "api-step-up-totp", {"code": wrong_code(alice.totp)})
        clock.shift(60)
    assert lockout.is_locked(alice)
