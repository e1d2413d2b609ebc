"""The demo portal's HTML pages: sign-in, portfolio, trading through the form, history, language, layout."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from demo_site.brokerage import services
from demo_site.brokerage.models import Account, Order

from .conftest import UA_CHROME_WIN as BROWSER_UA

PASSWORD = "hanako-test-2025"
PAGES = [
    "brokerage:portfolio",
    "brokerage:trade",
    "brokerage:orders",
    "brokerage:instruments",
    "brokerage:security",
]


@pytest.fixture
def customer(db: Any) -> Any:
    """¥1,000,000 cash, 100 Toyota (¥2,850), 10 Apple ($230) and 1,000 of a fictional small cap."""
    services.sync_instruments()
    return services.open_account(
        "hanako",
        PASSWORD,
        email="hanako@example.com",
        cash=Decimal("1000000"),
        holdings={"7203": 100, "AAPL": 10, "3Z3A": 1000},
    )


@pytest.fixture
def browser(customer: Any) -> Client:
    """A browser signed in through the real login form, with CSRF checks on as in a real browser."""
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA)
    page = client.get(reverse("login"))
    response = client.post(
        reverse("login"),
        {"username": "hanako", "password": PASSWORD, "csrfmiddlewaretoken": csrf_token_in(page)},
    )
    assert response.status_code == 302 and response["Location"] == reverse("brokerage:portfolio")
    return client


def csrf_token_in(response: Any) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


def state(user: Any) -> tuple[Decimal, dict[str, int], int]:
    account = Account.objects.get(user=user)
    return (
        account.cash,
        dict(account.positions.values_list("instrument__symbol", "quantity")),
        Order.objects.count(),
    )


def text_of(response: Any) -> str:
    """The page's text with tags removed and spaces collapsed, for asserting what a reader sees."""
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("name", PAGES)
def test_pages_need_a_sign_in(customer: Any, name: str) -> None:
    response = Client(HTTP_USER_AGENT=BROWSER_UA).get(reverse(name))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse(name)}"


def test_login_page_renders_an_accessible_form(db: Any) -> None:
    response = Client(HTTP_USER_AGENT=BROWSER_UA).get(reverse("login"))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">' in html and '<label for="id_password">' in html
    assert 'autocomplete="current-password"' in html and '<html lang="en">' in html


def test_wrong_password_shows_an_error_and_signs_nobody_in(customer: Any) -> None:
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    response = client.post(reverse("login"), {"username": "hanako", "password": "wrong-password"})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("name", [p for p in PAGES if p != "brokerage:security"])
def test_every_page_renders_in_the_layout_with_nothing_from_outside(browser: Client, name: str) -> None:
    response = browser.get(reverse(name))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Demo Securities" in html and 'aria-current="page"' in html and "hanako" in html
    assert "/static/brokerage/site.css" in html
    # SECURITY/privacy: no CDN, web font or tracker; every resource comes from this site.
    assert not re.search(r"""(?:src|href|action)=["'](?:https?:)?//""", html), "external resource"
    assert "@import" not in html and "<script src" not in html


def test_portfolio_shows_holdings_in_yen_with_totals(browser: Client) -> None:
    text = text_of(browser.get(reverse("brokerage:portfolio")))
    assert "Cash ¥1,000,000" in text
    assert "7203 Toyota Motor TSE Prime 100 ¥2,850 ¥285,000" in text
    assert "AAPL Apple NASDAQ 10 $230.00 ¥345,000" in text
    assert "3Z3A Hoshizora Digital Holdings (fictional) small cap" in text
    assert "Holdings ¥757,000" in text and "Total ¥1,757,000" in text
    assert "¥150 per US dollar" in text


def test_trade_form_places_an_order_and_redirects_to_the_history(browser: Client, customer: Any) -> None:
    page = browser.get(reverse("brokerage:trade"))
    html = page.content.decode()
    assert '<option value="7974">7974 · Nintendo · ¥12,500</option>' in html
    assert 'type="radio" name="side" value="buy"' in html and "<legend" in html
    response = browser.post(
        reverse("brokerage:trade"),
        {"side": "buy", "symbol": "7974", "quantity": "10", "csrfmiddlewaretoken": csrf_token_in(page)},
        follow=True,
    )
    assert response.redirect_chain == [(reverse("brokerage:orders"), 302)]
    assert state(customer) == (Decimal("875000"), {"7203": 100, "AAPL": 10, "3Z3A": 1000, "7974": 10}, 1)
    text = text_of(response)
    order = Order.objects.get()
    assert f"Order {order.pk} placed: Buy 10 × 7974 at ¥12,500." in text
    assert f"#{order.pk}" in text and "7974 Nintendo 10 ¥12,500 ¥125,000 Placed" in text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"side": "sell", "symbol": "7203", "quantity": "101"},
            "You hold 100 shares of 7203 and cannot sell 101.",
        ),
        ({"side": "buy", "symbol": "9983", "quantity": "21"}, "Not enough cash: this order needs ¥1,050,000"),
        (
            {"side": "buy", "symbol": "7203", "quantity": "0"},
            "Ensure this value is greater than or equal to 1.",
        ),
        ({"side": "buy", "symbol": "7203", "quantity": "1.5"}, "Enter a whole number."),
        ({"side": "buy", "symbol": "NOPE", "quantity": "1"}, "Select a valid choice."),
        ({"side": "short", "symbol": "7203", "quantity": "1"}, "Select a valid choice."),
        ({"symbol": "7203", "quantity": "1"}, "This field is required."),
    ],
)
def test_a_refused_order_shows_why_and_changes_nothing(
    browser: Client, customer: Any, form: dict[str, str], message: str
) -> None:
    before = state(customer)
    page = browser.get(reverse("brokerage:trade"))
    response = browser.post(reverse("brokerage:trade"), {**form, "csrfmiddlewaretoken": csrf_token_in(page)})
    assert response.status_code == 200
    text = text_of(response)
    assert message in text and "The order was not placed. Nothing has changed in your account." in text
    assert state(customer) == before


def test_trade_form_without_csrf_token_is_refused(browser: Client, customer: Any) -> None:
    before = state(customer)
    response = browser.post(reverse("brokerage:trade"), {"side": "sell", "symbol": "7203", "quantity": "100"})
    assert response.status_code == 403
    assert state(customer) == before


def test_sell_links_preselect_the_order_form(browser: Client) -> None:
    portfolio = browser.get(reverse("brokerage:portfolio")).content.decode()
    assert f'href="{reverse("brokerage:trade")}?side=sell&amp;symbol=7203"' in portfolio
    html = browser.get(reverse("brokerage:trade"), {"side": "sell", "symbol": "7203"}).content.decode()
    assert 'value="sell" id="id_side_1" checked' in html or re.search(r'value="sell"[^>]*checked', html)
    assert re.search(r'<option value="7203" selected>', html)


def test_instruments_page_lists_prices_volumes_and_flags_small_caps(browser: Client) -> None:
    text = text_of(browser.get(reverse("brokerage:instruments")))
    assert "6861 Keyence TSE Prime ¥56,000 600,000" in text
    assert "NVDA NVIDIA NASDAQ $180.00 180,000,000" in text
    assert "4Z1A Kagura Biotech (fictional) illiquid small cap TSE Growth ¥312 18,000" in text


def test_security_link_leads_to_authguards_security_page(browser: Client) -> None:
    response = browser.get(reverse("brokerage:security"))
    assert response.status_code == 302 and response["Location"] == reverse("authguard:security")
    page = browser.get(response["Location"])
    assert page.status_code == 200


def test_order_history_is_empty_at_first(browser: Client) -> None:
    assert "No orders yet." in text_of(browser.get(reverse("brokerage:orders")))


def test_language_switcher_switches_to_japanese(browser: Client) -> None:
    page = browser.get(reverse("brokerage:portfolio"))
    html = page.content.decode()
    assert 'action="/i18n/setlang/"' in html and '<option value="ja" lang="ja">日本語</option>' in html
    response = browser.post(
        "/i18n/setlang/", {"language": "ja", "next": "/", "csrfmiddlewaretoken": csrf_token_in(page)}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert browser.cookies["django_language"].value == "ja"
    assert '<html lang="ja">' in browser.get(reverse("brokerage:portfolio")).content.decode()


def test_logout_is_a_post_and_ends_the_session(browser: Client) -> None:
    page = browser.get(reverse("brokerage:portfolio"))
    assert browser.get(reverse("logout")).status_code == 405
    response = browser.post(reverse("logout"), {"csrfmiddlewaretoken": csrf_token_in(page)})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert browser.get(reverse("brokerage:portfolio")).status_code == 302


def test_authguard_pages_use_the_portal_layout(db: Any) -> None:
    response = Client(HTTP_USER_AGENT=BROWSER_UA).get(reverse("authguard:denied"))
    html = response.content.decode()
    assert response.status_code == 403
    assert (
        "Demo Securities" in html
        and "/static/brokerage/site.css" in html
        and 'class="authguard-page"' in html
    )
    assert "Sign-in refused" in text_of(response)


def test_signed_in_user_visiting_login_goes_to_the_portfolio(browser: Client) -> None:
    response = browser.get(reverse("login"))
    assert response.status_code == 302 and response["Location"] == reverse("brokerage:portfolio")
