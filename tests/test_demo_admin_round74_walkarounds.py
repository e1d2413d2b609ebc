"""Red team, round seventy-four (held since): the demo portal's admin (demo_site/brokerage/admin.py) in the
hands of one corrupt member of the security desk (the seed's "Security desk" group, which had every
permission on the brokerage's models), signed in and verified with his own passkey as the console requires.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from demo_site.brokerage.management.commands.seed_demo import SECURITY_GROUP, TANAKA, security_permissions
from demo_site.brokerage.models import Instrument, Order, OrderStatus, Position

from . import test_battery_exposure as battery
from .conftest import bind_passkey, settle_device
from .staff_fixtures import staff_client
from .test_battery_exposure import home_pc, placed_buys, sell_large_caps_up_to, sign_in, value

start = battery.start
clock = battery.clock

MID = "5Z4A"  # ¥1,050 x 100,000 shares = ¥105 million a day (weight 0.86): the gang's pumped stock


def desk_member(username: str = "desk-insider") -> Any:
    """A member of the seed's security desk group (its exact permissions), not a superuser."""
    from django.contrib.auth import get_user_model

    group, _ = Group.objects.get_or_create(name=SECURITY_GROUP)
    group.permissions.set(security_permissions())
    user = get_user_model().objects.create_user(
        username, f"{username}@example.jp", "desk-pw-2026", is_staff=True
    )
    user.groups.add(group)
    return get_user_model().objects.get(pk=user.pk)


def _admin_form_data(client: Client, url: str) -> dict[str, Any]:
    """The admin change form's values as the page holds them (what a browser would post back)."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = field.prepare_value(value) if hasattr(field, "prepare_value") else value
    return data


@pytest.mark.django_db
def test_desk_member_rewrites_the_long_run_liquidity_of_the_pumped_stock_and_the_pivot_is_not_held(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """**Secure:** the long-run daily value of an instrument (``Instrument.baseline_daily_value``, with
    ``history_since`` and ``reference_price`` what the order guard weighs illiquidity by) is market data
    the portal syncs, and the demo protects it even from its own sync (round twenty: "a sync on the day of
    a pump would make it the long run"). One staff member must not be able to rewrite it, or if the portal
    lets someone, not alone and not silently: the pump-and-pivot rule is exactly what the gang needs off.

    **Attack:** the gang pumps 5Z4A (¥4,200 x 2.5 million shares a day). Their man on the security desk
    (seed_demo's "Security desk" group, his own passkey) opens *Brokerage › Instruments › 5Z4A* and saves
    the day's figures as the long run (``baseline_daily_value`` ¥10.5 billion, ``reference_price`` 4200).
    No second approval, no notice to anyone; one admin-log line. The thief (password, a browser parked
    ten days) sells 45 % of tanaka's holdings and puts all her cash, about half the portfolio (≈ ¥5 million),
    into the pumped stock in one order: placed, not held.

    **Root cause:** ``demo_site/brokerage/admin.py:InstrumentAdmin`` was a plain ``ModelAdmin``, every field
    editable, and ``seed_demo.security_permissions`` gives the desk every brokerage permission
    (``change_instrument`` included); the order guard reads the row as the portal's market data
    (``services.instrument_info``).

    **Fix:** make the long-run fields (``baseline_daily_value``, ``reference_price``, ``history_since``,
    ``avg_daily_volume``, ``is_small_cap``, ``former_symbols``, ``share_basis``) read-only in the admin
    (they change through ``services.sync_instruments`` only), and leave ``change_instrument`` out of the desk
    group; a hand correction, if a portal needs one, goes through the four-eyes flow with a staff notice.
    """
    bind_passkey(tanaka, authenticator)
    home_pc(tanaka)
    clock(-10)
    thief = order_api()
    thief.login_known(TANAKA.username, TANAKA.password)
    settle_device(thief.client.cookies["authguard_device"].value, tanaka, days=400)
    clock(0)
    Instrument.objects.filter(symbol=MID).update(price=Decimal("4200"), avg_daily_volume=2_500_000)

    insider = staff_client(desk_member())
    instrument = Instrument.objects.get(symbol=MID)
    url = f"/admin/brokerage/instrument/{instrument.pk}/change/"
    data = _admin_form_data(insider, url)
    data.update(baseline_daily_value="10500000000", reference_price="4200")
    saved = insider.post(url, data)
    edited = Instrument.objects.get(pk=instrument.pk).baseline_daily_value == Decimal("10500000000")

    sign_in(thief, TANAKA.username, TANAKA.password)
    before = value(tanaka)
    sell_large_caps_up_to(thief, tanaka, Decimal("0.45"))
    quantity = int(value(tanaka).cash // 4200)
    answer = thief.order("buy", MID, quantity).json()
    bought = placed_buys(tanaka, MID)
    # Secure: at most 10 % of the portfolio into the pumped stock without her passkey.
    assert answer["status"] == "held" and bought <= Decimal("0.10") * before.total_value, (
        saved.status_code,
        edited,
        answer["status"],
        f"¥{bought:,.0f} = {bought / before.total_value:.1%} of the portfolio",
    )


@pytest.mark.django_db
def test_desk_member_deletes_the_portals_orders_and_positions_through_the_read_only_admin(
    tanaka: Any,
) -> None:
    """**Secure:** the demo's accounts, positions, orders, bank accounts and withdrawals are "viewable,
    never edited: a balance changed by hand would bypass every check in services" (admin.py). Deleting a
    row is the largest edit: it must be refused, as every authguard record is (``ReadOnlyAdmin`` of the
    console refuses delete).

    **Attack:** the corrupt desk member (seed's security desk group, his own passkey) selects tanaka's
    executed orders on *Brokerage › Orders* and runs Django's *Delete selected*: the portal's record of the
    gang's sells is gone, one person, no second approval, no notice. The same action deletes her
    positions (shares gone from her portfolio) and her whole account (cascading to both).

    **Root cause:** ``demo_site/brokerage/admin.py:ReadOnlyAdmin`` overrides ``has_add_permission`` and
    ``has_change_permission`` but not ``has_delete_permission``; ``seed_demo.security_permissions`` gives the
    desk ``brokerage.delete_*``.

    **Fix:** ``has_delete_permission`` returning False in the demo's ``ReadOnlyAdmin`` (and drop the
    ``delete_*`` permissions from the desk group).
    """
    held = Position.objects.filter(account__user=tanaka).count()
    assert held > 5
    insider = staff_client(desk_member())
    positions = [str(pk) for pk in Position.objects.filter(account__user=tanaka).values_list("pk", flat=True)]
    answer = insider.post(
        "/admin/brokerage/position/",
        {"action": "delete_selected", "_selected_action": positions, "post": "yes"},
    )
    left = Position.objects.filter(account__user=tanaka).count()
    assert left == held, (
        answer.status_code,
        f"{held - left} of her {held} positions deleted by one staff member",
    )


@pytest.mark.django_db
def test_desk_member_cannot_delete_an_order_record(tanaka: Any) -> None:
    """Same root cause as above, on the order records (the trail of what was traded in her account)."""
    from demo_site.brokerage.models import Account

    account = Account.objects.get(user=tanaka)
    instrument = Instrument.objects.get(symbol="7203")
    order = Order.objects.create(
        account=account,
        side="sell",
        instrument=instrument,
        quantity=100,
        price=Decimal("2850"),
        currency="JPY",
        amount_jpy=Decimal("285000"),
        status=OrderStatus.PLACED,
    )  # fmt: skip  (the record under test; how it was placed does not matter to the admin)
    insider = staff_client(desk_member())
    insider.post(
        "/admin/brokerage/order/",
        {"action": "delete_selected", "_selected_action": [str(order.pk)], "post": "yes"},
    )
    assert Order.objects.filter(pk=order.pk).exists(), "the order record was deleted by one staff member"
