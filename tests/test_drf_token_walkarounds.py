"""An API token is a session: it ends when the browser sessions end (a failure lock, "sign out everywhere
else") and at the absolute session lifetime (red team on the other front ends, 2026-12-05; each test failed
on the code before). The thief has the customer's password and relays one TOTP code; he reads our code.
"""

from __future__ import annotations

import time
from datetime import timedelta
from hashlib import sha256
from typing import Any

import pytest

# isort: split
# test_drf skips this module without djangorestframework (and fails under CI=true): imported first.
from .test_drf import PASSWORD, TOKEN_URL, api, obtain, with_token

# isort: split
import time_machine
from django.utils import timezone
from rest_framework.authtoken.models import Token

from authguard import clock as authguard_clock
from authguard.conf import app_settings
from authguard.login import lockout, unlocking
from authguard.models import AccountLock, TokenActivity

from .conftest import IP_SG_VPS, IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, UA_CURL, passkey_step_up, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip"), pytest.mark.urls("tests.drf_urlconf")]


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def thief_token(customer: Any) -> str:
    """The thief's token: the phished password from a Singapore hosting network, stepped up with one
    relayed TOTP code through authguard's DRF exchange (docs/drf.md)."""
    client = api(IP_SG_VPS, UA_CHROME_WIN)
    login = client.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert login.status_code == 401, login.content
    exchange = client.post(
        "/api/auth/step-up/totp",
        {"step_up_token": login.json()["step_up_token"], "code": totp_token(customer.totp)},
        format="json",
    )
    assert exchange.status_code == 200, exchange.content
    token = exchange.json()["token"]
    assert with_token(api(IP_SG_VPS), token).get("/drf/portfolio").status_code == 200
    return token


# -- 1. a lock after consecutive failures leaves the thief's API token alive ------------------------------


@pytest.mark.battery(66)
def test_a_failure_lock_revokes_the_thiefs_api_token_so_the_customers_unlock_does_not_revive_it(
    alice_with_totp_and_passkey: Any, settings: Any, clock: Any
) -> None:
    """docs/drf.md: "A password change or reset, and an account lock, delete every token of the user", and
    lockout.py: a lock ends every session, "the thief's open one included (case 59)". A lock reached by
    consecutive failures only ends the browser sessions (``lockout._end_all_sessions``), not the DRF tokens:
    the token is merely refused while the lock stands, and once the customer unlocks with her own passkey
    the thief's token (and, within the hour, its TOTP strength) works again."""
    alice = alice_with_totp_and_passkey
    token = thief_token(alice)
    clock.shift(60)

    # Failures lock the account (the customer's own mistyped passwords, or the thief's guesses elsewhere).
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    for _ in range(3):
        lockout.record_failure(alice, kind="password")
    assert AccountLock.objects.get(user=alice).is_locked

    # SECURITY: a lock ends every way into the account, API tokens included (as the desk's lock does).
    assert not Token.objects.filter(user=alice).exists(), "the failure lock left the thief's API token"

    # The customer gets back in with her own passkey, as the lock notice tells her to.
    unlocking.unlock_with_identity_check(alice, device=alice.passkey, method="passkey")
    assert not AccountLock.objects.get(user=alice).is_locked
    portfolio = with_token(api(IP_SG_VPS), token).get("/drf/portfolio")
    assert portfolio.status_code in (401, 403), "the thief's token works again after the customer's unlock"
    withdraw = with_token(api(IP_SG_VPS), token).post("/drf/withdraw")
    assert withdraw.status_code in (401, 403)


# -- 2. "sign out every other session" leaves the thief's API token alive --------------------------------


@pytest.mark.battery(66)
def test_the_customers_sign_out_other_sessions_also_ends_the_thiefs_api_token(
    alice_with_totp_and_passkey: Any, browser_at: Any, authenticator: Any, clock: Any
) -> None:
    """The customer, told of a sign-in she did not make, re-verifies with her passkey and presses "sign out
    every other session" on the security page. The thief's browser session would end; his DRF token (one
    relayed TOTP code) lives on and keeps reading and trading the account (``views.security_end_sessions``
    calls ``end_other_sessions`` only; tokens end only at a password change, a desk lock or her next token
    login)."""
    alice = alice_with_totp_and_passkey
    token = thief_token(alice)
    clock.shift(60)

    customer = browser_at(IP_TOKYO, UA_CHROME_WIN)
    customer.sign_in("alice")
    if customer.session.get("_authguard", {}).get("s") == "pending":
        assert passkey_step_up(customer, authenticator).status_code == 200
    clock.shift(5)
    assert passkey_step_up(customer, authenticator).status_code == 200  # a fresh passkey, as the page asks
    ended = customer.post("/authguard/security/sessions/end-others/")
    assert ended.status_code == 302 and "/reverify/" not in ended.url, ended

    # SECURITY: every other way into her account ends, the API token included.
    assert not Token.objects.filter(user=alice).exists(), "the thief's API token outlived 'sign out others'"
    assert with_token(api(IP_SG_VPS), token).get("/drf/portfolio").status_code in (401, 403)


# -- 3. an API token never times out, a browser session does --------------------------------------------


@pytest.mark.battery(66)
def test_a_thiefs_api_token_ends_with_the_session_lifetime_a_browser_session_gets(
    alice_with_totp: Any, clock: Any
) -> None:
    """docs/step-up.md: a signed-in session older than ``AUTHGUARD_SESSION_ABSOLUTE_SECONDS`` is signed out
    however active (AAL2: at most 24 h). The same relayed-code login made through the DRF token endpoint
    buys a credential with no lifetime at all: ``authguard.drf.TokenAuthentication`` checks only the lock, so
    the thief keeps reading and trading the account (orders under the risky-session limits, again and again)
    for weeks, until the customer happens to change her password or sign in to an API client herself."""
    token = thief_token(alice_with_totp)
    # The thief keeps the token busy (never idle), for a day and a bit.
    elapsed = 0
    while elapsed <= app_settings.SESSION_ABSOLUTE_SECONDS:
        clock.shift(1800)
        elapsed += 1800
        last = with_token(api(IP_SG_VPS), token).get("/drf/portfolio")
    # SECURITY: past the absolute lifetime a browser session gets, the token signs nothing in.
    assert last.status_code in (401, 403), f"the token still works {elapsed // 3600} h after the login"
    later = with_token(api(IP_SG_VPS), token).get("/drf/portfolio")
    clock.shift(7 * 86400)
    week = with_token(api(IP_SG_VPS), token).get("/drf/portfolio")
    assert later.status_code in (401, 403) and week.status_code in (401, 403)


@pytest.mark.battery(66)
def test_an_api_tokens_absolute_lifetime_does_not_stretch_with_the_issuing_nodes_fast_clock(
    alice_with_totp: Any, monkeypatch: Any
) -> None:
    """e9ac580 ends a token older than ``AUTHGUARD_SESSION_ABSOLUTE_SECONDS`` by ``clock.now() -
    token.created``. ``clock.now()`` is corrected to the database's clock (docs/faults.md, issue 15: "every
    web node writes times that other nodes compare ... through clock.now()"), but ``Token.created`` is DRF's
    ``auto_now_add``: the issuing node's own, uncorrected ``timezone.now()``. A token issued on a node whose
    clock runs 6 hours fast (authguard.W180 warns, the node keeps serving, "corrected") is born 6 hours in
    the future and lives 30 hours; a day fast, 48. The thief, who can retry his relayed-code login until it
    lands on that node, keeps the account for that long.

    SECURE: the lifetime is counted on the corrected clock (``created`` written from ``clock.now()``, or a
    ``created`` in the future beyond the tolerance refused: ``clock.is_from_the_future``)."""
    fast = 6 * 3600
    start = timezone.now()
    # The issuing node: its OS clock 6 h fast; authguard measured it and corrects its own times.
    with time_machine.travel(start + timedelta(seconds=fast), tick=False):
        monkeypatch.setattr(
            authguard_clock,
            "_last",
            authguard_clock.Skew(
                offset=-fast, round_trip=0.001, database="default", measured_at=time.monotonic()
            ),
        )
        assert abs((authguard_clock.now() - start).total_seconds()) < 1  # corrected: the true time
        answer = obtain(api())
        assert answer.status_code == 200, answer.content
        token = answer.json()["token"]
    monkeypatch.setattr(authguard_clock, "_last", None)  # the other nodes' clocks are right

    # An hour past the absolute lifetime, on a node with a correct clock.
    later = start + timedelta(seconds=app_settings.SESSION_ABSOLUTE_SECONDS + 3600)
    with time_machine.travel(later, tick=False):
        used = with_token(api(), token).get("/drf/portfolio")
    # SECURE: 25 hours after the sign-in, the token signs nothing in.
    assert used.status_code in (401, 403), (
        f"the token still works {(later - start).total_seconds() / 3600:.0f} h after the sign-in"
    )


# -- an API token left unused is a session left open -------------------------------------------------------


@pytest.mark.battery(66)
def test_an_api_token_left_unused_ends_like_an_idle_browser_session(alice_with_totp: Any, clock: Any) -> None:
    """docs/step-up.md: a session unused for ``AUTHGUARD_SESSION_IDLE_SECONDS`` (an hour) is signed out. The
    thief's token from one relayed code, put aside and picked up again later in the day (when she is not
    looking), still worked until the absolute lifetime: idle time was not measured for tokens."""
    token = thief_token(alice_with_totp)
    idle = app_settings.SESSION_IDLE_SECONDS
    # Used every half hour, the token lives (the idle time counts from the last use, not the sign-in).
    for _ in range(4):
        clock.shift(idle // 2)
        assert with_token(api(IP_SG_VPS), token).get("/drf/portfolio").status_code == 200
    clock.shift(idle + 61)
    ended = with_token(api(IP_SG_VPS), token).get("/drf/portfolio")
    assert ended.status_code in (401, 403), "an API token unused for longer than a session may be still works"
    assert not Token.objects.filter(key=token).exists()
    assert not TokenActivity.objects.filter(token_digest=sha256(token.encode()).hexdigest()).exists()


def test_a_token_without_its_activity_row_ends_at_its_next_use(alice_with_totp: Any, clock: Any) -> None:
    """A token without an activity row was revoked by a call in flight beside this one (it had loaded the
    token before the delete), or was issued before the activity table existed: it ends at its next use, and
    no row is written for it (round fifteen: a row written back for it was bound to the thief's network)."""
    token = thief_token(alice_with_totp)
    digest = sha256(token.encode()).hexdigest()
    TokenActivity.objects.filter(token_digest=digest).delete()
    clock.shift(app_settings.SESSION_IDLE_SECONDS // 2)
    assert with_token(api(IP_SG_VPS), token).get("/drf/portfolio").status_code in (401, 403)
    assert not TokenActivity.objects.filter(token_digest=digest).exists()
    assert not Token.objects.filter(key=token).exists()


@pytest.mark.battery(66)
def test_a_tokens_last_use_written_by_a_node_running_ahead_ends_it(alice_with_totp: Any) -> None:
    """docs/faults.md and ``clock.is_from_the_future``: a time written by a node whose clock ran ahead is
    "suspicious (fail closed), never 'just now'"; the token's ``created`` was checked that way, its last use
    was not (red team, round ten). A node whose clock runs 55 minutes ahead with no correction applied
    (MySQL and Oracle are never measured; on PostgreSQL between a clock step and the next measurement)
    serves one call: the last use is written 55 minutes from now, and the touch never moved it back. On the
    nodes whose clocks are right the token then ended only when its idle time counted from that future
    time ran out. A last use from the future beyond the tolerance now ends the token at once. (Once the
    written time has passed, the idle time counts from it: an uncorrected node stretches it by its skew, as
    it does a browser session's; authguard.W180 warns of such a node.)"""
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        token = thief_token(alice_with_totp)
    ahead = app_settings.SESSION_IDLE_SECONDS - 300  # 55 minutes ahead: that node still serves the token
    with time_machine.travel(start + timedelta(seconds=60 + ahead), tick=False):
        assert with_token(api(IP_SG_VPS), token).get("/drf/portfolio").status_code == 200
    row = TokenActivity.objects.get(token_digest=sha256(token.encode()).hexdigest())
    assert row.last_used_at > start + timedelta(seconds=ahead)  # the future time is stored
    # Ten minutes on, a node whose clock is right: the last use is still 45 minutes in its future.
    with time_machine.travel(start + timedelta(seconds=60 + 600), tick=False):
        used = with_token(api(IP_SG_VPS), token).get("/drf/portfolio")
    assert used.status_code in (401, 403), "a token whose last use is dated in the future still works"
    assert not Token.objects.filter(key=token).exists()


@pytest.mark.postgres
def test_a_token_header_with_a_nul_byte_is_refused_not_a_server_error() -> None:
    """``authguard.drf.TokenAuthentication`` (the class docs/drf.md tells portals to put in
    ``DEFAULT_AUTHENTICATION_CLASSES``) passes the header's key to DRF's ``Token.objects.get(key=...)``
    unchecked: on PostgreSQL a key with a NUL byte raises ``DataError`` ("text fields cannot contain NUL")
    out of authentication, a 500 for every DRF view, also the ones that need no sign-in, as often as anyone
    asks (an error report and a traceback each). The JSON login refuses NUL in credentials
    (``drf._credential``); the token header does not. CORRECT: 401/403, as for any unknown key."""
    client = api()
    client.raise_request_exception = False
    client.credentials(HTTP_AUTHORIZATION="Token " + "a" * 20 + "\x00" + "b" * 19)
    answer = client.get("/drf/portfolio")
    assert answer.status_code in (401, 403), f"a NUL byte in the token header answers {answer.status_code}"


# -- round eleven: two healthy nodes disagree by up to twice the tolerance ------------------------------


def test_a_token_issued_on_one_node_is_not_ended_by_the_next_node_within_the_tolerance(
    alice_with_totp: Any,
) -> None:
    """docs/faults.md: a node whose clock is within ``tolerance_seconds`` (2 s) of the database's is "no
    correction at all": it is a healthy node. Two such nodes may disagree by twice the tolerance. The token
    is issued on a node 1.5 s ahead (``created`` is its ``clock.now()``); the client's first call, half a
    second later, lands on a node 1.5 s behind: ``created`` lies 2.5 s in that node's future,
    ``is_from_the_future`` says "beyond the tolerance", and the customer's brand-new token is deleted (401,
    "Sign in again"). Nothing was skewed beyond what authguard itself calls healthy. CORRECT: 200."""
    true = timezone.now()
    with time_machine.travel(true + timedelta(seconds=1.5), tick=False):  # node A: +1.5 s, uncorrected
        issued = obtain(api())
        assert issued.status_code == 200, issued.content
        token = issued.json()["token"]
    with time_machine.travel(true + timedelta(seconds=0.5 - 1.5), tick=False):  # node B: -1.5 s
        first = with_token(api(), token).get("/drf/portfolio")
    assert first.status_code == 200, f"her new token ended on its first call: {first.status_code}"
    assert Token.objects.filter(key=token).exists()


def test_a_busy_clients_token_survives_its_minute_touch_landing_on_a_node_ahead_within_the_tolerance(
    alice_with_totp: Any,
) -> None:
    """Round ten's fix: a last use "dated in the future beyond the clock tolerance" now *ends* the token
    (a browser session's from the future is reset to now instead: docs/faults.md, "a customer whose request
    hit a fast node keeps its session"). A trading client polls twice a second through a load balancer over
    two healthy nodes, one 1.8 s ahead and one 1.8 s behind (each within the 2 s tolerance: never
    corrected, no W180). Once a minute a call writes the last use (``TOUCH_SECONDS``); when that call lands
    on the node ahead and the next one, half a second later, on the node behind, the last use lies 3.1 s in
    that node's future: the customer's token is deleted mid-session, about once an hour of trading, with no
    clock beyond the tolerance anywhere. CORRECT: 200 (as a session's activity from the future is reset)."""
    true = timezone.now()
    with time_machine.travel(true, tick=False):
        issued = obtain(api())
        assert issued.status_code == 200, issued.content
        token = issued.json()["token"]
    with time_machine.travel(true + timedelta(seconds=30 - 1.8), tick=False):  # node behind: no touch yet
        assert with_token(api(), token).get("/drf/portfolio").status_code == 200
    with time_machine.travel(true + timedelta(seconds=60 + 1.8), tick=False):  # the touch, on the node ahead
        assert with_token(api(), token).get("/drf/portfolio").status_code == 200
    with time_machine.travel(true + timedelta(seconds=60.5 - 1.8), tick=False):  # half a second on, behind
        after = with_token(api(), token).get("/drf/portfolio")
    assert after.status_code == 200, f"a healthy pair of nodes ended her token: {after.status_code}"
    assert Token.objects.filter(key=token).exists()


def test_a_browser_session_signed_in_on_one_node_is_not_ended_by_the_next_node_within_the_tolerance(
    hanako: Any, order_api: Any
) -> None:
    """The same rule on the browser side (the token's ``created`` check copies it): the session middleware
    ends a session whose sign-in lies "more than the tolerance in the future". hanako signs in on a node
    1.5 s ahead; her next request, half a second later, lands on a node 1.5 s behind (both healthy by
    authguard's own standard: within ``tolerance_seconds``, never corrected, no W180): her sign-in is 2.5 s
    in that node's future and she is signed out on her first page. Elapsed times between two nodes are only
    known to within twice the tolerance. CORRECT: she is still signed in."""
    from .conftest import HANAKO_PASSWORD

    true = timezone.now()
    her = order_api(REMOTE_ADDR="203.0.113.10")
    with time_machine.travel(true + timedelta(seconds=1.5), tick=False):  # node A
        her.login("hanako", HANAKO_PASSWORD)
    with time_machine.travel(true + timedelta(seconds=0.5 - 1.5), tick=False):  # node B
        page = her.get("/api/portfolio")
    assert page.status_code == 200, f"signed out on her first page: {page.status_code}"


# -- round twelve: a step-up's freshness between two healthy nodes ----------------------------------------


def test_a_token_stepped_up_on_one_node_is_fresh_on_the_next_node_within_the_tolerance(
    alice_with_totp: Any,
) -> None:
    """Round eleven: elapsed times between two nodes are only known to within twice ``tolerance_seconds``
    (two uncorrected, healthy nodes), so ``clock.is_from_the_future`` moved to twice the tolerance. But the
    freshness of a step-up still asks ``0 <= elapsed`` (``authguard/drf.py`` ``_token_fresh``; the same in
    ``sessions/state.py`` ``has_fresh_verification``). alice steps her token login up with her app on a
    node 1.5 s ahead (``strength.at``); her withdrawal, half a second later, lands on a node 1.5 s behind:
    the step-up lies 2.5 s in that node's future and she is told to confirm with a second factor again
    (403 ``reverify``), which can repeat for as long as the balancer alternates. CORRECT: 200."""
    true = timezone.now()
    with time_machine.travel(true + timedelta(seconds=1.5), tick=False):  # node A: +1.5 s, uncorrected
        token = thief_token(alice_with_totp)  # stepped up with her app through the DRF exchange
    with time_machine.travel(true + timedelta(seconds=0.5 - 1.5), tick=False):  # node B: -1.5 s
        withdraw = with_token(api(IP_SG_VPS, UA_CHROME_WIN), token).post("/drf/withdraw")
    assert withdraw.status_code == 200, (
        f"her step-up of half a second ago is not fresh on a healthy node: {withdraw.status_code} "
        f"{withdraw.content!r}"
    )


def test_a_browser_step_up_on_one_node_is_fresh_on_the_next_node_within_the_tolerance(
    brokerage_customer: Any,
) -> None:
    """The browser side of the same rule: ``has_fresh_verification`` (``@step_up_required``, DRF's
    ``StepUpRequired`` on a session, the e-mail change, a factor change) refuses a verification written by
    a node ahead within the tolerance. hanako steps up with her app on a node 1.5 s ahead; the sensitive
    request half a second later lands on a node 1.5 s behind. CORRECT: 200."""
    from django.test import Client

    from .conftest import HANAKO_PASSWORD

    hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
    true = timezone.now()
    browser = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    with time_machine.travel(true + timedelta(seconds=1.5), tick=False):  # node A
        login = browser.post(
            "/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}, content_type="application/json"
        )
        assert login.status_code == 200, login.content
        assert login.json()["status"] == "step_up_required", login.content
        stepped = browser.post(
            "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, "application/json"
        )
        assert stepped.status_code == 200, stepped.content
    with time_machine.travel(true + timedelta(seconds=0.5 - 1.5), tick=False):  # node B
        withdraw = browser.post("/drf/withdraw")
    assert withdraw.status_code == 200, (
        f"her step-up of half a second ago is not fresh on a healthy node: {withdraw.status_code} "
        f"{withdraw.content!r}"
    )


# -- round fourteen: a token is bound to where it was issued ---------------------------------------------


@pytest.mark.battery(66)
def test_a_copied_api_token_replayed_from_a_hosting_network_abroad_ends(alice_with_totp: Any) -> None:
    """docs/drf.md: a token is bound to its network, country and client, as a browser session is. Her app's
    token, copied off her computer and replayed by a script on a hosting network in Singapore, was served in
    full for up to a day (red team, round fourteen): it is scored again, refused, recorded and revoked."""
    from authguard.models import LoginEvent

    answer = obtain(api(IP_TOKYO, UA_CHROME_WIN))
    assert answer.status_code == 200, answer.content
    token = answer.json()["token"]
    assert with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get("/drf/portfolio").status_code == 200
    events = LoginEvent.objects.filter(user=alice_with_totp).count()

    stolen = with_token(api(IP_SG_VPS, UA_CURL), token).get("/drf/portfolio")

    assert stolen.status_code in (401, 403), stolen.content  # the view's first authentication class decides
    assert "Sign in again" in stolen.json()["detail"]
    assert not Token.objects.filter(key=token).exists()
    assert not TokenActivity.objects.filter(token_digest=sha256(token.encode()).hexdigest()).exists()
    refused = LoginEvent.objects.filter(user=alice_with_totp).latest("pk")
    assert LoginEvent.objects.filter(user=alice_with_totp).count() == events + 1
    assert (refused.outcome, refused.ip) == ("refused", IP_SG_VPS)
    # Her app, back home, signs in again: the copy's end is not hers for good.
    assert with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get("/drf/portfolio").status_code in (401, 403)
    assert obtain(api(IP_TOKYO, UA_CHROME_WIN)).status_code == 200


def test_a_token_used_from_another_address_of_its_network_carries_on_unscored(alice_with_totp: Any) -> None:
    """Another address of the same network nearby (a new lease, the next CGNAT address) is no material
    change: the token is served and nothing is scored or recorded."""
    from authguard.models import LoginEvent

    token = obtain(api(IP_TOKYO, UA_CHROME_WIN)).json()["token"]
    events = LoginEvent.objects.filter(user=alice_with_totp).count()
    digest = sha256(token.encode()).hexdigest()
    bound = TokenActivity.objects.get(token_digest=digest).binding
    assert (bound["b"]["ip"], bound["b"]["cc"], bound["b"]["dev"]) == (IP_TOKYO, "JP", None)

    assert with_token(api(IP_TOKYO_2, UA_CHROME_WIN), token).get("/drf/portfolio").status_code == 200

    assert LoginEvent.objects.filter(user=alice_with_totp).count() == events
    moved = TokenActivity.objects.get(token_digest=digest).binding
    assert moved["b"]["ip"] == IP_TOKYO_2 and moved["an"] == bound["an"]  # the issue place stays the anchor


def test_a_token_from_before_bindings_is_bound_where_it_is_first_used(alice_with_totp: Any) -> None:
    """A token issued before migration 0022 has no binding: it is bound at its first use after the deploy,
    and a copy used elsewhere after that is scored as any other."""
    token = obtain(api(IP_TOKYO, UA_CHROME_WIN)).json()["token"]
    digest = sha256(token.encode()).hexdigest()
    TokenActivity.objects.filter(token_digest=digest).update(binding={})

    assert with_token(api(IP_TOKYO, UA_CHROME_WIN), token).get("/drf/portfolio").status_code == 200
    assert TokenActivity.objects.get(token_digest=digest).binding["b"]["ip"] == IP_TOKYO
    assert with_token(api(IP_SG_VPS, UA_CURL), token).get("/drf/portfolio").status_code in (401, 403)
    assert not Token.objects.filter(key=token).exists()


def test_with_step_up_report_only_a_moved_token_is_recorded_and_carries_on(
    alice_with_totp: Any, settings: Any
) -> None:
    """Rollout (``AUTHGUARD_REPORT_ONLY``): the re-score is recorded with what would have happened; the
    token is rebound there and served."""
    from authguard.models import LoginEvent

    token = obtain(api(IP_TOKYO, UA_CHROME_WIN)).json()["token"]
    settings.AUTHGUARD_REPORT_ONLY = ["step_up"]

    assert with_token(api(IP_SG_VPS, UA_CURL), token).get("/drf/portfolio").status_code == 200

    event = LoginEvent.objects.filter(user=alice_with_totp).latest("pk")
    assert event.ip == IP_SG_VPS
    assert "report_only" in {finding["code"] for finding in event.findings}
    rebound = TokenActivity.objects.get(token_digest=sha256(token.encode()).hexdigest()).binding
    assert rebound["b"]["ip"] == IP_SG_VPS
