"""Helpers for the `private_key_jwt` tests: a client's key pair and assertions, and a JWKS
server on 127.0.0.1 whose answers a test sets (a set of keys, a redirect)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class ClientKey:
    """A client's private key and its public JWK (with a kid)."""

    private: Any
    kid: str
    alg: str

    @classmethod
    def rsa(cls, kid: str | None = None, alg: str = "RS256") -> ClientKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(private=key, kid=kid or uuid.uuid4().hex[:12], alg=alg)

    @classmethod
    def ec(cls, kid: str | None = None) -> ClientKey:
        return cls(
            private=ec.generate_private_key(ec.SECP256R1()),
            kid=kid or uuid.uuid4().hex[:12],
            alg="ES256",
        )

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.get_default_algorithms()[self.alg]
        data = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}

    def private_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def assertion(
        self, client_id: str, audience: str, *, lifetime: int = 60, **overrides: Any
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + lifetime,
            **overrides,
        }
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid})


def jwks_of(*keys: ClientKey) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


@dataclass
class JwksServer:
    """What the server answers, per path: (status, headers, body)."""

    base: str = ""
    answers: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def serve(self, path: str, document: dict[str, Any]) -> str:
        body = json.dumps(document).encode()
        self.answers[path] = (200, {"Content-Type": "application/json"}, body)
        return self.base + path

    def redirect(self, path: str, to: str) -> str:
        self.answers[path] = (302, {"Location": to}, b"")
        return self.base + path


def run_jwks_server() -> Iterator[JwksServer]:
    """A JWKS server on 127.0.0.1 for as long as the generator lives (a fixture's body)."""
    state = JwksServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            status, headers, body = state.answers.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
