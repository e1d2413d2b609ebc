"""URLs of the demo portal: the brokerage, authguard's pages and API, and the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("authguard/", include("authguard.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("demo_site.brokerage.urls")),
]

# Errors raised before any view runs (a broken multipart body in the CSRF middleware, ...) still answer
# JSON under /api/; elsewhere these fall back to Django's own pages.
handler400 = "demo_site.brokerage.api.bad_request"
handler403 = "demo_site.brokerage.api.permission_denied"
handler404 = "demo_site.brokerage.api.page_not_found"
handler500 = "demo_site.brokerage.api.server_error"
