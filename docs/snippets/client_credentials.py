"""A machine-to-machine service gets its own access token (OAuth 2.0 client credentials).

pip install requests. Register the service in the IdP admin as "Machine-to-machine service";
it gets a client id and secret and no user scopes (it acts for no person).
"""

from __future__ import annotations

import time
from typing import Any

import requests


class ServiceTokens:
    """Fetches a token with the service's credentials and reuses it until shortly before expiry."""

    def __init__(self, issuer: str, client_id: str, client_secret: str) -> None:
        metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        metadata.raise_for_status()
        self.token_endpoint = metadata.json()["token_endpoint"]
        self.auth = (client_id, client_secret)
        self._token: dict[str, Any] | None = None
        self._expires_at = 0.0

    def access_token(self) -> str:
        if self._token is None or time.monotonic() > self._expires_at - 30:
            response = requests.post(
                self.token_endpoint,
                data={"grant_type": "client_credentials"},
                auth=self.auth,  # HTTP Basic: client_secret_basic
                timeout=10,
            )
            response.raise_for_status()
            self._token = response.json()
            self._expires_at = time.monotonic() + int(self._token.get("expires_in", 60))
        return self._token["access_token"]

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Call an API with the service's token as a Bearer token (RFC 6750 §2.1)."""
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.access_token()}"}
        return requests.request(method, url, headers=headers, timeout=10, **kwargs)
