"""authguard's JSON API for step-up, passkeys and factors (CONTRACTS section 4), mounted under ``api/``.

Every answer is a JSON object with a ``status`` (``ok``, ``invalid``, ``throttled``, ``step_up_required``,
``login_required``, ``denied``, ``not_found``, ``method_not_allowed``) and, on errors, a ``message`` for the
user and a stable ``code``. Options answers are the JSON forms of the WebAuthn option dictionaries with
``"status": "ok"`` added; credential bodies are the browser's ``PublicKeyCredential.toJSON()`` output.
Django's CSRF protection stays on (send ``X-CSRFToken``). Malformed JSON, wrong types and bodies over
:data:`MAX_BODY_BYTES` answer 400 ``invalid`` and change nothing.

The views are thin: parse, call one function of :mod:`authguard.factors.passkeys`,
:mod:`authguard.factors.base` or
:mod:`authguard.sessions.stepup`, answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.urls import URLPattern, path
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from authguard.exceptions import InvalidCredential, StepUpRequired, Throttled
from authguard.factors import base as factors
from authguard.factors import contact, inventory, lifecycle, passkeys, recovery, removal, totp
from authguard.login import lockout, unlocking
from authguard.login import stepup as login_stepup
from authguard.notifications.lures import shown_name
from authguard.sessions import state as sessions_state
from authguard.sessions.decorators import step_up_exempt

logger = logging.getLogger(__name__)

#: Largest request body read. A passkey registration with a "packed" attestation is a few kilobytes.
MAX_BODY_BYTES = 64 * 1024
#: WebAuthn challenge purposes used by this API.
PURPOSE_STEP_UP = "step_up"
PURPOSE_LOGIN = "login"
PURPOSE_UNLOCK = "unlock"

View = Callable[..., HttpResponse]


class ApiError(Exception):
    """Raised inside a view to answer with an error (turned into the response by :func:`json_endpoint`)."""

    def __init__(self, http_status: int, status: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status = status
        self.message = message
        self.fields = fields


def answer(status: str, http_status: int = 200, **fields: Any) -> JsonResponse:
    """``{"status": status, **fields}``, never cached."""
    response = JsonResponse({"status": status, **fields}, status=http_status)
    add_never_cache_headers(response)
    return response


def throttled_answer(error: Throttled) -> JsonResponse:
    """429 ``throttled`` with the message, and ``Retry-After`` when the throttle knows how long it waits."""
    response = answer("throttled", 429, message=error.message, code=error.code)
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


def _error(error: ApiError) -> JsonResponse:
    return answer(error.status, error.http_status, message=error.message, **error.fields)


def json_endpoint(*, login: bool = True) -> Callable[[View], View]:
    """POST only, JSON answers for every outcome; ``login``: the session must be signed in (401 otherwise).

    Turns authguard's exceptions into their answers: :class:`InvalidCredential` 400 ``invalid``,
    :class:`Throttled` 429 ``throttled`` (with ``Retry-After`` when known), :class:`StepUpRequired` 401
    (pending session) / 403 (verified but not freshly, or a first factor from a risky session)
    ``step_up_required``.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method != "POST":
                    response = answer("method_not_allowed", 405, message=_("Use POST."))
                    response["Allow"] = "POST"
                    return response
                if login and not request.user.is_authenticated:
                    raise ApiError(401, "login_required", _("Sign in first."))
                return view(request, *args, **kwargs)
            except ApiError as error:
                return _error(error)
            except InvalidCredential as error:
                return answer("invalid", 400, message=error.message, code=error.code)
            except Throttled as error:
                return throttled_answer(error)
            except StepUpRequired as error:
                if error.code == "login_required":
                    return answer("login_required", 401, message=error.message)
                http_status = 401 if sessions_state.is_pending(request) else 403
                return answer(
                    "step_up_required",
                    http_status,
                    message=error.message,
                    code=error.code,
                    methods=error.methods,
                )

        return wrapper

    return decorator


def read_json(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, bounded by :data:`MAX_BODY_BYTES`; 400 ``invalid`` otherwise."""
    too_large = ApiError(400, "invalid", _("The request is too large."), code="too_large")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    except RawPostDataException:
        # A form body the CSRF middleware already parsed from the stream (multipart): not JSON, a 400, not
        # the 500 anyone with a CSRF token could raise at will (red team, round fifty-one).
        raise ApiError(
            400, "invalid", _("The request body must be a JSON object."), code="malformed"
        ) from None
    if len(body) > MAX_BODY_BYTES:
        raise too_large
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid", _("The request body is not valid JSON."), code="malformed") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", _("The request body must be a JSON object."), code="malformed")
    return data


def _may_step_up(request: HttpRequest, method: str, *, posted: bool = True) -> None:
    """The step-up rule every front end shares (:func:`authguard.login.stepup.check_step_up_allowed`): a
    locked account, or a pending login stepped up from where a sign-in is refused, gets the generic
    ``denied`` answer (403) and verifies nothing; a method the user lacks (or the preset refuses) is 400
    ``method_unavailable``. ``posted``: false for a passkey's options (the factor is judged when posted)."""
    try:
        login_stepup.check_step_up_allowed(
            request.user, method=method, request=request, carries_factor=posted
        )
    except login_stepup.StepUpUnavailable as refused:
        if refused.code in login_stepup.REFUSED:
            logout(request)  # SECURITY: the pending login ends; nothing here may finish it
            raise ApiError(403, "denied", refused.message) from None
        raise ApiError(400, "invalid", refused.message, code="method_unavailable") from None


def _verified(request: HttpRequest, *, device: Any, method: str) -> JsonResponse:
    """A factor was proven: a pending session is stepped up, a verified one records the re-verification."""
    login_stepup.finish_step_up(request, device=device, method=method)
    return answer("ok")


def _failed(request: HttpRequest) -> None:
    sessions_state.note_step_up_failure(request)


# -- step-up -------------------------------------------------------------------------------------------


def _step_up_code(request: HttpRequest, *, method: str) -> HttpResponse:
    _may_step_up(request, method)
    code = read_json(request).get("code")
    device = login_stepup.verify_step_up_code(request, user=request.user, method=method, code=code)
    if device is None:
        message = (
            _("That code is not correct. Please try again.")
            if isinstance(code, str) and code.strip()
            else _("Enter the code.")
        )
        raise ApiError(400, "invalid", message, code="wrong_code")
    return _verified(request, device=device, method=method)


@step_up_exempt
@json_endpoint()
def step_up_totp(request: HttpRequest) -> HttpResponse:
    """``POST api/step-up/totp {"code"}``: 200 ``ok`` · 400 ``invalid`` · 429 ``throttled``."""
    return _step_up_code(request, method="totp")


@step_up_exempt
@json_endpoint()
def step_up_recovery_code(request: HttpRequest) -> HttpResponse:
    """``POST api/step-up/recovery-code {"code"}``: 200 ``ok`` · 400 ``invalid`` · 429 ``throttled``."""
    return _step_up_code(request, method="recovery_code")


@step_up_exempt
@json_endpoint()
def step_up_passkey_options(request: HttpRequest) -> HttpResponse:
    """``POST api/step-up/passkey/options``: 200 request options for the user's passkeys."""
    _may_step_up(request, "passkey", posted=False)
    return answer(
        "ok", **passkeys.authentication_options(request, purpose=PURPOSE_STEP_UP, user=request.user)
    )


@step_up_exempt
@json_endpoint()
def step_up_passkey(request: HttpRequest) -> HttpResponse:
    """``POST api/step-up/passkey`` credential: 200 ``ok`` · 400 ``invalid``."""
    _may_step_up(request, "passkey")
    credential = read_json(request)
    try:
        device = passkeys.verify_authentication(
            request, purpose=PURPOSE_STEP_UP, credential=credential, user=request.user
        )
    except InvalidCredential as exc:
        _failed(request)
        factors.note_account_failure(request.user, kind="passkey", code=exc.code)
        raise
    return _verified(request, device=device, method="passkey")


# -- passwordless login ----------------------------------------------------------------------------------


@step_up_exempt
@json_endpoint(login=False)
def login_passkey_options(request: HttpRequest) -> HttpResponse:
    """``POST api/login/passkey/options``: 200 request options for a usernameless (discoverable) login; the
    browser may offer them through autofill (conditional mediation)."""
    return answer("ok", **passkeys.authentication_options(request, purpose=PURPOSE_LOGIN, user=None))


@step_up_exempt
@json_endpoint(login=False)
def login_passkey(request: HttpRequest) -> HttpResponse:
    """``POST api/login/passkey`` credential: 200 ``ok`` (signed in) · 400 ``invalid`` · 403 ``denied``."""
    credential = read_json(request)
    device = passkeys.verify_authentication(request, purpose=PURPOSE_LOGIN, credential=credential, user=None)
    result = login_stepup.complete_passwordless_login(request, user=device.user, device=device)
    if result.status != "ok":
        # The same answer whatever the reason (locked, denied by the risk engine, inactive).
        raise ApiError(403, "denied", _("We could not sign you in from here."))
    return answer("ok")


# -- unlocking a locked account with the customer's own passkey -------------------------------------------


@step_up_exempt
@json_endpoint(login=False)
def unlock_options(request: HttpRequest) -> HttpResponse:
    """``POST api/unlock/options``: 200 request options for a discoverable passkey to unlock its account."""
    return answer("ok", **passkeys.authentication_options(request, purpose=PURPOSE_UNLOCK, user=None))


@step_up_exempt
@json_endpoint(login=False)
def unlock(request: HttpRequest) -> HttpResponse:
    """``POST api/unlock`` credential: 200 ``ok`` (unlocked; sign in as usual) · 400 ``invalid``
    · 409 ``not_locked`` · 403 ``denied`` where passkeys may not unlock (``AUTHGUARD_UNLOCK_METHODS``).

    Nothing is signed in: the customer proved who they are with their own passkey and then signs in again,
    scored like any other login.
    """

    credential = read_json(request)
    try:
        unlocking.unlock_with_passkey(request, credential=credential)
    except lockout.NotLocked:
        raise ApiError(409, "not_locked", _("This account is not locked. You can sign in.")) from None
    except PermissionDenied:
        raise ApiError(403, "denied", _("This account cannot be unlocked with a passkey here.")) from None
    return answer("ok", message=_("Your account is unlocked. You can sign in again."))


# -- passkeys ----------------------------------------------------------------------------------------------


@json_endpoint()
def passkey_options(request: HttpRequest) -> HttpResponse:
    """``POST api/passkeys/options``: 200 creation options · 401/403 ``step_up_required`` unless the session
    holds a fresh strong verification (or it is a first factor from a low-risk session)."""
    return answer("ok", **passkeys.registration_options(request, user=request.user))


@json_endpoint()
def passkey_register(request: HttpRequest) -> HttpResponse:
    """``POST api/passkeys`` credential (and an optional ``name``): 201 ``ok`` · 400 ``invalid`` · 401/403."""
    credential = read_json(request)
    name = credential.pop("name", "")
    if not isinstance(name, str):
        raise ApiError(400, "invalid", _("The name must be text."), code="malformed")
    device = passkeys.register(request, user=request.user, credential=credential, name=name)
    return answer(
        "ok",
        201,
        passkey={
            "id": device.persistent_id,
            "name": device.name,
            "cooling_off": factors.in_cooling_off(device),
        },
    )


# -- TOTP and recovery codes -----------------------------------------------------------------------------


@json_endpoint()
def totp_begin(request: HttpRequest) -> HttpResponse:
    """``POST api/totp``: 200 ``otpauth_uri``, ``secret`` and ``qr_svg`` of a new, unconfirmed TOTP device."""
    enrollment = totp.begin_totp_enrollment(request, user=request.user)
    return answer(
        "ok", otpauth_uri=enrollment.otpauth_uri, secret=enrollment.secret, qr_svg=enrollment.qr_svg
    )


@json_endpoint()
def totp_confirm(request: HttpRequest) -> HttpResponse:
    """``POST api/totp/confirm {"code"}``: 201 ``ok`` · 400 ``invalid`` · 429 ``throttled`` · 401/403."""
    code = read_json(request).get("code")
    device = totp.confirm_totp_enrollment(request, user=request.user, code=code)
    return answer("ok", 201, totp={"id": device.persistent_id, "cooling_off": factors.in_cooling_off(device)})


@json_endpoint()
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """``POST api/recovery-codes``: 201 ``codes`` (a new set, shown once; the old set dies) · 401/403."""
    codes = recovery.generate_recovery_codes(request, user=request.user)
    return answer("ok", 201, codes=codes)


@json_endpoint()
def factors_state(request: HttpRequest) -> HttpResponse:
    """``POST api/factors``: 200 the session user's factors (id, kind, name, confirmed, cooling off) and
    the account's cooling-off (``cooling_off_until``, ISO, or null)."""

    user = request.user
    until = inventory.cooling_off_until(user)
    return answer(
        "ok",
        factors=[
            {
                "id": device.persistent_id,
                "kind": inventory.kind_of(device),
                "name": shown_name(device.name),
                "confirmed_at": _iso(inventory.factor_confirmed_at(device)),
                "cooling_off": inventory.factor_is_cooling_off(device),
            }
            for device in inventory.user_factors(user)
        ],
        cooling_off_until=_iso(until),
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@json_endpoint()
def email_change(request: HttpRequest) -> HttpResponse:
    """``POST api/email {"email"}``: 202 ``ok`` (a code was mailed to the new address) · 400 ``invalid``
    · 401/403 ``step_up_required`` (a fresh passkey, or two different factors without a passkey)."""

    contact.begin_email_change(request, user=request.user, new_email=read_json(request).get("email"))
    return answer(
        "ok",
        202,
        message=_("We sent a code to the new address. Enter it to finish the change."),
        login_name_changes=contact.email_is_login_name(),
    )


@json_endpoint()
def email_confirm(request: HttpRequest) -> HttpResponse:
    """``POST api/email/confirm {"code"}``: 200 ``ok`` (changed; the old address is told, the account cools
    off) · 400 ``invalid`` · 429 ``throttled`` · 401/403 ``step_up_required``."""

    contact.confirm_email_change(request, user=request.user, code=read_json(request).get("code"))
    # Where the e-mail address is the login name, the customer signs in with the new one from now on.
    return answer("ok", login_name_changed=contact.email_is_login_name())


@json_endpoint()
def factor_remove(request: HttpRequest) -> HttpResponse:
    """``POST api/factors/remove {"id": persistent_id}``: 200 ``ok`` · 404 ``not_found`` · 401/403."""
    device = inventory.device_from_id(request.user, read_json(request).get("id"))
    if device is None:
        # Checked after the rules, so the answer says nothing about other users' devices.
        lifecycle.require_can_change_factors(request)
        raise ApiError(404, "not_found", _("There is no such security method on your account."))
    removal.remove_factor(request, user=request.user, device=device)
    return answer("ok")


urlpatterns: list[URLPattern] = [
    path("api/step-up/totp", step_up_totp, name="api-step-up-totp"),
    path("api/step-up/recovery-code", step_up_recovery_code, name="api-step-up-recovery-code"),
    path("api/step-up/passkey/options", step_up_passkey_options, name="api-step-up-passkey-options"),
    path("api/step-up/passkey", step_up_passkey, name="api-step-up-passkey"),
    path("api/login/passkey/options", login_passkey_options, name="api-login-passkey-options"),
    path("api/login/passkey", login_passkey, name="api-login-passkey"),
    path("api/unlock/options", unlock_options, name="api-unlock-options"),
    path("api/unlock", unlock, name="api-unlock"),
    path("api/passkeys/options", passkey_options, name="api-passkeys-options"),
    path("api/passkeys", passkey_register, name="api-passkeys"),
    path("api/totp", totp_begin, name="api-totp"),
    path("api/totp/confirm", totp_confirm, name="api-totp-confirm"),
    path("api/recovery-codes", recovery_codes, name="api-recovery-codes"),
    path("api/factors", factors_state, name="api-factors"),
    path("api/factors/remove", factor_remove, name="api-factor-remove"),
    path("api/email", email_change, name="api-email"),
    path("api/email/confirm", email_confirm, name="api-email-confirm"),
]
