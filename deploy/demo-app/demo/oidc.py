"""What the demo asks the IdP directly: discovery, its JWKS, a token refresh, the logout URL.

allauth's `openid_connect` provider runs the sign-in itself; these are the parts it does not do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

TIMEOUT = 5
CACHE_SECONDS = 300


class IdPError(RuntimeError):
    """The IdP answered with an error or not at all."""


def discovery() -> dict[str, Any]:
    """The IdP's OpenID Provider metadata (OIDC Discovery 1.0 §4), cached for five minutes."""
    metadata = cache.get("demo:discovery")
    if metadata is None:
        url = f"{settings.IDP_ISSUER}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=TIMEOUT)
            response.raise_for_status()
            metadata = response.json()
        except (requests.RequestException, ValueError) as error:
            raise IdPError(f"discovery failed: {error}") from error
        cache.set("demo:discovery", metadata, CACHE_SECONDS)
    return metadata


def jwks(*, refresh: bool = False) -> dict[str, Any]:
    """The IdP's signing keys; `refresh=True` after a key rotation (an unknown kid)."""
    keys = None if refresh else cache.get("demo:jwks")
    if keys is None:
        try:
            response = requests.get(discovery()["jwks_uri"], timeout=TIMEOUT)
            response.raise_for_status()
            keys = response.json()
        except (requests.RequestException, ValueError, KeyError) as error:
            raise IdPError(f"JWKS could not be fetched: {error}") from error
        cache.set("demo:jwks", keys, CACHE_SECONDS)
    return keys


def refresh_tokens(*, refresh_token: str) -> dict[str, Any]:
    """RFC 6749 §6: a new access token (and rotated refresh token) for the stored one."""
    try:
        response = requests.post(
            discovery()["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET),
            timeout=TIMEOUT,
        )
        body = response.json()
    except (requests.RequestException, ValueError) as error:
        raise IdPError(f"the token endpoint did not answer: {error}") from error
    if response.status_code != 200 or "access_token" not in body:
        raise IdPError(f"refresh refused: {body.get('error', response.status_code)}")
    return body


def expiry(token_response: dict[str, Any]):
    seconds = token_response.get("expires_in")
    return timezone.now() + timedelta(seconds=int(seconds)) if seconds else None


def end_session_url(*, id_token: str, state: str) -> str:
    """OpenID Connect RP-Initiated Logout 1.0 §2: where to send the browser to sign out there."""
    params = {
        "client_id": settings.OIDC_CLIENT_ID,
        "post_logout_redirect_uri": f"{settings.DEMO_BASE_URL}/",
        "state": state,
    }
    if id_token:
        params["id_token_hint"] = id_token
    return f"{discovery()['end_session_endpoint']}?{urlencode(params)}"
