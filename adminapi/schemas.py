"""The API's request and response bodies (pydantic, through django-ninja): the OpenAPI
document's schemas come from these. Request bodies refuse unknown fields (400)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

from idp.input_limits import holds_nul


class In(Schema):
    """A request body: an unknown field is an error, never silently ignored, and no value holds
    a NUL character (idp/input_limits.py: PostgreSQL could not store it)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if holds_nul(value):
            raise ValueError("may not contain NUL characters")
        return value


class ProblemOut(Schema):
    """RFC 9457 problem details (application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = None


# --- People


class UserOut(Schema):
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    employee_id: str
    department: str
    job_title: str
    is_active: bool
    is_staff: bool
    is_superuser: bool
    password_reset_required: bool
    date_joined: datetime
    last_login: datetime | None
    groups: list[str]


class UserPage(Schema):
    items: list[UserOut]
    next_cursor: str | None


class UserCreate(In):
    username: str = Field(max_length=150)
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    employee_id: str = ""
    department: str = ""
    job_title: str = ""
    # Without a password the person is emailed a link to choose one (an email is then needed).
    password: str | None = None
    is_staff: bool = False
    is_superuser: bool = False


class UserUpdate(In):
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    employee_id: str | None = None
    department: str | None = None
    job_title: str | None = None
    is_active: bool | None = None
    is_staff: bool | None = None
    is_superuser: bool | None = None
    password_reset_required: bool | None = None


class CountOut(Schema):
    count: int


class RevokedOut(Schema):
    revoked: dict[str, int]


# --- Groups


class GroupOut(Schema):
    id: int
    name: str
    description: str
    parent: str | None
    member_count: int


class GroupPage(Schema):
    items: list[GroupOut]
    next_cursor: str | None


class GroupCreate(In):
    name: str
    parent: str | None = None
    description: str = ""


class GroupUpdate(In):
    name: str | None = None
    # null: top-level. Leave out to keep the parent.
    parent: str | None = None
    description: str | None = None


class MembersIn(In):
    usernames: list[str] = Field(min_length=1, max_length=1000)


class MembersOut(Schema):
    usernames: list[str]


# --- Client apps


class ClientOut(Schema):
    """One app as registry-as-code (`manage.py clients export`): never a secret."""

    client_id: str
    kind: str
    name: str
    description: str
    is_active: bool
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    scopes: list[str]
    is_trusted: bool
    requires_mfa: bool
    require_pkce: bool
    require_pushed_authorization_requests: bool = False
    require_dpop: bool = False
    # FAPI 2.0 Security Profile: PAR + PKCE + private_key_jwt + DPoP (needs jwks or jwks_uri).
    high_security: bool = False
    is_resource_server: bool
    logo_uri: str
    client_uri: str
    policy_uri: str
    tos_uri: str
    initiate_login_uri: str
    owner_contact: str
    access_token_lifetime: int | None
    id_token_lifetime: int | None
    refresh_token_idle_lifetime: int | None
    refresh_token_absolute_lifetime: int | None
    backchannel_logout_uri: str
    backchannel_logout_session_required: bool
    frontchannel_logout_uri: str
    allow_private_network: bool
    id_token_algorithm: str | None
    access_policy: str
    assigned_groups: list[str]
    assigned_users: list[str]
    roles: list[dict[str, Any]]
    claim_mapping: dict[str, Any]
    # An API's audience (RFC 9068); the public keys of a client that authenticates with
    # private_key_jwt (RFC 7523), inline or by URL.
    audience: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_uri: str = ""
    saml: dict[str, Any] | None = None


class ClientPage(Schema):
    items: list[ClientOut]
    next_cursor: str | None


class ClientCreated(Schema):
    client: ClientOut
    # Shown once: only its keyed hash is stored. "" for a public client (SPA, native).
    client_secret: str


class ClientCreate(In):
    kind: Literal["web", "spa", "native", "service", "device", "api"]
    name: str
    client_id: str | None = None
    description: str = ""
    redirect_uris: list[str] = []
    post_logout_redirect_uris: list[str] = []
    # Default: openid profile email for an app that signs people in, none for a service.
    scopes: list[str] | None = None
    is_trusted: bool = False
    requires_mfa: bool = False
    require_pkce: bool = True
    require_pushed_authorization_requests: bool = False
    require_dpop: bool = False
    # FAPI 2.0 Security Profile: PAR + PKCE + private_key_jwt + DPoP (needs jwks or jwks_uri).
    high_security: bool = False
    is_resource_server: bool = False
    logo_uri: str = ""
    client_uri: str = ""
    policy_uri: str = ""
    tos_uri: str = ""
    initiate_login_uri: str = ""
    owner_contact: str = ""
    access_token_lifetime: int | None = None
    id_token_lifetime: int | None = None
    refresh_token_idle_lifetime: int | None = None
    refresh_token_absolute_lifetime: int | None = None
    backchannel_logout_uri: str = ""
    backchannel_logout_session_required: bool = False
    frontchannel_logout_uri: str = ""
    allow_private_network: bool = False
    id_token_algorithm: Literal["RS256", "ES256"] | None = None
    # kind `api`: the audience clients ask tokens for (`resource`); its tokens are JWTs.
    audience: str | None = None
    # A client without a shared secret: its public keys (a JWK Set), or the URL serving them.
    jwks: dict[str, Any] | None = None
    jwks_uri: str = ""


class SamlClientCreate(In):
    """A SAML 2.0 app: from its metadata (the XML, or a URL fetched safely) or by hand (entity
    ID, ACS URLs and certificates)."""

    name: str
    client_id: str | None = None
    metadata_xml: str | None = None
    metadata_url: str | None = None
    entity_id: str | None = None
    acs_urls: list[str] | None = None
    certificates: list[str] | None = None
    slo_url: str = ""
    want_authn_requests_signed: bool | None = None
    sign_response: bool = False
    nameid_format: str | None = None
    attribute_names: dict[str, str] | None = None
    description: str = ""
    requires_mfa: bool = False
    owner_contact: str = ""
    allow_private_network: bool = False


class ClientUpdate(In):
    name: str | None = None
    description: str | None = None
    redirect_uris: list[str] | None = None
    post_logout_redirect_uris: list[str] | None = None
    scopes: list[str] | None = None
    is_trusted: bool | None = None
    requires_mfa: bool | None = None
    require_pkce: bool | None = None
    require_pushed_authorization_requests: bool | None = None
    require_dpop: bool | None = None
    high_security: bool | None = None
    is_resource_server: bool | None = None
    logo_uri: str | None = None
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    initiate_login_uri: str | None = None
    owner_contact: str | None = None
    access_token_lifetime: int | None = None
    id_token_lifetime: int | None = None
    refresh_token_idle_lifetime: int | None = None
    refresh_token_absolute_lifetime: int | None = None
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool | None = None
    frontchannel_logout_uri: str | None = None
    allow_private_network: bool | None = None
    id_token_algorithm: Literal["RS256", "ES256"] | None = None
    access_policy: Literal["open", "assigned"] | None = None


class RotateIn(In):
    # How long the old secret keeps working (0: stops at once; at most 30 days).
    grace_seconds: int = Field(default=0, ge=0, le=30 * 24 * 3600)


class RotatedOut(Schema):
    client_secret: str
    previous_valid_until: datetime | None


class AssignmentIn(In):
    group: str | None = None
    username: str | None = None


class AssignmentOut(Schema):
    access_policy: str
    assigned_groups: list[str]
    assigned_users: list[str]


class RegistryOut(Schema):
    version: int
    clients: list[ClientOut]


class ImportIn(In):
    document: dict[str, Any]
    force: bool = False
    dry_run: bool = False


class ImportOut(Schema):
    dry_run: bool
    # Secrets of the clients this import created, shown once ("" in a dry run or public).
    created: list[dict[str, str]]
    updated: list[dict[str, Any]]
    enabled: list[str]
    disabled: list[str]
    unchanged: list[str]
    forced: list[dict[str, Any]]


# --- Audit


class AuditEventOut(Schema):
    id: int
    created_at: datetime
    type: str
    actor: str
    subject: str
    client: str
    ip: str | None
    user_agent: str
    extra: dict[str, Any]


class AuditPage(Schema):
    items: list[AuditEventOut]
    next_cursor: str | None


# --- Integrations: webhooks, SCIM tokens, provisioning targets


class WebhookOut(Schema):
    """A webhook subscriber: never its signing secret."""

    id: int
    name: str
    url: str
    event_types: list[str]
    allow_private_network: bool
    is_active: bool
    created_at: datetime
    updated_at: datetime


class WebhookPage(Schema):
    items: list[WebhookOut]
    next_cursor: str | None


class WebhookCreate(In):
    url: str = Field(max_length=2000)
    # Public event names (`manage.py webhooks events`; docs/guides/webhooks.md).
    event_types: list[str] = Field(max_length=200)
    name: str = Field(default="", max_length=100)
    # Only for a receiver inside the company network (or on this machine).
    allow_private_network: bool = False


class WebhookCreated(Schema):
    webhook: WebhookOut
    # Shown once (`whsec_...`, Standard Webhooks): stored encrypted, never returned again.
    secret: str


class WebhookUpdate(In):
    name: str | None = Field(default=None, max_length=100)
    url: str | None = Field(default=None, max_length=2000)
    event_types: list[str] | None = Field(default=None, max_length=200)
    is_active: bool | None = None


class SecretOut(Schema):
    # Shown once: the old secret stopped working when this one was made.
    secret: str


class ScimTokenOut(Schema):
    """A SCIM client's token: its name, reach and use, never the token (only a hash is kept;
    `prefix` is its first characters, to tell tokens apart)."""

    id: int
    name: str
    prefix: str
    read_only: bool
    users: bool
    groups: bool
    state: Literal["active", "expired", "revoked"]
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ScimTokenPage(Schema):
    items: list[ScimTokenOut]
    next_cursor: str | None


class ScimTokenCreate(In):
    name: str = Field(max_length=100)
    read_only: bool = False
    # What the token may reach: users, groups or both (at least one).
    users: bool = True
    groups: bool = True
    # Empty: never expires (revoke it when the client goes).
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ScimTokenIssued(Schema):
    scim_token: ScimTokenOut
    # Shown once: only its keyed hash is stored.
    token: str


class ProvisioningTargetOut(Schema):
    """An app's SCIM provisioning target: `token_set` says whether a bearer token is stored,
    never the token."""

    client_id: str
    base_url: str
    token_set: bool
    enabled: bool
    user_attributes: list[str]
    enterprise_extension: bool
    deprovision: Literal["deactivate", "delete"]
    created_at: datetime
    updated_at: datetime
    last_sync_at: datetime | None


class ProvisioningTargetPage(Schema):
    items: list[ProvisioningTargetOut]
    next_cursor: str | None


class ProvisioningTargetIn(In):
    """The whole target (PUT): what is left out takes its default, except `token`, which is
    write-only and kept when left out (required the first time)."""

    base_url: str = Field(max_length=500)
    token: str | None = Field(default=None, max_length=4096)
    enabled: bool = True
    # Besides userName, externalId and active (always sent): name, displayName, emails, title,
    # roles.
    user_attributes: list[str] = Field(default=["name", "displayName", "emails"], max_length=20)
    enterprise_extension: bool = False
    deprovision: Literal["deactivate", "delete"] = "deactivate"


class ProvisioningChangeOut(Schema):
    """One person a sync would bring up to date at the app."""

    user_id: int
    username: str
    action: Literal["create", "update", "deactivate", "delete"]
    # The app's id for the person, when it has one.
    remote_id: str | None
    # The SCIM User resource that would be sent (create and update).
    resource: dict[str, Any] | None


class DryRunOut(Schema):
    # False: the target or the app is disabled, and a sync would send nothing.
    live: bool
    changes: list[ProvisioningChangeOut]


class SyncOut(Schema):
    # Deliveries queued for the background worker.
    queued: int
