"""Make sure an ID-token signing key exists (generates the dev key on a fresh machine)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from oauth_clients import key_rotation
from oauth_clients.key_store import database_algorithms
from oauth_clients.keys import RS256, key_files, write_new_key
from oauth_clients.models import SigningKey


class Command(BaseCommand):
    help = (
        "Generate an RSA signing key in IDP_SIGNING_KEY_DIR if none is configured (with "
        "IDP_SIGNING_KEY_STORE=database: the first database key, the directory's imported)."
    )

    def handle(self, *args: object, **options: object) -> None:
        if RS256 in database_algorithms():
            if SigningKey.objects.filter(algorithm=RS256, state=SigningKey.State.ACTIVE).exists():
                self.stdout.write("Signing key present.")
                return
            try:
                rows = key_rotation.create_first_key(algorithm=RS256)
            except key_rotation.KeyRotationError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"Signing key {rows[0].kid} active in the database.")
            return
        if settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY") or key_files(
            settings.IDP_SIGNING_KEY_DIR
        ):
            self.stdout.write("Signing key present.")
            return
        path = write_new_key(settings.IDP_SIGNING_KEY_DIR)
        self.stdout.write(f"Generated signing key {path.name} in {path.parent}.")
