"""State changes on registered client apps: register, change, rotate, disable, revoke, delete;
who may use an app (access policy, assignments), its roles and its claim mapping.

Every function is keyword-only, atomic, validates with `oauth_clients.uri_rules` before writing
anything, and writes one audit row naming the acting administrator (None for automation).
Plaintext secrets are returned to the caller once and never stored, logged or audited.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from oauth2_provider.oauth2_validators import is_valid_resource_uri

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients import access, client_keys, saml_metadata, uri_rules
from oauth_clients.client_cache import invalidate_clients
from oauth_clients.key_store import signing_algorithms
from oauth_clients.keys import ES256, RS256
from oauth_clients.models import (
    MAPPABLE_USER_ATTRIBUTES,
    AppRole,
    Assignment,
    Client,
    Consent,
    RoleGrant,
    SamlServiceProvider,
    validate_claim_name,
    validate_role_name,
    validate_roles_claim,
)
from oauth_clients.oidc.signout import RevokedCounts, end_app_access, revoke_tokens
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
    "require_dpop",
    "require_pushed_authorization_requests",
    "high_security",
    "is_resource_server",
    "backchannel_logout_session_required",
    "allow_private_network",
)
LOGOUT_FIELDS = ("backchannel_logout_uri", "frontchannel_logout_uri")
# RFC 9068 / RFC 8707: an API's audience. RFC 7523 §2.2: a client's public keys (private_key_jwt).
KEY_FIELDS = ("jwks", "jwks_uri")
EDITABLE_FIELDS = (
    *TEXT_FIELDS,
    *URI_LIST_FIELDS,
    "allowed_scopes",
    *FLAG_FIELDS,
    *LOGOUT_FIELDS,
    *LIFETIME_FIELDS,
    "algorithm",
    "audience",
    *KEY_FIELDS,
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
    # False for a SAML app: registered here (name, access, MFA rule, claims) but never an OAuth
    # client (`Client.is_usable` refuses it): no secret, no ID-token algorithm.
    oauth: bool = True
    # True for an API (RFC 9068): its `algorithm` is what its JWT access tokens are signed with
    # (oauth_clients/oidc/jwt_access.py): RS256 when empty, or ES256 when registered for it.
    signs_access_tokens: bool = False


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
    # RFC 8628: a public client (a device cannot keep a secret) on the device code grant; its
    # refresh tokens follow that grant (token_policy.GRANT_TYPES_ALLOWING).
    Client.Kind.DEVICE: KindProfile(
        Client.CLIENT_PUBLIC, Client.GRANT_DEVICE_CODE, signs_users_in=True
    ),
    # A resource server: it signs no one in; it authenticates to introspect its tokens.
    Client.Kind.API: KindProfile(
        Client.CLIENT_CONFIDENTIAL,
        Client.GRANT_CLIENT_CREDENTIALS,
        signs_users_in=False,
        signs_access_tokens=True,
    ),
    # DOT's columns need values; the grant is never reached (is_usable refuses the kind).
    Client.Kind.SAML: KindProfile(
        Client.CLIENT_CONFIDENTIAL,
        Client.GRANT_AUTHORIZATION_CODE,
        signs_users_in=True,
        oauth=False,
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
    if field in TEXT_FIELDS or field in LOGOUT_FIELDS or field == "jwks_uri":
        return (value or "").strip()
    if field == "audience":
        return (value or "").strip() or None
    if field == "jwks":
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else None
            except ValueError as exc:
                raise ValidationError({"jwks": [_("The JWK Set is not valid JSON.")]}) from exc
        return value or None
    raise ValidationError({field: [_("This field cannot be changed.")]})


def default_id_token_algorithm(kind: str) -> str:
    """RS256 for an app that signs users in, no algorithm for a machine-to-machine service."""
    profile = KIND_PROFILES.get(kind)
    return (
        DEFAULT_ID_TOKEN_ALGORITHM if profile and profile.signs_users_in and profile.oauth else ""
    )


def chooses_algorithm(kind: str) -> bool:
    """Whether an app of `kind` has a signing algorithm to choose: an app that signs users in
    (its ID tokens) or an API (its RFC 9068 access tokens)."""
    profile = KIND_PROFILES.get(kind)
    if profile is None or not profile.oauth:
        return False
    return profile.signs_users_in or profile.signs_access_tokens


def id_token_algorithm_errors(*, kind: str, algorithm: Any) -> dict[str, list[str]]:
    """The signing algorithm rule: RS256 or ES256 for sign-in apps (their ID tokens) and for an
    API (its JWT access tokens; empty means RS256), and ES256 only with an EC signing key
    configured (else every token for the app would fail to sign); none for a service."""
    profile = KIND_PROFILES.get(kind)
    if profile is None:
        return {}
    if not profile.oauth:
        if algorithm:
            return {"algorithm": [_("A SAML app gets no ID tokens: leave the algorithm empty.")]}
        return {}
    if profile.signs_access_tokens and not algorithm:
        return {}
    if not profile.signs_users_in and not profile.signs_access_tokens:
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
    key went away later can still be renamed; tokens for it fail loudly (key_store.signing_pem).
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
    errors.update(_audience_errors(client))
    errors.update(key_errors(client, resolver=resolver))
    errors.update(_high_security_errors(client))
    if errors:
        raise ValidationError(errors)


def _audience_errors(client: Client) -> dict[str, list[str]]:
    """RFC 9068 §3 / RFC 8707 §2: an API names its audience, an absolute URI without a fragment
    that no other API uses and that is not this provider; other kinds have none."""
    audience = client.audience
    if client.kind != Client.Kind.API:
        if audience:
            return {"audience": [_("Only an API (resource server) has an audience.")]}
        return {}
    if not audience:
        return {"audience": [_("An API needs its audience: the URI clients ask tokens for.")]}
    if len(audience) > 500 or not is_valid_resource_uri(audience):
        return {"audience": [_("The audience must be an absolute URI without a fragment.")]}
    if audience.rstrip("/") == settings.IDP_ISSUER or audience.startswith(
        f"{settings.IDP_ISSUER}/o/"
    ):
        return {"audience": [_("The audience must be the API's, not this provider's.")]}
    if Client.objects.filter(audience=audience).exclude(pk=client.pk).exists():
        return {"audience": [_("Another API already uses this audience.")]}
    return {}


def high_security_errors(
    *, kind: str, high_security: bool, jwks: Any, jwks_uri: str
) -> dict[str, list[str]]:
    """FAPI 2.0 Security Profile §5.3.2.1: confidential clients only, authenticated with
    private_key_jwt (the app's registered public keys); a public app or one without keys
    cannot take the profile. Asked by the service and, for their field errors, the forms."""
    if not high_security:
        return {}
    profile = KIND_PROFILES.get(kind)
    if profile is None or profile.client_type != Client.CLIENT_CONFIDENTIAL or not profile.oauth:
        return {
            "high_security": [
                _(
                    "The high-security profile is for confidential apps (a server-side app or "
                    "a service): a public app cannot sign in with keys."
                )
            ]
        }
    if not jwks and not jwks_uri:
        return {
            "high_security": [
                _(
                    "The high-security profile needs the app's public keys (a JWK Set or its "
                    "URL): the app authenticates with private_key_jwt."
                )
            ]
        }
    return {}


def _high_security_errors(client: Client) -> dict[str, list[str]]:
    return high_security_errors(
        kind=client.kind,
        high_security=client.high_security,
        jwks=client.jwks,
        jwks_uri=client.jwks_uri,
    )


def key_errors(
    client: Client, *, resolver: uri_rules.Resolver | None = None
) -> dict[str, list[str]]:
    """RFC 7523 §2.2 keys: inline or by URL (not both), for a confidential client, public
    signing keys only; a URL the IdP may fetch (`client_keys.jwks_uri_problem`). Asked by the
    service and, for its field errors, the admin change form (on an unsaved copy)."""
    if not client.jwks and not client.jwks_uri:
        return {}
    if KIND_PROFILES[client.kind].client_type != Client.CLIENT_CONFIDENTIAL or (
        client.kind == Client.Kind.SAML
    ):
        return {"jwks": [_("Only a server-side app, a service or an API can sign in with keys.")]}
    if client.jwks and client.jwks_uri:
        return {"jwks": [_("Register the keys inline or by URL, not both.")]}
    if client.jwks:
        problem = client_keys.jwks_problem(client.jwks)
        return {"jwks": [str(problem)]} if problem else {}
    problem = client_keys.jwks_uri_problem(
        client.jwks_uri, allow_private_network=client.allow_private_network, resolver=resolver
    )
    return {"jwks_uri": [f"{client.jwks_uri}: {problem}"]} if problem else {}


def _apply_derived(client: Client) -> None:
    """Fields that follow from others, so they can never disagree."""
    profile = KIND_PROFILES[client.kind]
    client.client_type = profile.client_type
    client.authorization_grant_type = profile.grant_type
    client.grant_types = [profile.grant_type]
    # The chosen algorithm is kept (validated by id_token_algorithm_errors); a row without one
    # gets its kind's default (an API's empty one means RS256), and a service never has one.
    if profile.signs_access_tokens:
        client.algorithm = client.algorithm or Client.NO_ALGORITHM
    elif not profile.signs_users_in or not profile.oauth:
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
    initiate_login_uri: str = "",
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
    require_dpop: bool = False,
    require_pushed_authorization_requests: bool = False,
    high_security: bool = False,
    algorithm: str | None = None,
    audience: str | None = None,
    jwks: dict | str | None = None,
    jwks_uri: str = "",
    client_id: str | None = None,
    request: HttpRequest | None = None,
    resolver: uri_rules.Resolver | None = None,
) -> tuple[Client, str]:
    """Register an app. Returns the client and its plaintext secret ("" for public clients and
    for a client that authenticates with its keys: `jwks` or `jwks_uri`, RFC 7523 §2.2).

    The secret is returned once: only its keyed hash is stored. `algorithm` signs the app's ID
    tokens: RS256 (the default) or ES256; a service has none. An API (`kind="api"`) declares
    its `audience` (RFC 9068).
    """
    if kind == Client.Kind.SAML:
        raise ValidationError(
            {"kind": [_("A SAML app is registered from its metadata (register_saml_app).")]}
        )
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
        "require_dpop": require_dpop,
        "require_pushed_authorization_requests": require_pushed_authorization_requests,
        "high_security": high_security,
        "logo_uri": logo_uri,
        "client_uri": client_uri,
        "policy_uri": policy_uri,
        "tos_uri": tos_uri,
        "initiate_login_uri": initiate_login_uri,
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
        "audience": audience,
        "jwks": jwks,
        "jwks_uri": jwks_uri,
    }
    for field, value in values.items():
        setattr(client, field, _normalize(field, value, kind=kind))
    if client_id is not None:
        client.client_id = _chosen_client_id(client_id)
    _validate(client, resolver=resolver, check_algorithm=True)
    _apply_derived(client)
    secret = (
        generate_client_secret()
        if client.client_type == Client.CLIENT_CONFIDENTIAL and not client.uses_private_key_jwt
        else ""
    )
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
        audience=client.audience,
        client_authentication="private_key_jwt" if client.uses_private_key_jwt else "",
        high_security=client.high_security,
    )
    return client, secret


def _chosen_client_id(client_id: str) -> str:
    client_id = client_id.strip()
    if not client_id or len(client_id) > 255 or any(c.isspace() for c in client_id):
        raise ValidationError({"client_id": [_("Enter a client id without spaces.")]})
    if Client.objects.filter(client_id=client_id).exists():
        raise ValidationError({"client_id": [_("A client with this id already exists.")]})
    return client_id


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
        ("require_dpop", False, "stops requiring DPoP-bound tokens"),
        ("require_pushed_authorization_requests", False, "stops requiring pushed requests"),
        ("high_security", False, "leaves the high-security profile (FAPI 2.0)"),
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
    if client.uses_private_key_jwt:
        # RFC 7523 §2.2: it authenticates with its keys; a secret would never be accepted.
        raise ValidationError(_("This app signs in with its keys: it has no secret to rotate."))
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


# --- SAML apps: a Client of kind `saml` with its SamlServiceProvider
#
# The Client row carries what every app has (name, active flag, access, MFA rule, claim
# mapping, the scopes whose claims it receives as attributes); the SamlServiceProvider row what
# its metadata declares (oauth_clients.saml_metadata: parsed, fetched and checked there).

# SAML app fields an administrator may set besides the service provider's own.
SAML_APP_FIELDS = (
    *TEXT_FIELDS,
    "allowed_scopes",
    "is_trusted",
    "requires_mfa",
    "allow_private_network",
)
# The service provider's fields an administrator (or an import) may change.
SAML_SP_FIELDS = (
    "entity_id",
    "acs_urls",
    "slo_url",
    "slo_binding",
    "certificates",
    "want_authn_requests_signed",
    "sign_response",
    "nameid_format",
    "attribute_names",
    "metadata_url",
)
# Taken from the metadata on every refresh; the rest are the administrator's choices.
SAML_METADATA_FIELDS = (
    "acs_urls",
    "slo_url",
    "slo_binding",
    "certificates",
    "want_authn_requests_signed",
)


def _saml_normalize(field: str, value: Any) -> Any:
    """The stored form of one service-provider field (certificates as normalized PEM text)."""
    if field in ("want_authn_requests_signed", "sign_response"):
        return bool(value)
    if field in ("entity_id", "slo_url", "slo_binding", "metadata_url"):
        return (value or "").strip() if isinstance(value, str) or value is None else value
    if field == "certificates":
        if isinstance(value, list | tuple):
            value = "\n".join(str(item) for item in value)
        try:
            return "".join(saml_metadata.read_certificates(value or ""))
        except ValidationError:
            return value  # refused with its message by sp_errors
    if field == "acs_urls":
        # Kept in index order, so an export and its re-import compare equal.
        return sorted(
            value or [],
            key=lambda acs: (
                acs["index"] if isinstance(acs, dict) and isinstance(acs.get("index"), int) else 0
            ),
        )
    if field == "attribute_names":
        return dict(value or {}) if isinstance(value, dict) else value
    if field == "nameid_format":
        return value or SamlServiceProvider.NameIdFormat.EMAIL
    raise ValidationError({field: [_("This field cannot be changed.")]})


def _check_sp(values: Mapping[str, Any], *, exclude_pk: int | None = None) -> None:
    errors = saml_metadata.sp_errors(values, exclude_pk=exclude_pk)
    metadata_url = values.get("metadata_url") or ""
    if metadata_url:
        problem = uri_rules.saml_endpoint_problem(metadata_url)
        if problem:
            errors["metadata_url"] = [f"{metadata_url}: {problem}"]
    if errors:
        raise ValidationError(errors)


def _default_acs_index(acs_urls: str | list[str]) -> list[dict[str, Any]]:
    return [
        {
            "url": url,
            "binding": saml_metadata.BINDING_HTTP_POST,
            "index": index,
            "is_default": not index,
        }
        for index, url in enumerate(uri_rules.split_uris(acs_urls))
    ]


def _acs_from_argument(acs_urls: Any) -> Any:
    """ACS URLs given by hand: a list of URLs (HTTP-POST, indexed in order, the first the
    default) or already the model's list of objects."""
    if isinstance(acs_urls, str) or (
        isinstance(acs_urls, list | tuple) and all(isinstance(item, str) for item in acs_urls)
    ):
        return _default_acs_index(list(acs_urls) if not isinstance(acs_urls, str) else acs_urls)
    return acs_urls


def _sp_values_from_metadata(parsed: saml_metadata.SpMetadata) -> dict[str, Any]:
    return {
        "entity_id": parsed.entity_id,
        "acs_urls": parsed.acs_urls,
        "slo_url": parsed.slo_url,
        "slo_binding": parsed.slo_binding,
        "certificates": "".join(parsed.certificates),
        "want_authn_requests_signed": parsed.authn_requests_signed,
    }


@transaction.atomic
def register_saml_app(
    *,
    name: str,
    metadata_xml: bytes | str | None = None,
    metadata_url: str | None = None,
    entity_id: str | None = None,
    acs_urls: Any = None,
    certificates: str | Iterable[str] | None = None,
    actor: Any,
    request: HttpRequest | None = None,
    slo_url: str = "",
    slo_binding: str = "",
    want_authn_requests_signed: bool | None = None,
    sign_response: bool = False,
    nameid_format: str | None = None,
    attribute_names: Mapping[str, str] | None = None,
    client_id: str | None = None,
    resolver: uri_rules.Resolver | None = None,
    **app_fields: Any,
) -> Client:
    """Register a SAML 2.0 app from its metadata (a document or a URL, fetched safely) or by
    hand (entity ID, ACS URLs, certificates). With metadata, `entity_id` chooses one service
    provider of an EntitiesDescriptor. `app_fields`: SAML_APP_FIELDS (description, requires_mfa,
    owner_contact, allow_private_network for a metadata URL on the private network, …).
    """
    unknown = sorted(set(app_fields) - set(SAML_APP_FIELDS))
    if unknown:
        raise ValidationError({field: [_("A SAML app has no such setting.")] for field in unknown})
    has_xml = metadata_xml not in (None, b"", "")
    has_url = bool((metadata_url or "").strip())
    by_hand = acs_urls not in (None, "", [], ()) or bool(certificates)
    if sum((has_xml, has_url, by_hand)) != 1:
        raise ValidationError(
            _(
                "Give the app's metadata (a file or a URL), or its entity ID, ACS URL and "
                "certificate by hand: one of them."
            )
        )
    allow_private = bool(app_fields.get("allow_private_network"))
    if has_url:
        metadata_xml = saml_metadata.fetch_sp_metadata(
            str(metadata_url), allow_private_network=allow_private, resolver=resolver
        )
    sp_values: dict[str, Any]
    xml_text = ""
    if metadata_xml not in (None, b"", ""):
        assert metadata_xml is not None
        parsed = saml_metadata.parse_sp_metadata(metadata_xml, entity_id=entity_id or None)
        sp_values = _sp_values_from_metadata(parsed)
        if nameid_format is None:
            nameid_format = parsed.nameid_format
        if want_authn_requests_signed:
            sp_values["want_authn_requests_signed"] = True
        xml_text = (
            metadata_xml.decode("utf-8", "replace")
            if isinstance(metadata_xml, bytes)
            else metadata_xml
        )
    else:
        sp_values = {
            "entity_id": entity_id or "",
            "acs_urls": _acs_from_argument(acs_urls),
            "slo_url": slo_url,
            "slo_binding": slo_binding,
            "certificates": certificates or "",
            "want_authn_requests_signed": bool(want_authn_requests_signed),
        }
    sp_values.update(
        sign_response=sign_response,
        nameid_format=nameid_format,
        attribute_names=dict(attribute_names or {}),
        metadata_url=(metadata_url or "").strip(),
    )
    sp_values = {field: _saml_normalize(field, value) for field, value in sp_values.items()}
    _check_sp(sp_values)

    client = Client(kind=Client.Kind.SAML, user=None, is_active=True)
    values = {"name": name, **app_fields}
    values.setdefault("allowed_scopes", ("openid", "profile", "email"))
    for field, value in values.items():
        setattr(client, field, _normalize(field, value, kind=client.kind))
    if client_id is not None:
        client.client_id = _chosen_client_id(client_id)
    _validate(client, resolver=resolver, check_algorithm=False)
    _apply_derived(client)
    client.client_secret = ""  # never an OAuth client: nothing to authenticate with
    client.save()
    sp = SamlServiceProvider.objects.create(
        client=client,
        metadata_xml=xml_text,
        metadata_fetched_at=timezone.now() if has_url else None,
        **sp_values,
    )
    invalidate_clients()
    record_event(
        type=AuditEvent.Type.CLIENT_CREATED,
        request=request,
        actor=actor,
        client=client,
        kind=client.kind,
        name=client.name,
        entity_id=sp.entity_id,
        acs_urls=[acs["url"] for acs in sp.acs_urls],
        source="metadata_url" if has_url else "metadata" if xml_text else "by_hand",
        requires_mfa=client.requires_mfa,
    )
    return client


def saml_weakenings(*, sp: SamlServiceProvider, after: Mapping[str, Any]) -> list[str]:
    """How changing a service provider to `after` (normalized values) could send assertions
    elsewhere or accept requests from someone else, in plain words (refused on import unless
    forced, like wider scopes)."""
    reasons: list[str] = []
    if "entity_id" in after and after["entity_id"] != sp.entity_id:
        reasons.append(f"changes the entity ID from {sp.entity_id} to {after['entity_id']}")
    if "acs_urls" in after:
        before_urls = {acs["url"] for acs in sp.acs_urls or []}
        after_urls = {acs.get("url") for acs in after["acs_urls"] if isinstance(acs, dict)}
        for url in sorted(str(url) for url in after_urls - before_urls):
            plain = " plain-http" if url.lower().startswith("http:") else ""
            reasons.append(f"adds the{plain} ACS URL {url}")
    if (
        "want_authn_requests_signed" in after
        and sp.want_authn_requests_signed
        and not after["want_authn_requests_signed"]
    ):
        reasons.append("stops requiring signed requests")
    if "certificates" in after and after["certificates"] != sp.certificates:
        reasons.append("replaces the app's signing certificates")
    if "slo_url" in after and after["slo_url"] and after["slo_url"] != sp.slo_url:
        reasons.append(f"sends logout requests to {after['slo_url']}")
    return reasons


def _sp_changes(sp: SamlServiceProvider, changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(SAML_SP_FIELDS))
    if unknown:
        raise ValidationError(
            {field: [_("This field cannot be changed after registration.")] for field in unknown}
        )
    normalized = {field: _saml_normalize(field, value) for field, value in changes.items()}
    if "acs_urls" in normalized:
        normalized["acs_urls"] = _acs_from_argument(normalized["acs_urls"])
    return {field: value for field, value in normalized.items() if getattr(sp, field) != value}


def _saml_sp(client: Client) -> SamlServiceProvider:
    sp = SamlServiceProvider.objects.select_for_update().filter(client=client).first()
    if client.kind != Client.Kind.SAML or sp is None:
        raise ValidationError(_("This app is not a SAML app."))
    return sp


def _save_sp(
    *,
    sp: SamlServiceProvider,
    effective: Mapping[str, Any],
    actor: Any,
    request: HttpRequest | None,
    change: str,
    extra_fields: Iterable[str] = (),
) -> list[str]:
    before = {field: getattr(sp, field) for field in effective}
    weakened = saml_weakenings(sp=sp, after=effective)
    for field, value in effective.items():
        setattr(sp, field, value)
    sp.save()
    invalidate_clients()
    fields = sorted(effective)
    record_event(
        type=AuditEvent.Type.CLIENT_CHANGED,
        request=request,
        actor=actor,
        client=sp.client,
        change=change,
        fields=[f"saml.{field}" for field in fields] + list(extra_fields),
        weakened=weakened,
        entity_id={"before": before.get("entity_id", sp.entity_id), "after": sp.entity_id},
    )
    return fields


@transaction.atomic
def update_saml_sp(
    *,
    client: Client,
    actor: Any,
    changes: Mapping[str, Any],
    request: HttpRequest | None = None,
) -> list[str]:
    """Change a SAML app's service-provider settings (SAML_SP_FIELDS); validates the whole
    result first. Returns the changed fields."""
    sp = _saml_sp(client)
    effective = _sp_changes(sp, changes)
    if not effective:
        return []
    merged = {field: getattr(sp, field) for field in SAML_SP_FIELDS} | effective
    _check_sp(merged, exclude_pk=sp.pk)
    return _save_sp(
        sp=sp, effective=effective, actor=actor, request=request, change="saml_settings"
    )


@transaction.atomic
def refresh_saml_metadata(
    *,
    client: Client,
    actor: Any,
    metadata_xml: bytes | str | None = None,
    request: HttpRequest | None = None,
    resolver: uri_rules.Resolver | None = None,
) -> list[str]:
    """Read the app's metadata again (from its metadata URL, or the document given) and take
    its endpoints, certificates and signing wish (SAML_METADATA_FIELDS). The entity ID must
    stay the same: a different one is another app. Returns the changed fields."""
    sp = _saml_sp(client)
    fetched = metadata_xml in (None, b"", "")
    if fetched:
        if not sp.metadata_url:
            raise ValidationError(
                _("This app has no metadata URL: upload its metadata file instead.")
            )
        metadata_xml = saml_metadata.fetch_sp_metadata(
            sp.metadata_url, allow_private_network=client.allow_private_network, resolver=resolver
        )
    assert metadata_xml is not None
    parsed = saml_metadata.parse_sp_metadata(metadata_xml, entity_id=sp.entity_id)
    values = _sp_values_from_metadata(parsed)
    values.pop("entity_id")
    normalized = {field: _saml_normalize(field, value) for field, value in values.items()}
    merged = {field: getattr(sp, field) for field in SAML_SP_FIELDS} | normalized
    _check_sp(merged, exclude_pk=sp.pk)
    effective = {field: v for field, v in normalized.items() if getattr(sp, field) != v}
    xml_text = (
        metadata_xml.decode("utf-8", "replace") if isinstance(metadata_xml, bytes) else metadata_xml
    )
    sp.metadata_xml = xml_text
    if fetched:
        sp.metadata_fetched_at = timezone.now()
    return _save_sp(
        sp=sp,
        effective=effective,
        actor=actor,
        request=request,
        change="saml_metadata_refreshed",
        extra_fields=["saml.metadata_xml"],
    )


# --- Who may use an app, its roles and claims (the rules: oauth_clients.access)
#
# Every change is one CLIENT_CHANGED audit row whose `change` says what changed. A change that
# narrows who may use an app (unassign, a switch to `assigned`) answers the users who hold
# tokens of the app and lose access by it (`AccessChange.users_losing_access`): after commit
# their tokens for the app are revoked and the app is told through back-channel logout
# (`signout.end_app_access`).


@dataclass(frozen=True)
class AccessChange:
    changed: bool
    users_losing_access: list[int]


def _group_or_user(group: Any, user: Any) -> tuple[Any, Any]:
    if (group is None) == (user is None):
        raise ValidationError(_("Name exactly one group or one user."))
    return group, user


def _who(group: Any, user: Any) -> dict[str, Any]:
    """The audit row's words for a group or a user (the user is also its subject)."""
    return {"group": group.name} if group is not None else {"username": user.get_username()}


def _audit_access(
    *,
    client: Client,
    actor: Any,
    request: HttpRequest | None,
    change: str,
    fields: list[str],
    user: Any = None,
    **extra: Any,
) -> None:
    record_event(
        type=AuditEvent.Type.CLIENT_CHANGED,
        request=request,
        actor=actor,
        client=client,
        subject=user,
        fields=fields,
        change=change,
        **extra,
    )


@transaction.atomic
def set_access_policy(
    *, client: Client, policy: str, actor: Any, request: HttpRequest | None = None
) -> AccessChange:
    """Open the app to every active account or limit it to its assigned groups and users.

    Those who hold the app's tokens and lose access by the change lose them after commit, and
    the app is told through back-channel logout (`signout.end_app_access`)."""
    if policy not in Client.AccessPolicy.values:
        raise ValidationError(
            {
                "access_policy": [
                    _("Choose one of: %(values)s.")
                    % {"values": ", ".join(Client.AccessPolicy.values)}
                ]
            }
        )
    stored = Client.objects.select_for_update().get(pk=client.pk)
    before = stored.access_policy
    if before == policy:
        return AccessChange(changed=False, users_losing_access=[])
    stored.access_policy = policy
    stored.save(update_fields=["access_policy", "updated"])
    invalidate_clients()
    client.access_policy = policy
    losing = access.token_holders_without_access(client=stored)
    _audit_access(
        client=stored,
        actor=actor,
        request=request,
        change="access_policy",
        fields=["access_policy"],
        access_policy={"before": before, "after": policy},
        weakened=(
            ["opens the app to every active account"] if policy == Client.AccessPolicy.OPEN else []
        ),
        users_losing_access=len(losing),
    )
    end_app_access(
        client=stored, user_ids=losing, actor=actor, reason="access_policy", request=request
    )
    return AccessChange(changed=True, users_losing_access=losing)


@transaction.atomic
def assign(
    *,
    client: Client,
    actor: Any,
    group: Group | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
) -> Assignment:
    """Let a group (its members and the members of its subgroups) or a user use the app.

    Takes effect while the app's policy is `assigned`. Assigning twice changes nothing.
    """
    group, user = _group_or_user(group, user)
    assignment, created = Assignment.objects.get_or_create(client=client, group=group, user=user)
    if created:
        _audit_access(
            client=client,
            actor=actor,
            request=request,
            change="assignment_added",
            fields=["assignments"],
            user=user,
            access_policy=client.access_policy,
            **_who(group, user),
        )
    return assignment


@transaction.atomic
def unassign(
    *,
    client: Client,
    actor: Any,
    group: Group | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
) -> AccessChange:
    """Take an assignment away. Unassigning what is not assigned changes nothing.

    Those who hold the app's tokens and lose access by it lose them after commit, and the app
    is told through back-channel logout (`signout.end_app_access`)."""
    group, user = _group_or_user(group, user)
    deleted, _rows = Assignment.objects.filter(client=client, group=group, user=user).delete()
    if not deleted:
        return AccessChange(changed=False, users_losing_access=[])
    losing = access.token_holders_without_access(client=client)
    _audit_access(
        client=client,
        actor=actor,
        request=request,
        change="assignment_removed",
        fields=["assignments"],
        user=user,
        access_policy=client.access_policy,
        users_losing_access=len(losing),
        **_who(group, user),
    )
    end_app_access(
        client=client, user_ids=losing, actor=actor, reason="unassigned", request=request
    )
    return AccessChange(changed=True, users_losing_access=losing)


def _checked_role_name(name: Any) -> str:
    try:
        validate_role_name(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from exc
    return str(name)


@transaction.atomic
def define_role(
    *,
    client: Client,
    name: str,
    actor: Any,
    description: str | None = None,
    request: HttpRequest | None = None,
) -> AppRole:
    """Create the app role `name` (or change its description). Refuses reserved claim names."""
    name = _checked_role_name(name)
    text = (description or "").strip()
    if len(text) > 255:
        raise ValidationError({"description": [_("At most 255 characters.")]})
    role, created = AppRole.objects.get_or_create(
        client=client, name=name, defaults={"description": text}
    )
    if created:
        _audit_access(
            client=client,
            actor=actor,
            request=request,
            change="role_defined",
            fields=["roles"],
            role=name,
        )
    elif description is not None and role.description != text:
        role.description = text
        role.save(update_fields=["description"])
        _audit_access(
            client=client,
            actor=actor,
            request=request,
            change="role_described",
            fields=["roles"],
            role=name,
        )
    return role


@transaction.atomic
def delete_role(*, role: AppRole, actor: Any, request: HttpRequest | None = None) -> None:
    """Remove an app role and every grant of it."""
    grants = role.grants.count()
    client = role.client
    _audit_access(
        client=client,
        actor=actor,
        request=request,
        change="role_deleted",
        fields=["roles"],
        role=role.name,
        grants=grants,
    )
    role.delete()


@transaction.atomic
def grant_role(
    *,
    role: AppRole,
    actor: Any,
    group: Group | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
) -> RoleGrant:
    """Grant an app role to a group (members of its subgroups too) or a user. Idempotent."""
    group, user = _group_or_user(group, user)
    grant, created = RoleGrant.objects.get_or_create(role=role, group=group, user=user)
    if created:
        _audit_access(
            client=role.client,
            actor=actor,
            request=request,
            change="role_granted",
            fields=["roles"],
            user=user,
            role=role.name,
            **_who(group, user),
        )
    return grant


@transaction.atomic
def revoke_role(
    *,
    role: AppRole,
    actor: Any,
    group: Group | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
) -> bool:
    """Take a role grant away; False when there was none. The app sees it at the next token."""
    group, user = _group_or_user(group, user)
    deleted, _rows = RoleGrant.objects.filter(role=role, group=group, user=user).delete()
    if deleted:
        _audit_access(
            client=role.client,
            actor=actor,
            request=request,
            change="role_revoked",
            fields=["roles"],
            user=user,
            role=role.name,
            **_who(group, user),
        )
    return bool(deleted)


CLAIM_MAPPING_FIELDS = (
    "roles_claim",
    "groups_filter",
    "groups_prefix",
    "claim_groups",
    "claim_attributes",
)


def claim_mapping_errors(
    *,
    roles_claim: str,
    groups_filter: str,
    groups_prefix: str,
    claim_attributes: Mapping[str, Any],
) -> dict[str, list[str]]:
    """The claim-mapping rules on whole values, per field (forms, services and import)."""
    errors: dict[str, list[str]] = {}
    try:
        validate_roles_claim(roles_claim)
    except ValidationError as exc:
        errors["roles_claim"] = exc.messages
    if groups_filter not in Client.GroupsFilter.values:
        errors["groups_filter"] = [
            _("Choose one of: %(values)s.") % {"values": ", ".join(Client.GroupsFilter.values)}
        ]
    elif groups_filter == Client.GroupsFilter.PREFIX and not groups_prefix:
        errors["groups_prefix"] = [_("Enter the prefix the app's group names start with.")]
    if len(groups_prefix) > 150:
        errors["groups_prefix"] = [_("At most 150 characters.")]
    attribute_errors: list[str] = []
    if not isinstance(claim_attributes, Mapping):
        attribute_errors.append(_("Map claim names to user attributes."))
    else:
        for claim, attribute in claim_attributes.items():
            try:
                validate_claim_name(claim)
            except ValidationError as exc:
                attribute_errors.extend(exc.messages)
                continue
            if claim == roles_claim:
                attribute_errors.append(
                    _("%(name)s is the app's roles claim; choose another.") % {"name": claim}
                )
            if attribute not in MAPPABLE_USER_ATTRIBUTES:
                attribute_errors.append(
                    _(
                        "%(attribute)s is not a user attribute an app may receive "
                        "(one of: %(known)s)."
                    )
                    % {"attribute": attribute, "known": ", ".join(MAPPABLE_USER_ATTRIBUTES)}
                )
    if attribute_errors:
        errors["claim_attributes"] = attribute_errors
    return errors


@transaction.atomic
def set_claim_mapping(
    *,
    client: Client,
    actor: Any,
    roles_claim: str | None = None,
    groups_filter: str | None = None,
    groups_prefix: str | None = None,
    claim_groups: Iterable[Group] | None = None,
    claim_attributes: Mapping[str, str] | None = None,
    request: HttpRequest | None = None,
) -> list[str]:
    """Change what the app's tokens carry beyond the scopes' claims; None leaves a part as it
    is. Validates the whole result first. Returns the changed fields (sorted)."""
    stored = Client.objects.select_for_update().get(pk=client.pk)
    current_groups = set(stored.claim_groups.values_list("pk", flat=True))
    new: dict[str, Any] = {
        "roles_claim": stored.roles_claim if roles_claim is None else roles_claim.strip(),
        "groups_filter": stored.groups_filter if groups_filter is None else groups_filter,
        "groups_prefix": stored.groups_prefix if groups_prefix is None else groups_prefix,
        "claim_attributes": (
            dict(stored.claim_attributes or {})
            if claim_attributes is None
            else dict(claim_attributes)
        ),
    }
    errors = claim_mapping_errors(**new)
    if errors:
        raise ValidationError(errors)
    groups = None if claim_groups is None else list(claim_groups)
    changed = sorted(name for name, value in new.items() if getattr(stored, name) != value)
    if groups is not None and {group.pk for group in groups} != current_groups:
        changed = sorted([*changed, "claim_groups"])
    if not changed:
        return []
    before_names = sorted(stored.claim_groups.values_list("name", flat=True))
    for name, value in new.items():
        setattr(stored, name, value)
        setattr(client, name, value)
    stored.save(update_fields=[*new, "updated"])
    if groups is not None:
        stored.claim_groups.set(groups)
    invalidate_clients()
    extra: dict[str, Any] = {
        name: new[name] for name in changed if name in new and name != "claim_attributes"
    }
    if "claim_attributes" in changed:
        extra["claim_attributes"] = new["claim_attributes"]
    if "claim_groups" in changed:
        extra["claim_groups"] = {
            "before": before_names,
            "after": sorted(group.name for group in groups or []),
        }
    _audit_access(
        client=stored,
        actor=actor,
        request=request,
        change="claim_mapping",
        fields=changed,
        **extra,
    )
    return changed


# --- Registry as code: import (export is `selectors.registry()`)

REGISTRY_VERSION = 1
# Keys of an exported entry and the editable field each one sets.
REGISTRY_FIELD_FOR_KEY = {
    **{field: field for field in EDITABLE_FIELDS if field not in ("allowed_scopes", "algorithm")},
    "scopes": "allowed_scopes",
    # OIDC Dynamic Client Registration calls it id_token_signed_response_alg; null for a service.
    "id_token_algorithm": "algorithm",
}
# Who may use the app, its roles and claim mapping (selectors.access_entry); a key left out of
# an entry leaves that part of the app as it is.
ACCESS_KEYS = ("access_policy", "assigned_groups", "assigned_users", "roles", "claim_mapping")
CLAIM_MAPPING_KEYS = ("roles_claim", "groups_filter", "groups_prefix", "groups", "attributes")
# A SAML app's entry also carries its service provider (selectors.saml_entry) under "saml".
REGISTRY_KEYS = {"client_id", "kind", "is_active", "saml", *REGISTRY_FIELD_FOR_KEY, *ACCESS_KEYS}


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
    return problems + _access_type_problems(entry) + _saml_type_problems(entry)


def _saml_type_problems(entry: Mapping[str, Any]) -> list[str]:
    if entry.get("kind") != Client.Kind.SAML:
        return ["saml is only for a SAML app"] if "saml" in entry else []
    saml = entry.get("saml")
    if not isinstance(saml, dict):
        return ["a SAML app needs its saml object (entity_id, acs_urls, …)"]
    problems = []
    unknown = sorted(set(saml) - set(SAML_SP_FIELDS))
    if unknown:
        problems.append(f"saml: unknown keys {', '.join(unknown)}")
    for key, value in saml.items():
        if key in ("want_authn_requests_signed", "sign_response") and not isinstance(value, bool):
            problems.append(f"saml.{key} must be true or false")
        elif key in ("entity_id", "slo_url", "slo_binding", "nameid_format", "metadata_url") and (
            not isinstance(value, str)
        ):
            problems.append(f"saml.{key} must be a string")
        elif key == "certificates" and not _is_names(value):
            problems.append("saml.certificates must be a list of PEM strings")
        elif key == "acs_urls" and not (
            isinstance(value, list) and all(isinstance(acs, dict) for acs in value)
        ):
            problems.append("saml.acs_urls must be a list of objects")
        elif key == "attribute_names" and not isinstance(value, dict):
            problems.append("saml.attribute_names must be an object")
    if "entity_id" not in saml or "acs_urls" not in saml:
        problems.append("saml needs entity_id and acs_urls")
    return problems


def _import_new_saml_app(
    *, entry: Mapping[str, Any], values: Mapping[str, Any], actor: Any
) -> Client:
    """A SAML app an import creates: by hand from its saml object, then the rest of the entry
    through update_client (which refuses OAuth settings on a SAML app)."""
    saml = dict(entry["saml"])
    metadata_url = saml.pop("metadata_url", "")
    app_fields = {field: value for field, value in values.items() if field in SAML_APP_FIELDS}
    app_fields.pop("name", None)
    client = register_saml_app(
        actor=actor,
        client_id=entry["client_id"],
        name=entry["name"],
        entity_id=saml.pop("entity_id"),
        acs_urls=saml.pop("acs_urls"),
        certificates=saml.pop("certificates", None),
        **saml,
        **app_fields,
    )
    if metadata_url:
        update_saml_sp(client=client, actor=actor, changes={"metadata_url": metadata_url})
    update_client(client=client, actor=actor, changes=values)
    return client


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _access_type_problems(entry: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    policy = entry.get("access_policy", Client.AccessPolicy.OPEN)
    if policy not in Client.AccessPolicy.values:
        problems.append(f"access_policy must be {' or '.join(Client.AccessPolicy.values)}")
    for key in ("assigned_groups", "assigned_users"):
        if key in entry and not _is_names(entry[key]):
            problems.append(f"{key} must be a list of strings")
    roles = entry.get("roles", [])
    if not isinstance(roles, list):
        problems.append("roles must be a list of objects")
        roles = []
    for index, role in enumerate(roles):
        where = f"roles[{index}]"
        if not isinstance(role, dict) or not isinstance(role.get("name"), str):
            problems.append(f"{where} must be an object with a name")
            continue
        unknown = sorted(set(role) - {"name", "description", "groups", "users"})
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(unknown)}")
        if not isinstance(role.get("description", ""), str):
            problems.append(f"{where}: description must be a string")
        for key in ("groups", "users"):
            if not _is_names(role.get(key, [])):
                problems.append(f"{where}: {key} must be a list of strings")
        try:
            validate_role_name(role["name"])
        except ValidationError as exc:
            problems.extend(f"{where}: {message}" for message in exc.messages)
    mapping = entry.get("claim_mapping", {})
    if not isinstance(mapping, dict):
        return [*problems, "claim_mapping must be an object"]
    unknown = sorted(set(mapping) - set(CLAIM_MAPPING_KEYS))
    if unknown:
        problems.append(f"claim_mapping: unknown keys {', '.join(unknown)}")
    for key in ("roles_claim", "groups_filter", "groups_prefix"):
        if key in mapping and not isinstance(mapping[key], str):
            problems.append(f"claim_mapping.{key} must be a string")
    if "groups" in mapping and not _is_names(mapping["groups"]):
        problems.append("claim_mapping.groups must be a list of strings")
    attributes = mapping.get("attributes", {})
    if not isinstance(attributes, dict) or not all(
        isinstance(value, str) for value in attributes.values()
    ):
        problems.append("claim_mapping.attributes must map claim names to attribute names")
    return problems


@dataclass
class _AccessPlan:
    """An entry's access keys with its group names and usernames looked up."""

    policy: str | None
    groups: dict[str, Group] | None
    users: dict[str, Any] | None
    roles: list[tuple[str, str | None, list[Group], list[Any]]] | None
    claims: dict[str, Any]


def _access_plan(entry: Mapping[str, Any]) -> _AccessPlan:
    """Resolve an entry's names; raises ValidationError naming every unknown group and user."""
    mapping = entry.get("claim_mapping", {})
    roles = entry.get("roles")
    group_names = set(entry.get("assigned_groups", [])) | set(mapping.get("groups", []))
    usernames = set(entry.get("assigned_users", []))
    for role in roles or []:
        group_names.update(role.get("groups", []))
        usernames.update(role.get("users", []))
    found_groups = {group.name: group for group in Group.objects.filter(name__in=group_names)}
    user_model = get_user_model()
    found_users = {
        user.get_username(): user
        for user in user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__in": usernames})
    }
    unknown = [f"no group named {name!r}" for name in sorted(group_names - set(found_groups))]
    unknown += [f"no user named {name!r}" for name in sorted(usernames - set(found_users))]
    if unknown:
        raise ValidationError(unknown)

    def groups(names: Iterable[str]) -> list[Group]:
        return [found_groups[name] for name in sorted(set(names))]

    def users(names: Iterable[str]) -> list[Any]:
        return [found_users[name] for name in sorted(set(names))]

    claims: dict[str, Any] = {
        key: mapping[key]
        for key in ("roles_claim", "groups_filter", "groups_prefix")
        if key in mapping
    }
    if "groups" in mapping:
        claims["claim_groups"] = groups(mapping["groups"])
    if "attributes" in mapping:
        claims["claim_attributes"] = mapping["attributes"]
    return _AccessPlan(
        policy=entry.get("access_policy"),
        groups=(
            {g.name: g for g in groups(entry["assigned_groups"])}
            if "assigned_groups" in entry
            else None
        ),
        users=(
            {u.get_username(): u for u in users(entry["assigned_users"])}
            if "assigned_users" in entry
            else None
        ),
        roles=(
            None
            if roles is None
            else [
                (
                    role["name"],
                    role.get("description"),
                    groups(role.get("groups", [])),
                    users(role.get("users", [])),
                )
                for role in roles
            ]
        ),
        claims=claims,
    )


def _assigned_names(client: Client) -> tuple[set[str], set[str]]:
    rows = Assignment.objects.filter(client=client).select_related("group", "user")
    return (
        {row.group.name for row in rows if row.group is not None},
        {row.user.get_username() for row in rows if row.user is not None},
    )


def access_widenings(*, client: Client, plan: _AccessPlan) -> list[str]:
    """How applying `plan` would let more people use `client` (refused on import unless
    forced, like wider scopes): opening an assigned app, or assigning it to more groups or
    users while it stays assigned."""
    if client.access_policy != Client.AccessPolicy.ASSIGNED:
        return []  # an open app's audience cannot grow
    if plan.policy == Client.AccessPolicy.OPEN:
        return ["opens the app to every active account"]
    groups, users = _assigned_names(client)
    reasons = [
        f"assigns the app to group {name} (more people may use it)"
        for name in sorted(set(plan.groups or {}) - groups)
    ]
    reasons += [
        f"assigns the app to user {name} (more people may use it)"
        for name in sorted(set(plan.users or {}) - users)
    ]
    return reasons


def _apply_access(*, client: Client, plan: _AccessPlan, actor: Any) -> list[str]:
    """Make the app's access, roles and claim mapping match `plan`; the parts that changed."""
    changed: list[str] = []
    groups, users = _assigned_names(client)
    moved = False
    # Assignments before the policy: an app switching to `assigned` is never briefly empty.
    if plan.groups is not None:
        for name, group in plan.groups.items():
            if name not in groups:
                assign(client=client, group=group, actor=actor)
                moved = True
    if plan.users is not None:
        for name, user in plan.users.items():
            if name not in users:
                assign(client=client, user=user, actor=actor)
                moved = True
    stale = Assignment.objects.filter(client=client).select_related("group", "user")
    for row in stale:
        old_group, old_user = row.group, row.user
        if plan.groups is not None and old_group is not None and old_group.name not in plan.groups:
            moved |= unassign(client=client, group=old_group, actor=actor).changed
        if (
            plan.users is not None
            and old_user is not None
            and old_user.get_username() not in plan.users
        ):
            moved |= unassign(client=client, user=old_user, actor=actor).changed
    if moved:
        changed.append("assignments")
    if (
        plan.policy is not None
        and set_access_policy(client=client, policy=plan.policy, actor=actor).changed
    ):
        changed.append("access_policy")
    if plan.roles is not None and _apply_roles(client=client, roles=plan.roles, actor=actor):
        changed.append("roles")
    if plan.claims and set_claim_mapping(client=client, actor=actor, **plan.claims):
        changed.append("claim_mapping")
    return changed


def _apply_roles(
    *,
    client: Client,
    roles: list[tuple[str, str | None, list[Group], list[Any]]],
    actor: Any,
) -> bool:
    moved = False
    wanted = {name for name, *_rest in roles}
    for role in AppRole.objects.filter(client=client).exclude(name__in=wanted):
        delete_role(role=role, actor=actor)
        moved = True
    for name, description, groups, users in roles:
        existing = AppRole.objects.filter(client=client, name=name).first()
        if existing is None or (
            description is not None and existing.description != description.strip()
        ):
            moved = True
        role = define_role(client=client, name=name, description=description, actor=actor)
        grants = list(role.grants.select_related("group", "user"))
        have_groups = {grant.group_id for grant in grants if grant.group_id is not None}
        have_users = {grant.user_id for grant in grants if grant.user_id is not None}
        for group in groups:
            if group.pk not in have_groups:
                grant_role(role=role, group=group, actor=actor)
                moved = True
        for user in users:
            if user.pk not in have_users:
                grant_role(role=role, user=user, actor=actor)
                moved = True
        for grant in grants:
            if grant.group is not None and grant.group.pk not in {g.pk for g in groups}:
                moved |= revoke_role(role=role, group=grant.group, actor=actor)
            if grant.user is not None and grant.user.pk not in {u.pk for u in users}:
                moved |= revoke_role(role=role, user=grant.user, actor=actor)
    return moved


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
                plan = _access_plan(entry)
                if existing is None and entry["kind"] == Client.Kind.SAML:
                    client = _import_new_saml_app(entry=entry, values=values, actor=actor)
                    _apply_access(client=client, plan=plan, actor=actor)
                    if entry.get("is_active") is False:
                        disable_client(client=client, actor=actor)
                    report.created.append((client_id, ""))
                    continue
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
                    _apply_access(client=client, plan=plan, actor=actor)
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
                weakened += access_widenings(client=existing, plan=plan)
                saml_changes: dict[str, Any] = {}
                if existing.kind == Client.Kind.SAML:
                    sp = _saml_sp(existing)
                    saml_changes = _sp_changes(sp, entry["saml"])
                    weakened += saml_weakenings(sp=sp, after=saml_changes)
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
                if saml_changes:
                    fields += [
                        f"saml.{field}"
                        for field in update_saml_sp(
                            client=existing, actor=actor, changes=saml_changes
                        )
                    ]
                fields += _apply_access(client=existing, plan=plan, actor=actor)
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
