"""JWT access tokens for APIs (RFC 9068): the one module that builds, signs and reads them.

An API is a client of kind `api` registered with an `audience` (RFC 8707 resource indicator). A
token request whose `resource` names it gets an `at+jwt` access token signed with the IdP's
signing key, which the API verifies against JWKS alone. Everything else keeps opaque tokens.

- Built in the token request: `generate_access_token` is the token view's access-token
  generator; it reads what the validator resolved (`grant_state(request).jwt_api`).
- Read back by introspection (`introspect_jwt`: signature, expiry, the client, the person and
  the revocation list), revocation (`revoke_jwt`: a `RevokedJwt` row keyed by `jti` until
  the token would expire) and userinfo (`userinfo_audience_ok`).

A client-credentials token for an API is written nowhere: nothing but the signature and the
deny list says whether it is valid. Code and refresh grants still store their access token's row
(the refresh token hangs off it); introspection also asks that the row still exists, so ending a
person's tokens (sign-out, deactivation, lost access) reaches their JWTs at introspection too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt as pyjwt
from django.conf import settings
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_access_token_model
from oauthlib.common import Request

from accounts.sessions import authentication_context
from oauth_clients.access import may_use, roles_for
from oauth_clients.client_cache import get_api, get_client
from oauth_clients.key_store import published_public_key, sign_jwt
from oauth_clients.keys import ES256, RS256
from oauth_clients.models import Client, RevokedJwt
from oauth_clients.oidc.grant_state import ApiRead, grant_state
from oauth_clients.oidc.tokens import generate_token, token_checksum

# RFC 9068 §2.1: the `typ` header of a JWT access token.
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 (a JOSE type name, not a secret)
# Short by default: an API that verifies tokens itself learns of a revocation only at expiry.
DEFAULT_LIFETIME_SECONDS = 300
# Claims RFC 9068 §2.2 requires in every token (and that we always put in).
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has exactly two dots; our opaque tokens (base64url) have none."""
    return token.count(".") == 2


def api_for(resources: list[str], *, read: ApiRead | None = None) -> Client | None:
    """The active API a token request names with its one `resource` (RFC 8707), or None; `read`
    is the API already read for that audience, if any (`GrantState.api_read`)."""
    if len(resources) != 1:
        return None
    api = read.api if read is not None and read.audience == resources[0] else get_api(resources[0])
    return api if api is not None and api.is_active else None


def signing_algorithm(api: Client) -> str:
    """What an API's tokens are signed with: RS256, which RFC 9068 §4 makes mandatory for every
    resource server to accept, unless the API is registered for ES256 (its `algorithm`). An
    ES256 signature costs a tenth of an RS256 one (key_store.sign_jwt), and the client-credentials
    grant of a JWT API writes nothing, so the signature is most of what it costs beyond the
    request itself (docs/performance.md). JWKS publishes both kinds of key; a resource server
    verifying by `kid` from JWKS takes either."""
    return ES256 if api.algorithm == ES256 else RS256


def lifetime_seconds(api: Client) -> int:
    """Seconds an API's tokens live: its own access-token lifetime, else five minutes."""
    return int(api.access_token_lifetime or DEFAULT_LIFETIME_SECONDS)


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a user-backed token is for, and how they signed in (RFC 9068 §2.2.1)."""

    user: Any
    auth_time: datetime | None
    amr: list[str]


def _request_subject(request: Request) -> Subject | None:
    """The person behind a code exchange or a refresh (None for client credentials)."""
    if request.grant_type == "client_credentials":
        return None
    user = getattr(request, "user", None)
    if user is None:
        return None
    grant = grant_state(request).grant
    if grant is not None:
        return Subject(user=user, auth_time=grant.auth_time, amr=list(grant.amr or []))
    previous = getattr(request, "refresh_token_instance", None)
    if previous is not None:
        return Subject(user=user, auth_time=previous.auth_time, amr=list(previous.amr or []))
    return Subject(user=user, auth_time=None, amr=[])


def build_access_token(
    *,
    api: Client,
    client: Client,
    subject: Subject | None,
    scopes: list[str],
    now: int,
    dpop_jkt: str | None = None,
) -> str:
    """RFC 9068 §2.2: the signed token for `client` to call `api`, for `subject` or for the
    client itself (client credentials: `sub` is the client id, §2.2); bound to a DPoP key by
    its thumbprint in `cnf.jkt` (RFC 9449 §6.1) when the request carried a proof."""
    claims: dict[str, Any] = {
        "iss": settings.IDP_ISSUER,
        "aud": api.audience,
        "sub": str(subject.user.pk) if subject is not None else client.client_id,
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + lifetime_seconds(api),
    }
    if dpop_jkt:
        claims["cnf"] = {"jkt": dpop_jkt}
    if subject is not None:
        if subject.auth_time is not None:
            claims["auth_time"] = int(subject.auth_time.timestamp())
        acr = authentication_context(subject.amr)
        if acr:
            claims["acr"] = acr
        # RFC 9068 §2.2.3.1 (`roles`, from RFC 7643): the person's roles in the API itself.
        roles = roles_for(user=subject.user, client=api)
        if roles:
            claims["roles"] = roles
    return sign_jwt(claims, algorithm=signing_algorithm(api), typ=ACCESS_TOKEN_TYP)


def generate_access_token(request: Request) -> str:
    """The token view's access-token generator (oauthlib's `token_generator`): a JWT when the
    validator resolved the request to an API, else an opaque token."""
    api = grant_state(request).jwt_api
    if api is None:
        return generate_token(request)
    now = int(datetime.now(UTC).timestamp())
    return build_access_token(
        api=api,
        client=request.client,
        subject=_request_subject(request),
        scopes=list(request.scopes or []),
        now=now,
        dpop_jkt=grant_state(request).dpop_jkt,
    )


def read_access_token(token: str) -> dict[str, Any] | None:
    """The claims of an `at+jwt` we signed with a published key (the signing key, a staged or
    a previous one), unexpired and from this issuer; None for anything else."""
    if not looks_like_jwt(token):
        return None
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError:
        return None
    kid = header.get("kid")
    if header.get("typ") != ACCESS_TOKEN_TYP or not isinstance(kid, str):
        return None
    found = published_public_key(kid)
    if found is None:
        return None
    key, algorithm = found
    try:
        claims: dict[str, Any] = pyjwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=settings.IDP_ISSUER,
            options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
        )
    except pyjwt.PyJWTError:
        return None
    if not all(isinstance(claims.get(name), str) for name in ("sub", "client_id", "jti", "aud")):
        return None
    return claims


def is_machine_token(claims: dict[str, Any]) -> bool:
    """A client-credentials token: its subject is the client itself (RFC 9068 §2.2)."""
    return bool(claims["sub"] == claims["client_id"])


def _user(claims: dict[str, Any]) -> Any:
    try:
        return get_user_model().objects.filter(pk=int(claims["sub"])).first()
    except (TypeError, ValueError):
        return None


def introspect_jwt(*, token: str, caller: Client) -> dict[str, Any]:
    """RFC 7662 §2.2 for an RFC 9068 token: active only when its signature verifies, it is
    unexpired, its jti is not revoked, its client and API are active, its person (if any) is
    active, may still use the client and still holds the token (its row, deleted whenever the
    IdP ends their tokens) — and `caller` is the client, the API it was issued for, or a
    resource server allowed to introspect any token."""
    inactive: dict[str, Any] = {"active": False}
    claims = read_access_token(token)
    if claims is None or RevokedJwt.objects.filter(jti=claims["jti"]).exists():
        return inactive
    client = get_client(claims["client_id"])
    api = get_api(claims["aud"])
    if client is None or not client.is_active or api is None or not api.is_active:
        return inactive
    if caller.pk not in (client.pk, api.pk) and not caller.is_resource_server:
        return inactive
    cnf = claims.get("cnf")
    bound = isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str)
    if client.high_security and not bound:
        # FAPI 2.0 Security Profile §5.3.2.1: a high-security app's tokens are
        # sender-constrained; an unbound one (issued before the switch) is not active.
        return inactive
    data: dict[str, Any] = {
        "active": True,
        "scope": claims.get("scope", ""),
        "client_id": client.client_id,
        # RFC 9449 §6.2: a bound token's type and key.
        "token_type": "DPoP" if bound else "Bearer",
        "iat": claims["iat"],
        "exp": claims["exp"],
        "iss": claims["iss"],
        "aud": claims["aud"],
        "sub": claims["sub"],
        "jti": claims["jti"],
    }
    if bound:
        data["cnf"] = {"jkt": cnf["jkt"]}  # type: ignore[index]
    if not is_machine_token(claims):
        user = _user(claims)
        if user is None or not user.is_active or not may_use(user=user, client=client):
            return inactive
        # A person's token keeps its row (the refresh token hangs off it): every way the IdP
        # ends a person's tokens (sign-out, deactivation, lost access, revoke all) deletes it.
        if (
            not get_access_token_model()
            .objects.filter(token_checksum=token_checksum(token))
            .exists()
        ):
            return inactive
        data["username"] = user.get_username()
    return data


def revoke_jwt(*, token: str, client: Client) -> dict[str, Any] | None:
    """RFC 7009 §2.1 for an RFC 9068 token of `client`: its jti denied until it would expire.
    Returns its claims, or None when it is not a valid token of this client (nothing to do)."""
    claims = read_access_token(token)
    if claims is None or claims["client_id"] != client.client_id:
        return None
    RevokedJwt.objects.get_or_create(
        jti=claims["jti"], defaults={"expires": datetime.fromtimestamp(claims["exp"], tz=UTC)}
    )
    return claims


def userinfo_audience_ok(claims: dict[str, Any]) -> bool:
    """Whether a JWT access token may be spent at userinfo: only when its audience includes
    this IdP (the issuer or the userinfo URL). An API's token is for that API alone (RFC 9068
    §4: the audience restricts where the token is accepted)."""
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    ours = {settings.IDP_ISSUER, f"{settings.IDP_ISSUER}/o/userinfo/"}
    return bool(ours & set(audiences))
