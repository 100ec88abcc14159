"""State changes on registered client apps: register, change, rotate, disable, revoke, delete.

Every function is keyword-only, atomic, validates with `oauth_clients.uri_rules` before writing
anything, and writes one audit row naming the acting administrator (None for automation).
Plaintext secrets are returned to the caller once and never stored, logged or audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients import uri_rules
from oauth_clients.client_cache import invalidate_clients
from oauth_clients.keys import ES256, RS256, signing_algorithms
from oauth_clients.models import Client, Consent
from oauth_clients.oidc.signout import RevokedCounts, revoke_tokens
from oauth_clients.secrets import generate_client_secret

MAX_GRACE_SECONDS = 30 * 24 * 3600

# Fields an administrator (or a registry import) may change after registration. The kind, the
# client type and the grant types follow from the kind and are fixed at registration.
URI_LIST_FIELDS = ("redirect_uris", "post_logout_redirect_uris")
LIFETIME_FIELDS = tuple(uri_rules.LIFETIME_BOUNDS)
TEXT_FIELDS = ("name", "description", "owner_contact", *uri_rules.INFO_URI_FIELDS)
FLAG_FIELDS = (
    "is_trusted",
    "requires_mfa",
    "require_pkce",
    "is_resource_server",
    "backchannel_logout_session_required",
    "allow_private_network",
)
LOGOUT_FIELDS = ("backchannel_logout_uri", "frontchannel_logout_uri")
EDITABLE_FIELDS = (
    *TEXT_FIELDS,
    *URI_LIST_FIELDS,
    "allowed_scopes",
    *FLAG_FIELDS,
    *LOGOUT_FIELDS,
    *LIFETIME_FIELDS,
    "algorithm",
)

# ID-token signing algorithms an app that signs users in may choose. RS256 is the
# default: every OIDC library accepts it (OIDC Core §15.1 makes it mandatory to implement). ES256
# (RFC 7518 §3.4) is faster to sign and gives smaller tokens, for the apps that support it.
# HS256 is never offered: a hashed client secret cannot be an HMAC key. A service signs no one in
# and keeps no algorithm.
ID_TOKEN_ALGORITHMS = (RS256, ES256)
DEFAULT_ID_TOKEN_ALGORITHM = RS256


@dataclass(frozen=True)
class KindProfile:
    """What the kind of app decides (RFC 9700 §2.1.1: PKCE for every code flow)."""

    client_type: str
    grant_type: str
    signs_users_in: bool


KIND_PROFILES: dict[str, KindProfile] = {
    Client.Kind.WEB: KindProfile(
        Client.CLIENT_CONFIDENTIAL, Client.GRANT_AUTHORIZATION_CODE, signs_users_in=True
    ),
    Client.Kind.SPA: KindProfile(
        Client.CLIENT_PUBLIC, Client.GRANT_AUTHORIZATION_CODE, signs_users_in=True
    ),
    Client.Kind.NATIVE: KindProfile(
        Client.CLIENT_PUBLIC, Client.GRANT_AUTHORIZATION_CODE, signs_users_in=True
    ),
    Client.Kind.SERVICE: KindProfile(
        Client.CLIENT_CONFIDENTIAL, Client.GRANT_CLIENT_CREDENTIALS, signs_users_in=False
    ),
}


def _normalize(field: str, value: Any, *, kind: str) -> Any:
    """The stored form of one editable field's value (lists become space-separated text)."""
    if field == "algorithm":
        # Empty means "the default for this kind": RS256 for sign-in apps, none for a service.
        text = value.strip() if isinstance(value, str) else value
        if text in (None, ""):
            return default_id_token_algorithm(kind)
        return text
    if field in URI_LIST_FIELDS:
        return " ".join(uri_rules.split_uris(value))
    if field == "allowed_scopes":
        return " ".join(sorted(uri_rules.split_uris(value)))
    if field in FLAG_FIELDS:
        return bool(value)
    if field in LIFETIME_FIELDS:
        return None if value in (None, "") else value
    if field in TEXT_FIELDS or field in LOGOUT_FIELDS:
        return (value or "").strip()
    raise ValidationError({field: [_("This field cannot be changed.")]})


def default_id_token_algorithm(kind: str) -> str:
    """RS256 for an app that signs users in, no algorithm for a machine-to-machine service."""
    profile = KIND_PROFILES.get(kind)
    return DEFAULT_ID_TOKEN_ALGORITHM if profile and profile.signs_users_in else ""


def id_token_algorithm_errors(*, kind: str, algorithm: Any) -> dict[str, list[str]]:
    """The ID-token algorithm rule: RS256 or ES256 for sign-in apps, and ES256 only with an EC
    signing key configured (else every token for the app would fail to sign); none for a
    service."""
    profile = KIND_PROFILES.get(kind)
    if profile is None:
        return {}
    if not profile.signs_users_in:
        if algorithm:
            return {
                "algorithm": [
                    _(
                        "A machine-to-machine service signs no one in and gets no ID tokens: "
                        "leave the ID token signing algorithm empty."
                    )
                ]
            }
        return {}
    if algorithm not in ID_TOKEN_ALGORITHMS:
        return {
            "algorithm": [
                _("%(value)s is not offered: choose RS256 (the default) or ES256.")
                % {"value": algorithm}
            ]
        }
    if algorithm == ES256 and ES256 not in signing_algorithms():
        return {
            "algorithm": [
                _(
                    "ES256 needs an EC signing key and none is configured "
                    "(IDP_OIDC_EC_PRIVATE_KEY_FILE, or `manage.py rotate_signing_key "
                    "--algorithm ES256` and a restart). Keep RS256 until then."
                )
            ]
        }
    return {}


def _spa_origins(redirect_uris: str) -> str:
    """CORS origins of a single-page app: the https origins of its redirect URIs."""
    origins: dict[str, None] = {}
    for uri in redirect_uris.split():
        parts = urlsplit(uri)
        if parts.scheme == "https" and parts.netloc:
            origins.setdefault(f"https://{parts.netloc.lower()}", None)
    return " ".join(origins)


def _validate(
    client: Client, *, resolver: uri_rules.Resolver | None = None, check_algorithm: bool
) -> None:
    """Every registration rule on the client's current (unsaved) values; raises per field.

    The algorithm is checked when it is set (registration, or a change of it): an app whose EC
    key went away later can still be renamed; tokens for it fail loudly (keys.signing_pem).
    """
    errors = uri_rules.registration_errors(
        kind=client.kind,
        redirect_uris=client.redirect_uris,
        post_logout_redirect_uris=client.post_logout_redirect_uris,
        scopes=client.allowed_scopes,
        backchannel_logout_uri=client.backchannel_logout_uri,
        frontchannel_logout_uri=client.frontchannel_logout_uri,
        allow_private_network=client.allow_private_network,
        info_uris={field: getattr(client, field) for field in uri_rules.INFO_URI_FIELDS},
        lifetimes={field: getattr(client, field) for field in LIFETIME_FIELDS},
        resolver=resolver,
    )
    if not client.name.strip():
        errors["name"] = [_("Give the app a name users will recognise.")]
    elif len(client.name) > 255:
        errors["name"] = [_("At most 255 characters.")]
    if client.owner_contact:
        try:
            validate_email(client.owner_contact)
        except ValidationError:
            errors["owner_contact"] = [_("Enter the owner's email address.")]
    if check_algorithm:
        errors.update(id_token_algorithm_errors(kind=client.kind, algorithm=client.algorithm))
    if errors:
        raise ValidationError(errors)


def _apply_derived(client: Client) -> None:
    """Fields that follow from others, so they can never disagree."""
    profile = KIND_PROFILES[client.kind]
    client.client_type = profile.client_type
    client.authorization_grant_type = profile.grant_type
    client.grant_types = [profile.grant_type]
    # The chosen algorithm is kept (validated by id_token_algorithm_errors); a row without one
    # gets its kind's default, and a service never has one.
    if not profile.signs_users_in:
        client.algorithm = Client.NO_ALGORITHM
    elif not client.algorithm:
        client.algorithm = DEFAULT_ID_TOKEN_ALGORITHM
    # DOT's own consent skip follows our trusted flag (consent is skipped for trusted apps only).
    client.skip_authorization = client.is_trusted
    client.hash_client_secret = True
    client.allowed_origins = (
        _spa_origins(client.redirect_uris) if client.kind == Client.Kind.SPA else ""
    )


@transaction.atomic
def register_client(
    *,
    actor: Any,
    kind: str,
    name: str,
    redirect_uris: str | Iterable[str] = (),
    post_logout_redirect_uris: str | Iterable[str] = (),
    scopes: str | Iterable[str] | None = None,
    is_trusted: bool = False,
    description: str = "",
    requires_mfa: bool = False,
    logo_uri: str = "",
    client_uri: str = "",
    policy_uri: str = "",
    tos_uri: str = "",
    owner_contact: str = "",
    access_token_lifetime: int | None = None,
    id_token_lifetime: int | None = None,
    refresh_token_idle_lifetime: int | None = None,
    refresh_token_absolute_lifetime: int | None = None,
    backchannel_logout_uri: str = "",
    backchannel_logout_session_required: bool = False,
    frontchannel_logout_uri: str = "",
    allow_private_network: bool = False,
    is_resource_server: bool = False,
    require_pkce: bool = True,
    algorithm: str | None = None,
    client_id: str | None = None,
    request: HttpRequest | None = None,
    resolver: uri_rules.Resolver | None = None,
) -> tuple[Client, str]:
    """Register an app. Returns the client and its plaintext secret ("" for public clients).

    The secret is returned once: only its keyed hash is stored. `algorithm` signs the app's ID
    tokens: RS256 (the default) or ES256; a service has none.
    """
    if kind not in KIND_PROFILES:
        raise ValidationError(
            {"kind": [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(KIND_PROFILES)}]}
        )
    if scopes is None:
        # Sign-in apps usually want these; a machine acts for no person and gets no user scopes.
        scopes = ("openid", "profile", "email") if KIND_PROFILES[kind].signs_users_in else ()
    client = Client(kind=kind, user=None, is_active=True)
    values = {
        "name": name,
        "description": description,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "allowed_scopes": scopes,
        "is_trusted": is_trusted,
        "requires_mfa": requires_mfa,
        "is_resource_server": is_resource_server,
        "require_pkce": require_pkce,
        "logo_uri": logo_uri,
        "client_uri": client_uri,
        "policy_uri": policy_uri,
        "tos_uri": tos_uri,
        "owner_contact": owner_contact,
        "access_token_lifetime": access_token_lifetime,
        "id_token_lifetime": id_token_lifetime,
        "refresh_token_idle_lifetime": refresh_token_idle_lifetime,
        "refresh_token_absolute_lifetime": refresh_token_absolute_lifetime,
        "backchannel_logout_uri": backchannel_logout_uri,
        "backchannel_logout_session_required": backchannel_logout_session_required,
        "frontchannel_logout_uri": frontchannel_logout_uri,
        "allow_private_network": allow_private_network,
        "algorithm": algorithm,
    }
    for field, value in values.items():
        setattr(client, field, _normalize(field, value, kind=kind))
    if client_id is not None:
        client_id = client_id.strip()
        if not client_id or len(client_id) > 255 or any(c.isspace() for c in client_id):
            raise ValidationError({"client_id": [_("Enter a client id without spaces.")]})
        if Client.objects.filter(client_id=client_id).exists():
            raise ValidationError({"client_id": [_("A client with this id already exists.")]})
        client.client_id = client_id
    _validate(client, resolver=resolver, check_algorithm=True)
    _apply_derived(client)
    secret = generate_client_secret() if client.client_type == Client.CLIENT_CONFIDENTIAL else ""
    # HashedClientSecretField stores only the keyed hash of this value.
    client.client_secret = secret
    client.save()
    invalidate_clients()
    record_event(
        type=AuditEvent.Type.CLIENT_CREATED,
        request=request,
        actor=actor,
        client=client,
        kind=client.kind,
        name=client.name,
        client_type=client.client_type,
        is_trusted=client.is_trusted,
        scopes=client.allowed_scopes,
        algorithm=client.algorithm,
    )
    return client, secret


def _changes_from(client: Client, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized values of `changes` that differ from the client's stored ones."""
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError(
            {field: [_("This field cannot be changed after registration.")] for field in unknown}
        )
    normalized = {
        field: _normalize(field, value, kind=client.kind) for field, value in changes.items()
    }
    return {field: value for field, value in normalized.items() if getattr(client, field) != value}


@transaction.atomic
def update_client(
    *,
    client: Client,
    actor: Any,
    changes: Mapping[str, Any],
    request: HttpRequest | None = None,
    resolver: uri_rules.Resolver | None = None,
) -> list[str]:
    """Change editable settings; validates the whole result first. Returns the changed fields."""
    stored = Client.objects.select_for_update().get(pk=client.pk)
    effective = _changes_from(stored, changes)
    if not effective:
        return []
    before = {field: getattr(stored, field) for field in effective}
    for field, value in effective.items():
        setattr(stored, field, value)
    _validate(stored, resolver=resolver, check_algorithm="algorithm" in effective)
    _apply_derived(stored)
    stored.save()
    invalidate_clients()  # the token side's cached copy (after commit)
    # Keep the caller's instance in step with what was saved.
    for field in (*effective, "algorithm", "skip_authorization", "allowed_origins", "updated"):
        setattr(client, field, getattr(stored, field))
    fields = sorted(effective)
    extra: dict[str, Any] = {}
    if "algorithm" in effective:
        # Which algorithm the app's ID tokens switch from and to (its library must accept it).
        extra["algorithm"] = {"before": before["algorithm"], "after": stored.algorithm}
    record_event(
        type=AuditEvent.Type.CLIENT_CHANGED,
        request=request,
        actor=actor,
        client=stored,
        fields=fields,
        weakened=_weakenings(before=before, after=effective),
        **extra,
    )
    return fields


def weakening_changes(*, client: Client, changes: Mapping[str, Any]) -> list[str]:
    """How applying `changes` to `client` would make it less safe, in plain words (import)."""
    after = _changes_from(client, changes)
    return _weakenings(before={field: getattr(client, field) for field in after}, after=after)


def _weakenings(*, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Compare normalized values of the same fields before and after a change."""
    old, new = before, after
    reasons: list[str] = []
    for field in URI_LIST_FIELDS:
        if field in new:
            added = set(new[field].split()) - set(old[field].split())
            reasons.extend(
                f"adds the plain-http URI {uri} to {field}"
                for uri in sorted(added)
                if uri.lower().startswith("http:")
            )
    if "allowed_scopes" in new:
        widened = set(new["allowed_scopes"].split()) - set(old["allowed_scopes"].split())
        if widened:
            reasons.append(f"widens scopes with {' '.join(sorted(widened))}")
    for field, weaker, label in (
        ("require_pkce", False, "turns PKCE off"),
        ("is_trusted", True, "marks the app trusted (skips consent)"),
        ("requires_mfa", False, "stops requiring MFA"),
        ("is_resource_server", True, "lets the app introspect other apps' tokens"),
        ("allow_private_network", True, "allows back-channel calls into the private network"),
    ):
        if field in new and new[field] == weaker and old[field] != weaker:
            reasons.append(label)
    defaults = uri_rules.default_lifetimes()
    for field in LIFETIME_FIELDS:
        if field not in new:
            continue
        before_value = old[field] if old[field] is not None else defaults[field]
        after_value = new[field] if new[field] is not None else defaults[field]
        if (
            isinstance(before_value, int)
            and isinstance(after_value, int)
            and after_value > before_value
        ):
            reasons.append(f"lengthens {field} from {before_value} s to {after_value} s")
    return reasons


@transaction.atomic
def rotate_client_secret(
    *,
    client: Client,
    actor: Any,
    grace_seconds: int = 0,
    request: HttpRequest | None = None,
) -> str:
    """Issue a new secret and return it once. The old one stops working at once, or after
    `grace_seconds` (kept as a hash in `previous_client_secret`) so apps can roll over."""
    if client.client_type != Client.CLIENT_CONFIDENTIAL:
        raise ValidationError(_("A public client has no secret to rotate."))
    if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int):
        raise ValidationError({"grace_seconds": [_("Enter a whole number of seconds.")]})
    if grace_seconds < 0 or grace_seconds > MAX_GRACE_SECONDS:
        raise ValidationError(
            {
                "grace_seconds": [
                    _("Must be between 0 and %(max)d seconds.") % {"max": MAX_GRACE_SECONDS}
                ]
            }
        )
    stored = Client.objects.select_for_update().get(pk=client.pk)
    now = timezone.now()
    if grace_seconds:
        stored.previous_client_secret = stored.client_secret
        stored.previous_secret_expires_at = now + timedelta(seconds=grace_seconds)
    else:
        stored.previous_client_secret = ""
        stored.previous_secret_expires_at = None
    secret = generate_client_secret()
    stored.client_secret = secret
    stored.save(
        update_fields=[
            "client_secret",
            "previous_client_secret",
            "previous_secret_expires_at",
            "updated",
        ]
    )
    invalidate_clients()  # the old secret must stop working at once on every worker
    for field in ("client_secret", "previous_client_secret", "previous_secret_expires_at"):
        setattr(client, field, getattr(stored, field))
    record_event(
        type=AuditEvent.Type.CLIENT_SECRET_ROTATED,
        request=request,
        actor=actor,
        client=stored,
        grace_seconds=grace_seconds,
        previous_valid_until=(
            stored.previous_secret_expires_at.isoformat()
            if stored.previous_secret_expires_at
            else None
        ),
    )
    return secret


@transaction.atomic
def disable_client(*, client: Client, actor: Any, request: HttpRequest | None = None) -> None:
    """Stop the app at once: no new sign-ins or tokens, and every issued token is inactive."""
    stored = Client.objects.select_for_update().get(pk=client.pk)
    counts = revoke_tokens(client=stored)
    was_active = stored.is_active
    stored.is_active = False
    stored.save(update_fields=["is_active", "updated"])
    invalidate_clients()
    client.is_active = False
    record_event(
        type=AuditEvent.Type.CLIENT_DISABLED,
        request=request,
        actor=actor,
        client=stored,
        was_active=was_active,
        **counts.as_dict(),
    )


@transaction.atomic
def enable_client(*, client: Client, actor: Any, request: HttpRequest | None = None) -> None:
    """Let a disabled app sign users in again (tokens revoked when it was disabled stay so)."""
    stored = Client.objects.select_for_update().get(pk=client.pk)
    was_active = stored.is_active
    stored.is_active = True
    stored.save(update_fields=["is_active", "updated"])
    invalidate_clients()
    client.is_active = True
    record_event(
        type=AuditEvent.Type.CLIENT_ENABLED,
        request=request,
        actor=actor,
        client=stored,
        was_active=was_active,
    )


@transaction.atomic
def revoke_all_client_tokens(
    *, client: Client, actor: Any, request: HttpRequest | None = None
) -> RevokedCounts:
    """Sign every user out of the app: revoke its tokens and forget every consent given to it."""
    stored = Client.objects.select_for_update().get(pk=client.pk)
    counts = revoke_tokens(client=stored)
    consents = Consent.objects.filter(client=stored)
    consent_count = consents.count()
    consents.delete()
    counts = RevokedCounts(**{**counts.as_dict(), "consents": consent_count})
    record_event(
        type=AuditEvent.Type.TOKEN_REVOKED,
        request=request,
        actor=actor,
        client=stored,
        reason="admin_revoked_all",
        **counts.as_dict(),
    )
    record_event(
        type=AuditEvent.Type.CONSENT_REVOKED,
        request=request,
        actor=actor,
        client=stored,
        reason="admin_revoked_all",
        consents=consent_count,
    )
    return counts


@transaction.atomic
def delete_client(*, client: Client, actor: Any, request: HttpRequest | None = None) -> None:
    """Remove the app and everything issued to it. Its audit rows stay (with its client id)."""
    stored = Client.objects.select_for_update().get(pk=client.pk)
    counts = revoke_tokens(client=stored)
    record_event(
        type=AuditEvent.Type.CLIENT_DELETED,
        request=request,
        actor=actor,
        client=stored,
        name=stored.name,
        kind=stored.kind,
        **counts.as_dict(),
    )
    stored.delete()
    invalidate_clients()


# --- Registry as code: import (export is `selectors.registry()`)

REGISTRY_VERSION = 1
# Keys of an exported entry and the editable field each one sets.
REGISTRY_FIELD_FOR_KEY = {
    **{field: field for field in EDITABLE_FIELDS if field not in ("allowed_scopes", "algorithm")},
    "scopes": "allowed_scopes",
    # OIDC Dynamic Client Registration calls it id_token_signed_response_alg; null for a service.
    "id_token_algorithm": "algorithm",
}
REGISTRY_KEYS = {"client_id", "kind", "is_active", *REGISTRY_FIELD_FOR_KEY}


class RegistryImportError(Exception):
    """The import was refused as a whole; `problems` says why, one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ImportReport:
    created: list[tuple[str, str]]  # (client_id, plaintext secret or "")
    updated: list[tuple[str, list[str]]]
    enabled: list[str]
    disabled: list[str]
    unchanged: list[str]
    forced: list[tuple[str, list[str]]]  # weakenings applied because of --force
    dry_run: bool

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.enabled or self.disabled)


def _entry_type_problems(entry: Mapping[str, Any]) -> list[str]:
    """JSON types of one registry entry ("false" is not false, 5 is not a list of URIs)."""
    problems: list[str] = []
    for key, value in entry.items():
        if key in ("is_active", *FLAG_FIELDS) and not isinstance(value, bool):
            problems.append(f"{key} must be true or false")
        elif key in (*URI_LIST_FIELDS, "scopes") and not (
            isinstance(value, list) and all(isinstance(item, str) for item in value)
        ):
            problems.append(f"{key} must be a list of strings")
        elif key in LIFETIME_FIELDS and not (
            value is None or (isinstance(value, int) and not isinstance(value, bool))
        ):
            problems.append(f"{key} must be a number of seconds or null")
        elif key in (*TEXT_FIELDS, *LOGOUT_FIELDS) and not isinstance(value, str):
            problems.append(f"{key} must be a string")
        elif key == "id_token_algorithm" and value not in (None, *ID_TOKEN_ALGORITHMS):
            problems.append(
                f"id_token_algorithm must be {' or '.join(ID_TOKEN_ALGORITHMS)} "
                f"(null for a service), not {value!r}"
            )
    return problems


def _registry_entries(document: Any) -> list[dict[str, Any]]:
    problems: list[str] = []
    if not isinstance(document, dict) or not isinstance(document.get("clients"), list):
        raise RegistryImportError(['the file must be a JSON object with a "clients" list'])
    if document.get("version", REGISTRY_VERSION) != REGISTRY_VERSION:
        raise RegistryImportError([f"unsupported registry version {document.get('version')!r}"])
    entries = document["clients"]
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"clients[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        client_id = entry.get("client_id")
        if not isinstance(client_id, str) or not client_id.strip():
            problems.append(f"{where}: client_id is required")
            continue
        if client_id in seen:
            problems.append(f"{client_id}: listed twice")
        seen.add(client_id)
        unknown = sorted(set(entry) - REGISTRY_KEYS)
        if unknown:
            problems.append(f"{client_id}: unknown keys {', '.join(unknown)}")
        for key in ("kind", "name"):
            if not isinstance(entry.get(key), str):
                problems.append(f"{client_id}: {key} is required")
        problems.extend(f"{client_id}: {problem}" for problem in _entry_type_problems(entry))
    if problems:
        raise RegistryImportError(problems)
    return entries


def _validation_lines(client_id: str, error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [
            f"{client_id}: {field}: {message}"
            for field, messages in error.message_dict.items()
            for message in messages
        ]
    return [f"{client_id}: {message}" for message in error.messages]


@transaction.atomic
def import_registry(
    *,
    document: Any,
    actor: Any,
    force: bool = False,
    dry_run: bool = False,
    resolver: uri_rules.Resolver | None = None,
) -> ImportReport:
    """Make the registry match `document` (an export). Idempotent; all or nothing.

    Clients missing from the document are left alone. A change that weakens an existing client
    (plain-http URI, PKCE off, trusted, wider scopes, longer lifetimes, re-enabling…) is refused
    unless `force`. New confidential clients get fresh secrets, returned in the report once.
    """
    entries = _registry_entries(document)
    report = ImportReport([], [], [], [], [], [], dry_run)
    problems: list[str] = []
    for entry in entries:
        client_id = entry["client_id"]
        values = {
            REGISTRY_FIELD_FOR_KEY[key]: value
            for key, value in entry.items()
            if key in REGISTRY_FIELD_FOR_KEY
        }
        existing = Client.objects.select_for_update().filter(client_id=client_id).first()
        try:
            with transaction.atomic():
                if existing is None:
                    arguments = dict(values)
                    arguments["scopes"] = arguments.pop("allowed_scopes", None)
                    client, secret = register_client(
                        actor=actor,
                        client_id=client_id,
                        kind=entry["kind"],
                        resolver=resolver,
                        **arguments,
                    )
                    if entry.get("is_active") is False:
                        disable_client(client=client, actor=actor)
                    report.created.append((client_id, secret))
                    continue
                if entry["kind"] != existing.kind:
                    problems.append(
                        f"{client_id}: kind is {existing.kind}, the file says {entry['kind']}; "
                        "the kind cannot change: register a new client instead"
                    )
                    continue
                weakened = weakening_changes(client=existing, changes=values)
                reactivate = entry.get("is_active") is True and not existing.is_active
                if reactivate:
                    weakened.append("re-enables a disabled app")
                if weakened and not force:
                    problems.extend(
                        f"{client_id}: {reason} (refused; use --force if intended)"
                        for reason in weakened
                    )
                    continue
                if weakened:
                    report.forced.append((client_id, weakened))
                fields = update_client(
                    client=existing, actor=actor, changes=values, resolver=resolver
                )
                if fields:
                    report.updated.append((client_id, fields))
                if reactivate:
                    enable_client(client=existing, actor=actor)
                    report.enabled.append(client_id)
                elif entry.get("is_active") is False and existing.is_active:
                    disable_client(client=existing, actor=actor)
                    report.disabled.append(client_id)
                if not fields and not reactivate and client_id not in report.disabled:
                    report.unchanged.append(client_id)
        except ValidationError as exc:
            problems.extend(_validation_lines(client_id, exc))
    if problems:
        raise RegistryImportError(problems)
    if dry_run:
        # Nothing is kept, so no secret from this run will ever work: do not hand any out.
        transaction.set_rollback(True)
        report.created = [(client_id, "") for client_id, _secret in report.created]
    return report
