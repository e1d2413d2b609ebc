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
