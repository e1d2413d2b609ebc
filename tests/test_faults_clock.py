"""Faults of clocks: a web node whose clock is off, for real. A second process runs the demo (Django's test
client in it) under ``faketime`` against the same PostgreSQL test database; PostgreSQL runs in its own
process on the true clock, and so does this test.

What must hold (issue 15, docs/faults.md): the skewed node measures its offset against the database, logs
it, and writes the database's time: a held order's 5-minute deadline stays 5 minutes, a session it signs in
is neither stretched nor cut elsewhere, and a phishing relay signing in on it seconds after the victim is
still seen as minutes after the last sign-in. Without the correction (a tolerance of a day) the same node
stretches the deadline to 2 h 5 min, and the times it writes from the future are treated as suspicious:
the session is ended, the relay is still flagged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from authguard.conf import app_settings
from authguard.models import AccountLock, HeldOrder, LoginEvent, Outcome
from demo_site.brokerage import services

from .conftest import IP_OSAKA, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, UA_FIREFOX_LINUX, OrderApi

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "kenji-test-2025"
PLAIN_RULES = [{"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {}}]
#: No correction at all: the node's clock as it is (what authguard did before).
UNCORRECTED = {"AUTHGUARD_CLOCK": {"tolerance_seconds": 86_400}}
#: How far a corrected time may be from the true one (the measurement, the process start, the request).
CLOSE = 10.0


def faketime() -> str:
    binary = shutil.which("faketime")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and faketime is not on PATH: the clock fault tests are mandatory in CI")
        pytest.skip("faketime is not on PATH (apt-get install faketime)")
    return binary


def skewed_node(skew: str, job: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Run ``tests.skewed_node`` under ``faketime -f <skew>`` on this test's database: its report, stderr."""
    done = run_skewed(skew, ["-m", "tests.skewed_node", json.dumps(job)])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def current_database_url() -> str:
    """The URL of the database this test runs on (the test database): for a second process to share it."""
    db = connection.settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}/{db['NAME']}"


def run_skewed(skew: str, arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with ``arguments`` under ``faketime -f <skew>``, on this test's database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AUTHGUARD_TEST_DB": "postgres",
        "AUTHGUARD_TEST_DATABASE_URL": current_database_url(),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [faketime(), "-f", skew, sys.executable, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def kenji(db: Any, settings: Any) -> Any:
    settings.AUTHGUARD_ORDER_RULES = PLAIN_RULES
    settings.AUTHGUARD_RISK_SIGNALS = []
    services.sync_instruments()
    return services.open_account(
        "kenji", PASSWORD, email="kenji@example.jp", cash=Decimal(0), holdings={"9432": 2000}
    )


def hold_on_skewed_node(skew: str, extra_settings: dict[str, Any]) -> tuple[dict[str, Any], str, float]:
    """kenji signs in on the skewed node and sells all his NTT there (held for confirmation)."""
    job = {
        "settings": {"AUTHGUARD_ORDER_RULES": PLAIN_RULES, "AUTHGUARD_RISK_SIGNALS": [], **extra_settings},
        "client": {"REMOTE_ADDR": IP_TOKYO, "HTTP_USER_AGENT": UA_CHROME_WIN},
        "requests": [
            ["/api/login", {"username": "kenji", "password": PASSWORD}, {}],
            ["/api/orders", {"side": "sell", "symbol": "9432", "quantity": 2000}, {}],
        ],
    }
    started = time.time()
    report, stderr = skewed_node(skew, job)
    (login_status, login), (order_status, order) = report["answers"]
    assert login_status == 200 and login["status"] == "ok", login
    assert order_status == 202 and order["status"] == "held", order
    return report, stderr, started


def same_session_here(report: dict[str, Any]) -> int:
    """This (true-clock) node's answer to the skewed node's session (the same browser, its whole cookie
    jar: session and device cookie): 200 when it is still signed in."""
    client = OrderApi(REMOTE_ADDR=IP_TOKYO)
    client.client.cookies[django_settings.SESSION_COOKIE_NAME] = report["session"]
    if report.get("device"):
        client.client.cookies["authguard_device"] = report["device"]
    return int(client.get("/api/portfolio").status_code)


@pytest.mark.battery(47)
def test_a_node_two_hours_ahead_writes_the_database_time(kenji: Any) -> None:
    report, stderr, started = hold_on_skewed_node("+2h", {})
    # The node's own clock really is 2 h ahead; it measured that against PostgreSQL and logged it.
    assert abs(report["node_time"] - started - 7200) < CLOSE, report
    assert abs(report["offset"] + 7200) < CLOSE, report
    assert abs(report["clock_now"] - time.time()) < CLOSE, report
    assert "this node's clock is +7200" in stderr, stderr
    # Before: expires_at = the node's now + 5 minutes = 2 h 5 min away. Now 5 minutes, as everywhere.
    held = HeldOrder.objects.get(user=kenji)
    assert abs(held.expires_at.timestamp() - (started + 300)) < CLOSE, held.expires_at
    # Its session's times are the database's: the true-clock node serves it as signed in.
    assert same_session_here(report) == 200


def test_without_the_correction_times_from_the_future_fail_closed(kenji: Any) -> None:
    report, stderr, started = hold_on_skewed_node("+2h", UNCORRECTED)
    assert abs(report["clock_now"] - started - 7200) < CLOSE  # the node's own clock, uncorrected
    assert "this node's clock is" not in stderr
    # What the correction prevents: the 5-minute confirmation stretched to 2 h 5 min (as before).
    held = HeldOrder.objects.get(user=kenji)
    assert abs(held.expires_at.timestamp() - (started + 7200 + 300)) < CLOSE, held.expires_at
    # A session signed in "2 h from now" is no recent activity: this node ends it (before: valid for 2 h
    # longer than the idle timeout allows).
    assert same_session_here(report) in (401, 403)


@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize(
    "skew,extra", [("-90s", {}), ("-90s", UNCORRECTED)], ids=["corrected", "uncorrected"]
)
def test_a_phishing_relay_on_a_node_90_seconds_behind_is_still_a_network_hop(
    alice_with_totp: Any, geoip: Path, skew: str, extra: dict[str, Any]
) -> None:
    victim = OrderApi(REMOTE_ADDR=IP_TOKYO)
    for _ in range(3):  # the victim at home, as usual, on this (true-clock) node
        assert victim.login("alice", "correct horse battery").json()["status"] == "ok"
        victim.post("/api/logout")
    assert victim.login("alice", "correct horse battery").json()["status"] == "ok"
    # Seconds later the relay replays her password from another Japanese network (KDDI, Osaka) with a new
    # browser, on a node whose clock is 90 s behind: before, the elapsed time was negative and the hop
    # unseen, and the relay was stepped up instead of denied.
    job = {
        "settings": {"AUTHGUARD_GEOIP_PATH": str(geoip), **extra},
        "client": {"REMOTE_ADDR": IP_OSAKA, "HTTP_USER_AGENT": UA_FIREFOX_LINUX},
        "requests": [["/api/login", {"username": "alice", "password": "correct horse battery"}, {}]],
    }
    report, _stderr = skewed_node(skew, job)
    [(status, answer)] = report["answers"]
    relay = LoginEvent.objects.filter(user=alice_with_totp).order_by("-id")[0]
    assert (status, answer["status"], relay.action) == (403, "denied", "deny"), answer
    assert relay.outcome != Outcome.SIGNED_IN
    # The hop is what denies it: without its score the relay would only be stepped up.
    others = sum(f["score"] for f in relay.findings if f["code"] != "network_hop")
    assert app_settings.THRESHOLDS["step_up"] <= others < app_settings.THRESHOLDS["deny"], relay.findings
    hop = next(f for f in relay.findings if f["code"] == "network_hop")
    seconds = hop["evidence"]["seconds"]
    if extra:
        assert -100 < seconds < -80, hop  # the node's own clock: negative, and flagged all the same
    else:
        assert 0 <= seconds < CLOSE, hop  # the database's time: seconds after the victim


@pytest.mark.redis
@pytest.mark.parametrize("extra", [{}, UNCORRECTED], ids=["corrected", "uncorrected"])
def test_a_node_two_hours_ahead_counts_in_the_same_throttle_windows(
    kenji: Any, settings: Any, extra: dict[str, Any]
) -> None:
    """The throttle's counters are shared (Redis); their windows come from the clock."""
    throttle = {"ip_failures": 4, "user_failures": 100}
    settings.AUTHGUARD_LOGIN_THROTTLE = throttle
    wrong = ["/api/login", {"username": "kenji", "password": "a guess"}, {}]
    job = {
        "settings": {"AUTHGUARD_LOGIN_THROTTLE": throttle, "AUTHGUARD_RISK_SIGNALS": [], **extra},
        "client": {"REMOTE_ADDR": IP_SG_VPS, "HTTP_USER_AGENT": UA_FIREFOX_LINUX},
        "requests": [wrong] * 4,
    }
    report, _stderr = skewed_node("+2h", job)
    assert [status for status, _answer in report["answers"]] == [401] * 4
    # The fifth guess from the same address, on a true-clock node.
    here = OrderApi(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    fifth = here.post("/api/login", {"username": "kenji", "password": "a guess"})
    if extra:
        assert fifth.status_code == 401, fifth.content  # before: counted in windows 2 h away, limit doubled
    else:
        assert fifth.status_code == 429 and fifth.json()["status"] == "throttled", fifth.content


@pytest.mark.parametrize("extra", [{}, UNCORRECTED], ids=["corrected", "uncorrected"])
def test_wrong_passwords_on_a_node_two_hours_behind_count_towards_the_lock(
    kenji: Any, settings: Any, extra: dict[str, Any]
) -> None:
    """The lock counts consecutive failures within a window (here 1 h, limit 3) from the last one's time."""
    lockout = {"AUTHGUARD_LOCKOUT_FAILURES": 3, "AUTHGUARD_LOCKOUT_FAILURE_WINDOW_HOURS": 1}
    for name, value in lockout.items():
        setattr(settings, name, value)
    wrong = ["/api/login", {"username": "kenji", "password": "a guess"}, {}]
    job = {
        "settings": {"AUTHGUARD_RISK_SIGNALS": [], **lockout, **extra},
        "client": {"REMOTE_ADDR": IP_SG_VPS, "HTTP_USER_AGENT": UA_FIREFOX_LINUX},
        "requests": [wrong] * 2,
    }
    started = time.time()
    report, _stderr = skewed_node("-2h", job)
    assert [status for status, _answer in report["answers"]] == [401] * 2
    lock = AccountLock.objects.get(user=kenji)
    assert lock.failures == 2 and lock.locked_at is None
    # The third guess, on a true-clock node.
    here = OrderApi(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    here.post("/api/login", {"username": "kenji", "password": "a guess"})
    lock.refresh_from_db()
    if extra:
        # Before: the slow node's failures were written "2 h ago", outside the window: the count started
        # again and the guesser had 3 more tries for every 2 on the slow node.
        assert lock.failures == 1 and lock.locked_at is None
    else:
        assert lock.failures == 3 and lock.locked_at is not None
        assert abs(lock.locked_at.timestamp() - started) < CLOSE


@pytest.mark.battery(47)
def test_the_skew_check_warns_on_the_skewed_node_only() -> None:
    check = ["manage.py", "check", "--database", "default", "--settings", "tests.settings"]
    skewed = run_skewed("+2h", check)
    assert skewed.returncode == 0, skewed.stderr  # a warning: the node keeps serving, corrected
    assert "authguard.W180" in skewed.stderr and "+7200" in skewed.stderr, skewed.stderr
    on_time = run_skewed("+0", check)
    assert on_time.returncode == 0 and "authguard.W180" not in on_time.stderr + on_time.stdout
