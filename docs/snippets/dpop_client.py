"""A client whose tokens are bound to its own key (DPoP, RFC 9449): a stolen token is useless
without the key. pip install requests "PyJWT[crypto]".

Every request carries a fresh proof (a JWT signed with the client's key: method, URL, time, a
unique id and, with a token, the token's hash) in the `DPoP` header. The IdP answers each token
request with a `DPoP-Nonce` to put in the next proof; a client registered with `--require-dpop`
must, and its first request is answered `use_dpop_nonce`, then retried with the nonce.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec


class DPoPKey:
    """The client's key pair (keep it as long as its tokens) and the proofs it signs."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.public_jwk = json.loads(
            jwt.algorithms.ECAlgorithm.to_jwk(self.private_key.public_key())
        )

    def proof(
        self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None
    ) -> str:
        scheme, host, path, _query, _fragment = urlsplit(url)
        claims: dict[str, Any] = {
            "jti": uuid.uuid4().hex,  # never reused
            "htm": method,
            "htu": urlunsplit((scheme, host, path, "", "")),  # without query and fragment
            "iat": int(time.time()),
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode("ascii")).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        if nonce is not None:
            claims["nonce"] = nonce
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk}
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers=headers)


class DPoPClient:
    """Token requests (client_secret_basic) and API calls with DPoP-bound tokens."""

    def __init__(self, issuer: str, client_id: str, client_secret: str) -> None:
        metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        metadata.raise_for_status()
        self.metadata = metadata.json()
        self.token_endpoint = self.metadata["token_endpoint"]
        self.auth = (client_id, client_secret)
        self.key = DPoPKey()
        self.nonce: str | None = None

    def token(self, **form: str) -> dict[str, Any]:
        """POST a token request (`grant_type=client_credentials`, a refresh, …) with a proof."""
        for _attempt in range(2):
            response = requests.post(
                self.token_endpoint,
                data=form,
                auth=self.auth,
                headers={"DPoP": self.key.proof("POST", self.token_endpoint, nonce=self.nonce)},
                timeout=10,
            )
            self.nonce = response.headers.get("DPoP-Nonce", self.nonce)
            if response.status_code == 400 and response.json().get("error") == "use_dpop_nonce":
                continue  # RFC 9449 §8: again, with the nonce just received
            response.raise_for_status()
            token: dict[str, Any] = response.json()
            if token.get("token_type") != "DPoP":
                raise RuntimeError("the IdP issued a bearer token, not a DPoP-bound one")
            return token
        raise RuntimeError("the IdP kept asking for a new DPoP nonce")

    def call(self, method: str, url: str, access_token: str, **kwargs: Any) -> requests.Response:
        """Call a resource with the token and a proof for this request (RFC 9449 §7.1)."""
        headers = {
            **kwargs.pop("headers", {}),
            "Authorization": f"DPoP {access_token}",
            "DPoP": self.key.proof(method, url, access_token=access_token),
        }
        return requests.request(method, url, headers=headers, timeout=10, **kwargs)
