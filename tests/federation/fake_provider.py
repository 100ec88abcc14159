"""A tiny hand-made OpenID Provider on http.server, for the malformed-answer cases only (an
unsigned or wrong-audience ID token, a wrong nonce, an unverified address...): the real upstream
(a second instance of this IdP) never sends those. Each test sets the answers it needs."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "idp-under-test"
CLIENT_SECRET = "fake-provider-client-secret"


class FakeProvider:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "fake-1"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.id_token = ""
        self.subject = "fake-user-1"
        self.userinfo: dict[str, Any] = {}
        self.discovery_status = 200
        self.token_requests: list[str] = []
        self.issuer = self.url

    def start(self) -> FakeProvider:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self, email: str = "erin@corp.example", verified: bool = True) -> None:
        self.id_token = ""
        self.token_requests = []
        self.discovery_status = 200
        self.issuer = self.url
        self.userinfo = {
            "sub": self.subject,
            "email": email,
            "email_verified": verified,
            "preferred_username": "erin",
            "given_name": "Erin",
            "family_name": "Fake",
        }

    @property
    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def claims(self, nonce: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "sub": self.subject,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            **{key: self.userinfo.get(key) for key in ("email", "email_verified")},
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any], **kwargs: Any) -> str:
        return jwt.encode(claims, self.key, "RS256", headers={"kid": self.kid}, **kwargs)

    def document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        }


def _handler(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _json(self, value: Any, status: int = 200, headers: dict[str, str] | None = None):
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, header in (headers or {}).items():
                self.send_header(name, header)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/.well-known/openid-configuration":
                if provider.discovery_status == 302:
                    self._json({}, 302, {"Location": f"{provider.url}/elsewhere"})
                else:
                    self._json(provider.document(), provider.discovery_status)
            elif path == "/jwks":
                self._json(provider.jwks)
            elif path == "/userinfo":
                self._json(provider.userinfo)
            else:
                self._json({"error": "not_found"}, 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            provider.token_requests.append(body)
            self._json(
                {
                    "access_token": "fake-access-token",
                    "token_type": "Bearer",
                    "expires_in": 60,
                    "id_token": provider.id_token,
                }
            )

    return Handler
