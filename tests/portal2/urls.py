"""Portal two's URLs: Django's LoginView, the JSON login and API (DRF), async views, authguard's pages and
token login, and the admin (the security console)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .accounts import api, views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("api/v1/csrf", views.csrf, name="api-csrf"),
    path("api/v1/login", views.api_login, name="api-login"),
    path("api/v1/logout", views.api_logout, name="api-logout"),
    path("api/v1/statements", views.statements, name="api-statements"),
    path("api/v1/balance", views.balance, name="api-balance"),
    path("api/v1/portfolio", api.Portfolio.as_view(), name="api-portfolio"),
    path("api/v1/orders", api.Orders.as_view(), name="api-orders"),
    path("api/v1/withdrawals", api.Withdraw.as_view(), name="api-withdrawals"),
    # DRF's obtain_auth_token swapped for authguard's (docs/drf.md).
    path("api/v1/auth/", include("authguard.drf")),
    path("authguard/", include("authguard.urls")),
    path("admin/", admin.site.urls),
]
