"""Red team round forty-six: ``durable.outlive_rollback`` against portals that roll back in ways the
earlier rounds did not try.

1. A middleware *above* authguard's that runs the whole request in a transaction (so its own writes, an
   audit trail, the messages of other middlewares, commit with the view's) and rolls it back when the
   answer is an error, as DRF does for its exceptions (``set_rollback`` on a 4xx/5xx). authguard's write
   again after the view runs *inside* that transaction: its commit hook is "still waiting in an enclosing
   transaction" (read as kept), and the enclosing one then rolls back.
2. The same views in a real commit (``transaction=True``): the "committed" branch of ``again()``.
3. ``set_rollback(True)`` on the view's own (ATOMIC_REQUESTS) transaction without an exception, an async
   view that authenticates inside ``sync_to_async`` in an atomic block and raises, a view that catches and
   re-raises inside ``atomic()``.

Fixed (1): when a transaction above authguard's middleware is still open after the view, the second write
waits until Django closes the response, after every middleware has returned (``durable.write_again``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

from authguard.decorators import step_up_exempt
from authguard.login import stepup
from authguard.models import AccountLock, FactorRecord, FactorThrottle, LoginEvent, Outcome

from .conftest import IP_SG_VPS, IP_US_HOME, UA_CHROME_WIN, wrong_code


def _login(request: HttpRequest) -> JsonResponse:
    """The portal's app login: a wrong password is answered 401 (no exception)."""
    user = authenticate(request, username="alice", password=request.POST.get("password"))
    return JsonResponse({"ok": user is not None}, status=200 if user else 401)


def _login_set_rollback(request: HttpRequest) -> JsonResponse:
    """Under ATOMIC_REQUESTS: a failed login marks the *request's* transaction for rollback, no exception."""
    user = authenticate(request, username="alice", password=request.POST.get("password"))
    if user is None:
        transaction.set_rollback(True)
    return JsonResponse({"ok": user is not None}, status=200 if user else 401)


class _Failed(Exception):
    pass


def _login_reraise(request: HttpRequest) -> JsonResponse:
    """authenticate() in an atomic block that catches the failure, logs, and re-raises (a 500)."""
    with transaction.atomic():
        try:
            user = authenticate(request, username="alice", password=request.POST.get("password"))
            if user is None:
                raise _Failed
        except _Failed:
            raise
    return JsonResponse({"ok": True})


async def _async_login(request: HttpRequest) -> JsonResponse:
    """An async view: authenticate() in a sync helper that runs it in an atomic block and raises on None."""

    def check(password: str | None) -> bool:
        with transaction.atomic():
            user = authenticate(request, username="alice", password=password)
            if user is None:
                raise _Failed
        return True

    try:
        await sync_to_async(check)(request.POST.get("password"))
    except _Failed:
        return JsonResponse({"ok": False}, status=401)
    return JsonResponse({"ok": True})


@step_up_exempt
def _step_up(request: HttpRequest) -> JsonResponse:
    """The portal's own step-up endpoint on the documented functions; a wrong code answers 400."""
    device = stepup.verify_step_up_code(
        request, user=request.user, method="totp", code=request.POST.get("code")
    )
    if device is None:
        return JsonResponse({"status": "wrong_code"}, status=400)
    stepup.finish_step_up(request, device=device, method="totp")
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("p/login", _login),
    path("p/login-set-rollback", _login_set_rollback),
    path("p/login-reraise", _login_reraise),
    path("p/login-async", _async_login),
    path("p/step-up", _step_up),
    path("", include("demo_site.urls")),
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]


class RequestTransactionMiddleware:
    """A portal's own middleware, first in MIDDLEWARE: the whole request (other middlewares' writes too) in
    one transaction, rolled back when the answer is an error (DRF's ``set_rollback`` for every view)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with transaction.atomic():
            response = self.get_response(request)
            if response.status_code >= 400:
                transaction.set_rollback(True)
        return response


@pytest.fixture
def request_transaction(settings: Any) -> None:
    settings.MIDDLEWARE = [f"{__name__}.RequestTransactionMiddleware", *settings.MIDDLEWARE]


def _counts(alice: Any) -> tuple[int, int]:
    lock = AccountLock.objects.filter(user=alice).first()
    events = LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count()
    return (lock.failures if lock else 0, events)


@pytest.mark.django_db
@pytest.mark.usefixtures("request_transaction")
def test_wrong_passwords_count_under_a_request_transaction_middleware_above_authguard(
    user_factory: Any, browser_at: Any, settings: Any
) -> None:
    """Secure: each wrong password counts once towards the lock and leaves its event, whatever transaction
    the portal runs the request in (docs/faults.md: "a failure outlives the view's rollback").

    Password-only thief (a list of her likely passwords). The portal's first middleware runs each request in
    one transaction and rolls it back on a 4xx/5xx answer. authguard counts the failure, and after the view
    finds its commit hook "still waiting in an enclosing transaction" (the middleware's): it writes nothing
    again, and the middleware then rolls the count, the event and the lock back. Unlimited guesses."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    settings.AUTHGUARD_RISK_SIGNALS = []
    alice = user_factory("alice")
    client = browser_at(IP_US_HOME, UA_CHROME_WIN)
    answers = [client.post("/p/login", {"password": f"guess-{i}"}).status_code for i in range(3)]
    assert _counts(alice) == (3, 3), (answers, _counts(alice))


@pytest.mark.django_db
@pytest.mark.usefixtures("request_transaction")
def test_wrong_codes_count_under_a_request_transaction_middleware_above_authguard(
    alice_with_totp: Any, browser_at: Any, clock: Any
) -> None:
    """Secure: wrong authenticator codes at a portal's step-up endpoint are throttled, counted towards the
    NIST limit and the lock, whatever transaction the portal runs the request in.

    Password-only thief, held at step-up on a VPS, guesses her six-digit code at the portal's step-up
    endpoint (answers 400 on a wrong code, no exception). The first middleware rolls each 400 back, and
    authguard's write again ran inside that transaction: no throttle scope, no NIST count, no lock."""
    alice = alice_with_totp
    thief = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    thief.sign_in("alice")
    answers = []
    for _ in range(12):
        answers.append(thief.post("/p/step-up", {"code": wrong_code(alice.totp)}).status_code)
        clock.shift(60)
    lock = AccountLock.objects.filter(user=alice).first()
    record = FactorRecord.objects.filter(user_id=alice.pk).first()
    scopes = list(FactorThrottle.objects.values_list("key", "failures"))
    # The tenth wrong code locks the account (AUTHGUARD_LOCKOUT_FAILURES); the next two are refused uncounted.
    assert lock is not None and lock.locked_at is not None and lock.failures >= 10, (answers, lock)
    assert scopes and record is not None, (
        answers,
        lock.failures if lock else 0,
        scopes,
        record.failures if record else 0,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", ["/p/login", "/p/login-set-rollback", "/p/login-reraise"])
def test_held_wrong_passwords_count_once_with_real_commits(
    url: str, user_factory: Any, browser_at: Any, settings: Any, atomic_requests: None
) -> None:
    """Secure: with real commits (no test transaction around the request: the hooks run), each wrong password
    counts exactly once: a view that commits (the "committed" branch), one that marks its own request
    transaction for rollback without raising, one that catches and re-raises inside ``atomic()``."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    settings.AUTHGUARD_RISK_SIGNALS = []
    alice = user_factory("alice")
    client = browser_at(IP_US_HOME, UA_CHROME_WIN)
    client.raise_request_exception = False
    for i in range(3):
        client.post(url, {"password": f"guess-{i}"})
    assert _counts(alice) == (3, 3), (url, _counts(alice))


@pytest.mark.django_db(transaction=True)
def test_held_an_async_view_that_raises_in_its_atomic_block_still_counts(
    user_factory: Any, settings: Any
) -> None:
    """Secure: an async view on an all-async stack (authguard's middleware in its async mode) whose sync
    helper authenticates in an atomic block and raises on a wrong password counts each guess once."""
    from asgiref.sync import async_to_sync

    from .test_async_views import SYNC_ONLY, PlacedAsyncClient

    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != SYNC_ONLY]
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    settings.AUTHGUARD_RISK_SIGNALS = []
    alice = user_factory("alice")

    async def run() -> list[int]:
        client = PlacedAsyncClient(IP_US_HOME)
        codes = []
        for i in range(3):
            r = await client.post(
                "/p/login-async", {"password": f"guess-{i}"}, headers={"user-agent": UA_CHROME_WIN}
            )
            codes.append(r.status_code)
        return codes

    answers = async_to_sync(run)()
    assert _counts(alice) == (3, 3), (answers, _counts(alice))
