"""Portal two's own views: the home page, a JSON login, and ``async def`` views under authguard's
decorators (an ASGI brokerage writes its statements and withdrawal pages this way)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from authguard.login.flow import locked_message, password_login
from authguard.sessions.decorators import step_up_required

from .models import Account

MAX_FIELD = 254  # the longest e-mail address


@login_required
def home(request: HttpRequest) -> HttpResponse:
    account = Account.objects.filter(user_id=request.user.pk).first()
    return render(request, "portal2/home.html", {"account": account})


def _answer(status: str, http_status: int = 200, **fields: Any) -> JsonResponse:
    return JsonResponse({"status": status, **fields}, status=http_status)


@require_GET
def csrf(request: HttpRequest) -> JsonResponse:
    return _answer("ok", csrf_token=get_token(request))


@require_POST
def api_login(request: HttpRequest) -> JsonResponse:
    """``POST {"email", "password"}``: the portal's single-page app signs in through authguard."""
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        return _answer("invalid", 400, message="Send a JSON object.")
    if not isinstance(data, dict):
        return _answer("invalid", 400, message="Send a JSON object.")
    email, password = data.get("email"), data.get("password")
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_FIELD and "\x00" not in v for v in (email, password)):
        return _answer("invalid", 400, message="Enter your e-mail address and password.")
    result = password_login(request, username=email, password=password)
    if result.status == "ok":
        return _answer("ok", csrf_token=get_token(request))
    if result.status == "step_up_required":
        return _answer("step_up_required", methods=result.methods, csrf_token=get_token(request))
    if result.status == "invalid":
        return _answer("invalid", 401, message="The e-mail address or password is not correct.")
    if result.status == "throttled":
        return _answer("throttled", 429, message="Too many attempts. Please wait.")
    if result.status == "locked":
        return _answer("denied", 403, code="locked", message=locked_message())
    return _answer("denied", 403, message="We could not sign you in from here.")


@require_POST
def api_logout(request: HttpRequest) -> JsonResponse:
    logout(request)
    return _answer("ok")


# -- async views ---------------------------------------------------------------------------------------------


@step_up_required(max_age=300)
async def statements(request: HttpRequest) -> JsonResponse:
    """``GET /api/v1/statements``: a fresh second factor within five minutes, an ``async def`` view."""
    user = await request.auser()
    account = await Account.objects.filter(user_id=user.pk).afirst()
    return _answer("ok", email=user.get_username(), cash=str(account.cash if account else 0))


async def balance(request: HttpRequest) -> JsonResponse:
    """``GET /api/v1/balance``: an undecorated ``async def`` view; only the middleware guards it."""
    user = await request.auser()
    if not user.is_authenticated:
        return _answer("login_required", 401)
    account = await Account.objects.filter(user_id=user.pk).afirst()
    return _answer("ok", cash=str(account.cash if account else 0))
