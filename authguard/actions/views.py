"""Sensitive-action confirmation: an HTML page and the JSON API (``api/actions/<id>/...``).

Thin views over :mod:`authguard.actions.flow`. Every state change is a POST with Django's CSRF check; a GET
never
confirms or cancels anything.

The page ``actions/<id>/`` (``authguard:action-confirm``) shows the plain summary of the action and offers
what its confirmation allows: the passkey button (driven by ``authguard/passkeys.js`` through ``data-``
attributes), a TOTP form where the settings allow it, and a cancel button. It uses the element ids of the
held-order page: ``#confirm-summary``, ``#confirm-status`` (``data-status``), ``#confirm-passkey`` (its button
``#confirm-passkey-button``), ``#confirm-totp-code`` with ``#confirm-totp-submit``, ``#confirm-cancel`` and
``#confirm-error``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from authguard.actions import flow as actions
from authguard.actions.flow import ConfirmationError, ConfirmationThrottled
from authguard.api import ApiError, answer, json_endpoint, read_json
from authguard.exceptions import Throttled
from authguard.models import HeldAction


def _api_error(error: actions.ActionError) -> ApiError | Throttled:
    if isinstance(error, ConfirmationThrottled):
        return Throttled(error.message, code=error.code, retry_after=error.retry_after)
    status = {404: "not_found", 410: "gone", 403: "refused"}.get(error.http_status, "invalid")
    return ApiError(error.http_status, status, error.message, code=error.code)


def _confirmed_answer(confirmed: actions.Confirmed) -> HttpResponse:
    held = confirmed.action
    return answer(
        "confirmed",
        200,
        confirmation=actions.action_json(held),
        action=actions.stored_action(held)["params"],
        result_ref=confirmed.result_ref,
    )


# -- JSON API ----------------------------------------------------------------------------------------------


@json_endpoint()
def api_passkey_options(request: HttpRequest, action_id: str) -> HttpResponse:
    """``POST api/actions/<id>/passkey/options``: request options whose challenge is bound to that action."""
    try:
        options = actions.confirmation_options(request, action_id=action_id)
    except ConfirmationError as error:
        raise _api_error(error) from None
    return answer("ok", **options)


@json_endpoint()
def api_passkey(request: HttpRequest, action_id: str) -> HttpResponse:
    """``POST api/actions/<id>/passkey`` credential: 200 ``confirmed`` · 400 · 404 · 410."""
    credential = read_json(request)
    try:
        confirmed = actions.confirm_with_passkey(request, action_id=action_id, credential=credential)
    except (ConfirmationError, actions.PayeeOnHold) as error:
        raise _api_error(error) from None
    return _confirmed_answer(confirmed)


@json_endpoint()
def api_totp(request: HttpRequest, action_id: str) -> HttpResponse:
    """``POST api/actions/<id>/totp`` ``{"code"}``: only where the action's ``methods`` list ``totp``."""
    data = read_json(request)
    try:
        confirmed = actions.confirm_with_totp(request, action_id=action_id, code=data.get("code"))
    except (ConfirmationError, actions.PayeeOnHold) as error:
        raise _api_error(error) from None
    return _confirmed_answer(confirmed)


@json_endpoint()
def api_cancel(request: HttpRequest, action_id: str) -> HttpResponse:
    """``POST api/actions/<id>/cancel``: 200 ``cancelled`` · 404 · 410."""
    try:
        actions.cancel(request, action_id=action_id)
    except ConfirmationError as error:
        raise _api_error(error) from None
    return answer("cancelled")


# -- HTML page -------------------------------------------------------------------------------------------


def _page_context(request: HttpRequest, held: HeldAction) -> dict[str, Any]:
    try:
        actions.pending_for(request, held.pk)
        confirmable = True
    except ConfirmationError:
        confirmable = False
    held.refresh_from_db()
    pending = held.status == HeldAction.Status.PENDING
    return {
        "held": held,
        "summary": actions.action_json(held)["summary"],
        "confirmable": confirmable,
        "pending": pending,
        "passkey": confirmable and "passkey" in held.methods,
        "totp": confirmable and "totp" in held.methods,
        "options_url": reverse("authguard:api-action-passkey-options", args=[held.pk]),
        "verify_url": reverse("authguard:api-action-passkey", args=[held.pk]),
        "done_url": reverse("authguard:action-confirm", args=[held.pk]),
    }


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, action_id: str) -> HttpResponse:
    """``actions/<id>/``: the summary; POST ``action=totp`` (with ``code``) or ``action=cancel``."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        held = actions.owned_action(request, action_id)
    except ConfirmationError:
        return render(request, "authguard/actions/missing.html", status=404)
    error = ""
    status = 200
    retry_after: int | None = None
    if request.method == "POST":
        choice = request.POST.get("action")
        try:
            if choice == "cancel":
                actions.cancel(request, action_id=held.pk)
                messages.info(request, _("Cancelled. Nothing was carried out."))
                return redirect(reverse("authguard:action-confirm", args=[held.pk]))
            if choice == "totp":
                actions.confirm_with_totp(request, action_id=held.pk, code=request.POST.get("code", ""))
                messages.success(request, _("Confirmed and carried out."))
                return redirect(reverse("authguard:action-confirm", args=[held.pk]))
            error, status = _("Choose confirm or cancel."), 400
        except ConfirmationError as exc:
            error, status = exc.message, exc.http_status if exc.http_status != 404 else 400
            if isinstance(exc, ConfirmationThrottled):
                retry_after = exc.retry_after
        except actions.PayeeOnHold as exc:
            error, status = exc.message, 403
    response = render(
        request,
        "authguard/actions/confirm.html",
        {**_page_context(request, held), "error": error},
        status=status,
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response
