"""Faults of the database: PostgreSQL refusing new connections (``ALTER DATABASE ... ALLOW_CONNECTIONS false``
on the test database, every backend on it terminated), the real server answering each connect with
``FATAL: database ... is not currently accepting connections``.

What must hold (issue 15, acceptance 2; docs/faults.md): a login, an order and a step-up answer are errors,
each with a log line on ``django.request``; nobody is signed in, no session is verified, no order is placed
or executed without its confirmation; when the database accepts connections again all works as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from authguard.models import HeldOrder, LoginEvent, Outcome
from demo_site.brokerage import services
from demo_site.brokerage.models import Order

from .conftest import IP_SG_VPS, IP_TOKYO, UA_FIREFOX_LINUX, OrderApi, totp_token

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("geoip"),
]

PASSWORD = "kenji-test-2025"
#: Only the mass-liquidation rule: selling all 2,000 NTT is held for confirmation; one share is placed.
PLAIN_RULES = [{"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {}}]


class Refusal:
    """Make the real PostgreSQL server refuse new connections to the test database, and accept them again."""

    def __init__(self) -> None:
        params = connection.get_connection_params()
        self.database = str(connection.settings_dict["NAME"])
        params["dbname"] = "postgres"  # the maintenance database stays open for us
        params.pop("cursor_factory", None)
        params.pop("context", None)
        self.admin = psycopg.connect(**params, autocommit=True)
        self.refusing = False

    def _allow(self, allowed: bool) -> None:
        self.admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(self.database), sql.Literal(allowed)
            )
        )

    def refuse(self) -> None:
        """No new connection from now on, and the open ones (this process's) are cut."""
        self._allow(False)
        self.refusing = True
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        )
        connection.close()

    def accept(self) -> None:
        self._allow(True)
        self.refusing = False
        connection.close()  # the next query connects afresh


@pytest.fixture
def refusal() -> Iterator[Refusal]:
    assert connection.vendor == "postgresql"
    refusal = Refusal()
    try:
        yield refusal
    finally:
        if refusal.refusing:
            refusal.accept()  # before pytest-django flushes the database
        refusal.admin.close()


def client_at(ip: str = IP_TOKYO, **kwargs: Any) -> OrderApi:
    """A browser on the demo's JSON API whose 500s come back as answers (as a WSGI server sends them)."""
    return OrderApi(REMOTE_ADDR=ip, raise_request_exception=False, **kwargs)


def assert_error_logged(response: Any, caplog: pytest.LogCaptureFixture, path: str) -> None:
    """The answer is a server error, and Django logged it with the database's exception."""
    assert response.status_code == 500, response.content
    records = [r for r in caplog.records if r.name == "django.request" and r.levelno >= logging.ERROR]
    assert any(path in r.getMessage() and r.exc_info for r in records), [r.getMessage() for r in records]
    error = next(r.exc_info[1] for r in records if path in r.getMessage() and r.exc_info)
    assert "accepting connections" in str(error) or "terminat" in str(error), error
    caplog.clear()


@pytest.fixture
def kenji(db: Any, settings: Any, totp_factory: Any) -> Any:
    """A customer with 2,000 NTT, ¥100,000 and an authenticator app; only the mass-liquidation rule."""
    settings.AUTHGUARD_ORDER_RULES = PLAIN_RULES
    services.sync_instruments()
    user = services.open_account(
        "kenji", PASSWORD, email="kenji@example.jp", cash=Decimal(100_000), holdings={"9432": 2000}
    )
    user.totp = totp_factory(user)
    return user


def test_database_refusing_a_login_is_a_logged_error_and_nobody_is_signed_in(
    kenji: Any, refusal: Refusal, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = []
    client = client_at()
    refusal.refuse()
    for password in (PASSWORD, "a wrong guess"):
        response = client.post("/api/login", {"username": "kenji", "password": password})
        assert_error_logged(response, caplog, "/api/login")
    refusal.accept()

    assert not LoginEvent.objects.exists()  # nothing was decided, so nothing was let in
    assert client.get("/api/portfolio").status_code in (401, 403)
    assert client.login("kenji", PASSWORD).json()["status"] == "ok"
    assert client.get("/api/portfolio").status_code == 200


def test_database_refusing_no_order_is_placed_or_executed_and_all_works_again_after(
    kenji: Any, refusal: Refusal, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = []
    client = client_at()
    client.login("kenji", PASSWORD)
    held = client.order("sell", "9432", 2000)
    assert held.status_code == 202, held.content
    confirmation = held.json()["confirmation"]["id"]

    refusal.refuse()
    # A new order (one share: it would be placed at once) and the held one's confirmation, right code.
    assert_error_logged(client.order("sell", "9432", 1), caplog, "/api/orders")
    path = f"/authguard/api/confirmations/{confirmation}/totp"
    assert_error_logged(client.post(path, {"code": totp_token(kenji.totp)}), caplog, path)
    refusal.accept()

    assert list(Order.objects.values_list("quantity", "status")) == [(2000, "held")]
    assert HeldOrder.objects.get(pk=confirmation).status == HeldOrder.Status.PENDING
    # Back: the session is still there, the confirmation executes the held order, a new order is placed.
    confirmed = client.post(path, {"code": totp_token(kenji.totp)})
    assert confirmed.status_code == 200, confirmed.content
    assert HeldOrder.objects.get(pk=confirmation).status == HeldOrder.Status.CONFIRMED
    placed = client.order("buy", "9432", 1)
    assert placed.status_code == 201 and placed.json()["status"] == "placed", placed.content
    assert sorted(Order.objects.values_list("side", "quantity", "status")) == [
        ("buy", 1, "placed"),
        ("sell", 2000, "placed"),
    ]


def test_database_refusing_a_step_up_answer_verifies_nothing(
    kenji: Any, refusal: Refusal, caplog: pytest.LogCaptureFixture
) -> None:
    away = client_at(IP_SG_VPS, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    login = away.login("kenji", PASSWORD)
    assert login.json()["status"] == "step_up_required", login.content
    code = totp_token(kenji.totp)

    refusal.refuse()
    path = "/authguard/api/step-up/totp"
    assert_error_logged(away.post(path, {"code": code}), caplog, path)
    refusal.accept()

    assert away.get("/api/portfolio").status_code != 200  # still pending: nothing was verified
    assert LoginEvent.objects.get(user=kenji).outcome == Outcome.STEP_UP_PENDING
    # Back: the same code (it was never accepted) passes the step-up.
    passed = away.post(path, {"code": code})
    assert passed.status_code == 200 and passed.json()["status"] == "ok", passed.content
    assert away.get("/api/portfolio").status_code == 200
    assert LoginEvent.objects.get(user=kenji).outcome == Outcome.STEP_UP_PASSED
