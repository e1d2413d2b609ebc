"""URLs of the demo brokerage, mounted at the site root by ``demo_site.urls``.

``login`` and ``logout`` are top-level names (``LOGIN_URL = "login"``), as are Django's password change and
reset views (whose own redirects use the top-level names ``password_change_done``, ``password_reset_done``,
``password_reset_confirm`` and ``password_reset_complete``) and the locked account's unlock pages;
everything else is in the ``brokerage`` namespace, the JSON API under ``/api/`` with a catch-all that
answers unknown paths in JSON.

Every password change or reset ends the customer's other sessions and revokes the factors added during a
cooling-off (authguard's receiver on the user model; :func:`authguard.login.flow.password_changed`), so a
change from a session goes through authguard's view, which first asks for a fresh verification with a factor
the customer had before any cooling-off (a reset proves the mailbox instead).
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from authguard import views as authguard_views
from authguard.login import password_reset
from authguard.login.flow import LockAwareAuthenticationForm

from . import api, demo_place, money_urls, views

# No module-level app_name: it would put "login" and "logout" in the namespace too.
NAMESPACE = "brokerage"

api_patterns = [
    path("csrf", api.csrf, name="api-csrf"),
    path("login", api.login, name="api-login"),
    path("logout", api.logout_view, name="api-logout"),
    path("unlock/codes", api.unlock_with_codes, name="api-unlock-codes"),
    path("unlock/cancel", api.cancel_unlock, name="api-unlock-cancel"),
    path("instruments", api.instruments, name="api-instruments"),
    path("portfolio", api.portfolio, name="api-portfolio"),
    path("orders", api.orders, name="api-orders"),
    *money_urls.api_patterns,
    path("", api.not_found, name="api-root"),
    re_path(r"^.*$", api.not_found),
]

brokerage_patterns = [
    path("", views.portfolio, name="portfolio"),
    path("trade/", views.trade, name="trade"),
    path("orders/", views.orders, name="orders"),
    path("instruments/", views.instruments, name="instruments"),
    path("security/", views.security, name="security"),
    *money_urls.page_patterns,
    path("api/", include(api_patterns)),
]

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=LockAwareAuthenticationForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("unlock/codes/", views.unlock_with_codes, name="unlock-codes"),
    path("unlock/cancel/", views.cancel_unlock, name="unlock-cancel"),
    # Demo only (404 outside DEBUG): the login page's "sign in as if from…" switch.
    path("demo/place/", demo_place.choose, name="demo-place"),
    path("password/change/", authguard_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    # authguard's reset: during the cooling-off of an e-mail change the link goes to the previous address.
    path("password/reset/", password_reset.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("", include((brokerage_patterns, NAMESPACE))),
]
