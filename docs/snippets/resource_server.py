"""An API that accepts the IdP's access tokens asks the IdP whether a token is active
(OAuth 2.0 Token Introspection, RFC 7662).

pip install requests. Register the API as a client with "resource server" ticked: only those
may introspect tokens issued to other apps. Access tokens are opaque; never parse them.
"""

from __future__ import annotations

import time
from typing import Any

import requests


class InvalidToken(Exception):
    """Answer 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1)."""


class InsufficientScope(Exception):
    """Answer 403 with `WWW-Authenticate: Bearer error="insufficient_scope"`."""


class TokenValidator:
    def __init__(self, issuer: str, client_id: str, client_secret: str) -> None:
        metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        metadata.raise_for_status()
        self.introspection_endpoint = metadata.json()["introspection_endpoint"]
        self.auth = (client_id, client_secret)

    def introspect(self, token: str) -> dict[str, Any]:
        response = requests.post(
            self.introspection_endpoint,
            data={"token": token, "token_type_hint": "access_token"},
            auth=self.auth,
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def validate(self, authorization_header: str | None, *, scope: str = "") -> dict[str, Any]:
        """The token's introspection answer when the request may proceed; raises otherwise."""
        kind, _, token = (authorization_header or "").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise InvalidToken("send Authorization: Bearer <access token>")
        answer = self.introspect(token.strip())
        if not answer.get("active"):
            raise InvalidToken("the token is expired, revoked or unknown")
        if "exp" in answer and answer["exp"] < time.time():
            raise InvalidToken("the token is expired")
        if scope and scope not in answer.get("scope", "").split():
            raise InsufficientScope(f"the token lacks the {scope!r} scope")
        return answer
