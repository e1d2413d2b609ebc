"""Demo only: "sign in as if from…", so a person at the demo can try a risky place from the browser.

A browser on the demo's machine connects from loopback, an unknown place. The demo already treats loopback as
its reverse proxy, so ``curl -H "X-Forwarded-For: 203.0.113.1"`` signs in "from a VPS in Singapore"
(docs/demo.md). This module does the same for a browser: the login page's switch (``choose``) stores one of
the demo GeoIP file's documentation addresses in a cookie, and :class:`DemoPlaceMiddleware` turns that cookie
into the ``X-Forwarded-For`` header a load balancer would send, for every request of that browser (so the
session stays bound to the place it was verified in).

SECURITY: impossible outside DEBUG. The middleware removes itself at start-up unless ``DEBUG`` is on
(``MiddlewareNotUsed``) and checks ``DEBUG`` again on every request; the view answers 404 without it; the
switch is not rendered without it. Only the addresses of :data:`PLACES` (documentation ranges, RFC 5737) are
ever written, and only for a request that reached Django straight from loopback, i.e. a browser on the demo's
own machine. A deployment never lists this middleware; even if it did, it would do nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

#: The cookie holding the chosen address (a browser session cookie: gone when the browser closes).
COOKIE = "demo_place"
#: Where the demo's own browser connects from.
LOOPBACK = frozenset({"127.0.0.1", "::1"})

#: The places on offer: an address of the demo GeoIP files (demo_site/brokerage/geoip_plan.py) and its label.
PLACES: dict[str, object] = {
    "192.0.2.1": _("Tokyo, home fibre (NTT OCN)"),
    "192.0.2.65": _("Osaka, home line (KDDI)"),
    "198.51.100.129": _("Singapore, home broadband (a customer travelling)"),
    "198.51.100.65": _("Tokyo, a residential proxy (looks like a home line)"),
    "203.0.113.1": _("Singapore, a VPS (DigitalOcean): the phisher"),
    "203.0.113.65": _("Los Angeles, a VPN (Vultr)"),
    "203.0.113.193": _("Frankfurt, a Tor exit"),
}


def enabled() -> bool:
    """Whether the switch works here: DEBUG only."""
    return bool(settings.DEBUG)


def chosen(request: HttpRequest) -> str | None:
    """The address this browser chose, if the switch is on and the cookie names one of :data:`PLACES`."""
    value = request.COOKIES.get(COOKIE)
    return value if enabled() and value in PLACES else None


class DemoPlaceMiddleware:
    """Sends the chosen place as ``X-Forwarded-For``; list it first in ``MIDDLEWARE`` (before authguard's)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not enabled():
            # SECURITY: never in production.
            raise MiddlewareNotUsed("demo only: the place switch needs DEBUG")
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        place = chosen(request)
        # SECURITY: DEBUG (checked in chosen()) and a browser on this machine only; replaces what it sent.
        if place is not None and request.META.get("REMOTE_ADDR") in LOOPBACK:
            request.META["HTTP_X_FORWARDED_FOR"] = place
        return self.get_response(request)


@never_cache
@require_POST
def choose(request: HttpRequest) -> HttpResponse:
    """``POST demo/place/`` ``place`` (one of :data:`PLACES`, or empty for this computer) and ``next``:
    sets or clears the cookie and goes back. 404 outside DEBUG; 400 for an address not on offer."""
    if not enabled():
        raise Http404("demo only")
    place = request.POST.get("place", "")
    target = request.POST.get("next") or "/login/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/login/"
    if place and place not in PLACES:
        return HttpResponse("Unknown place.", status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponseRedirect(target)
    if place:
        response.set_cookie(COOKIE, place, httponly=True, samesite="Lax")
    else:
        response.delete_cookie(COOKIE, samesite="Lax")
    return response
