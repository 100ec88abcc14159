"""Helpers for the authorization-endpoint tests: build a request, read the redirect back."""

from __future__ import annotations

import secrets
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from oauth_clients.models import Client
from tests.oidc.conftest import pkce_pair

AUTHORIZE_URL = "/o/authorize/"


def issuer() -> str:
    return settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]


def authorization_params(client: Client, **overrides: Any) -> dict[str, str]:
    """A valid code+PKCE authentication request for `client`; `None` in overrides drops a key."""
    _verifier, challenge = pkce_pair()
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uris.split()[0],
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def redirect_query(response: Any, redirect_uri: str) -> dict[str, str]:
    """The query of a redirect to `redirect_uri` (asserts it is one), single values."""
    assert response.status_code == HTTPStatus.FOUND, (response.status_code, response.content[:300])
    location = response["Location"]
    assert location.split("?")[0] == redirect_uri.split("?")[0], location
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {key: values[0] for key, values in query.items()}


def assert_error_page(response: Any) -> None:
    """The branded 400 page: no redirect anywhere, our layout, a message for the user."""
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.status_code
    assert not response.has_header("Location")
    body = response.content.decode()
    assert "This sign-in request cannot be completed" in body
    assert 'class="site-header"' in body  # extends templates/base.html
