"""The views of :mod:`authguard.drf` (the token login and its step-up exchange), apart so that
``authguard.drf``'s authentication and permission classes can be named in ``REST_FRAMEWORK``."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers, permissions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authguard import clock
from authguard.drf import (
    MAX_PASSWORD_LENGTH,
    PURPOSE_STEP_UP,
    STEP_UP_TOKEN_SECONDS,
    Answer,
    LoginResult,
    PendingLogin,
    _claim,
    _credential,
    _discard,
    _expired,
    _in_session,
    _invalid,
    _issue_token,
    _park,
    _session_store,
    _throttled,
    answer,
    app_name,
    login_answer,
    note_token_strength,
    pending_login,
    read_body,
    revoke_tokens,
)
from authguard.exceptions import InvalidCredential, Throttled
from authguard.factors import base as factors
from authguard.factors import passkeys, recovery, totp
from authguard.login import stepup as login_stepup
from authguard.login.flow import password_login
from authguard.risk.context import login_name_limit
from authguard.sessions import state as sessions_state
from authguard.sessions.records import unless_ended_since

# -- the token login ---------------------------------------------------------------------------------------


def _step_up_urls() -> dict[str, str] | None:
    try:
        return {
            "totp": reverse(f"{app_name}:step-up-totp"),
            "recovery_code": reverse(f"{app_name}:step-up-recovery-code"),
            "passkey_options": reverse(f"{app_name}:step-up-passkey-options"),
            "passkey": reverse(f"{app_name}:step-up-passkey"),
        }
    except NoReverseMatch:
        return None


class _View(APIView):
    """No authentication (the body carries the credential), no CSRF, answers of this module."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]
    parser_classes = [parsers.JSONParser]
    renderer_classes = [JSONRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Answer):
            return exc.response()
        if isinstance(exc, Throttled):
            return _throttled(exc)
        if isinstance(exc, InvalidCredential):
            return answer("invalid", 400, message=exc.message, code=exc.code)
        if isinstance(exc, exceptions.MethodNotAllowed):
            response = answer("method_not_allowed", 405, message=_("Use POST."))
            response["Allow"] = "POST"
            return response
        return super().handle_exception(exc)


class ObtainAuthToken(_View):
    """``POST {"username", "password"}`` (JSON or a form, as DRF's ``obtain_auth_token``): a risk-scored
    token login.

    200 ``{"status": "ok", "token"}`` · 401 ``step_up_required`` with ``step_up_token``, ``expires_in``,
    ``methods`` and the step-up URLs · 400 ``invalid`` (malformed, or a wrong username or password: one
    answer) · 403 ``denied`` (with ``code`` ``locked`` for a locked account, whatever password) · 429
    ``throttled``. Every attempt is a :class:`~authguard.models.LoginEvent`, scored and notified exactly
    like the portal's browser and JSON logins.
    """

    parser_classes = [parsers.JSONParser, parsers.FormParser, parsers.MultiPartParser]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = read_body(request)
        field = get_user_model().USERNAME_FIELD
        # SECURITY: the user model's limit (not 150): a long e-mail address signs in here as elsewhere.
        longest = login_name_limit()
        username = _credential(data.get("username", data.get(field)), longest)
        password = _credential(data.get("password"), MAX_PASSWORD_LENGTH)
        errors: dict[str, list[str]] = {}
        if username is None:
            errors["username"] = [_("Enter a username of 1 to %(max)s characters.") % {"max": longest}]
        if password is None:
            errors["password"] = [
                _("Enter a password of 1 to %(max)s characters.") % {"max": MAX_PASSWORD_LENGTH}
            ]
        if errors or username is None or password is None:
            message = " ".join(m for messages in errors.values() for m in messages)
            return answer("invalid", 400, message=message, code="malformed", errors=errors)
        http = request._request
        session = _session_store()()
        step_up_token = None
        started = clock.timestamp()
        with _in_session(http, session):
            result = password_login(http, username=username, password=password)
            if result.status == "step_up_required":
                state = sessions_state.raw_state(http) or {}
                event_id = sessions_state.event_id(state)
                if event_id is None:  # SECURITY: no event to bind to: fail closed
                    result = LoginResult("denied")
                else:
                    step_up_token, parked = _park(session, result.user, event_id, started_at=started)
                    # SECURITY: an ending of the account's sessions (the desk's, her "sign out everywhere")
                    # that read the records before the parked record was written never knew of it: the
                    # next relayed code exchanged it for a token (red team, round fifty-seven).
                    user_pk = getattr(result.user, "pk", None)
                    if unless_ended_since(user_pk, started, partial(_discard, parked)):
                        result, step_up_token = LoginResult("denied"), None
        if result.status != "step_up_required":
            _discard(session)  # an allowed login's private session served its purpose; a denied one is empty
        refused = login_answer(result)
        if refused is not None:
            return refused
        if result.status == "ok":
            key = _issue_token(result.user, request=http)
            # SECURITY: her reset (or the desk's lock) that revoked the account's tokens while this login
            # checked the old password came before this token: it ends too (red team, round fifty).
            if unless_ended_since(
                getattr(result.user, "pk", None), started, partial(revoke_tokens, result.user)
            ):
                return login_answer(LoginResult("denied")) or answer("denied", 403)
            return answer("ok", token=key)
        return answer(
            "step_up_required",
            401,
            message=_("Confirm it is you with a second factor first."),
            step_up_token=step_up_token,
            expires_in=STEP_UP_TOKEN_SECONDS,
            methods=list(result.methods),
            step_up=_step_up_urls(),
        )


# -- the step-up exchange --------------------------------------------------------------------------------


def _usable(http: HttpRequest, pending: PendingLogin, method: str, *, judged: bool = True) -> None:
    # SECURITY: a lock taken since the login (repeated failures elsewhere) stops the exchange too, and so
    # does an exchange posted from where a sign-in is refused (the step_up_token is a bearer credential):
    # the same rule as the browser's step-up (authguard.login.stepup.check_step_up_allowed).
    try:
        with pending.signed_in():  # the parked login's state and binding, as the browser's pending session
            login_stepup.check_step_up_allowed(
                pending.user, method=method, request=http, carries_factor=judged
            )
    except login_stepup.StepUpUnavailable as refused:
        if refused.code in login_stepup.REFUSED:
            _discard(pending.session)  # the parked login ends: its token exchanges nothing any more
            pending.done = True
            raise Answer(403, "denied", refused.message) from None
        raise Answer(400, "invalid", refused.message, code="method_unavailable") from None


def _failed(http: HttpRequest, pending: PendingLogin) -> None:
    """A factor failed: the login event says ``step_up_failed``, as in a browser's pending session."""
    with pending.signed_in():
        sessions_state.note_step_up_failure(http)


def _passed(http: HttpRequest, pending: PendingLogin, *, device: Any, method: str) -> Response:
    """The factor passed: finish the login with stepup's own flow, spend the step-up token, hand out the
    token."""
    if pending.started_at is None:
        # SECURITY: parked before its start was kept (round fifty-seven): no telling whether an ending came
        # during it, so no token; and nothing of hers is revoked for it (review, round fifty-nine).
        raise _expired()
    _claim(pending)
    session = pending.session
    with pending.signed_in(), transaction.atomic():
        login_stepup.complete_step_up(http, user=pending.user, device=device, method=method)
        key = _issue_token(pending.user, request=http)
    # complete_step_up rotated the private session's key: delete the new one (and its record) too.
    _discard(session)
    pending.done = True
    # SECURITY: the token, written, is checked against the endings since the sign-in began (the ending marks
    # before it revokes the tokens): one that ended the parked login after this exchange read it, or before
    # the record's commit, ends the token too (red team, round fifty-seven).
    if unless_ended_since(pending.user.pk, pending.started_at, partial(revoke_tokens, pending.user)):
        raise _expired()
    note_token_strength(key, method=method, device=device)
    return answer("ok", token=key, method=method)


class _StepUpView(_View):
    method = ""
    #: Whether the factor itself is posted here, so where it comes from is judged (not a passkey's options).
    posts_factor = True

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = read_body(request)
        pending = pending_login(data.get("step_up_token"))
        http = request._request
        with _in_session(http, pending.session, user=pending.user):
            try:
                _usable(http, pending, self.method, judged=self.posts_factor)
                return self.exchange(http, pending, data)
            finally:
                if not pending.done and pending.session.session_key is not None and pending.session.modified:
                    pending.session.save()  # a challenge issued or popped, throttle state: kept or gone

    def exchange(self, http: HttpRequest, pending: PendingLogin, data: Mapping[str, Any]) -> Response:
        raise NotImplementedError


class _CodeStepUp(_StepUpView):
    def exchange(self, http: HttpRequest, pending: PendingLogin, data: Mapping[str, Any]) -> Response:
        code = data.get("code")
        check = totp.verify_totp if self.method == "totp" else recovery.verify_recovery_code
        try:
            # SECURITY: the user is the parked login's; nothing in the body names a user.
            device = check(pending.user, code, request=http)
        except Throttled:
            _failed(http, pending)
            raise
        if device is None:
            _failed(http, pending)
            message = (
                _("That code is not correct. Please try again.")
                if isinstance(code, str) and code.strip()
                else _("Enter the code.")
            )
            raise Answer(400, "invalid", message, code="wrong_code")
        return _passed(http, pending, device=device, method=self.method)


class StepUpTotp(_CodeStepUp):
    """``POST {"step_up_token", "code"}``: 200 ``{"status": "ok", "token"}`` · 400 ``invalid``
    (``wrong_code``, ``step_up_unavailable``) · 401 ``login_required`` (``step_up_expired``) · 403 ``denied``
    · 429 ``throttled``."""

    method = "totp"


class StepUpRecoveryCode(_CodeStepUp):
    """``POST {"step_up_token", "code"}`` with a recovery code; answers as :class:`StepUpTotp`."""

    method = "recovery_code"


class StepUpPasskeyOptions(_StepUpView):
    """``POST {"step_up_token"}``: 200 WebAuthn request options for the user's passkeys (the challenge is
    kept with the pending login, never in a cookie)."""

    method = "passkey"
    posts_factor = False

    def exchange(self, http: HttpRequest, pending: PendingLogin, data: Mapping[str, Any]) -> Response:
        options = passkeys.authentication_options(http, purpose=PURPOSE_STEP_UP, user=pending.user)
        return answer("ok", **options)


class StepUpPasskey(_StepUpView):
    """``POST {"step_up_token", "credential"}`` (the browser's ``PublicKeyCredential.toJSON()``): 200
    ``{"status": "ok", "token"}`` · 400 ``invalid`` · 401 ``login_required`` · 403 ``denied``."""

    method = "passkey"

    def exchange(self, http: HttpRequest, pending: PendingLogin, data: Mapping[str, Any]) -> Response:
        credential = data.get("credential")
        if not isinstance(credential, dict):
            raise _invalid(_("Send the passkey response as credential."))
        try:
            device = passkeys.verify_authentication(
                http, purpose=PURPOSE_STEP_UP, credential=credential, user=pending.user
            )
        except InvalidCredential as exc:
            _failed(http, pending)
            factors.note_account_failure(pending.user, kind="passkey", code=exc.code)
            raise
        return _passed(http, pending, device=device, method="passkey")


# -- URLs ------------------------------------------------------------------------------------------------

#: ``path("api/auth/", include("authguard.drf"))``: the token login and its step-up exchange, namespaced
#: ``authguard_drf``.
urlpatterns = [
    path("token", ObtainAuthToken.as_view(), name="token"),
    path("step-up/totp", StepUpTotp.as_view(), name="step-up-totp"),
    path("step-up/recovery-code", StepUpRecoveryCode.as_view(), name="step-up-recovery-code"),
    path("step-up/passkey/options", StepUpPasskeyOptions.as_view(), name="step-up-passkey-options"),
    path("step-up/passkey", StepUpPasskey.as_view(), name="step-up-passkey"),
]

#: A drop-in for ``rest_framework.authtoken.views.obtain_auth_token``.
obtain_auth_token = ObtainAuthToken.as_view()
