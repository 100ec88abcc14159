"""App config of the admin REST API (adminapi/)."""

from django.apps import AppConfig


class AdminApiConfig(AppConfig):
    name = "adminapi"
    verbose_name = "Admin API"

    def ready(self) -> None:
        # Registers the start-up check of the API's settings.
        from adminapi import checks  # noqa: F401
