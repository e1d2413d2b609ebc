"""Django application configuration for authguard."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuthguardConfig(AppConfig):
    name = "authguard"
    verbose_name = _("authguard: account-takeover defence")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering checks and signal receivers is the only import side effect authguard has.
        from authguard import checks  # noqa: F401
        from authguard.login import receivers

        receivers.take_over_last_login()
