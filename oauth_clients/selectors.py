"""Read-only queries about registered client apps: overview figures, setup facts, registry rows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_refresh_token_model,
)

from accounts.models import AuditEvent
from oauth_clients import services, uri_rules
from oauth_clients.models import Client, Consent, SamlServiceProvider

RECENT_EVENTS = 10
# An https origin as browsers serialize it (RFC 6454 §6.2: lower-case host, no default port, no
# path): anything else ("null", a path, a NUL byte) is never one of ours and costs no query.
_WEB_ORIGIN_RE = re.compile(r"https://(?:[a-z0-9.-]{1,253}|\[[0-9a-f:.]{2,45}\])(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class ClientOverview:
    last_used_at: datetime | None
    active_access_tokens: int
    active_refresh_tokens: int
    pending_codes: int
    consents: int
    distinct_users: int
    recent_events: list[AuditEvent] = field(default_factory=list)


def _live_refresh_tokens(client: Client, now: datetime) -> QuerySet[Any]:
    return get_refresh_token_model().objects.filter(
        Q(expires__isnull=True) | Q(expires__gt=now),
        Q(family_expires__isnull=True) | Q(family_expires__gt=now),
        application=client,
        revoked__isnull=True,
    )


def client_overview(*, client: Client, now: datetime | None = None) -> ClientOverview:
    """What an administrator needs before changing or stopping an app: how much it is in use."""
    now = now or timezone.now()
    access = get_access_token_model().objects.filter(application=client, expires__gt=now)
    refresh = _live_refresh_tokens(client, now)
    codes = get_grant_model().objects.filter(
        application=client, expires__gt=now, consumed_at__isnull=True
    )
    consents = Consent.objects.filter(client=client)
    users: set[Any] = set()
    for queryset in (access, refresh, consents):
        users.update(queryset.exclude(user__isnull=True).values_list("user_id", flat=True))
    return ClientOverview(
        last_used_at=client.last_used_at,
        active_access_tokens=access.count(),
        active_refresh_tokens=refresh.count(),
        pending_codes=codes.count(),
        consents=consents.count(),
        distinct_users=len(users),
        recent_events=list(
            AuditEvent.objects.filter(client=client).select_related("actor", "subject")[
                :RECENT_EVENTS
            ]
        ),
    )


def issuer() -> str:
    return str(settings.IDP_ISSUER).rstrip("/")


def setup_facts(*, client: Client) -> dict[str, Any]:
    """Everything an app developer needs to connect an app, except the secret."""
    base = issuer()
    provider_name = str(settings.IDP_COMPANY_NAME)
    provider_id = slugify(provider_name) or "company"
    return {
        "issuer": base,
        "provider_name": provider_name,
        "provider_id": provider_id,
        "secret_env": provider_id.upper().replace("-", "_") + "_OIDC_CLIENT_SECRET",
        "discovery_url": f"{base}/.well-known/openid-configuration",
        "authorization_endpoint": base + reverse("oauth2_provider:authorize"),
        "token_endpoint": base + reverse("oauth2_provider:token"),
        "device_authorization_endpoint": base + reverse("oauth2_provider:device-authorization"),
        "userinfo_endpoint": base + reverse("oauth2_provider:user-info"),
        "client_id": client.client_id,
        "kind": client.kind,
        "kind_label": client.get_kind_display(),
        "confidential": client.client_type == Client.CLIENT_CONFIDENTIAL,
        "signs_users_in": services.KIND_PROFILES[client.kind].signs_users_in,
        "redirect_uris": client.redirect_uris.split(),
        "post_logout_redirect_uris": client.post_logout_redirect_uris.split(),
        "scopes": client.allowed_scopes.split(),
        "id_token_algorithm": client.algorithm or None,
        **({"saml": saml_facts(client)} if client.kind == Client.Kind.SAML else {}),
    }


# The IdP's SAML metadata: what a SAML app is configured with.
SAML_IDP_METADATA_PATH = "/saml/metadata/"


def saml_sp(client: Client) -> SamlServiceProvider | None:
    """A SAML app's service provider (None for other apps, or before it is saved)."""
    if client.kind != Client.Kind.SAML:
        return None
    try:
        return client.saml_sp
    except SamlServiceProvider.DoesNotExist:
        return None


def saml_facts(client: Client) -> dict[str, Any]:
    """What a SAML app's administrator configures on the app's side, and what it declared."""
    sp = saml_sp(client)
    return {
        "idp_metadata_url": issuer() + SAML_IDP_METADATA_PATH,
        "entity_id": sp.entity_id if sp else None,
        "acs_urls": [acs["url"] for acs in (sp.acs_urls if sp else [])],
        "nameid_format": sp.nameid_format if sp else None,
    }


def saml_entry(sp: SamlServiceProvider) -> dict[str, Any]:
    """A service provider's settings as registry-as-code JSON (its certificates are public)."""
    return {
        "entity_id": sp.entity_id,
        "acs_urls": [dict(acs) for acs in sorted(sp.acs_urls, key=lambda acs: acs["index"])],
        "slo_url": sp.slo_url,
        "slo_binding": sp.slo_binding,
        "certificates": sp.certificate_list(),
        "want_authn_requests_signed": sp.want_authn_requests_signed,
        "sign_response": sp.sign_response,
        "nameid_format": sp.nameid_format,
        "attribute_names": dict(sorted((sp.attribute_names or {}).items())),
        "metadata_url": sp.metadata_url,
    }


def registry_entry(client: Client) -> dict[str, Any]:
    """One client as registry-as-code JSON. Never contains a secret or a secret's hash."""
    return {
        "client_id": client.client_id,
        "kind": client.kind,
        "name": client.name,
        "description": client.description,
        "is_active": client.is_active,
        "redirect_uris": client.redirect_uris.split(),
        "post_logout_redirect_uris": client.post_logout_redirect_uris.split(),
        "scopes": client.allowed_scopes.split(),
        "is_trusted": client.is_trusted,
        "requires_mfa": client.requires_mfa,
        "require_pkce": client.require_pkce,
        "require_dpop": client.require_dpop,
        # RFC 9126 §6: plain authorization requests refused; only pushed ones (PAR).
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        # FAPI 2.0 Security Profile: PAR + PKCE + private_key_jwt + DPoP, codes bound to the key.
        "high_security": client.high_security,
        "is_resource_server": client.is_resource_server,
        **{name: getattr(client, name) for name in uri_rules.INFO_URI_FIELDS},
        "owner_contact": client.owner_contact,
        **{name: getattr(client, name) for name in services.LIFETIME_FIELDS},
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "frontchannel_logout_uri": client.frontchannel_logout_uri,
        "allow_private_network": client.allow_private_network,
        "id_token_algorithm": client.algorithm or None,
        # RFC 9068: an API's audience; RFC 7523 §2.2: the keys a client authenticates with.
        "audience": client.audience,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        **access_entry(client),
        **({"saml": saml_entry(sp)} if (sp := saml_sp(client)) else {}),
    }


def _names(rows: Any) -> tuple[list[str], list[str]]:
    """(group names, usernames) of assignment or role-grant rows, sorted."""
    groups = sorted(row.group.name for row in rows if row.group is not None)
    users = sorted(row.user.get_username() for row in rows if row.user is not None)
    return groups, users


def access_entry(client: Client) -> dict[str, Any]:
    """Who may use the app, its roles and claim mapping, by group name and username."""
    assigned_groups, assigned_users = _names(client.assignments.all())
    roles = []
    for role in sorted(client.roles.all(), key=lambda role: role.name):
        groups, users = _names(role.grants.all())
        roles.append(
            {"name": role.name, "description": role.description, "groups": groups, "users": users}
        )
    return {
        "access_policy": client.access_policy,
        "assigned_groups": assigned_groups,
        "assigned_users": assigned_users,
        "roles": roles,
        "claim_mapping": {
            "roles_claim": client.roles_claim,
            "groups_filter": client.groups_filter,
            "groups_prefix": client.groups_prefix,
            "groups": sorted(group.name for group in client.claim_groups.all()),
            "attributes": dict(sorted((client.claim_attributes or {}).items())),
        },
    }


def registry() -> list[dict[str, Any]]:
    """The whole registry, ordered by client id so exports diff cleanly."""
    clients = (
        Client.objects.order_by("client_id")
        .select_related("saml_sp")
        .prefetch_related(
            "assignments__group",
            "assignments__user",
            "roles__grants__group",
            "roles__grants__user",
            "claim_groups",
        )
    )
    return [registry_entry(client) for client in clients]


def summary(client: Client) -> dict[str, Any]:
    """A short row for listings."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "kind": client.kind,
        "is_active": client.is_active,
        "is_trusted": client.is_trusted,
        "id_token_algorithm": client.algorithm or None,
        "last_used_at": client.last_used_at.isoformat() if client.last_used_at else None,
    }


def spa_origin_registered(origin: str) -> bool:
    """Whether `origin` (a browser's Origin header) is a CORS origin of an active single-page app.

    A single-page app's origins are the https origins of its redirect URIs, derived at every
    registration and change (`services._spa_origins`, kept in DOT's `allowed_origins`). One
    query over the SPA rows whose list contains the text; the exact match is made here, since
    a substring of the list is not necessarily one of its origins.
    """
    if not _WEB_ORIGIN_RE.fullmatch(origin):
        return False
    lists = Client.objects.filter(
        kind=Client.Kind.SPA, is_active=True, allowed_origins__contains=origin
    ).values_list("allowed_origins", flat=True)
    return any(origin in allowed.split() for allowed in lists)
