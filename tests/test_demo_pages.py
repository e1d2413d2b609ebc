"""The demo portal's HTML pages: sign-in, portfolio, trading through the form, history, language, layout."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from demo_site.brokerage.models import Account, Order

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import UA_CHROME_WIN as BROWSER_UA

PAGES = [
    "brokerage:portfolio",
    "brokerage:trade",
    "brokerage:orders",
    "brokerage:instruments",
    "brokerage:security",
]


@pytest.fixture
def customer(brokerage_customer: Any) -> Any:
    """hanako: ¥1,000,000 cash, 100 Toyota (¥2,850), 10 Apple ($230) and 1,000 of a fictional small cap."""
    return brokerage_customer(holdings={"7203": 100, "AAPL": 10, "3Z3A": 1000})


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


# -- issue 16: the "sign in as if from…" switch, the refused page, the seeded authenticator app --------------

PLACE_MIDDLEWARE = "demo_site.brokerage.demo_place.DemoPlaceMiddleware"


@pytest.fixture
def demo_geoip(settings: Any, tmp_path: Any) -> Any:
    """The demo's own GeoIP files (its plan, not the tests'), and loopback as the trusted proxy, as in
    demo_site/settings.py."""
    from django.core.management import call_command

    call_command("build_demo_geoip", path=str(tmp_path))
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path)
    settings.AUTHGUARD_TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]
    return tmp_path


def test_the_place_switch_signs_in_as_if_from_the_chosen_place(
    settings: Any, customer: Any, demo_geoip: Any
) -> None:
    from authguard.models import LoginEvent

    settings.DEBUG = True
    settings.MIDDLEWARE = [PLACE_MIDDLEWARE, *settings.MIDDLEWARE]
    client = Client(HTTP_USER_AGENT=BROWSER_UA)  # REMOTE_ADDR 127.0.0.1: a browser on the demo's machine
    page = client.get(reverse("login"))
    assert 'id="demo-place"' in page.content.decode() and "203.0.113.1" in page.content.decode()

    chosen = client.post(reverse("demo-place"), {"place": "203.0.113.1", "next": "/login/"})
    assert chosen.status_code == 302 and chosen["Location"] == "/login/"
    assert client.cookies["demo_place"].value == "203.0.113.1"
    assert 'value="203.0.113.1" selected' in client.get(reverse("login")).content.decode()
    client.post(reverse("login"), {"username": "hanako", "password": "correct horse battery"})
    event = LoginEvent.objects.get()
    assert (event.ip, event.country, event.asn) == ("203.0.113.1", "SG", 14061)  # the phisher's VPS

    # Back to this computer: the cookie goes, the next sign-in comes from loopback again.
    client.post(reverse("demo-place"), {"place": ""})
    assert not client.cookies["demo_place"].value
    client.logout()
    client.post(reverse("login"), {"username": "hanako", "password": "correct horse battery"})
    assert LoginEvent.objects.order_by("-id").first().ip == "127.0.0.1"

    # Only the places on offer, only to this site.
    assert client.post(reverse("demo-place"), {"place": "8.8.8.8"}).status_code == 400
    away = client.post(reverse("demo-place"), {"place": "192.0.2.1", "next": "https://evil.example/"})
    assert away["Location"] == "/login/"


def test_the_place_switch_is_impossible_without_debug(settings: Any, customer: Any, demo_geoip: Any) -> None:
    from django.core.exceptions import MiddlewareNotUsed

    from authguard.models import LoginEvent
    from demo_site.brokerage.demo_place import DemoPlaceMiddleware

    settings.DEBUG = False
    with pytest.raises(MiddlewareNotUsed):
        DemoPlaceMiddleware(lambda request: None)  # type: ignore[arg-type, return-value]
    settings.MIDDLEWARE = [PLACE_MIDDLEWARE, *settings.MIDDLEWARE]  # even listed by mistake
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    assert 'id="demo-place"' not in client.get(reverse("login")).content.decode()
    assert client.post(reverse("demo-place"), {"place": "203.0.113.1"}).status_code == 404
    client.cookies["demo_place"] = "203.0.113.1"  # a cookie set while DEBUG was on, or forged
    client.post(reverse("login"), {"username": "hanako", "password": "correct horse battery"})
    assert LoginEvent.objects.get().ip == "127.0.0.1"


def test_the_refused_page_offers_the_way_back_and_no_outage_wording(db: Any) -> None:
    response = Client(HTTP_USER_AGENT=BROWSER_UA).get("/authguard/denied/")
    html = response.content.decode()
    text = text_of(response)
    assert response.status_code == 403
    assert "We could not sign you in from here" in text
    assert 'id="denied-passkey-button"' in html and 'data-authguard-passkey="login"' in html
    assert 'data-done-url="/"' in html  # the portfolio, after a passkey sign-in
    assert "If you have no passkey" in text and "0120-000-000" in text and 'href="tel:0120000000"' in html
    assert 'id="denied-back" href="/login/"' in html
    assert "not possible right now" not in text


def test_the_seeded_authenticator_app_confirms_held_orders_on_a_fresh_demo(db: Any) -> None:
    """seed_demo dates the customers' authenticator apps as bound long ago: past their cooling-off, so a
    held order of a fresh demo can be confirmed with the app (it could not for the first day before)."""
    import io

    from django.core.management import call_command
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from authguard.factors import base as factors
    from authguard.orders.guard import confirmation_methods

    call_command("seed_demo", stdout=io.StringIO())
    tanaka = TOTPDevice.objects.get(user__username="tanaka")
    assert not factors.in_cooling_off(tanaka)
    assert confirmation_methods(tanaka.user) == ["totp"]
    created = tanaka.created_at
    call_command("seed_demo", stdout=io.StringIO())  # idempotent: the date stays
    tanaka.refresh_from_db()
    assert tanaka.created_at == created
