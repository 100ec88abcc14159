"""Rotate the ID-token signing key: a new key file signs from the next process start.

Older keys stay in JWKS so tokens they signed still verify (and `id_token_hint` still works);
`--prune-older-than SECONDS` removes keys retired longer ago than that, refusing any value below
the longest ID-token lifetime. Every run writes a `signing_key.rotated` audit row.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from oauth2_provider.settings import oauth2_settings

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients.keys import (
    EC_KEY_SUBDIR,
    ES256,
    RS256,
    key_files,
    key_id,
    prune_keys,
    write_new_key,
)
from oauth_clients.models import Client


def longest_id_token_lifetime() -> int:
    """Seconds: the provider default or the longest per-client ID-token lifetime."""
    longest_client = Client.objects.aggregate(longest=Max("id_token_lifetime"))["longest"] or 0
    return max(int(oauth2_settings.ID_TOKEN_EXPIRE_SECONDS), int(longest_client))


class Command(BaseCommand):
    help = (
        "Write a new RSA signing key into IDP_SIGNING_KEY_DIR (it signs from the next restart; "
        "older keys stay published in JWKS). Optionally prune long-retired keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--prune-older-than",
            type=int,
            metavar="SECONDS",
            help="Also delete keys retired more than SECONDS ago (at least the longest "
            "ID-token lifetime, so every token they signed has expired).",
        )
        parser.add_argument(
            "--algorithm",
            choices=[RS256, ES256],
            default=RS256,
            help="RS256 (the default key) or ES256 (the EC key of ES256 clients, in ec/).",
        )
        parser.add_argument(
            "--prune-only",
            action="store_true",
            help="Prune without writing a new key.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        algorithm = options["algorithm"]
        env_name = "IDP_OIDC_EC_PRIVATE_KEY" if algorithm == ES256 else "IDP_OIDC_PRIVATE_KEY"
        if os.environ.get(f"{env_name}_FILE") or os.environ.get(env_name):
            raise CommandError(
                f"The signing key comes from {env_name}(_FILE), which always wins over "
                "the key directory. Rotate by replacing that key (keep the old one published by "
                "copying it into IDP_SIGNING_KEY_DIR), or unset it to use the directory."
            )
        prune_after = options["prune_older_than"]
        if options["prune_only"] and prune_after is None:
            raise CommandError("--prune-only needs --prune-older-than SECONDS.")
        if prune_after is not None:
            minimum = longest_id_token_lifetime()
            if prune_after < minimum:
                raise CommandError(
                    f"--prune-older-than must be at least {minimum} seconds (the longest ID-token "
                    "lifetime), or tokens signed by a pruned key would stop verifying."
                )
        key_dir = settings.IDP_SIGNING_KEY_DIR
        new_kid = ""
        if not options["prune_only"]:
            path = write_new_key(key_dir, algorithm=algorithm)
            new_kid = key_id(path.read_text())
            self.stdout.write(f"New signing key {path.name} (kid {new_kid}) in {key_dir}.")
        pruned: list[str] = []
        if prune_after is not None:
            kind_dir = key_dir / EC_KEY_SUBDIR if algorithm == ES256 else key_dir
            for path in prune_keys(kind_dir, older_than_seconds=prune_after):
                pruned.append(path.name)
                self.stdout.write(f"Removed retired key {path.name}.")
        record_event(
            type=AuditEvent.Type.SIGNING_KEY_ROTATED,
            new_kid=new_kid,
            pruned=pruned,
            algorithm=algorithm,
            published=len(key_files(key_dir / EC_KEY_SUBDIR if algorithm == ES256 else key_dir)),
        )
        if new_kid:
            self.stdout.write(
                "Restart every IdP process: the new key signs from the next start; the "
                "previous keys stay in JWKS until pruned."
            )
