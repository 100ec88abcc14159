"""The idp package's app configs: its own (start-up checks) and Django's admin with the identity
admin console as its default site."""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class IdpConfig(AppConfig):
    """The wiring package as an app, so its system checks are registered with every command."""

    name = "idp"

    def ready(self) -> None:
        from idp import startup  # noqa: F401 (registers check_ready_to_serve)


class IdentityAdminConfig(AdminConfig):
    """Listed in INSTALLED_APPS in place of "django.contrib.admin" (same name and label)."""

    default_site = "idp.admin_site.IdentityAdminSite"
