"""authguard's pages and JSON API. Mount with ``path("authguard/", include("authguard.urls"))``."""

from django.urls import path

from . import views

app_name = "authguard"

urlpatterns = [
    path("denied/", views.denied, name="denied"),
]
