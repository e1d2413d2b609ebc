"""The middleware-cost benchmark (``python -m bench.load``) measures what it claims to measure.

* Its "without" settings differ from the demo's only by authguard's middleware.
* The session it builds is a real, verified authguard session: the real middleware serves the portfolio
  to it, and the same cookies from another network and browser are not served.
* The end-to-end run (two gunicorn servers and a load generator) runs only with
  ``AUTHGUARD_TEST_BENCH_LOAD=1``: it takes a few seconds of both cores.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import resolve

from authguard.sessions.state import session_state
from bench.load.customer import PORTFOLIO_MARKER, BenchSession, seed_customer, sign_in
from bench.load.drivers import RoundResult
from bench.load.run import WITH, WITHOUT, _order, summarize

from .conftest import IP_SG_VPS, IP_TOKYO, UA_FIREFOX_LINUX

AUTHGUARD_MIDDLEWARE = "authguard.middleware.AuthguardMiddleware"
REPO = Path(__file__).resolve().parents[1]


def _settings_of(module: Any) -> dict[str, Any]:
    return {name: getattr(module, name) for name in vars(module) if name.isupper()}


def test_settings_without_differ_from_the_demo_only_by_authguards_middleware() -> None:
    demo = _settings_of(importlib.import_module("demo_site.settings"))
    without = _settings_of(importlib.import_module("bench.load.settings_without"))
    assert AUTHGUARD_MIDDLEWARE in demo["MIDDLEWARE"]
    assert without["MIDDLEWARE"] == [m for m in demo["MIDDLEWARE"] if m != AUTHGUARD_MIDDLEWARE]
    assert len(without["MIDDLEWARE"]) == len(demo["MIDDLEWARE"]) - 1
    assert "django_otp.middleware.OTPMiddleware" in without["MIDDLEWARE"]
    assert without.keys() == demo.keys()
    assert {name for name in demo if without[name] != demo[name]} == {"MIDDLEWARE"}


def test_without_the_middleware_authguard_no_longer_sees_the_request(db: Any, settings: Any) -> None:
    without = importlib.import_module("bench.load.settings_without")
    assert "authguard_device" in Client().get("/login/").cookies  # the demo's stack issues the cookie
    settings.MIDDLEWARE = without.MIDDLEWARE
    assert "authguard_device" not in Client().get("/login/").cookies


@pytest.fixture
def bench_customer(db: Any, geoip: Path, settings: Any) -> tuple[Any, str]:
    # As in the demo, loopback plays the reverse proxy, so X-Forwarded-For places the benchmark's browser.
    settings.AUTHGUARD_TRUSTED_PROXIES = ["127.0.0.1/32"]
    return seed_customer()


def _get_portfolio(session: BenchSession, **meta: str) -> Any:
    return Client().get("/", **{**session.client_meta(), **meta})


def test_the_bench_session_is_verified_and_served_by_the_real_middleware(
    bench_customer: tuple[Any, str],
) -> None:
    user, password = bench_customer
    session = sign_in(user, password, client_ip=IP_TOKYO)
    assert {"sessionid", "authguard_device"} <= session.cookies.keys()
    assert session.how == "login allowed outright"

    response = _get_portfolio(session)
    assert response.status_code == 200 and PORTFOLIO_MARKER in response.content.decode()
    state = session_state(response.wsgi_request)
    assert state is not None and state.status == "verified" and state.login_action == "allow"
    assert response.wsgi_request.user == user
    # The same for every request the load generator sends: nothing in the answer changes the session.
    assert _get_portfolio(session).status_code == 200

    # The headers are what binds it: the same cookies from another network and browser are not served.
    replayed = _get_portfolio(session, HTTP_X_FORWARDED_FOR=IP_SG_VPS, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    assert replayed.status_code == 302 and PORTFOLIO_MARKER not in replayed.content.decode()
    assert Client().get("/").status_code == 302  # and nothing is served without the cookies


def test_a_login_that_must_step_up_is_verified_with_a_real_totp_code(
    bench_customer: tuple[Any, str], settings: Any
) -> None:
    resolve("/authguard/api/step-up/totp")  # the step-up TOTP API of CONTRACTS section 4
    settings.AUTHGUARD_THRESHOLDS = {"step_up": 0, "deny": 100}  # every login must step up
    user, password = bench_customer
    session = sign_in(user, password, client_ip=IP_TOKYO)
    assert session.how == "login stepped up with a TOTP code"
    response = _get_portfolio(session)
    assert response.status_code == 200
    state = session_state(response.wsgi_request)
    assert state is not None and state.status == "verified" and state.stepped_up
    assert state.strong_method == "totp"


def _round(label: str, rps: float, cpu_ms: float) -> RoundResult:
    return RoundResult(label, requests=int(rps * 10), seconds=10.0, non_200=0, errors=0, p50_ms=1.0,
                       p90_ms=2.0, p99_ms=3.0, server_cpu_s=rps * 10 * cpu_ms / 1000)  # fmt: skip


def test_rounds_interleave_and_the_ratio_is_the_median_of_adjacent_pairs() -> None:
    assert _order(3) == [WITH, WITHOUT, WITHOUT, WITH, WITH, WITHOUT]
    # Pairs: 96/100, 190/200 (the machine got faster for both), 95/100.
    results = [_round(WITH, 96, 5.5), _round(WITHOUT, 100, 5.0), _round(WITHOUT, 200, 5.0),
               _round(WITH, 190, 5.2), _round(WITH, 95, 5.3), _round(WITHOUT, 100, 5.1)]  # fmt: skip
    summary = summarize(results, 0.95)
    assert (summary["rps_with"], summary["rps_without"]) == (96.0, 100.0)
    assert (summary["ratio"], summary["ratio_of_medians"]) == (0.95, 0.96)
    assert summary["pair_ratios"] == [0.96, 0.95, 0.95]
    assert summary["met"] is True and summarize(results, 0.96)["met"] is False
    assert summary["cpu_ms_per_request"] == {WITH: 5.3, WITHOUT: 5.0}
    assert summary["cpu_ratio"] == round(5.0 / 5.2, 3)  # median of 5.0/5.5, 5.0/5.2, 5.1/5.3


@pytest.mark.skipif(
    os.environ.get("AUTHGUARD_TEST_BENCH_LOAD") != "1",
    reason="starts two gunicorn servers and loads both cores: set AUTHGUARD_TEST_BENCH_LOAD=1",
)
@pytest.mark.parametrize(("driver", "mode"), [("wrk", []), ("python", []), ("wrk", ["--simultaneous"])])
def test_the_benchmark_runs_end_to_end(driver: str, mode: list[str], tmp_path: Path) -> None:
    if driver == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    out = tmp_path / "load.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", "--rounds", "1", "--duration", "2", "--warmup", "1",
         "--driver", driver, "--json", str(out), *mode],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("with authguard: ") and "(goal >= 0.95)" in last
    report = json.loads(out.read_text())
    assert report["driver"] == driver and report["summary"]["non_200"] == 0
    assert report["mode"] == ("simultaneous" if mode else "interleaved")
    assert report["page_bytes"][WITH] == report["page_bytes"][WITHOUT]
    assert all(r["requests"] > 0 for r in report["rounds"])
    assert report["authguard_state_after"]["status"] == "verified"


# -- python -m bench.load logins (issue 15, acceptance 1) ------------------------------------------------


def test_login_settings_differ_from_the_demo_only_by_the_hasher_and_the_query_counter() -> None:
    demo = _settings_of(importlib.import_module("demo_site.settings"))
    logins = _settings_of(importlib.import_module("bench.load.settings_logins"))
    assert logins["MIDDLEWARE"] == ["bench.load.querycount.QueryCountMiddleware", *demo["MIDDLEWARE"]]
    assert logins["PASSWORD_HASHERS"] == ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert {name for name in logins if logins[name] != demo.get(name)} == {"MIDDLEWARE", "PASSWORD_HASHERS"}


def test_every_answer_carries_the_statements_and_transactions_of_its_request(db: Any, settings: Any) -> None:
    from django.contrib.auth import get_user_model

    settings.MIDDLEWARE = ["bench.load.querycount.QueryCountMiddleware", *settings.MIDDLEWARE]
    page = Client().get("/login/")
    assert page["X-Bench-Queries"] == "0" and page["X-Bench-Transactions"] == "0"
    get_user_model().objects.create_user("counted", password="pw-counted-2026")
    client = Client()
    assert client.login(username="counted", password="pw-counted-2026")
    answer = client.get("/")
    assert int(answer["X-Bench-Queries"]) > 0  # the session, the user, authguard's session record...


def test_customers_have_their_own_home_address_and_send_a_csrf_checked_login() -> None:
    from bench.load.login_seed import Customer, home_ip, login_request, risky_request

    addresses = {home_ip(n) for n in range(20_000)}
    assert len(addresses) == 20_000
    assert all(a.startswith(("2001:db8:4713:", "2001:db8:2516:")) for a in addresses)
    customer = Customer("lc000007", home_ip(7), "Mozilla/5.0", "signed-cookie")
    body, headers = login_request(customer, "s" * 32)
    assert json.loads(body)["username"] == "lc000007"
    assert headers["Cookie"] == f"csrftoken={'s' * 32}; authguard_device=signed-cookie"
    assert headers["X-CSRFToken"] == "s" * 32 and headers["X-Forwarded-For"] == home_ip(7)
    risky = risky_request(customer, 3)
    assert risky.ip.startswith("203.0.113.") and not risky.device_cookie
    assert "authguard_device" not in login_request(risky, "s" * 32)[1]["Cookie"]


def test_login_summary_counts_throughput_latency_and_sql_of_the_safe_logins() -> None:
    from bench.load.logins import summarize_answers

    answers = [("safe", 0.010 * (i + 1), 200, "ok", 27, 4) for i in range(100)]
    answers += [("risky", 0.005, 403, "denied", 13, 1)] * 10 + [("safe", 30.0, 0, "error", -1, -1)]
    summary = summarize_answers(answers, 10.0)
    assert summary["logins"] == 111 and summary["logins_per_s"] == 11.1 and summary["safe_ok_per_s"] == 10.0
    assert (summary["p50_ms"], summary["p99_ms"]) == (510.0, 1000.0)
    assert summary["statements_per_safe_login"] == 27 and summary["transactions_per_safe_login"] == 4
    assert summary["statements_per_login"] == round((100 * 27 + 10 * 13) / 110, 2)
    assert summary["outcomes"] == {"safe ok 200": 100, "risky denied 403": 10, "safe error 0": 1}
    assert summary["errors"] == 1


def test_the_cpu_bound_ceiling_is_the_cpus_over_web_and_database_cpu_per_login() -> None:
    from bench.load.logins import cpu_bound

    assert cpu_bound({"web_cpu_ms_per_login": 30.0, "db_cpu_ms_per_login": 10.0}, 2) == 50.0
    assert cpu_bound({"db_cpu_ms_per_login": 10.0}, 2) is None


def test_lock_samples_are_shared_out_by_relation() -> None:
    from bench.load.pg_sampler import LockSummary, statement_table

    assert (
        statement_table('UPDATE "authguard_populationcount" SET "count" = 1') == "authguard_populationcount"
    )
    assert statement_table('INSERT INTO "authguard_loginevent" ("a") VALUES (1)') == "authguard_loginevent"
    assert statement_table('SELECT "a"."b" FROM "auth_user" WHERE 1') == "auth_user"
    assert statement_table("COMMIT") == "?"
    summary = LockSummary()
    idle = (None, None, "", 'SELECT 1 FROM "auth_user"')
    summary.add([idle, idle])
    summary.add([("Lock", "transactionid", "", 'UPDATE "authguard_populationcount" SET x = 1'), idle])
    tuple_wait = ("Lock", "tuple", "authguard_riskprofile", "SELECT ... FOR UPDATE")
    summary.add(
        [tuple_wait, ("LWLock", "WALWrite", "", "COMMIT"), ("Lock", "relation", "django_session", "LOCK")]
    )
    summary.add([])
    assert (summary.readings, summary.active, summary.lock_waits, summary.readings_with_wait) == (4, 7, 3, 2)
    assert summary.share == 3 / 7 and summary.authguard_share() == 2 / 7
    assert summary.as_dict()["by_relation"] == {
        "authguard_populationcount": 1, "authguard_riskprofile": 1, "django_session": 1
    }  # fmt: skip
    assert summary.as_dict()["by_wait_event"] == {"transactionid": 1, "tuple": 1, "relation": 1}
    assert LockSummary().share == 0.0


def test_logins_refuse_to_drop_a_database_that_is_not_theirs() -> None:
    from bench.load.logins import parse_args

    assert parse_args([]).workers == [1, 2, 4] and parse_args([]).database == "bench_load"
    for name in ("test", "postgres"):
        with pytest.raises(SystemExit):
            parse_args(["--database", name])


@pytest.mark.skipif(
    os.environ.get("AUTHGUARD_TEST_BENCH_LOAD") != "1",
    reason="starts gunicorn on PostgreSQL and Redis and loads both cores: set AUTHGUARD_TEST_BENCH_LOAD=1",
)
def test_the_login_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "logins.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", "logins", "--workers", "1", "2", "--customers", "60",
         "--duration", "2", "--warmup", "1", "--risky", "0.1", "--database", "bench_load_test",
         "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("queries per safe login: ")
    report = json.loads(out.read_text())
    assert [r["workers"] for r in report["runs"]] == [1, 2]
    for run in report["runs"]:
        assert run["safe_ok_per_s"] > 0 and run["errors"] == 0
        assert set(run["outcomes"]) <= {"safe ok 200", "risky denied 403", "risky step_up_required 200"}
        assert run["statements_per_safe_login"] > 0 and run["locks"]["readings"] > 0
    assert any(origin for _sql, origin in report["one_safe_login_sql"])
