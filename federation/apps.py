"""The federation app: upstream identity providers above `accounts` (which never imports it)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FederationConfig(AppConfig):
    name = "federation"
    verbose_name = _("Upstream sign-in")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from federation import receivers  # noqa: F401 (connects the audit receivers)
