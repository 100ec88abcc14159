"""App config for outbound SCIM 2.0 provisioning to registered apps."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = _("App provisioning (SCIM)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The audit rows of people, groups and apps are the change feed (accounts/audit.py's
        # `event_published`): accounts and the registry never import this app.
        from provisioning import checks, receivers  # noqa: F401 (checks register themselves)

        receivers.connect()
