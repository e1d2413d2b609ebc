"""Builders of security-console test data through the real login path (no rows written by hand).

Customers sign in through the HTML login form with their own browser (a test ``Client`` keeps the device
cookie), at chosen times (time-machine), from the tests' GeoIP networks. Attackers sign in with the right
password from hosting, Tor and VPN networks with other browsers. Analysts' verdicts are then set through
:func:`mark`, which does what the admin action does (tests/test_admin.py tests the action itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from django.conf import settings
from django.test import Client
from django_otp.oath import totp

from authguard.models import LoginEvent

from .conftest import (
    IP_JP_PROXY,
    IP_OSAKA,
    IP_SG_VPS,
    IP_TOKYO,
    IP_TOR,
    IP_VPN,
    UA_CHROME_WIN,
    UA_CURL,
    UA_FIREFOX_LINUX,
    UA_IPHONE,
)

JST = ZoneInfo("Asia/Tokyo")
#: "Now" of the console tests: every built login lies in the 20 days before it.
NOW = datetime(2026, 11, 28, 18, 0, tzinfo=JST)


def sign_in(
    client: Client,
    username: str,
    password: str,
    *,
    ip: str,
    ua: str,
    at: datetime,
    totp_key: str | None = None,
    orders: tuple[dict, ...] = (),
) -> LoginEvent:
    """One password login through the HTML form at ``at``; returns its recorded event.

    With ``totp_key`` (hex, django-otp's form) a stepped-up login passes step-up through the JSON API with
    a real code; ``orders`` are then sent to the portal's JSON API (``{"side", "symbol", "quantity"}``).
    """
    with time_machine.travel(at, tick=False):
        client.get("/login/", REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
        client.post(
            "/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, HTTP_USER_AGENT=ua
        )
        event = LoginEvent.objects.order_by("-pk").first()
        if totp_key and event.action == "step_up":
            code = f"{totp(bytes.fromhex(totp_key)):06d}"
            client.post(
                "/authguard/api/step-up/totp",
                json.dumps({"code": code}),
                content_type="application/json",
                REMOTE_ADDR=ip,
                HTTP_USER_AGENT=ua,
            )
        for order in orders:
            client.post(
                "/api/orders",
                json.dumps(order),
                content_type="application/json",
                REMOTE_ADDR=ip,
                HTTP_USER_AGENT=ua,
            )
    # End the session but keep the device cookie, as closing a browser tab would.
    client.cookies.pop(settings.SESSION_COOKIE_NAME, None)
    event.refresh_from_db()
    return event


@dataclass
class History:
    """The events a :func:`build_history` run produced, by role."""

    routine: list[int] = field(default_factory=list)
    attacks: list[int] = field(default_factory=list)
    wrong_passwords: list[int] = field(default_factory=list)
    takeover: int | None = None


def build_history(
    customers: dict[str, str],
    *,
    now: datetime = NOW,
    days: int = 16,
    totp_keys: dict[str, str] | None = None,
    attack_orders: tuple[dict, ...] = (),
) -> History:
    """Routine logins of each customer, then an attack on the first one.

    Each customer signs in daily from home (Tokyo or Osaka) and once from a new phone, which is stepped up
    and passes with their TOTP code when ``totp_keys`` has it. The attack on the first customer: two wrong
    guesses from a VPN, the phished password from a Singapore VPS (curl) and from Tor, then from a Japanese
    residential proxy with the code phished in real time, and ``attack_orders`` sent from that session.
    """
    totp_keys = totp_keys or {}
    history = History()
    for n, (username, password) in enumerate(customers.items()):
        home = Client()
        for day in range(days):
            at = now - timedelta(days=days - day, hours=n) + timedelta(minutes=7 * day)
            ip = IP_TOKYO if day % 3 else IP_OSAKA
            history.routine.append(sign_in(home, username, password, ip=ip, ua=UA_CHROME_WIN, at=at).pk)
        phone = sign_in(
            Client(),
            username,
            password,
            ip=IP_TOKYO,
            ua=UA_IPHONE,
            at=now - timedelta(hours=30 + n),
            totp_key=totp_keys.get(username),
        )
        history.routine.append(phone.pk)
    victim, password = next(iter(customers.items()))
    attack_at = now - timedelta(hours=20)
    gang = Client()
    for i in range(2):
        history.wrong_passwords.append(
            sign_in(
                gang,
                victim,
                "wrong-guess",
                ip=IP_VPN,
                ua=UA_FIREFOX_LINUX,
                at=attack_at + timedelta(minutes=i),
            ).pk
        )
    for i, (ip, ua) in enumerate(((IP_SG_VPS, UA_CURL), (IP_TOR, UA_FIREFOX_LINUX))):
        history.attacks.append(
            sign_in(gang, victim, password, ip=ip, ua=ua, at=attack_at + timedelta(minutes=5 + i)).pk
        )
    takeover = sign_in(
        Client(),
        victim,
        password,
        ip=IP_JP_PROXY,
        ua=UA_FIREFOX_LINUX,
        at=attack_at + timedelta(minutes=9),
        totp_key=totp_keys.get(victim),
        orders=attack_orders,
    )
    history.attacks.append(takeover.pk)
    history.takeover = takeover.pk
    return history


def mark(event_ids: list[int], verdict: str) -> None:
    """Set analysts' verdicts (what the admin's "mark as" actions write)."""
    LoginEvent.objects.filter(pk__in=event_ids).update(feedback=verdict)


def staff_user(username: str = "desk", *, perms: tuple[str, ...] = (), superuser: bool = False):
    """A staff member holding ``perms`` (``"app_label.codename"``), or a superuser."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    model = get_user_model()
    if superuser:
        return model.objects.create_superuser(username, f"{username}@example.jp", "desk-password-2026")
    user = model.objects.create_user(username, f"{username}@example.jp", "desk-password-2026", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return model.objects.get(pk=user.pk)


def staff_client(user, *, passkey: bool = True, **client_kwargs) -> Client:
    """A client signed in as ``user`` (without the scored login: staff sign-in is tested in
    tests/test_battery_staff.py) and verified with the staff member's own passkey, as the console requires
    (:func:`tests.staff_fixtures.staff_client`)."""
    from .staff_fixtures import staff_client as passkey_staff_client

    return passkey_staff_client(user, passkey=passkey, **client_kwargs)


#: The attacker's orders in the demo story: two large sells, then the pivot into the illiquid small cap.
ATTACK_ORDERS = (
    {"side": "sell", "symbol": "7203", "quantity": 250},
    {"side": "sell", "symbol": "6758", "quantity": 150},
    {"side": "buy", "symbol": "3Z3A", "quantity": 5000},
)


def demo_story(*, now: datetime = NOW) -> History:
    """The demo's data (``seed_demo``: customers with their TOTP apps, the security desk), their routine
    logins, and the takeover of tanaka with :data:`ATTACK_ORDERS`; the attacks are marked fraud."""
    import os

    from django.core.management import call_command

    from demo_site.brokerage.management.commands.seed_demo import SUZUKI, TANAKA

    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)
    built = build_history(
        {TANAKA.username: TANAKA.password, SUZUKI.username: SUZUKI.password},
        now=now,
        totp_keys={TANAKA.username: TANAKA.totp_hex_key, SUZUKI.username: SUZUKI.totp_hex_key},
        attack_orders=ATTACK_ORDERS,
    )
    mark(built.attacks, "fraud")
    return built
