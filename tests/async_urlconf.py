"""The demo's URLs plus a portal's own ``async def`` views (and their sync twins) under the step-up
decorators, for :mod:`tests.test_async_views` (issue 14, item 5)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

from authguard.sessions.decorators import step_up_exempt, step_up_required


@step_up_required
async def async_withdraw(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"async withdrawal form for {(await request.auser()).get_username()}")


@step_up_required(max_age=120)
async def async_statements(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok", "async": True})


@step_up_exempt
async def async_help(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async help")


async def async_private(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async private")


@step_up_required
def sync_withdraw(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"sync withdrawal form for {request.user.get_username()}")


@step_up_required(max_age=120)
def sync_statements(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok", "async": False})


@step_up_exempt
def sync_help(request: HttpRequest) -> HttpResponse:
    return HttpResponse("sync help")


def sync_private(request: HttpRequest) -> HttpResponse:
    return HttpResponse("sync private")


urlpatterns = [
    path("", include("demo_site.urls")),
    path("async/withdraw/", async_withdraw, name="async-withdraw"),
    path("async/api/statements", async_statements, name="async-statements"),
    path("async/help/", async_help, name="async-help"),
    path("async/private/", async_private, name="async-private"),
    path("sync/withdraw/", sync_withdraw, name="sync-withdraw"),
    path("sync/api/statements", sync_statements, name="sync-statements"),
    path("sync/help/", sync_help, name="sync-help"),
    path("sync/private/", sync_private, name="sync-private"),
]
