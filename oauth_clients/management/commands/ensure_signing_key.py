"""Make sure an ID-token signing key exists (generates the dev key on a fresh machine)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from oauth_clients.keys import key_files, write_new_key


class Command(BaseCommand):
    help = "Generate an RSA signing key in IDP_SIGNING_KEY_DIR if none is configured."

    def handle(self, *args: object, **options: object) -> None:
        if settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY") or key_files(
            settings.IDP_SIGNING_KEY_DIR
        ):
            self.stdout.write("Signing key present.")
            return
        path = write_new_key(settings.IDP_SIGNING_KEY_DIR)
        self.stdout.write(f"Generated signing key {path.name} in {path.parent}.")
