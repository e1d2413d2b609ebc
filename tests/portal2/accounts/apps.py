from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tests.portal2.accounts"
    label = "portal2_accounts"
    verbose_name = "Portal two accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .. import celery  # noqa: F401  (the portal's Celery app: authguard's tasks run through it)
