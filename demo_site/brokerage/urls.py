"""URLs of the demo brokerage, mounted at the site root by ``demo_site.urls``.

``login`` and ``logout`` are top-level names (``LOGIN_URL = "login"``); everything else is in the
``brokerage`` namespace, the JSON API under ``/api/`` with a catch-all that answers unknown paths in JSON.
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from . import api, money_urls, views

# No module-level app_name: it would put "login" and "logout" in the namespace too.
NAMESPACE = "brokerage"

api_patterns = [
    path("csrf", api.csrf, name="api-csrf"),
    path("login", api.login, name="api-login"),
    path("logout", api.logout_view, name="api-logout"),
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
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include((brokerage_patterns, NAMESPACE))),
]
