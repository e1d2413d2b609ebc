"""authguard's pages and JSON API. Mount with ``path("authguard/", include("authguard.urls"))``.

The routes live beside their views: step-up and security pages in :mod:`authguard.views`, the step-up and
passkey JSON API in :mod:`authguard.api` (CONTRACTS section 4), held-order confirmations in
:mod:`authguard.order_views`. Every JSON endpoint is under ``api/``.
"""

from django.urls import path

from . import api, order_views, views

app_name = "authguard"

urlpatterns = [
    path("denied/", views.denied, name="denied"),
    *views.urlpatterns,
    *api.urlpatterns,
    *order_views.urlpatterns,
]
