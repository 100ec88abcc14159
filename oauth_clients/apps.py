"""App config for registered client apps and the OpenID Connect provider glue."""

from django.apps import AppConfig


class OAuthClientsConfig(AppConfig):
    name = "oauth_clients"
    verbose_name = "Client apps"

    def ready(self) -> None:
        # Registers the provider's deploy checks (signing key, PKCE, no implicit/password).
        from oauth_clients import checks  # noqa: F401
