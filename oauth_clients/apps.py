"""App config for registered client apps and the OpenID Connect provider glue."""

from django.apps import AppConfig


class OAuthClientsConfig(AppConfig):
    name = "oauth_clients"
    verbose_name = "Client apps"
