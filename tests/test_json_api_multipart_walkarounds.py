"""Red team round fifty-one (B), fixed: a multipart body to authguard's JSON API was a 500 wherever CSRF is
checked (every real site).

Every JSON view of authguard (``authguard.api``, the held-order and held-action confirmation API) reads its
body with :func:`authguard.api.read_json`, which reads ``request.body``. On a real site Django's
``CsrfViewMiddleware`` runs first and, for a POST, reads ``request.POST`` looking for
``csrfmiddlewaretoken``; for a ``multipart/form-data`` body that parses the body *from the stream*, after
which ``request.body`` raises ``RawPostDataException`` (Django's documented behaviour). ``read_json`` catches
``RequestDataTooBig`` only, so the view answers 500 instead of 400 ``invalid``.

The test client skips CSRF checks unless asked (``enforce_csrf_checks=True``), which is why the earlier URL
walks (tests/test_url_walk_malformed.py, tests/test_hostile_client_held.py, both posting a multipart body)
never saw it. The demo's own JSON API answers the same body 415 ("Send a JSON body").

Means: none. Anyone on the internet fetches ``/api/csrf`` for a token and posts ``new FormData()`` (what a
script, a careless SPA or a scanner sends) to ``api/login/passkey`` or ``api/unlock``; a signed-in customer's
browser does it on any endpoint. Each request is a server error with a traceback mailed to the admins and
counted by the 5xx alerting: an anonymous, unthrottled way to page the on-call team and bury real errors.

Fixed: ``read_json`` answers such a body 400 ``invalid`` (``malformed``), as any body that is not a JSON
object.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from authguard.models import HeldAction, HeldOrder

from .conftest import HANAKO_PASSWORD, IP_TOKYO, UA_CHROME_WIN, OrderApi

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: A well-formed multipart body, as ``fetch(url, {method: "POST", body: formData})`` sends it.
MULTIPART = "multipart/form-data; boundary=----rt51b"
BODY = b'------rt51b\r\nContent-Disposition: form-data; name="code"\r\n\r\n123456\r\n------rt51b--\r\n'


def _anonymous() -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    token = client.get("/api/csrf").json()["csrf_token"]
    return client, token


@pytest.mark.parametrize("path", ["/authguard/api/login/passkey", "/authguard/api/unlock"])
def test_an_anonymous_multipart_post_to_the_passwordless_apis_is_a_4xx_not_a_500(path: str) -> None:
    """Secure: anyone (no account, no password: only the CSRF token every visitor gets from /api/csrf) posts a
    well-formed multipart form to the passwordless passkey login or the passkey unlock. The answer must be a
    4xx with a message (400 ``invalid``, as for any other body that is not a JSON object); today
    ``authguard.api.read_json`` reads ``request.body`` after the CSRF middleware consumed the stream and
    the view raises ``RawPostDataException`` (a 500): an unauthenticated, unthrottled way to raise server
    errors (admin mails, 5xx alerts) at will."""
    client, token = _anonymous()
    try:
        response = client.post(path, data=BODY, content_type=MULTIPART, HTTP_X_CSRFTOKEN=token)
    except Exception as exc:  # the test client re-raises the view's exception (a 500 in production)
        pytest.fail(f"500: {type(exc).__name__}: {exc}")
    assert 400 <= response.status_code < 500, response.status_code
    assert response.json()["status"] == "invalid" and response.json()["message"]


@pytest.fixture
def hanako_held(brokerage_customer: Any, authenticator: Any, settings: Any) -> tuple[OrderApi, str, str]:
    """Hanako signed in from her usual browser (CSRF enforced, as on a real site), with a held order and a
    held bank-account registration."""
    from decimal import Decimal

    settings.AUTHGUARD_RISK_SIGNALS = []
    settings.AUTHGUARD_ACTION_EXECUTOR = "demo_site.brokerage.money.action_executor"
    brokerage_customer(holdings={"AAPL": 10}, cash=Decimal(0), totp=True, passkey=authenticator)
    api = OrderApi(REMOTE_ADDR=IP_TOKYO)
    api.login_usual("hanako", HANAKO_PASSWORD)
    held = api.order("sell", "AAPL", 10)
    assert held.status_code == 202, held.content
    bank = api.post(
        "/api/bank-accounts",
        {
            "bank_code": "0001",
            "bank_name": "Mizuho Bank",
            "branch_code": "123",
            "account_type": "ordinary",
            "account_number": "1234567",
            "holder_name": "YAMADA HANAKO",
        },
    )
    assert bank.status_code == 202, bank.content
    return api, held.json()["confirmation"]["id"], bank.json()["confirmation"]["id"]


ENDPOINTS = [
    "/authguard/api/step-up/totp",
    "/authguard/api/step-up/passkey",
    "/authguard/api/passkeys",
    "/authguard/api/totp/confirm",
    "/authguard/api/factors/remove",
    "/authguard/api/email",
    "/authguard/api/email/confirm",
    "/authguard/api/confirmations/{held}/totp",
    "/authguard/api/confirmations/{held}/passkey",
    "/authguard/api/confirmations/batch/passkey/options",
    "/authguard/api/confirmations/batch/passkey",
    "/authguard/api/actions/{action}/totp",
    "/authguard/api/actions/{action}/passkey",
]


@pytest.mark.parametrize("template", ENDPOINTS)
def test_a_customers_multipart_post_to_the_json_api_is_a_4xx_not_a_500(
    hanako_held: tuple[OrderApi, str, str], template: str
) -> None:
    """Secure: the customer's own browser (or a portal page that posts a ``FormData``) sends a well-formed
    multipart body to authguard's JSON API. Each endpoint must refuse it with a 4xx and a message and
    change nothing (the held order and the held bank account stay pending); today each answers 500
    (``RawPostDataException`` in
    ``authguard.api.read_json``, line ``body = request.body``). Fix: in ``read_json``, refuse a content
    type other than ``application/json`` (415/400 ``invalid``) before touching the body, or catch
    ``RawPostDataException`` as malformed."""
    api, held, action = hanako_held
    path = template.format(held=held, action=action)
    try:
        response = api.client.post(path, data=BODY, content_type=MULTIPART, HTTP_X_CSRFTOKEN=api.token)
    except Exception as exc:  # the test client re-raises the view's exception (a 500 in production)
        pytest.fail(f"500: {type(exc).__name__}: {exc}")
    assert 400 <= response.status_code < 500, response.status_code
    assert response.json()["message"]
    assert HeldOrder.objects.get(pk=held).status == HeldOrder.Status.PENDING
    assert HeldAction.objects.get(pk=action).status == HeldAction.Status.PENDING


def test_held_the_demo_json_api_answers_a_multipart_body_415(hanako_held: tuple[OrderApi, str, str]) -> None:
    """Held: the demo portal's own JSON API (orders, bank accounts, withdrawals) refuses the same body with
    415 and a message, CSRF enforced."""
    api, _held, _action = hanako_held
    for path in ("/api/orders", "/api/bank-accounts", "/api/withdrawals"):
        response = api.client.post(path, data=BODY, content_type=MULTIPART, HTTP_X_CSRFTOKEN=api.token)
        assert response.status_code == 415, (path, response.status_code)
