"""Held-order confirmation: an HTML page and the JSON API (CONTRACTS section 4: ``api/confirmations/...``).

Thin views over :mod:`authguard.orders.guard`. Every state change is a POST with Django's CSRF check; a GET
never confirms or cancels anything (security battery case 41).

The page ``confirmations/<id>/`` (``authguard:confirm``) shows the plain summary and why the order was held,
and offers what the confirmation allows: the passkey button (driven by ``authguard/passkeys.js`` through
``data-`` attributes), a TOTP form, and a cancel button. Stable element ids for browser tests:
``#confirm-summary``, ``#confirm-status``, ``#confirm-passkey`` (its button ``#confirm-passkey-button``),
``#confirm-totp-code`` with ``#confirm-totp-submit``, ``#confirm-cancel``, and ``#confirm-error``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from authguard.api import ApiError, answer, json_endpoint, read_json
from authguard.exceptions import InvalidCredential, Throttled
from authguard.models import HeldOrder
from authguard.orders import batch
from authguard.orders import guard as orders
from authguard.orders.guard import ConfirmationError, ConfirmationThrottled
from authguard.orders.rules import render_message


def _confirmation_error(request: HttpRequest, error: ConfirmationError) -> ApiError | Throttled:
    if isinstance(error, ConfirmationThrottled):
        # 429 ``throttled`` (with ``Retry-After``), as the step-up API answers the same back-off.
        return Throttled(error.message, code=error.code, retry_after=error.retry_after)
    status = {404: "not_found", 410: "gone"}.get(error.http_status, "invalid")
    return ApiError(error.http_status, status, error.message, code=error.code)


def _confirmed_answer(confirmed: orders.Confirmed) -> HttpResponse:
    held = confirmed.confirmation
    return answer(
        "confirmed",
        200,
        confirmation=orders.confirmation_json(held),
        order=orders.stored_order(held),
        result_ref=confirmed.result_ref,
    )


# -- JSON API ----------------------------------------------------------------------------------------------


@json_endpoint()
def api_passkey_options(request: HttpRequest, confirmation_id: str) -> HttpResponse:
    """``POST api/confirmations/<id>/passkey/options``: request options bound to that held order."""
    try:
        options = orders.confirmation_options(request, confirmation_id=confirmation_id)
    except ConfirmationError as error:
        raise _confirmation_error(request, error) from None
    return answer("ok", **options)


@json_endpoint()
def api_passkey(request: HttpRequest, confirmation_id: str) -> HttpResponse:
    """``POST api/confirmations/<id>/passkey`` credential: 200 ``confirmed`` · 400 · 404 · 410."""
    credential = read_json(request)
    try:
        confirmed = orders.confirm_with_passkey(
            request, confirmation_id=confirmation_id, credential=credential
        )
    except ConfirmationError as error:
        raise _confirmation_error(request, error) from None
    return _confirmed_answer(confirmed)


@json_endpoint()
def api_totp(request: HttpRequest, confirmation_id: str) -> HttpResponse:
    """``POST api/confirmations/<id>/totp`` ``{"code"}``: as above, where the confirmation allows TOTP;
    429 ``throttled`` (with ``Retry-After``) while the authenticator's back-off refuses attempts."""
    data = read_json(request)
    try:
        confirmed = orders.confirm_with_totp(request, confirmation_id=confirmation_id, code=data.get("code"))
    except ConfirmationError as error:
        raise _confirmation_error(request, error) from None
    return _confirmed_answer(confirmed)


@json_endpoint()
def api_batch_passkey_options(request: HttpRequest) -> HttpResponse:
    """``POST api/confirmations/batch/passkey/options`` ``{"ids": [...]}``: request options whose challenge
    names exactly these held orders (one confirmation for a batch)."""
    data = read_json(request)
    # The batch page's button sends no ids: it confirms the set that page showed (named in its URL).
    ids = data.get("ids") if "ids" in data else batch.ids_of_shown_set(request)
    try:
        options = batch.batch_options(request, ids=ids)
    except ConfirmationError as error:
        raise _confirmation_error(request, error) from None
    return answer("ok", **options)


@json_endpoint()
def api_batch_passkey(request: HttpRequest) -> HttpResponse:
    """``POST api/confirmations/batch/passkey`` ``{"ids": [...], "credential": {...}}``: 200 ``confirmed``
    with each order executed (``confirmed``) or not (``failed``, with the reason) · 400 · 404 · 410."""
    data = read_json(request)
    if "credential" in data:
        ids, credential = data.get("ids"), data.get("credential")
    else:  # the batch page's button: the credential alone, for the set that page showed (in its URL)
        ids, credential = batch.ids_of_shown_set(request), data
    try:
        result = batch.confirm_batch_with_passkey(request, ids=ids, credential=credential)
    except ConfirmationError as error:
        raise _confirmation_error(request, error) from None
    return answer(
        "confirmed",
        200,
        confirmed=[
            {
                "id": str(c.confirmation.pk),
                "order": orders.stored_order(c.confirmation),
                "result_ref": c.result_ref,
            }
            for c in result.confirmed
        ],
        failed=[{"id": str(held.pk), "message": message} for held, message in result.failed],
    )


@json_endpoint()
def api_cancel(request: HttpRequest, confirmation_id: str) -> HttpResponse:
    """``POST api/confirmations/<id>/cancel``: 200 ``cancelled`` · 404 · 410."""
    try:
        orders.cancel(request, confirmation_id=confirmation_id)
    except ConfirmationError as error:
        raise _confirmation_error(request, error) from None
    return answer("cancelled")


# -- HTML page -------------------------------------------------------------------------------------------


def _page_context(request: HttpRequest, held: HeldOrder) -> dict[str, Any]:
    try:
        orders.pending_for(request, held.pk)
        confirmable = True
    except ConfirmationError:
        confirmable = False
    held.refresh_from_db()
    # Plain reasons in the reader's language (never the rule codes), from the stored template and numbers.
    reasons = [render_message(r) for r in held.reasons if isinstance(r, dict)]
    return {
        "held": held,
        "summary": orders.confirmation_json(held)["summary"],
        "reasons": reasons,
        "confirmable": confirmable,
        "pending": held.status == HeldOrder.Status.PENDING,
        "passkey": confirmable and "passkey" in held.methods,
        "totp": confirmable and "totp" in held.methods,
        "options_url": reverse("authguard:api-confirm-passkey-options", args=[held.pk]),
        "verify_url": reverse("authguard:api-confirm-passkey", args=[held.pk]),
        "done_url": reverse("authguard:confirm", args=[held.pk]),
        "batch_url": reverse("authguard:confirm-batch"),
    }


@never_cache
@require_http_methods(["GET"])
def confirm_batch(request: HttpRequest) -> HttpResponse:
    """``confirmations/batch/``: every order this session has waiting, listed with its plain summary and
    reasons, confirmed together with one passkey (the challenge names exactly the listed set)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    helds = batch.session_pending(request)
    shown = batch.shown_set(helds)
    rows = [
        {
            "held": held,
            "summary": orders.confirmation_json(held)["summary"],
            "reasons": [render_message(r) for r in held.reasons if isinstance(r, dict)],
        }
        for held in helds
    ]
    passkey = bool(helds) and all("passkey" in held.methods for held in helds)
    return render(
        request,
        "authguard/confirm_batch.html",
        {
            "rows": rows,
            "passkey": passkey,
            "options_url": f"{reverse('authguard:api-confirm-batch-options')}?{shown}",
            "verify_url": f"{reverse('authguard:api-confirm-batch')}?{shown}",
            "done_url": reverse("authguard:confirm-batch"),
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, confirmation_id: str) -> HttpResponse:
    """``confirmations/<id>/``: the summary; POST ``action=totp`` (with ``code``) or ``action=cancel``."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        held = orders.owned_confirmation(request, confirmation_id)
    except ConfirmationError:
        return render(request, "authguard/confirm_missing.html", status=404)
    error = ""
    status = 200
    retry_after: int | None = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "cancel":
                orders.cancel(request, confirmation_id=held.pk)
                messages.info(request, _("The order was cancelled. Nothing was traded."))
                return redirect(reverse("authguard:confirm", args=[held.pk]))
            if action == "totp":
                orders.confirm_with_totp(request, confirmation_id=held.pk, code=request.POST.get("code", ""))
                messages.success(request, _("Confirmed: the order was placed."))
                return redirect(reverse("authguard:confirm", args=[held.pk]))
            error, status = _("Choose confirm or cancel."), 400
        except ConfirmationError as exc:
            error, status = exc.message, exc.http_status if exc.http_status != 404 else 400
            if isinstance(exc, ConfirmationThrottled):
                retry_after = exc.retry_after
        except InvalidCredential as exc:  # pragma: no cover - orders wraps these
            error, status = exc.message, 400
    response = render(
        request, "authguard/confirm.html", {**_page_context(request, held), "error": error}, status=status
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


urlpatterns: list[URLPattern] = [
    # Before the per-order paths, which would read "batch" as a confirmation id.
    path(
        "api/confirmations/batch/passkey/options", api_batch_passkey_options, name="api-confirm-batch-options"
    ),
    path("api/confirmations/batch/passkey", api_batch_passkey, name="api-confirm-batch"),
    path("confirmations/batch/", confirm_batch, name="confirm-batch"),
    path("confirmations/<str:confirmation_id>/", confirm, name="confirm"),
    path(
        "api/confirmations/<str:confirmation_id>/passkey/options",
        api_passkey_options,
        name="api-confirm-passkey-options",
    ),
    path("api/confirmations/<str:confirmation_id>/passkey", api_passkey, name="api-confirm-passkey"),
    path("api/confirmations/<str:confirmation_id>/totp", api_totp, name="api-confirm-totp"),
    path("api/confirmations/<str:confirmation_id>/cancel", api_cancel, name="api-confirm-cancel"),
]
