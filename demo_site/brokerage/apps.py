"""Django application configuration for the demo brokerage."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BrokerageConfig(AppConfig):
    name = "demo_site.brokerage"
    label = "brokerage"
    verbose_name = _("Demo brokerage")
    default_auto_field = "django.db.models.BigAutoField"
