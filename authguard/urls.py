"""authguard's pages and JSON API. Mount with ``path("authguard/", include("authguard.urls"))``.

The routes live beside their views: step-up and security pages in :mod:`authguard.views`, the step-up and
passkey JSON API in :mod:`authguard.api` (CONTRACTS section 4), held-order confirmations in
:mod:`authguard.orders.views`, sensitive-action confirmations in :mod:`authguard.actions.urls`.
Every JSON endpoint is under ``api/``.
"""

from django.urls import include, path

from authguard import api, views
from authguard.factors import desk_views
from authguard.orders import views as order_views
from authguard.sessions import dbsc_views

app_name = "authguard"

urlpatterns = [
    path("denied/", views.denied, name="denied"),
    *views.urlpatterns,
    *api.urlpatterns,
    # The desk's re-binding grant: the customer enters the desk code (docs/factor-lifecycle.md).
    *desk_views.urlpatterns,
    *order_views.urlpatterns,
    # Sensitive actions beyond orders (withdrawals, bank accounts, transfers out, contact changes).
    path("", include("authguard.actions.urls")),
    # Device Bound Session Credentials: registration and refresh (AUTHGUARD_DBSC; docs/dbsc.md).
    *dbsc_views.urlpatterns,
]
