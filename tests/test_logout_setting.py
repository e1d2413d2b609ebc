"""The sign-out URL as a setting, and the device cookie only where a sign-in is near (issue 14, item 7).

``AUTHGUARD_LOGOUT_URL`` (a URL name or a path, default ``"logout"``) is where the step-up page's "cancel and
sign out" button posts; a portal without such a URL gets a page without the button instead of a
``NoReverseMatch`` error, and a session waiting for step-up may always reach it. The device cookie is issued
on the login page, authguard's own pages and signed-in requests, never on anonymous visits of other pages
(so a CDN may cache them).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from demo_site.brokerage import urls as brokerage_urls

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

COOKIE = "authguard_device"


def prices(request: HttpRequest) -> HttpResponse:
    """A public page a CDN should be able to cache."""
    return HttpResponse("public prices")


# This module is also a portal's URLconf: the demo's URLs without a URL named "logout", with its own
# sign-out URL named "signout" and a public page.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("authguard/", include("authguard.urls")),
    path("signout/", LogoutView.as_view(), name="signout"),
    path("prices/", prices, name="prices"),
    path("", include([p for p in brokerage_urls.urlpatterns if getattr(p, "name", None) != "logout"])),
]


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """alice with an authenticator app (the recipe ``alice_with_totp`` of tests/conftest.py)."""
    return alice_with_totp


@pytest.fixture
def pending(alice: Any, browser_at: Any) -> Client:
    """alice signed in from a hosting address: her session waits for step-up."""
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    assert client.sign_in("alice").url.startswith("/authguard/step-up/")
    assert client.session["_authguard"]["s"] == "pending"
    return client


@pytest.fixture
def portal(pending: Client, settings: Any) -> Client:
    """The pending session on a portal built from this module: its URLs, and authguard's own templates (the
    demo's base template is the demo's, with its own links)."""
    settings.ROOT_URLCONF = __name__
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": []}, *settings.TEMPLATES[1:]]
    return pending


def sign_out_form(page: Any) -> str | None:
    """The action of the step-up page's sign-out form, or None when the page has none."""
    html = page.content.decode()
    marker = '<form method="post" action="'
    for chunk in html.split(marker)[1:]:
        action, _rest = chunk.split('"', 1)
        if "Cancel and sign out" in chunk.split("</form>", 1)[0]:
            return action
    return None


# -- AUTHGUARD_LOGOUT_URL ------------------------------------------------------------------------------------


def test_by_default_the_step_up_page_signs_out_through_the_url_named_logout(pending: Client) -> None:
    page = pending.get("/authguard/step-up/")
    assert page.status_code == 200 and sign_out_form(page) == "/logout/"


def test_a_portal_without_a_url_named_logout_gets_a_step_up_page_without_the_button(
    portal: Client, caplog: Any
) -> None:
    with caplog.at_level(logging.WARNING, logger="authguard.sessions.middleware"):
        page = portal.get("/authguard/step-up/")
    assert page.status_code == 200 and "Enter a code from your authenticator app" in page.content.decode()
    assert sign_out_form(page) is None
    assert any("AUTHGUARD_LOGOUT_URL" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value", ["signout", "/signout/"])
def test_the_setting_names_the_sign_out_url_and_a_pending_session_may_use_it(
    portal: Client, settings: Any, value: str
) -> None:
    settings.AUTHGUARD_LOGOUT_URL = value
    assert sign_out_form(portal.get("/authguard/step-up/")) == "/signout/"
    # Not in AUTHGUARD_PENDING_ALLOWED_VIEWS, yet the pending session reaches it: the sign-out happens.
    assert "signout" not in settings.AUTHGUARD_PENDING_ALLOWED_VIEWS
    answer = portal.post("/signout/")
    assert answer.status_code == 302 and not answer.url.startswith("/authguard/step-up/")
    assert SESSION_KEY not in portal.session


def test_an_empty_setting_leaves_the_button_out(pending: Client, settings: Any) -> None:
    settings.AUTHGUARD_LOGOUT_URL = ""
    page = pending.get("/authguard/step-up/")
    assert page.status_code == 200 and sign_out_form(page) is None


def test_other_pages_stay_closed_to_a_pending_session(portal: Client, settings: Any) -> None:
    settings.AUTHGUARD_LOGOUT_URL = "signout"
    held = portal.get("/prices/")
    assert held.status_code == 302 and held.url == "/authguard/step-up/?next=/prices/"


# -- the device cookie ---------------------------------------------------------------------------------------


def test_anonymous_visits_of_public_pages_carry_no_device_cookie(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    page = client.get("/prices/")
    assert page.status_code == 200 and COOKIE not in page.cookies
    assert not page.cookies  # nothing that would keep a CDN from caching it
    assert COOKIE not in client.get("/missing/").cookies  # a 404 neither
    assert COOKIE not in client.get(django_settings.STATIC_URL + "authguard/x.css").cookies


def test_the_login_page_and_authguards_pages_issue_the_device_cookie(client: Client) -> None:
    login = client.get("/login/")
    assert login.status_code == 200 and COOKIE in login.cookies
    other = Client()
    page = other.get("/authguard/step-up/")  # anonymous: sent to sign in, still a sign-in page
    assert COOKIE in page.cookies


def test_a_signed_in_request_without_the_cookie_gets_one(alice: Any, browser_at: Any) -> None:
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice").status_code == 302
    del client.cookies[COOKIE]
    answer = client.get("/")
    assert COOKIE in answer.cookies and answer.cookies[COOKIE]["httponly"]


def test_a_json_clients_token_call_gets_the_cookie_with_the_csrf_cookie(settings: Any) -> None:
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    csrf = client.get("/api/csrf")  # what a single-page app calls before its login form
    assert {COOKIE, django_settings.CSRF_COOKIE_NAME} <= set(csrf.cookies)
    settings.ROOT_URLCONF = __name__
    assert not Client().get("/prices/").cookies  # the public page still carries neither


def test_a_json_login_without_an_earlier_visit_binds_the_cookie_issued_with_it(alice: Any) -> None:
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    client.cookies[django_settings.CSRF_COOKIE_NAME] = "x" * 32  # no earlier visit: no device cookie
    login = client.post(
        "/api/login",
        {"username": "alice", "password": "correct horse battery"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN="x" * 32,
    )
    assert login.status_code == 200 and COOKIE in login.cookies
    assert client.get("/api/portfolio").status_code == 200
    assert client.session["_authguard"]["r"] is False  # no re-score: the issued cookie is the bound one
