"""Seeded hostile input for the sweeps (tests/*/test_hostile_sweep.py): values, JWTs, form bodies,
Authorization headers and mutated JSON, and a recorder that names every request that broke a rule.

The explicit bad-input tests beside each endpoint prove the cases we thought of; a sweep sends
hundreds of combinations nobody wrote down (a DPoP header on an introspection, a JSON body with a
SCIM filter that never closes, an AuthnRequest cut in half) and holds the rule that covers them
all: the protocol's own error, never a 500, never a redirect off this site or the app's
registered addresses. Every random choice comes from a `random.Random` seeded with a string, so a
failure repeats on every run and machine.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

OAUTH_PARAMETERS = (
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "resource",
    "audience",
    "device_code",
    "user_code",
    "client_assertion",
    "client_assertion_type",
    "request_uri",
    "request",
    "token",
    "token_type_hint",
    "response_type",
    "response_mode",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "ui_locales",
    "claims",
    "login_hint",
    "id_token_hint",
    "acr_values",
    "post_logout_redirect_uri",
    "dpop_jkt",
    "authorization_details",
    "kc_idp_hint",
    "next",
    "login",
    "password",
)
GRANT_TYPES = (
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "password",
    "implicit",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "",
)
# Text a client should never send: empty, huge, control characters, other scripts and bidi
# marks, numbers out of range, markup, header injection, other sites.
HOSTILE_TEXT = (
    "",
    " ",
    "\x00",
    "%00",
    "\r\nX-Injected: 1",
    "é\u202e\ufffd",
    "x" * 5000,
    "-1",
    "1e999",
    "NaN",
    "99999999999999999999999",
    "[1,2]",
    '{"a":1}',
    "a.b.c",
    "a..b",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "https://evil.example/",
    "//evil.example",
    "javascript:alert(1)",
    "http://127.0.0.1/cb",
    "openid " * 200,
    "urn:ietf:params:oauth:request_uri:",
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "S256",
    "code id_token",
    "none login consent",
    "de-DE,xx;q=2",
)
HOSTILE_JSON: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    2**64,
    1e308,
    "",
    "x" * 10000,
    "\x00",
    "é\u202e",
    [],
    {},
    [None],
    {"value": None},
    [{"value": 5}],
    "urn:bad",
    "2026-13-45",
    "<script>",
)
_KEY = ec.generate_private_key(ec.SECP256R1())
_PUBLIC_JWK = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(_KEY.public_key()))


def _b64(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def hostile_jwt(r: random.Random, *, url: str = "http://testserver/o/token/") -> str:
    """A JWT of the kinds DPoP proofs, client assertions and JWT access tokens must refuse:
    `alg: none`, HS256, a key that is no key, a private key in the header, claims of the wrong
    types; about a third of them properly signed (ES256) so the checks after the signature run."""
    headers: list[Any] = [
        {"alg": "none"},
        {"alg": "HS256"},
        {"alg": "ES256", "typ": "dpop+jwt", "jwk": _PUBLIC_JWK},
        {"alg": "ES256", "typ": "dpop+jwt", "jwk": {**_PUBLIC_JWK, "d": "AAAA"}},
        {"alg": "ES256", "typ": "dpop+jwt", "jwk": {"kty": "EC", "crv": "P-256", "x": "AA"}},
        {"alg": "ES256", "typ": "dpop+jwt", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
        {"alg": "RS256", "typ": "dpop+jwt", "jwk": "not an object"},
        {"alg": "ES256", "jwk": {"kty": "oct", "k": "AAAA"}},
        {"alg": ["ES256"], "kid": 5},
        {"alg": "PS256", "typ": "at+jwt", "kid": {"a": 1}},
        "not an object",
        [],
    ]
    claims: list[Any] = [
        {},
        {"htm": "POST", "htu": url, "iat": 0, "jti": "a"},
        {"htm": 5, "htu": ["x"], "iat": "now", "jti": {}},
        {"htm": "POST", "htu": url, "iat": 1e20, "jti": "b", "nonce": ["a"], "ath": 4},
        {"iss": "batch-service", "sub": "batch-service", "aud": url, "exp": 9999999999, "jti": []},
        {"exp": "soon", "iat": 1e308, "nbf": -1, "cnf": {"jkt": 5}},
        "not an object",
    ]
    header, payload = r.choice(headers), r.choice(claims)
    if (
        r.random() < 0.4
        and isinstance(header, dict)
        and header.get("alg") == "ES256"
        and isinstance(payload, dict)
    ):
        extra = {name: value for name, value in header.items() if name != "alg"}
        return jwt.encode(payload, _KEY, algorithm="ES256", headers=extra)
    signature = r.choice(["", "AAAA", "!!!", base64.urlsafe_b64encode(r.randbytes(64)).decode()])
    return f"{_b64(header)}.{_b64(payload)}.{signature.rstrip('=')}"


# Where a redirect could come from: an address of another site, a scheme that runs script, this
# site's address written so a loose check takes it for another.
HOSTILE_URLS = (
    "https://evil.example/",
    "//evil.example/cb",
    "https://web.example.com.evil.example/callback",
    "https://web.example.com@evil.example/callback",
    "https://web.example.com/callback/../../evil",
    "https://WEB.example.com/callback",
    "http://web.example.com/callback",
    "/\\evil.example",
    "javascript:alert(1)",
    "data:text/html,x",
    "http://127.0.0.1:1/",
    "urn:ietf:params:oauth:request_uri:x",
)
URL_PARAMETERS = {"redirect_uri", "post_logout_redirect_uri", "next", "request_uri", "logo_uri"}


def hostile_value(r: random.Random, name: str = "") -> str:
    """One value of parameter `name`: another site's address where the parameter is one, else
    hostile text, a grant type, a hostile JWT or a plausible value."""
    if name in URL_PARAMETERS and r.random() < 0.7:
        return r.choice(HOSTILE_URLS)
    pick = r.random()
    if pick < 0.6:
        return r.choice(HOSTILE_TEXT)
    if pick < 0.75:
        return r.choice(GRANT_TYPES)
    if pick < 0.9:
        return hostile_jwt(r)
    return r.choice(["openid profile email offline_access", "batch-service", "web-app", "1"])


def hostile_authorization(r: random.Random, good: list[str]) -> dict[str, str]:
    """An Authorization header (or none): the `good` ones, wrong and broken Basic credentials,
    bearer and DPoP tokens that are no tokens."""
    options = [
        *good,
        "Basic " + base64.b64encode(b"batch-service:wrong").decode(),
        "Basic " + base64.b64encode(r.randbytes(r.randint(0, 40))).decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b"a%zz:b%").decode(),
        "Basic " + base64.b64encode(b"no colon").decode(),
        "Basic !!!",
        "Basic",
        "Bearer",
        "Bearer " + hostile_value(r),
        "DPoP " + hostile_value(r),
        "bearer  " + "x" * 5000,
        "Negotiate x",
    ]
    return {} if r.random() < 0.2 else {"HTTP_AUTHORIZATION": r.choice(options)}


def hostile_form_body(r: random.Random, own: tuple[str, ...] = OAUTH_PARAMETERS) -> bytes:
    """A form body of up to eight parameters (names may repeat), mostly the endpoint's `own`,
    with a grant type when the endpoint takes one; now and then bytes that are no form at all
    (invalid UTF-8, a lone %, a JSON document)."""
    if r.random() < 0.1:
        return r.choice(
            [b"\xff\xfe\x00", b"a=%ff%fe", b"=&=&&==", b"a" * 100_000, b"%", b'{"a": 1}']
        )
    names = [
        r.choice(own if r.random() < 0.8 else OAUTH_PARAMETERS) for _ in range(r.randint(0, 8))
    ]
    items = [(name, hostile_value(r, name)) for name in names]
    if "grant_type" in own and r.random() < 0.7:
        items.insert(0, ("grant_type", r.choice(GRANT_TYPES)))
    return urlencode(items).encode()


def mutate_json(r: random.Random, document: Any, *, keys: tuple[str, ...] = ()) -> Any:
    """`document` with members dropped, replaced by hostile values or mutated in turn, and now
    and then one of `keys` added with a hostile value."""
    if isinstance(document, dict):
        mutated = {}
        for name, value in document.items():
            pick = r.random()
            if pick < 0.15:
                continue
            if pick < 0.4:
                mutated[name] = r.choice(HOSTILE_JSON)
            elif pick < 0.6:
                mutated[name] = mutate_json(r, value, keys=keys)
            else:
                mutated[name] = value
        if keys and r.random() < 0.2:
            mutated[r.choice(keys)] = r.choice(HOSTILE_JSON)
        return mutated
    if isinstance(document, list):
        items = [mutate_json(r, item, keys=keys) for item in document if r.random() > 0.1]
        if r.random() < 0.2:
            items.append(r.choice(HOSTILE_JSON))
        return items
    return r.choice(HOSTILE_JSON) if r.random() < 0.3 else document


@dataclass
class Sweep:
    """The requests of one sweep that broke a rule, each with what it sent and what came back."""

    name: str
    broken: list[str] = field(default_factory=list)

    def send(self, sent: Any, request: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`request(*args, **kwargs)`'s response, or None when it raised (Django's test client
        raises what a view let escape, which a server answers with a 500), recorded with `sent`."""
        try:
            return request(*args, **kwargs)
        except Exception as error:  # every escape is a finding, named with its request
            self.broken.append(f"raised {error!r:.300}: sent {sent!r:.600}")
            return None

    def record(self, rule: str, sent: Any, response: Any) -> None:
        self.broken.append(
            f"{rule}: sent {sent!r:.600} -> {response.status_code} {response.content[:300]!r}"
        )

    def check_status(self, sent: Any, response: Any, *, allowed_5xx: tuple[int, ...] = ()) -> bool:
        """A response (not None) and no 5xx (except `allowed_5xx`, e.g. SCIM's 501 for a
        feature it does not offer)."""
        if response is None:
            return False
        if response.status_code >= 500 and response.status_code not in allowed_5xx:
            self.record("a server error", sent, response)
            return False
        return True

    def check_redirect(self, sent: Any, response: Any, *, hosts: set[str]) -> None:
        """A redirect goes to this site or to one of `hosts` (the registered apps), nowhere else."""
        if 300 <= response.status_code < 400:
            host = urlsplit(response["Location"]).hostname or ""
            if host not in {"", "testserver", *hosts}:
                self.record(f"a redirect to {response['Location']:.200}", sent, response)

    def assert_clean(self) -> None:
        assert not self.broken, f"{self.name}: {len(self.broken)} requests broke a rule:\n" + (
            "\n".join(self.broken[:5])
        )
