"""Register the demo relying party (deploy/demo-app) idempotently; used by `make demo` and tests.

    manage.py register_demo_client --demo-url http://127.0.0.1:8001 \
        --output-dir deploy/demo-app/var [--create-user demo]

Registers (through `oauth_clients.services`, so audited and validated like any app) a web client
`demo-app` with the demo's callback, post-logout and back-channel logout URIs, and writes the
issuer, client id and secret to `<output-dir>/client.json` (mode 0600, outside git) for the demo
to read. Run again, it changes nothing unless the URIs moved or the secret file is gone or stale
(then it rotates the secret). Development only: refused when DEBUG is off.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from oauth_clients import services
from oauth_clients.models import Client
from oauth_clients.secrets import check_client_secret

DEMO_CLIENT_ID = "demo-app"
CALLBACK_PATH = "/accounts/oidc/company/login/callback/"


def demo_registration(demo_url: str) -> dict[str, Any]:
    """The registration values for a demo app served at `demo_url`."""
    return {
        "redirect_uris": f"{demo_url}{CALLBACK_PATH}",
        "post_logout_redirect_uris": f"{demo_url}/",
        "backchannel_logout_uri": f"{demo_url}/backchannel-logout/",
        "backchannel_logout_session_required": True,
        # The demo listens on loopback: an internal address for back-channel calls.
        "allow_private_network": True,
    }


class Command(BaseCommand):
    help = "Register (or update) the demo relying party and write its credentials for it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo-url", default="http://127.0.0.1:8001")
        parser.add_argument("--output-dir", required=True, type=Path)
        parser.add_argument(
            "--create-user",
            metavar="USERNAME",
            help="also create this user (first run only) with a random password it prints",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("The demo client is for the loopback dev setup (DEBUG on) only.")
        demo_url = str(options["demo_url"]).rstrip("/")
        parts = urlsplit(demo_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path:
            raise CommandError("--demo-url must be a base URL like http://127.0.0.1:8001")
        output: Path = options["output_dir"]
        output.mkdir(parents=True, exist_ok=True)
        credentials_file = output / "client.json"
        try:
            with transaction.atomic():
                secret = self.ensure_client(demo_url, credentials_file)
        except ValidationError as error:
            raise CommandError(f"The demo client could not be registered: {error}") from error
        if secret is not None:
            write_private(
                credentials_file,
                json.dumps(
                    {
                        "issuer": settings.IDP_ISSUER,
                        "client_id": DEMO_CLIENT_ID,
                        "client_secret": secret,
                    },
                    indent=2,
                ),
            )
            self.stdout.write(f"Credentials written to {credentials_file}")
        if options["create_user"]:
            self.create_user(options["create_user"])

    def ensure_client(self, demo_url: str, credentials_file: Path) -> str | None:
        """The new secret to write, or None when the written one is still right."""
        values = demo_registration(demo_url)
        client = Client.objects.filter(client_id=DEMO_CLIENT_ID).first()
        if client is None:
            client, secret = services.register_client(
                actor=None,
                kind=Client.Kind.WEB,
                name="Demo app",
                client_id=DEMO_CLIENT_ID,
                scopes=("openid", "profile", "email"),
                description="The demo relying party from deploy/demo-app (make demo).",
                **values,
            )
            self.stdout.write(f"Registered the demo client {DEMO_CLIENT_ID}.")
            return secret
        changed = services.update_client(client=client, actor=None, changes=values)
        if changed:
            self.stdout.write(f"Updated the demo client: {', '.join(changed)}.")
        if not client.is_active:
            services.enable_client(client=client, actor=None)
        if _written_secret_is_valid(credentials_file, client):
            self.stdout.write("The demo client is registered; its credentials are current.")
            return None
        self.stdout.write("The demo client's secret file is missing or stale: new secret.")
        return services.rotate_client_secret(client=client, actor=None)

    def create_user(self, username: str) -> None:
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f"User {username} exists (password unchanged).")
            return
        password = secrets.token_urlsafe(12)
        users.create_user(
            username,
            f"{username}@example.com",
            password,
            first_name="Demo",
            last_name="User",
        )
        self.stdout.write(f"Created user {username} with password: {password}")


def _written_secret_is_valid(path: Path, client: Client) -> bool:
    try:
        written = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(written, dict)
        and written.get("client_id") == client.client_id
        and written.get("issuer") == settings.IDP_ISSUER
        and check_client_secret(str(written.get("client_secret", "")), client.client_secret)
    )


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only (replacing any older one atomically)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
