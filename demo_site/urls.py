"""URLs of the demo portal: the brokerage, authguard's pages and API, and the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("authguard/", include("authguard.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("demo_site.brokerage.urls")),
]
