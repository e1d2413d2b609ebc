"""Seeded benchmark of normal trading through the order guard.

    python -m bench.orders                                     # SQLite (a throw-away test database)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python -m bench.orders      # PostgreSQL

Opens ``--customers`` demo accounts with portfolios of 4 to 20 large caps (Tokyo and New York) and cash,
then replays ``--days`` of ordinary trading through the demo's real order entry
(``demo_site.brokerage.services.submit_order``: the guard's ``submit_order`` with its row lock, ledger and
placement): monthly regular buys, rebalancing (trim the largest position, buy the smallest), partial sells
(10-40 % of a position), the odd large sale (up to 45 % of the holdings), and a few small buys of thinly
traded small caps. One customer in 20 trades from a session that started on a new device (the guard's
lower limits apply).

It reports the share of orders held (goal: at most 1 %) with the reasons, and the cost of ``check_order``
alone (goal: at most 2 ms p50 and 4 queries), measured on every order. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
LARGE_CAPS = [
    "7203", "6758", "8306", "9984", "6861", "8035", "7974", "9983", "6501", "8316", "9432", "6098", "4063",
    "8058", "8001", "4502", "9433", "6367", "7267", "6902", "4568", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL",
    "META", "TSLA", "JPM", "V", "JNJ", "BRK.B",
]  # fmt: skip
SMALL_CAPS = ["4Z1A", "7Z2A", "3Z3A", "ZVXQ"]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
    os.environ.setdefault("DEMO_VAR_DIR", tempfile.mkdtemp(prefix="authguard-bench-orders-"))
    import django
    from django.conf import settings

    django.setup()
    # The test database is built from the models (no migrations needed), and thrown away afterwards.
    test = settings.DATABASES["default"].setdefault("TEST", {})
    test["MIGRATE"] = False
    if "postgresql" in settings.DATABASES["default"]["ENGINE"] and not test.get("NAME"):
        test["NAME"] = "bench_orders"  # never another helper's test database


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


class _Session(dict):
    """A signed-in session carrying authguard's step-up state, as the login flow leaves it."""

    session_key = None
    modified = False


def _session(user: Any, *, login_at: datetime, new_device: bool) -> _Session:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from authguard import stepup

    session = _Session()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    # authguard.stepup's state for a login the risk engine allowed (see stepup._new_state).
    session[stepup.STATE_KEY] = {
        "s": "verified", "e": None, "a": "allow", "u": False, "r": False, "n": new_device,
        "t": login_at.timestamp(), "w": login_at.timestamp(), "st": None, "sm": None, "lr": True,
    }  # fmt: skip
    return session


def _customers(rng: random.Random, count: int) -> list[Any]:
    from demo_site.brokerage import services

    users = []
    for n in range(count):
        symbols = rng.sample(LARGE_CAPS, rng.randint(4, 20))
        holdings = {s: rng.choice([10, 20, 50, 100, 200, 300]) for s in symbols}
        holdings = {s: (q if s[0].isdigit() else max(1, q // 10)) for s, q in holdings.items()}
        cash = Decimal(rng.choice([200_000, 500_000, 1_000_000, 3_000_000]))
        users.append(services.open_account(f"c{n}", "bench-password-2025", email=f"c{n}@example.jp",
                                           cash=cash, holdings=holdings))  # fmt: skip
    return users


def _plan(rng: random.Random, user: Any) -> list[tuple[str, str, int]]:
    """One trading day's orders of one customer: mostly nothing, sometimes a rebalance or a sale."""
    from demo_site.brokerage import services

    portfolio = services.portfolio(user)
    held = sorted(portfolio.holdings, key=lambda h: -h.value_jpy)
    roll = rng.random()
    orders: list[tuple[str, str, int]] = []
    if roll < 0.10 and portfolio.cash > 50_000:  # a regular buy
        symbol = rng.choice(LARGE_CAPS)
        orders.append(("buy", symbol, 0))
    elif roll < 0.14 and len(held) >= 2:  # rebalance: trim the largest, add to the smallest
        top, bottom = held[0], held[-1]
        orders.append(("sell", top.symbol, max(1, top.quantity // rng.randint(4, 8))))
        orders.append(("buy", bottom.symbol, 0))
    elif roll < 0.19 and held:  # a partial sale
        h = rng.choice(held)
        orders.append(("sell", h.symbol, max(1, int(h.quantity * rng.uniform(0.1, 0.4)))))
    elif roll < 0.192 and held:  # a large sale: up to 45 % of the holdings, one position
        h = held[0]
        orders.append(("sell", h.symbol, max(1, int(h.quantity * 0.9))))
    elif roll < 0.196 and portfolio.cash > 100_000:  # a small punt on a small cap
        orders.append(("buy", rng.choice(SMALL_CAPS), -1))
    return orders


def _quantity(rng: random.Random, side: str, symbol: str, quantity: int, cash: Decimal) -> int:
    from demo_site.brokerage.models import Instrument
    from demo_site.brokerage.services import to_jpy

    if side == "sell" or quantity > 0:
        return quantity
    instrument = Instrument.objects.get(symbol=symbol)
    price = to_jpy(instrument.price, instrument.currency)
    budget = (
        Decimal(rng.choice([30_000, 50_000, 100_000])) if quantity == -1 else min(cash / 4, Decimal(300_000))
    )
    return max(1, int(budget // price))


def run(customers: int, days: int, seed: int) -> dict[str, Any]:
    import time_machine
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from authguard import orders as guard
    from demo_site.brokerage import services
    from demo_site.brokerage.models import Account

    rng = random.Random(seed)
    services.sync_instruments()
    users = _customers(rng, customers)
    new_device = {u.pk for u in users if rng.random() < 0.05}
    factory = RequestFactory()
    start = datetime(2026, 11, 2, 9, 0, tzinfo=JST)
    check_times: list[float] = []
    check_queries: list[int] = []
    hook_times: list[float] = []
    hook_queries: list[int] = []
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for day in range(days):
        for user in users:
            plan = _plan(rng, user)
            if not plan:
                continue
            moment = start + timedelta(days=day, minutes=rng.randrange(360))
            session = _session(user, login_at=moment - timedelta(minutes=5), new_device=user.pk in new_device)
            for side, symbol, quantity in plan:
                cash = Account.objects.get(user=user).cash
                quantity = _quantity(rng, side, symbol, quantity, cash)
                with time_machine.travel(moment, tick=False):
                    request = factory.post("/api/orders")
                    request.user = user
                    request.session = session
                    try:
                        draft = services.validate_order(user, side=side, symbol=symbol, quantity=quantity)
                    except services.OrderRejected:
                        outcomes["rejected (funds)"] += 1
                        continue
                    intent = services.order_intent(user, draft)
                    # Timed on its own, then counted in a second, identical call (a check records
                    # nothing): capturing queries wraps every cursor in Django's debug wrapper, whose cost
                    # is the measurement's, not the guard's.
                    # The demo's order entry hands the guard the instrument it validated the order
                    # against (services.submit_order); the hook-only call is timed too.
                    instrument = services.instrument_info(draft)
                    t = time.perf_counter()
                    guard.check_order(request, intent, user=user, instrument=instrument)
                    check_times.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    guard.check_order(request, intent, user=user)
                    hook_times.append(time.perf_counter() - t)
                    connection.queries_log.clear()  # a full log would make the count read 0
                    with CaptureQueriesContext(connection) as queries:
                        guard.check_order(request, intent, user=user, instrument=instrument)
                    check_queries.append(len(queries))
                    with CaptureQueriesContext(connection) as queries:
                        guard.check_order(request, intent, user=user)
                    hook_queries.append(len(queries))
                    submitted = services.submit_order(request, side=side, symbol=symbol, quantity=quantity)
                kinds[side] += 1
                if submitted.confirmation is not None:
                    outcomes["held"] += 1
                    reasons.update(r["code"] for r in submitted.confirmation.reasons)
                else:
                    outcomes["placed"] += 1
                moment += timedelta(minutes=rng.randint(1, 30))
        # Unconfirmed orders expire, as the periodic task does.
        guard.expire_due(now=start + timedelta(days=day + 1))
    total = outcomes["held"] + outcomes["placed"]
    return {
        "database": connection.vendor,
        "customers": customers,
        "days": days,
        "seed": seed,
        "orders": total,
        "by_side": dict(kinds),
        "outcomes": dict(outcomes),
        "held_share_percent": round(100 * outcomes["held"] / total, 2) if total else 0.0,
        "held_reasons": dict(reasons.most_common()),
        "check_order": _percentiles(check_times),
        "queries_per_check": {
            "median": statistics.median(check_queries),
            "max": max(check_queries),
            "share_at_most_4": round(sum(q <= 4 for q in check_queries) / len(check_queries), 4),
        },
        # The same checks with the instrument read through the AUTHGUARD_ORDER_INSTRUMENT hook.
        "check_order_instrument_by_hook": _percentiles(hook_times),
        "queries_per_check_instrument_by_hook": {
            "median": statistics.median(hook_queries),
            "max": max(hook_queries),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    _setup_django()
    import logging

    logging.getLogger("authguard").setLevel(logging.WARNING)
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        # Out-of-band mails of held orders go nowhere here (the outbox rows are still written).
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            result = run(args.customers, args.days, args.seed)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0
