"""Red team round forty-two (a): what else of a sign-in a portal view's rollback takes away under
``ATOMIC_REQUESTS``, after round forty-one kept a wrong password's event and count through it.

1. ``authenticate()`` without a request. A DRF serializer written the way countless tutorials write it
   (``authenticate(username=..., password=...)``, no ``request=``) and ``ValidationError`` on None.
   docs/interfaces.md: "a failed ``authenticate()`` without a request counts towards the account lock (it
   cannot be throttled per address)". It is counted (``requestless.note_failure``) in the view's
   transaction, which DRF then rolls back: no throttle and no lock at all.
2. A portal's token login that calls ``password_login`` (docs/integration.md: "API views that sign users in
   themselves call ``password_login``") and answers ``step_up_required`` with a DRF exception (its own
   ``APIException`` with status 401) on a cache session engine. The pending session survives (it is saved
   after the view), its login event does not: the thief steps up with the one code he relayed, and the
   customer is never told of the sign-in from a new device in another country; the console shows no
   sign-in at all.
3. The same view, a copy of her device cookie: its warning to her ("your computer leaks its browser data")
   went with the event.

Fixed: the lock's count and every login event (with its copied-cookie warning) are written again after
the view, under the same id, when its rollback undid them (``durable.outlive_rollback``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import authenticate, login
from django.urls import include, path
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authguard.conf import app_settings
from authguard.login import lockout
from authguard.login.flow import password_login
from authguard.models import AccountLock, LoginEvent, Notification, Outcome

from .conftest import IP_TOKYO, IP_US_HOME, UA_CHROME_WIN, api_post, totp_token


class SerializerStyleLogin(APIView):
    """A portal's app login as a tutorial's serializer writes it: ``authenticate()`` without the request,
    ``ValidationError`` on None, then Django's ``login()`` (scored by authguard's receiver)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        user = authenticate(username=request.data.get("username"), password=request.data.get("password"))
        if user is None:
            raise exceptions.ValidationError({"non_field_errors": ["Unable to log in."]})
        login(request._request, user)
        return Response({"status": "ok"})


class StepUpNeeded(exceptions.APIException):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "Confirm it is you with your authenticator app."
    default_code = "step_up_required"


class AppLogin(APIView):
    """A portal's app login on ``password_login``; each outcome that is not ``ok`` is a DRF exception."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        result = password_login(
            request._request, username=request.data.get("username"), password=request.data.get("password")
        )
        if result.status == "step_up_required":
            raise StepUpNeeded()
        if result.status != "ok":
            raise exceptions.AuthenticationFailed("Unable to log in.")
        return Response({"status": "ok"})


class AppLoginAnswering(AppLogin):
    """The control: the same login answering ``step_up_required`` with a response."""

    def post(self, request: Request) -> Response:
        try:
            return super().post(request)
        except StepUpNeeded as needed:
            return Response({"status": "step_up_required"}, status=needed.status_code)


urlpatterns = [
    path("app/serializer-login", SerializerStyleLogin.as_view()),
    path("app/login", AppLogin.as_view()),
    path("app/login-answering", AppLoginAnswering.as_view()),
    path("", include("demo_site.urls")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]


# -- 1. authenticate() without a request ------------------------------------------------------------------


@pytest.mark.usefixtures("atomic_requests")
@pytest.mark.battery(2)
def test_requestless_wrong_passwords_still_lock_when_the_view_raises(
    user_factory: Any, browser_at: Any
) -> None:
    """Secure: a failed ``authenticate()`` without a request counts towards the account lock (as
    docs/interfaces.md promises) also when the view answers it with an exception that rolls its transaction
    back; ten lock the account and the right password is then refused.

    A gang posts 40 guesses over a day at a portal's serializer-style login; nothing throttles them (no
    request, no address), and each is answered 400 by DRF, which rolls the view's transaction back."""
    alice = user_factory("alice")
    client = browser_at(IP_US_HOME, UA_CHROME_WIN)
    start = timezone.now()
    for i in range(40):
        with time_machine.travel(start + timedelta(minutes=30 * i), tick=False):
            answer = client.post(
                "/app/serializer-login",
                {"username": "alice", "password": f"guess-{i}"},
                content_type="application/json",
            )
            assert answer.status_code == 400, answer.content
    lock = AccountLock.objects.filter(user=alice).first()
    assert lockout.is_locked(alice), (
        f"40 wrong passwords, failures counted: {lock.failures if lock else 0} "
        f"of {app_settings.LOCKOUT_FAILURES}"
    )


# -- 2. the sign-in's event and notices ----------------------------------------------------------------------


@pytest.fixture
def alice(alice_with_totp: Any, browser_at: Any, settings: Any) -> Any:
    """alice with an authenticator app and sign-ins from her browser at home in Tokyo; the portal keeps its
    sessions in the cache (Redis in production: a server-side engine, as authguard.W111 asks)."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    user = alice_with_totp
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    with time_machine.travel(timezone.now() - timedelta(days=20), tick=True) as clock:
        for _ in range(3):
            assert home.sign_in("alice").status_code == 302
            home.post("/logout/")
            clock.shift(timedelta(days=3))
    return user


def _thief_signs_in_and_relays_a_code(alice: Any, browser_at: Any, url: str, on_commit: Any) -> Any:
    Notification.objects.all().delete()
    thief = browser_at(IP_US_HOME, UA_CHROME_WIN)
    thief.get("/login/")  # a device cookie, as the app's web view gets one
    with on_commit(execute=True):
        answer = thief.post(
            url, {"username": "alice", "password": "correct horse battery"}, content_type="application/json"
        )
    assert answer.status_code == 401, answer.content
    assert thief.session["_authguard"]["s"] == "pending"
    with on_commit(execute=True):
        stepped = api_post(thief, "api-step-up-totp", {"code": totp_token(alice.totp)})  # the relayed code
    assert stepped.status_code == 200, stepped.content
    assert thief.session["_authguard"]["s"] == "verified"
    return thief


@pytest.mark.usefixtures("atomic_requests")
def test_a_sign_in_answered_by_an_exception_is_still_recorded_and_announced(
    alice: Any, browser_at: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Secure: a sign-in from a new device in another country, stepped up with a relayed code, is in the
    console and announced to the customer (``new_device_login``, ``new_country_login``), whether the
    portal's login view answered ``step_up_required`` with a response or with an exception that rolled its
    transaction back."""
    _thief_signs_in_and_relays_a_code(alice, browser_at, "/app/login", django_capture_on_commit_callbacks)
    kinds = sorted(Notification.objects.filter(user=alice).values_list("kind", flat=True))
    events = list(LoginEvent.objects.filter(user=alice, ip=IP_US_HOME).values_list("outcome", flat=True))
    assert events == [Outcome.STEP_UP_PASSED] and kinds == ["new_country_login", "new_device_login"], (
        f"the thief is signed in; events of his sign-in: {events}; notices to alice: {kinds}"
    )


@pytest.mark.usefixtures("atomic_requests")
def test_held_a_sign_in_answered_by_a_response_is_announced(
    alice: Any, browser_at: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The control: the same login answering 401 with a response commits its event; she is told."""
    _thief_signs_in_and_relays_a_code(
        alice, browser_at, "/app/login-answering", django_capture_on_commit_callbacks
    )
    kinds = sorted(Notification.objects.filter(user=alice).values_list("kind", flat=True))
    assert kinds == ["new_country_login", "new_device_login"]


# -- 3. the infostealer warning ------------------------------------------------------------------------------


def test_a_copied_device_cookie_is_still_reported_when_the_login_view_raises(
    brokerage_customer: Any, django_capture_on_commit_callbacks: Any, atomic_requests: None, settings: Any
) -> None:
    """Secure: a sign-in with a copy of her device cookie two sign-ins old tells her that malware on her
    computer reads its browser data (``device_cookie_copied``, "whatever the sign-in's outcome":
    ``outbox.notify_copied_cookie``), whether the portal's login view answers the held sign-in with a
    response or with an exception that rolls its transaction back.

    The thief has her password and the jar an infostealer took this morning; she signed in twice since.
    He replays it from her own line with her user agent at the portal's app login, which raises
    ``StepUpNeeded`` (401) under ``ATOMIC_REQUESTS``. He gives up (no code), and comes back another day
    with another jar: she was never told to clean her computer."""
    _copied_cookie_case(brokerage_customer, django_capture_on_commit_callbacks, settings, "/app/login")


def test_held_a_copied_device_cookie_is_reported_when_the_login_view_answers(
    brokerage_customer: Any, django_capture_on_commit_callbacks: Any, atomic_requests: None, settings: Any
) -> None:
    """The control: the same sign-in at a login view answering 401 with a response warns her."""
    _copied_cookie_case(
        brokerage_customer, django_capture_on_commit_callbacks, settings, "/app/login-answering"
    )


def _copied_cookie_case(
    brokerage_customer: Any, django_capture_on_commit_callbacks: Any, settings: Any, url: str
) -> None:
    """The attack, for the URL given."""
    from django.test import Client

    from .conftest import HANAKO_PASSWORD

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # Redis in production (W111)
    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    start = timezone.now()

    def client() -> Client:
        return Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)

    def sign_in_and_use(browser: Client) -> None:
        answer = browser.post(
            "/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}, content_type="application/json"
        )
        assert answer.json()["status"] == "ok", answer.content
        assert browser.get("/api/portfolio").status_code == 200

    with time_machine.travel(start, tick=False) as clock:
        browser = client()
        browser.get("/api/csrf")
        sign_in_and_use(browser)
        stolen = browser.cookies["authguard_device"].value  # the infostealer's copy
        for _ in range(2):
            clock.shift(timedelta(days=1))
            browser.post("/api/logout")
            sign_in_and_use(browser)
        clock.shift(timedelta(days=1))
        thief = client()
        thief.cookies["authguard_device"] = stolen
        with django_capture_on_commit_callbacks(execute=True):
            answer = thief.post(
                url, {"username": "hanako", "password": HANAKO_PASSWORD}, content_type="application/json"
            )
        assert answer.status_code == 401, answer.content
    warned = Notification.objects.filter(kind="device_cookie_copied", user=hanako).exists()
    events = list(LoginEvent.objects.filter(user=hanako).values_list("outcome", flat=True))
    assert warned, f"not warned; her login events: {events}"
