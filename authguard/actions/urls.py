"""URLs of sensitive-action confirmations, in authguard's namespace.

Mounted by ``authguard.urls`` with ``path("", include("authguard.actions.urls"))``: no ``app_name`` here, so
the names below are ``authguard:action-confirm``, ``authguard:api-action-passkey-options`` and so on.
"""

from django.urls import URLPattern, path

from authguard.actions import views

urlpatterns: list[URLPattern] = [
    path("actions/<str:action_id>/", views.confirm, name="action-confirm"),
    path(
        "api/actions/<str:action_id>/passkey/options",
        views.api_passkey_options,
        name="api-action-passkey-options",
    ),
    path("api/actions/<str:action_id>/passkey", views.api_passkey, name="api-action-passkey"),
    path("api/actions/<str:action_id>/totp", views.api_totp, name="api-action-totp"),
    path("api/actions/<str:action_id>/cancel", views.api_cancel, name="api-action-cancel"),
]
