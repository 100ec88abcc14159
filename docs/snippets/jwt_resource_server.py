"""An API that verifies the IdP's JWT access tokens itself (RFC 9068), from JWKS alone.

pip install "PyJWT[crypto]". Register the API in the IdP as "API (resource server)" with its
audience (`manage.py clients create --kind api --audience https://orders.example.com/api`);
clients then ask for tokens with `resource=<audience>`. The keys are fetched from the IdP's
JWKS and cached; a token signed with a key the cache lacks makes PyJWKClient fetch once more,
and the IdP publishes its next key before it signs with it, so a key rotation fails no request.
A revoked token stays valid here until it expires (five minutes by default): ask the IdP's
introspection endpoint when that is too long.
"""

from __future__ import annotations

from typing import Any

import jwt
import requests


class InvalidToken(Exception):
    """Answer 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1)."""


class JwtValidator:
    def __init__(self, issuer: str, audience: str) -> None:
        metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        metadata.raise_for_status()
        self.issuer = issuer
        self.audience = audience
        self.keys = jwt.PyJWKClient(metadata.json()["jwks_uri"], cache_keys=True, lifespan=300)

    def validate(self, authorization_header: str | None) -> dict[str, Any]:
        """The token's claims (`sub`, `client_id`, `scope`, `roles`, …); raises InvalidToken."""
        kind, _, token = (authorization_header or "").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise InvalidToken("send Authorization: Bearer <access token>")
        try:
            # RFC 9068 §4: the type is at+jwt, the issuer and audience are ours, RS256 only.
            if jwt.get_unverified_header(token).get("typ") != "at+jwt":
                raise InvalidToken("not a JWT access token")
            key = self.keys.get_signing_key_from_jwt(token)
            return jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "client_id", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from error
