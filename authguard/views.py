"""Thin HTML views: step-up (chooser, TOTP, passkey, recovery code), re-verification, security settings.

Each view parses the request, calls one flow function (:mod:`authguard.sessions.stepup`,
:mod:`authguard.factors.base`)
and renders a template of ``authguard/`` (override them in the portal; they extend ``authguard/base.html``).
Every state change is a POST behind Django's CSRF protection; ``next`` is honoured only for same-site paths.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from authguard import clock
from authguard.conf import app_settings
from authguard.exceptions import AuthguardError, StepUpRequired, Throttled
from authguard.factors import contact, desk_grant, inventory, lifecycle, recovery, removal, totp
from authguard.factors import methods as factor_methods
from authguard.login import stepup as login_stepup
from authguard.models import KnownDevice, LoginEvent
from authguard.sessions import own_devices
from authguard.sessions import state as sessions_state
from authguard.sessions.middleware import safe_next, step_up_url

#: Newest sign-ins listed on the security page.
RECENT_LOGINS = 10
#: Longest code a form accepts (the factor checks its exact shape; this only bounds the input).
MAX_CODE_LENGTH = 64


def denied(request: HttpRequest) -> HttpResponse:
    """The generic page shown when a login is refused; it says nothing an attacker could use."""
    return render(request, "authguard/denied.html", status=403)


class CodeForm(forms.Form):
    """A one-time code from an authenticator app or a recovery code."""

    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=MAX_CODE_LENGTH,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


class TotpCodeForm(CodeForm):
    code = forms.CharField(
        label=gettext_lazy("6-digit code from your authenticator app"),
        max_length=MAX_CODE_LENGTH,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class EmailForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("New email address"), max_length=254)


# -- helpers -----------------------------------------------------------------------------------------


def _next(request: HttpRequest, default: str) -> str:
    """The same-site ``next`` of this request (POST first, then GET), or ``default``."""
    target = request.POST.get("next") if request.method == "POST" else None
    return safe_next(request, target or request.GET.get("next")) or default


def _chooser(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """Back to the list of methods: the step-up chooser when pending, the re-verify page otherwise."""
    name = "authguard:step-up" if context["pending"] else "authguard:reverify"
    return redirect(step_up_url(request, context["next"] or None, name=name))


def _default_next() -> str:
    from django.conf import settings
    from django.shortcuts import resolve_url

    return str(resolve_url(settings.LOGIN_REDIRECT_URL))


def _signed_in(request: HttpRequest) -> HttpResponse | None:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return None


def _method_context(request: HttpRequest) -> dict[str, Any]:
    pending = sessions_state.is_pending(request)
    return {
        "pending": pending,
        "methods": factor_methods.step_up_methods(request.user),
        "next": _next(request, "" if pending else reverse("authguard:security")),
    }


def _verify_code(
    request: HttpRequest, *, method: str, form_class: type[CodeForm], template: str
) -> HttpResponse:
    """The TOTP and recovery-code pages: show the form, check a posted code, finish or say why not."""
    if (answer := _signed_in(request)) is not None:
        return answer
    context = _method_context(request)
    try:
        login_stepup.check_step_up_allowed(
            request.user, method=method, methods=context["methods"], request=request
        )
    except login_stepup.StepUpUnavailable as refused:
        if refused.code not in login_stepup.REFUSED:
            return _chooser(request, context)
        # SECURITY: a locked account, or a step-up from where a sign-in is refused: the session ends.
        logout(request)
        return redirect("authguard:denied")
    status = 200
    retry_after: int | None = None
    form = form_class(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        status = 400
        try:
            device = login_stepup.verify_step_up_code(
                request, user=request.user, method=method, code=form.cleaned_data["code"]
            )
        except Throttled as error:
            device, message, status, retry_after = None, error.message, 429, error.retry_after
        except AuthguardError as error:
            device, message = None, error.message
        else:
            message = _("That code is not correct. Please try again.")
        if device is not None:
            login_stepup.finish_step_up(request, device=device, method=method)
            return HttpResponseRedirect(context["next"] or _default_next())
        form.add_error("code", message)
    elif request.method == "POST":
        status = 400
    return _with_retry_after(render(request, template, {**context, "form": form}, status=status), retry_after)


def _with_retry_after(response: HttpResponse, seconds: int | None) -> HttpResponse:
    """A throttled answer (429) says when to try again, where the throttle knows."""
    if seconds is not None:
        response["Retry-After"] = str(seconds)
    return response


# -- step-up -----------------------------------------------------------------------------------------


@never_cache
@require_safe
def step_up(request: HttpRequest) -> HttpResponse:
    """The step-up chooser: the ways this user can confirm it is them (best first)."""
    if (answer := _signed_in(request)) is not None:
        return answer
    context = _method_context(request)
    if not context["pending"]:
        return HttpResponseRedirect(context["next"] or _default_next())
    return render(request, "authguard/step_up.html", {**context, "reverify": False})


@never_cache
@require_safe
@login_required
def reverify(request: HttpRequest) -> HttpResponse:
    """Confirm it is you again (before a factor change or a sensitive action): the same methods."""
    context = _method_context(request)
    if context["pending"]:
        return redirect(step_up_url(request, context["next"] or None))
    return render(request, "authguard/step_up.html", {**context, "reverify": True})


@never_cache
@require_http_methods(["GET", "POST"])
def step_up_totp(request: HttpRequest) -> HttpResponse:
    """Step up (or re-verify) with a code from an authenticator app."""
    return _verify_code(
        request, method="totp", form_class=TotpCodeForm, template="authguard/step_up_totp.html"
    )


@never_cache
@require_http_methods(["GET", "POST"])
def step_up_recovery(request: HttpRequest) -> HttpResponse:
    """Step up (or re-verify) with a one-time recovery code."""
    return _verify_code(
        request, method="recovery_code", form_class=CodeForm, template="authguard/step_up_recovery.html"
    )


@never_cache
@require_safe
def step_up_passkey(request: HttpRequest) -> HttpResponse:
    """Step up (or re-verify) with a passkey: the page's script talks to the step-up JSON API."""
    if (answer := _signed_in(request)) is not None:
        return answer
    context = _method_context(request)
    if "passkey" not in context["methods"]:
        return _chooser(request, context)
    return render(
        request,
        "authguard/step_up_passkey.html",
        {
            **context,
            "done_url": context["next"] or _default_next(),
            "options_url": reverse("authguard:api-step-up-passkey-options"),
            "verify_url": reverse("authguard:api-step-up-passkey"),
        },
    )


# -- security settings --------------------------------------------------------------------------------


def _can_change(request: HttpRequest) -> bool:
    return bool(lifecycle.can_change_factors(request))


def _reverify_first(request: HttpRequest, back: str | None = None) -> HttpResponse:
    """Factor, email and password changes need a fresh strong verification: go and get one, then come back
    (to the security page, or ``back``)."""
    if not factor_methods.step_up_methods(request.user):
        if lifecycle.ever_had_factor(request.user):
            # SECURITY: no first-factor path for an account that had one (case 55): the strong way back.
            messages.error(
                request,
                _(
                    "This security method was disabled after too many failed attempts. Confirm it is you "
                    "with another passkey, or contact the customer desk to set it up again."
                ),
            )
            return redirect("authguard:security")
        messages.error(
            request,
            _(
                "For your protection this change needs a sign-in from a device and place you have used "
                "before. Please sign in again from there."
            ),
        )
        return redirect("authguard:security")
    return redirect(step_up_url(request, back or reverse("authguard:security"), name="authguard:reverify"))


def _factor_rows(user: AbstractBaseUser) -> list[dict[str, Any]]:
    rows = []
    for device in inventory.user_factors(user):
        method = factor_methods.method_of(device)
        if method in ("passkey", "totp"):
            rows.append(
                {
                    "method": method,
                    "name": device.name,
                    "pk": device.pk,
                    "created_at": inventory.factor_confirmed_at(device),
                    "last_used_at": getattr(device, "last_used_at", None),
                    "cooling_off": inventory.factor_is_cooling_off(device),
                }
            )
    return rows


def _current_totp_enrollment(request: HttpRequest) -> Any:
    """This session's TOTP enrollment waiting for its first code (shown again after a wrong code), or a
    new one."""
    pending = request.session.get(totp.TOTP_ENROLLMENT_KEY)
    device = None
    if isinstance(pending, dict) and float(pending.get("exp", 0)) > clock.timestamp():
        from django_otp.plugins.otp_totp.models import TOTPDevice

        device = TOTPDevice.objects.filter(pk=pending.get("id"), user=request.user, confirmed=False).first()
    if device is None:
        return totp.begin_totp_enrollment(request, user=request.user)
    uri = totp._otpauth_uri(device)
    secret = totp.base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return totp.TotpEnrollment(device=device, otpauth_uri=uri, secret=secret, qr_svg=totp._qr_svg(uri))


@never_cache
@require_safe
@login_required
def security(request: HttpRequest) -> HttpResponse:
    """Security settings: passkeys, authenticator app, recovery codes, devices, recent sign-ins, email."""
    user = request.user
    assert user.is_authenticated  # @login_required
    devices = KnownDevice.objects.filter(user=user, revoked_at__isnull=True).order_by("-last_seen_at")
    logins = LoginEvent.objects.filter(user=user).order_by("-created_at")[:RECENT_LOGINS]
    now = clock.now()
    return render(
        request,
        "authguard/security.html",
        {
            "factors": _factor_rows(user),
            "cooling_off_until": inventory.cooling_off_until(user),
            "rebind_grant_until": desk_grant.open_grant_until(user),
            "pending_email": contact.pending_email_change(user),
            "has_totp": any(row["method"] == "totp" for row in _factor_rows(user)),
            "recovery_codes_left": inventory.recovery_codes_left(user),
            # SECURITY: removable here, as a passkey or an app is: a set minted with one relayed code was
            # listed as hers with no way to drop it (red team, round thirty-three).
            "recovery_set": next(
                (d for d in inventory.user_factors(user) if factor_methods.method_of(d) == "recovery_code"),
                None,
            ),
            # AUTHGUARD_EMAIL_CHANGE = False: the portal manages addresses itself; no form is offered.
            "email_change": app_settings.EMAIL_CHANGE,
            "devices": [
                {"device": d, "remembered": bool(d.trusted_until and d.trusted_until > now)} for d in devices
            ],
            "logins": logins,
            "can_change": _can_change(request),
            "fresh_minutes": app_settings.STEP_UP_FRESH_SECONDS // 60,
            "email_form": EmailForm(initial={"email": user.email}),
            "passkeys_allowed": "passkey" in app_settings.STEP_UP_METHODS,
            "totp_allowed": "totp" in app_settings.STEP_UP_METHODS,
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def security_totp(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: GET shows a fresh secret and its QR code (drawn here, never sent out),
    POST confirms it with a first code."""
    if not _can_change(request):
        return _reverify_first(request)
    if request.method == "POST":
        form = TotpCodeForm(request.POST)
        status, retry_after = 400, None
        if form.is_valid():
            try:
                totp.confirm_totp_enrollment(request, user=request.user, code=form.cleaned_data["code"])
            except Throttled as error:
                form.add_error("code", error.message)
                status, retry_after = 429, error.retry_after
            except AuthguardError as error:
                form.add_error("code", error.message)
            else:
                messages.success(request, _("Your authenticator app is set up."))
                return redirect("authguard:security")
        try:
            context = {"form": form, "enrollment": _current_totp_enrollment(request)}
        except AuthguardError as error:
            messages.error(request, error.message)
            return redirect("authguard:security")
        response = render(request, "authguard/security_totp.html", context, status=status)
        return _with_retry_after(response, retry_after)
    try:
        enrollment = totp.begin_totp_enrollment(request, user=request.user)
    except StepUpRequired as error:
        messages.error(request, error.message)
        return _reverify_first(request)
    except AuthguardError as error:
        # e.g. the app would replace the customer's last strong factor, or a disabled one needs re-binding.
        messages.error(request, error.message)
        return redirect("authguard:security")
    return render(request, "authguard/security_totp.html", {"form": TotpCodeForm(), "enrollment": enrollment})


@never_cache
@require_http_methods(["GET"])
@login_required
def security_passkey(request: HttpRequest) -> HttpResponse:
    """Add a passkey: the page's script asks the browser to create one and posts it to the JSON API."""
    if not _can_change(request):
        return _reverify_first(request)
    return render(
        request,
        "authguard/security_passkey.html",
        {
            "done_url": reverse("authguard:security"),
            "options_url": reverse("authguard:api-passkeys-options"),
            "verify_url": reverse("authguard:api-passkeys"),
        },
    )


@never_cache
@require_POST
@login_required
def security_remove_factor(request: HttpRequest, method: str, pk: int) -> HttpResponse:
    """Remove a passkey or authenticator app (after a fresh verification; the user is told by email)."""
    if not _can_change(request):
        return _reverify_first(request)
    # SECURITY: the device is looked up among the session user's own factors only.
    device = next(
        (
            d
            for d in inventory.user_factors(request.user)
            if factor_methods.method_of(d) == method and d.pk == pk
        ),
        None,
    )
    if device is None:
        messages.error(request, _("That sign-in method does not exist."))
        return redirect("authguard:security")
    try:
        removal.remove_factor(request, user=request.user, device=device)
    except StepUpRequired as error:
        messages.error(request, error.message)
        return _reverify_first(request)
    except AuthguardError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The sign-in method was removed."))
    return redirect("authguard:security")


@never_cache
@require_POST
@login_required
def security_recovery_codes(request: HttpRequest) -> HttpResponse:
    """Generate new recovery codes (the old ones stop working) and show them once."""
    if not _can_change(request):
        return _reverify_first(request)
    try:
        codes = recovery.generate_recovery_codes(request, user=request.user)
    except StepUpRequired as error:
        messages.error(request, error.message)
        return _reverify_first(request)
    except AuthguardError as error:
        messages.error(request, error.message)
        return redirect("authguard:security")
    response = render(request, "authguard/security_recovery_codes.html", {"codes": codes})
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_POST
@login_required
def security_revoke_device(request: HttpRequest, pk: int) -> HttpResponse:
    """Forget a remembered device (:func:`authguard.sessions.own_devices.forget_device`): its next sign-in is
    a new device's (needs what ending the other sessions needs, and more for another browser than this)."""
    assert request.user.is_authenticated  # @login_required
    # SECURITY: else a password alone takes her vouched browser away from her (red team, 2026-12-05).
    if (refused := _refuse_without_established_factor(request)) is not None:
        return refused
    try:
        forgotten = own_devices.forget_device(request, pk=pk)
    except StepUpRequired as error:
        messages.error(request, error.message)
        return _reverify_first(request)
    if forgotten:
        messages.success(request, _("The device is no longer remembered."))
    else:
        messages.error(request, _("That device does not exist."))
    return redirect("authguard:security")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change behind authguard's rule (:func:`~authguard.factors.contact.
    require_password_change_allowed`): a fresh verification with a factor the customer had before the
    cooling-off first. Route the portal's ``password_change`` URL here."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated:
            try:
                contact.require_password_change_allowed(request, user=request.user)
            except StepUpRequired as error:
                messages.error(request, error.message)
                return _reverify_first(request, back=request.path)
        return super().dispatch(request, *args, **kwargs)


@never_cache
@require_POST
@login_required
def security_email(request: HttpRequest) -> HttpResponse:
    """Start an e-mail change: a fresh passkey (or two different factors without a passkey), then a code
    is mailed to the new address (:func:`authguard.factors.contact.begin_email_change`)."""
    if not app_settings.EMAIL_CHANGE:
        # Asked before any re-verification: there is nothing to verify for.
        messages.error(request, _("The e-mail address cannot be changed here."))
        return redirect("authguard:security")
    if not _can_change(request):
        return _reverify_first(request)
    form = EmailForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("email", []):
            messages.error(request, str(error))  # ErrorList yields the message strings
        return redirect("authguard:security")
    try:
        contact.begin_email_change(request, user=request.user, new_email=form.cleaned_data["email"])
    except StepUpRequired as error:
        messages.error(request, error.message)
        return _reverify_first(request)
    except AuthguardError as error:
        messages.error(request, error.message)
        return redirect("authguard:security")
    messages.success(request, _("We sent a code to the new address. Enter it to finish the change."))
    return redirect("authguard:security-email-confirm")


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def security_email_confirm(request: HttpRequest) -> HttpResponse:
    """Finish an e-mail change with the code mailed to the new address; the old address is told."""
    change = contact.pending_email_change(request.user)
    if change is None:
        messages.error(request, _("Start the e-mail change again."))
        return redirect("authguard:security")
    form = CodeForm(request.POST if request.method == "POST" else None)
    status, retry_after = 200, None
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                contact.confirm_email_change(request, user=request.user, code=form.cleaned_data["code"])
            except StepUpRequired as error:
                messages.error(request, error.message)
                return _reverify_first(request)
            except Throttled as error:
                messages.error(request, error.message)
                return redirect("authguard:security")
            except AuthguardError as error:
                form.add_error("code", error.message)
            else:
                messages.success(request, _("Your email address was changed."))
                return redirect("authguard:security")
    response = render(
        request,
        "authguard/security_email_confirm.html",
        {"form": form, "new_email": change.new_email},
        status=status,
    )
    return _with_retry_after(response, retry_after)


@never_cache
@require_POST
@login_required
def security_end_sessions(request: HttpRequest) -> HttpResponse:
    """Sign out every other session of this user (needs a fresh verification: ASVS 7.5.2)."""
    # SECURITY: only a fresh strong factor may end sessions; otherwise a thief could sign the owner out.
    if (refused := _refuse_without_established_factor(request)) is not None:
        return refused
    ended = own_devices.end_other_sessions(request)
    messages.success(request, _("Other sessions signed out: %(count)s.") % {"count": ended})
    return redirect("authguard:security")


def _refuse_without_established_factor(request: HttpRequest) -> HttpResponse | None:
    """None when this session was freshly verified with a factor from before any cooling-off, else the way
    to re-verify."""
    if not sessions_state.has_fresh_verification(request):
        return _reverify_first(request)
    if inventory.verified_by_cooling_off_factor(request) or not lifecycle.verified_by_usable_factor(request):
        # SECURITY: a factor added in the cooling-off, or her spent codes relayed (round 27), acts not for her
        messages.error(
            request,
            _(
                "The security method you confirmed with was added too recently. Confirm it is you with one "
                "you had before."
            ),
        )
        return _reverify_first(request)
    return None


urlpatterns: list[URLPattern] = [
    path("step-up/", step_up, name="step-up"),
    path("step-up/totp/", step_up_totp, name="step-up-totp"),
    path("step-up/passkey/", step_up_passkey, name="step-up-passkey"),
    path("step-up/recovery-code/", step_up_recovery, name="step-up-recovery"),
    path("reverify/", reverify, name="reverify"),
    path("security/", security, name="security"),
    path("security/totp/", security_totp, name="security-totp"),
    path("security/passkeys/add/", security_passkey, name="security-passkey"),
    path(
        "security/factors/<str:method>/<int:pk>/remove/",
        security_remove_factor,
        name="security-remove-factor",
    ),
    path("security/recovery-codes/", security_recovery_codes, name="security-recovery-codes"),
    path("security/devices/<int:pk>/revoke/", security_revoke_device, name="security-revoke-device"),
    path("security/email/", security_email, name="security-email"),
    path("security/email/confirm/", security_email_confirm, name="security-email-confirm"),
    path("security/sessions/end-others/", security_end_sessions, name="security-end-sessions"),
]
