"""The customers of ``python -m bench.load logins``: many accounts, each with a history authguard learned.

Each customer has a browser (one of a few common ones, with its own authguard device cookie) and a home
line: a /64 of the demo's Tokyo or Osaka IPv6 home fibre (``2001:db8:4713::/48``, ``2001:db8:2516::/48``),
so no two customers share an address. Their past sign-ins (``history`` of them over the last 60 days, at
about the time of day the benchmark runs) go through authguard's real scoring and learning path
(:func:`~authguard.risk.engine.score_login` then :meth:`DatabaseHistory.learn
<authguard.risk.history.DatabaseHistory.learn>`, as ``bench/speed.py`` does), which writes the risk
profile, the known device and the population values; the values are then folded
(:func:`~authguard.risk.history.fold_population`). A sign-in from that browser at home is then the normal,
safe kind, which the run checks from the answers (``status: ok``).

A *risky* login (``--risky``) is the customer's password from a Singapore VPS with a new browser and no
device cookie: authguard denies it or asks for a step-up; the run counts those answers apart.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import timedelta

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
HOME_PREFIXES = ("2001:db8:4713", "2001:db8:2516")  # Tokyo NTT OCN, Osaka KDDI (demo GeoIP plan)
RISKY_IP_BASE = "203.0.113."  # Singapore VPS (DigitalOcean), 203.0.113.0/26
RISKY_BROWSER = "curl/8.5.0"
PASSWORD = "bench-load-password-2026"


@dataclass(frozen=True)
class Customer:
    """What the load generator sends for one customer's safe login."""

    username: str
    ip: str
    user_agent: str
    device_cookie: str


def home_ip(n: int) -> str:
    """Customer ``n``'s home address: its own /64 in one of the home /48s."""
    return f"{HOME_PREFIXES[n % 2]}:{n // 2 % 65536:x}::{n % 251 + 2:x}"


def seed_customers(count: int, *, history: int = 6, seed: int = 1) -> list[Customer]:
    """Create ``count`` customers with ``history`` learned sign-ins each; returns what their logins send."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.test import RequestFactory
    from django.utils import timezone

    from authguard.risk.context import build_context, new_device_cookie
    from authguard.risk.engine import score_login
    from authguard.risk.history import DatabaseHistory, fold_population

    rng = random.Random(seed)
    now = timezone.now()
    model = get_user_model()
    password = make_password(PASSWORD)  # one hash for all: MD5 in the bench settings
    users = model._default_manager.bulk_create(
        [
            model(
                username=f"lc{n:06d}",
                email=f"lc{n:06d}@example.jp",
                password=password,
                date_joined=now - timedelta(days=rng.randrange(200, 3000)),
            )
            for n in range(count)
        ],  # fmt: skip
        batch_size=1000,
    )
    if any(user.pk is None for user in users):  # a backend that does not return keys from bulk_create
        users = list(model._default_manager.filter(username__startswith="lc").order_by("username"))
    factory = RequestFactory()
    store = DatabaseHistory()
    customers = []
    for n, user in enumerate(users):
        customer = Customer(user.username, home_ip(n), rng.choice(BROWSERS), new_device_cookie())
        with transaction.atomic():  # one commit per customer, not per learned sign-in
            for day in sorted(rng.sample(range(1, 61), history), reverse=True):
                request = factory.post(
                    "/api/login", REMOTE_ADDR=customer.ip, HTTP_USER_AGENT=customer.user_agent
                )
                request.COOKIES["authguard_device"] = customer.device_cookie
                at = now - timedelta(days=day, minutes=rng.randrange(-90, 90))
                ctx = build_context(request, username=user.username, user=user, now=at)
                _, evidence = score_login(ctx, store)
                if evidence is not None:
                    store.learn(ctx, evidence)
        customers.append(customer)
    while fold_population():
        pass
    return customers


def risky_request(customer: Customer, n: int) -> Customer:
    """The same account's password from a VPS, a command-line client and no device cookie."""
    return Customer(customer.username, f"{RISKY_IP_BASE}{n % 60 + 2}", RISKY_BROWSER, "")


def csrf_secret() -> str:
    """A CSRF cookie value the clients send as cookie and header (Django accepts the unmasked secret)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(32))


def login_request(customer: Customer, csrf: str) -> tuple[bytes, dict[str, str]]:
    """Body and headers of ``POST /api/login`` for ``customer`` (as a browser's script sends it)."""
    import json

    cookies = f"csrftoken={csrf}" + (
        f"; authguard_device={customer.device_cookie}" if customer.device_cookie else ""
    )
    body = json.dumps({"username": customer.username, "password": PASSWORD}).encode()
    return body, {
        "Content-Type": "application/json",
        "Cookie": cookies,
        "X-CSRFToken": csrf,
        "User-Agent": customer.user_agent,
        "X-Forwarded-For": customer.ip,
        "Accept": "application/json",
        "Accept-Language": "en",
    }
