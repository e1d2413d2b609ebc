"""Order guard acceptance 3: many accounts buying one illiquid stock are a campaign; a large cap is not."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from authguard.conf import DEFAULT_ORDER_RULES
from authguard.models import CampaignFlag, GuardedOrder, HeldOrder, Notification
from authguard.orders import guard
from demo_site.brokerage import services
from demo_site.brokerage.models import Order, OrderStatus

from .conftest import OrderApi

PASSWORD = "buyer-test-2025"


@pytest.fixture
def buyers(db: Any, settings: Any) -> list[OrderApi]:
    """Thirteen customers with ¥500,000 each, signed in from browsers they used before (not risky)."""
    settings.AUTHGUARD_RISK_SIGNALS = []
    settings.ADMINS = [("Security desk", "desk@demo-broker.example")]
    services.sync_instruments()
    clients = []
    for n in range(13):
        services.open_account(
            f"buyer{n}", PASSWORD, email=f"buyer{n}@example.com", cash=Decimal(500_000), holdings={}
        )
        client = OrderApi()
        client.login_known(f"buyer{n}", PASSWORD)
        clients.append(client)
    return clients


def test_twelve_accounts_buying_one_illiquid_stock_flag_it_hold_further_buys_and_alert_the_admins(
    buyers: list[OrderApi],
) -> None:
    # 100 shares of Kagura Biotech (¥31,200): each buy alone is small enough to pass; ten of them are 5.6 %
    # of what it trades in a day (a count of buyers flags only with at least 5 %: issue 11).
    statuses = [client.order("buy", "4Z1A", 100).json() for client in buyers[:12]]
    assert [s["status"] for s in statuses] == ["placed"] * 9 + ["held"] * 3
    assert "campaign_detected" in statuses[9]["confirmation"]["reasons"]
    assert all("campaign_instrument" in s["confirmation"]["reasons"] for s in statuses[10:])
    flag = CampaignFlag.objects.get(symbol="4Z1A")
    assert flag.active and flag.accounts == 10
    alerts = Notification.objects.filter(kind="campaign_flagged", staff=True)
    assert alerts.count() == 1 and alerts.get().to_email == "desk@demo-broker.example"
    assert "4Z1A" in alerts.get().context["summary"]
    # Further buys are held for every account, even one that bought before or a new one.
    assert buyers[0].order("buy", "4Z1A", 1).json()["status"] == "held"
    assert buyers[12].order("buy", "4Z1A", 1).json()["status"] == "held"
    # Only buys: a sell is judged on its own (here: all of buyer0's holdings, so the liquidation rule).
    sell = buyers[0].order("sell", "4Z1A", 100).json()
    # (the exposure rule's week-long horizon sees the same liquidation: issue 11; and, from a session no
    # passkey vouched for, the sells since her last confirmation: round seventy-three)
    assert sell["confirmation"]["reasons"] == [
        "mass_liquidation",
        "exposure_liquidation",
        "exposure_liquidation_unvouched",
    ]
    # Other instruments are not affected.
    assert buyers[12].order("buy", "7203", 10).json()["status"] == "placed"
    assert Order.objects.filter(status=OrderStatus.HELD, instrument__symbol="4Z1A", side="buy").count() == 5
    assert alerts.count() == 1  # one alert per flag, not one per held buy


def test_twelve_accounts_buying_a_liquid_large_cap_is_no_campaign(buyers: list[OrderApi]) -> None:
    statuses = [client.order("buy", "7203", 10).json()["status"] for client in buyers[:12]]
    assert statuses == ["placed"] * 12
    assert not CampaignFlag.objects.exists()
    assert not Notification.objects.filter(kind="campaign_flagged").exists()
    assert not HeldOrder.objects.exists()


def test_buyers_from_risky_sessions_flag_the_instrument_sooner(db: Any, settings: Any) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = []
    services.sync_instruments()
    statuses = []
    for n in range(6):
        services.open_account(
            # ¥2,000,000: a buy of ¥84,500 stays under the exposure rule's illiquid limit for a risky account
            # (5 % of the portfolio), so the campaign rule is what holds the 5th buyer.
            f"fresh{n}",
            PASSWORD,
            email=f"fresh{n}@example.com",
            cash=Decimal(2_000_000),
            holdings={},
        )
        client = OrderApi()
        client.login(f"fresh{n}", PASSWORD)  # a first sign-in from this browser: a new-device session
        statuses.append(client.order("buy", "7Z2A", 100).json()["status"])  # 5 of them: 7.7 % of a day
    assert statuses == ["placed"] * 4 + ["held"] * 2  # the 5th risky buyer reaches risky_accounts=5
    assert CampaignFlag.objects.filter(symbol="7Z2A", risky_accounts=5).exists()


def test_a_cleared_flag_lets_buys_through_again(buyers: list[OrderApi]) -> None:
    for client in buyers[:10]:
        client.order("buy", "4Z1A", 100)
    CampaignFlag.objects.filter(symbol="4Z1A").update(active=False)
    HeldOrder.objects.all().delete()
    # Ten buyers in the window still make a campaign: the flag is raised again and the admins told again.
    assert buyers[12].order("buy", "4Z1A", 1).json()["status"] == "held"
    assert CampaignFlag.objects.get(symbol="4Z1A").active


def test_a_flag_holds_buys_even_when_nobody_bought_within_the_window(buyers: list[OrderApi]) -> None:
    from django.utils import timezone

    CampaignFlag.objects.create(
        symbol="3Z3A", flagged_at=timezone.now(), accounts=10, risky_accounts=0, window_hours=6
    )
    answer = buyers[0].order("buy", "3Z3A", 10).json()
    assert answer["status"] == "held" and answer["confirmation"]["reasons"] == ["campaign_instrument"]


def test_checking_an_order_costs_at_most_five_queries(
    buyers: list[OrderApi], django_assert_max_num_queries: Any
) -> None:
    from django.test import RequestFactory

    from authguard.models import GuardedOrder
    from authguard.orders import guard as orders
    from demo_site.brokerage.models import Account

    user = Account.objects.get(user__username="buyer1").user
    for symbol in ("7203", "4Z1A", "ZVXQ"):
        buyers[1].order("buy", symbol, 10)
    assert GuardedOrder.objects.filter(user=user).count() == 3
    request = RequestFactory().post("/api/orders")
    request.user = user
    request.session = buyers[1].client.session
    for side, symbol in (
        ("buy", "7203"),
        ("sell", "7203"),
        ("buy", "4Z1A"),
        ("buy", "ZVXQ"),
        ("buy", "AAPL"),
    ):
        intent = services.order_intent(
            user, services.validate_order(user, side=side, symbol=symbol, quantity=1)
        )
        # The instrument and portfolio hooks and the ledger; a thin buy adds the campaign and, from a session
        # no passkey vouched for, the thin buys since her last confirmation (authguard.orders.vouching).
        thin = symbol in ("4Z1A", "ZVXQ")
        # A sell from a session no passkey vouched for reads its long count (round seventy-three).
        with django_assert_max_num_queries(5 if thin else 4):
            orders.check_order(request, intent, user=user)


def test_a_dozen_customers_buying_a_little_of_a_small_cap_is_no_campaign(buyers: list[OrderApi]) -> None:
    # 10 shares each (¥3,120): twelve buyers are 0.7 % of what Kagura Biotech trades in a day (issue 11).
    statuses = [client.order("buy", "4Z1A", 10).json()["status"] for client in buyers[:12]]
    assert statuses == ["placed"] * 12
    assert not CampaignFlag.objects.exists()


# -- A campaign rule that denies: the flag outlives the rollback of the order it refused ------------------


def test_a_campaign_rule_that_denies_still_flags_the_instrument_and_alerts_the_admins(
    buyers: list[OrderApi], settings: Any
) -> None:
    """A portal may deny instead of hold (``"action": "deny"``). The denial is an exception that rolls back
    the order's transaction and the demo's own around it; the flag and the staff alert were written there and
    vanished, so the next buyer was judged without them and the desk never heard of the campaign."""
    settings.AUTHGUARD_ORDER_RULES = [
        {"NAME": rule["NAME"], "OPTIONS": {**rule.get("OPTIONS", {}), "action": "deny"}}
        if rule["NAME"].endswith(".Campaign")
        else rule
        for rule in DEFAULT_ORDER_RULES
    ]
    answers = [client.order("buy", "4Z1A", 100) for client in buyers[:10]]
    assert [a.status_code for a in answers] == [201] * 9 + [403], [a.content for a in answers]
    flag = CampaignFlag.objects.get(symbol="4Z1A")
    assert flag.active and flag.accounts == 10
    alerts = Notification.objects.filter(kind="campaign_flagged", staff=True)
    assert alerts.count() == 1 and "4Z1A" in alerts.get().context["summary"]
    # The denied order left nothing else behind: no order, no ledger row, no hold.
    assert Order.objects.filter(instrument__symbol="4Z1A").count() == 9
    assert not HeldOrder.objects.filter(user__username="buyer9").exists()
    # The flag now refuses a buyer the campaign's volume alone would not (a buy from an account that bought
    # nothing before, of one share), and it raises no second alert.
    assert buyers[12].order("buy", "4Z1A", 1).status_code == 403
    assert alerts.count() == 1


def test_a_denial_outside_any_request_flags_the_campaign_after_the_orders_rollback(
    buyers: list[OrderApi], settings: Any
) -> None:
    """Without a request (a batch of orders) the flag is written at once, after the order's own rollback."""
    settings.AUTHGUARD_ORDER_RULES = [
        {"NAME": "authguard.order_rules.Campaign", "OPTIONS": {"action": "deny"}},
    ]
    for client in buyers[:9]:
        assert client.order("buy", "4Z1A", 100).status_code == 201
    user = get_user_model().objects.get(username="buyer9")
    draft = services.validate_order(user, side="buy", symbol="4Z1A", quantity=100)
    with pytest.raises(guard.OrderDenied):
        guard.submit_order(
            None,
            user=user,
            intent=services.order_intent(user, draft),
            place=lambda: pytest.fail("a denied order is never placed"),
        )
    assert CampaignFlag.objects.filter(symbol="4Z1A", active=True).exists()
    assert Notification.objects.filter(kind="campaign_flagged", staff=True).count() == 1
    assert not GuardedOrder.objects.filter(user=user).exists()
