"""The customer's door to the desk's re-binding grant: the page and ``POST api/rebind-code`` where she enters
the desk code (:func:`authguard.factors.desk_grant.redeem_code`); both call the one flow."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from authguard.api import answer, json_endpoint, read_json
from authguard.exceptions import AuthguardError, Throttled
from authguard.factors import desk_grant
from authguard.views import CodeForm


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def security_rebind_code(request: HttpRequest) -> HttpResponse:
    """Enter the code the desk gave the customer; then she sets up her new sign-in method."""
    until = desk_grant.open_grant_until(request.user)
    if until is None:
        messages.error(request, _("There is no open permission from our desk for this account."))
        return redirect("authguard:security")
    form = CodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                desk_grant.redeem_code(request, user=request.user, code=form.cleaned_data["code"])
            except Throttled as error:
                messages.error(request, error.message)
                return redirect("authguard:security")
            except AuthguardError as error:
                form.add_error("code", error.message)
            else:
                messages.success(request, _("Thank you. Now set up your new sign-in method."))
                return redirect("authguard:security")
    return render(
        request, "authguard/security_rebind_code.html", {"form": form, "until": until}, status=status
    )


@json_endpoint()
def rebind_code(request: HttpRequest) -> HttpResponse:
    """``POST api/rebind-code {"code"}``: 200 ``ok`` with ``until`` (this session may now bind one factor) ·
    400 ``invalid`` (``wrong_code``: a wrong code or no open grant) · 429 ``throttled`` (``desk_code_tries``:
    five wrong codes in this session for this grant; ``grant_withdrawn``: fifty in all)."""
    until = desk_grant.redeem_code(request, user=request.user, code=read_json(request).get("code"))
    return answer("ok", until=until.isoformat())


urlpatterns: list[URLPattern] = [
    path("security/rebind-code/", security_rebind_code, name="security-rebind-code"),
    path("api/rebind-code", rebind_code, name="api-rebind-code"),
]
