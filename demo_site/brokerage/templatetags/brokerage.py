"""Template filters of the demo brokerage: ``{% load brokerage %}``."""

from __future__ import annotations

from decimal import Decimal

from django import template

from .. import services

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str = "JPY") -> str:
    """``{{ value|money:"USD" }}`` → ``$1,234.56``; yen by default (``¥1,234``)."""
    if amount is None:
        return ""
    return services.format_money(Decimal(amount), currency)


@register.filter
def shares(quantity: int | None) -> str:
    """A share count with thousands separators: ``1,200``."""
    return "" if quantity is None else f"{int(quantity):,}"


@register.simple_tag
def codes_unlock_enabled() -> bool:
    """Whether the self-service unlock with an authenticator code and a recovery code is on (the JSDA
    preset and ``AUTHGUARD_UNLOCK_WAIT_HOURS = None`` turn it off): the login page offers it only then."""
    from authguard.conf import app_settings

    return app_settings.UNLOCK_WAIT_HOURS is not None


@register.simple_tag(takes_context=True)
def demo_place_switch(context: template.Context) -> dict[str, object] | None:
    """The login page's "sign in as if from…" switch (:mod:`demo_site.brokerage.demo_place`): the places and
    the one chosen, or None (nothing shown) outside DEBUG or without the demo's middleware."""
    from django.conf import settings

    from .. import demo_place

    middleware = f"{demo_place.__name__}.{demo_place.DemoPlaceMiddleware.__name__}"
    if not demo_place.enabled() or middleware not in settings.MIDDLEWARE:
        return None
    request = context.get("request")
    return {
        "places": list(demo_place.PLACES.items()),
        "current": demo_place.chosen(request) if request is not None else None,
    }
