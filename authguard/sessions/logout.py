"""Where a signed-in customer signs out: the portal's logout URL (``AUTHGUARD_LOGOUT_URL``).

Kept apart from the middleware: the template tag that draws the sign-out buttons needs it, and template tags
load when Django checks the templates, before anything else of authguard may be importable.
"""

from __future__ import annotations

import logging

from django.urls import NoReverseMatch, reverse

from authguard.conf import app_settings

logger = logging.getLogger(__name__)


def logout_url() -> str | None:
    """Where the "sign out" buttons of authguard's pages post to: ``AUTHGUARD_LOGOUT_URL`` (a URL name or a
    path, default ``"logout"``) resolved, or None when it names no URL (the pages then show no sign-out
    button instead of failing with ``NoReverseMatch``)."""
    target = app_settings.LOGOUT_URL
    if not target:
        return None
    try:
        return reverse(target)
    except NoReverseMatch:
        if target.startswith("/") or "://" in target:
            return target
        logger.warning(
            "authguard: AUTHGUARD_LOGOUT_URL %r names no URL; the sign-out button is left out", target
        )
        return None
