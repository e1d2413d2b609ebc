"""``manage.py seed_demo [--reset]``: the demo's instruments, customers and security admin.

Idempotent: a second run changes nothing. Existing customers keep their portfolios (``--reset`` puts the
documented cash and holdings back) and get their documented passwords back if they were changed.

Each customer also gets a confirmed authenticator-app (TOTP) factor with a fixed, documented demo key, so a
risky demo sign-in can be stepped up: add the printed ``otpauth://`` URI (or the base32 key) to any
authenticator app, or print the current code with::

    .venv/bin/python -c "import base64, django_otp.oath as o; print('%06d' % o.totp(base64.b32decode('KEY')))"

The keys are the base32 of ``b"<username>-demo-totp-key"``. They are public: demo accounts only.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from demo_site.brokerage import services
from demo_site.brokerage.models import Account


@dataclass(frozen=True)
class DemoCustomer:
    """A demo customer and the portfolio ``seed_demo`` opens (or ``--reset`` restores) for them."""

    username: str
    password: str
    first_name: str
    last_name: str
    email: str
    cash: Decimal
    holdings: dict[str, int] = field(default_factory=dict)
    story: str = ""
    #: The demo authenticator-app key (base32, as authenticator apps take it). Public: demo accounts only.
    totp_key: str = ""

    @property
    def totp_hex_key(self) -> str:
        """The key as django-otp's ``TOTPDevice.key`` stores it (hex)."""
        return base64.b32decode(self.totp_key).hex()


#: The customer in the news: a long-term investor with about ¥10 million in some 30 Japanese and US large
#: caps (and one small cap a friend tipped), the kind of account that phishing gangs sell off.
TANAKA = DemoCustomer(
    username="tanaka",
    password="tanaka-demo-2025",
    first_name="Hiroshi",
    last_name="Tanaka",
    email="tanaka@example.com",
    cash=Decimal("1200000"),
    holdings={
        "7203": 250,
        "6758": 150,
        "8306": 250,
        "9984": 30,
        "6861": 5,
        "8035": 10,
        "7974": 30,
        "9983": 5,
        "6501": 100,
        "8316": 100,
        "9432": 1800,
        "6098": 30,
        "4063": 50,
        "8058": 100,
        "8001": 30,
        "4502": 50,
        "9433": 100,
        "6367": 10,
        "7267": 200,
        "6902": 100,
        "4568": 50,
        "AAPL": 15,
        "MSFT": 5,
        "NVDA": 18,
        "AMZN": 10,
        "GOOGL": 10,
        "META": 3,
        "TSLA": 5,
        "JPM": 5,
        "3Z3A": 1000,
    },  # fmt: skip
    story="victim-like: ~30 holdings worth about ¥10 million",
    totp_key="ORQW4YLLMEWWIZLNN4WXI33UOAWWWZLZ",
)

#: A modest customer: a few holdings and some cash.
SUZUKI = DemoCustomer(
    username="suzuki",
    password="suzuki-demo-2025",
    first_name="Yuki",
    last_name="Suzuki",
    email="suzuki@example.com",
    cash=Decimal("350000"),
    holdings={"7203": 100, "8306": 100, "9432": 1000, "AAPL": 5},
    story="modest: 4 holdings",
    totp_key="ON2XU5LLNEWWIZLNN4WXI33UOAWWWZLZ",
)

CUSTOMERS: tuple[DemoCustomer, ...] = (TANAKA, SUZUKI)

#: Staff (not superuser) who reviews sign-ins and held orders in the admin.
SECURITY_ADMIN_USERNAME = "security-admin"
SECURITY_ADMIN_PASSWORD = "guard-desk-2025"
#: The second desk member: releases, revocations, unlocks and policy changes need two people (four eyes).
SECURITY_APPROVER_USERNAME = "security-approver"
SECURITY_APPROVER_PASSWORD = "guard-desk-2nd-2025"
SECURITY_GROUP = "Security desk"
#: Name of the demo customers' authenticator-app factor.
DEMO_TOTP_NAME = "Demo authenticator app"
#: How long ago the seeded authenticator apps were bound (their ``created_at``).
TOTP_BOUND_AGO = timedelta(days=2 * 365)


def security_permissions() -> list[Permission]:
    """Everything on authguard's models, viewing the brokerage's and users, and viewing or deleting
    (resetting) TOTP devices. Not ``change_user``: whoever may edit users may make themselves superuser.

    SECURITY: only viewing of the brokerage's records: the desk reviews trades, it does not write market data
    or delete a trade's record (red team, round seventy-four; the admin refuses both to anyone anyway)."""
    return list(
        Permission.objects.filter(
            Q(content_type__app_label="authguard")
            | Q(content_type__app_label="brokerage", codename__startswith="view_")
            | Q(content_type__app_label="auth", codename="view_user")
            | Q(content_type__app_label="otp_totp", codename__in=["view_totpdevice", "delete_totpdevice"])
        )
    )


class Command(BaseCommand):
    help = "Create or update the demo's instruments, customers and security admin, and print their logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Put the demo customers' cash and holdings back to the documented ones (orders are kept).",
        )

    def handle(self, *args: Any, reset: bool = False, **options: Any) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            instrument_count = services.sync_instruments()
            for customer in CUSTOMERS:
                self._customer(user_model, customer, reset=reset)
                self._totp_device(customer)
            self._security_admin(user_model)
        self.stdout.write(
            self.style.SUCCESS(f"{instrument_count} instruments, {len(CUSTOMERS)} customers ready.")
        )
        self._print_logins(user_model)

    def _check_password(self, user: Any, password: str) -> None:
        try:
            password_validation.validate_password(password, user)
        except ValidationError as error:
            raise CommandError(
                f"demo password of {user.get_username()}: {' '.join(error.messages)}"
            ) from error

    def _customer(self, user_model: Any, customer: DemoCustomer, *, reset: bool) -> None:
        user = user_model._default_manager.filter(username=customer.username).first()
        if user is None:
            self._check_password(
                user_model(
                    username=customer.username,
                    email=customer.email,
                    first_name=customer.first_name,
                    last_name=customer.last_name,
                ),
                customer.password,
            )
            user = services.open_account(
                customer.username,
                customer.password,
                email=customer.email,
                cash=customer.cash,
                holdings=customer.holdings,
            )
            user.first_name, user.last_name = customer.first_name, customer.last_name
            user.save(update_fields=["first_name", "last_name"])
            return
        self._restore_user(user, customer.password, email=customer.email)
        if reset or not Account.objects.filter(user=user).exists():
            services.reset_portfolio(user, cash=customer.cash, holdings=customer.holdings)

    def _totp_device(self, customer: DemoCustomer) -> Any:
        """Give ``customer`` their confirmed demo TOTP device with the documented key (idempotent)."""
        from django_otp.plugins.otp_totp.models import TOTPDevice

        user = get_user_model()._default_manager.get(username=customer.username)
        device = TOTPDevice.objects.filter(user=user, name=DEMO_TOTP_NAME).order_by("pk").first()
        wanted = {"key": customer.totp_hex_key, "confirmed": True, "step": 30, "digits": 6, "t0": 0}
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=DEMO_TOTP_NAME, **wanted)
            # The customer bound the app long ago (the story's long-term investor): dated so, it is past its
            # cooling-off and confirms held orders on a fresh demo, as it would for a real customer. Seeded
            # at "now", it could confirm nothing for the first day (authguard dates seeded devices by it).
            TOTPDevice.objects.filter(pk=device.pk).update(created_at=timezone.now() - TOTP_BOUND_AGO)
            device.refresh_from_db()
            return device
        changed = [name for name, value in wanted.items() if getattr(device, name) != value]
        for name in changed:
            setattr(device, name, wanted[name])
        if changed:
            device.save(update_fields=changed)
        return device

    def _restore_user(self, user: Any, password: str, **fields: Any) -> None:
        """Give an existing demo user their documented password and state back, writing only what differs."""
        changed = [name for name, value in fields.items() if getattr(user, name) != value]
        for name in changed:
            setattr(user, name, fields[name])
        if not user.is_active:
            user.is_active = True
            changed.append("is_active")
        if not user.check_password(password):
            user.set_password(password)
            changed.append("password")
        if changed:
            user.save(update_fields=changed)

    def _security_admin(self, user_model: Any) -> None:
        group, _created = Group.objects.get_or_create(name=SECURITY_GROUP)
        group.permissions.add(*security_permissions())
        desk = (
            (SECURITY_ADMIN_USERNAME, SECURITY_ADMIN_PASSWORD, "security-desk@example.com"),
            (SECURITY_APPROVER_USERNAME, SECURITY_APPROVER_PASSWORD, "security-approver@example.com"),
        )
        for username, password, email in desk:
            user = user_model._default_manager.filter(username=username).first()
            if user is None:
                user = user_model(username=username, email=email, is_staff=True)
                self._check_password(user, password)
                user.set_password(password)
                user.save()
            else:
                self._restore_user(user, password, is_staff=True, is_superuser=False)
            user.groups.add(group)

    def _print_logins(self, user_model: Any) -> None:
        self.stdout.write("")
        self.stdout.write("Demo logins (http://localhost:8000/login/ and the JSON API at /api/):")
        self.stdout.write(f"  {'username':<16} {'password':<18} who")
        for customer in CUSTOMERS:
            user = user_model._default_manager.get(username=customer.username)
            p = services.portfolio(user)
            value, cash = services.format_money(p.holdings_value, "JPY"), services.format_money(p.cash, "JPY")
            detail = f"customer, {customer.story}; now {len(p.holdings)} holdings {value} + cash {cash}"
            self.stdout.write(f"  {customer.username:<16} {customer.password:<18} {detail}")
        self.stdout.write(
            f"  {SECURITY_ADMIN_USERNAME:<16} {SECURITY_ADMIN_PASSWORD:<18} "
            f"security admin: staff (not superuser) in group '{SECURITY_GROUP}', admin at /admin/"
        )
        self.stdout.write(
            f"  {SECURITY_APPROVER_USERNAME:<16} {SECURITY_APPROVER_PASSWORD:<18} "
            "second security admin: approves the first one's releases, revocations, unlocks, policy changes"
        )
        self.stdout.write("")
        self.stdout.write(
            "Demo authenticator apps (public demo keys; a risky sign-in asks for their 6-digit code):"
        )
        for customer in CUSTOMERS:
            device = self._totp_device(customer)
            self.stdout.write(f"  {customer.username:<16} key {customer.totp_key}")
            self.stdout.write(f"  {'':<16} {device.config_url}")
