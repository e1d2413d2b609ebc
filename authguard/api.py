"""authguard's JSON API for step-up and passkeys (CONTRACTS section 4), mounted under ``api/``."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
