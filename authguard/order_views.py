"""Held-order confirmation pages and JSON API (CONTRACTS section 4: ``api/confirmations/...``)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
