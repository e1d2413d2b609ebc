"""The demo portal's JSON API (CONTRACTS section 3).

Session-cookie authentication with Django's CSRF protection left on: ``GET /api/csrf`` sets the token cookie
and returns the token, and every unsafe request sends it back in the ``X-CSRFToken`` header. Every answer is a
JSON object with a ``status``; malformed input of any kind gets a 4xx answer and changes nothing.

Money is sent as decimal strings (``"2850.00"``), quantities and volumes as integers. Cash and portfolio
values are in yen; an instrument's ``price`` is in its ``currency``.

The views are thin: :func:`json_view` answers wrong methods and anonymous users, :func:`read_json_object`
parses the body, and the work is done by :mod:`demo_site.brokerage.services`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from django.contrib.auth import logout
from django.core.exceptions import RequestDataTooBig
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views import csrf as csrf_views
from django.views import defaults

from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential, Throttled
from authguard.login import lockout, unlocking
from authguard.login.flow import locked_message, password_login
from authguard.orders.guard import OrderDenied, confirmation_json

from . import services
from .models import Order, OrderStatus

#: Largest request body the API reads. Order and login bodies are a few dozen bytes.
MAX_BODY_BYTES = 64 * 1024
#: Longest username and password passed on to authentication (Django's username column is 150 wide).
MAX_USERNAME_LENGTH = 150
MAX_PASSWORD_LENGTH = 4096
#: Longest one-time code, recovery code or cancel reference read (their checks know the exact shape).
MAX_CODE_LENGTH = 64
#: Newest orders listed by ``GET /api/orders``.
MAX_ORDERS_LISTED = 500
ORDER_FIELDS = frozenset({"side", "symbol", "quantity"})

View = Callable[..., HttpResponse]


def answer(status: str, http_status: int = 200, **fields: Any) -> JsonResponse:
    """A JSON answer ``{"status": status, **fields}`` that no cache keeps."""
    response = JsonResponse({"status": status, **fields}, status=http_status, encoder=DjangoJSONEncoder)
    add_never_cache_headers(response)
    return response


class ApiError(Exception):
    """Raised inside an API view to answer with an error; :func:`json_view` turns it into the response."""

    def __init__(self, http_status: int, status: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status = status
        self.fields = {"message": message, **fields}

    def response(self) -> JsonResponse:
        return answer(self.status, self.http_status, **self.fields)


def invalid(errors: Mapping[str, list[str]], http_status: int = 400) -> ApiError:
    """The ``invalid`` answer: messages per field, and all of them in ``message``."""
    message = " ".join(m for messages in errors.values() for m in messages)
    return ApiError(http_status, "invalid", message, errors=dict(errors))


def json_view(*methods: str, login_required: bool = True) -> Callable[[View], View]:
    """Make ``view`` an API view that accepts only ``methods`` (405 otherwise), and signed-in users only
    unless ``login_required`` is false (401 ``login_required``). :class:`ApiError` becomes its answer."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = answer(
                    "method_not_allowed", 405, message=_("Use %(methods)s.") % {"methods": ", ".join(methods)}
                )
                response["Allow"] = ", ".join(methods)
                return response
            # SECURITY: every account endpoint refuses anonymous callers before reading anything.
            if login_required and not request.user.is_authenticated:
                return answer("login_required", 401, message=_("Sign in first: POST /api/login."))
            try:
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error.response()

        return wrapper

    return decorator


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def read_json_object(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or an :class:`ApiError` (400, 413 or 415) saying what is wrong."""
    if (request.content_type or "").lower() != "application/json":
        raise invalid({"body": [_("Send a JSON body with Content-Type: application/json.")]}, 415)
    too_large = invalid(
        {"body": [_("The body is larger than %(max)s bytes.") % {"max": MAX_BODY_BYTES}]}, 413
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # SECURITY: refuse big bodies before reading them, not after.
    if declared > MAX_BODY_BYTES:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > MAX_BODY_BYTES:
        raise too_large
    try:
        # Deeply nested input makes the decoder recurse; NaN and Infinity are not JSON.
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise invalid({"body": [_("The body is not valid JSON.")]}) from None
    if not isinstance(data, dict):
        raise invalid({"body": [_("The body must be a JSON object.")]})
    return data


def _credential(value: object, max_length: int) -> str | None:
    """``value`` if it is a usable credential string, else ``None``."""
    if not isinstance(value, str) or not value or len(value) > max_length or "\x00" in value:
        return None
    try:
        # A lone surrogate from "\ud800" in JSON cannot be hashed or sent to the database.
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


# -- views ---------------------------------------------------------------------------------------------


@json_view("GET", login_required=False)
def csrf(request: HttpRequest) -> HttpResponse:
    """``GET /api/csrf``: set the CSRF cookie and return the token to send as ``X-CSRFToken``."""
    return answer("ok", csrf_token=get_token(request))


@json_view("POST", login_required=False)
def login(request: HttpRequest) -> HttpResponse:
    """``POST /api/login`` ``{"username", "password"}``: sign in through authguard's risk-checked login."""
    data = read_json_object(request)
    username = _credential(data.get("username"), MAX_USERNAME_LENGTH)
    password = _credential(data.get("password"), MAX_PASSWORD_LENGTH)
    errors: dict[str, list[str]] = {}
    if username is None:
        errors["username"] = [
            _("Enter a username of 1 to %(max)s characters.") % {"max": MAX_USERNAME_LENGTH}
        ]
    if password is None:
        errors["password"] = [
            _("Enter a password of 1 to %(max)s characters.") % {"max": MAX_PASSWORD_LENGTH}
        ]
    if errors or username is None or password is None:
        raise invalid(errors)
    result = password_login(request, username=username, password=password)
    if result.status == "ok":
        # login() rotated the CSRF token; hand the new one over so a client need not re-fetch it.
        return answer("ok", username=username, csrf_token=get_token(request))
    if result.status == "step_up_required":
        return answer("step_up_required", methods=list(result.methods), csrf_token=get_token(request))
    if result.status == "invalid":
        # SECURITY: one body for an unknown user and a wrong password.
        return answer("invalid", 401, message=_("The username or password is not correct."))
    if result.status == "throttled":
        return answer("throttled", 429, message=_("Too many sign-in attempts. Please wait and try again."))
    if result.status == "locked":
        # SECURITY: the password was not checked: a right and a wrong one get this very answer (case 59).
        return answer("denied", 403, code="locked", message=locked_message(), unlock=unlock_ways())
    # SECURITY: "denied" and any status this view does not know fail closed.
    return answer("denied", 403, message=_("We could not sign you in from here."))


def unlock_ways() -> dict[str, Any]:
    """The ways back into a locked account, as API paths (the same for every account and every answer)."""
    return {
        "passkey": {
            "options": reverse("authguard:api-unlock-options"),
            "verify": reverse("authguard:api-unlock"),
        },
        "codes": reverse("brokerage:api-unlock-codes")
        if app_settings.UNLOCK_WAIT_HOURS is not None
        else None,
        "cancel": reverse("brokerage:api-unlock-cancel"),
        "desk": True,
    }


def _username(data: dict[str, Any]) -> str:
    username = _credential(data.get("username"), MAX_USERNAME_LENGTH)
    if username is None:
        raise invalid({"username": [_("Enter your username.")]})
    return username


def _user_named(data: dict[str, Any]) -> Any:
    return _user_by_name(_username(data))


def _user_by_name(username: str) -> Any:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        return None


def _code(data: dict[str, Any], field: str) -> str:
    value = _credential(data.get(field), MAX_CODE_LENGTH)
    if value is None:
        raise invalid({field: [_("Enter the code.")]})
    return value


@json_view("POST", login_required=False)
def unlock_with_codes(request: HttpRequest) -> HttpResponse:
    """``POST /api/unlock/codes`` ``{"username", "totp_code", "recovery_code"}``: a locked customer without a
    passkey asks to unlock with a code from the authenticator app and a recovery code.

    202 ``unlock_requested`` with ``due_at`` (the account unlocks then, unless the customer cancels with the
    reference mailed to them) · 400 ``invalid`` (also for an unknown username, a factor the account lacks,
    or an account that is not locked: one answer) · after a right authenticator code only: 403 ``denied``
    (this way back is not open to the account) · 429 ``throttled``.
    """
    data = read_json_object(request)
    denied = answer(
        "denied",
        403,
        message=_("This account cannot be unlocked this way. Use your passkey or call customer support."),
    )
    username = _username(data)  # a malformed body is a 400 whatever the settings
    totp_code, recovery_code = _code(data, "totp_code"), _code(data, "recovery_code")
    if app_settings.UNLOCK_WAIT_HOURS is None:
        # SECURITY: the way is off for everyone (the JSDA preset): one answer for every name, before any is
        # looked up, or a 403 for a customer against a 400 for nobody tells who is one (red team, round 13).
        return denied
    user = _user_by_name(username)
    wrong = invalid({"code": [_("The codes are not correct, or this account is not locked.")]})
    if user is None:
        raise wrong  # SECURITY: an unknown username gets the wrong-code answer
    try:
        pending_unlock = unlocking.request_unlock_with_codes(
            user, totp_code=totp_code, recovery_code=recovery_code, request=request
        )
    except lockout.NotLocked:
        return answer("not_locked", 409, message=_("This account is not locked. You can sign in."))
    except lockout.UnlockUnavailable:
        return denied
    except Throttled as error:
        throttled = answer("throttled", 429, message=error.message)
        if error.retry_after is not None:
            throttled["Retry-After"] = str(error.retry_after)  # as every 429 of authguard's says
        return throttled
    except InvalidCredential:
        raise wrong from None
    return answer(
        "unlock_requested",
        202,
        due_at=pending_unlock.due_at,
        message=_(
            "Your account will be unlocked at %(time)s. We sent you a message with a reference "
            "to cancel this if it was not you."
        )
        % {"time": pending_unlock.due_at.isoformat(timespec="minutes")},
    )


@json_view("POST", login_required=False)
def cancel_unlock(request: HttpRequest) -> HttpResponse:
    """``POST /api/unlock/cancel`` ``{"username", "reference"}``: cancel a waiting unlock with the reference
    from the message; the account stays locked. 200 ``ok`` · 400 ``invalid`` (also for an unknown username
    and when no unlock is waiting: without the reference nothing about the account is told)."""
    data = read_json_object(request)
    user = _user_named(data)
    reference = _code(data, "reference")
    wrong = invalid({"reference": [_("That reference is not correct.")]})
    if user is None:
        raise wrong
    try:
        unlocking.cancel_unlock_request(user, reference=reference)
    except InvalidCredential:
        raise wrong from None
    return answer("ok", message=_("The unlock was cancelled. Your account stays locked."))


@json_view("POST", login_required=False)
def logout_view(request: HttpRequest) -> HttpResponse:
    """``POST /api/logout``: end the session (also fine when nobody is signed in)."""
    logout(request)
    return answer("ok")


@json_view("GET", login_required=False)
def instruments(request: HttpRequest) -> HttpResponse:
    """``GET /api/instruments``: the instrument list (public market data)."""
    rows = [
        {
            "symbol": i.symbol,
            "name": i.name,
            "market": i.market,
            "currency": i.currency,
            "price": i.price,
            "avg_daily_volume": i.avg_daily_volume,
            "listing_country": i.listing_country,
            "is_small_cap": i.is_small_cap,
        }
        for i in services.list_instruments()
    ]
    return answer("ok", instruments=rows)


@json_view("GET")
def portfolio(request: HttpRequest) -> HttpResponse:
    """``GET /api/portfolio``: cash, holdings with yen values, and the total, all in yen."""
    p = services.portfolio(request.user)
    holdings = [
        {
            "symbol": h.symbol,
            "name": h.name,
            "quantity": h.quantity,
            "price": h.price,
            "currency": h.currency,
            "value": h.value_jpy,
        }
        for h in p.holdings
    ]
    return answer(
        "ok",
        cash=p.cash,
        holdings=holdings,
        holdings_value=p.holdings_value,
        total_value=p.total_value,
        fx_usd_jpy=services.USD_JPY,
    )


def _order_json(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.pk,
        "side": order.side,
        "symbol": order.instrument.symbol,
        "quantity": order.quantity,
        "status": order.status,
        "price": order.price,
        "currency": order.currency,
        "amount_jpy": order.amount_jpy,
        "created_at": order.created_at,
        "executed_at": order.executed_at,
    }


@json_view("GET", "POST")
def orders(request: HttpRequest) -> HttpResponse:
    """``GET /api/orders``: the newest orders (``placed``, ``held``, ``cancelled`` or ``expired``).

    ``POST /api/orders`` ``{"side", "symbol", "quantity"}`` (optionally with an ``Idempotency-Key`` header):
    through authguard's order guard, 201 ``placed``; 202 ``held`` with the ``confirmation`` the customer
    must give (``{id, summary, methods, expires_at}``); 400 ``invalid`` with ``errors`` and no change (a
    price that moved above the one the order was checked at since it was validated: ``errors.price``, and the
    client submits the order again); 403 ``denied``. Repeating a key answers with the first order again.
    """
    if request.method == "GET":
        rows = [_order_json(o) for o in services.order_history(request.user)[:MAX_ORDERS_LISTED]]
        return answer("ok", orders=rows)
    data = read_json_object(request)
    # SECURITY: only these fields exist; a client sending "price" or "account" is told so, not ignored.
    unknown = sorted(set(data) - ORDER_FIELDS)
    if unknown:
        raise invalid({key: [_("Unknown field.")] for key in unknown})
    try:
        key = services.idempotency_key(request.headers.get("Idempotency-Key"))
        submitted = services.submit_order(
            request,
            side=data.get("side"),
            symbol=data.get("symbol"),
            quantity=data.get("quantity"),
            idempotency_key=key,
        )
    except services.OrderRejected as rejected:
        raise invalid(rejected.errors) from None
    except OrderDenied as denied:
        return answer("denied", 403, message=denied.message, reasons=denied.decision.reasons)
    order = submitted.order
    if submitted.confirmation is not None and order.status == OrderStatus.HELD:
        return answer(
            "held",
            202,
            order_id=order.pk,
            order=_order_json(order),
            confirmation={
                **confirmation_json(submitted.confirmation),
                "url": reverse("authguard:confirm", args=[submitted.confirmation.pk]),
            },
        )
    return answer(
        "placed" if order.status == OrderStatus.PLACED else order.status,
        201 if order.status == OrderStatus.PLACED else 200,
        order_id=order.pk,
        order=_order_json(order),
    )


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any other ``/api/...`` path."""
    return answer("not_found", 404, message=_("There is no such API endpoint."))


# -- error pages: JSON under /api/, Django's defaults elsewhere ----------------------------------------


def is_api_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for a JSON API (the portal's or authguard's ``.../api/...``), which answers
    JSON even when Django reports an error (a CSRF failure, say)."""
    try:
        prefix = reverse("brokerage:api-root")
    except NoReverseMatch:
        prefix = "/api/"
    return request.path.startswith(prefix) or "/api/" in request.path


def csrf_failure(
    request: HttpRequest, reason: str = "", template_name: str = csrf_views.CSRF_FAILURE_TEMPLATE_NAME
) -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: 403 ``csrf_failed`` JSON for the API, Django's page for everything else."""
    if is_api_request(request):
        return answer(
            "csrf_failed",
            403,
            message=_("CSRF check failed: GET /api/csrf and send the token in the X-CSRFToken header."),
            reason=reason,
        )
    return csrf_views.csrf_failure(request, reason=reason, template_name=template_name)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``."""
    if is_api_request(request):
        message = _("The request could not be read.")
        return answer("invalid", 400, message=message, errors={"body": [message]})
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler403``."""
    if is_api_request(request):
        return answer("denied", 403, message=_("You may not do this."))
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``."""
    if is_api_request(request):
        return not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the API still answers JSON if something breaks."""
    if is_api_request(request):
        return answer("error", 500, message=_("Something went wrong on our side."))
    return defaults.server_error(request)
