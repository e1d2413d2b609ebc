"""Security battery cases 34, 35, 37, 39 and 41 (security-battery.md), and the held-order life cycle.

Cases 36, 38 and 40 need real row locks: tests/test_orders_concurrency.py runs them on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from authguard.orders import guard as orders
from authguard.testing import SoftAuthenticator
from demo_site.brokerage import services
from demo_site.brokerage.models import Account, Order, OrderStatus

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import UA_CHROME_WIN, OrderApi, of_long_standing, totp_token

#: Only the mass-liquidation and illiquid-buy rules, at their defaults: a 50 % window limit.
PLAIN_RULES = [
    {"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.IlliquidBuy", "OPTIONS": {}},
]


@pytest.fixture
def browser(hanako: Any, order_api: Any, authenticator: SoftAuthenticator) -> OrderApi:
    """Hanako signed in through the API from her usual browser, with her passkey registered."""
    client = order_api()
    client.login_usual("hanako", PASSWORD)
    client.register_passkey(authenticator)
    return client


def state(user: Any) -> tuple[Decimal, dict[str, int]]:
    account = Account.objects.get(user=user)
    return account.cash, dict(account.positions.values_list("instrument__symbol", "quantity"))


def held_sell(browser: OrderApi) -> dict[str, Any]:
    """Sell all Apple: 37 % of holdings, over a new-device session's 25 % limit: held."""
    response = browser.order("sell", "AAPL", 10)
    assert response.status_code == 202, response.content
    return response.json()


@pytest.mark.battery(34)
def test_battery_34_a_large_sell_or_an_illiquid_buy_is_held_and_nothing_reaches_the_portal(
    browser: OrderApi, hanako: Any
) -> None:
    before = state(hanako)
    sell = held_sell(browser)
    buy = browser.order("buy", "7Z2A", 1000)  # ¥845,000: 13 x what the stock trades in a day... per cent
    assert buy.status_code == 202 and "illiquid_buy_large" in buy.json()["confirmation"]["reasons"]
    assert state(hanako) == before
    for answer in (sell, buy.json()):
        assert Order.objects.get(pk=answer["order_id"]).status == OrderStatus.HELD
        assert answer["confirmation"]["expires_at"]
        assert answer["confirmation"]["methods"] == ["passkey"]
    # The customer was told out of band, without links.
    from authguard.models import Notification

    assert Notification.objects.filter(user=hanako, kind="order_held").count() == 2


@pytest.mark.battery(35)
def test_battery_35_an_order_changed_after_it_was_held_voids_the_confirmation(
    browser: OrderApi, hanako: Any, authenticator: SoftAuthenticator
) -> None:
    sell = held_sell(browser)
    confirmation_id = sell["confirmation"]["id"]
    options = browser.post(f"/authguard/api/confirmations/{confirmation_id}/passkey/options").json()
    # Someone edits the stored order (quantity 10 -> 1) after the customer saw and signed it.
    held = HeldOrder.objects.get(pk=confirmation_id)
    HeldOrder.objects.filter(pk=held.pk).update(
        canonical=held.canonical.replace('"quantity":10', '"quantity":1')
    )
    before = state(hanako)
    response = browser.post(
        f"/authguard/api/confirmations/{confirmation_id}/passkey", authenticator.get(options)
    )
    assert response.status_code == 400 and response.json()["code"] == "order_changed"
    assert state(hanako) == before
    assert Order.objects.get(pk=sell["order_id"]).status == OrderStatus.HELD  # nothing executed


@pytest.mark.battery(35)
def test_battery_35_a_portal_order_edited_after_holding_is_not_executed(
    browser: OrderApi, hanako: Any, authenticator: SoftAuthenticator
) -> None:
    sell = held_sell(browser)
    Order.objects.filter(pk=sell["order_id"]).update(quantity=1)  # the portal's copy changed (a PATCH)
    before = state(hanako)
    response = browser.confirm_with_passkey(sell["confirmation"]["id"], authenticator)
    assert response.status_code == 400 and response.json()["code"] == "not_executable"
    assert state(hanako) == before
    held = HeldOrder.objects.get(pk=sell["confirmation"]["id"])
    assert held.status == HeldOrder.Status.FAILED and held.guarded.status == GuardStatus.FAILED
    assert Order.objects.get(pk=sell["order_id"]).status == OrderStatus.CANCELLED


@pytest.mark.battery(35)
def test_battery_35_a_signature_over_another_orders_challenge_is_refused(
    browser: OrderApi, hanako: Any, authenticator: SoftAuthenticator
) -> None:
    first, second = held_sell(browser), browser.order("sell", "9432", 2000).json()
    options = browser.post(
        f"/authguard/api/confirmations/{first['confirmation']['id']}/passkey/options"
    ).json()
    signed_for_first = authenticator.get(options)
    response = browser.post(
        f"/authguard/api/confirmations/{second['confirmation']['id']}/passkey", signed_for_first
    )
    assert response.status_code == 400 and response.json()["code"] == "challenge"
    assert state(hanako)[1]["9432"] == 2000


@pytest.mark.battery(37)
def test_battery_37_a_replayed_confirmation_is_rejected(
    browser: OrderApi, hanako: Any, authenticator: SoftAuthenticator
) -> None:
    sell = held_sell(browser)
    path = f"/authguard/api/confirmations/{sell['confirmation']['id']}/passkey"
    options = browser.post(path + "/options").json()
    assertion = authenticator.get(options)
    assert browser.post(path, assertion).status_code == 200
    after = state(hanako)
    replay = browser.post(path, assertion)
    assert replay.status_code == 410 and replay.json()["status"] == "gone"
    assert state(hanako) == after
    assert Order.objects.filter(status=OrderStatus.PLACED, instrument__symbol="AAPL").count() == 1


@pytest.mark.battery(37)
def test_battery_37_a_confirmation_from_another_session_is_rejected(
    browser: OrderApi, hanako: Any, authenticator: SoftAuthenticator, order_api: Any
) -> None:
    sell = held_sell(browser)
    path = f"/authguard/api/confirmations/{sell['confirmation']['id']}/passkey"
    options = browser.post(path + "/options").json()
    assertion = authenticator.get(options)
    other = order_api()
    other.login("hanako", PASSWORD)  # the same customer, another session (a thief with the password)
    assert other.post(path + "/options").status_code == 404
    assert other.post(path, assertion).status_code == 404
    assert other.post(path.replace("passkey", "totp"), {"code": "000000"}).status_code == 404
    assert HeldOrder.objects.get(pk=sell["confirmation"]["id"]).status == HeldOrder.Status.PENDING
    # It can still be cancelled from the customer's other session (say, after the email).
    assert other.post(path.replace("passkey", "cancel")).status_code == 200
    assert Order.objects.get(pk=sell["order_id"]).status == OrderStatus.CANCELLED


@pytest.mark.battery(37)
def test_battery_37_a_confirmation_expires_after_five_minutes(
    browser: OrderApi, hanako: Any, authenticator: SoftAuthenticator
) -> None:
    sell = held_sell(browser)
    confirmation_id = sell["confirmation"]["id"]
    with time_machine.travel(timezone.now() + timedelta(seconds=301), tick=False):
        response = browser.post(f"/authguard/api/confirmations/{confirmation_id}/passkey/options")
    assert response.status_code == 410
    assert HeldOrder.objects.get(pk=confirmation_id).status == HeldOrder.Status.EXPIRED
    listed = {o["order_id"]: o["status"] for o in browser.get("/api/orders").json()["orders"]}
    assert listed[sell["order_id"]] == "expired"


def test_expire_due_expires_only_orders_past_their_time(browser: OrderApi, hanako: Any) -> None:
    first = held_sell(browser)
    with time_machine.travel(timezone.now() + timedelta(seconds=200), tick=False):
        second = browser.order("sell", "9432", 2000).json()
    assert orders.expire_due(now=timezone.now() + timedelta(seconds=310)) == 1
    assert Order.objects.get(pk=first["order_id"]).status == OrderStatus.EXPIRED
    assert Order.objects.get(pk=second["order_id"]).status == OrderStatus.HELD
    assert GuardedOrder.objects.get(held__pk=first["confirmation"]["id"]).status == GuardStatus.EXPIRED
    assert orders.expire_due(now=timezone.now() + timedelta(seconds=310)) == 0


@pytest.mark.battery(39)
def test_battery_39_twenty_5_percent_sells_within_10_minutes_trigger_the_guard(
    db: Any, settings: Any, order_api: Any
) -> None:
    settings.AUTHGUARD_ORDER_RULES = PLAIN_RULES
    services.sync_instruments()
    user = services.open_account("kenji", PASSWORD, email="k@example.com", cash=0, holdings={"9432": 2000})
    client = order_api()
    client.login("kenji", PASSWORD)
    start = timezone.now()
    statuses = []
    for minute in range(20):  # 100 NTT = ¥15,250 = 5 % of the holdings, every 30 seconds
        with time_machine.travel(start + timedelta(seconds=30 * minute), tick=False):
            statuses.append(client.order("sell", "9432", 100).json()["status"])
    assert statuses == ["placed"] * 10 + ["held"] * 10
    assert state(user)[1]["9432"] == 1000  # exactly the 50 % limit was sold
    held = HeldOrder.objects.filter(user=user).order_by("created_at").last()
    assert held is not None and held.reasons[0]["code"] == "mass_liquidation"


@pytest.mark.battery(39)
def test_battery_39_the_window_rolls_sells_older_than_24_hours_no_longer_count(
    db: Any, settings: Any, order_api: Any
) -> None:
    settings.AUTHGUARD_ORDER_RULES = PLAIN_RULES
    services.sync_instruments()
    services.open_account("kenji", PASSWORD, email="k@example.com", cash=0, holdings={"9432": 2000})
    client = order_api()
    client.login("kenji", PASSWORD)
    assert client.order("sell", "9432", 1000).json()["status"] == "placed"  # 50 %
    assert client.order("sell", "9432", 100).json()["status"] == "held"
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        client.login("kenji", PASSWORD)
        assert client.order("sell", "9432", 100).json()["status"] == "placed"


@pytest.mark.battery(41)
def test_battery_41_cross_site_posts_are_refused_and_a_get_confirms_nothing(
    browser: OrderApi, hanako: Any, authenticator: SoftAuthenticator
) -> None:
    sell = held_sell(browser)
    confirmation_id = sell["confirmation"]["id"]
    before = state(hanako)
    # A cross-site page can make the browser send its cookies, but not the CSRF token.
    attacker = browser.client
    for path in (
        "/api/orders",
        f"/authguard/api/confirmations/{confirmation_id}/passkey/options",
        f"/authguard/api/confirmations/{confirmation_id}/passkey",
        f"/authguard/api/confirmations/{confirmation_id}/totp",
        f"/authguard/api/confirmations/{confirmation_id}/cancel",
    ):
        body = json.dumps({"side": "sell", "symbol": "7203", "quantity": 100})
        response = attacker.post(
            path, data=body, content_type="application/json", HTTP_ORIGIN="https://evil.example"
        )
        assert response.status_code == 403, path
    form = attacker.post(f"/authguard/confirmations/{confirmation_id}/", {"action": "cancel"})
    assert form.status_code == 403
    # GETs change nothing, whatever they carry.
    assert attacker.get(f"/authguard/api/confirmations/{confirmation_id}/passkey").status_code == 405
    page = attacker.get(f"/authguard/confirmations/{confirmation_id}/?action=cancel&code=123456")
    assert page.status_code == 200
    assert HeldOrder.objects.get(pk=confirmation_id).status == HeldOrder.Status.PENDING
    assert state(hanako) == before


def test_the_confirmation_page_shows_the_summary_and_the_passkey_button(browser: OrderApi) -> None:
    sell = held_sell(browser)
    page = browser.get(f"/authguard/confirmations/{sell['confirmation']['id']}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="confirm-summary"' in html and "Sell 10 of AAPL Apple" in html
    assert 'data-authguard-passkey="authenticate"' in html and 'id="confirm-passkey-button"' in html
    assert f"/authguard/api/confirmations/{sell['confirmation']['id']}/passkey/options" in html
    assert 'id="confirm-totp' not in html  # a passkey holder must use the passkey


def test_the_confirmation_page_cancels_with_a_posted_form(browser: OrderApi, hanako: Any) -> None:
    sell = held_sell(browser)
    path = f"/authguard/confirmations/{sell['confirmation']['id']}/"
    response = browser.client.post(path, {"action": "cancel", "csrfmiddlewaretoken": browser.token})
    assert response.status_code == 302
    assert Order.objects.get(pk=sell["order_id"]).status == OrderStatus.CANCELLED
    assert 'data-status="cancelled"' in browser.get(path).content.decode()


def test_another_customers_confirmation_is_not_found(browser: OrderApi, order_api: Any) -> None:
    sell = held_sell(browser)
    services.open_account("eve", "eve-test-2025-x", email="eve@example.com", cash=0, holdings={})
    eve = order_api()
    eve.login("eve", "eve-test-2025-x")
    confirmation_id = sell["confirmation"]["id"]
    assert eve.post(f"/authguard/api/confirmations/{confirmation_id}/cancel").status_code == 404
    assert eve.get(f"/authguard/confirmations/{confirmation_id}/").status_code == 404
    assert eve.post("/authguard/api/confirmations/not-a-uuid/passkey/options").status_code == 404


def test_totp_confirms_where_the_customer_has_no_passkey(
    hanako: Any, order_api: Any, totp_factory: Any
) -> None:
    device = totp_factory(hanako)
    client = order_api()
    client.login("hanako", PASSWORD)
    sell = held_sell(client)
    assert sell["confirmation"]["methods"] == ["totp"]
    path = f"/authguard/api/confirmations/{sell['confirmation']['id']}/totp"
    assert client.post(path, {"code": 123456}).status_code == 400  # not a string
    wrong = "000000" if totp_token(device) != "000000" else "111111"
    assert client.post(path, {"code": wrong}).status_code == 400
    assert "AAPL" in state(hanako)[1]
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=False):  # django-otp's back-off
        response = client.post(path, {"code": totp_token(device)})
    assert response.status_code == 200 and response.json()["status"] == "confirmed", response.content
    assert "AAPL" not in state(hanako)[1]


def test_totp_is_refused_for_a_customer_who_has_a_passkey(
    browser: OrderApi, hanako: Any, totp_factory: Any
) -> None:
    device = totp_factory(hanako)
    sell = held_sell(browser)
    response = browser.post(f"/authguard/api/confirmations/{sell['confirmation']['id']}/totp",
                            {"code": totp_token(device)})  # fmt: skip
    assert response.status_code == 400 and response.json()["code"] == "method"
    assert "AAPL" in state(hanako)[1]


def test_a_factor_in_its_cooling_off_period_cannot_confirm(
    hanako: Any, order_api: Any, settings: Any
) -> None:
    from authguard.models import FactorRecord

    client = order_api()
    client.login_usual("hanako", PASSWORD)
    authenticator = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    passkey = client.register_passkey(authenticator)
    # As if it had been added from a risky session an hour ago.
    FactorRecord.objects.filter(device_id=passkey["id"]).update(
        cooling_off_until=timezone.now() + timedelta(hours=23)
    )
    sell = held_sell(client)
    assert sell["confirmation"]["methods"] == []
    assert (
        client.post(f"/authguard/api/confirmations/{sell['confirmation']['id']}/passkey/options").status_code
        == 400
    )
    # And if it was allowed when held but is cooling off now, the confirmation still fails.
    FactorRecord.objects.filter(device_id=passkey["id"]).update(cooling_off_until=None)
    sell = client.order("sell", "9432", 2000).json()
    options = client.post(f"/authguard/api/confirmations/{sell['confirmation']['id']}/passkey/options").json()
    FactorRecord.objects.filter(device_id=passkey["id"]).update(
        cooling_off_until=timezone.now() + timedelta(hours=1)
    )
    response = client.post(
        f"/authguard/api/confirmations/{sell['confirmation']['id']}/passkey", authenticator.get(options)
    )
    assert response.status_code == 400 and response.json()["code"] == "cooling_off"
    assert state(hanako)[1]["9432"] == 2000


def test_an_idempotency_key_answers_with_the_first_order(browser: OrderApi, hanako: Any) -> None:
    first = browser.order("sell", "7203", 10, HTTP_IDEMPOTENCY_KEY="retry-1")
    again = browser.order("sell", "7203", 10, HTTP_IDEMPOTENCY_KEY="retry-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["order_id"] == again.json()["order_id"]
    assert state(hanako)[1]["7203"] == 90
    bad = browser.order("sell", "7203", 10, HTTP_IDEMPOTENCY_KEY="no spaces allowed")
    assert bad.status_code == 400


def test_the_orders_page_lists_held_orders_with_confirm_and_cancel(browser: OrderApi) -> None:
    sell = held_sell(browser)
    html = browser.get("/orders/").content.decode()
    assert f'id="confirm-order-{sell["order_id"]}"' in html
    assert f"/authguard/confirmations/{sell['confirmation']['id']}/" in html
    assert f'id="cancel-order-{sell["order_id"]}"' in html


def test_html_order_entry_goes_through_the_guard(hanako: Any, order_api: Any) -> None:
    client = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    client.post("/login/", {"username": "hanako", "password": PASSWORD})
    response = client.post("/trade/", {"side": "sell", "symbol": "AAPL", "quantity": 10})
    assert response.status_code == 302 and response["Location"].startswith("/authguard/confirmations/")
    assert state(hanako)[1]["AAPL"] == 10
    page = client.get(response["Location"])
    assert "Sell 10 of AAPL Apple" in page.content.decode()


@pytest.mark.parametrize(
    "relayed_code", [False, True], ids=["password-only-first-factor", "one-relayed-code"]
)
def test_a_passkey_added_from_a_new_browser_releases_no_held_order_for_days(
    hanako: Any, order_api: Any, settings: Any, totp_factory: Any, relayed_code: bool
) -> None:
    """Red team, 2026-12-04: with the password alone (a customer without a factor), or with one relayed code,
    the thief added a passkey of his own, waited out the 24-hour cooling-off if there was one, and released
    every held order of his mass liquidation with it. Nothing but the password and perhaps one relayable
    code vouches for a factor added from a browser the account has not used for long: it cools off for
    AUTHGUARD_UNVOUCHED_FACTOR_DAYS (14), and the customer's "factor added" notice has that long."""
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    of_long_standing(hanako)
    if relayed_code:
        with time_machine.travel(timezone.now() - timedelta(days=30)):
            hanako.totp = totp_factory(hanako)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        thief = order_api()
        thief.login("hanako", PASSWORD)
        if relayed_code:
            assert (
                thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code
                == 200
            )
        his_key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
        passkey = thief.register_passkey(his_key)
        assert passkey["cooling_off"] is True
        clock.shift(timedelta(hours=26))
        thief.post("/api/logout")
        thief.login("hanako", PASSWORD)
        held = held_sell(thief)
        assert held["status"] == "held" and held["confirmation"]["methods"] == []
        refused = thief.post(f"/authguard/api/confirmations/{held['confirmation']['id']}/passkey/options")
        assert refused.status_code == 400 and refused.json()["code"] == "method"
        assert HeldOrder.objects.get().status == HeldOrder.Status.PENDING
        assert Order.objects.get().status == OrderStatus.HELD
