"""What the campaign rule's advisory lock costs when many customers buy one stock at once (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python -m bench.orders.contention

A buy of an instrument the guard calls less than liquid (weight at least 0.25: under about ¥2.7 billion
traded a day) waits, inside ``submit_order``'s transaction, for every other transaction buying the same
instrument (``authguard.orders.campaign._serialise_buys_of``): otherwise simultaneous buys from many
taken-over accounts each read none of the others. The lock is held until the transaction ends, so what
queues is the whole transaction: the guard's check and ledger row *and the portal's* ``place()``.

``--threads`` customers' browsers submit small buys (placed, never held) through the demo's order entry
path (validate, the customer's row lock, ``guard.submit_order``, placement), each thread on its own
connection, for ``--seconds`` per scenario:

- ``spread``: each thread buys its own large cap (no shared lock: the baseline);
- ``one_stock``: every thread buys the same mid-liquidity stock (5Z4A, about ¥105 million a day);
- the same two with ``--oms-ms`` of latency inside ``place()`` (a portal that calls its order management
  system within the transaction).

Prints JSON: orders per second and latency percentiles per scenario.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from .run import _percentiles, _session, in_test_database

SHARED = "5Z4A"
SPREAD = ["7203", "6758", "8306", "9984", "6501", "8316", "7974", "6098", "4063", "8058", "8001", "4502"]


def _customers(count: int) -> list[Any]:
    from django.utils import timezone

    from authguard.models import KnownDevice
    from demo_site.brokerage import services

    users = []
    long_ago = timezone.now() - timedelta(days=365)
    for n in range(count):
        user = services.open_account(
            f"contention{n}",
            "bench-contention-2025",
            email=f"c{n}@example.com",
            cash=Decimal(50_000_000),
            holdings={},
        )
        # A home browser used for a year: no recent context change, so no lowered limits.
        KnownDevice.objects.create(
            user=user,
            cookie_hash=f"home-{n:059x}",
            label="Home",
            first_seen_at=long_ago,
            last_seen_at=long_ago,
        )
        users.append(user)
    return users


def _buyer(user: Any, symbol: str, *, oms_seconds: float, until: float, out: list[float]) -> None:
    from django.db import connection, transaction
    from django.test import RequestFactory
    from django.utils import timezone

    from authguard.orders import guard
    from demo_site.brokerage import services

    request = RequestFactory().post("/api/orders")
    request.user = user
    request.session = _session(user, login_at=timezone.now() - timedelta(hours=2), new_device=False)

    def place(approval: Any) -> Any:
        if oms_seconds:
            time.sleep(oms_seconds)  # the portal's order management system, called inside the transaction
        # A limit order at the price the guard checked (docs/order-guard.md, "Integrating a portal").
        return services.execute_order(user, draft, approval=approval, idempotency_key=None)

    try:
        while time.perf_counter() < until:
            draft = services.validate_order(user, side="buy", symbol=symbol, quantity=1)
            t = time.perf_counter()
            with transaction.atomic():
                guard.lock_customer(user)
                outcome = guard.submit_order(
                    request,
                    user=user,
                    intent=services.order_intent(user, draft),
                    instrument=services.instrument_info(draft),
                    place=place,
                )
            out.append(time.perf_counter() - t)
            if not isinstance(outcome, guard.Placed):
                raise RuntimeError(f"a small buy of {symbol} was held: {outcome.decision.reasons}")
    finally:
        connection.close()


def _scenario(users: list[Any], symbols: list[str], *, oms_ms: float, seconds: float) -> dict[str, Any]:
    samples: list[list[float]] = [[] for _ in users]
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(
            target=_buyer,
            args=(user, symbol),
            kwargs={"oms_seconds": oms_ms / 1000, "until": until, "out": out},
        )
        for user, symbol, out in zip(users, symbols, samples, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [s for out in samples for s in out]
    return {"orders": len(every), "orders_per_second": round(len(every) / seconds, 1), **_percentiles(every)}


def run(threads: int, seconds: float, oms_ms: float) -> dict[str, Any]:
    from django.db import connection

    from demo_site.brokerage import services

    if connection.vendor != "postgresql":
        raise SystemExit("bench.orders.contention measures PostgreSQL's advisory lock: set DATABASE_URL")
    services.sync_instruments()
    users = _customers(threads)
    spread = [SPREAD[n % len(SPREAD)] for n in range(threads)]
    shared = [SHARED] * threads
    result: dict[str, Any] = {"threads": threads, "seconds": seconds, "oms_ms": oms_ms}
    for name, symbols, latency in (
        ("spread", spread, 0.0),
        ("one_stock", shared, 0.0),
        ("spread_with_oms", spread, oms_ms),
        ("one_stock_with_oms", shared, oms_ms),
    ):
        result[name] = _scenario(users, symbols, oms_ms=latency, seconds=seconds)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.orders.contention", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--threads", type=int, default=8, help="customers buying at once [8]")
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario [10]")
    parser.add_argument("--oms-ms", type=float, default=20.0, help="latency inside place() [20]")
    args = parser.parse_args(argv)
    result = in_test_database(lambda: run(args.threads, args.seconds, args.oms_ms))
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
