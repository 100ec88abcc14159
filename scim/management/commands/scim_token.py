"""`manage.py scim_token …`: SCIM client tokens from the command line.

    scim_token create --name NAME [--read-only] [--users-only | --groups-only] [--expires DAYS]
    scim_token list
    scim_token revoke NAME

`create` prints the token once (it is stored only hashed); `list` shows each token's scope,
expiry and last use, never a token. Issuing and revoking are audited (scim.services).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from scim import services
from scim.models import ScimToken


def _scope(token: ScimToken) -> str:
    kinds = [
        kind
        for kind, allowed in (
            ("users", token.may_manage_users),
            ("groups", token.may_manage_groups),
        )
        if allowed
    ]
    mode = "read-only" if token.read_only else "read-write"
    return f"{mode} {'+'.join(kinds)}"


class Command(BaseCommand):
    help = "Issue, list and revoke the bearer tokens of SCIM clients."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Issue a token (printed once).")
        create.add_argument("--name", required=True, help="Who uses it, e.g. 'Entra ID'.")
        create.add_argument("--read-only", action="store_true", help="Reads only.")
        only = create.add_mutually_exclusive_group()
        only.add_argument("--users-only", action="store_true", help="Users, not groups.")
        only.add_argument("--groups-only", action="store_true", help="Groups, not users.")
        create.add_argument("--expires", type=int, metavar="DAYS", help="Expires after DAYS.")
        actions.add_parser("list", help="Every token with its scope, expiry and last use.")
        revoke = actions.add_parser("revoke", help="Stop a token working now.")
        revoke.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        name = options["name"].strip()
        if not name:
            raise CommandError("--name must not be empty.")
        if options["expires"] is not None and options["expires"] < 1:
            raise CommandError("--expires takes a number of days, at least 1.")
        try:
            _token, plain = services.issue_token(
                name=name,
                read_only=options["read_only"],
                users=not options["groups_only"],
                groups=not options["users_only"],
                expires_in_days=options["expires"],
            )
        except IntegrityError:
            raise CommandError(f"A SCIM token named {name!r} already exists.") from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stderr.write(f"SCIM token {name!r} issued. It is shown only now: store it safely.")
        self.stdout.write(plain)

    def _list(self, options: dict[str, Any]) -> None:
        for token in ScimToken.objects.order_by("name"):
            if token.revoked_at:
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
            elif not token.is_usable():
                state = "expired"
            else:
                state = "active"
            expires = f"{token.expires_at:%Y-%m-%d}" if token.expires_at else "never"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            self.stdout.write(
                f"{token.name}\t{token.prefix}…\t{_scope(token)}\t{state}\t"
                f"expires {expires}\tlast used {used}"
            )

    def _revoke(self, options: dict[str, Any]) -> None:
        token = ScimToken.objects.filter(name=options["name"]).first()
        if token is None:
            raise CommandError(f"No SCIM token named {options['name']!r}.")
        if not services.revoke_token(token=token):
            raise CommandError(f"SCIM token {token.name!r} was already revoked.")
        self.stdout.write(f"SCIM token {token.name!r} revoked.")
