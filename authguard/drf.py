"""Django REST framework integration: token logins scored like browser logins, step-up for token clients,
and permission classes (docs/drf.md).

DRF's ``obtain_auth_token`` calls ``authenticate()`` and hands out a token: no login event, no score, no
notification, no step-up (issue 14, item 1). :class:`ObtainAuthToken` replaces it. It signs the password in
through :func:`authguard.login.flow.password_login`, the very flow of a JSON login, inside a *private* session
(never the client's cookie), and answers by its decision:

* ``ok``: 200 ``{"status": "ok", "token": ...}``;
* ``step_up_required``: 401 with a ``step_up_token``: a signed, single-use credential, good for
  :data:`STEP_UP_TOKEN_SECONDS`, bound to the login event and the user, that only the step-up endpoints of
  this module accept (TOTP, recovery code, passkey); the pending login waits in the private session (the
  very state a browser's pending session holds), and :func:`authguard.login.stepup.complete_step_up`
  finishes it;
* ``denied``, ``locked``, ``throttled``, ``invalid``: the JSON login's answers.

:class:`StepUpRequired` and :class:`NotPending` are DRF permission classes; :class:`TokenAuthentication` is
DRF's, refusing the tokens of locked accounts. A token obtained through a step-up counts as strongly verified
(by that method) for ``max_age`` seconds, like a browser session after a step-up: its strength is kept in the
cache (:func:`token_strength`).

``rest_framework`` is imported here only: authguard works without DRF installed, and this module needs
``rest_framework`` and ``rest_framework.authtoken`` in ``INSTALLED_APPS``.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response

from authguard import clock
from authguard.conf import app_settings
from authguard.drf_tokens import TOKEN_KEY_LENGTH
from authguard.drf_tokens import _issue_token as _issue_token
from authguard.drf_tokens import revoke_tokens as revoke_tokens
from authguard.exceptions import Throttled
from authguard.factors import inventory
from authguard.factors import methods as factor_methods
from authguard.login import lockout
from authguard.login.flow import LoginResult, locked_message
from authguard.models import SessionRecord
from authguard.resilience import CacheUnavailable, guarded_cache_call
from authguard.risk.context import TOKEN_CLIENT_ATTR
from authguard.sessions import state as sessions_state
from authguard.sessions import token_activity, token_binding, token_devices
from authguard.sessions.token_strength import STRENGTH_TTL_SECONDS as STRENGTH_TTL_SECONDS
from authguard.sessions.token_strength import Strength as Strength
from authguard.sessions.token_strength import forget_token_strength as forget_token_strength
from authguard.sessions.token_strength import note_token_strength as note_token_strength
from authguard.sessions.token_strength import token_strength as token_strength

if TYPE_CHECKING:
    from authguard.drf_views import (
        ObtainAuthToken,
        StepUpPasskey,
        StepUpPasskeyOptions,
        StepUpRecoveryCode,
        StepUpTotp,
        obtain_auth_token,
        urlpatterns,
    )

logger = logging.getLogger(__name__)

#: How long a step-up token can be exchanged (seconds); the pending login it names dies with it.
STEP_UP_TOKEN_SECONDS = 300
#: Largest request body read (a passkey assertion is a few kilobytes).
MAX_BODY_BYTES = 64 * 1024
#: Longest password passed on to authentication (as the JSON login); the longest login name is the user
#: model's (:func:`~authguard.risk.context.login_name_limit`).
MAX_PASSWORD_LENGTH = 4096
#: The WebAuthn challenge purpose of a token step-up (the same as the session step-up's).
PURPOSE_STEP_UP = "step_up"
#: Session key of the parked login's identity in a private session (see :func:`_park`).
PARKED_KEY = "_authguard_drf"
_SALT = "authguard.drf.step_up_token"
_SPENT_PREFIX = "authguard:drf:step-up-spent:"

app_name = "authguard_drf"


# -- answers -----------------------------------------------------------------------------------------------


class Answer(Exception):
    """Raised inside a view of this module to answer at once: ``{"status", "message", **fields}``."""

    def __init__(self, http_status: int, status: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status = status
        self.fields = {"message": message, **fields}

    def response(self) -> Response:
        return answer(self.status, self.http_status, **self.fields)


def answer(status_: str, http_status: int = 200, **fields: Any) -> Response:
    """``{"status": status_, **fields}``, never cached."""
    response = Response({"status": status_, **fields}, status=http_status)
    add_never_cache_headers(response)
    return response


def _invalid(message: str, code: str = "malformed", http_status: int = 400) -> Answer:
    return Answer(http_status, "invalid", message, code=code)


def read_body(request: Request) -> Mapping[str, Any]:
    """The parsed body (JSON, or a form for the token login), bounded by :data:`MAX_BODY_BYTES`.

    DRF's own parse errors echo the parser's text and a deeply nested body is a ``RecursionError`` (a 500):
    both become 400 ``invalid`` with a fixed message here."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # SECURITY: DRF's parsers read the stream directly, past DATA_UPLOAD_MAX_MEMORY_SIZE: refuse first.
    if declared > MAX_BODY_BYTES:
        raise _invalid(_("The request is too large."), "too_large", 413)
    try:
        data = request.data
    except exceptions.UnsupportedMediaType:
        raise _invalid(
            _("Send a JSON body with Content-Type: application/json."), "unsupported_media_type", 415
        ) from None
    except (exceptions.ParseError, RecursionError, UnicodeDecodeError, ValueError):
        raise _invalid(_("The request body is not valid JSON.")) from None
    if not isinstance(data, Mapping):
        raise _invalid(_("The request body must be a JSON object."))
    return data


def _credential(value: object, max_length: int) -> str | None:
    """``value`` if it is a usable credential string, else None (as the JSON login reads them)."""
    if not isinstance(value, str) or not value or len(value) > max_length or "\x00" in value:
        return None
    try:
        value.encode("utf-8")  # a lone surrogate ("\ud800") cannot be hashed or stored
    except UnicodeEncodeError:
        return None
    return value


def _throttled(error: Throttled) -> Response:
    response = answer("throttled", 429, message=error.message, code=error.code)
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


def _unlock_ways() -> dict[str, Any] | None:
    """authguard's passkey unlock endpoints, when the portal mounts authguard's URLs."""
    try:
        return {
            "passkey": {
                "options": reverse("authguard:api-unlock-options"),
                "verify": reverse("authguard:api-unlock"),
            }
        }
    except NoReverseMatch:
        return None


def login_answer(result: LoginResult) -> Response | None:
    """The JSON login's answer to a refused password login (None for ``ok`` and ``step_up_required``)."""
    if result.status == "invalid":
        # SECURITY: one body for an unknown user and a wrong password. 400 like DRF's obtain_auth_token.
        message = _("The username or password is not correct.")
        return answer("invalid", 400, message=message, code="invalid_login", non_field_errors=[message])
    if result.status == "throttled":
        return answer("throttled", 429, message=_("Too many sign-in attempts. Please wait and try again."))
    if result.status == "locked":
        # SECURITY: the password was not checked: a right and a wrong one get this very answer (case 59).
        return answer("denied", 403, code="locked", message=locked_message(), unlock=_unlock_ways())
    if result.status in ("ok", "step_up_required"):
        return None
    # SECURITY: "denied" and any status this module does not know fail closed.
    return answer("denied", 403, message=_("We could not sign you in from here."))


# -- private sessions ------------------------------------------------------------------------------------


def _session_store() -> type[SessionBase]:
    return import_module(settings.SESSION_ENGINE).SessionStore


_MISSING = object()


@contextmanager
def _in_session(request: HttpRequest, session: SessionBase, user: Any = None) -> Iterator[None]:
    """Run authguard's session-based flows on ``session`` instead of the client's, then put it back.

    SECURITY: a token client's login never touches (or creates) a cookie session: the response carries no
    session cookie, and whatever the flows write stays in ``session``, which this module owns."""
    saved_session = getattr(request, "session", _MISSING)
    saved_user = request.__dict__.get("user", _MISSING)
    request.session = session
    setattr(request, TOKEN_CLIENT_ATTR, True)  # its sign-ins note no cookie generation as given
    if user is not None:
        request.user = user
    try:
        yield
    finally:
        if saved_session is _MISSING:
            del request.session
        else:
            request.session = saved_session  # type: ignore[assignment]
        if saved_user is _MISSING:
            request.__dict__.pop("user", None)
        else:
            request.user = saved_user
        # The flows bound *this* session to the request's context; the middleware must not bind the
        # client's own session (if any) to a device cookie it issues in this response.
        request.__dict__.pop(sessions_state.BOUND_ATTR, None)
        request.__dict__.pop(TOKEN_CLIENT_ATTR, None)


def _discard(session: SessionBase) -> None:
    """Delete a private session and its record (it is never a customer's session)."""
    key = session.session_key
    if key:
        session.delete(key)
        sessions_state.forget_session(key)


def _auth_keys(session: SessionBase) -> dict[str, Any]:
    return {
        key: session[key] for key in (SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY) if key in session
    }


def _park(session: SessionBase, user: Any, event_id: int, *, started_at: float) -> tuple[str, SessionBase]:
    """Keep a pending login (whose sign-in began at ``started_at``) for its step-up: its step-up token and
    the parked session. The pending state moves to a new private session without Django's sign-in keys (kept
    apart under :data:`PARKED_KEY`): the token names the session's key, and that key as a session cookie must
    sign nobody in. The session expires with the token."""
    data = {key: value for key, value in session.items()}
    auth = {key: data.pop(key) for key in list(_auth_keys(session))}
    parked = _session_store()()
    parked.update(data)
    parked[PARKED_KEY] = {"u": str(user.pk), "e": event_id, "auth": auth, "t": started_at}
    parked.set_expiry(STEP_UP_TOKEN_SECONDS)
    # SECURITY: recorded as the user's, so "end every session" (the desk's, or hers) ends it too: a parked
    # login outlived it and exchanged the next relayed code for a token (red team, round twenty-seven). In one
    # transaction with a database session's save, so no "end every session" falls between the two.
    with transaction.atomic():
        parked.save(must_create=True)
        SessionRecord.objects.create(session_key=str(parked.session_key), user_id=user.pk)
    _discard(session)
    claims = {"u": str(user.pk), "e": event_id, "k": parked.session_key}
    return clock.TimestampSigner(salt=_SALT).sign_object(claims), parked


@dataclass
class PendingLogin:
    """A parked token login waiting for its step-up (see :func:`pending_login`)."""

    user: Any
    session: SessionBase
    event_id: int
    auth: dict[str, Any]
    #: When its sign-in began (:func:`_park`): an ending of the account's sessions since then ends it.
    started_at: float | None = None
    #: Set once the step-up passed and the session was deleted: nothing may save it again.
    done: bool = False

    @contextmanager
    def signed_in(self) -> Iterator[None]:
        """Django's sign-in keys in the session while stepup's flows run (they read the state only in a
        signed-in session); taken out again unless the session is gone (a step-up passed)."""
        for key, value in self.auth.items():
            self.session[key] = value
        try:
            yield
        finally:
            for key in self.auth:
                self.session.pop(key, None)


def _expired() -> Answer:
    return Answer(
        401,
        "login_required",
        _("This sign-in confirmation has expired or was already used. Please sign in again."),
        code="step_up_expired",
    )


def pending_login(step_up_token: object) -> PendingLogin:
    """The pending login a step-up token names; :class:`Answer` 401 ``step_up_expired`` for a token that is
    forged, expired, spent, for another user or event, or whose account changed its password since."""
    if not isinstance(step_up_token, str) or not 0 < len(step_up_token) <= 1024:
        raise _invalid(_("Send the step_up_token you received when signing in."), "step_up_token")
    try:
        claims = clock.TimestampSigner(salt=_SALT).unsign_object(step_up_token, max_age=STEP_UP_TOKEN_SECONDS)
        user_id, event_id, key = str(claims["u"]), int(claims["e"]), str(claims["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise _expired() from None
    session = _session_store()(session_key=key)
    parked = session.get(PARKED_KEY)
    # SECURITY: the session must be the one this token parked, for the same user and login event.
    if not isinstance(parked, dict) or parked.get("u") != user_id or parked.get("e") != event_id:
        raise _expired()
    model = get_user_model()
    user = model._default_manager.filter(pk=model._meta.pk.to_python(user_id)).first()
    auth = parked.get("auth") or {}
    if user is None or not user.is_active:
        raise _expired()
    # SECURITY: a password change since the login ends it, as it ends every session.
    if not constant_time_compare(str(auth.get(HASH_SESSION_KEY, "")), user.get_session_auth_hash()):
        raise _expired()
    started = parked.get("t")  # not a time (parked before round 57): ended, fail closed (_passed)
    started = float(started) if isinstance(started, (int, float)) else None
    return PendingLogin(user=user, session=session, event_id=event_id, auth=dict(auth), started_at=started)


def _claim(pending: PendingLogin) -> None:
    """Spend the step-up token once (parallel exchanges of one token: one wins). Fails closed: :class:`Answer`
    401 ``step_up_expired`` for a token already spent, 400 ``step_up_unavailable`` when the cache cannot
    record the spend (down, hung, its circuit breaker open)."""
    digest = hashlib.sha256(str(pending.session.session_key).encode()).hexdigest()
    try:
        fresh = guarded_cache_call(
            cache.add, _SPENT_PREFIX + digest, 1, STEP_UP_TOKEN_SECONDS + 60, what="spent step-up tokens"
        )
    except CacheUnavailable:
        # SECURITY: a spend that cannot be recorded could be replayed in parallel: refuse (fail closed). One
        # skipped by the open breaker was never sent; one that timed out may still be recorded when the cache
        # resumes, and the token then answers step_up_expired (sign in again).
        raise Answer(
            400,
            "invalid",
            _("Sign-in confirmation is unavailable right now. Please try again in a moment."),
            code="step_up_unavailable",
        ) from None
    if not fresh:
        raise _expired()


# -- authentication and step-up for token clients ------------------------------------------------------------


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, refusing the tokens of locked accounts (a lock ends every session; a
    token is one) and ending a token past a browser session's absolute lifetime or idle limit. Use it
    instead of DRF's in ``DEFAULT_AUTHENTICATION_CLASSES``."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        # One read of the token's activity row serves both checks below.
        activity = token_activity.read(token=token)
        # SECURITY: a token is a session: a relayed-code sign-in must not buy weeks of access, nor a token put
        # aside for a day; and it is bound to where it was issued, as a browser session is: a copy replayed
        # from another network, country or client is scored again, and ends unless the engine allows it.
        if token_activity.ended(token=token, activity=activity) or (
            token_binding.check(request._request, user=user, token=token, activity=activity) == "ended"
        ):
            # DRF keeps one token per user: this one, its strength and activity go.
            revoke_tokens(user)
            raise exceptions.AuthenticationFailed(_("Your session has ended. Sign in again."))
        # The device cookie its sign-in's answer carried, presented now, moves on (round thirty-two).
        binding = activity.binding if activity is not None else None
        token_devices.confirm(request._request, user_id=user.pk, token_key=token.key, state=binding)
        return result

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        # A key no token can have (a NUL byte, which PostgreSQL refuses with an error; too long; not ASCII)
        # is refused as an invalid token, not carried to the database (red team, round ten: a 500).
        if not (0 < len(key) <= TOKEN_KEY_LENGTH and key.isascii() and key.isalnum()):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = super().authenticate_credentials(key)
        # SECURITY: fail closed: a lock state that cannot be read refuses the token too.
        if lockout.is_locked_fail_closed(user):
            raise exceptions.AuthenticationFailed(_("This action is not possible right now."))
        return user, token


class StepUpError(exceptions.APIException):
    """401/403 ``{"status": "step_up_required", "code", "message", "methods", "step_up"}`` for DRF views."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "step_up_required"

    def __init__(self, *, http_status: int, code: str, message: str, methods: list[str]) -> None:
        self.status_code = http_status
        detail: dict[str, Any] = {
            "status": "step_up_required",
            "code": code,
            "message": message,
            "methods": methods,
        }
        super().__init__(detail=detail, code=code)


def _token_key(request: Request) -> str | None:
    """The key of the DRF token this request authenticated with, or None (a session, another scheme)."""
    auth = getattr(request, "auth", None)
    key = getattr(auth, "key", None)
    return key if isinstance(key, str) else None


class NotPending(permissions.BasePermission):
    """Signed in and past step-up: a session still waiting for its second factor is refused (401
    ``step_up_required``), and so is any request of a locked account.

    Tokens from :class:`ObtainAuthToken` are only ever issued after a passed (or unneeded) step-up, so a
    token request is never pending. Only a session (DRF's ``SessionAuthentication``) or authguard's
    :class:`TokenAuthentication` passes: any other scheme was signed in without authguard's scoring.
    """

    message = _("Sign in first.")

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        # SECURITY: DRF's default BasicAuthentication checks the phished password on every request, unscored,
        # and DRF's own TokenAuthentication serves a copied token from anywhere, never re-checked: both were
        # let through here (red team, round thirty-two). Fail closed on any scheme authguard does not judge.
        if not isinstance(
            getattr(request, "successful_authenticator", None),
            (authentication.SessionAuthentication, TokenAuthentication),
        ):
            return False
        if lockout.is_locked_fail_closed(user):
            raise exceptions.PermissionDenied(_("This action is not possible right now."))
        if _token_key(request) is None and sessions_state.is_pending(request._request):
            # SECURITY: a password-only session reaches nothing (battery case 8), through DRF neither.
            raise StepUpError(
                http_status=401,
                code="step_up_required",
                message=_("Confirm it is you with a second factor first."),
                methods=factor_methods.step_up_methods(user),
            )
        return True


class StepUpRequired(NotPending):
    """``@step_up_required`` for DRF: a strong verification within ``max_age`` seconds (default
    ``AUTHGUARD_STEP_UP_FRESH_SECONDS``), by one of ``methods`` (default: any).

    Sessions: :func:`authguard.sessions.state.has_fresh_verification`, as the decorator. Tokens: the
    step-up that
    issued the token (or a later one, :func:`note_token_strength`), kept in the cache for
    :data:`STRENGTH_TTL_SECONDS`. A verification with a factor still cooling off does not count (403
    ``cooling_off``). Configure with :meth:`require`: ``permission_classes = [StepUpRequired.require(
    methods=["passkey"], max_age=300)]``.
    """

    methods: Collection[str] | None = None
    max_age: int | None = None

    @classmethod
    def require(
        cls, *, methods: Collection[str] | None = None, max_age: int | None = None
    ) -> type[StepUpRequired]:
        """A :class:`StepUpRequired` with these ``methods`` and ``max_age``."""
        return type(
            "StepUpRequired",
            (cls,),
            {"methods": tuple(methods) if methods is not None else None, "max_age": max_age},
        )

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        user = request.user
        key = _token_key(request)
        if key is not None:
            fresh, cooling = self._token_fresh(user, key)
        else:
            http = request._request
            fresh = sessions_state.has_fresh_verification(http, max_age=self.max_age, methods=self.methods)
            cooling = fresh and inventory.verified_by_cooling_off_factor(http)
        if (not fresh or cooling) and app_settings.report_only("step_up"):
            # Report-only rollout (docs/integration.md): what this view would have demanded is logged, the
            # request goes on, exactly as @step_up_required does. Pending sessions were refused above.
            logger.warning(
                "authguard REPORT-ONLY step_up user=%s path=%s would have asked for %s",
                getattr(user, "pk", None),
                request._request.path,
                "a fresh verification" if not fresh else "a factor that is not cooling off",
            )
            return True
        if not fresh:
            # SECURITY: a token or session verified long ago (or by a weaker method) proves a factor again.
            raise StepUpError(
                http_status=403,
                code="reverify",
                message=_("Confirm it is you with a second factor first."),
                methods=self._methods(user),
            )
        if cooling:
            # SECURITY: a factor added during the cooling-off (maybe the thief's) proves nothing yet.
            raise StepUpError(
                http_status=403,
                code="cooling_off",
                message=_(
                    "The security method you confirmed with was added too recently. Confirm it is you "
                    "with one you had before."
                ),
                methods=self._methods(user),
            )
        return True

    def _methods(self, user: Any) -> list[str]:
        usable = factor_methods.step_up_methods(user)
        return [m for m in usable if self.methods is None or m in self.methods]

    def _token_fresh(self, user: Any, key: str) -> tuple[bool, bool]:
        strength = token_strength(key)
        if strength is None:
            return False, False
        if self.methods is not None and strength.method not in self.methods:
            return False, False
        age = app_settings.STEP_UP_FRESH_SECONDS if self.max_age is None else self.max_age
        elapsed = clock.timestamp() - strength.at
        # As a session's (sessions.state.has_fresh_verification): two healthy nodes' clocks may disagree.
        if clock.is_from_the_future(elapsed) or elapsed > age:
            return False, False
        device = inventory.device_from_id(user, strength.device_id) if strength.device_id else None
        return True, inventory.verifier_is_cooling_off(device)


# -- the views, imported when first asked for ----------------------------------------------------------------

#: Names served by :mod:`authguard.drf_views`. That module imports ``rest_framework.views``, whose ``APIView``
#: reads ``DEFAULT_AUTHENTICATION_CLASSES`` when it is defined: importing it here would make naming
#: :class:`TokenAuthentication` or :class:`NotPending` in ``REST_FRAMEWORK`` (as docs/drf.md says) a
#: circular import.
_VIEWS = frozenset(
    {
        "ObtainAuthToken",
        "StepUpPasskey",
        "StepUpPasskeyOptions",
        "StepUpRecoveryCode",
        "StepUpTotp",
        "obtain_auth_token",
        "urlpatterns",
    }
)


def __getattr__(name: str) -> Any:
    # A lazy re-export (PEP 562) for the documented names only; nothing in authguard imports through it.
    if name in _VIEWS:
        return getattr(importlib.import_module("authguard.drf_views"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STEP_UP_TOKEN_SECONDS",
    "revoke_tokens",
    "NotPending",
    "ObtainAuthToken",
    "PendingLogin",
    "StepUpError",
    "StepUpPasskey",
    "StepUpPasskeyOptions",
    "StepUpRecoveryCode",
    "StepUpRequired",
    "StepUpTotp",
    "Strength",
    "TokenAuthentication",
    "forget_token_strength",
    "login_answer",
    "note_token_strength",
    "obtain_auth_token",
    "pending_login",
    "read_body",
    "token_strength",
    "urlpatterns",
]
