"""Red team round forty-one (c): under ``ATOMIC_REQUESTS`` a portal's login view that answers a wrong
password with an exception rolls the failure back, and the account lock never counts it.

The most common token logins do exactly that: SimpleJWT's ``TokenObtainPairView``, dj-rest-auth's login
serializer and DRF's stock ``AuthTokenSerializer`` call ``authenticate()`` and raise ``AuthenticationFailed``
or ``ValidationError`` when it returns None; DRF's exception handler then marks the request's transaction
for rollback (``set_rollback``). The failure's ``LoginEvent`` and its count on ``AccountLock`` were written in
that transaction and vanished with it: only the hourly throttle (ten an hour) was left against the guesses,
and the console saw none. Fixed: the failure is written again after the view when the view's transaction
did not keep it (``authguard.durable.keep_through_rollback``).

Portal two's settings (an e-mail user model, DRF installed); the view below is what a portal writes with
SimpleJWT, nothing of authguard replaced; real passwords, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import authenticate
from django.urls import include, path
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, Outcome

from ..conftest import IP_OSAKA, IP_TOKYO
from .support import PASSWORD, api

EMAIL = "alice@example.jp"


class JwtStyleLogin(APIView):
    """A portal's token login as SimpleJWT's serializer writes it: ``authenticate()``, and an exception for
    a wrong password."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        user = authenticate(
            request._request, username=request.data.get("email"), password=request.data.get("password")
        )
        if user is None:
            raise AuthenticationFailed("No active account found with the given credentials")
        return Response({"access": "a-token-for-" + user.get_username()})


urlpatterns = [
    path("api/v1/jwt/", JwtStyleLogin.as_view()),
    path("", include("tests.portal2.urls")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]


def _guess(password: str, ip: str = IP_TOKYO) -> Any:
    return api(ip).post("/api/v1/jwt/", {"email": EMAIL, "password": password}, format="json")


@pytest.mark.usefixtures("atomic_requests")
@pytest.mark.battery(2)
def test_wrong_passwords_answered_by_an_exception_still_lock_the_account(user_factory: Any) -> None:
    """Secure: ten wrong passwords at a portal's token login lock the account, whether the view answers
    them with a response or an exception that rolls its transaction back; each is in the console.

    The gang sends five guesses an hour (under the hourly throttle of ten) from two places; each is
    answered 403 by DRF's handler, which rolls the view's transaction back."""
    alice = user_factory("alice")
    start = timezone.now()
    for i in range(10):
        with time_machine.travel(start + timedelta(minutes=13 * i), tick=False):
            answer = _guess(f"guess-{i}", [IP_TOKYO, IP_OSAKA][i % 2])
            assert answer.status_code == 403, answer.content  # DRF: no authenticator to challenge
    lock = AccountLock.objects.filter(user=alice).first()
    events = LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count()
    assert lock is not None and lock.failures >= 10 and lockout.is_locked(alice), (
        f"failures counted: {lock.failures if lock else 0}; events in the console: {events}"
    )
    assert events == 10
    with time_machine.travel(start + timedelta(hours=3), tick=False):
        right = _guess(PASSWORD)
    assert right.status_code == 403, right.content  # the right password is refused on the locked account
    assert not LoginEvent.objects.filter(user=alice, password_ok=True).exists()


@pytest.mark.usefixtures("atomic_requests")
def test_held_a_failure_the_view_kept_is_counted_once(user_factory: Any) -> None:
    """The control: a view whose transaction commits (authguard's own JSON login, which answers with a
    response) counts each failure once, not twice (the write after the view sees it kept)."""
    from .support import browser, json_login

    alice = user_factory("alice")
    for i in range(3):
        assert json_login(browser(IP_TOKYO), EMAIL, f"guess-{i}").status_code == 401
    assert AccountLock.objects.get(user=alice).failures == 3
    assert LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count() == 3
