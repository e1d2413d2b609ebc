"""Red team round forty-seven: ``durable.write_again`` (round forty-six) defers the second write of a
failure's counts to ``response._resource_closers`` when a transaction above authguard's middleware is still
open after the view. Django closes only the response the handler finally gets: a middleware above
authguard's that answers with a *new* response (a JSON error envelope for the portal's app, a branded error
page) drops the one carrying the deferred write, which then never runs.

Thief: a list of her likely passwords (password-only), or her password and guesses at her code.
Fixed: the deferred writes wait in the thread and also run at ``request_finished`` (``durable.run_deferred``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse

from .conftest import IP_US_HOME, UA_CHROME_WIN
from .test_rollback_above_middleware_walkarounds import _counts, urlpatterns  # noqa: F401 (URLconf)

pytestmark = [pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]


class ErrorEnvelopeMiddleware:
    """A portal's own middleware: every error answer of its app API in one JSON envelope (a new response
    with the same status), so its mobile app reads one shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 400:
            return JsonResponse({"error": {"status": response.status_code}}, status=response.status_code)
        return response


@pytest.fixture
def enveloped_request_transaction(settings: Any) -> None:
    settings.MIDDLEWARE = [
        "tests.test_rollback_above_middleware_walkarounds.RequestTransactionMiddleware",
        f"{__name__}.ErrorEnvelopeMiddleware",
        *settings.MIDDLEWARE,
    ]


@pytest.fixture
def envelope_only(settings: Any) -> None:
    settings.MIDDLEWARE = [f"{__name__}.ErrorEnvelopeMiddleware", *settings.MIDDLEWARE]


@pytest.mark.django_db
@pytest.mark.usefixtures("enveloped_request_transaction")
def test_wrong_passwords_count_when_a_middleware_above_answers_with_its_own_error_response(
    user_factory: Any, browser_at: Any, settings: Any
) -> None:
    """Secure: each wrong password counts once towards the lock and leaves its event, whatever the portal's
    middlewares above authguard's do with the answer.

    The round-46 layout (the first middleware runs the request in one transaction and rolls it back on an
    error answer) plus one more portal middleware under it that wraps error answers in its JSON envelope (a
    new ``JsonResponse``). authguard deferred its second write to the closers of the response it returned;
    that response is never returned to Django, never closed: the write never runs. Unlimited guesses."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    settings.AUTHGUARD_RISK_SIGNALS = []
    alice = user_factory("alice")
    client = browser_at(IP_US_HOME, UA_CHROME_WIN)
    answers = [client.post("/p/login", {"password": f"guess-{i}"}).status_code for i in range(3)]
    assert _counts(alice) == (3, 3), (answers, _counts(alice))


@pytest.mark.django_db
@pytest.mark.usefixtures("envelope_only")
def test_held_the_envelope_alone_keeps_the_counts(user_factory: Any, browser_at: Any, settings: Any) -> None:
    """The control: the envelope middleware without a transaction above authguard: each guess counts."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    settings.AUTHGUARD_RISK_SIGNALS = []
    alice = user_factory("alice")
    client = browser_at(IP_US_HOME, UA_CHROME_WIN)
    for i in range(3):
        client.post("/p/login", {"password": f"guess-{i}"})
    assert _counts(alice) == (3, 3)
