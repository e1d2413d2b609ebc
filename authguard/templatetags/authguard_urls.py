"""URLs authguard's templates need from the portal.

``{% load authguard_urls %}{% authguard_logout_url as logout_url %}`` gives the URL the sign-out buttons post
to (``AUTHGUARD_LOGOUT_URL``, a URL name or a path), or ``""`` when it names no URL, so a portal without a
URL named ``logout`` shows no sign-out button instead of a ``NoReverseMatch`` error page.
"""

from __future__ import annotations

from django import template

from authguard.sessions.logout import logout_url

register = template.Library()


@register.simple_tag
def authguard_logout_url() -> str:
    """The resolved ``AUTHGUARD_LOGOUT_URL``, or ``""`` when it names no URL."""
    return logout_url() or ""
