"""``manage.py seed_demo``: the demo's data, created once and idempotent afterwards."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

from django.contrib.auth import authenticate, get_user_model, password_validation
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import RequestFactory

from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.management.commands.seed_demo import (
    CUSTOMERS,
    SECURITY_ADMIN_PASSWORD,
    SECURITY_ADMIN_USERNAME,
    SUZUKI,
    TANAKA,
)
from demo_site.brokerage.models import Account, Instrument, Order, Position

from .conftest import UA_CHROME_WIN as BROWSER_UA
from .staff_fixtures import staff_client

DOCS = Path(__file__).resolve().parent.parent / "docs" / "demo.md"


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def everything() -> dict[str, Any]:
    """A fingerprint of all the data seed_demo touches."""
    users = get_user_model().objects.order_by("username")
    return {
        "users": list(
            users.values_list("username", "password", "email", "is_staff", "is_superuser", "is_active")
        ),
        "accounts": list(Account.objects.order_by("user__username").values_list("user__username", "cash")),
        "positions": sorted(
            Position.objects.values_list("account__user__username", "instrument__symbol", "quantity")
        ),
        "instruments": list(
            Instrument.objects.values_list("symbol", "price", "avg_daily_volume", "is_small_cap")
        ),
        "orders": Order.objects.count(),
        "groups": list(
            Group.objects.values_list("name", "permissions__codename").order_by(
                "name", "permissions__codename"
            )
        ),
    }


def test_seed_demo_creates_the_documented_data_and_prints_the_logins(db: Any) -> None:
    output = seed()
    assert Instrument.objects.count() == len(INSTRUMENTS) >= 33
    for customer in CUSTOMERS:
        assert f"{customer.username}" in output and customer.password in output
    assert SECURITY_ADMIN_USERNAME in output and SECURITY_ADMIN_PASSWORD in output
    assert "not superuser" in output


def test_seed_demo_twice_changes_nothing(db: Any) -> None:
    seed()
    first = everything()
    seed()
    assert everything() == first


def test_the_victim_holds_about_30_stocks_worth_about_ten_million_yen(db: Any) -> None:
    seed()
    tanaka = get_user_model().objects.get(username=TANAKA.username)
    p = services.portfolio(tanaka)
    assert 28 <= len(p.holdings) <= 32
    assert Decimal("9500000") <= p.holdings_value <= Decimal("10500000")
    currencies = {h.currency for h in p.holdings}
    assert currencies == {"JPY", "USD"}
    assert sum(h.is_small_cap for h in p.holdings) == 1
    assert p.cash == TANAKA.cash


def test_the_modest_customer_has_a_small_portfolio(db: Any) -> None:
    seed()
    suzuki = get_user_model().objects.get(username=SUZUKI.username)
    p = services.portfolio(suzuki)
    assert 1 <= len(p.holdings) <= 6 and p.total_value < Decimal("2000000")


def test_demo_passwords_sign_in_and_satisfy_the_password_validators(db: Any) -> None:
    seed()
    request = RequestFactory().get("/")
    for username, password in [(c.username, c.password) for c in CUSTOMERS] + [
        (SECURITY_ADMIN_USERNAME, SECURITY_ADMIN_PASSWORD)
    ]:
        user = get_user_model().objects.get(username=username)
        password_validation.validate_password(password, user)
        assert authenticate(request, username=username, password=password) == user


def test_security_admin_is_staff_with_security_permissions_but_not_superuser(db: Any) -> None:
    seed()
    admin = get_user_model().objects.get(username=SECURITY_ADMIN_USERNAME)
    assert admin.is_staff and not admin.is_superuser and admin.is_active
    codenames = Permission.objects.filter(content_type__app_label="authguard").values_list(
        "codename", flat=True
    )
    assert {f"authguard.{c}" for c in codenames} <= admin.get_all_permissions()
    brokerage = {p for p in admin.get_all_permissions() if p.startswith("brokerage.")}
    # SECURITY: the desk views the brokerage's records; it neither writes market data nor deletes a trade
    # (red team, round seventy-four).
    assert brokerage and all(p.startswith("brokerage.view_") for p in brokerage), sorted(brokerage)
    assert admin.has_perm("brokerage.view_order") and admin.has_perm("auth.view_user")
    assert admin.has_perm("otp_totp.delete_totpdevice")
    # SECURITY: editing users would let the security desk make itself superuser.
    assert not admin.has_perm("auth.change_user") and not admin.has_perm("auth.add_user")


def test_seed_demo_restores_passwords_and_flags_but_keeps_portfolios(db: Any) -> None:
    seed()
    user_model = get_user_model()
    tanaka = user_model.objects.get(username=TANAKA.username)
    tanaka.set_password("someone-changed-it")
    tanaka.is_active = False
    tanaka.save()
    user_model.objects.filter(username=SECURITY_ADMIN_USERNAME).update(is_superuser=True)
    services.place_order(tanaka, side="sell", symbol="7203", quantity=50)
    traded = services.portfolio(tanaka)
    seed()
    tanaka.refresh_from_db()
    assert tanaka.check_password(TANAKA.password) and tanaka.is_active
    assert not user_model.objects.get(username=SECURITY_ADMIN_USERNAME).is_superuser
    assert services.portfolio(tanaka) == traded


def test_seed_demo_reset_restores_the_documented_portfolios(db: Any) -> None:
    seed()
    tanaka = get_user_model().objects.get(username=TANAKA.username)
    services.place_order(tanaka, side="sell", symbol="7203", quantity=50)
    seed("--reset")
    account = Account.objects.get(user=tanaka)
    assert account.cash == TANAKA.cash
    assert dict(account.positions.values_list("instrument__symbol", "quantity")) == TANAKA.holdings
    assert Order.objects.count() == 1  # the history is kept


def test_docs_list_every_demo_login() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for customer in CUSTOMERS:
        assert f"`{customer.username}`" in docs and f"`{customer.password}`" in docs
    assert f"`{SECURITY_ADMIN_USERNAME}`" in docs and f"`{SECURITY_ADMIN_PASSWORD}`" in docs


def test_security_admin_can_review_but_not_edit_money_in_the_admin(db: Any) -> None:
    seed()
    # Issue 10 (case 60): the console opens only to a passkey-verified staff session.
    client = staff_client(
        get_user_model().objects.get(username=SECURITY_ADMIN_USERNAME), HTTP_USER_AGENT=BROWSER_UA
    )
    tanaka = Account.objects.get(user__username=TANAKA.username)
    for url in ("/admin/brokerage/order/", "/admin/brokerage/account/", "/admin/brokerage/instrument/"):
        assert client.get(url).status_code == 200, url
    page = client.get(f"/admin/brokerage/account/{tanaka.pk}/change/")
    assert page.status_code == 200 and b"3Z3A" in page.content  # the positions inline
    # SECURITY: balances and holdings change only through services, never by hand.
    assert client.get("/admin/brokerage/account/add/").status_code == 403
    client.post(f"/admin/brokerage/account/{tanaka.pk}/change/", {"cash": "999999999"})
    tanaka.refresh_from_db()
    assert tanaka.cash == TANAKA.cash


def test_brokerage_models_match_their_migrations(db: Any) -> None:
    call_command("makemigrations", "brokerage", "--check", "--dry-run", stdout=StringIO())
