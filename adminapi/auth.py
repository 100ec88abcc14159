"""Who is calling: a service client's bearer token, checked by the token side's own lookup.

The token is read by DOT's `verify_request` through our validator (the same bearer check the
userinfo and protected-resource paths use: `oauth_clients/oidc/token_policy.py`
`validate_bearer_token`), so an unknown, expired or revoked token, a token of a disabled client
and a token presented in the query string are refused exactly as there: 401. Only a
client-credentials token of a service client counts (a person's token is no machine's); its
scopes decide the rest (403 `insufficient-scope`). A browser session cookie is never read:
authentication is this class only.

Scopes per area: `admin:<area>` reads and writes, `admin:<area>:read` reads (GET) only.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.throttling import SimpleRateThrottle
from oauth2_provider.oauth2_backends import get_oauthlib_core

from accounts.actors import ServiceActor
from adminapi.problems import Problem
from idp.client_ip import client_ip
from oauth_clients.models import Client

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM = 'Bearer realm="admin-api"'


def unauthorized(detail: str, *, presented: bool = True) -> Problem:
    """401. RFC 6750 §3.1: a request that sent no token gets the challenge without an error
    code; a token that was refused, `invalid_token`."""
    challenge = f'{REALM}, error="invalid_token"' if presented else REALM
    return Problem(
        HTTPStatus.UNAUTHORIZED,
        detail,
        code="invalid-token",
        title="A valid access token is required",
        headers={"WWW-Authenticate": challenge},
    )


def insufficient_scope(scope: str) -> Problem:
    return Problem(
        HTTPStatus.FORBIDDEN,
        f"This call needs the scope {scope}.",
        code="insufficient-scope",
        title="The token lacks a scope this call needs",
        headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'},
    )


def require_scope(actor: ServiceActor, scope: str) -> None:
    """403 unless the token carries `scope` (a read-only variant never satisfies a write)."""
    if not actor.has_scope(scope):
        raise insufficient_scope(scope)


class ServiceClientAuth(HttpBearer):
    """The bearer check of one area of the API (`users`, `clients`, `audit`)."""

    def __init__(self, area: str) -> None:
        super().__init__()
        self.area = area

    def __call__(self, request: HttpRequest) -> ServiceActor | None:
        # Without the header the framework answers its 401 (AuthenticationError): problem too.
        if not request.headers.get("Authorization"):
            raise unauthorized(
                "Send an access token: Authorization: Bearer <token>.", presented=False
            )
        return self.authenticate(request, "")

    def authenticate(self, request: HttpRequest, token: str) -> ServiceActor | None:
        valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
        access_token: Any = getattr(oauth_request, "access_token", None) if valid else None
        if access_token is None:
            raise unauthorized("The access token is invalid, expired or revoked.")
        client = access_token.application
        if access_token.user is not None or client.kind != Client.Kind.SERVICE:
            raise unauthorized("Only a service client's client-credentials token is accepted.")
        actor = ServiceActor(
            client_id=client.client_id,
            name=client.name,
            scopes=frozenset((access_token.scope or "").split()),
        )
        write = f"admin:{self.area}"
        if request.method in READ_METHODS:
            if not (actor.has_scope(write) or actor.has_scope(f"{write}:read")):
                raise insufficient_scope(f"{write}:read")
        else:
            require_scope(actor, write)
        return actor


class ApiRateThrottle(SimpleRateThrottle):
    """IDP_API_RATE_LIMIT calls per service client, counted in the shared cache like the
    sign-in limits. It runs after authentication (the framework's order), so it counts only
    calls with a valid token. The rate is read per call, not at import."""

    scope = "idp_api"

    def __init__(self) -> None:  # the parent reads the rate at construction (import time)
        self.rate = None

    def allow_request(self, request: HttpRequest) -> bool:
        self.rate = settings.IDP_API_RATE_LIMIT
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str | None:
        actor = getattr(request, "auth", None)
        ident = actor.client_id if isinstance(actor, ServiceActor) else client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
