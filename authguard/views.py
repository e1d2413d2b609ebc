"""Thin views: parse the request, call one flow function, render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern

# Step-up and security pages add their routes here; authguard/urls.py mounts them.
urlpatterns: list[URLPattern] = []


def denied(request: HttpRequest) -> HttpResponse:
    """The generic page shown when a login is refused; it says nothing an attacker could use."""
    return render(request, "authguard/denied.html", status=403)
