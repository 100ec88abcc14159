"""Token-side helpers: code hashing, lifetimes, replay revocation, cheap `last_used_at` stamps.

Used by `oauth_clients.oidc.token_policy` (the validator) and the token-side views. Nothing here
sees a clear token except to hash it; nothing stores or logs one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)
from oauth2_provider.settings import oauth2_settings

from accounts.audit import record_event
from accounts.models import AuditEvent
from idp.db.prepared import PreparedLookup
from oauth_clients.access import may_use
from oauth_clients.models import Client
from oauth_clients.oidc.app_access import annotate_app_access, carry_app_access
from oauth_clients.uri_rules import DEFAULT_REFRESH_IDLE_SECONDS

# A client's `last_used_at` is written at most this often (one UPDATE per client per minute,
# not one per token request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_code(code: str) -> str:
    """SHA-256 of an authorization code: what `Grant.code` and `AccessToken.code_checksum` hold."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def access_token_lifetime(client: Client | None) -> int:
    """Seconds an access token lives: the client's own lifetime or the provider default."""
    if client is not None and client.access_token_lifetime:
        return int(client.access_token_lifetime)
    return int(oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)


def refresh_token_idle_lifetime(client: Client) -> timedelta:
    """How long a refresh token may go unused before it dies (moves on each rotation)."""
    seconds = client.refresh_token_idle_lifetime or getattr(
        settings, "IDP_REFRESH_TOKEN_IDLE_SECONDS", DEFAULT_REFRESH_IDLE_SECONDS
    )
    return timedelta(seconds=int(seconds))


def refresh_token_absolute_lifetime(client: Client) -> timedelta:
    """How long a refresh-token family lives at most, counted from the code exchange."""
    seconds = client.refresh_token_absolute_lifetime or oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS
    return timedelta(seconds=int(seconds))


def refresh_expiries(
    *, client: Client, family_expires: datetime | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """(idle expiry, absolute expiry) for a new refresh token; the idle one never passes the
    absolute one, which is fixed when the family starts (`family_expires` None) and inherited."""
    now = now or timezone.now()
    absolute = family_expires or now + refresh_token_absolute_lifetime(client)
    idle = min(now + refresh_token_idle_lifetime(client), absolute)
    return idle, absolute


# When this process last stamped each client: a cached client's `last_used_at` is as old as
# the cache entry, so without this every request would write. Keyed with the creation time too,
# so a new client reusing a deleted one's primary key starts afresh.
_stamped: dict[tuple[int, Any], datetime] = {}


def mark_client_used(client: Client, *, now: datetime | None = None) -> None:
    """Stamp `last_used_at`, at most once per `LAST_USED_RESOLUTION` (one cheap UPDATE)."""
    now = now or timezone.now()
    last = max(
        (
            d
            for d in (client.last_used_at, _stamped.get((client.pk, client.created)))
            if d is not None
        ),
        default=None,
    )
    if last is not None and timedelta(0) <= now - last < LAST_USED_RESOLUTION:
        return
    Client.objects.filter(pk=client.pk).update(last_used_at=now)
    client.last_used_at = now
    _stamped[(client.pk, client.created)] = now


@transaction.atomic
def revoke_tokens_issued_from_code(
    *, code_checksum: str, client: Client, request: Any = None, reason: str
) -> int:
    """RFC 6749 §4.1.2 / RFC 9700 §4.2.4: a code presented twice revokes what it issued.

    Every refresh-token family started from the code is revoked (so tokens rotated since are
    caught too) and every access token carrying the code's checksum is deleted. Returns the
    number of families revoked. Writes one `TOKEN_REPLAY` audit row.
    """
    access_token_model = get_access_token_model()
    refresh_token_model = get_refresh_token_model()
    families = set(
        refresh_token_model.objects.filter(access_token__code_checksum=code_checksum)
        .exclude(token_family=None)
        .values_list("token_family", flat=True)
    )
    for family in families:
        refresh_token_model.revoke_family(family)
    issued = access_token_model.objects.filter(code_checksum=code_checksum)
    user = next((token.user for token in issued.select_related("user")[:1]), None)
    issued.delete()
    record_event(
        type=AuditEvent.Type.TOKEN_REPLAY,
        request=request,
        actor=None,
        subject=user,
        client=client,
        grant="authorization_code",
        reason=reason,
        families_revoked=len(families),
    )
    return len(families)


@dataclass(frozen=True)
class RevokedCounts:
    access_tokens: int
    refresh_tokens: int
    id_tokens: int
    codes: int
    consents: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _delete_counting(queryset: Any) -> int:
    """Delete and count the queryset's own rows (delete()'s total includes cascades)."""
    return int(queryset.delete()[1].get(queryset.model._meta.label, 0))


@transaction.atomic
def revoke_tokens(
    *, user: Any = None, client: Client | None = None, sid: str | None = None
) -> RevokedCounts:
    """Make every token matching all the given filters unusable at once.

    The one revocation path for a user (deactivation, forced reset), a client (disable, revoke
    all, delete) and a browser session (`sid`: logout, ending a session). Access and ID tokens
    and unexchanged codes are deleted, so userinfo and introspection stop at once; refresh tokens
    are kept as revoked rows, which reuse detection needs; consumed codes stay so a replay can
    still be traced (RFC 6749 §4.1.2).
    """
    filters: dict[str, Any] = {}
    if user is not None:
        filters["user"] = user
    if client is not None:
        filters["application"] = client
    if sid is not None:
        if not sid:
            return RevokedCounts(access_tokens=0, refresh_tokens=0, id_tokens=0, codes=0)
        filters["sid"] = sid
    if not filters:
        raise ValueError("revoke_tokens needs a user, a client or a sid")
    refresh_model = get_refresh_token_model()
    now = timezone.now()
    live_refresh = refresh_model.objects.filter(revoked__isnull=True, **filters)
    try:
        with transaction.atomic():
            refresh_count = live_refresh.update(revoked=now, access_token=None, updated=now)
    except IntegrityError:
        # (token_checksum, revoked) is unique: fall back to DOT's row-by-row revoke, which gives
        # each row its own timestamp (the same fallback DOT's revoke_family uses).
        refresh_count = 0
        for refresh_token in refresh_model.objects.filter(revoked__isnull=True, **filters):
            refresh_token.revoke()
            refresh_count += 1
    access_count = _delete_counting(get_access_token_model().objects.filter(**filters))
    id_count = _delete_counting(get_id_token_model().objects.filter(**filters))
    code_count = _delete_counting(
        get_grant_model().objects.filter(consumed_at__isnull=True, **filters)
    )
    return RevokedCounts(
        access_tokens=access_count,
        refresh_tokens=refresh_count,
        id_tokens=id_count,
        codes=code_count,
    )


def _timestamp(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def generate_token(request: Any = None) -> str:
    """A new access or refresh token: 256 bits from the OS's CSPRNG, URL-safe (43 characters).
    DOT's ACCESS_TOKEN_GENERATOR / REFRESH_TOKEN_GENERATOR; oauthlib passes its request."""
    return secrets.token_urlsafe(32)


# Compiled once per process (idp/db/prepared.py says why): a token by checksum with its
# user and client in one row (fresher and cheaper than the client cache's round trip).
# Whether the token's user may still use its app comes in the same row (`annotate_app_access`).
_INTROSPECT_ACCESS_TOKEN = PreparedLookup(
    lambda checksum: annotate_app_access(
        get_access_token_model()
        .objects.select_related("user", "application")
        .filter(token_checksum=checksum),
        roles=False,
    )[:1]
)
_INTROSPECT_REFRESH_TOKEN = PreparedLookup(
    lambda checksum: annotate_app_access(
        get_refresh_token_model()
        .objects.select_related("access_token", "user", "application")
        .filter(token_checksum=checksum, revoked__isnull=True),
        roles=False,
    )[:1]
)


def token_checksum(token: str) -> str:
    """SHA-256 of a token: what `AccessToken.token_checksum`/`RefreshToken.token_checksum` hold
    (DOT's checksum; lone surrogates from a hostile body hash instead of raising)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def plausible_client_id(client_id: Any) -> bool:
    """Whether `client_id` can name a client at all and is worth a lookup: a string without NUL
    (psycopg 3 raises DataError on one, a 500) and at most 255 characters (the column)."""
    return isinstance(client_id, str) and "\x00" not in client_id and len(client_id) <= 255


def _introspection_order(token_type_hint: str | None) -> list[str]:
    """RFC 7662 §2.1: the hint's kind first, then the other one."""
    if token_type_hint == "refresh_token":  # noqa: S105 (a hint name, not a secret)
        return ["refresh_token", "access_token"]
    return ["access_token", "refresh_token"]


# Introspection's caller, read fresh from the database, so a disabled client or a rotated
# secret counts at once, without the client cache's Redis round trip.
_CLIENT_BY_ID = PreparedLookup(lambda client_id: Client.objects.filter(client_id=client_id)[:1])
_TOKEN_BY_KIND = {
    "access_token": _INTROSPECT_ACCESS_TOKEN,
    "refresh_token": _INTROSPECT_REFRESH_TOKEN,
}


@dataclass(frozen=True)
class IntrospectionLookup:
    """The registered client named `client_id` (not yet authenticated) and what the first
    lookup of the token found: `token_kind` and the row, or None when it is not that kind."""

    client: Client
    token_kind: str
    found: Any


def load_caller_with_token(
    *, client_id: str, token: str, token_type_hint: str | None
) -> IntrospectionLookup | None:
    """The client `client_id` and the token (of the hint's kind, else an access token); None
    when no client has that id. The client is not authenticated here."""
    client = cast("Client | None", _CLIENT_BY_ID.first(client_id, Client))
    if client is None:
        return None
    kind = _introspection_order(token_type_hint)[0]
    model = get_access_token_model() if kind == "access_token" else get_refresh_token_model()
    found = _TOKEN_BY_KIND[kind].first(token_checksum(token), model)
    return IntrospectionLookup(client=client, token_kind=kind, found=found)


def introspect_token(
    *,
    token: str,
    token_type_hint: str | None,
    caller: Client,
    looked_up: tuple[str, Any] | None = None,
) -> dict[str, Any]:
    """RFC 7662 §2.2 answer for `token` as seen by the authenticated client `caller`.

    `looked_up` is (kind, row or None) of a lookup already made for this token
    (`load_caller_with_token`), so it is not repeated.

    Active only when the token exists, is unexpired and unrevoked, its client and user are
    still active, the user may still use the client (`oauth_clients.access.may_use`), and it
    was issued to `caller` — or `caller` is a resource server an admin
    marked as allowed to introspect any token. Anything else is `{"active": false}`, so the
    answer never tells a client whether someone else's token exists.
    """
    inactive: dict[str, Any] = {"active": False}
    checksum = token_checksum(token)
    now = timezone.now()
    access_token_model = get_access_token_model()
    refresh_token_model = get_refresh_token_model()
    for kind in _introspection_order(token_type_hint):
        if kind == "access_token":
            if looked_up is not None and looked_up[0] == kind:
                found = looked_up[1]
            else:
                found = _INTROSPECT_ACCESS_TOKEN.first(checksum, access_token_model)
            if found is None:
                continue
            expires = found.expires
            scope = found.scope
            token_type = "Bearer"  # noqa: S105 (RFC 6750 token type name)
        else:
            if looked_up is not None and looked_up[0] == kind:
                found = looked_up[1]
            else:
                found = _INTROSPECT_REFRESH_TOKEN.first(checksum, refresh_token_model)
            if found is None or found.access_token is None:
                continue
            candidates = [d for d in (found.expires, found.family_expires) if d is not None]
            expires = min(candidates) if candidates else None
            scope = found.access_token.scope
            token_type = "refresh_token"  # noqa: S105 (RFC 7662 token type hint value)
        carry_app_access(found)
        application, user = found.application, found.user
        if (
            (expires is not None and expires <= now)
            or application is None
            or not application.is_active
            or (user is not None and not user.is_active)
            or (application.pk != caller.pk and not caller.is_resource_server)
            # A person who may no longer use the app (answered with the token's row).
            or (user is not None and not may_use(user=user, client=application))
            # FAPI 2.0 Security Profile §5.3.2.1: a high-security app's access tokens are
            # sender-constrained; an unbound one (issued before the switch) is not active.
            or (kind == "access_token" and application.high_security and not found.dpop_jkt)
        ):
            return inactive
        data: dict[str, Any] = {
            "active": True,
            "scope": scope,
            "client_id": application.client_id,
            "token_type": token_type,
            "iat": _timestamp(found.created),
            "iss": settings.IDP_ISSUER,
        }
        if expires is not None:
            data["exp"] = _timestamp(expires)
        if user is not None:
            data["sub"] = str(user.pk)
            data["username"] = user.get_username()
        if kind == "access_token" and found.dpop_jkt:
            # RFC 9449 §6.2: a bound token's type and the thumbprint of its key.
            data["token_type"] = "DPoP"  # noqa: S105 (RFC 9449 token type name)
            data["cnf"] = {"jkt": found.dpop_jkt}
        return data
    return inactive
