"""Every cache call of a login behind the cache's circuit breaker (issue 15): with Redis hung, once the
breaker is open, a login waits on no socket at all, and each cache-backed decision keeps its rule:

* the **policy version** and the **network blocks** are read from the database (never "no policy", never
  "no blocks"), and nothing is written into the hung cache;
* a **one-time spend** (a step-up token, a WebAuthn challenge) that the cache cannot record is refused with
  a 4xx and a message (fail closed): nothing is spent twice, and the token still works once Redis is back.

A private ``redis-server`` hung with SIGSTOP (the fixtures of :mod:`tests.test_faults_cache`), real logins
through the demo's JSON API and the DRF token API. The cache's socket timeout here is 1 s, four times the
demo's, so that one wait is told apart from a slow CI machine: a login under 0.9 s waited on no socket.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.utils import timezone

from authguard import resilience
from authguard.models import AccountLock, LoginEvent, NetworkBlock, Outcome
from authguard.resilience import OPEN
from authguard.risk import networks
from authguard.risk.policy import VERSION_CACHE_KEY, current_policy, save_policy

from . import test_faults_cache
from .conftest import (
    IP_DOCOMO,
    IP_SG_VPS,
    IP_US_HOME,
    UA_CHROME_WIN,
    UA_FIREFOX_LINUX,
    OrderApi,
    bind_passkey,
    totp_token,
)
from .test_faults_cache import RedisServer, api_login, last_event

pytestmark = [pytest.mark.usefixtures("geoip")]

redis_server = test_faults_cache.redis_server
alice_at_home = test_faults_cache.alice_at_home

#: One socket wait: long enough that a login which waited once cannot pass for a slow one.
SOCKET_TIMEOUT = 1.0
#: A login after the breaker opened: no socket wait (each is SOCKET_TIMEOUT), generous for a loaded machine.
NO_WAIT_SECONDS = 0.9


@pytest.fixture
def on_redis(redis_server: RedisServer, settings: Any) -> Iterator[RedisServer]:
    """The cache on the private server with a 1 s socket timeout; the breaker opens after 3 failures and
    stays open for the whole test (no half-open trial into the hung server)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
            "OPTIONS": {"socket_connect_timeout": SOCKET_TIMEOUT, "socket_timeout": SOCKET_TIMEOUT},
        }
    }
    settings.AUTHGUARD_CIRCUIT_BREAKER = {"failures": 3, "reset_seconds": 600}
    yield redis_server
    resilience.reset_breakers()


def open_the_breaker(home: OrderApi) -> None:
    """One safe login into the hung cache: its first three cache calls time out and open the breaker."""
    response, seconds = api_login(home, "alice")
    assert response.status_code == 200 and response.json()["status"] == "ok", response.content
    home.post("/api/logout")
    assert resilience.cache_breaker().state == OPEN
    assert seconds < 4 * SOCKET_TIMEOUT + 2, seconds


def block(network: str) -> NetworkBlock:
    """A block in force for an hour, as the security desk's (approved) request leaves it."""
    now = timezone.now()
    found = NetworkBlock.objects.create(
        network=network, kind="cidr", until=now + timedelta(hours=1), reason="fault test", created_at=now
    )
    networks.blocks_changed()
    return found


def denied_by_block(response: Any, event: LoginEvent) -> bool:
    return (
        response.status_code == 403
        and response.json()["status"] == "denied"
        and event.outcome != Outcome.SIGNED_IN
        and any(
            f["code"] == "denylisted_network" and "blocked_until" in (f.get("evidence") or {})
            for f in event.findings
        )
    )


# -- no socket wait once the breaker is open ------------------------------------------------------------


@pytest.mark.django_db
def test_redis_hung_once_the_breaker_is_open_a_login_waits_on_no_socket(
    on_redis: RedisServer, alice_at_home: tuple[Any, OrderApi]
) -> None:
    _alice, home = alice_at_home
    on_redis.hang()
    open_the_breaker(home)
    skipped = resilience.cache_breaker().skipped
    timings: list[float] = []
    for _ in range(3):
        safe, seconds = api_login(home, "alice")
        timings.append(round(seconds, 3))
        assert safe.status_code == 200 and safe.json()["status"] == "ok", safe.content
        home.post("/api/logout")
        away, seconds = api_login(OrderApi(REMOTE_ADDR=IP_US_HOME, HTTP_USER_AGENT=UA_FIREFOX_LINUX), "alice")
        timings.append(round(seconds, 3))
        test_faults_cache.assert_not_allowed(away)
    # Before: every login waited on four sockets (policy version read and write, network blocks read and
    # write): about 4.1 s each with this 1 s timeout, 1 s with the demo's 0.25 s.
    assert max(timings) < NO_WAIT_SECONDS, timings
    # The calls were skipped, not made: the breaker counted them.
    assert resilience.cache_breaker().skipped > skipped
    assert resilience.cache_breaker().state == OPEN


# -- the policy version and the network blocks come from the database -------------------------------------


@pytest.mark.django_db
def test_redis_hung_a_saved_policy_still_applies_and_one_saved_during_the_outage_too(
    on_redis: RedisServer,
    alice_at_home: tuple[Any, OrderApi],
    django_capture_on_commit_callbacks: Any,
) -> None:
    _alice, home = alice_at_home
    with django_capture_on_commit_callbacks(execute=True):
        before = save_policy(thresholds={"step_up": 30}, by=None, comment="before the outage")
    assert redis.Redis(port=on_redis.port).exists(f":1:{VERSION_CACHE_KEY}")
    on_redis.hang()
    open_the_breaker(home)

    # Her own browser on her phone's network: "device on a new network" (35) is allowed under the settings
    # (step up at 40); under the saved policy (step up at 30) it is a step-up. Without counters it is stepped
    # up either way; the finding keeps what the policy decided before that rule.
    home.client.defaults["REMOTE_ADDR"] = IP_DOCOMO
    response, seconds = api_login(home, "alice")
    assert response.json()["status"] == "step_up_required", response.content
    assert seconds < NO_WAIT_SECONDS
    event = last_event()
    assert event.score >= 30 and event.action == "step_up"
    finding = next(f for f in event.findings if f["code"] == "counters_unavailable")
    assert finding["evidence"]["was"] == "step_up"  # the saved policy, not the settings ("allow")
    assert current_policy().version == before.pk

    # A policy saved while Redis hangs (its publication into the cache fails) is in force at the next login:
    # read from the database, not this process's memo of the older one. Step up at 50: allowed again.
    with django_capture_on_commit_callbacks(execute=True):
        during = save_policy(thresholds={"step_up": 50}, by=None, comment="during the outage")
    home.post("/api/logout")  # leave the pending step-up
    events = LoginEvent.objects.count()
    response, seconds = api_login(home, "alice")
    assert LoginEvent.objects.count() == events + 1
    assert response.json()["status"] == "step_up_required", response.content  # still no counters
    assert seconds < NO_WAIT_SECONDS
    event = last_event()
    finding = next(f for f in event.findings if f["code"] == "counters_unavailable")
    assert event.score >= 30 and finding["evidence"]["was"] == "allow", [
        (f["code"], f["score"], f.get("evidence")) for f in event.findings
    ]
    assert current_policy().version == during.pk


@pytest.mark.django_db
def test_redis_hung_a_blocked_network_is_still_refused_and_a_block_added_during_the_outage_too(
    on_redis: RedisServer, alice_at_home: tuple[Any, OrderApi]
) -> None:
    _alice, home = alice_at_home
    block("198.51.100.0/26")  # IP_SG_VPS
    assert networks.active_blocks()  # read once and cached in Redis
    response, _seconds = api_login(OrderApi(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_FIREFOX_LINUX), "alice")
    assert denied_by_block(response, last_event()), response.content

    on_redis.hang()
    open_the_breaker(home)
    response, seconds = api_login(OrderApi(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_FIREFOX_LINUX), "alice")
    assert denied_by_block(response, last_event()), response.content
    assert seconds < NO_WAIT_SECONDS

    # Added while Redis hangs: dropping the cached list fails (one wait, on staff's request), and every login
    # reads the database meanwhile, so the new block applies at once.
    block("198.51.100.64/26")  # IP_US_HOME
    response, seconds = api_login(OrderApi(REMOTE_ADDR=IP_US_HOME, HTTP_USER_AGENT=UA_FIREFOX_LINUX), "alice")
    assert denied_by_block(response, last_event()), response.content
    assert seconds < NO_WAIT_SECONDS
    # Her home is not blocked: the safe login still passes.
    response, _seconds = api_login(home, "alice")
    assert response.json()["status"] == "ok", response.content


# -- one-time spends fail closed ----------------------------------------------------------------------------

needs_drf = pytest.mark.skipif(
    importlib.util.find_spec("rest_framework") is None, reason="djangorestframework is not installed"
)


def token_step_up(client: Any) -> str:
    """A DRF token login from a hosting network: scored ``step_up``; its step-up token."""
    response = client.post(
        "/api/auth/token", {"username": "alice", "password": test_faults_cache.PASSWORD}, format="json"
    )
    assert response.status_code == 401 and response.json()["status"] == "step_up_required", response.content
    return str(response.json()["step_up_token"])


@needs_drf
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.django_db
def test_redis_hung_a_step_up_token_cannot_be_spent_and_works_once_when_redis_is_back(
    on_redis: RedisServer, alice_with_totp: Any, clock: Any
) -> None:
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    alice = alice_with_totp
    client = APIClient(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    step_up_token = token_step_up(client)
    on_redis.hang()
    # Another token login meets the hung cache first and opens the breaker. (A spend that times out on a
    # closed breaker is refused the same way, but Redis may still record it once it resumes: that token then
    # answers step_up_expired, sign in again. Fail closed either way.)
    token_step_up(APIClient(REMOTE_ADDR=IP_US_HOME, HTTP_USER_AGENT=UA_CHROME_WIN))
    assert resilience.cache_breaker().state == OPEN

    for _ in range(3):
        clock.shift(31)  # a fresh code each time: a right code, only the spend cannot be recorded
        started = time.monotonic()
        response = client.post(
            "/api/auth/step-up/totp",
            {"step_up_token": step_up_token, "code": totp_token(alice.totp)},
            format="json",
        )
        assert time.monotonic() - started < NO_WAIT_SECONDS
        # SECURITY: refused (fail closed), a 4xx with a message saying to try again, never a 500 or a token.
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["status"] == "invalid" and body["code"] == "step_up_unavailable", body
        assert "try again" in body["message"] and "token" not in body
    assert resilience.cache_breaker().state == OPEN
    assert not Token.objects.filter(user=alice).exists()

    on_redis.resume()
    resilience.reset_breakers()  # as the breaker's trial call would after reset_seconds
    clock.shift(31)
    right = client.post(
        "/api/auth/step-up/totp",
        {"step_up_token": step_up_token, "code": totp_token(alice.totp)},
        format="json",
    )
    assert right.status_code == 200 and right.json()["status"] == "ok", right.content
    clock.shift(31)
    again = client.post(
        "/api/auth/step-up/totp",
        {"step_up_token": step_up_token, "code": totp_token(alice.totp)},
        format="json",
    )
    assert again.status_code == 401 and again.json()["code"] == "step_up_expired", again.content
    assert Token.objects.filter(user=alice).count() == 1


@needs_drf
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.django_db
def test_redis_hung_a_webauthn_challenge_is_refused_not_spent_and_never_used_twice(
    on_redis: RedisServer, alice_with_totp: Any, authenticator: Any
) -> None:
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    alice = alice_with_totp
    bind_passkey(alice, authenticator)
    client = APIClient(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    step_up_token = token_step_up(client)

    def options() -> dict[str, Any]:
        found = client.post(
            "/api/auth/step-up/passkey/options", {"step_up_token": step_up_token}, format="json"
        )
        assert found.status_code == 200, found.content
        return dict(found.json())

    def assert_with(assertion: dict[str, Any]) -> Any:
        return client.post(
            "/api/auth/step-up/passkey",
            {"step_up_token": step_up_token, "credential": assertion},
            format="json",
        )

    assertion = authenticator.get(options())
    failures_before = AccountLock.objects.filter(user=alice).values_list("failures", flat=True).first() or 0
    on_redis.hang()
    started = time.monotonic()
    refused = assert_with(assertion)
    # SECURITY: the challenge's spend cannot be recorded: refused (fail closed) with a message, never a 500.
    assert refused.status_code == 400 and refused.json()["status"] == "invalid", refused.content
    assert "unavailable right now" in refused.json()["message"], refused.content
    assert time.monotonic() - started < 2 * SOCKET_TIMEOUT + 1
    # The same assertion again: its challenge is gone (popped before anything was verified).
    replayed = assert_with(assertion)
    assert replayed.status_code == 400 and "token" not in replayed.json(), replayed.content
    assert not Token.objects.filter(user=alice).exists()
    # Our outage is not the customer's failure: the refusal counted nothing towards the account lock (the
    # replayed challenge, which anyone could send, does count).
    failures_after = AccountLock.objects.filter(user=alice).values_list("failures", flat=True).first() or 0
    assert failures_after == failures_before + 1

    on_redis.resume()
    resilience.reset_breakers()
    done = assert_with(authenticator.get(options()))
    assert done.status_code == 200 and done.json()["status"] == "ok", done.content
    assert Token.objects.filter(user=alice).count() == 1
