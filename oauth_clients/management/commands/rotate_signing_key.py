"""Rotate the signing key (ID tokens, SAML assertions), in one step or as a staged rollover.

One step (no step option): a new key file signs from the next process start. Staged, so apps
that cache our JWKS or SAML metadata trust the new key before it signs:

1. `--stage` writes the next key (`next-<time>.pem`): published from the next start, not signing;
2. `--activate` (once the apps' caches hold it) makes it the signing key from the next start;
   the key before it stays published as previous;
3. `--retire` removes previous keys retired longer ago than the longest ID-token lifetime.

`--discard` deletes a staged key that will not be activated. Older keys stay in JWKS so tokens
they signed still verify (and `id_token_hint` still works); `--prune-older-than SECONDS` removes
keys retired longer ago than that, refusing any value below the longest ID-token lifetime. Every
run writes a `signing_key.rotated` audit row naming its step.

With the database key store (`IDP_SIGNING_KEY_STORE=database`, oauth_clients/key_store.py) the
same steps change `SigningKey` rows through oauth_clients/key_rotation.py and every process
follows within seconds, no restart; `--auto` takes the steps the schedule has due (the
background worker does too, every IDP_SIGNING_KEY_AUTO_INTERVAL seconds: oauth_clients/tasks.py;
cron or a Kubernetes CronJob remain an alternative, deploy/README.md). A key set in the
environment still wins for its algorithm, and is rotated in the environment.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from oauth2_provider.settings import oauth2_settings

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients import key_rotation
from oauth_clients.key_store import database_algorithms, from_environment
from oauth_clients.keys import (
    ES256,
    RS256,
    STAGED_PREFIX,
    activate_staged_key,
    env_variable,
    key_created_at,
    key_files,
    key_id,
    keys_from_environment,
    kind_directory,
    prune_keys,
    staged_key_files,
    write_new_key,
    write_staged_key,
)
from oauth_clients.models import Client

ROTATE, STAGE, ACTIVATE, RETIRE, DISCARD, PRUNE = (
    "rotate",
    "stage",
    "activate",
    "retire",
    "discard",
    "prune",
)


def longest_id_token_lifetime() -> int:
    """Seconds: the provider default or the longest per-client ID-token lifetime."""
    longest_client = Client.objects.aggregate(longest=Max("id_token_lifetime"))["longest"] or 0
    return max(int(oauth2_settings.ID_TOKEN_EXPIRE_SECONDS), int(longest_client))


def staged_since(path: Path) -> float:
    """Unix time a staged key was written (`next-<time_ns>.pem`)."""
    stem = path.stem.removeprefix(STAGED_PREFIX)
    return int(stem) / 1e9 if stem.isdigit() else path.stat().st_mtime


class Command(BaseCommand):
    help = (
        "Rotate the RSA (or ES256) signing key in IDP_SIGNING_KEY_DIR: in one step, or staged "
        "(--stage, then --activate once apps have fetched the new JWKS and SAML metadata, then "
        "--retire). Keys take effect at the next restart."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        steps = parser.add_mutually_exclusive_group()
        steps.add_argument(
            "--stage",
            action="store_true",
            help="Write the next key: published in JWKS and SAML metadata from the next "
            "restart, but not signing until --activate.",
        )
        steps.add_argument(
            "--activate",
            action="store_true",
            help="Make the staged key the signing key (from the next restart); the current "
            "one stays published as previous.",
        )
        steps.add_argument(
            "--retire",
            action="store_true",
            help="Remove previous keys retired longer ago than the longest ID-token lifetime "
            "(or --prune-older-than SECONDS, if longer).",
        )
        steps.add_argument(
            "--auto",
            action="store_true",
            help="Database key store: take the steps the schedule has due (publish the next "
            "key, activate it, remove retired keys; the first run creates or imports the first "
            "key). The background worker does this every IDP_SIGNING_KEY_AUTO_INTERVAL seconds.",
        )
        steps.add_argument(
            "--reencrypt",
            action="store_true",
            help="Database key store: encrypt every stored key again under the first "
            "IDP_KEY_ENCRYPTION_KEY (after putting a new one first); then the old one can go.",
        )
        steps.add_argument(
            "--discard",
            action="store_true",
            help="Delete the staged key without activating it.",
        )
        steps.add_argument(
            "--prune-only",
            action="store_true",
            help="Prune without writing a new key.",
        )
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
            default=None,
            help="RS256 (the default key, also SAML's) or ES256 (the EC key of ES256 clients, "
            "in ec/).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="--activate even though the staged key was written less than the JWKS "
            "cache lifetime ago (apps may not have fetched it yet).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        algorithm = options["algorithm"] or RS256
        if keys_from_environment(os.environ, algorithm) or from_environment(algorithm):
            raise CommandError(self._environment_message(algorithm))
        if options["auto"] or options["reencrypt"] or algorithm in database_algorithms():
            self._database(options, algorithm)
            return
        step = next(
            (name for name in (STAGE, ACTIVATE, RETIRE, DISCARD) if options[name]),
            PRUNE if options["prune_only"] else ROTATE,
        )
        prune_after = options["prune_older_than"]
        if step == PRUNE and prune_after is None:
            raise CommandError("--prune-only needs --prune-older-than SECONDS.")
        minimum = longest_id_token_lifetime() if prune_after is not None or step == RETIRE else 0
        if prune_after is not None and prune_after < minimum:
            raise CommandError(
                f"--prune-older-than must be at least {minimum} seconds (the longest ID-token "
                "lifetime), or tokens signed by a pruned key would stop verifying."
            )
        if step == RETIRE:
            prune_after = max(minimum, prune_after or 0)
        kind_dir = kind_directory(settings.IDP_SIGNING_KEY_DIR, algorithm)
        staged = staged_key_files(kind_dir)
        changed = self._change(step, algorithm, kind_dir, staged, force=options["force"])
        pruned: list[str] = []
        if prune_after is not None:
            for path in prune_keys(kind_dir, older_than_seconds=prune_after):
                pruned.append(path.name)
                self.stdout.write(f"Removed retired key {path.name}.")
            if step == RETIRE and not pruned:
                self._explain_nothing_retired(kind_dir, prune_after)
        record_event(
            type=AuditEvent.Type.SIGNING_KEY_ROTATED,
            step=step,
            algorithm=algorithm,
            pruned=pruned,
            published=len(key_files(kind_dir)) + len(staged_key_files(kind_dir)),
            **changed,
        )
        if changed or pruned:
            self.stdout.write(
                "Restart every IdP process: the key set above takes effect at the next start."
            )

    def _database(self, options: dict[str, Any], algorithm: str) -> None:
        """The same steps on the database keys: no restart, every process follows."""
        if algorithm not in database_algorithms():
            raise CommandError(
                "--auto and --reencrypt work on the database keys: set "
                "IDP_SIGNING_KEY_STORE=database and IDP_KEY_ENCRYPTION_KEY."
            )
        if options["prune_only"] or options["prune_older_than"] is not None:
            raise CommandError(
                "Database keys are removed by --retire (or --auto) once the longest token "
                "they signed has expired; --prune-older-than is for the key directory."
            )
        try:
            if options["auto"]:
                named = options["algorithm"]  # else RS256 and each algorithm already stored
                done = key_rotation.tick(algorithms=[named] if named else None)
                for line in done or ["Nothing due."]:
                    self.stdout.write(line)
                return
            if options["reencrypt"]:
                rows = key_rotation.reencrypt_keys()
                self.stdout.write(
                    f"{len(rows)} stored keys encrypted under the first IDP_KEY_ENCRYPTION_KEY."
                )
            elif options["stage"]:
                row = key_rotation.stage_next_key(algorithm=algorithm)
                self.stdout.write(
                    f"Published next key {row.kid}: in JWKS and SAML metadata within seconds, "
                    "signing only after --activate."
                )
            elif options["activate"]:
                row = key_rotation.activate_next_key(algorithm=algorithm, force=options["force"])
                self.stdout.write(
                    f"Key {row.kid} signs from now; the previous key stays published until "
                    "its tokens have expired (--retire or --auto removes it then)."
                )
            elif options["retire"]:
                removed = key_rotation.remove_retired_keys(algorithm=algorithm)
                for row in removed:
                    self.stdout.write(f"Removed retired key {row.kid}.")
                if not removed:
                    self.stdout.write(
                        "Nothing retired: no retired key is older than the longest token "
                        f"lifetime ({key_rotation.longest_token_lifetime()} seconds)."
                    )
            elif options["discard"]:
                row = key_rotation.discard_next_key(algorithm=algorithm)
                self.stdout.write(f"Discarded next key {row.kid}.")
            else:
                row = key_rotation.rotate_now(algorithm=algorithm)
                self.stdout.write(
                    f"Key {row.kid} signs from now (not published ahead: apps fetch our JWKS "
                    "again on its unknown kid); the previous key stays published."
                )
        except key_rotation.KeyRotationError as exc:
            raise CommandError(str(exc)) from None

    def _change(
        self, step: str, algorithm: str, kind_dir: Path, staged: list[Path], *, force: bool
    ) -> dict[str, str]:
        """Write, activate or discard a key; the audit fields of the change."""
        if step in (ROTATE, STAGE) and staged:
            raise CommandError(
                f"A key is staged ({staged[0].name}, kid {key_id(staged[0].read_text())}): "
                "--activate it or --discard it first."
            )
        if step in (ACTIVATE, DISCARD) and len(staged) != 1:
            raise CommandError(
                "No key is staged: --stage one first."
                if not staged
                else f"{len(staged)} keys are staged in {kind_dir}; leave one."
            )
        key_dir = settings.IDP_SIGNING_KEY_DIR
        if step == ROTATE:
            path = write_new_key(key_dir, algorithm=algorithm)
            kid = key_id(path.read_text())
            self.stdout.write(f"New signing key {path.name} (kid {kid}) in {kind_dir}.")
            return {"new_kid": kid}
        if step == STAGE:
            path = write_staged_key(key_dir, algorithm=algorithm)
            kid = key_id(path.read_text())
            self.stdout.write(
                f"Staged next key {path.name} (kid {kid}) in {kind_dir}: published from the "
                "next restart, signing only after --activate."
            )
            return {"staged_kid": kid}
        if step == ACTIVATE:
            waited = time.time() - staged_since(staged[0])
            cache_lifetime = int(oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS)
            if waited < cache_lifetime and not force:
                raise CommandError(
                    f"The staged key was written {int(waited)} seconds ago; apps cache our JWKS "
                    f"for up to {cache_lifetime} seconds after the restart that published it. "
                    "Wait, or pass --force."
                )
            previous = key_files(kind_dir)
            path = activate_staged_key(staged[0])
            kid = key_id(path.read_text())
            self.stdout.write(f"Activated key {path.name} (kid {kid}): it signs after a restart.")
            fields = {"new_kid": kid}
            if previous:
                fields["previous_kid"] = key_id(previous[0].read_text())
                self.stdout.write(
                    f"The previous key {previous[0].name} stays published until --retire."
                )
            return fields
        if step == DISCARD:
            kid = key_id(staged[0].read_text())
            staged[0].unlink()
            self.stdout.write(f"Discarded staged key {staged[0].name} (kid {kid}).")
            return {"discarded_kid": kid}
        return {}

    def _explain_nothing_retired(self, kind_dir: Path, window: int) -> None:
        files = key_files(kind_dir)
        if len(files) < 2:
            self.stdout.write("No previous key to retire.")
            return
        retired_at = key_created_at(files[0])
        wait = int(retired_at + window - time.time()) + 1
        self.stdout.write(
            f"Nothing retired: the previous key was retired {int(time.time() - retired_at)} "
            f"seconds ago; tokens it signed may be valid for {window} seconds. "
            f"Run --retire again in {wait} seconds."
        )

    def _environment_message(self, algorithm: str) -> str:
        current = env_variable(algorithm)
        next_key = env_variable(algorithm, "NEXT")
        previous = env_variable(algorithm, "PREVIOUS")
        return (
            f"The signing key comes from {current}(_FILE), which always wins over the key "
            f"directory. Rotate in the environment: stage by setting {next_key}(_FILE) to a new "
            f"key; activate by moving the current key to {previous}(_FILE) and the next one to "
            f"{current}(_FILE) (and unsetting {next_key}); retire by unsetting {previous} "
            "once the longest ID-token lifetime has passed. Or unset them to use the directory."
        )
