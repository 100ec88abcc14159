"""`manage.py clients …`: the client registry from the command line, for automation.

    clients create --kind web --name Wiki --redirect-uri https://wiki.example.com/cb [--json]
                   [--id-token-algorithm {RS256,ES256}]
    clients create --kind saml --name Wiki --saml-metadata FILE_OR_URL [--json]
    clients create --kind api --name Orders --audience https://api.example.com/orders
    clients create --kind service --name Batch --jwks FILE_OR_URL   (private_key_jwt)
    clients create --kind web ... --require-par   (pushed authorization requests only, RFC 9126)
    clients create --kind web ... --jwks FILE_OR_URL --high-security   (FAPI 2.0: PAR + PKCE +
                   private_key_jwt + DPoP, the code bound to the DPoP key)
                   [--saml-entity-id ID]   # or --saml-entity-id, --saml-acs-url, --saml-certificate
    clients refresh-metadata CLIENT_ID      # a SAML app: read its metadata URL again
    clients list | show CLIENT_ID | rotate-secret CLIENT_ID [--grace-seconds N]
    clients disable CLIENT_ID | enable CLIENT_ID | revoke-tokens CLIENT_ID
    clients export [--output FILE]          # registry as code: JSON, never a secret
    clients import FILE [--force] [--dry-run]
    clients access CLIENT_ID open|assigned   # who may use the app
    clients assign CLIENT_ID --group NAME | --user USERNAME
    clients unassign CLIENT_ID --group NAME | --user USERNAME
    clients role CLIENT_ID ROLE --group NAME | --user USERNAME   # defines the role if missing

Secrets are printed once, on create, rotate-secret and for clients an import creates.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from oauth_clients import saml_metadata, selectors, services
from oauth_clients.client_keys import read_jwks_source
from oauth_clients.models import AppRole, Assignment, Client, SamlServiceProvider


def _one_line(error: ValidationError) -> str:
    """A refusal as one line (the access subcommands' contract for scripts)."""
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{field}: {message}"
            for field, messages in error.message_dict.items()
            for message in messages
        )
    return "; ".join(error.messages)


def _validation_message(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "\n".join(
            f"  {field}: {message}"
            for field, messages in error.message_dict.items()
            for message in messages
        )
    return "\n".join(f"  {message}" for message in error.messages)


class Command(BaseCommand):
    help = (
        "Register, inspect, rotate, disable/enable, export and import client apps; "
        "who may use them and their roles."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--actor",
            help="Username recorded as the acting administrator in the audit log.",
        )
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        create = sub.add_parser("create", help="Register a new app.")
        create.add_argument("--kind", required=True, choices=Client.Kind.values)
        create.add_argument("--name", required=True)
        create.add_argument("--description", default="")
        create.add_argument("--client-id", help="Choose the client id (default: generated).")
        create.add_argument(
            "--redirect-uri", action="append", default=[], dest="redirect_uris", metavar="URI"
        )
        create.add_argument(
            "--post-logout-redirect-uri",
            action="append",
            default=[],
            dest="post_logout_redirect_uris",
            metavar="URI",
        )
        create.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="SCOPE",
            help="Repeat for each scope (default: openid profile email; none for a service).",
        )
        create.add_argument("--trusted", action="store_true", dest="is_trusted")
        create.add_argument("--requires-mfa", action="store_true")
        create.add_argument(
            "--require-dpop",
            action="store_true",
            help="Token requests must carry a DPoP proof (RFC 9449): every token is key-bound.",
        )
        # RFC 9126 §6: the app must push its authorization requests (PAR) first.
        create.add_argument(
            "--require-par", action="store_true", dest="require_pushed_authorization_requests"
        )
        # FAPI 2.0 Security Profile: needs --jwks (a confidential app with its keys).
        create.add_argument(
            "--high-security",
            action="store_true",
            help="Require PAR, PKCE, private_key_jwt and DPoP (FAPI 2.0); needs --jwks.",
        )
        create.add_argument("--owner", default="", dest="owner_contact", metavar="EMAIL")
        for flag in ("logo-uri", "client-uri", "policy-uri", "tos-uri"):
            create.add_argument(f"--{flag}", default="")
        # OIDC Core §4: the app's page that starts a sign-in (the My apps page opens it).
        create.add_argument("--initiate-login-uri", default="", metavar="URI")
        for name in services.LIFETIME_FIELDS:
            create.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="SECONDS")
        # OpenID Connect Back-Channel / Front-Channel Logout 1.0 registration.
        create.add_argument("--backchannel-logout-uri", default="", metavar="URI")
        create.add_argument(
            "--backchannel-logout-session-required",
            action="store_true",
            help="The app needs the session id (sid) in logout tokens.",
        )
        create.add_argument("--frontchannel-logout-uri", default="", metavar="URI")
        create.add_argument(
            "--allow-private-network",
            action="store_true",
            help="Allow a back-channel logout URI on a private or loopback address.",
        )
        create.add_argument(
            "--id-token-algorithm",
            choices=services.ID_TOKEN_ALGORITHMS,
            dest="algorithm",
            help="How the app's ID tokens are signed: RS256 (default; every OIDC library accepts "
            "it) or ES256 (faster, smaller; for libraries that support it). Not for a service. "
            "For an API (--kind api): its JWT access tokens, RS256 unless ES256 is given.",
        )
        # A SAML 2.0 app: its metadata, or its entity ID, ACS URL and certificate.
        create.add_argument(
            "--saml-metadata",
            metavar="FILE_OR_URL",
            help="The SAML app's metadata: a file, or an https URL fetched now.",
        )
        create.add_argument(
            "--saml-entity-id",
            metavar="ID",
            help="The SAML app's entity ID (by hand, or to choose one in an aggregate).",
        )
        create.add_argument(
            "--saml-acs-url", action="append", default=[], dest="saml_acs_urls", metavar="URL"
        )
        create.add_argument(
            "--saml-certificate", metavar="FILE", help="The SAML app's signing certificate (PEM)."
        )
        create.add_argument(
            "--saml-nameid-format",
            choices=SamlServiceProvider.NameIdFormat.values,
            metavar="URN",
            help="The NameID format (default: the first the metadata lists, else emailAddress).",
        )
        create.add_argument(
            "--saml-sign-response",
            action="store_true",
            help="Sign the whole response too (the assertion is always signed).",
        )
        # RFC 9068: an API (resource server) whose tokens are JWTs for this audience.
        create.add_argument(
            "--audience",
            metavar="URI",
            help="--kind api: the API's audience, the `resource` clients ask tokens for.",
        )
        # RFC 7523 §2.2: the client authenticates with private_key_jwt, no shared secret.
        create.add_argument(
            "--jwks",
            metavar="FILE_OR_URL",
            help="The client's public keys (a JWK Set file, or its https jwks_uri): it "
            "authenticates with private_key_jwt and gets no secret.",
        )
        create.add_argument("--json", action="store_true")

        refresh = sub.add_parser(
            "refresh-metadata", help="Read a SAML app's metadata URL again and apply it."
        )
        refresh.add_argument("client_id")
        refresh.add_argument("--json", action="store_true")

        listing = sub.add_parser("list", help="List registered apps.")
        listing.add_argument("--json", action="store_true")

        for action, text in (
            ("show", "Show one app's settings, setup facts and usage."),
            ("disable", "Disable an app and revoke its tokens at once."),
            ("enable", "Enable a disabled app."),
            ("revoke-tokens", "Revoke all tokens and consents of an app."),
        ):
            one = sub.add_parser(action, help=text)
            one.add_argument("client_id")
            one.add_argument("--json", action="store_true")

        rotate = sub.add_parser("rotate-secret", help="Issue a new secret (printed once).")
        rotate.add_argument("client_id")
        rotate.add_argument(
            "--grace-seconds",
            type=int,
            default=0,
            help="Keep the old secret working this long (default 0: stops at once).",
        )
        rotate.add_argument("--json", action="store_true")

        export = sub.add_parser("export", help="Write the registry as JSON (no secrets).")
        export.add_argument("--output", "-o", help="File to write (default: standard output).")

        importing = sub.add_parser("import", help="Make the registry match a JSON export.")
        importing.add_argument("file", help="An export file ('-' for standard input).")
        importing.add_argument(
            "--force", action="store_true", help="Apply changes that weaken an existing app."
        )
        importing.add_argument("--dry-run", action="store_true", help="Report, change nothing.")
        importing.add_argument("--json", action="store_true")

        policy = sub.add_parser("access", help="Open the app to everyone or to assigned only.")
        policy.add_argument("client_id")
        policy.add_argument("policy", choices=Client.AccessPolicy.values)
        policy.add_argument("--json", action="store_true")
        for action, text in (
            ("assign", "Let a group or a user use an app (when it is assigned-only)."),
            ("unassign", "Take a group's or a user's assignment to an app away."),
            ("role", "Grant an app role to a group or a user (defines the role if missing)."),
        ):
            one = sub.add_parser(action, help=text)
            one.add_argument("client_id")
            if action == "role":
                one.add_argument("role", help="The role's name, e.g. editor.")
                one.add_argument("--description", help="Describe the role (new or changed).")
            who = one.add_mutually_exclusive_group(required=True)
            who.add_argument("--group", metavar="NAME")
            who.add_argument("--user", metavar="USERNAME")
            one.add_argument("--json", action="store_true")

    # --- plumbing

    def _actor(self, username: str | None) -> Any:
        if not username:
            return None
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user named {username!r} (--actor).") from exc

    def _client(self, client_id: str) -> Client:
        try:
            return Client.objects.get(client_id=client_id)
        except Client.DoesNotExist as exc:
            raise CommandError(f"No client app with client id {client_id!r}.") from exc

    def _group_or_user(self, options: dict[str, Any]) -> tuple[Group | None, Any]:
        if options.get("group") is not None:
            try:
                return Group.objects.get(name=options["group"]), None
            except Group.DoesNotExist as exc:
                raise CommandError(f"No group named {options['group']!r}.") from exc
        try:
            return None, get_user_model().objects.get_by_natural_key(options["user"])
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user named {options['user']!r}.") from exc

    def _who(self, group: Group | None, user: Any) -> tuple[dict[str, Any], str]:
        if group is not None:
            return {"group": group.name, "user": None}, f"group {group.name}"
        return {"group": None, "user": user.get_username()}, f"user {user.get_username()}"

    def _emit(self, options: dict[str, Any], data: Any, text: str) -> None:
        if options.get("json"):
            self.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            self.stdout.write(text)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self._actor(options.get("actor"))
        action = options["action"].replace("-", "_")
        try:
            getattr(self, f"do_{action}")(actor, options)
        except ValidationError as exc:
            if action in ONE_LINE_ACTIONS:
                raise CommandError(f"Refused: {_one_line(exc)}") from exc
            raise CommandError("Refused:\n" + _validation_message(exc)) from exc

    # --- actions

    def _saml_create(self, actor: Any, options: dict[str, Any]) -> None:
        source = options["saml_metadata"] or ""
        metadata: dict[str, Any] = {}
        if source.lower().startswith(("https://", "http://")):
            metadata["metadata_url"] = source
        elif source:
            metadata["metadata_xml"] = _read_file(source, binary=True)
        certificate = options["saml_certificate"]
        client = services.register_saml_app(
            actor=actor,
            name=options["name"],
            client_id=options["client_id"],
            entity_id=options["saml_entity_id"],
            acs_urls=options["saml_acs_urls"] or None,
            certificates=_read_file(certificate) if certificate else None,
            nameid_format=options["saml_nameid_format"],
            sign_response=options["saml_sign_response"],
            description=options["description"],
            requires_mfa=options["requires_mfa"],
            is_trusted=options["is_trusted"],
            owner_contact=options["owner_contact"],
            logo_uri=options["logo_uri"],
            client_uri=options["client_uri"],
            policy_uri=options["policy_uri"],
            tos_uri=options["tos_uri"],
            initiate_login_uri=options["initiate_login_uri"],
            allow_private_network=options["allow_private_network"],
            **({"allowed_scopes": options["scopes"]} if options["scopes"] else {}),
            **metadata,
        )
        entry = selectors.registry_entry(client)
        facts = selectors.saml_facts(client)
        data = {**entry, "entity_id": facts["entity_id"], **facts}
        lines = [
            f"Registered {client.name} ({client.get_kind_display()}).",
            f"client_id:      {client.client_id}",
            f"entity ID:      {facts['entity_id']}",
            *(f"ACS URL:        {url}" for url in facts["acs_urls"]),
            f"IdP metadata:   {facts['idp_metadata_url']}",
        ]
        self._emit(options, data, "\n".join(lines))

    def do_refresh_metadata(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        fields = services.refresh_saml_metadata(client=client, actor=actor)
        self._emit(
            options,
            {"client_id": client.client_id, "changed": fields},
            f"Refreshed the metadata of {client.name}: "
            + (", ".join(fields) if fields else "nothing changed")
            + ".",
        )

    def do_create(self, actor: Any, options: dict[str, Any]) -> None:
        if options["kind"] == Client.Kind.SAML:
            self._saml_create(actor, options)
            return
        saml_flags = [
            flag
            for flag, key in (
                ("--saml-metadata", "saml_metadata"),
                ("--saml-entity-id", "saml_entity_id"),
                ("--saml-acs-url", "saml_acs_urls"),
                ("--saml-certificate", "saml_certificate"),
            )
            if options[key]
        ]
        if saml_flags:
            raise CommandError(f"{', '.join(saml_flags)}: only for --kind saml.")
        scopes = options["scopes"] or (
            []
            if options["kind"] in (Client.Kind.SERVICE, Client.Kind.API)
            else ["openid", "profile", "email"]
        )
        keys: dict[str, Any] = {}
        if options["jwks"]:
            try:
                keys = read_jwks_source(options["jwks"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"--jwks: cannot read {options['jwks']}: {exc}") from exc
        client, secret = services.register_client(
            actor=actor,
            kind=options["kind"],
            name=options["name"],
            description=options["description"],
            client_id=options["client_id"],
            redirect_uris=options["redirect_uris"],
            post_logout_redirect_uris=options["post_logout_redirect_uris"],
            scopes=scopes,
            is_trusted=options["is_trusted"],
            requires_mfa=options["requires_mfa"],
            owner_contact=options["owner_contact"],
            logo_uri=options["logo_uri"],
            client_uri=options["client_uri"],
            policy_uri=options["policy_uri"],
            tos_uri=options["tos_uri"],
            initiate_login_uri=options["initiate_login_uri"],
            backchannel_logout_uri=options["backchannel_logout_uri"],
            backchannel_logout_session_required=options["backchannel_logout_session_required"],
            frontchannel_logout_uri=options["frontchannel_logout_uri"],
            allow_private_network=options["allow_private_network"],
            algorithm=options["algorithm"],
            audience=options["audience"],
            require_dpop=options["require_dpop"],
            require_pushed_authorization_requests=options["require_pushed_authorization_requests"],
            high_security=options["high_security"],
            **keys,
            **{name: options[name] for name in services.LIFETIME_FIELDS},
        )
        facts = selectors.setup_facts(client=client)
        data = {**selectors.registry_entry(client), "client_secret": secret, **_facts(facts)}
        lines = [
            f"Registered {client.name} ({client.get_kind_display()}).",
            f"client_id:      {client.client_id}",
        ]
        if secret:
            lines.append(f"client_secret:  {secret}")
            lines.append("The secret is shown only now: store it in the app's secret store.")
        if client.kind == Client.Kind.API:
            lines.append(f"access tokens:  signed with {client.algorithm or 'RS256'}")
        elif client.algorithm:
            lines.append(f"ID tokens:      signed with {client.algorithm}")
        if client.audience:
            lines.append(f"audience:       {client.audience} (RFC 9068 JWT access tokens)")
        if client.uses_private_key_jwt:
            lines.append("authentication: private_key_jwt (no secret)")
        if client.must_use_dpop:
            lines.append("tokens:         DPoP-bound only (RFC 9449)")
        if client.high_security:
            lines.append("profile:        high security (FAPI 2.0: PAR, PKCE, DPoP, keys)")
        lines += [f"issuer:         {facts['issuer']}", f"discovery URL:  {facts['discovery_url']}"]
        self._emit(options, data, "\n".join(lines))

    def do_list(self, actor: Any, options: dict[str, Any]) -> None:
        rows = [selectors.summary(client) for client in Client.objects.order_by("name", "pk")]
        text = "\n".join(
            f"{row['client_id']}  {row['kind']:<8} "
            f"{'active' if row['is_active'] else 'DISABLED':<8} {row['name']}"
            for row in rows
        )
        self._emit(options, rows, text or "No client apps registered.")

    def do_show(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        overview = selectors.client_overview(client=client)
        usage = {
            "last_used_at": overview.last_used_at.isoformat() if overview.last_used_at else None,
            "active_access_tokens": overview.active_access_tokens,
            "active_refresh_tokens": overview.active_refresh_tokens,
            "consents": overview.consents,
            "distinct_users": overview.distinct_users,
        }
        facts = (
            selectors.saml_facts(client)
            if client.kind == Client.Kind.SAML
            else _facts(selectors.setup_facts(client=client))
        )
        data = {**selectors.registry_entry(client), **facts, "usage": usage}
        text = "\n".join(f"{key}: {value}" for key, value in data.items())
        self._emit(options, data, text)

    def do_rotate_secret(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        secret = services.rotate_client_secret(
            client=client, actor=actor, grace_seconds=options["grace_seconds"]
        )
        until = client.previous_secret_expires_at
        data = {
            "client_id": client.client_id,
            "client_secret": secret,
            "previous_secret_valid_until": until.isoformat() if until else None,
        }
        text = f"client_secret:  {secret}\n" + (
            f"The previous secret works until {until.isoformat()}."
            if until
            else "The previous secret no longer works."
        )
        self._emit(options, data, text)

    def do_disable(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        services.disable_client(client=client, actor=actor)
        self._emit(
            options,
            {"client_id": client.client_id, "is_active": False},
            f"Disabled {client.name}; its tokens are revoked.",
        )

    def do_enable(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        services.enable_client(client=client, actor=actor)
        self._emit(
            options,
            {"client_id": client.client_id, "is_active": True},
            f"Enabled {client.name}.",
        )

    def do_revoke_tokens(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        counts = services.revoke_all_client_tokens(client=client, actor=actor)
        self._emit(
            options,
            {"client_id": client.client_id, **counts.as_dict()},
            f"Revoked {counts.access_tokens} access tokens, {counts.refresh_tokens} refresh "
            f"tokens and {counts.consents} consents of {client.name}.",
        )

    def do_export(self, actor: Any, options: dict[str, Any]) -> None:
        clients = selectors.registry()
        document = {"version": services.REGISTRY_VERSION, "clients": clients}
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as fh:
                fh.write(text)
            self.stderr.write(f"Wrote {len(clients)} clients to {options['output']}.")
        else:
            self.stdout.write(text, ending="")

    def do_import(self, actor: Any, options: dict[str, Any]) -> None:
        try:
            if options["file"] == "-":
                document = json.load(sys.stdin)
            else:
                with open(options["file"], encoding="utf-8") as fh:
                    document = json.load(fh)
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{options['file']} is not valid JSON: {exc}") from exc
        try:
            report = services.import_registry(
                document=document,
                actor=actor,
                force=options["force"],
                dry_run=options["dry_run"],
            )
        except services.RegistryImportError as exc:
            raise CommandError(
                "Import refused, nothing changed:\n" + "\n".join(f"  {p}" for p in exc.problems)
            ) from exc
        data = {
            "dry_run": report.dry_run,
            "created": [
                {"client_id": client_id, "client_secret": secret}
                for client_id, secret in report.created
            ],
            "updated": [
                {"client_id": client_id, "fields": fields} for client_id, fields in report.updated
            ],
            "enabled": report.enabled,
            "disabled": report.disabled,
            "unchanged": report.unchanged,
            "forced": [
                {"client_id": client_id, "weakenings": reasons}
                for client_id, reasons in report.forced
            ],
        }
        prefix = "Would " if report.dry_run else ""
        lines = []
        for client_id, secret in report.created:
            lines.append(f"{prefix}create {client_id}")
            if secret and not report.dry_run:
                lines.append(f"  client_secret: {secret}  (shown only now)")
        lines += [f"{prefix}update {cid}: {', '.join(fields)}" for cid, fields in report.updated]
        lines += [f"{prefix}enable {cid}" for cid in report.enabled]
        lines += [f"{prefix}disable {cid}" for cid in report.disabled]
        lines += [f"  forced: {cid}: {'; '.join(reasons)}" for cid, reasons in report.forced]
        lines.append(
            f"{len(report.unchanged)} unchanged."
            if report.changed
            else f"Nothing to change ({len(report.unchanged)} clients up to date)."
        )
        self._emit(options, data, "\n".join(lines))

    # --- who may use an app, and its roles

    def do_access(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        change = services.set_access_policy(client=client, policy=options["policy"], actor=actor)
        data = {
            "client_id": client.client_id,
            "access_policy": client.access_policy,
            "changed": change.changed,
            "users_losing_access": len(change.users_losing_access),
        }
        if client.access_policy == Client.AccessPolicy.OPEN:
            text = f"{client.name} is open to every active account."
        else:
            text = f"Only the groups and users assigned to {client.name} may use it."
        if not change.changed:
            text += " (unchanged)"
        self._emit(options, data, text)

    def do_assign(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        group, user = self._group_or_user(options)
        already = Assignment.objects.filter(client=client, group=group, user=user).exists()
        services.assign(client=client, group=group, user=user, actor=actor)
        who, words = self._who(group, user)
        data = {
            "client_id": client.client_id,
            **who,
            "assigned": True,
            "changed": not already,
            "access_policy": client.access_policy,
        }
        text = f"Assigned {client.name} to {words}." + (" (unchanged)" if already else "")
        if client.access_policy == Client.AccessPolicy.OPEN:
            text += (
                f" {client.name} is open to every active account: the assignment counts once "
                f"`clients access {client.client_id} assigned` limits it."
            )
        self._emit(options, data, text)

    def do_unassign(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        group, user = self._group_or_user(options)
        change = services.unassign(client=client, group=group, user=user, actor=actor)
        who, words = self._who(group, user)
        data = {
            "client_id": client.client_id,
            **who,
            "assigned": False,
            "changed": change.changed,
            "users_losing_access": len(change.users_losing_access),
        }
        text = (
            f"Removed the assignment of {client.name} to {words}."
            if change.changed
            else f"{client.name} was not assigned to {words}. (unchanged)"
        )
        self._emit(options, data, text)

    def do_role(self, actor: Any, options: dict[str, Any]) -> None:
        client = self._client(options["client_id"])
        group, user = self._group_or_user(options)
        existing = AppRole.objects.filter(client=client, name=options["role"]).first()
        role = services.define_role(
            client=client, name=options["role"], description=options["description"], actor=actor
        )
        already = role.grants.filter(group=group, user=user).exists()
        services.grant_role(role=role, group=group, user=user, actor=actor)
        who, words = self._who(group, user)
        data = {
            "client_id": client.client_id,
            "role": role.name,
            **who,
            "role_created": existing is None,
            "changed": existing is None or not already,
        }
        text = f"Granted {role.name} of {client.name} to {words}." + (
            " (unchanged)" if already else ""
        )
        self._emit(options, data, text)


ONE_LINE_ACTIONS = ("access", "assign", "unassign", "role")


def _read_file(path: str, *, binary: bool = False) -> Any:
    try:
        with open(path, "rb") as fh:
            # One byte over the limit is enough to refuse an oversized document.
            data = fh.read(saml_metadata.MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
    return data if binary else data.decode("utf-8", "replace")


def _facts(facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "issuer": facts["issuer"],
        "discovery_url": facts["discovery_url"],
        "token_endpoint": facts["token_endpoint"],
    }
