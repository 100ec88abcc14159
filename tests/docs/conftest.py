"""Helpers for the integration-kit tests: the demo app's pure modules and a signing key."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "deploy" / "demo-app"
DOCS_DIR = ROOT / "docs"
SNIPPETS_DIR = DOCS_DIR / "snippets"

ISSUER = "https://idp.example.com"
CLIENT_ID = "demo-app"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def import_demo_module(name: str) -> Any:
    """A module of the demo app that needs no Django settings (e.g. demo.logout_tokens)."""
    if str(DEMO_DIR) not in sys.path:
        sys.path.insert(0, str(DEMO_DIR))
    __import__(name)
    return sys.modules[name]


class Signer:
    """An IdP's RSA key: signs logout tokens and publishes its JWKS."""

    def __init__(self, kid: str = "key-1") -> None:
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 120,
            "jti": str(uuid.uuid4()),
            "sub": "42",
            "sid": "session-abc",
            "events": {BACKCHANNEL_EVENT: {}},
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any] | None = None, *, headers: Any = None, **kw: Any) -> str:
        header = {"kid": self.kid, "typ": "logout+jwt", **(headers or {})}
        header = {key: value for key, value in header.items() if value is not None}
        return jwt.encode(claims or self.claims(), self.private_key, "RS256", headers=header, **kw)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def load_snippet(name: str) -> Any:
    """Import docs/snippets/<name>.py as a module (the file the guide shows verbatim)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"snippet_{name}", SNIPPETS_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def provider(live_server, settings) -> str:
    """The live server is the issuer (discovery, tokens and `iss` all name it)."""
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    return live_server.url


def browser_sign_in(url: str, base: str, username: str, password: str) -> str:
    """A person's browser (requests, cookies): follow `url` to our login page, sign in, and
    return the first URL outside the IdP (the app's redirect URI with code and state)."""
    import re
    from http import HTTPStatus
    from urllib.parse import urljoin

    import requests

    browser = requests.Session()
    for _ in range(10):
        response = browser.get(url, allow_redirects=False)
        assert response.status_code in (HTTPStatus.FOUND, HTTPStatus.OK), response.text[:300]
        if response.status_code == HTTPStatus.OK:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
            assert token, response.text[:500]
            response = browser.post(
                url,
                data={
                    "csrfmiddlewaretoken": token.group(1),
                    "login": username,
                    "password": password,
                },
                headers={"Referer": url},
                allow_redirects=False,
            )
            assert response.status_code == HTTPStatus.FOUND, response.text[:300]
        url = urljoin(base, response.headers["Location"])
        if not url.startswith(base):
            return url
    raise AssertionError("redirect loop")
