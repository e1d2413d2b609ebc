"""Django application configuration for authguard."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuthguardConfig(AppConfig):
    name = "authguard"
    verbose_name = _("authguard: account-takeover defence")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering checks and signal receivers is the only import side effect authguard has; they are
        # imported here, once the app registry is ready (Django's convention), not when this module loads.
        from django.apps import apps

        from authguard import checks  # registers the system checks
        from authguard.login import last_login

        # Before anything else, also when otp is missing: a registry populated again (a test's
        # override of INSTALLED_APPS) reconnects Django's receiver, which would stamp refused logins.
        last_login.take_over()

        if checks.missing_otp_apps():
            # SECURITY: without django-otp nothing of authguard can load; the checks report E007 and stop.
            return
        from authguard.login import receivers  # noqa: F401  (connects the login, password and policy receivers)

        if apps.is_installed("rest_framework.authtoken"):
            # DRF's tokens end with the sessions (a lock, a password change): authguard.drf connects it.
            from authguard import drf  # noqa: F401  (connects its token revocation)
