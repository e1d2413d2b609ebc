"""DRF's API tokens in the console, where the portal uses them: who holds one and since when, never the key.

A DRF token is a bearer credential: DRF's own ``TokenAdmin`` lists every key in clear to whoever may view
tokens, and lets one staff member create a token for any customer (an API sign-in as the customer with no
risk scoring, no step-up, no second approval and no notice). It is replaced here, as django-otp's TOTP admin
is (:mod:`~.factors`). Tokens end with the customer's sessions: a password change, a lock, the desk's
containment, "sign out everywhere else".
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest

from authguard.console.admin_base import ReadOnlyAdmin
from authguard.console.mixins import UserSearchMixin


class ApiTokenAdmin(UserSearchMixin, ReadOnlyAdmin):
    """Read-only: the customer and the sign-in time. No links, no selection: each would carry the key."""

    list_display = ("user", "created")
    list_display_links = None
    fields = ("user", "created")
    readonly_fields = ("user", "created")
    actions = None
    search_fields = ()

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # SECURITY: the admin takes any lookup on a field from the query string; ?key__startswith=... would
        # read a key out a character at a time (red team, 2026-12-05). Only the customer filters.
        return lookup.split("__")[0] == "user" and super().lookup_allowed(lookup, value, request)


if apps.is_installed("rest_framework.authtoken"):
    # DRF's admin module registers its TokenAdmin when imported; import it first so that it is replaced
    # whichever of the two apps comes first in INSTALLED_APPS (the admin's autodiscovery imports it once).
    from rest_framework.authtoken import admin as _drf_token_admin  # noqa: F401
    from rest_framework.authtoken.models import TokenProxy

    # SECURITY: no console page shows a customer's API key, and staff never create one.
    if admin.site.is_registered(TokenProxy):
        admin.site.unregister(TokenProxy)
    admin.site.register(TokenProxy, ApiTokenAdmin)
