"""`private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9).

The client proves itself with a JWT it signed with one of its registered keys
(`oauth_clients.client_keys`), sent as `client_assertion` with `client_assertion_type`
`urn:ietf:params:oauth:client-assertion-type:jwt-bearer`. Checked here: the algorithm (RS256,
PS256, ES256 only), the key (`kid` in the client's set; an unknown one refetches a `jwks_uri`
once), `iss` = `sub` = the client id, `aud` this issuer (the identifier, as RFC 7523bis asks,
or during its transition the token endpoint URL or the endpoint called), `exp` present and
at most `MAX_ASSERTION_SECONDS` ahead, and `jti` used once: recorded in the shared cache (Redis,
or the database cache without it: every process sees it) until the assertion expires.
Used by the token, introspection and revocation endpoints through `authenticate_client`.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt as pyjwt
from django.conf import settings
from django.core.cache import cache

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients.client_keys import ASSERTION_ALGORITHMS, client_jwks
from oauth_clients.models import Client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# An assertion is made for one request: one that claims to live longer is refused (RFC 7523
# §3 item 4 lets the server bound it), which also bounds how long its jti must be kept. One
# hour is the default lifetime of Authlib's assertions (and single use makes a longer-lived one
# no more replayable); clients should make theirs much shorter.
MAX_ASSERTION_SECONDS = 3600
# Clock skew tolerated on exp, nbf and iat.
LEEWAY_SECONDS = 30
_JTI_PREFIX = "oauth:assertion-jti:v1:"
# FAPI 2.0 Security Profile §5.4.1: a high-security client signs with PS256 or ES256 (the
# profile's EdDSA is not among the assertion algorithms here), never RS256.
HIGH_SECURITY_ALGORITHMS = ("PS256", "ES256")


def audiences() -> list[str]:
    """What `aud` may name: the issuer identifier (RFC 7523bis), and the endpoints that accept
    an assertion (OIDC Core §9 and RFC 7523 §3 name the token endpoint; RFC 9126 §2 the
    pushed authorization request endpoint)."""
    issuer = settings.IDP_ISSUER
    return [
        issuer,
        f"{issuer}/o/token/",
        f"{issuer}/o/introspect/",
        f"{issuer}/o/revoke_token/",
        f"{issuer}/o/par/",
    ]


def assertion_client_id(assertion: Any) -> str | None:
    """The client an assertion claims to come from (its `sub`, equal to its `iss`), read
    without checking anything: only to find the client whose keys then verify it."""
    if not isinstance(assertion, str) or assertion.count(".") != 2:
        return None
    try:
        claims = pyjwt.decode(assertion, options={"verify_signature": False})
    except pyjwt.PyJWTError:
        return None
    sub = claims.get("sub")
    if isinstance(sub, str) and sub and claims.get("iss") == sub:
        return sub
    return None


def _key_for(client: Client, kid: Any, algorithm: str) -> Any:
    """The client's public key with `kid` usable for `algorithm`, refetching a `jwks_uri` once
    when the cached set lacks it; None when there is none."""
    for refresh in (False, True):
        if refresh and not client.jwks_uri:
            return None
        document = client_jwks(client, refresh=refresh)
        if document is None:
            continue
        candidates = [
            entry
            for entry in document.get("keys", [])
            if isinstance(entry, dict) and (kid is None or entry.get("kid") == kid)
        ]
        if kid is None and len(candidates) != 1:
            return None  # without a kid, only a set of one key is unambiguous
        for entry in candidates:
            try:
                return pyjwt.PyJWK(entry, algorithm=algorithm).key
            except pyjwt.PyJWTError:
                continue  # a key of another type than the algorithm needs
    return None


def verify_client_assertion(*, client: Client, assertion: str, request: Any = None) -> bool:
    """Whether `assertion` authenticates `client` (RFC 7523 §3); a replayed jti is audited."""
    try:
        header = pyjwt.get_unverified_header(assertion)
    except pyjwt.PyJWTError:
        return False
    algorithm = header.get("alg")
    if algorithm not in ASSERTION_ALGORITHMS:
        return False  # `none`, HMAC (HS256 over the public key) and anything else
    if client.high_security and algorithm not in HIGH_SECURITY_ALGORITHMS:
        return False
    key = _key_for(client, header.get("kid"), algorithm)
    if key is None:
        return False
    try:
        claims = pyjwt.decode(
            assertion,
            key,
            algorithms=[algorithm],
            # FAPI 2.0 Security Profile §5.3.2.1: a high-security client's assertion names
            # the issuer identifier alone, as a string (RFC 7523bis).
            audience=[settings.IDP_ISSUER] if client.high_security else audiences(),
            issuer=client.client_id,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except pyjwt.PyJWTError:
        return False
    now = time.time()
    jti = claims["jti"]
    if claims["sub"] != client.client_id or not isinstance(jti, str) or not jti:
        return False
    if client.high_security and not isinstance(claims["aud"], str):
        return False
    if claims["exp"] > now + MAX_ASSERTION_SECONDS:
        return False
    digest = hashlib.sha256(f"{client.pk}:{jti}".encode("utf-8", "surrogatepass")).hexdigest()
    keep = int(claims["exp"] - now) + LEEWAY_SECONDS + 1
    if not cache.add(f"{_JTI_PREFIX}{digest}", 1, timeout=keep):
        record_event(
            type=AuditEvent.Type.TOKEN_REPLAY,
            request=request,
            client=client,
            reason="client assertion replayed",
        )
        return False
    return True
