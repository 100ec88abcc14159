"""The upstream's ID token, checked in full (OpenID Connect Core 1.0 §3.1.3.7).

allauth's OpenID Connect adapter skips the signature when the token came straight from the
token endpoint (allowed by §3.1.3.7 step 6 over TLS) and sends no nonce; an unsigned token
(`alg: none`) would pass it. Here the signature is always verified against the provider's
published keys (PyJWT), with an asymmetric algorithm only, and `iss`, `aud` (and `azp`),
`exp`, `iat` and `sub` are required.
"""

from __future__ import annotations

from typing import Any

import jwt

# Asymmetric algorithms only: never "none", never an HMAC keyed with our client secret.
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Clock skew allowed between the provider and us, in seconds.
LEEWAY_SECONDS = 60


class IDTokenError(Exception):
    """The ID token is not one this IdP accepts (the message says why, with no token in it)."""


def verify_id_token(
    *, token: str, jwks: dict[str, Any], issuer: str, client_id: str
) -> dict[str, Any]:
    """The claims of `token`, a JWS signed by a key of `jwks` for `client_id` by `issuer`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise IDTokenError(f"not a signed JWT ({error})") from error
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise IDTokenError(f"signature algorithm {algorithm!r} is not accepted")
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except jwt.PyJWTError as error:
        raise IDTokenError(f"the provider's keys cannot be read ({error})") from error
    kid = header.get("kid")
    candidates = [key for key in keys if kid is None or key.key_id == kid]
    if not candidates:
        raise IDTokenError("no published key has the token's key ID")
    last_error: jwt.PyJWTError | None = None
    for key in candidates:
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=client_id,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidSignatureError as error:
            last_error = error
            continue
        except jwt.PyJWTError as error:
            raise IDTokenError(str(error)) from error
        audience = claims["aud"]
        # §3.1.3.7 steps 4-5: several audiences need an `azp` naming us.
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
            raise IDTokenError("several audiences and no azp naming this client")
        if "azp" in claims and claims["azp"] != client_id:
            raise IDTokenError("azp names another client")
        return claims
    raise IDTokenError(f"signature verification failed ({last_error})")
