"""Security battery cases 43 to 48 (security-battery.md): properties of the deployment around authguard.

43 framing headers on authguard's pages; 44 no secret in log records, Celery messages or outbox rows; 45 the
cache (Redis) down during login and step-up; 46 the Celery broker down while a factor is bound or an order
held; 47 a server clock 90 s ahead of the customer's phone; 48 parallel verification on SQLite.

Outages are real ones: a Redis cache or a Redis broker on a closed port of loopback (connection refused).
Celery's in-memory transport plays a broker that is up, so every message a task is queued with is seen.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import time_machine
from celery.signals import before_task_publish
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.conf import app_settings
from authguard.exceptions import Throttled
from authguard.factors import passkey_ceremony, totp
from authguard.models import (
    AccountLock,
    FactorRecord,
    HeldOrder,
    LoginEvent,
    Notification,
    NotificationStatus,
    Outcome,
    SessionRecord,
)
from authguard.notifications.delivery import retry_pending_notifications, send_notification
from authguard.sessions import state as sessions_state
from authguard.sessions.middleware import deny_framing
from demo_site.brokerage import services
from demo_site.brokerage.models import Account, Order, OrderStatus
from demo_site.celery import app as celery_app

from .conftest import (
    IP_OSAKA,
    IP_SG_VPS,
    IP_TOKYO,
    UA_CHROME_WIN,
    UA_FIREFOX_LINUX,
    OrderApi,
    api_post,
    bind_passkey,
    register_passkey,
    totp_token,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

PASSWORD = "correct horse battery"
KENJI_PASSWORD = "kenji-test-2025"
#: Only the mass-liquidation rule: selling all 2,000 NTT (over 50 % of the holdings) is held.
PLAIN_RULES = [{"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {}}]
SessionStore = import_module(django_settings.SESSION_ENGINE).SessionStore


def closed_port() -> int:
    """A loopback port nothing listens on (it was bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_down() -> dict[str, Any]:
    """``CACHES`` with the real Redis backend pointed at a closed port: every cache call is refused."""
    location = f"redis://127.0.0.1:{closed_port()}/0"
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}}


def wrong_code(device: TOTPDevice) -> str:
    """A code valid for none of the steps the device accepts now."""
    valid = {totp_token(device, steps=s) for s in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def session_key(client: Client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def state_of(client: Client) -> dict[str, Any]:
    return SessionStore(session_key=session_key(client)).load().get(sessions_state.STATE_KEY, {})


def request_for(client: Client, user: Any) -> Any:
    """A request carrying ``client``'s session, for calling a flow function inside the test's transaction."""
    request = RequestFactory().post("/")
    request.session = SessionStore(session_key=session_key(client))
    request.user = user
    return request


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """alice with an authenticator app (no sign-in history)."""
    return alice_with_totp


def sign_in_pending(browser_at: Any) -> Client:
    """alice signs in with her password from a hosting network in Singapore: pending (score 50)."""
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    response = client.sign_in("alice")
    assert response.status_code == 302 and response.url == "/authguard/step-up/?next=/"
    return client


@pytest.fixture
def pending(alice: Any, browser_at: Any) -> Client:
    return sign_in_pending(browser_at)


@pytest.fixture
def kenji(db: Any, settings: Any, totp_factory: Any) -> Any:
    """A customer with an authenticator app, no cash, 2,000 NTT and 100 Toyota (selling all NTT is held)."""
    settings.AUTHGUARD_ORDER_RULES = PLAIN_RULES
    services.sync_instruments()
    user = services.open_account(
        "kenji",
        KENJI_PASSWORD,
        email="kenji@example.jp",
        cash=Decimal(0),
        holdings={"9432": 2000, "7203": 100},
    )
    with time_machine.travel(timezone.now() - timedelta(days=2)):  # bound well before any order is held
        user.totp = totp_factory(user)
    return user


def holdings(user: Any) -> dict[str, int]:
    return dict(Account.objects.get(user=user).positions.values_list("instrument__symbol", "quantity"))


def hold_sell_all(client: OrderApi) -> dict[str, Any]:
    response = client.order("sell", "9432", 2000)
    assert response.status_code == 202, response.content
    return response.json()


# -- the Celery producer ------------------------------------------------------------------------------------


@dataclass
class Published:
    """One task message as the producer handed it to the broker."""

    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    headers: dict[str, Any]


@dataclass
class Broker:
    """Where this process's Celery producer sends task messages, and every message it published."""

    published: list[Published] = field(default_factory=list)
    urls: set[str] = field(default_factory=set)

    @staticmethod
    def _drop_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    def use(self, url: str) -> None:
        """Publish to the broker at ``url`` (``memory://``: up; a closed port: down)."""
        celery_app.conf.broker_url = url
        celery_app.conf.task_always_eager = False
        self.urls.add(url)
        self._drop_pools()

    def eager(self) -> None:
        """Run tasks in this process again (what a worker would do with the queued messages)."""
        celery_app.conf.task_always_eager = True
        self._drop_pools()


@pytest.fixture
def broker() -> Iterator[Broker]:
    conf = celery_app.conf
    saved = {key: conf[key] for key in ("broker_url", "task_always_eager")}
    recorder = Broker()

    def record(sender: str | None = None, body: Any = None, headers: Any = None, **kwargs: Any) -> None:
        args, task_kwargs, _embed = body
        recorder.published.append(Published(str(sender), tuple(args), dict(task_kwargs), dict(headers or {})))

    before_task_publish.connect(record, weak=False)
    try:
        yield recorder
    finally:
        before_task_publish.disconnect(record)
        if "memory://" in recorder.urls:  # leave no message behind in the in-process broker
            with celery_app.connection_for_write("memory://") as memory:
                memory.default_channel.queue_purge(conf.task_default_queue)
        for key, value in saved.items():
            conf[key] = value
        Broker._drop_pools()


# -- 43: framing ---------------------------------------------------------------------------------------------

#: Portals as they may be configured: the demo's (XFrameOptionsMiddleware, DENY), one that allows its own
#: frames, and one without the clickjacking middleware at all.
PORTALS = ["demo", "sameorigin", "no-clickjacking-middleware"]


def configure_portal(settings: Any, portal: str) -> None:
    if portal == "sameorigin":
        settings.X_FRAME_OPTIONS = "SAMEORIGIN"
    elif portal == "no-clickjacking-middleware":
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "clickjacking" not in m]


def assert_never_framed(response: HttpResponse) -> None:
    assert response["X-Frame-Options"] == "DENY", response
    policy = [d.strip() for d in response["Content-Security-Policy"].split(";")]
    assert [d for d in policy if d.startswith("frame-ancestors")] == ["frame-ancestors 'none'"]


@pytest.mark.battery(43)
@pytest.mark.parametrize("portal", PORTALS)
def test_battery_43_the_step_up_pages_cannot_be_framed(
    portal: str, settings: Any, alice: Any, browser_at: Any
) -> None:
    configure_portal(settings, portal)
    client = sign_in_pending(browser_at)  # a client made after the portal's settings
    answers = [
        client.get("/authguard/step-up/"),
        client.get("/authguard/step-up/totp/"),
        client.post("/authguard/step-up/totp/", {"code": wrong_code(alice.totp)}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 400]
    for response in answers:
        assert_never_framed(response)
    # Still pending: nothing above verified the session.
    assert state_of(client)["s"] == "pending"
    # The re-verification and security pages of a verified session, and the refusal page, too.
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        verified = client.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    assert verified.status_code == 302 and state_of(client)["s"] == "verified"
    for path in ("/authguard/reverify/", "/authguard/security/", "/authguard/denied/"):
        response = client.get(path)
        assert response.status_code in (200, 403), path
        assert_never_framed(response)


@pytest.mark.battery(43)
@pytest.mark.parametrize("portal", PORTALS)
def test_battery_43_the_order_confirmation_page_cannot_be_framed(
    portal: str, settings: Any, kenji: Any, order_api: Any
) -> None:
    configure_portal(settings, portal)
    client = order_api()
    client.login("kenji", KENJI_PASSWORD)
    held = hold_sell_all(client)
    page_path = f"/authguard/confirmations/{held['confirmation']['id']}/"
    page = client.get(page_path)
    assert page.status_code == 200 and 'id="confirm-summary"' in page.content.decode()
    wrong = client.client.post(
        page_path, {"action": "totp", "code": wrong_code(kenji.totp), "csrfmiddlewaretoken": client.token}
    )
    assert wrong.status_code == 400
    for response in (page, wrong):
        assert_never_framed(response)
        # Never stored by a cache either (round forty-three: the page carries the held order's details).
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert HeldOrder.objects.get(pk=held["confirmation"]["id"]).status == HeldOrder.Status.PENDING
    assert holdings(kenji)["9432"] == 2000


@pytest.mark.battery(43)
def test_battery_43_a_portals_content_security_policy_keeps_its_other_directives() -> None:
    response = HttpResponse()
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Content-Security-Policy"] = (
        "default-src 'self'; frame-ancestors https://partner.example; img-src *"
    )
    deny_framing(response)
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Security-Policy"] == "default-src 'self'; img-src *; frame-ancestors 'none'"


# -- 44: no secret in logs, Celery messages or the outbox ----------------------------------------------------


def _text_of(record: logging.LogRecord) -> str:
    """Everything a log handler could write for ``record``: message, arguments, traceback, stack."""
    parts = [record.getMessage(), repr(record.args), record.stack_info or ""]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    found = []
    for label, secret in secrets.items():
        # Codes are matched as whole numbers, so "123456" inside a longer number is not a leak.
        pattern = rf"(?<![0-9]){re.escape(secret)}(?![0-9])" if secret.isdigit() else re.escape(secret)
        if re.search(pattern, text, flags=re.IGNORECASE):
            found.append(label)
    return found


@pytest.mark.battery(44)
@pytest.mark.django_db(transaction=True)
def test_battery_44_no_password_code_session_id_or_seed_reaches_logs_celery_or_the_outbox(
    caplog: pytest.LogCaptureFixture, broker: Broker, settings: Any
) -> None:
    settings.AUTHGUARD_ORDER_RULES = PLAIN_RULES
    caplog.set_level(logging.DEBUG)
    broker.use("memory://")  # a broker that is up: every task message is published and recorded
    services.sync_instruments()
    kenji = services.open_account(
        "kenji", KENJI_PASSWORD, email="kenji@example.jp", cash=Decimal(0), holdings={"9432": 2000}
    )
    secrets = {"password": KENJI_PASSWORD, "wrong password": "not-kenjis-password-1"}
    sessions: set[str] = set()

    def seen(client: OrderApi) -> None:
        sessions.add(client.client.cookies[django_settings.SESSION_COOKIE_NAME].value)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        # At home: sign in, bind an authenticator app (its seed is shown once) with a first code.
        home = OrderApi(REMOTE_ADDR=IP_TOKYO)
        home.login_usual("kenji", KENJI_PASSWORD)  # his own computer
        seen(home)
        enrollment = home.post("/authguard/api/totp")
        assert enrollment.status_code == 200, enrollment.content
        device = TOTPDevice.objects.get(user=kenji)
        secrets |= {"seed (base32)": enrollment.json()["secret"], "seed (hex)": device.key}
        secrets["enrollment code"] = totp_token(device)
        assert (
            home.post("/authguard/api/totp/confirm", {"code": secrets["enrollment code"]}).status_code == 201
        )
        seen(home)
        home.post("/api/logout")
        clock.shift(timedelta(days=1))

        # Away: a wrong password, the right one (pending), a wrong code, the right code.
        away = OrderApi(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
        assert (
            away.post("/api/login", {"username": "kenji", "password": secrets["wrong password"]}).status_code
            == 401
        )
        assert away.login("kenji", KENJI_PASSWORD).json()["status"] == "step_up_required"
        seen(away)
        secrets["wrong step-up code"] = wrong_code(device)
        assert (
            away.post("/authguard/api/step-up/totp", {"code": secrets["wrong step-up code"]}).status_code
            == 400
        )
        clock.shift(timedelta(seconds=31))
        secrets["step-up code"] = totp_token(device)
        assert away.post("/authguard/api/step-up/totp", {"code": secrets["step-up code"]}).status_code == 200
        seen(away)

        # Sell everything: held, then confirmed with the next code after a wrong one.
        held = hold_sell_all(away)
        path = f"/authguard/api/confirmations/{held['confirmation']['id']}/totp"
        secrets["wrong confirmation code"] = wrong_code(device)
        assert away.post(path, {"code": secrets["wrong confirmation code"]}).status_code == 400
        clock.shift(timedelta(seconds=31))
        secrets["confirmation code"] = totp_token(device)
        assert away.post(path, {"code": secrets["confirmation code"]}).status_code == 200
        seen(away)

    sessions |= set(Session.objects.values_list("session_key", flat=True))
    sessions |= set(SessionRecord.objects.values_list("session_key", flat=True))
    secrets |= {f"session id {n}": key for n, key in enumerate(sorted(sessions))}
    assert len(sessions) >= 3  # two logins and a step-up, each with a new key: all are looked for

    # Log records of the whole flow (authguard's, Django's, Celery's), with their arguments and tracebacks.
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("authguard login user=") for m in messages)
    assert any(m.startswith("authguard order held user=") for m in messages)
    assert any(m.startswith("authguard factor added user=") for m in messages)
    for record in caplog.records:
        assert not _leaks(_text_of(record), secrets), (record.name, record.getMessage())

    # The task messages the broker received carry an outbox row's primary key and nothing else.
    outbox = Notification.objects.exclude(status=NotificationStatus.SKIPPED)
    assert {n.kind for n in outbox} >= {"factor_added", "new_device_login", "order_held"}
    assert sorted(m.args for m in broker.published) == sorted((n.pk,) for n in outbox)
    for message in broker.published:
        assert message.task == send_notification.name and message.kwargs == {}
        assert all(type(arg) is int for arg in message.args)
        assert not _leaks(repr(message.args) + repr(message.headers), secrets)

    # The outbox rows, and the mails a worker sends from them.
    broker.eager()
    assert retry_pending_notifications() == outbox.count()
    assert len(mail.outbox) == outbox.count()
    for row in Notification.objects.all():
        assert not _leaks(repr(row.context) + row.last_error, secrets), row.kind
    for sent in mail.outbox:
        assert not _leaks(sent.subject + sent.body + repr(sent.extra_headers), secrets), sent.subject
    assert holdings(kenji) == {}  # the flow really ran to the end: the held order was executed


# -- 45: the cache (Redis) down ------------------------------------------------------------------------------


@pytest.mark.battery(45)
def test_battery_45_redis_down_the_login_api_steps_up_a_login_it_cannot_judge(alice: Any) -> None:
    client = Client(HTTP_USER_AGENT=UA_CHROME_WIN, REMOTE_ADDR=IP_TOKYO)
    with override_settings(CACHES=redis_down()):
        response = client.post(
            "/api/login", {"username": "alice", "password": PASSWORD}, content_type="application/json"
        )
    # First sign-in (no history, new device): allowed with the counters, stepped up without them (never
    # 429, never allowed on the missing data).
    assert response.status_code == 200 and response.json()["status"] == "step_up_required"
    assert state_of(client)["s"] == "pending"
    event = LoginEvent.objects.get()
    assert (event.user, event.outcome, event.password_ok) == (alice, Outcome.STEP_UP_PENDING, True)
    assert "counters_unavailable" in {f["code"] for f in event.findings}
    assert not AccountLock.objects.filter(user=alice, failures__gt=0).exists()


@pytest.mark.battery(45)
def test_battery_45_redis_down_the_login_form_steps_up_and_locks_nobody_out(
    alice: Any, browser_at: Any, settings: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    with override_settings(CACHES=redis_down()):
        # The customer keeps trying with the right password while the counters are unreachable.
        answers = [client.sign_in("alice") for _ in range(12)]
    # Each time: signed in, held at the step-up (the password was checked and right).
    assert {a.status_code for a in answers} == {302}
    assert client.session[SESSION_KEY] == str(alice.pk) and state_of(client)["s"] == "pending"
    outcomes = set(LoginEvent.objects.values_list("outcome", "password_ok"))
    assert outcomes == {(Outcome.STEP_UP_PENDING, True)}
    # An outage is not a guessing attack: no lock, no failure counted, no "account locked" message.
    assert not AccountLock.objects.filter(user=alice, failures__gt=0).exists()
    assert not Notification.objects.filter(kind="account_locked").exists()


@pytest.mark.battery(45)
def test_battery_45_redis_down_a_totp_step_up_still_counts_and_throttles_then_verifies(
    pending: Client, alice: Any
) -> None:
    with override_settings(CACHES=redis_down()), time_machine.travel(timezone.now(), tick=False) as clock:
        # A browser the account does not know well: its session's free failures, then the back-off.
        free = app_settings.FACTOR_THROTTLE["session"]
        for _ in range(free + 1):
            wrong = api_post(pending, "api-step-up-totp", {"code": wrong_code(alice.totp)})
            assert wrong.status_code == 400 and wrong.json()["code"] == "wrong_code"
        assert FactorRecord.objects.get(device_id=alice.totp.persistent_id).failures == free + 1
        # The back-off (authguard's scopes, django-otp's) lives in the database: the outage does not lift it.
        early = api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)})
        assert early.status_code == 429 and early.json()["status"] == "throttled"
        assert state_of(pending)["s"] == "pending"
        assert pending.get("/").status_code == 302
        clock.shift(timedelta(seconds=31))
        right = api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)})
        assert right.status_code == 200 and right.json()["status"] == "ok"
        assert pending.get("/").status_code == 200
    assert state_of(pending)["s"] == "verified"


@pytest.mark.battery(45)
def test_battery_45_redis_down_a_passkey_step_up_is_refused_cleanly(
    alice: Any, browser_at: Any, authenticator: Any
) -> None:
    bind_passkey(alice, authenticator)
    client = sign_in_pending(browser_at)
    options = api_post(client, "api-step-up-passkey-options")
    assert options.status_code == 200
    with override_settings(CACHES=redis_down()):
        # Without the cache the challenge's single use cannot be guaranteed: refused, not accepted.
        response = api_post(client, "api-step-up-passkey", authenticator.get(options.json()))
    assert response.status_code == 400 and response.json()["code"] == "unavailable"
    assert state_of(client)["s"] == "pending"
    # Back up: a new challenge, and the passkey verifies.
    again = api_post(client, "api-step-up-passkey-options")
    assert api_post(client, "api-step-up-passkey", authenticator.get(again.json())).status_code == 200
    assert state_of(client)["s"] == "verified"


# -- 46: the Celery broker down ------------------------------------------------------------------------------


@pytest.fixture
def bob_at_home(bob: Any, browser_at: Any) -> Client:
    """bob signed in from home: allowed outright, so he may bind his first factor."""
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("bob").url == "/"
    return client


def bind_totp(client: Client, user: Any) -> Any:
    begin = api_post(client, "api-totp")
    assert begin.status_code == 200, begin.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    return api_post(client, "api-totp-confirm", {"code": totp_token(device)})


@pytest.mark.battery(46)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("factor", ["totp", "passkey"])
def test_battery_46_binding_a_factor_with_the_broker_down_keeps_its_message_and_sends_it_later(
    factor: str, broker: Broker, bob: Any, bob_at_home: Client, authenticator: Any
) -> None:
    broker.use(f"redis://127.0.0.1:{closed_port()}/0")
    if factor == "totp":
        response = bind_totp(bob_at_home, bob)
    else:
        response = register_passkey(bob_at_home, authenticator)
    assert response.status_code == 201, response.content  # the binding itself went through
    assert FactorRecord.objects.filter(user=bob, kind=factor).count() == 1
    row = Notification.objects.get(user=bob, kind="factor_added")
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 0)  # kept, not lost
    assert mail.outbox == []
    assert retry_pending_notifications() == 0  # still down: nothing queued, nothing lost

    broker.eager()  # the broker is back: the periodic retry task sends it, once
    assert retry_pending_notifications() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (NotificationStatus.SENT, 1)
    assert retry_pending_notifications() == 0
    assert [m.to for m in mail.outbox] == [["bob@example.jp"]]
    assert "A sign-in method was added to your account" in mail.outbox[0].subject


@pytest.mark.battery(46)
@pytest.mark.django_db(transaction=True)
def test_battery_46_holding_an_order_with_the_broker_down_keeps_its_message_and_sends_it_later(
    broker: Broker, kenji: Any, order_api: Any
) -> None:
    client = order_api()
    client.login("kenji", KENJI_PASSWORD)
    broker.use(f"redis://127.0.0.1:{closed_port()}/0")
    held = hold_sell_all(client)
    assert HeldOrder.objects.get(pk=held["confirmation"]["id"]).status == HeldOrder.Status.PENDING
    assert Order.objects.get(pk=held["order_id"]).status == OrderStatus.HELD
    row = Notification.objects.get(user=kenji, kind="order_held")
    assert row.status == NotificationStatus.PENDING and mail.outbox == []
    assert retry_pending_notifications() == 0

    broker.eager()
    assert retry_pending_notifications() == 1
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT
    assert len(mail.outbox) == 1 and "waiting for your confirmation" in mail.outbox[0].subject
    assert re.search(r"Order: sell 2000 .*\(9432\)", mail.outbox[0].body), mail.outbox[
        0
    ].body  # name (symbol)


@pytest.mark.battery(46)
@pytest.mark.django_db(transaction=True)
def test_battery_46_an_outbox_row_commits_with_its_hold_or_binding_and_is_queued_only_after(
    broker: Broker, kenji: Any, order_api: Any
) -> None:
    broker.use("memory://")
    client = order_api()
    client.login("kenji", KENJI_PASSWORD)

    def hold() -> Any:
        return services.submit_order(
            request_for(client.client, kenji), side="sell", symbol="9432", quantity=2000
        )

    # A hold whose transaction rolls back leaves no held order, no outbox row and no message.
    with pytest.raises(RuntimeError), transaction.atomic():
        assert hold().confirmation is not None
        assert Notification.objects.filter(kind="order_held").count() == 1  # written inside the transaction
        raise RuntimeError("the portal failed after holding")
    assert not HeldOrder.objects.exists() and not Notification.objects.exists()
    assert broker.published == []

    # A hold that commits has its outbox row, and the message is queued only once it committed.
    with transaction.atomic():
        submitted = hold()
        assert broker.published == []
    row = Notification.objects.get(kind="order_held")
    assert HeldOrder.objects.get().pk == submitted.confirmation.pk
    assert [m.args for m in broker.published] == [(row.pk,)]

    # The same for binding a factor: a rolled-back confirmation binds nothing and tells nobody.
    kenji.totp.delete()
    request = request_for(client.client, kenji)
    enrollment = totp.begin_totp_enrollment(request, user=kenji)
    request.session.save()
    with pytest.raises(RuntimeError), transaction.atomic():
        bound = totp.confirm_totp_enrollment(request, user=kenji, code=totp_token(enrollment.device))
        assert bound.confirmed and Notification.objects.filter(kind="factor_added").exists()
        raise RuntimeError("rolled back")
    assert not TOTPDevice.objects.filter(user=kenji, confirmed=True).exists()
    assert not Notification.objects.filter(kind="factor_added").exists()
    assert len(broker.published) == 1


# -- 47: the server clock 90 s ahead -------------------------------------------------------------------------


@pytest.mark.battery(47)
@pytest.mark.parametrize(("skew", "accepted"), [(30, True), (90, False)])
def test_battery_47_with_the_server_clock_ahead_a_code_from_90_seconds_ago_fails(
    skew: int, accepted: bool, pending: Client, alice: Any
) -> None:
    with time_machine.travel(timezone.now(), tick=False) as clock:
        on_the_phone = totp_token(alice.totp)  # what the customer's phone shows now
        clock.shift(timedelta(seconds=skew))  # the server's clock runs ahead by ``skew``
        response = pending.post("/authguard/step-up/totp/", {"code": on_the_phone})
    alice.totp.refresh_from_db()
    if accepted:  # one step of skew is within django-otp's tolerance
        assert response.status_code == 302 and state_of(pending)["s"] == "verified"
        return
    assert response.status_code == 400 and state_of(pending)["s"] == "pending"
    assert FactorRecord.objects.get(device_id=alice.totp.persistent_id).failures == 1
    # The window is never widened to fit the skew.
    assert (alice.totp.tolerance, alice.totp.drift) == (1, 0)


@pytest.mark.battery(47)
def test_battery_47_expiries_are_computed_from_the_servers_clock(
    kenji: Any, order_api: Any, authenticator: Any, settings: Any
) -> None:
    server_time = timezone.now().replace(microsecond=0)
    with time_machine.travel(server_time, tick=False) as clock:
        client = order_api()
        client.login("kenji", KENJI_PASSWORD)
        # The customer's own clock (its Date header) says something else: it is not asked.
        held = client.order("sell", "9432", 2000, HTTP_DATE="Thu, 01 Jan 2099 00:00:00 GMT").json()
        confirmation = HeldOrder.objects.get(pk=held["confirmation"]["id"])
        assert confirmation.expires_at == server_time + timedelta(seconds=300)
        assert parse_datetime(held["confirmation"]["expires_at"]) == confirmation.expires_at
        # A WebAuthn challenge expires by the server's clock too.
        bind_passkey(kenji, authenticator)
        assert client.post("/authguard/api/step-up/passkey/options").status_code == 200
        challenges = SessionStore(session_key=client.client.cookies["sessionid"].value).load()
        (record,) = challenges[passkey_ceremony.SESSION_KEY].values()
        assert datetime.fromtimestamp(record["exp"], tz=UTC) == server_time + timedelta(seconds=300)

        path = f"/authguard/api/confirmations/{confirmation.pk}/totp"
        clock.shift(timedelta(seconds=300))  # the server's five minutes are over
        late = client.post(path, {"code": totp_token(kenji.totp)})
    assert late.status_code == 410 and late.json()["code"] == "expired"
    assert HeldOrder.objects.get(pk=confirmation.pk).status == HeldOrder.Status.EXPIRED
    assert holdings(kenji)["9432"] == 2000


# -- 48: SQLite under parallel verification -----------------------------------------------------------------

#: The SQLite options the demo settings document: writers take the lock at BEGIN and wait up to 20 s.
DOCUMENTED_SQLITE_OPTIONS = {"transaction_mode": "IMMEDIATE", "timeout": 20}


@contextlib.contextmanager
def sqlite_file_database(path: Path, *, options: dict[str, Any]) -> Iterator[None]:
    """Run on a fresh SQLite file database with ``options`` (the in-memory test database's shared cache
    has table locks of its own, which a deployment never has), then back on the in-memory one."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's own locking is under test")
    connection.ensure_connection()
    memory = connection.connection  # holding it keeps the in-memory test database alive
    memory_name = connection.settings_dict["NAME"]
    saved_test, saved_options = dict(connection.settings_dict["TEST"]), connection.settings_dict["OPTIONS"]
    connection.connection = None
    connection.settings_dict["TEST"] = {**saved_test, "NAME": str(path)}
    connection.settings_dict["OPTIONS"] = options  # read by every thread's new connection
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
        yield
    finally:
        connection.creation.destroy_test_db(memory_name, verbosity=0)
        connection.settings_dict["TEST"] = saved_test
        connection.settings_dict["OPTIONS"] = saved_options
        connection.connection = memory


def in_parallel(count: int, work: Callable[[], Any]) -> list[Any]:
    """Run ``work`` in ``count`` threads released together; their results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work()
        except Exception as exc:  # judged by the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads), "a verification hung"
    return results


def new_customer() -> tuple[Any, TOTPDevice]:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("alice", password=PASSWORD, email="alice@example.jp")
    return user, TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


@pytest.mark.battery(48)
@pytest.mark.django_db(transaction=True)
def test_battery_48_on_sqlite_one_code_verified_10_times_in_parallel_is_accepted_once(tmp_path: Path) -> None:
    from demo_site import settings as demo

    if demo.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        assert demo.DATABASES["default"]["OPTIONS"] == DOCUMENTED_SQLITE_OPTIONS
    with (
        sqlite_file_database(tmp_path / "battery-48.sqlite3", options=DOCUMENTED_SQLITE_OPTIONS),
        time_machine.travel(timezone.now(), tick=False),
    ):
        alice, device = new_customer()
        code = totp_token(device)
        results = in_parallel(10, lambda: totp.verify_totp(alice, code))
        assert [r for r in results if isinstance(r, TOTPDevice)] == [device]
        # The writers queued: no "database is locked"; every other attempt was refused and counted.
        assert all(r is None or isinstance(r, Throttled) for r in results if r != device), results
        assert FactorRecord.objects.get(device_id=device.persistent_id).failures == 9
        device.refresh_from_db()
        assert device.last_t == int(time.time()) // device.step  # the code's time step, spent once


@pytest.mark.battery(48)
@pytest.mark.django_db(transaction=True)
def test_battery_48_on_sqlite_parallel_step_ups_with_one_code_verify_one_session(
    tmp_path: Path, browser_at: Any
) -> None:
    with (
        sqlite_file_database(tmp_path / "battery-48.sqlite3", options=DOCUMENTED_SQLITE_OPTIONS),
        time_machine.travel(timezone.now(), tick=False),
    ):
        alice, device = new_customer()
        clients = [sign_in_pending(browser_at) for _ in range(6)]  # six pending sessions of one customer
        code = totp_token(device)
        queue = list(clients)
        lock = threading.Lock()

        def step_up() -> Any:
            with lock:
                client = queue.pop()
            return client, api_post(client, "api-step-up-totp", {"code": code})

        answers = in_parallel(len(clients), step_up)
        statuses = sorted(a[1].status_code for a in answers)
        assert statuses[0] == 200 and statuses.count(200) == 1, statuses
        assert set(statuses[1:]) <= {400, 429}, statuses
        verified = [client for client in clients if state_of(client)["s"] == "verified"]
        assert len(verified) == 1
        assert LoginEvent.objects.filter(outcome=Outcome.STEP_UP_PASSED).count() == 1


@pytest.mark.battery(48)
@pytest.mark.django_db(transaction=True)
def test_battery_48_without_immediate_transactions_sqlite_says_locked_but_never_accepts_twice(
    tmp_path: Path,
) -> None:
    with (
        sqlite_file_database(tmp_path / "battery-48.sqlite3", options={"timeout": 20}),  # SQLite's DEFERRED
        time_machine.travel(timezone.now(), tick=False),
    ):
        alice, device = new_customer()
        code = totp_token(device)
        results = in_parallel(10, lambda: totp.verify_totp(alice, code))
        assert [r for r in results if isinstance(r, TOTPDevice)] == [device]
        for result in results:
            if isinstance(result, OperationalError):
                assert "database is locked" in str(result)
            else:
                assert result is None or result == device or isinstance(result, Throttled), result
