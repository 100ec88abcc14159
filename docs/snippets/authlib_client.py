"""Sign users in with the company IdP from any Python web app, with Authlib (OIDC code + PKCE).

pip install Authlib requests (Authlib brings joserfc, its JOSE library). Your web framework
keeps `pending` in the user's session between the two calls and sends the browser to `url`; the
IdP sends it back to your redirect URI.
"""

from __future__ import annotations

import secrets
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet


def discover(issuer: str) -> dict[str, Any]:
    """The IdP's metadata: endpoints, keys, supported features (OIDC Discovery 1.0)."""
    response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    return response.json()


def session_for(client_id: str, client_secret: str, redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        scope="openid profile email",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",  # PKCE is required by the IdP
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
    )


def start_sign_in(
    metadata: dict[str, Any], client_id: str, client_secret: str, redirect_uri: str
) -> tuple[str, dict[str, str]]:
    """Where to send the browser, and what to keep in the session until it comes back."""
    rp = session_for(client_id, client_secret, redirect_uri)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], nonce=nonce, code_verifier=verifier
    )
    return url, {"state": state, "nonce": nonce, "code_verifier": verifier}


def finish_sign_in(
    metadata: dict[str, Any],
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    callback_url: str,
    pending: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Exchange the code and verify the ID token; returns (claims, tokens).

    Raises on a wrong state, a refused code or an ID token that fails verification.
    """
    rp = session_for(client_id, client_secret, redirect_uri)
    rp.state = pending["state"]
    tokens = rp.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback_url,
        state=pending["state"],
        code_verifier=pending["code_verifier"],
    )
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    id_token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"])
    # OIDC Core §3.1.3.7: issuer, audience, expiry and the nonce we sent.
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": pending["nonce"]},
    ).validate(id_token.claims)
    claims = id_token.claims
    return dict(claims), dict(tokens)


def refresh(
    metadata: dict[str, Any], client_id: str, client_secret: str, refresh_token: str
) -> dict[str, Any]:
    """New tokens; the IdP rotates the refresh token, so store the one it returns."""
    rp = session_for(client_id, client_secret, redirect_uri="")
    return dict(rp.refresh_token(metadata["token_endpoint"], refresh_token=refresh_token))
