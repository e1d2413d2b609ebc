"""Red team round forty-three (a): a portal that turns on Django's per-site cache (``UpdateCacheMiddleware``
first, ``FetchFromCacheMiddleware`` last, as Django's docs place them) over pages of its own that set no cache
headers: her statement, cached with her cookies as its key, was served to a byte-for-byte copy of her jar that
authguard held at step-up (the cache answers before the view, below authguard). Fixed:

* Every answer to a signed-in session is ``Cache-Control: private`` (``AuthguardMiddleware``), which Django's
  cache middleware and shared proxies do not store.
* System check ``authguard.W113``: ``UpdateCacheMiddleware`` listed after authguard's middleware (it would
  store the answer before authguard marks it). ``authguard.W111`` also knows a session engine built on
  Django's signed-cookie one.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.decorators import login_required
from django.contrib.sessions.backends import signed_cookies
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from demo_site.brokerage.models import Account

from .conftest import (
    HANAKO_PASSWORD,
    IP_SG_VPS,
    IP_TOKYO,
    UA_CHROME_WIN,
    OrderApi,
    of_long_standing,
    totp_token,
)
from .factor_scenarios import old_totp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@login_required
def statement(request: HttpRequest) -> HttpResponse:
    """The portal's own statement page (a plain Django view: no cache headers of its own)."""
    cash = Account.objects.get(user=request.user).cash
    return HttpResponse(f"<h1>Statement of {request.user.get_username()}</h1><p>cash {cash}</p>")


urlpatterns = [
    path("portal/statement", statement),
    path("", include("demo_site.urls")),
]


@pytest.fixture
def cached_portal(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    settings.MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *[m for m in settings.MIDDLEWARE if "DemoPlace" not in m],
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    settings.CACHE_MIDDLEWARE_SECONDS = 600


@pytest.mark.battery(18)
def test_a_copied_cookie_jar_authguard_holds_still_reads_her_pages_from_the_page_cache(
    cached_portal: None, brokerage_customer: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: a session authguard holds or ends (a copy of her cookie jar used from a hosting network
    abroad, which a fresh sign-in would refuse) reads nothing of her account: authguard's answers to a
    signed-in session are marked ``Cache-Control: private`` (or the per-site cache is refused by a check), so
    no shared cache can hand her pages to another holder of the same cookies.

    hanako reads her statement at home. An infostealer sends her cookie jar to the thief, who replays it,
    byte for byte, from a VPS in Singapore. authguard re-scores the session and holds it at step-up (its
    redirect is what the view would have answered); but ``FetchFromCacheMiddleware``, below authguard's
    middleware, answers from the per-site cache, keyed on the URL and the ``Cookie`` header (``Vary:
    Cookie``), before ``process_view`` can refuse, and the thief reads her statement (any page she loaded in
    the last ``CACHE_MIDDLEWARE_SECONDS``), also after she signed out everywhere. Her answer carried
    ``Cache-Control: max-age=600`` and no ``private``, so a shared proxy or CDN may keep it as well."""
    hanako = of_long_standing(brokerage_customer(holdings={"7203": 100}))
    hanako.totp = old_totp(hanako, totp_factory)
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    her.client.get("/portal/statement")
    clock.shift(20)
    page = her.client.get("/portal/statement")  # a reload: nothing of her session to save, so it is cached
    assert page.status_code == 200 and b"cash 1000000" in page.content, page.content

    clock.shift(60)
    thief = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    for name, morsel in her.client.cookies.items():
        thief.cookies[name] = morsel.value
    stolen = thief.get("/portal/statement")
    assert b"cash 1000000" not in stolen.content, (stolen.status_code, stolen.content)


def test_a_page_cache_below_authguard_and_a_signed_cookie_engine_of_the_portals_fail_the_checks(
    settings: Any,
) -> None:
    """W113 for ``UpdateCacheMiddleware`` below authguard's middleware (none when it comes first, as Django's
    docs place it); W111 for an engine whose store subclasses Django's signed-cookie one (this module)."""
    from authguard.checks import check_locks

    authguard_mw = "authguard.middleware.AuthguardMiddleware"
    update = "django.middleware.cache.UpdateCacheMiddleware"
    base = [m for m in settings.MIDDLEWARE if "cache" not in m]
    assert authguard_mw in base
    settings.MIDDLEWARE = [update, *base]
    assert [m.id for m in check_locks(None)] == []
    settings.MIDDLEWARE = [*base, update]
    assert [m.id for m in check_locks(None)] == ["authguard.W113"]
    settings.MIDDLEWARE = [*base, "django.middleware.cache.CacheMiddleware"]  # the two in one
    assert [m.id for m in check_locks(None)] == ["authguard.W113"]
    settings.MIDDLEWARE = base
    settings.SESSION_ENGINE = __name__
    assert [m.id for m in check_locks(None)] == ["authguard.W111"]


class SessionStore(signed_cookies.SessionStore):
    """A portal's own engine built on Django's signed cookies (for the W111 test above)."""


def test_held_an_answer_to_a_request_with_credentials_is_never_stored_by_a_shared_cache() -> None:
    """An API call authenticated by a header (a token, Basic) is answered ``private`` as a session's is
    (red team, round forty-four: a per-site cache keyed on the URL would hand her token's answer to
    anyone). The demo's home page, public otherwise, is the probe."""
    answer = Client(REMOTE_ADDR=IP_TOKYO).get("/", HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert "private" in answer.get("Cache-Control", ""), (answer.status_code, answer.get("Cache-Control"))


@pytest.mark.django_db(transaction=True)
def test_held_a_static_file_of_a_signed_in_browser_costs_no_query_and_stays_cacheable(
    brokerage_customer: Any,
) -> None:
    """Review, round forty-four: the private mark is for answers about the account; a static file's request
    never loads the session, so it sends no statement and a CDN may keep the file."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    customer = brokerage_customer(holdings={"7203": 100})
    browser = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    browser.force_login(customer)
    with CaptureQueriesContext(connection) as queries:
        answer = browser.get("/static/app.css")
    assert len(queries.captured_queries) == 0, [q["sql"][:80] for q in queries.captured_queries]
    assert "private" not in answer.get("Cache-Control", "")
